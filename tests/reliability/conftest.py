"""One input-sensitive model, served once per session, and an oracle that says what it reads.

The shipped network, untrained, reads the same text from every image, so "never a wrong
string" could not fail with it. These tests serve a tiny linear CTC model instead
(each of the 40 time steps sees its own 4 pixel columns) with random weights: every
captcha gets its own text, a swapped or shifted answer shows at once, and numpy can
compute the same softmax without TensorFlow. The oracle's text for one image alone is
the truth every result is compared to.
"""

from __future__ import annotations

import asyncio
import json
import random
import threading
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shixin_client import (
    DEFAULT_SPEC,
    MockRequest,
    MockTransport,
    RequestRejectedError,
    ShixinClient,
    decode_softmax,
)
from shixin_client._images import preprocess
from shixin_client._models import ModelStatus, VersionStatus
from shixin_client._spec import DEFAULT_MODEL_NAME, INPUT_BYTES, INPUT_FLOAT, OUTPUT_SOFTMAX
from shixin_client.protocol import HTTP_STATUS_BY_CODE

MODEL_NAME = DEFAULT_MODEL_NAME
SPEC = DEFAULT_SPEC
COLUMNS_PER_STEP = SPEC.width // SPEC.time_steps
FEATURES = SPEC.height * COLUMNS_PER_STEP


@dataclass(frozen=True)
class Oracle:
    """The served model's weights, applied in numpy: the text any image should get."""

    kernel: np.ndarray  # [FEATURES, classes]
    bias: np.ndarray  # [classes]

    def softmax(self, batch: np.ndarray) -> np.ndarray:
        """[N, H, W, 1] in {0, 1} -> [N, T, C], laid out as the Keras model's Permute+Reshape."""
        steps = batch.transpose(0, 2, 1, 3).reshape(len(batch), SPEC.time_steps, FEATURES)
        logits = steps @ self.kernel + self.bias
        logits -= logits.max(axis=-1, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)

    def texts(self, images: list[Any]) -> list[str]:
        batch = np.stack([preprocess(image) for image in images])
        return [p.text for p in decode_softmax(self.softmax(batch), SPEC)]

    def text(self, image: Any) -> str:
        return self.texts([image])[0]

    def answer(self, request: MockRequest) -> Any:
        """A MockTransport handler that plays the served model for both image signatures."""
        if request.kind == "status":
            return ModelStatus(MODEL_NAME, (VersionStatus(1, "AVAILABLE"),))
        if INPUT_FLOAT in request.inputs:
            batch = request.inputs[INPUT_FLOAT]
        elif INPUT_BYTES in request.inputs:
            batch = np.stack([preprocess(bytes(data)) for data in request.inputs[INPUT_BYTES]])
        else:
            raise RequestRejectedError("no describe signature in the mock", code="INVALID_ARGUMENT")
        return {OUTPUT_SOFTMAX: self.softmax(batch)}


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    rng = np.random.default_rng(2024)
    kernel = rng.normal(0.0, 1.0, size=(FEATURES, SPEC.num_classes)).astype(np.float32)
    kernel -= kernel.mean(axis=0)  # white background pixels are 1: only the strokes should count
    bias = np.zeros(SPEC.num_classes, dtype=np.float32)
    bias[SPEC.blank_index] = 2.0  # some blank frames, so texts have gaps as a real CTC output does
    return Oracle(kernel, bias)


#: How far over the client's default min_confidence the oracle must read a captcha for it to
#: be one of :func:`captchas`: TensorFlow's arithmetic may differ from numpy's in the last digits.
CONFIDENCE_MARGIN = 0.01


@pytest.fixture(scope="session")
def captchas(oracle: Oracle) -> list[bytes]:
    """Sixteen generated captchas as PNG files, all with different texts under the oracle, each
    read over the default min_confidence, so that every client reads them with its defaults
    (the untrained oracle is unsure of some captchas: tests/reliability/test_parity.py
    rejects those on purpose)."""
    from training.generator import generate, png_bytes

    files = [png_bytes(captcha) for captcha in generate(seed=77, count=160)]
    batch = np.stack([preprocess(image) for image in files])
    threshold = ShixinClient(transport=MockTransport(oracle.answer)).min_confidence + CONFIDENCE_MARGIN
    chosen: dict[str, bytes] = {}
    for image, prediction in zip(files, decode_softmax(oracle.softmax(batch), SPEC), strict=True):
        if prediction.confidence >= threshold:
            chosen.setdefault(prediction.text, image)
    assert len(chosen) >= 16, f"only {len(chosen)} captchas read confidently; generate more"
    return list(chosen.values())[:16]


