"""The server object: models, REST (aiohttp) and gRPC (grpc.aio) on one event loop.

For development and tests only; production is TensorFlow Serving. TensorFlow runs on a
small thread pool so the event loop keeps answering while a model computes; a poll task
picks up new version directories. ``stop()`` closes the listeners first, then lets
requests already in flight finish (queued batches run at once) before it returns.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import grpc
from aiohttp import web
from tensorflow_serving.config import model_server_config_pb2

from ._config_files import BatchingOptions, GrpcTls, read_model_server_config
from ._core import ServingCore
from ._defaults import DEFAULT_LOAD_RETRY_INTERVAL_S, DEFAULT_MAX_NUM_LOAD_RETRIES
from ._grpc import MAX_MESSAGE_BYTES, add_services
from ._inference import Runner, warm_up
from ._metrics import Metrics
from ._repository import ModelRepository
from ._rest import RestApi
from ._status import ServingError

logger = logging.getLogger("shixin_client.server")

#: Our own request body limit for REST (TF Serving has none).
DEFAULT_MAX_REQUEST_BYTES = 16 * 1024 * 1024
#: How long stop() waits for requests in flight.
DEFAULT_GRACE_S = 30.0
MODEL_THREADS = 4


def model_config(name: str, base_path: str) -> model_server_config_pb2.ModelConfig:
    """One model with TF Serving's defaults (latest version only), as --model_name/--model_base_path give."""
    return model_server_config_pb2.ModelConfig(name=name, base_path=base_path, model_platform="tensorflow")


@dataclass
class ServerOptions:
    """What to serve and where. A port of 0 binds a free port; None turns that API off."""

    models: list[model_server_config_pb2.ModelConfig]
    host: str = "0.0.0.0"
    grpc_port: int | None = 8500
    rest_port: int | None = None
    grpc_socket_path: str | None = None
    file_system_poll_wait_seconds: float = 1.0
    #: Re-read this ModelServerConfig file every model_config_file_poll_wait_seconds (0: never).
    model_config_file: str | None = None
    model_config_file_poll_wait_seconds: float = 0.0
    batching: BatchingOptions | None = None
    grpc_tls: GrpcTls | None = None
    #: --rest_api_enable_cors_support (§1.1).
    rest_cors: bool = False
    prometheus_path: str | None = None
    rest_timeout_s: float | None = 30.0
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES
    allow_version_labels_for_unavailable_models: bool = False
    #: Replay assets.extra/tf_serving_warmup_requests on load, as TF Serving does by default.
    enable_model_warmup: bool = True
    #: A failed load is retried this often, this far apart (--max_num_load_retries,
    #: --load_retry_interval_micros; TF Serving's defaults).
    max_num_load_retries: int = DEFAULT_MAX_NUM_LOAD_RETRIES
    load_retry_interval_s: float = DEFAULT_LOAD_RETRY_INTERVAL_S
    #: Ours: start even when a base path does not exist yet, and keep polling for it (TF
    #: Serving's own behaviour); by default such a path fails the start with a clear error.
    wait_for_models: bool = False
    grace_s: float = DEFAULT_GRACE_S

    def __post_init__(self) -> None:
        if not self.models:
            raise ValueError("ServerOptions.models must name at least one model")
        if self.max_request_bytes <= 0:
            raise ValueError(f"max_request_bytes must be positive, got {self.max_request_bytes}")
        if self.max_num_load_retries < 0 or self.load_retry_interval_s < 0:
            raise ValueError("max_num_load_retries and load_retry_interval_s must not be negative")
        if self.file_system_poll_wait_seconds < 0:
            raise ValueError("file_system_poll_wait_seconds must not be negative")
        for name in ("grpc_port", "rest_port"):
            port = getattr(self, name)
            if port is not None and not 0 <= port <= 65535:
                raise ValueError(f"{name} must be in 0..65535, got {port}")


