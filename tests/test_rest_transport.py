"""REST over real loopback sockets, against a small in-test server that answers like TF Serving.

:class:`FakeServing` follows docs/tf-serving-compat.md: the URL regexes of
§1.2, row-format requests and answers of §1.3-§1.5, status and metadata JSON of §1.7 and
the error texts and statuses of §1.8. Both client twins run every case (the ``kind``
fixture), plain HTTP, HTTPS (trustme) and mutual TLS.
"""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Optional
from urllib.parse import unquote

import numpy as np
import pytest
import trustme
from PIL import Image

from shixin_client import (
    DEFAULT_SPEC,
    AsyncShixinClient,
    BadResponseError,
    CaptchaSpec,
    ModelNotFoundError,
    RequestRejectedError,
    RetryPolicy,
    ShixinClient,
    ShixinConnectionError,
    ShixinTimeoutError,
    Timeout,
    TLSConfig,
)
from shixin_client._images import wire_bytes
from shixin_client._transports.mock import softmax_for
from shixin_client._transports.rest import AsyncRestTransport, RestTransport

LOOPBACK = "127.0.0.1"
# §1.2, the two regexes of http_rest_api_util.cc.
POST_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)"
)
GET_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:\/(metadata))?"
)


def png(seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    out = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, size=(70, 160, 3), dtype=np.uint8)).save(out, format="PNG")
    return out.getvalue()


IMAGES = [png(i) for i in range(3)]
TEXTS = ["ab12", "cd34", "ef56"]