@pytest.fixture(scope="session")
def oracle_model(oracle: Oracle) -> Any:
    """The oracle's weights as a Keras model (the export input)."""
    keras = pytest.importorskip("keras")
    from keras import layers

    image = keras.Input((SPEC.height, SPEC.width, 1), name=INPUT_FLOAT)
    steps = layers.Reshape((SPEC.time_steps, FEATURES))(layers.Permute((2, 1, 3))(image))
    logits = layers.Dense(SPEC.num_classes, name="logits")(steps)
    softmax = layers.Activation("softmax", name=OUTPUT_SOFTMAX)(logits)
    model = keras.Model(image, softmax)
    model.get_layer("logits").set_weights([oracle.kernel, oracle.bias])
    return model


@pytest.fixture(scope="session")
def model_base(tmp_path_factory: pytest.TempPathFactory, oracle_model: Any) -> Path:
    """The oracle model exported once with all three signatures."""
    from export.saved_model import export_model

    base = tmp_path_factory.mktemp("reliability_models")
    export_model(oracle_model, base, MODEL_NAME, version=1)
    return base / MODEL_NAME


@pytest.fixture(scope="session")
def server(model_base: Path) -> Iterator[Any]:
    """The project's dev server on free loopback ports, shared by the whole package."""
    from shixin_client.server.testing import running_server

    with running_server(model_base, MODEL_NAME) as running:
        yield running


@pytest.fixture(scope="session")
def server_urls(server: Any) -> dict[str, str]:
    return {"rest": server.rest_url, "grpc": f"grpc://{server.grpc_target}"}


@pytest.fixture
def mock_client(oracle: Oracle) -> Iterator[ShixinClient]:
    with ShixinClient(transport=MockTransport(oracle.answer)) as client:
        yield client


