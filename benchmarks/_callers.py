"""``python -m benchmarks._callers``: the sides of rows 5 and 6, timed in a worker process.

Each side is one way of reading a captcha file to text through a server, one image per
call, or the model called in-process (the limit no server reaches):

- ``ours``: ``ShixinClient(url).recognize(path)``, REST or ``grpc://``.
- ``reference-rest``: the reference project's flow: the project's preprocessing to floats,
  ``requests.post(url, json={"instances": floats.tolist()})``, then Keras ``ctc_decode``
  (greedy) on ``predictions``.
- ``reference-grpc``: ``tensorflow-serving-api``'s ``PredictionServiceStub`` with
  ``tf.make_tensor_proto(floats)``, then ``tf.make_ndarray`` and Keras ``ctc_decode``.
- ``in-process``: the exported SavedModel's ``serving_bytes`` signature on the file's bytes.

The harness runs our side in a process that never imports TensorFlow (as a user's
scraper would) and the TensorFlow sides in another, so neither side's imports or
thread pools sit in the other's process. The first stdin line is the job (the sides and
the image files); each further line is a command (``{"side", "op": "warm" | "latency" |
"throughput", ...}``) answered by one JSON line on stdout. :class:`Callers` is the
harness end.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from ._context import QUIET_TF, ROOT

OURS = "ours"
REFERENCE_REST = "reference-rest"
REFERENCE_GRPC = "reference-grpc"
IN_PROCESS = "in-process"
#: The sides that import TensorFlow (and Keras) to run.
TENSORFLOW_SIDES = (REFERENCE_REST, REFERENCE_GRPC, IN_PROCESS)
#: The reference gRPC flow's deadline per call, as its examples pass one.
REFERENCE_TIMEOUT_S = 30.0

Recognize = Callable[[str], object]


def keras_greedy_text(softmax: Any) -> str:
    """The reference decode: Keras ``ctc_decode`` (greedy) of one softmax row, then the charset."""
    import keras
    import numpy as np

    from shixin_client._spec import DEFAULT_SPEC

    spec = DEFAULT_SPEC
    probabilities = np.asarray(softmax, dtype=np.float32)
    decoded, _ = keras.ops.ctc_decode(
        probabilities,
        np.full(len(probabilities), probabilities.shape[1]),
        strategy="greedy",
        mask_index=spec.blank_index,
    )
    return "".join(spec.class_to_char(int(c)) for c in np.asarray(decoded)[0, 0] if c >= 0)


def _ours(target: str) -> Recognize:
    from shixin_client import LowConfidenceError, ShixinClient

    client = ShixinClient(target)

    def recognize(path: str) -> str:
        """A user's call: the text, or the reading the reject option refused (the same work)."""
        try:
            return client.recognize(path)
        except LowConfidenceError as rejected:
            return rejected.text

    return recognize


def _reference_rest(rest_url: str) -> Recognize:
    import requests

    from shixin_client import ModelRef
    from shixin_client._images import preprocess
    from shixin_client._spec import DEFAULT_MODEL_NAME
    from shixin_client._transports._rest_codec import predict_url

    url = predict_url(rest_url, ModelRef(DEFAULT_MODEL_NAME))

    def recognize(path: str) -> str:
        floats = preprocess(path)[None]
        response = requests.post(url, json={"instances": floats.tolist()})
        response.raise_for_status()
        return keras_greedy_text(response.json()["predictions"])

    return recognize


def _reference_grpc(target: str) -> Recognize:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    from shixin_client._images import preprocess
    from shixin_client._spec import DEFAULT_MODEL_NAME, INPUT_FLOAT, OUTPUT_SOFTMAX, SIGNATURE_FLOAT

    stub = prediction_service_pb2_grpc.PredictionServiceStub(grpc.insecure_channel(target))

    def recognize(path: str) -> str:
        request = predict_pb2.PredictRequest()
        request.model_spec.name = DEFAULT_MODEL_NAME
        request.model_spec.signature_name = SIGNATURE_FLOAT
        request.inputs[INPUT_FLOAT].CopyFrom(tf.make_tensor_proto(preprocess(path)[None]))
        response = stub.Predict(request, REFERENCE_TIMEOUT_S)
        return keras_greedy_text(tf.make_ndarray(response.outputs[OUTPUT_SOFTMAX]))

    return recognize


class _InProcess:
    """The SavedModel's ``serving_bytes`` on a batch of files: softmax out, no text."""

    def __init__(self, version_dir: str) -> None:
        import tensorflow as tf

        from shixin_client._spec import SIGNATURE_BYTES

        self._tf = tf
        self._loaded = tf.saved_model.load(version_dir)  # its signatures need it alive
        self._signature = self._loaded.signatures[SIGNATURE_BYTES]

    def __call__(self, paths: Sequence[str]) -> object:
        from shixin_client._spec import INPUT_BYTES, OUTPUT_SOFTMAX

        data = [Path(path).read_bytes() for path in paths]
        return self._signature(**{INPUT_BYTES: self._tf.constant(data)})[OUTPUT_SOFTMAX].numpy()