class FakeServing:
    """A TF Serving REST double on a free loopback port, in a background thread.

    ``script`` holds raw answers (status, body, headers) served before normal handling;
    ``requests`` records (method, path, headers) of every request; ``delay`` slows answers.
    """

    def __init__(
        self,
        *,
        model: str = "shixin",
        versions: tuple[int, ...] = (1, 2),
        labels: Optional[dict[str, int]] = None,
        spec: Optional[CaptchaSpec] = DEFAULT_SPEC,
        answers: Optional[dict[bytes, str]] = None,
        tls: Optional[ssl.SSLContext] = None,
    ) -> None:
        self.model, self.versions = model, versions
        self.labels = labels if labels is not None else {"stable": 1}
        self.spec = spec
        self.answers = (
            answers
            if answers is not None
            else dict(zip((wire_bytes(image) for image in IMAGES), TEXTS, strict=True))
        )
        self.script: list[tuple[int, bytes, dict[str, str]]] = []
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        self.delay = 0.0
        self.truncate = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                if tls is not None:
                    self.request = tls.wrap_socket(self.request, server_side=True)
                super().setup()

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet: the tests read ``requests`` instead."""

            def do_GET(self) -> None:
                fake.handle(self, "GET")

            def do_POST(self) -> None:
                fake.handle(self, "POST")

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                """Failed TLS handshakes are part of the tests; no tracebacks on stderr."""

        self.httpd = Server((LOOPBACK, 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = f"{'https' if tls else 'http'}://{LOOPBACK}:{self.port}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    # The answering side.
    def reply(
        self, handler: BaseHTTPRequestHandler, status: int, document: Any, headers: dict[str, str]
    ) -> None:
        # §1.5 and §1.8: pretty printed JSON, Content-Type always application/json.
        body = document if isinstance(document, bytes) else json.dumps(document, indent=4).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        for key, value in headers.items():
            handler.send_header(key, value)
        handler.end_headers()
        if self.truncate:
            handler.wfile.write(body[: len(body) // 2])
            handler.close_connection = True
            return
        handler.wfile.write(body)

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        self.requests.append((method, handler.path, dict(handler.headers.items())))
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        if self.delay:
            time.sleep(self.delay)
        if self.script:
            status, raw, headers = self.script.pop(0)
            return self.reply(handler, status, raw, headers)
        status, document = self.answer(method, handler.path, body)
        self.reply(handler, status, document, {})

    def answer(self, method: str, path: str, body: bytes) -> tuple[int, Any]:
        match = (POST_PATH if method == "POST" else GET_PATH).fullmatch(path)
        if not match or (method == "POST" and match[4] != "predict"):
            return 400, {"error": f"Malformed request: {method} {path}"}
        name = unquote(match[1] or "")
        version, label = match[2], unquote(match[3]) if match[3] else None
        if method == "POST":
            try:
                request = json.loads(body)
            except ValueError:
                return 400, {"error": "JSON Parse error: Invalid value. at offset: 0"}
        if name != self.model:
            if method == "GET":
                return 404, {"error": f"Could not find any versions of model {name}"}
            return 404, {"error": f"Servable not found for request: Latest({name})"}
        if version is not None and int(version) not in self.versions:
            return 404, {"error": f"Servable not found for request: Specific({name}, {version})"}
        if label is not None and label not in self.labels and not (method == "GET" and not match[4]):
            return 400, {"error": f"Unrecognized servable version label: {label}"}
        if method == "GET":
            return 200, (self.metadata() if match[4] else self.status())
        return self.predict(request)

    def status(self) -> Any:
        return {
            "model_version_status": [
                {"version": str(v), "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}}
                for v in self.versions
            ]
        }

    def metadata(self) -> Any:
        dims = {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
        signature = {
            "inputs": {"image_bytes": {"dtype": "DT_STRING", "tensor_shape": dims, "name": "image_bytes:0"}},
            "outputs": {"out_dense": {"dtype": "DT_FLOAT", "tensor_shape": dims, "name": "Identity:0"}},
            "method_name": "tensorflow/serving/predict",
            "defaults": {},
        }
        return {
            "model_spec": {"name": self.model, "signature_name": "", "version": str(max(self.versions))},
            "metadata": {"signature_def": {"signature_def": {"serving_bytes": signature}}},
        }

    def predict(self, request: Any) -> tuple[int, Any]:
        signature = request.get("signature_name", "serving_default")
        instances = request.get("instances")
        if not isinstance(instances, list) or not instances:
            return 400, {"error": "No values in 'instances' array"}
        if signature == "describe" and self.spec is not None:
            spec = self.spec
            row = {name: getattr(spec, name) for name in ("charset", "blank_index", "label_length")}
            row.update(height=spec.height, width=spec.width, time_steps=spec.time_steps)
            return 200, {"predictions": [row for _ in instances]}
        if signature == "serving_bytes":
            texts = [self.answers.get(base64.b64decode(item["b64"]), "zzzz") for item in instances]
        elif signature == "serving_default":
            texts = ["flt0" for _ in instances]
        else:
            return 400, {"error": f'Serving signature name: "{signature}" not found in signature def'}
        return 200, {"predictions": softmax_for(texts, self.spec or DEFAULT_SPEC).tolist()}


@pytest.fixture
def serving() -> Iterator[FakeServing]:
    server = FakeServing()
    yield server
    server.stop()


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def act(value: Any) -> Any:
    return await value if asyncio.iscoroutine(value) else value


async def close(client: Any) -> None:
    await act(client.aclose() if isinstance(client, AsyncShixinClient) else client.close())


def client_of(kind: str, server: Any, **options: Any) -> Any:
    return (ShixinClient if kind == "sync" else AsyncShixinClient)(server, **options)


def dead_url() -> str:
    """A loopback port nobody listens on: connecting to it is refused at once."""
    with socket.socket() as probe:
        probe.bind((LOOPBACK, 0))
        port = probe.getsockname()[1]
    return f"http://{LOOPBACK}:{port}"


async def test_recognize_status_metadata_over_a_socket(kind: str, serving: FakeServing) -> None:
    client = client_of(kind, serving.url, headers={"Authorization": "Bearer t0ken"})
    try:
        assert await act(client.recognize_many(IMAGES)) == TEXTS
        assert await act(client.recognize(IMAGES[1], payload="tensor")) == "flt0"
        status = await act(client.status())
        assert [v.version for v in status.versions] == [1, 2] and status.ready
        meta = await act(client.metadata(version=2))
        assert meta.version == 2 and meta.signature("serving_bytes") is not None
        assert await act(client.ready())
    finally:
        await close(client)
    paths = [path for _, path, _ in serving.requests]
    assert paths[0] == "/v1/models/shixin:predict"  # describe, once, then the batch
    assert paths.count("/v1/models/shixin:predict") == 3
    assert "/v1/models/shixin/versions/2/metadata" in paths
    assert all(headers.get("Authorization") == "Bearer t0ken" for _, _, headers in serving.requests)


@pytest.mark.parametrize(
    ("options", "error", "text"),
    [
        ({"model": "nope"}, ModelNotFoundError, "Servable not found for request: Latest(nope)"),
        ({"version": 50}, ModelNotFoundError, "Specific(shixin, 50)"),
        ({"label": "canary"}, ModelNotFoundError, "Unrecognized servable version label: canary"),
        ({"signature": "nope"}, RequestRejectedError, 'Serving signature name: "nope" not found'),
    ],
)
async def test_tf_serving_errors_over_a_socket(
    kind: str, serving: FakeServing, options: dict[str, Any], error: type, text: str
) -> None:
    """§1.8's table: unknown model and version 404, unknown label 400, bad signature 400."""
    client = client_of(kind, serving.url, retry=0)
    try:
        with pytest.raises(error, match=re.escape(text)) as info:
            await act(client.recognize(IMAGES[0], **options))
    finally:
        await close(client)
    assert info.value.endpoint == serving.url