class FaultyHttpProxy:
    """An HTTP/1.1 proxy on loopback that spoils answers on a script, one fault per request.

    Faults: ``pass``, ``503``/``429`` (answered by the proxy, never reaching the model),
    ``status:CODE`` (TF Serving's answer for that status name: its HTTP status and an error
    body), ``reset`` (connection dropped after the request arrived), ``slow:S`` (S seconds
    before forwarding: a stall before the headers), ``stall_body:S`` (the headers and half
    the body, then S seconds of silence, then the rest), ``trickle`` (the real answer 64
    bytes every 50 ms), ``truncate`` (half the body, then the connection closes),
    ``garble`` (random bytes of the right length), ``non_json`` (an HTML page with status
    200) and ``drop_prediction`` (the last row removed).
    """

    def __init__(self, upstream_url: str) -> None:
        parts = upstream_url.split("://", 1)[1].split(":")
        self._upstream = (parts[0], int(parts[1]))
        self.faults: deque[str] = deque()
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._main, args=(started,), daemon=True)
        self._thread.start()
        started.wait(10)
        self.url = f"http://127.0.0.1:{self._port}"

    def script(self, *faults: str) -> None:
        self.faults.clear()
        self.faults.extend(faults)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(10)

    def _main(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._serve(started))
        self._loop.close()

    async def _serve(self, started: threading.Event) -> None:
        self._stopping = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        self._port = server.sockets[0].getsockname()[1]
        started.set()
        await self._stopping.wait()
        server.close()
        pending = asyncio.all_tasks() - {asyncio.current_task()}
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # the client went away, or the proxy is stopping
        finally:
            writer.close()

    async def _one_request(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        body = await reader.readexactly(_content_length(head))
        fault = self.faults.popleft() if self.faults else "pass"
        self.requests += 1
        if fault == "reset":
            writer.transport.abort()
            return False
        if fault in ("503", "429") or fault.startswith("status:"):
            status = fault if fault in ("503", "429") else str(HTTP_STATUS_BY_CODE[fault.split(":")[1]])
            error = json.dumps({"error": f"injected {fault}"}).encode()
            writer.write(_response_head(f"{status} Injected", "application/json", len(error)) + error)
            await writer.drain()
            return True
        if fault.startswith("slow:"):
            await asyncio.sleep(float(fault.split(":")[1]))
        status, content = await self._forward(head, body)
        if fault == "garble":
            content = random.Random(len(content)).randbytes(len(content))
        elif fault == "non_json":
            status, content = "200 OK", b"<html><body><h1>502 Bad Gateway</h1></body></html>"
        elif fault == "drop_prediction":
            document = json.loads(content)
            document["predictions"] = document["predictions"][:-1]
            content = json.dumps(document).encode()
        writer.write(_response_head(status, "application/json", len(content)))
        if fault == "truncate":
            writer.write(content[: len(content) // 2])
            await writer.drain()
            writer.transport.abort()
            return False
        if fault.startswith("stall_body:"):
            writer.write(content[: len(content) // 2])
            await writer.drain()
            await asyncio.sleep(float(fault.split(":")[1]))
            writer.write(content[len(content) // 2 :])
            await writer.drain()
            return True
        if fault == "trickle":
            for index in range(0, len(content), 64):
                writer.write(content[index : index + 64])
                await writer.drain()
                await asyncio.sleep(0.05)
            return True
        writer.write(content)
        await writer.drain()
        return True

    async def _forward(self, head: bytes, body: bytes) -> tuple[str, bytes]:
        reader, writer = await asyncio.open_connection(*self._upstream)
        try:
            writer.write(head + body)
            await writer.drain()
            answer_head = await reader.readuntil(b"\r\n\r\n")
            content = await reader.readexactly(_content_length(answer_head))
        finally:
            writer.close()
        return answer_head.split(b"\r\n", 1)[0].decode().split(" ", 1)[1], content


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def _response_head(status: str, content_type: str, length: int) -> bytes:
    return f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n".encode()


@pytest.fixture
def http_proxy(server: Any) -> Iterator[FaultyHttpProxy]:
    proxy = FaultyHttpProxy(server.rest_url)
    yield proxy
    proxy.stop()


class FaultyGrpcProxy:
    """A gRPC proxy on loopback that forwards raw bytes, or fails a call on a script.

    Faults: ``pass``, a status name (``UNAVAILABLE``, ``RESOURCE_EXHAUSTED``,
    ``DEADLINE_EXCEEDED``...) the proxy answers with, ``slow:S``, ``garble`` (random
    response bytes) and ``drop_prediction`` (the softmax's last row removed).
    """

    def __init__(self, upstream_target: str) -> None:
        import grpc

        self._grpc = grpc
        self.faults: deque[str] = deque()
        self.requests = 0
        self._lock = threading.Lock()
        self._channel = grpc.insecure_channel(upstream_target)
        self._server = grpc.server(ThreadPoolExecutor(max_workers=8))
        self._server.add_generic_rpc_handlers([self._Handler(self)])
        self._port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.target = f"127.0.0.1:{self._port}"

    def script(self, *faults: str) -> None:
        with self._lock:
            self.faults.clear()
            self.faults.extend(faults)

    def stop(self) -> None:
        self._server.stop(0).wait()
        self._channel.close()

    class _Handler:
        def __init__(self, proxy: FaultyGrpcProxy) -> None:
            self.proxy = proxy

        def service(self, details: Any) -> Any:
            proxy = self.proxy

            def call(request: bytes, context: Any) -> bytes:
                return proxy._call(details.method, request, context)

            return proxy._grpc.unary_unary_rpc_method_handler(call)

    def _call(self, method: str, request: bytes, context: Any) -> bytes:
        grpc = self._grpc
        with self._lock:
            fault = self.faults.popleft() if self.faults else "pass"
            self.requests += 1
        if fault.startswith("slow:"):
            time.sleep(float(fault.split(":")[1]))
        elif fault not in ("pass", "garble", "drop_prediction"):
            context.abort(getattr(grpc.StatusCode, fault), f"injected {fault}")
        remaining = context.time_remaining()
        forward = self._channel.unary_unary(method)
        try:
            answer: bytes = forward(request, timeout=remaining, metadata=context.invocation_metadata())
        except grpc.RpcError as exc:
            context.abort(exc.code(), exc.details())
        if fault == "garble":
            return random.Random(len(answer)).randbytes(len(answer))
        if fault == "drop_prediction":
            from tensorflow_serving.apis import predict_pb2

            response = predict_pb2.PredictResponse.FromString(answer)
            tensor = response.outputs[OUTPUT_SOFTMAX]
            rows = tensor.tensor_shape.dim[0].size
            tensor.tensor_shape.dim[0].size = rows - 1
            content = tensor.tensor_content
            if content:
                tensor.tensor_content = content[: len(content) * (rows - 1) // rows]
            else:
                del tensor.float_val[len(tensor.float_val) * (rows - 1) // rows :]
            return response.SerializeToString()
        return answer


@pytest.fixture
def grpc_proxy(server: Any) -> Iterator[FaultyGrpcProxy]:
    proxy = FaultyGrpcProxy(server.grpc_target)
    yield proxy
    proxy.stop()
