"""Security: verified TLS, no secret ever shown, a server that survives abuse.

Only what tests elsewhere do not already prove (docs/reliability.md lists those):
the SDK's own grpcs:// client against the local server's TLS and mTLS port, plain
text sent to a TLS port on both transports, secrets absent from errors and logs on
every failure path, request bodies over the server's limit, and the captcha model's
REST handler fuzzed with broken image files.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import random
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from shixin_client import (
    AsyncShixinClient,
    RetryPolicy,
    ServerError,
    ShixinClient,
    ShixinConnectionError,
    ShixinError,
    Timeout,
    TLSConfig,
)
from shixin_client._spec import DEFAULT_MODEL_NAME, INPUT_BYTES, SIGNATURE_BYTES
from shixin_client.cli import main

SECRET = "s3cr3t-token-9f27"
AUTH = {"Authorization": f"Bearer {SECRET}"}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    trustme = pytest.importorskip("trustme")
    folder = tmp_path_factory.mktemp("pki")
    ca = trustme.CA()
    server = ca.issue_cert("localhost", "127.0.0.1")
    client = ca.issue_cert("client")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    client.cert_chain_pems[0].write_to_path(str(folder / "client.pem"))
    client.private_key_pem.write_to_path(str(folder / "client.key"))
    return {"ca": ca, "server": server, "dir": folder}


def _tls(pki: dict[str, Any], *, client_cert: bool = False) -> TLSConfig:
    folder: Path = pki["dir"]
    if not client_cert:
        return TLSConfig(ca_file=str(folder / "ca.pem"))
    return TLSConfig(
        ca_file=str(folder / "ca.pem"),
        cert_file=str(folder / "client.pem"),
        key_file=str(folder / "client.key"),
    )


@pytest.fixture(scope="module", params=[False, True], ids=["tls", "mtls"])
def tls_server(request: pytest.FixtureRequest, pki: dict[str, Any], model_base: Path) -> Iterator[Any]:
    """The local server's gRPC port behind TLS (client certificates required for mtls)."""
    from shixin_client.server._config_files import GrpcTls
    from shixin_client.server.testing import running_server

    server_cert = pki["server"]
    tls = GrpcTls(
        server_key=server_cert.private_key_pem.bytes().decode(),
        server_cert=server_cert.cert_chain_pems[0].bytes().decode(),
        custom_ca=pki["ca"].cert_pem.bytes().decode(),
        client_verify=bool(request.param),
    )
    with running_server(
        model_base, DEFAULT_MODEL_NAME, grpc_tls=tls, file_system_poll_wait_seconds=0
    ) as server:
        server.mutual = bool(request.param)
        yield server


def test_sdk_grpcs_client_to_the_local_tls_server(
    tls_server: Any, pki: dict[str, Any], captchas: list[bytes], oracle: Any
) -> None:
    url = f"grpcs://localhost:{tls_server.server.grpc_port}"
    with ShixinClient(url, tls=_tls(pki, client_cert=tls_server.mutual)) as client:
        assert client.recognize_many(captchas[:3]) == oracle.texts(captchas[:3])
    refused = [
        ShixinClient(url, retry=0, timeout=5),  # verification is on by default: our CA is not trusted
        ShixinClient(f"grpc://localhost:{tls_server.server.grpc_port}", retry=0, timeout=5),  # plain text
    ]
    if tls_server.mutual:
        refused.append(ShixinClient(url, tls=_tls(pki), retry=0, timeout=5))  # no client certificate
    for client in refused:
        with client, pytest.raises(ShixinConnectionError):
            client.recognize(captchas[0])


async def test_async_grpcs_client_to_the_local_tls_server(
    tls_server: Any, pki: dict[str, Any], captchas: list[bytes], oracle: Any
) -> None:
    url = f"grpcs://localhost:{tls_server.server.grpc_port}"
    async with AsyncShixinClient(url, tls=_tls(pki, client_cert=tls_server.mutual)) as client:
        assert await client.recognize(captchas[0]) == oracle.text(captchas[0])
    async with AsyncShixinClient(url, retry=0, timeout=5) as untrusted:
        with pytest.raises(ShixinConnectionError):
            await untrusted.recognize(captchas[0])