async def test_malformed_json_is_a_rejected_request(kind: str, serving: FakeServing) -> None:
    """§1.8: malformed JSON is 400 even before the model is looked up."""
    transport = (RestTransport if kind == "sync" else AsyncRestTransport)([serving.url])
    try:
        with pytest.raises(RequestRejectedError, match="JSON Parse error"):
            await act(
                transport._send("POST", lambda b: f"{b}/v1/models/nope:predict", b"{not", Timeout(2.0, 2.0))
            )
    finally:
        await act(transport.aclose() if isinstance(transport, AsyncRestTransport) else transport.close())


async def test_503_with_retry_after_is_retried(kind: str, serving: FakeServing) -> None:
    serving.script.append((503, b'{"error": "Servable not available"}', {"Retry-After": "0"}))
    serving.script.append((429, b"<html>slow down</html>", {"Retry-After": "0"}))
    client = client_of(
        kind, serving.url, retry=RetryPolicy(max_retries=2, initial_delay=0.01, max_delay=0.05)
    )
    try:
        assert (await act(client.status())).ready
    finally:
        await close(client)
    assert len(serving.requests) == 3


async def test_400_is_not_retried(kind: str, serving: FakeServing) -> None:
    serving.script.append((400, b'{"error": "JSON Parse error: The document is empty"}', {}))
    client = client_of(
        kind, serving.url, retry=RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.05)
    )
    try:
        with pytest.raises(RequestRejectedError):
            await act(client.status())
    finally:
        await close(client)
    assert len(serving.requests) == 1


async def test_refused_connection(kind: str) -> None:
    client = client_of(kind, dead_url(), retry=RetryPolicy(max_retries=1, initial_delay=0.01, max_delay=0.01))
    try:
        with pytest.raises(ShixinConnectionError) as info:
            await act(client.status())
    finally:
        await close(client)
    assert not isinstance(info.value, ShixinTimeoutError) and info.value.__cause__ is not None


async def test_read_timeout_is_a_timeout_and_not_retried(kind: str, serving: FakeServing) -> None:
    serving.delay = 0.5
    client = client_of(kind, serving.url, timeout=(1.0, 0.1))
    try:
        with pytest.raises(ShixinTimeoutError):
            await act(client.status())
    finally:
        await close(client)
    assert len(serving.requests) == 1


async def test_truncated_body_is_a_bad_response(kind: str, serving: FakeServing) -> None:
    serving.truncate = True
    client = client_of(kind, serving.url, retry=0)
    try:
        with pytest.raises(BadResponseError):
            await act(client.status())
    finally:
        await close(client)


async def test_replicas_rotate_and_fail_over(kind: str) -> None:
    first, second = FakeServing(), FakeServing()
    try:
        client = client_of(kind, [first.url, dead_url(), second.url], retry=0)
        try:
            for _ in range(6):
                assert (await act(client.status())).ready
        finally:
            await close(client)
        # The dead replica's turns fall over to the next live one: 6 answers, none lost.
        assert len(first.requests) + len(second.requests) == 6
        assert len(first.requests) >= 2 and len(second.requests) >= 2
    finally:
        first.stop()
        second.stop()


