"""``python -m benchmarks._canned``: a REST + gRPC stand-in for TF Serving with fixed answers, in a child.

Rows 3 and 4 measure the client alone: this server answers every predict at once
with the same softmax (one that decodes to :data:`TEXT`) and the ``describe`` answer,
and records the size of every predict request it receives, as it arrived on the socket.
Running in its own process keeps its CPU time out of the client's ``process_time``.
REST bodies are written as TF Serving writes them (``%g``, or ``%.9g`` where six digits
do not round-trip: docs/tf-serving-compat.md §1.4), not as Python's 17-digit ``repr``.
It prints one JSON line with its addresses and serves until its standard input closes.
"""

from __future__ import annotations

import json
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
import numpy as np

from shixin_client._proto import predict_pb2
from shixin_client._spec import DEFAULT_SPEC, OUTPUT_SOFTMAX, SIGNATURE_DESCRIBE, SIGNATURE_FLOAT
from shixin_client._transports._grpc_codec import ndarray_to_tensor_proto
from shixin_client._transports.local import describe_outputs
from shixin_client._transports.mock import softmax_for
from shixin_client.server._json_tensor import predict_response

TEXT = "ab12"
SIZES_PATH = "/sizes"
_SIZES: dict[str, list[int]] = {"rest": [], "grpc": []}
_LOCK = threading.Lock()


def answer(signature: str, rows: int) -> dict[str, np.ndarray]:
    if signature == SIGNATURE_DESCRIBE:
        return describe_outputs(DEFAULT_SPEC, rows)
    return {OUTPUT_SOFTMAX: softmax_for([TEXT] * rows, DEFAULT_SPEC)}


def _record(kind: str, size: int) -> None:
    with _LOCK:
        _SIZES[kind].append(size)


class _Rest(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: one line per request would swamp the benchmark's output."""

    def _reply(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        with _LOCK:
            self._reply(json.dumps(_SIZES).encode())

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = json.loads(body)
        signature = request.get("signature_name", SIGNATURE_FLOAT)
        rows = len(request["instances"])
        if signature != SIGNATURE_DESCRIBE:
            _record("rest", len(body))
        outputs = answer(signature, rows)
        self._reply(predict_response(outputs, row_format=True))


def _predict(raw: bytes, context: grpc.ServicerContext) -> bytes:
    request = predict_pb2.PredictRequest.FromString(raw)
    signature = request.model_spec.signature_name
    rows = next(iter(request.inputs.values())).tensor_shape.dim[0].size
    if signature != SIGNATURE_DESCRIBE:
        _record("grpc", len(raw))
    response = predict_pb2.PredictResponse()
    response.model_spec.CopyFrom(request.model_spec)
    for name, array in answer(signature, rows).items():
        response.outputs[name].CopyFrom(ndarray_to_tensor_proto(array, name))
    return response.SerializeToString()


def main() -> int:
    rest = ThreadingHTTPServer(("127.0.0.1", 0), _Rest)
    threading.Thread(target=rest.serve_forever, daemon=True).start()
    server = grpc.server(ThreadPoolExecutor(max_workers=4))
    handler = grpc.method_handlers_generic_handler(
        "tensorflow.serving.PredictionService", {"Predict": grpc.unary_unary_rpc_method_handler(_predict)}
    )
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(
        json.dumps({"rest": f"http://127.0.0.1:{rest.server_port}", "grpc": f"127.0.0.1:{port}"}), flush=True
    )
    sys.stdin.read()
    server.stop(0)
    rest.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
