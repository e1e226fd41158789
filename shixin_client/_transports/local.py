"""The embedded model behind the transport contract: LiteRT in-process, no server at all.

It answers the same three signatures an exported SavedModel serves (``serving_default``
on float tensors, ``serving_bytes`` on encoded files, ``describe`` with the model's
spec), so the client treats it like any server. The model file sits beside a
``spec.json`` that says what the model reads and emits; the one shipped in
``shixin_client/_assets`` is used when no path is given. numpy and ``ai-edge-litert``
come with the ``[local]`` extra; without them importing this module, or building a
LocalTransport, is a MissingDependencyError that names it.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any, Optional

from .._config import DEFAULT_MAX_LOCAL_THREADS, ModelRef, Timeout
from .._decode.greedy import greedy_confidences
from .._exceptions import InvalidInputError, MissingDependencyError, ModelNotFoundError, RequestRejectedError
from .._images import preprocess
from .._models import ModelMetadata, ModelStatus, SignatureInfo, TensorInfo, VersionStatus
from .._spec import (
    DEFAULT_SPEC,
    DESCRIBE_OUTPUTS,
    INPUT_BYTES,
    INPUT_DESCRIBE,
    INPUT_FLOAT,
    OUTPUT_SOFTMAX,
    SIGNATURE_BYTES,
    SIGNATURE_DESCRIBE,
    SIGNATURE_FLOAT,
    SPEC_FILE,
    CaptchaSpec,
    int8_path,
    single_image_path,
)
from .base import PredictCall, SyncTransport

try:
    import numpy as np
except ImportError as exc:
    raise MissingDependencyError("the embedded model", "local") from exc

ASSETS = Path(__file__).resolve().parent.parent / "_assets"
DEFAULT_MODEL_PATH = ASSETS / "shixin.tflite"
#: The embedded model has one version; status and metadata report it as this number.
LOCAL_VERSION = 1
#: Threads for one image at a time: too little work to share (see :class:`_Model`).
SINGLE_IMAGE_THREADS = 1
#: The int8 companion's answer for a captcha is kept when its greedy reading has exactly the
#: label length and a confidence (product of the characters' probabilities) of at least this;
#: otherwise the float model answers. On 10,000 validation captchas the int8 model alone read
#: 14 differently from the float model, each with confidence 0.56 or less; about 7% of readings
#: fall under 0.9 and are read again, so the strings are the float model's at about 60% of its cost
#: where int8 runs twice as fast, and at about 115% on a CPU where it does not (an AVX2-only EPYC).
INT8_TRUST = 0.9


class _Interpreter:
    """One LiteRT interpreter, resized only when the batch size changes (resizing reallocates)."""

    def __init__(self, path: Path, threads: int, fixed_batch: bool = False) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self._interpreter: Any = Interpreter(model_path=str(path), num_threads=threads)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._batch = 0
        if fixed_batch:
            self._interpreter.allocate_tensors()
            self._batch = 1

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] != self._batch:
            self._interpreter.resize_tensor_input(self._input, list(batch.shape))
            self._interpreter.allocate_tensors()
            self._batch = batch.shape[0]
        self._interpreter.set_tensor(self._input, np.ascontiguousarray(batch, dtype=np.float32))
        self._interpreter.invoke()
        return np.array(self._interpreter.get_tensor(self._output))


class _Model:
    """One model file behind two interpreters: one fixed at batch 1 (a recurrent model's
    batch-1 companion when there is one) and one for batches, made when first needed, so
    single images between batches never reallocate either.

    A single image runs on one thread (:data:`SINGLE_IMAGE_THREADS`): on the 2-core
    benchmark machine, two threads read a captcha in 0.70-1.0 ms depending on how the
    scheduler placed the workers, one thread in 0.73-0.75 ms every time.
    """

    def __init__(self, path: Path, threads: int, single: Optional[Path] = None) -> None:
        self._path = path
        self._threads = threads
        self._one = _Interpreter(single or path, SINGLE_IMAGE_THREADS, fixed_batch=True)
        self._many: Optional[_Interpreter] = None

    def run(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape[0] == 1:
            return self._one.run(batch)
        if self._many is None:
            self._many = _Interpreter(self._path, self._threads)
        return self._many.run(batch)


def describe_outputs(spec: CaptchaSpec, rows: int) -> dict[str, np.ndarray]:
    """The ``describe`` signature's answer: each output repeats the spec's value ``rows`` times."""
    outputs: dict[str, np.ndarray] = {}
    for name in DESCRIBE_OUTPUTS:
        value = getattr(spec, name)
        if isinstance(value, str):
            outputs[name] = np.array([value.encode("utf-8")] * rows, dtype=object)
        else:
            outputs[name] = np.full(rows, value, dtype=np.int32)
    return outputs


def read_spec(path: Path) -> CaptchaSpec:
    """A ``spec.json`` written by ``python -m export`` beside the model file.

    A model file with no spec beside it is taken to be the reference model, as a
    server model without a ``describe`` signature is.
    """
    if not path.exists():
        return DEFAULT_SPEC
    try:
        fields = json.loads(path.read_text(encoding="utf-8"))
        return CaptchaSpec(**{name: fields[name] for name in DESCRIBE_OUTPUTS})
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelNotFoundError(
            f"{path} is not a valid model spec: {exc}", code="NOT_FOUND", endpoint="local"
        ) from exc


def _signature_infos(spec: CaptchaSpec) -> tuple[SignatureInfo, ...]:
    softmax = TensorInfo(OUTPUT_SOFTMAX, "DT_FLOAT", (-1, spec.time_steps, spec.num_classes))
    return (
        SignatureInfo(
            SIGNATURE_DESCRIBE,
            (TensorInfo(INPUT_DESCRIBE, "DT_INT32", (-1,)),),
            tuple(
                TensorInfo(name, "DT_STRING" if name == "charset" else "DT_INT32", (-1,))
                for name in DESCRIBE_OUTPUTS
            ),
        ),
        SignatureInfo(SIGNATURE_BYTES, (TensorInfo(INPUT_BYTES, "DT_STRING", (-1,)),), (softmax,)),
        SignatureInfo(
            SIGNATURE_FLOAT,
            (TensorInfo(INPUT_FLOAT, "DT_FLOAT", (-1, spec.height, spec.width, 1)),),
            (softmax,),
        ),
    )


class LocalTransport(SyncTransport):
    """Runs the LiteRT model in this process, one call at a time (thread-safe).

    It holds exactly one model, so it answers whatever model name, version or label a
    call names, and reports that model as version :data:`LOCAL_VERSION`. When the model
    file has an int8 companion (``python -m export --tflite ... --int8``) and ``int8`` is
    on, every batch runs on the companion first and only the rows it is unsure of run on
    the float model; ``int8=False`` gives the float model's softmax exactly.
    """

    def __init__(
        self, model_path: Optional[Path] = None, threads: Optional[int] = None, int8: bool = True
    ) -> None:
        if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or threads < 1):
            raise InvalidInputError(
                "threads",
                f"threads must be a positive int or None (all cores, up to {DEFAULT_MAX_LOCAL_THREADS}), "
                f"got {threads!r}",
            )
        if not isinstance(int8, bool):
            raise InvalidInputError("int8", f"int8 must be True or False, got {int8!r}")
        path = Path(model_path) if model_path is not None else DEFAULT_MODEL_PATH
        if not path.is_file():
            raise ModelNotFoundError(
                f"no embedded model file at {path}"
                + (" (the package ships none yet; pass model_path=)" if model_path is None else ""),
                code="NOT_FOUND",
                endpoint="local",
            )
        try:
            import ai_edge_litert.interpreter  # noqa: F401
        except ImportError as exc:
            raise MissingDependencyError("the embedded model", "local") from exc
        self.spec = read_spec(path.with_name(SPEC_FILE))
        self.endpoint = f"local:{path.name}"
        #: LiteRT's threads for batches; single images run on SINGLE_IMAGE_THREADS.
        self.threads = threads if threads is not None else min(DEFAULT_MAX_LOCAL_THREADS, os.cpu_count() or 1)
        single = single_image_path(path)
        self._has_single = single.is_file()
        self._float = _Model(path, self.threads, single if self._has_single else None)
        quantized = int8_path(path)
        self._int8 = _Model(quantized, self.threads) if int8 and quantized.is_file() else None
        #: Rows answered by the int8 companion and rows it passed on to the float model.
        self.int8_rows = 0
        self.float_rows = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalTransport(endpoint={self.endpoint!r}, int8={self._int8 is not None})"

    def predict(self, call: PredictCall) -> dict[str, np.ndarray]:
        signature = call.model.signature or SIGNATURE_FLOAT
        if signature == SIGNATURE_DESCRIBE:
            return describe_outputs(self.spec, len(self._input_of(call, INPUT_DESCRIBE)))
        if signature == SIGNATURE_BYTES:
            images = self._input_of(call, INPUT_BYTES)
            batch = (
                np.stack(
                    [preprocess(bytes(data), self.spec, name=f"item {i}") for i, data in enumerate(images)]
                )
                if len(images)
                else np.zeros((0, self.spec.height, self.spec.width, 1), np.float32)
            )
        elif signature == SIGNATURE_FLOAT:
            batch = np.asarray(self._input_of(call, INPUT_FLOAT), dtype=np.float32)
        else:
            raise RequestRejectedError(
                f'Serving signature name: "{signature}" not found in signature def',
                code="INVALID_ARGUMENT",
                endpoint=self.endpoint,
            )
        return {OUTPUT_SOFTMAX: self.run(batch)}

    def run(self, batch: np.ndarray) -> np.ndarray:
        """Softmax [N, time_steps, classes] for a float batch [N, height, width, 1]."""
        expected = (self.spec.height, self.spec.width, 1)
        if batch.ndim != 4 or batch.shape[1:] != expected:
            spec_shape = ", ".join(map(str, expected))
            raise RequestRejectedError(
                f"input {INPUT_FLOAT} has shape {batch.shape}, expecting [N, {spec_shape}]",
                code="INVALID_ARGUMENT",
                endpoint=self.endpoint,
            )
        if batch.shape[0] == 0:
            return np.zeros((0, self.spec.time_steps, self.spec.num_classes), np.float32)
        with self._lock:
            if self._int8 is None:
                self.float_rows += len(batch)
                return self._float.run(batch)
            softmax = self._int8.run(batch)
            unsure = np.flatnonzero(~(greedy_confidences(softmax, self.spec) >= INT8_TRUST))
            for row in unsure:
                softmax[row] = self._float.run(batch[row : row + 1])[0]
            self.float_rows += len(unsure)
            self.int8_rows += len(batch) - len(unsure)
            return softmax

    def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus:
        return ModelStatus(model.name, (VersionStatus(LOCAL_VERSION, "AVAILABLE"),))

    def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata:
        return ModelMetadata(model.name, LOCAL_VERSION, _signature_infos(self.spec))

    def close(self) -> None:
        """Nothing to release: the interpreter is freed with the transport."""

    def _input_of(self, call: PredictCall, name: str) -> np.ndarray:
        if set(call.inputs) != {name}:
            raise RequestRejectedError(
                f"input size does not match signature: expecting {{{name}}}, got {sorted(call.inputs)}",
                code="INVALID_ARGUMENT",
                endpoint=self.endpoint,
            )
        return call.inputs[name]