# HTTPS and mutual TLS, with certificates from trustme.


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    ca = trustme.CA()
    folder = tmp_path_factory.mktemp("pki")
    server_cert = ca.issue_cert(LOOPBACK)
    client_cert = ca.issue_cert("client.example")
    ca.cert_pem.write_to_path(str(folder / "ca.pem"))
    client_cert.cert_chain_pems[0].write_to_path(str(folder / "client.pem"))
    client_cert.private_key_pem.write_to_path(str(folder / "client.key"))
    return {"ca": ca, "server": server_cert, "dir": folder}


def server_context(pki: dict[str, Any], *, require_client_cert: bool) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    pki["server"].configure_cert(context)
    if require_client_cert:
        context.verify_mode = ssl.CERT_REQUIRED
        pki["ca"].configure_trust(context)
    return context


async def test_https_verifies_the_server(kind: str, pki: dict[str, Any]) -> None:
    server = FakeServing(tls=server_context(pki, require_client_cert=False))
    folder: Path = pki["dir"]
    try:
        client = client_of(kind, server.url, tls=TLSConfig(ca_file=str(folder / "ca.pem")))
        try:
            assert await act(client.recognize(IMAGES[0])) == TEXTS[0]
        finally:
            await close(client)
        untrusted = client_of(kind, server.url, retry=0)
        try:
            with pytest.raises(ShixinConnectionError):
                await act(untrusted.status())
        finally:
            await close(untrusted)
    finally:
        server.stop()


async def test_mutual_tls(kind: str, pki: dict[str, Any]) -> None:
    server = FakeServing(tls=server_context(pki, require_client_cert=True))
    folder: Path = pki["dir"]
    try:
        tls = TLSConfig(
            ca_file=str(folder / "ca.pem"),
            cert_file=str(folder / "client.pem"),
            key_file=str(folder / "client.key"),
        )
        client = client_of(kind, server.url, tls=tls)
        try:
            assert (await act(client.status())).ready
        finally:
            await close(client)
        no_cert = client_of(kind, server.url, tls=TLSConfig(ca_file=str(folder / "ca.pem")), retry=0)
        try:
            with pytest.raises(ShixinConnectionError):
                await act(no_cert.status())
        finally:
            await close(no_cert)
    finally:
        server.stop()


def test_tls_settings_rest_cannot_honour_are_refused(pki: dict[str, Any]) -> None:
    ca_file = str(pki["dir"] / "ca.pem")
    with pytest.raises(ValueError, match="https"):
        ShixinClient("http://127.0.0.1:1", tls=TLSConfig(ca_file=ca_file))
    with pytest.raises(ValueError, match="server_name"):
        ShixinClient("https://127.0.0.1:1", tls=TLSConfig(ca_file=ca_file, server_name="other.example"))


def test_one_session_serves_many_threads(serving: FakeServing) -> None:
    """One client, one pool, shared by threads: every answer pairs with its own image."""
    client = ShixinClient(serving.url)
    results: dict[int, list[str]] = {}

    def work(n: int) -> None:
        order = [(n + i) % 3 for i in range(3)]
        results[n] = [client.recognize(IMAGES[i]) for i in order]

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    client.close()
    for n, texts in results.items():
        assert texts == [TEXTS[(n + i) % 3] for i in range(3)]


def test_every_request_keeps_headers_auth_and_cookies(serving: FakeServing) -> None:
    """Custom headers and basic auth from the URL go with every request; a sticky load
    balancer's cookie set on one answer is sent with the next ones, and not before."""
    url = serving.url.replace("://", "://user:pw@")
    with ShixinClient(url, headers={"X-Tenant": "t1"}) as client:
        first = client.recognize(IMAGES[0])
        serving.script.append((200, b'{"model_version_status": []}', {"Set-Cookie": "lb=node7; Path=/"}))
        client.status()
        assert [client.recognize(IMAGES[1]), client.recognize(IMAGES[0])] == [TEXTS[1], first]
    predicts = [headers for method, _, headers in serving.requests if method == "POST"]
    assert len(predicts) >= 3
    for headers in predicts:
        assert headers["X-Tenant"] == "t1" and headers["Authorization"].startswith("Basic ")
        assert headers["Content-Type"] == "application/json"
    assert "lb=node7" not in predicts[0].get("Cookie", "")
    assert all(headers.get("Cookie") == "lb=node7" for headers in predicts[-2:])
