"""Running a signature: input validation, TF error mapping, and optional request batching.

Inputs are checked against the signature before TensorFlow sees them, so a bad request
gets a TF Serving-style message instead of a Python traceback. The batcher merges
concurrent requests for the same model version and signature along dim 0, runs them
as one call, and hands each caller its own rows back in order (--enable_batching).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

from shixin_client._spec import SIGNATURE_FLOAT

from ._config_files import BatchingOptions
from ._json_tensor import dtype_name
from ._repository import LoadedVersion
from ._status import ServingError, invalid_argument, tf_error_code_name

#: TF Serving's warm-up file inside a version directory, and its record limit.
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
MAX_WARMUP_RECORDS = 1000


@dataclass(frozen=True)
class Signature:
    """A signature of a loaded version: what validation needs and the graph tensors it names."""

    loaded: LoadedVersion
    name: str
    input_specs: dict[str, tf.TensorSpec]
    #: alias -> graph tensor name ("the_input:0"), as Session::Run takes them.
    input_tensors: dict[str, str]
    output_tensors: dict[str, str]

    @property
    def output_names(self) -> tuple[str, ...]:
        return tuple(sorted(self.output_tensors))

    @property
    def input_dtypes(self) -> dict[str, int]:
        return {alias: spec.dtype.as_datatype_enum for alias, spec in self.input_specs.items()}


def find_signature(loaded: LoadedVersion, name: str) -> Signature | None:
    if name not in loaded.signature_defs.signature_def:
        return None
    signature_def = loaded.signature_defs.signature_def[name]
    input_specs = {
        alias: tf.TensorSpec(tf.TensorShape(info.tensor_shape), tf.as_dtype(info.dtype), name=alias)
        for alias, info in signature_def.inputs.items()
    }
    return Signature(
        loaded,
        name,
        input_specs,
        {alias: info.name for alias, info in signature_def.inputs.items()},
        {alias: info.name for alias, info in signature_def.outputs.items()},
    )


def check_inputs(signature: Signature, inputs: Mapping[str, np.ndarray], dtypes: Mapping[str, int]) -> None:
    """Dtype and shape against the signature; ``dtypes`` are what the client declared."""
    for index, alias in enumerate(sorted(signature.input_specs)):
        spec = signature.input_specs[alias]
        declared = dtypes[alias]
        if declared != spec.dtype.as_datatype_enum:
            raise invalid_argument(
                f"Expects arg[{index}] to be {dtype_name(spec.dtype.as_datatype_enum)} but "
                f"{dtype_name(declared)} is provided"
            )
        shape = inputs[alias].shape
        if not spec.shape.is_compatible_with(shape):
            expected = "[" + ",".join("-1" if dim is None else str(dim) for dim in spec.shape.as_list()) + "]"
            got = "[" + ",".join(str(dim) for dim in shape) + "]"
            raise invalid_argument(
                f"Input {alias} of signature {signature.name} has shape {got}, which does not match the "
                f"signature's shape {expected}"
            )


def _set_text(names: Iterable[str]) -> str:
    return "{" + ",".join(sorted(names)) + "}"


def read_predict_request(
    loaded: LoadedVersion, request: predict_pb2.PredictRequest
) -> tuple[Signature, dict[str, np.ndarray]]:
    """A gRPC PredictRequest (or a warm-up record) checked the way predict_util.cc checks it (§1.8, §2)."""
    signature_name = request.model_spec.signature_name or SIGNATURE_FLOAT
    signature = find_signature(loaded, signature_name)
    if signature is None:
        raise ServingError("FAILED_PRECONDITION", f'Serving signature key "{signature_name}" not found.')
    sent, required = set(request.inputs), set(signature.input_specs)
    if len(sent) != len(required):
        raise invalid_argument(
            f"input size does not match signature: {len(sent)}!={len(required)} len({_set_text(sent)}) != "
            f"len({_set_text(required)}). Sent extra: {_set_text(sent - required)}. "
            f"Missing but required: {_set_text(required - sent)}."
        )
    unknown = sorted(sent - required)
    if unknown:
        raise invalid_argument(
            f"input tensor alias not found in signature: {unknown[0]}. "
            f"Inputs expected to be in the set {_set_text(required)}."
        )
    for alias in request.output_filter:
        if alias not in signature.output_names:
            raise invalid_argument(
                f"output tensor alias not found in signature: {alias} "
                f"Outputs expected to be in the set {_set_text(signature.output_names)}."
            )
    inputs = {}
    for alias, proto in request.inputs.items():
        try:
            inputs[alias] = np.asarray(tf.make_ndarray(proto))
        except Exception as exc:  # any malformed TensorProto is the caller's mistake
            raise invalid_argument(f"Cannot read input tensor {alias}: {exc}") from None
    check_inputs(signature, inputs, {alias: proto.dtype for alias, proto in request.inputs.items()})
    return signature, inputs


def warm_up(loaded: LoadedVersion) -> None:
    """Replay ``assets.extra/tf_serving_warmup_requests`` like TF Serving; any failure fails the load."""
    path = loaded.path / WARMUP_FILE
    if not path.exists():
        return
    for index, record in enumerate(tf.data.TFRecordDataset(str(path))):
        if index >= MAX_WARMUP_RECORDS:
            raise ValueError(f"Number of warmup records exceeds the maximum ({MAX_WARMUP_RECORDS}) at {path}")
        log = prediction_log_pb2.PredictionLog.FromString(record.numpy())
        if log.WhichOneof("log_type") != "predict_log":
            raise ValueError(
                f"Unsupported log_type for warmup: {log.WhichOneof('log_type')} (record {index})"
            )
        try:
            signature, inputs = read_predict_request(loaded, log.predict_log.request)
            execute(signature, inputs)
        except ServingError as exc:
            raise ServingError(exc.code, f"Warm-up record {index} of {path} failed: {exc.message}") from None


def execute(signature: Signature, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One ``Session.run`` on the signature's tensors (on a worker thread), as TF Serving runs it.

    TensorFlow's own failures keep their status code (TF Serving passes Session::Run's
    status through); anything else is INTERNAL, so the server outlives any model failure.
    """
    feeds = {
        signature.input_tensors[alias]: np.asarray(inputs[alias], dtype=spec.dtype.as_numpy_dtype)
        for alias, spec in signature.input_specs.items()
    }
    try:
        result = signature.loaded.session.run(signature.output_tensors, feed_dict=feeds)
    except tf.errors.OpError as exc:
        raise ServingError(tf_error_code_name(exc) or "INTERNAL", _op_message(exc)) from None
    except Exception as exc:  # the server must outlive any model failure
        raise ServingError("INTERNAL", f"{type(exc).__name__}: {exc}") from None
    return {alias: np.asarray(value) for alias, value in result.items()}


