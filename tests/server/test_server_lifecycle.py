"""Flags and config files (§3), version polling, batching, and shutdown of the dev server."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from shixin_client.server._config_files import BatchingOptions
from shixin_client.server.cli import EXIT_BAD_FLAGS, build_parser, main, options_from_args
from shixin_client.server.server import ServerOptions, model_config
from shixin_client.server.testing import running_server

REPO = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def options(*argv: str) -> ServerOptions:
    args, _ = build_parser().parse_known_args(list(argv))
    return options_from_args(args)


# §3.1 flags ------------------------------------------------------------------------------


def test_required_model_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 1
    assert "Both server_options.model_base_path and server_options.model_config_file are empty!" in (
        capsys.readouterr().err
    )


def test_batching_file_needs_enable_batching(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--model_base_path=/m", "--batching_parameters_file=/b"]) == 1
    assert (
        "server_options.batching_parameters_file is set without setting "
        "server_options.enable_batching to true." in capsys.readouterr().err
    )


def test_bad_flag_value_prints_usage(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--port=abc", "--model_base_path=/m"]) == EXIT_BAD_FLAGS
    assert "usage:" in capsys.readouterr().err


def test_help_says_it_is_for_development(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "DEVELOPMENT AND TESTS ONLY" in out
    assert "--model_base_path" in out and "--model-base-path" in out


def test_dash_and_underscore_spellings_and_last_wins(tmp_path: Path) -> None:
    # §4: a repeated flag overrides the earlier one.
    built = options(
        "--model-base-path",
        str(tmp_path),
        "--model_name=m",
        "--rest_api_port=9000",
        "--rest-api-port=9001",
        "--port",
        "9500",
        "--enable-batching",
    )
    assert built.models[0].name == "m" and built.models[0].base_path == str(tmp_path)
    assert (built.grpc_port, built.rest_port) == (9500, 9001)
    assert built.batching == BatchingOptions()
    assert options("--model_base_path=/m").rest_port is None  # §1.1: REST off by default
    assert options("--model_base_path=/m", "--enable_batching=false").batching is None


def test_config_files(tmp_path: Path) -> None:
    # §3.2 formats, verbatim from the doc's examples.
    models = tmp_path / "models.config"
    models.write_text(
        "model_config_list { config { name: 'm' base_path: '/models/m' model_platform: 'tensorflow'\n"
        "  model_version_policy { specific { versions: 42 versions: 43 } }\n"
        "  version_labels { key: 'stable' value: 42 } version_labels { key: 'canary' value: 43 } } }\n"
    )
    batching = tmp_path / "batching.config"
    batching.write_text(
        "max_batch_size { value: 128 } batch_timeout_micros { value: 0 } "
        "max_enqueued_batches { value: 1000000 } num_batch_threads { value: 8 }"
    )
    monitoring = tmp_path / "monitoring.config"
    monitoring.write_text('prometheus_config { enable: true, path: "/metrics/here" }')
    built = options(
        f"--model_config_file={models}",
        "--model_name=ignored",
        "--enable_batching",
        f"--batching_parameters_file={batching}",
        f"--monitoring_config_file={monitoring}",
        "--rest_api_port=8501",
    )
    (model,) = built.models
    assert model.name == "m" and list(model.model_version_policy.specific.versions) == [42, 43]
    assert dict(model.version_labels) == {"stable": 42, "canary": 43}
    assert built.batching == BatchingOptions(max_batch_size=128, batch_timeout_micros=0, num_batch_threads=8)
    assert built.prometheus_path == "/metrics/here"
    batching.write_text("max_batch_size: 3")
    with pytest.raises(ValueError, match="not a valid BatchingParameters"):
        options("--model_base_path=/m", "--enable_batching", f"--batching_parameters_file={batching}")


def test_equal_ports_skip_rest(model_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    # §1.1: same port for both -> error log, no REST.
    port = free_port()
    with caplog.at_level(logging.ERROR, logger="shixin_client.server"):
        with running_server(
            model_root / "half", "half", grpc_port=port, rest_port=port, file_system_poll_wait_seconds=0
        ) as server:
            assert server.server.rest_port is None
            assert server.server.grpc_port == port
    assert "--rest_api_port cannot be the same as --port" in caplog.text


# polling ---------------------------------------------------------------------------------


def wait_for(condition: object, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def test_polling_loads_new_versions_and_unloads_removed_ones(model_root: Path, half_copy: Path) -> None:
    with running_server(half_copy, "half", file_system_poll_wait_seconds=0.1) as server:

        def predicted() -> float:
            response = requests.post(
                f"{server.rest_url}/v1/models/half:predict", json={"instances": [0]}, timeout=10
            )
            return float(response.json()["predictions"][0])

        def states() -> dict[str, str]:
            body = requests.get(f"{server.rest_url}/v1/models/half", timeout=10).json()
            return {row["version"]: row["state"] for row in body["model_version_status"]}

        assert predicted() == 2.0
        (half_copy / "3").mkdir()  # half written: no saved_model.pb yet, must be ignored
        staging = half_copy / "tmp-2"
        shutil.copytree(model_root / "half" / "2", staging)
        staging.rename(half_copy / "2")
        wait_for(lambda: states() == {"2": "AVAILABLE", "1": "END"})  # default policy: latest 1
        assert predicted() == 3.0
        shutil.rmtree(half_copy / "2")
        wait_for(lambda: states() == {"2": "END", "1": "AVAILABLE"})
        assert predicted() == 2.0


# batching --------------------------------------------------------------------------------


def test_batching_merges_concurrent_requests(model_root: Path) -> None:
    batching = BatchingOptions(max_batch_size=8, batch_timeout_micros=300_000, num_batch_threads=1)
    with running_server(
        model_root / "toolbox", "toolbox", batching=batching, file_system_poll_wait_seconds=0
    ) as srv:
        url = f"{srv.rest_url}/v1/models/toolbox:predict"

        def call(value: float) -> dict:
            body = {"signature_name": "counter", "instances": [value, value + 0.5]}
            return requests.post(url, json=body, timeout=30).json()

        calls_before = srv.server.core.runner.calls  # type: ignore[union-attr]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(call, [1.0, 2.0, 3.0, 4.0]))
        assert srv.server.core.runner.calls - calls_before == 1  # type: ignore[union-attr]
        assert [[row["x"] for row in result["predictions"]] for result in results] == [
            [1.0, 1.5],
            [2.0, 2.5],
            [3.0, 3.5],
            [4.0, 4.5],
        ]
        assert len({row["call"] for result in results for row in result["predictions"]}) == 1
        too_big = requests.post(url, json={"signature_name": "counter", "instances": [0.0] * 9}, timeout=30)
        assert too_big.status_code == 400
        assert too_big.json()["error"] == "Task size 9 is larger than maximum input batch size 8"


# shutdown ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_sigterm_finishes_in_flight_requests(model_root: Path, tmp_path: Path) -> None:
    batching = tmp_path / "batching.config"
    batching.write_text("max_batch_size { value: 64 } batch_timeout_micros { value: 20000000 }")
    rest_port, grpc_port = free_port(), free_port()
    command = [
        sys.executable,
        "-m",
        "shixin_client.server",
        "--host=127.0.0.1",
        f"--port={grpc_port}",
        f"--rest_api_port={rest_port}",
        "--model_name=toolbox",
        f"--model_base_path={model_root / 'toolbox'}",
        "--enable_batching",
        f"--batching_parameters_file={batching}",
        "--not_a_flag=1",
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{rest_port}/v1/models/toolbox"
    try:
        wait_for(lambda: _answers(url), timeout_s=120)
        result: dict = {}

        def slow_request() -> None:
            # Held in the batch queue for up to 20 s; shutdown must run it at once, not drop it.
            body = {"signature_name": "counter", "instances": [7.0]}
            response = requests.post(f"{url}:predict", json=body, timeout=60)
            result.update(status=response.status_code, body=response.json())

        worker = threading.Thread(target=slow_request)
        worker.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        worker.join(30)
        assert result["status"] == 200
        assert result["body"]["predictions"][0]["x"] == 7.0
        assert process.wait(30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = process.stderr.read() if process.stderr else ""
    assert "unknown argument: --not_a_flag=1" in stderr  # §3.1: reported, and the server still started


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.ConnectionError:
        return False


# warm-up -----------------------------------------------------------------------------------


def test_rest_timeout_gives_504(model_root: Path) -> None:
    # §1.1 --rest_api_timeout_in_ms; §1.8: DEADLINE_EXCEEDED is 504.
    # A long batch wait stands in for a slow model.
    batching = BatchingOptions(max_batch_size=8, batch_timeout_micros=10_000_000)
    with running_server(
        model_root / "half", "half", batching=batching, rest_timeout_s=0.2, file_system_poll_wait_seconds=0
    ) as server:
        response = requests.post(
            f"{server.rest_url}/v1/models/half:predict", json={"instances": [1.0]}, timeout=30
        )
        assert response.status_code == 504
        assert response.json() == {"error": "Deadline Exceeded"}


# TLS and CORS ------------------------------------------------------------------------------


def test_grpc_tls_from_an_ssl_config_file(model_root: Path, tmp_path: Path) -> None:
    # §3.2: SSLConfig strings are PEM contents; client_verify requires client certificates.
    import grpc
    import trustme
    from tensorflow_serving.apis import get_model_status_pb2, model_service_pb2_grpc

    ca = trustme.CA()
    server_cert = ca.issue_cert("localhost")
    client_cert = ca.issue_cert("client")
    ssl_file = tmp_path / "ssl.config"
    ssl_file.write_text(
        f"server_key: {json.dumps(server_cert.private_key_pem.bytes().decode())}\n"
        f"server_cert: {json.dumps(server_cert.cert_chain_pems[0].bytes().decode())}\n"
        f"custom_ca: {json.dumps(ca.cert_pem.bytes().decode())}\n"
        "client_verify: true\n"
    )
    tls = options("--model_base_path=/m", f"--ssl_config_file={ssl_file}").grpc_tls
    assert tls is not None and "BEGIN" not in repr(tls)
    with running_server(model_root / "half", "half", grpc_tls=tls, file_system_poll_wait_seconds=0) as server:
        request = get_model_status_pb2.GetModelStatusRequest()
        request.model_spec.name = "half"
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.cert_pem.bytes(),
            private_key=client_cert.private_key_pem.bytes(),
            certificate_chain=client_cert.cert_chain_pems[0].bytes(),
        )
        target = f"localhost:{server.server.grpc_port}"
        with grpc.secure_channel(target, credentials) as channel:
            response = model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
            assert response.model_version_status[0].version == 2
        anonymous = grpc.ssl_channel_credentials(root_certificates=ca.cert_pem.bytes())
        with grpc.secure_channel(target, anonymous) as channel:
            with pytest.raises(grpc.RpcError) as info:
                model_service_pb2_grpc.ModelServiceStub(channel).GetModelStatus(request, timeout=10)
            assert info.value.code() == grpc.StatusCode.UNAVAILABLE


def test_cors_support(model_root: Path) -> None:
    # §1.1: CORS headers on /v1 responses; preflight needs an http(s) Origin.
    with running_server(
        model_root / "half", "half", rest_cors=True, file_system_poll_wait_seconds=0
    ) as server:
        url = f"{server.rest_url}/v1/models/half"
        assert requests.get(url, timeout=10).headers["Access-Control-Allow-Origin"] == "*"
        preflight = requests.options(url, headers={"Origin": "https://example.org"}, timeout=10)
        assert preflight.status_code == 200
        assert preflight.headers["Access-Control-Allow-Methods"] == "POST, GET"
        refused = requests.options(url, timeout=10)
        assert (refused.status_code, refused.json()) == (
            400,
            {"error": "Origin header is missing in CORS preflight"},
        )


# config reloads ------------------------------------------------------------------------------


def test_reload_config_rpc_replaces_the_models(model_root: Path) -> None:
    # §2 HandleReloadConfigRequest: the new list replaces the old one; models left out are unloaded.
    import grpc
    from tensorflow_serving.apis import model_management_pb2, model_service_pb2_grpc

    with running_server(model_root / "half", "half", file_system_poll_wait_seconds=0) as server:
        request = model_management_pb2.ReloadConfigRequest()
        request.config.model_config_list.config.append(model_config("toolbox", str(model_root / "toolbox")))
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            assert stub.HandleReloadConfigRequest(request, timeout=30).status.error_code == 0
            assert requests.get(f"{server.rest_url}/v1/models/half", timeout=10).status_code == 404
            assert requests.get(f"{server.rest_url}/v1/models/toolbox", timeout=10).status_code == 200
            request.config.custom_model_config.SetInParent()
            with pytest.raises(grpc.RpcError) as info:
                stub.HandleReloadConfigRequest(request, timeout=30)
            assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert info.value.details().startswith(
                "ServerModelConfig type not supported by HandleReloadConfigRequest"
            )


def test_model_config_file_is_polled(model_root: Path, tmp_path: Path) -> None:
    def write(*names: str) -> None:
        entries = " ".join(f"config {{ name: '{n}' base_path: '{model_root / n}' }}" for n in names)
        config_file.write_text(f"model_config_list {{ {entries} }}")

    config_file = tmp_path / "models.config"
    write("half")
    built = options(f"--model_config_file={config_file}", "--model_config_file_poll_wait_seconds=0.1")
    built.host, built.grpc_port, built.rest_port, built.file_system_poll_wait_seconds = "127.0.0.1", 0, 0, 0
    with running_server(**vars(built)) as server:
        assert requests.get(f"{server.rest_url}/v1/models/toolbox", timeout=10).status_code == 404
        write("half", "toolbox")
        wait_for(lambda: requests.get(f"{server.rest_url}/v1/models/toolbox", timeout=10).status_code == 200)