class TlsOnlyPort:
    """A loopback port that speaks only TLS and closes after the handshake: enough to refuse plain HTTP."""

    def __init__(self, pki: dict[str, Any]) -> None:
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        pki["server"].configure_cert(self.context)
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)  # so the accept loop sees close() soon
        self.port = self.sock.getsockname()[1]
        self.closing = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.closing.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            try:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1)
            except (ssl.SSLError, OSError):
                conn.close()

    def close(self) -> None:
        self.closing.set()
        self.thread.join(5)
        self.sock.close()


@pytest.mark.parametrize("twin", ["sync", "async"])
def test_plain_http_to_a_tls_port_and_https_to_a_plain_port_fail_clearly(
    twin: str, pki: dict[str, Any], server_urls: dict[str, str], captchas: list[bytes]
) -> None:
    tls_port = TlsOnlyPort(pki)
    plain_port = server_urls["rest"].rsplit(":", 1)[1]
    try:
        cases = [
            (f"http://127.0.0.1:{tls_port.port}", None),
            (f"https://127.0.0.1:{plain_port}", _tls(pki)),
        ]
        for url, tls in cases:
            error = _call(twin, url, tls, captchas[0], timeout=1)
            assert isinstance(error, ShixinConnectionError), error
            assert url.split("//")[1] in str(error)
    finally:
        tls_port.close()


def _call(twin: str, url: str, tls: TLSConfig | None, image: bytes, **options: Any) -> ShixinError:
    options = {"retry": 0, "timeout": 3, **options}
    if twin == "sync":
        with ShixinClient(url, tls=tls, **options) as client:
            try:
                client.recognize(image)
            except ShixinError as exc:
                return exc
        raise AssertionError(f"{url} answered")

    async def run() -> ShixinError:
        async with AsyncShixinClient(url, tls=tls, **options) as client:
            try:
                await client.recognize(image)
            except ShixinError as exc:
                return exc
        raise AssertionError(f"{url} answered")

    return asyncio.run(run())


def _everything_said(error: BaseException) -> str:
    """The error, its repr, and every error in its cause and context chain."""
    said = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        said += [str(current), repr(current), repr(getattr(current, "args", ""))]
        current = current.__cause__ or current.__context__
    return "\n".join(said)


