"""``shixin serve`` / ``python -m shixin_client.server``: tensorflow_model_server's command line.

For development and tests only; production is TensorFlow Serving. Flags keep TF
Serving's names and may be spelled with underscores (``--model_base_path=m``) or
dashes (``--model-base-path m``); the last occurrence wins, unknown flags are reported
and ignored (docs/tf-serving-compat.md §3.1).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from typing import Any

from shixin_client import __version__
from shixin_client._spec import DEFAULT_GRPC_PORT

from ._defaults import DEFAULT_LOAD_RETRY_INTERVAL_S, DEFAULT_MAX_NUM_LOAD_RETRIES

# tensorflow_model_server's exit status when flags do not parse (§3.1).
EXIT_BAD_FLAGS = 255
EXIT_STARTUP_FAILED = 1
DESCRIPTION = (
    "A TensorFlow Serving-compatible model server (REST + gRPC) for DEVELOPMENT AND TESTS ONLY. "
    "Production is TensorFlow Serving (the tensorflow/serving image or tensorflow_model_server), "
    "which takes the same flags."
)
EXAMPLES = """examples:
  shixin serve --rest_api_port=8501 --model_name=shixin --model_base_path=models/shixin
  shixin serve --model_config_file=models.config --model_config_file_poll_wait_seconds=5
  shixin serve --model_base_path=/exports/shixin --model_name=shixin --wait_for_models"""
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}


class _FlagError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:
        raise _FlagError(message)


def _bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="shixin serve",
        description=DESCRIPTION,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )

    def flag(name: str, **kwargs: Any) -> None:
        spellings = dict.fromkeys([f"--{name}", f"--{name.replace('_', '-')}"])
        parser.add_argument(*spellings, dest=name, **kwargs)

    def switch(name: str, help_text: str, default: bool = False) -> None:
        flag(name, type=_bool, nargs="?", const=True, default=default, metavar="BOOL", help=help_text)

    flag(
        "port",
        type=int,
        default=DEFAULT_GRPC_PORT,
        help="gRPC port; 0 turns gRPC off (then give --grpc_socket_path)",
    )
    flag(
        "rest_api_port",
        type=int,
        default=0,
        help="REST port; 0 (the default, as in TF Serving) turns REST off",
    )
    flag("host", default="0.0.0.0", help="address to bind (ours; TF Serving always binds every interface)")
    flag("grpc_socket_path", default="", help="also serve gRPC on this UNIX socket")
    flag("model_name", default="default", help="name of the model (ignored with --model_config_file)")
    flag("model_base_path", default="", help="directory holding <int version>/saved_model.pb")
    flag(
        "model_config_file", default="", help="ModelServerConfig text proto: several models, policies, labels"
    )
    flag(
        "model_config_file_poll_wait_seconds",
        type=float,
        default=0.0,
        help="seconds between re-reads of --model_config_file; 0 reads it once",
    )
    flag(
        "file_system_poll_wait_seconds",
        type=float,
        default=1.0,
        help="seconds between scans for new versions",
    )
    switch("enable_batching", "merge concurrent predict calls into one model call")
    flag(
        "batching_parameters_file", default="", help="BatchingParameters text proto (needs --enable_batching)"
    )
    flag(
        "monitoring_config_file",
        default="",
        help="MonitoringConfig text proto enabling Prometheus on the REST port",
    )
    flag("rest_api_timeout_in_ms", type=int, default=30000, help="per-request REST timeout")
    switch("allow_version_labels_for_unavailable_models", "let labels point at versions not yet loaded")
    switch(
        "enable_model_warmup",
        "replay assets.extra/tf_serving_warmup_requests when a version loads",
        default=True,
    )
    flag(
        "max_num_load_retries",
        type=int,
        default=DEFAULT_MAX_NUM_LOAD_RETRIES,
        help="retries of a failed version load before the version ends with the error",
    )
    flag(
        "load_retry_interval_micros",
        type=int,
        default=int(DEFAULT_LOAD_RETRY_INTERVAL_S * 1_000_000),
        help="microseconds between load retries",
    )
    switch(
        "wait_for_models",
        "ours: start even when a model base path does not exist, and keep polling for it (TF Serving's "
        "behaviour); by default a missing base path stops the start with an error",
    )
    flag("ssl_config_file", default="", help="SSLConfig text proto (PEM contents) securing the gRPC port")
    switch("rest_api_enable_cors_support", "answer CORS preflights and add CORS headers on the REST port")
    flag("max_request_bytes", type=int, default=None, help="largest REST request body (ours; default 16 MiB)")
    flag("version", action="store_true", help="print the version and exit")
    return parser


def options_from_args(args: argparse.Namespace) -> Any:
    """Validate the flags like tensorflow_model_server and build ServerOptions; ValueError says why."""
    if not args.model_base_path and not args.model_config_file:
        raise ValueError(
            "Both server_options.model_base_path and server_options.model_config_file are empty!"
        )
    if args.batching_parameters_file and not args.enable_batching:
        raise ValueError(
            "server_options.batching_parameters_file is set without setting "
            "server_options.enable_batching to true."
        )
    if args.max_num_load_retries < 0 or args.load_retry_interval_micros < 0:
        raise ValueError("--max_num_load_retries and --load_retry_interval_micros must not be negative")
    if args.port == 0 and not args.grpc_socket_path:
        raise ValueError("--port=0 turns gRPC off, which needs --grpc_socket_path to be set")
    from . import _config_files as files  # imports TensorFlow Serving's protos, so only once flags are sane
    from .server import DEFAULT_MAX_REQUEST_BYTES, ServerOptions, model_config

    if args.model_config_file:
        models = files.read_model_server_config(args.model_config_file)
    else:
        models = [model_config(args.model_name, args.model_base_path)]
    batching = None
    if args.enable_batching:
        batching = (
            files.read_batching_parameters(args.batching_parameters_file)
            if args.batching_parameters_file
            else files.BatchingOptions()
        )
    prometheus_path = None
    if args.monitoring_config_file:
        prometheus_path = files.read_prometheus_path(args.monitoring_config_file)
        if prometheus_path is not None and not args.rest_api_port:
            logging.getLogger("shixin_client.server").warning(
                "Prometheus is served on the REST port; set --rest_api_port"
            )
    if args.rest_api_timeout_in_ms <= 0:
        raise ValueError(f"--rest_api_timeout_in_ms must be positive, got {args.rest_api_timeout_in_ms}")
    grpc_tls = files.read_ssl_config(args.ssl_config_file) if args.ssl_config_file else None
    return ServerOptions(
        models=models,
        grpc_tls=grpc_tls,
        rest_cors=args.rest_api_enable_cors_support,
        host=args.host,
        grpc_port=args.port or None,
        rest_port=args.rest_api_port or None,
        grpc_socket_path=args.grpc_socket_path or None,
        file_system_poll_wait_seconds=args.file_system_poll_wait_seconds,
        model_config_file=args.model_config_file or None,
        model_config_file_poll_wait_seconds=args.model_config_file_poll_wait_seconds,
        batching=batching,
        prometheus_path=prometheus_path,
        rest_timeout_s=args.rest_api_timeout_in_ms / 1000,
        max_request_bytes=args.max_request_bytes or DEFAULT_MAX_REQUEST_BYTES,
        allow_version_labels_for_unavailable_models=args.allow_version_labels_for_unavailable_models,
        enable_model_warmup=args.enable_model_warmup,
        max_num_load_retries=args.max_num_load_retries,
        load_retry_interval_s=args.load_retry_interval_micros / 1_000_000,
        wait_for_models=args.wait_for_models,
    )


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM or SIGINT; returns the process exit status."""
    parser = build_parser()
    try:
        args, unknown = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    except _FlagError as exc:
        print(f"{parser.prog}: {exc}\n{parser.format_usage()}", file=sys.stderr)
        return EXIT_BAD_FLAGS
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    if args.version:
        print(f"shixin_client.server {__version__} (TensorFlow Serving-compatible development server)")
        return 0
    if unknown:
        print(f"unknown argument: {' '.join(unknown)}\n{parser.format_usage()}", file=sys.stderr)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        options = options_from_args(args)
    except ValueError as exc:
        print(f"{parser.prog}: {exc}", file=sys.stderr)
        return EXIT_STARTUP_FAILED
    return asyncio.run(_serve(options))


async def _serve(options: Any) -> int:
    from ._status import ServingError
    from .server import ModelServer

    server = ModelServer(options)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await server.start()
    except (ServingError, ValueError, OSError) as exc:
        logging.getLogger("shixin_client.server").error("Startup failed: %s", exc)
        await server.stop()
        return EXIT_STARTUP_FAILED
    await stop.wait()
    logging.getLogger("shixin_client.server").info("Shutting down: finishing requests in flight")
    await server.stop()
    return 0
