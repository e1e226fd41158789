"""The transport contract: three calls on neutral objects, sync and async.

A transport knows its wire (REST, gRPC, in-process) and nothing else: no retries, no
batching, no decoding. It turns its library's failures into the ShixinError tree at
this boundary (``raise ... from exc``) and returns tensors and _models objects.

A tensor is a numpy array or a :class:`Tensor`, the numpy-free form the REST and gRPC
codecs read and write, so the plain client runs without numpy. The client sends image
files (DT_STRING) and the ``describe`` probe as Tensors and float32 batches as numpy
arrays; REST and gRPC answer with Tensors, the embedded model with numpy arrays.
``numpy.asarray`` turns a Tensor into the array it stands for. Outputs come back keyed
by the signature's output alias.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from .._config import ModelRef, Timeout
from .._exceptions import require_numpy
from .._models import ModelMetadata, ModelStatus

if TYPE_CHECKING:
    import numpy as np


class Tensor:
    """A tensor without numpy: a numpy dtype name, a shape, and the values flat in row-major order.

    ``values`` is an ``array.array`` for numbers (native byte order), a list of bools for
    ``bool``, and a list of ``bytes`` (or ``str``, or anything JSON held) for ``object``,
    TensorFlow's DT_STRING. A 1-D Tensor iterates and indexes like its values.
    """

    __slots__ = ("dtype", "shape", "values")

    def __init__(self, dtype: str, shape: tuple[int, ...], values: Sequence[Any]) -> None:
        count = 1
        for size in shape:
            count *= size
        if len(values) != count:
            raise ValueError(
                f"a {dtype} tensor of shape {list(shape)} needs {count} values, not {len(values)}"
            )
        self.dtype = dtype
        self.shape = tuple(shape)
        self.values = values

    @classmethod
    def strings(cls, items: Sequence[bytes]) -> Tensor:
        """A DT_STRING vector, one element per item."""
        return cls("object", (len(items),), list(items))

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return len(self.values)

    def __len__(self) -> int:
        if not self.shape:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def __iter__(self) -> Iterator[Any]:
        if self.ndim != 1:
            raise TypeError(f"only 1-D tensors iterate; this one has shape {list(self.shape)}")
        return iter(self.values)

    def __getitem__(self, index: int) -> Any:
        if self.ndim != 1:
            raise TypeError(f"only 1-D tensors index; this one has shape {list(self.shape)}")
        return self.values[index]

    def tolist(self) -> Any:
        """Nested lists, as ``numpy.ndarray.tolist`` gives them."""
        values = self.values.tolist() if hasattr(self.values, "tolist") else list(self.values)
        return _nest(values, self.shape)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        numpy = require_numpy("converting a Tensor to a numpy array")
        if self.dtype == "object":
            result = numpy.empty(len(self.values), dtype=object)
            result[:] = list(self.values)
        elif isinstance(self.values, array):
            result = numpy.frombuffer(self.values, dtype=self.dtype).copy()
        else:
            result = numpy.array(list(self.values), dtype=self.dtype)
        result = result.reshape(self.shape)
        return result if dtype is None else result.astype(dtype)

    def __repr__(self) -> str:
        return f"Tensor(dtype={self.dtype!r}, shape={list(self.shape)})"


def _nest(values: list[Any], shape: tuple[int, ...]) -> Any:
    if not shape:
        return values[0]
    if len(shape) == 1:
        return values
    step = len(values) // shape[0] if shape[0] else 0
    return [_nest(values[row * step : (row + 1) * step], shape[1:]) for row in range(shape[0])]


#: What a transport takes and gives: a numpy array or a :class:`Tensor`.
TensorLike = Union["np.ndarray", Tensor]


def as_numpy(value: TensorLike, feature: str) -> np.ndarray:
    """The numpy array behind any tensor; MissingDependencyError naming ``feature`` without numpy."""
    numpy = require_numpy(feature)
    array: np.ndarray = numpy.asarray(value)
    return array


@dataclass(frozen=True)
class PredictCall:
    model: ModelRef
    #: Input alias -> a :data:`TensorLike` (typed Any so that transports may narrow it).
    inputs: dict[str, Any]
    timeout: Timeout
    #: gRPC only; REST always returns every output (docs/tf-serving-compat.md §1.3).
    output_filter: tuple[str, ...] = field(default=())


class SyncTransport(ABC):
    #: A description safe to print: scheme, host and port only, never credentials.
    endpoint: str

    @abstractmethod
    def predict(self, call: PredictCall) -> dict[str, Any]:
        """Output alias -> a :data:`TensorLike`."""

    @abstractmethod
    def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus: ...

    @abstractmethod
    def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata: ...

    @abstractmethod
    def close(self) -> None: ...


class AsyncTransport(ABC):
    endpoint: str

    @abstractmethod
    async def predict(self, call: PredictCall) -> dict[str, Any]:
        """Output alias -> a :data:`TensorLike`."""

    @abstractmethod
    async def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus: ...

    @abstractmethod
    async def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata: ...

    @abstractmethod
    async def close(self) -> None: ...