@pytest.mark.parametrize("twin", ["sync", "async"])
@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_secrets_never_appear_in_errors_or_logs(
    kind: str,
    twin: str,
    http_proxy: Any,
    grpc_proxy: Any,
    captchas: list[bytes],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Refused, unavailable, timed out, not found and spoiled answers, with every logger at DEBUG."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    if kind == "rest":
        proxy, live = http_proxy, http_proxy.url.replace("http://", f"http://user:{SECRET}@")
        dead_url = f"http://user:{SECRET}@127.0.0.1:{dead}"
        faults = ["503", "slow:2", "garble"]
    else:
        proxy, live, dead_url = grpc_proxy, f"grpc://{grpc_proxy.target}", f"grpc://127.0.0.1:{dead}"
        faults = ["UNAVAILABLE", "slow:2", "garble"]
    retry = RetryPolicy(max_retries=1, initial_delay=0.01, max_delay=0.01, budget=1.0)
    said: list[str] = []
    with caplog.at_level(logging.DEBUG):
        said.append(_everything_said(_call(twin, dead_url, None, captchas[0], headers=AUTH, retry=retry)))
        for fault in faults:
            proxy.script(fault, fault)
            error = _call(twin, live, None, captchas[0], headers=AUTH, retry=retry, timeout=Timeout(0.5, 0.5))
            said.append(_everything_said(error))
        said.append(_everything_said(_call(twin, live, None, captchas[0], headers=AUTH, model="nope")))
        for client in (ShixinClient(live, headers=AUTH), ShixinClient(dead_url, headers=AUTH)):
            with client:
                said.append(f"{client!r} {client._shared.transport!r} {client.endpoint}")
    assert len(said) == 7
    for text in said:
        assert SECRET not in text, text
    assert SECRET not in caplog.text


def test_cli_never_prints_secrets_on_failures(
    tmp_path: Path, captchas: list[bytes], capsys: pytest.CaptureFixture[str], http_proxy: Any
) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(captchas[0])
    secret_url = http_proxy.url.replace("http://", f"http://user:{SECRET}@")
    runs = [
        ["recognize", str(image), "--server", secret_url, "--header", f"Authorization=Bearer {SECRET}", "-v"],
        ["status", "--server", secret_url, "--header", f"X-Api-Key={SECRET}", "-v", "--model", "nope"],
        ["recognize", str(image), "--server", "grpc://127.0.0.1:1", "--header", f"x-api-key={SECRET}", "-v"],
    ]
    http_proxy.script("503", "503", "503", "503")
    codes = [main(argv) for argv in runs]
    out, err = capsys.readouterr()
    assert codes == [1, 2, 1] or all(code != 0 for code in codes), codes
    assert SECRET not in out + err
    assert "503" in err and "nope" in err


def test_bodies_over_the_server_limit_are_refused_and_the_server_goes_on(
    model_base: Path, captchas: list[bytes], oracle: Any
) -> None:
    from shixin_client.server.testing import running_server

    with running_server(model_base, DEFAULT_MODEL_NAME, max_request_bytes=8 * 1024) as server:
        with ShixinClient(server.rest_url, retry=0) as client:
            with pytest.raises(ServerError) as caught:
                client.recognize_many(captchas * 4)  # one request of ~40 KB
            assert caught.value.http_status == 413
            assert client.recognize(captchas[0]) == oracle.text(captchas[0])
        response = requests.post(
            f"{server.rest_url}/v1/models/{DEFAULT_MODEL_NAME}:predict", data=b"[" * (1024 * 1024), timeout=30
        )
        assert response.status_code == 413 and "error" in response.json()


def _mutate(rng: random.Random, data: bytes) -> bytes:
    choice = rng.randrange(5)
    if choice == 0:
        return data[: rng.randrange(len(data))]
    if choice == 1:
        flipped = bytearray(data)
        for _ in range(rng.randrange(1, 40)):
            flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
        return bytes(flipped)
    if choice == 2:
        return rng.randbytes(rng.randrange(1, 2000))
    if choice == 3:
        return data[:8] + rng.randbytes(rng.randrange(100))  # a PNG signature and then garbage
    return b""


def test_fuzzed_image_files_to_the_captcha_model_get_4xx_and_the_server_survives(
    server_urls: dict[str, str], captchas: list[bytes], oracle: Any
) -> None:
    rng = random.Random(7)
    url = f"{server_urls['rest']}/v1/models/{DEFAULT_MODEL_NAME}:predict"
    statuses: dict[int, int] = {}
    with requests.Session() as session:
        for _ in range(60):
            files = [_mutate(rng, rng.choice(captchas)) for _ in range(rng.randrange(1, 3))]
            body: Any = {
                "signature_name": SIGNATURE_BYTES,
                "instances": [{"b64": base64.b64encode(f).decode()} for f in files],
            }
            if rng.random() < 0.2:
                body = {"signature_name": SIGNATURE_BYTES, "inputs": {INPUT_BYTES: body["instances"]}}
            response = session.post(url, data=json.dumps(body), timeout=30)
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (200, 400), response.text
            if response.status_code == 400:
                assert "error" in response.json()
    assert statuses.get(400, 0) > 0
    with ShixinClient(server_urls["rest"]) as client:
        assert client.recognize_many(captchas[:3]) == oracle.texts(captchas[:3])
