"""A transport answered by one function, for tests and examples: no sockets, no model.

``MockTransport(handler)`` calls ``handler(request)`` for every predict, status and
metadata call; the handler returns what the real transport would (a dict of arrays, a
:class:`ModelStatus` or a :class:`ModelMetadata`) or raises a ShixinError, exactly as a
transport's boundary would. :func:`softmax_for` builds a model answer that decodes to
given strings, so a handler can play a recognition model in a few lines.

The handler sees the request's inputs as numpy arrays when numpy is installed (image
files as an object array of bytes, float batches as float32), else as the numpy-free
:class:`~shixin_client.Tensor` the client sends.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, Union

from .._config import ModelRef, Timeout
from .._exceptions import InvalidInputError, require_numpy
from .._models import ModelMetadata, ModelStatus
from .._spec import DEFAULT_SPEC, CaptchaSpec
from .._tensor import Tensor, TensorLike
from .base import AsyncTransport, PredictCall, SyncTransport

if TYPE_CHECKING:
    import numpy as np

Kind = Literal["predict", "status", "metadata"]
MockAnswer = Union[dict[str, TensorLike], ModelStatus, ModelMetadata]


@dataclass(frozen=True)
class MockRequest:
    """What the client asked for: ``kind`` is ``"predict"``, ``"status"`` or ``"metadata"``."""

    kind: Kind
    model: ModelRef
    timeout: Timeout
    inputs: dict[str, TensorLike] = field(default_factory=dict)
    output_filter: tuple[str, ...] = ()


def _predict_request(call: PredictCall) -> MockRequest:
    try:
        import numpy
    except ImportError:
        inputs = dict(call.inputs)
    else:
        inputs = {
            name: numpy.asarray(value) if isinstance(value, Tensor) else value
            for name, value in call.inputs.items()
        }
    return MockRequest("predict", call.model, call.timeout, inputs, call.output_filter)


def _request(kind: Kind, model: ModelRef, timeout: Timeout) -> MockRequest:
    return MockRequest(kind, model, timeout)


def _expect(answer: object, kind: type, request: MockRequest) -> None:
    if not isinstance(answer, kind):
        raise TypeError(f"mock handler answered a {request.kind} call with {type(answer).__name__}")


class MockTransport(SyncTransport):
    """Every call answered by ``handler(request)``: a :class:`MockRequest` in, what the real
    transport would return out (or a ShixinError raised)."""

    def __init__(self, handler: Callable[[MockRequest], MockAnswer], endpoint: str = "mock://") -> None:
        self.handler = handler
        self.endpoint = endpoint
        self.closed = False

    def predict(self, call: PredictCall) -> dict[str, TensorLike]:
        request = _predict_request(call)
        answer = self.handler(request)
        _expect(answer, dict, request)
        assert isinstance(answer, dict)
        return answer

    def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus:
        request = _request("status", model, timeout)
        answer = self.handler(request)
        _expect(answer, ModelStatus, request)
        assert isinstance(answer, ModelStatus)
        return answer

    def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata:
        request = _request("metadata", model, timeout)
        answer = self.handler(request)
        _expect(answer, ModelMetadata, request)
        assert isinstance(answer, ModelMetadata)
        return answer

    def close(self) -> None:
        self.closed = True


class AsyncMockTransport(AsyncTransport):
    """The async twin of :class:`MockTransport`; the handler may be a plain function or a
    coroutine function."""

    def __init__(
        self,
        handler: Callable[[MockRequest], Union[MockAnswer, Awaitable[MockAnswer]]],
        endpoint: str = "mock://",
    ) -> None:
        self.handler = handler
        self.endpoint = endpoint
        self.closed = False

    async def _answer(self, request: MockRequest, kind: type) -> object:
        answer = self.handler(request)
        if inspect.isawaitable(answer):
            answer = await answer
        _expect(answer, kind, request)
        return answer

    async def predict(self, call: PredictCall) -> dict[str, TensorLike]:
        request = _predict_request(call)
        answer = await self._answer(request, dict)
        assert isinstance(answer, dict)
        return answer

    async def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus:
        answer = await self._answer(_request("status", model, timeout), ModelStatus)
        assert isinstance(answer, ModelStatus)
        return answer

    async def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata:
        answer = await self._answer(_request("metadata", model, timeout), ModelMetadata)
        assert isinstance(answer, ModelMetadata)
        return answer

    async def aclose(self) -> None:
        self.closed = True


def softmax_for(
    texts: Sequence[str], spec: CaptchaSpec = DEFAULT_SPEC, *, confidence: float = 0.99
) -> np.ndarray:
    """A softmax [len(texts), time_steps, classes] whose greedy CTC decoding is each text.

    Each character takes two frames followed by a blank frame, so repeated letters
    survive CTC's merge; the winning class gets ``confidence``, the rest share what is left.
    The default plays a sure reading (four characters at 0.99: a confidence of 0.96, over
    the default ``min_confidence``); a lower one plays a reading ``recognize`` rejects.
    Needs numpy.
    """
    numpy = require_numpy("softmax_for")
    steps, classes = spec.time_steps, spec.num_classes
    rest = (1.0 - confidence) / (classes - 1)
    out: np.ndarray = numpy.full((len(texts), steps, classes), rest, dtype=numpy.float32)
    out[:, :, spec.blank_index] = confidence
    for row, text in enumerate(texts):
        if 3 * len(text) > steps:
            raise InvalidInputError(repr(text), f"needs {3 * len(text)} time steps, the spec has {steps}")
        for position, char in enumerate(text):
            frames = slice(3 * position, 3 * position + 2)
            out[row, frames, :] = rest
            out[row, frames, spec.char_to_class(char)] = confidence
    return out