class _Side:
    """One side's calls over the job's files, round and round."""

    def __init__(self, kind: str, address: str, paths: Sequence[str]) -> None:
        self.paths = list(paths)
        self._next = 0
        self._batch: Callable[[Sequence[str]], object] | None = None
        self._one: Recognize | None = None
        if kind == IN_PROCESS:
            self._batch = _InProcess(address)
        else:
            makers = {OURS: _ours, REFERENCE_REST: _reference_rest, REFERENCE_GRPC: _reference_grpc}
            self._one = makers[kind](address)

    def _path(self, index: int | None = None) -> str:
        if index is None:
            index, self._next = self._next, self._next + 1
        return self.paths[index % len(self.paths)]

    def call(self, index: int | None = None) -> None:
        if self._one is not None:
            self._one(self._path(index))
        else:
            assert self._batch is not None
            self._batch([self._path(index)])

    def latency(self, calls: int) -> list[float]:
        """Wall seconds of each of ``calls`` single-image calls."""
        seconds = []
        for _ in range(calls):
            start = time.perf_counter()
            self.call()
            seconds.append(time.perf_counter() - start)
        return seconds

    def throughput(self, threads: int, per_thread: int) -> float:
        """Wall seconds for ``threads * per_thread`` images: that many callers of one image each time,
        or, in-process, batches of ``threads`` images (the batch a batching server would form)."""
        total = threads * per_thread
        start = time.perf_counter()
        if self._batch is not None:
            for first in range(0, total, threads):
                self._batch([self._path(i) for i in range(first, first + threads)])
        else:

            def caller(index: int) -> None:
                for i in range(per_thread):
                    self.call(index * per_thread + i)

            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(caller, range(threads)))
        return time.perf_counter() - start


def _answer(sides: Mapping[str, _Side], command: dict[str, Any]) -> dict[str, Any]:
    side = sides[command["side"]]
    if command["op"] == "warm":
        for _ in range(command["calls"]):
            side.call()
        if command.get("threads"):
            side.throughput(command["threads"], 1)
        return {}
    if command["op"] == "latency":
        return {"seconds": side.latency(command["calls"])}
    if command["op"] == "throughput":
        return {"seconds": side.throughput(command["threads"], command["per_thread"])}
    raise ValueError(f"unknown op {command['op']!r}")


def main() -> int:
    job = json.loads(sys.stdin.readline())
    try:
        sides = {name: _Side(kind, address, job["paths"]) for name, (kind, address) in job["sides"].items()}
    except Exception:
        print(json.dumps({"error": traceback.format_exc()}), flush=True)
        return 1
    print(json.dumps({"ready": sorted(sides)}), flush=True)
    for line in sys.stdin:
        try:
            reply = _answer(sides, json.loads(line))
        except Exception:
            reply = {"error": traceback.format_exc()}
        print(json.dumps(reply), flush=True)
    if "tensorflow" in sys.modules and not set(job["kinds"]) & set(TENSORFLOW_SIDES):
        print(json.dumps({"error": "our client's process imported TensorFlow"}), flush=True)
        return 1
    return 0


class Callers:
    """A worker process holding ``sides`` (name -> (kind, address)) over ``paths``; ``close()`` ends it."""

    def __init__(self, sides: Mapping[str, tuple[str, str]], paths: Sequence[str]) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", __name__],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **QUIET_TF},
        )
        kinds = sorted({kind for kind, _ in sides.values()})
        self._send({"sides": dict(sides), "paths": list(paths), "kinds": kinds})

    def _send(self, message: Mapping[str, Any]) -> dict[str, Any]:
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.write(json.dumps(message) + "\n")
        self._process.stdin.flush()
        line = self._process.stdout.readline()
        if not line:
            raise RuntimeError(f"{__name__} exited with {self._process.wait()} (its stderr is above)")
        reply: dict[str, Any] = json.loads(line)
        if "error" in reply:
            raise RuntimeError(f"{__name__}: {reply['error']}")
        return reply

    def warm(self, side: str, calls: int, threads: int = 0) -> None:
        """``calls`` single calls (connections, the spec, the first ops), then one call per thread."""
        self._send({"side": side, "op": "warm", "calls": calls, "threads": threads})

    def latency(self, side: str, calls: int) -> list[float]:
        seconds: list[float] = self._send({"side": side, "op": "latency", "calls": calls})["seconds"]
        return seconds

    def throughput(self, side: str, threads: int, per_thread: int) -> float:
        reply = self._send({"side": side, "op": "throughput", "threads": threads, "per_thread": per_thread})
        return float(reply["seconds"])

    def close(self) -> None:
        """Close stdin: the worker checks its imports and exits; a failed check raises here."""
        assert self._process.stdin is not None and self._process.stdout is not None
        self._process.stdin.close()
        tail = self._process.stdout.read()
        code = self._process.wait()
        if code != 0:
            raise RuntimeError(f"{__name__} exited with {code}: {tail.strip()[-2000:]}")

    def __enter__(self) -> Callers:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if exc_info[0] is None:
            self.close()
        else:
            self._process.kill()
            self._process.wait()


if __name__ == "__main__":
    sys.exit(main())
