"""The numpy-free tensor: what the REST and gRPC codecs read and write, and decoding reads.

A tensor is a numpy array or a :class:`Tensor`, so the plain client runs without numpy.
``numpy.asarray`` turns a Tensor into the array it stands for.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Union

from ._exceptions import InvalidInputError, require_numpy

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
            raise InvalidInputError(
                "Tensor", f"a {dtype} tensor of shape {list(shape)} needs {count} values, not {len(values)}"
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