class ModelServer:
    """Start with ``await start()``, stop with ``await stop()``; the bound ports are then known."""

    def __init__(self, options: ServerOptions) -> None:
        self.options = options
        self.grpc_port: int | None = None
        self.rest_port: int | None = None
        self.core: ServingCore | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._grpc: grpc.aio.Server | None = None
        self._rest: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Load the models, then open the ports (as TF Serving does); raises if a model config is bad."""
        options = self.options
        loop = asyncio.get_running_loop()
        self._executor = ThreadPoolExecutor(MODEL_THREADS, thread_name_prefix="shixin-model")
        repository = ModelRepository(
            options.models,
            warm_up if options.enable_model_warmup else None,
            max_num_load_retries=options.max_num_load_retries,
            load_retry_interval_s=options.load_retry_interval_s,
        )
        if not options.wait_for_models and (missing := repository.missing_base_paths()):
            raise ServingError(
                "NOT_FOUND", "; ".join(missing) + " (--wait_for_models keeps polling for it instead)"
            )
        runner = Runner(self._executor, options.batching)
        allow_labels = options.allow_version_labels_for_unavailable_models
        self.core = ServingCore(repository, runner, Metrics(), self._executor, allow_labels)
        # §3.3: labels are applied before anything loads, then the initial load runs to its end.
        repository.apply_labels(options.models, allow_labels)
        await self.core.initial_load()
        if options.grpc_port is not None or options.grpc_socket_path:
            await self._start_grpc()
        rest_port = options.rest_port
        if rest_port is not None and rest_port != 0 and rest_port == options.grpc_port:
            logger.error(
                "--rest_api_port cannot be the same as --port. Please use a different port for the REST API"
            )
        elif rest_port is not None:
            await self._start_rest(rest_port)
        if options.file_system_poll_wait_seconds > 0:
            self._tasks.append(loop.create_task(self._poll_forever(options.file_system_poll_wait_seconds)))
        if options.model_config_file and options.model_config_file_poll_wait_seconds > 0:
            self._tasks.append(loop.create_task(self._watch_config_file(options.model_config_file)))

    async def _start_grpc(self) -> None:
        assert self.core is not None
        limits = [
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ]
        server = grpc.aio.server(options=limits)
        add_services(server, self.core)
        if self.options.grpc_port is not None:
            address = f"{self.options.host}:{self.options.grpc_port}"
            tls = self.options.grpc_tls
            if tls is None:
                self.grpc_port = server.add_insecure_port(address)
            else:
                credentials = grpc.ssl_server_credentials(
                    [(tls.server_key.encode(), tls.server_cert.encode())],
                    root_certificates=tls.custom_ca.encode() or None,
                    require_client_auth=tls.client_verify,
                )
                self.grpc_port = server.add_secure_port(address, credentials)
            logger.info("Running gRPC ModelServer at %s:%d", self.options.host, self.grpc_port)
        if self.options.grpc_socket_path:
            server.add_insecure_port(f"unix:{self.options.grpc_socket_path}")
            logger.info("Running gRPC ModelServer at UNIX socket %s", self.options.grpc_socket_path)
        await server.start()
        self._grpc = server

    async def _start_rest(self, port: int) -> None:
        assert self.core is not None
        api = RestApi(
            self.core,
            timeout_s=self.options.rest_timeout_s,
            max_request_bytes=self.options.max_request_bytes,
            prometheus_path=self.options.prometheus_path,
            cors=self.options.rest_cors,
        )
        runner = web.AppRunner(api.make_app(), access_log=None, shutdown_timeout=self.options.grace_s)
        await runner.setup()
        site = web.TCPSite(runner, self.options.host, port)
        await site.start()
        self._rest = runner
        self.rest_port = runner.addresses[0][1]
        logger.info("Exporting HTTP/REST API at:%s:%d ...", self.options.host, self.rest_port)

    async def _poll_forever(self, every_s: float) -> None:
        assert self.core is not None
        while True:
            await asyncio.sleep(every_s)
            await self.core.poll()

    async def _watch_config_file(self, path: str) -> None:
        """--model_config_file_poll_wait_seconds: re-read the file, apply it when it changed."""
        assert self.core is not None
        applied = list(self.options.models)
        while True:
            await asyncio.sleep(self.options.model_config_file_poll_wait_seconds)
            try:
                configs = read_model_server_config(path)
                if configs != applied:
                    await self.core.reload(configs)
                    applied = configs
                    logger.info("Applied the changed model config file %s", path)
            except (ValueError, ServingError) as exc:
                logger.error("Ignoring model config file %s: %s", path, exc)

    async def stop(self) -> None:
        """Close the listeners, finish what is in flight (up to grace_s), then release everything."""
        for task in self._tasks:
            task.cancel()
        grace = self.options.grace_s
        # Started now (not just created) so the gRPC port closes while REST drains.
        grpc_stopped = asyncio.ensure_future(self._grpc.stop(grace)) if self._grpc is not None else None
        if self._rest is not None:
            for site in list(self._rest.sites):
                await site.stop()
        if self.core is not None:
            await self.core.runner.drain()
            try:
                await asyncio.wait_for(self.core.wait_idle(), grace)
            except asyncio.TimeoutError:
                logger.warning("Stopping with requests still in flight after %.0f s", grace)
        if grpc_stopped is not None:
            await grpc_stopped
        if self._rest is not None:
            await self._rest.cleanup()
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