def _op_message(exc: Any) -> str:
    """The kernel's own text, without the graph-node and Python-stack notes TensorFlow appends."""
    message = str(exc.message)
    if message.startswith("Graph execution error"):  # Python's preamble, not the kernel's status
        message = message.partition("\n")[2]
        message = message.partition("<stack traces unavailable>\n")[2] or message
    for marker in ("\n\nDetected at node", "\n\nOriginal stack trace", "\n\nErrors may have originated"):
        message = message.split(marker, 1)[0]
    return message.strip()


@dataclass
class _Pending:
    inputs: dict[str, np.ndarray]
    size: int
    future: asyncio.Future[dict[str, np.ndarray]]


@dataclass
class _Queue:
    signature: Signature
    items: list[_Pending] = field(default_factory=list)
    size: int = 0
    timer: asyncio.TimerHandle | None = None


class Runner:
    """Runs signatures on the executor, merging concurrent requests when batching is on."""

    def __init__(self, executor: Executor, batching: BatchingOptions | None) -> None:
        self._executor = executor
        self._batching = batching
        self._queues: dict[tuple[Any, ...], _Queue] = {}
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(batching.num_batch_threads) if batching else None
        #: How many times TensorFlow was called; tests and metrics read it.
        self.calls = 0

    async def run(self, signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        size = _batch_size(inputs)
        if self._batching is None or size is None:
            return await self._call(signature, inputs)
        if size > self._batching.max_batch_size:
            raise invalid_argument(
                f"Task size {size} is larger than maximum input batch size {self._batching.max_batch_size}"
            )
        loop = asyncio.get_running_loop()
        key = (
            signature.loaded.name,
            signature.loaded.version,
            signature.name,
            tuple((alias, array.dtype.str, array.shape[1:]) for alias, array in sorted(inputs.items())),
        )
        queue = self._queues.get(key)
        if queue is not None and queue.size + size > self._batching.max_batch_size:
            self._flush(key)
        queue = self._queues.setdefault(key, _Queue(signature))
        pending = _Pending(inputs, size, loop.create_future())
        queue.items.append(pending)
        queue.size += size
        if queue.size >= self._batching.max_batch_size:
            self._flush(key)
        elif queue.timer is None:
            queue.timer = loop.call_later(self._batching.batch_timeout_micros / 1e6, self._flush, key)
        return await pending.future

    async def _call(self, signature: Signature, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        self.calls += 1
        return await asyncio.get_running_loop().run_in_executor(self._executor, execute, signature, inputs)

    def _flush(self, key: tuple[Any, ...]) -> None:
        queue = self._queues.pop(key, None)
        if queue is None:
            return
        if queue.timer is not None:
            queue.timer.cancel()
        task = asyncio.get_running_loop().create_task(self._run_batch(queue))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _run_batch(self, queue: _Queue) -> None:
        assert self._slots is not None
        items = queue.items
        async with self._slots:
            merged = {
                alias: np.concatenate([item.inputs[alias] for item in items]) for alias in items[0].inputs
            }
            try:
                outputs = await self._call(queue.signature, merged)
                results = _split(outputs, [item.size for item in items])
            except ServingError as exc:
                for item in items:
                    if not item.future.done():
                        item.future.set_exception(exc)
                return
        for item, result in zip(items, results, strict=True):
            if not item.future.done():
                item.future.set_result(result)

    async def drain(self) -> None:
        """Run everything still queued now (shutdown must not wait out batch timeouts)."""
        for key in list(self._queues):
            self._flush(key)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)


def _batch_size(inputs: Mapping[str, np.ndarray]) -> int | None:
    sizes = {array.shape[0] if array.ndim else None for array in inputs.values()}
    if len(sizes) != 1:
        return None
    (size,) = sizes
    return size if size else None


def _split(outputs: dict[str, np.ndarray], sizes: list[int]) -> list[dict[str, np.ndarray]]:
    if len(sizes) == 1:
        return [outputs]
    total = sum(sizes)
    for alias, tensor in outputs.items():
        if tensor.ndim == 0 or tensor.shape[0] != total:
            raise ServingError(
                "FAILED_PRECONDITION",
                f"Batched output tensor {alias} has shape {list(tensor.shape)}; its 0th dimension does not "
                f"equal the sum of the 0th dimension sizes of the input tensors ({total})",
            )
    bounds = np.cumsum([0, *sizes])
    return [
        {alias: tensor[start:stop] for alias, tensor in outputs.items()}
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
    ]
