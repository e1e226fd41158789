"""What a softmax is, and the one check every decoder and the client run on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional, Union

from .._exceptions import BadResponseError, InvalidInputError, require_numpy
from .._tensor import Tensor

if TYPE_CHECKING:
    import numpy as np

#: A softmax: a numpy array (or anything numpy reads) or a numpy-free Tensor.
Softmax = Union["np.ndarray", Tensor]


def as_softmax(softmax: object, feature: str) -> Softmax:
    """A Tensor as it is, anything else as the numpy array it stands for (needs numpy)."""
    if isinstance(softmax, Tensor):
        return softmax
    array: np.ndarray = require_numpy(feature).asarray(softmax)
    return array


def check_softmax(
    softmax: Softmax, blank_index: int, *, classes: Optional[int] = None, rows: Optional[int] = None
) -> None:
    """Refuse a softmax that decoding could only misread.

    It must be a non-empty float [batch, time, classes] array, with ``classes`` classes
    when the model promised a count and ``rows`` rows when that many images were sent;
    then ``blank_index`` must be one of its classes. A softmax that breaks the promise
    is a BadResponseError (it came from a model); a blank outside the classes is the
    caller's InvalidInputError.
    """
    shape = tuple(softmax.shape)
    dtype = str(softmax.dtype)
    floats = dtype.startswith("float") if isinstance(softmax, Tensor) else softmax.dtype.kind == "f"
    if rows is not None and (len(shape) != 3 or not floats or shape[0] != rows):
        raise BadResponseError(
            f"sent {rows} image(s) but got a {dtype} softmax of shape {list(shape)}, "
            f"expecting [{rows}, time, {classes if classes is not None else 'classes'}]"
        )
    if len(shape) != 3 or 0 in shape or not floats or (classes is not None and shape[2] != classes):
        promised = f"[batch, time, {classes if classes is not None else 'classes'}]"
        raise BadResponseError(
            f"softmax is {dtype} of shape {list(shape)}; the model promised a non-empty float {promised}"
        )
    if not 0 <= blank_index < shape[2]:
        raise InvalidInputError("blank_index", f"{blank_index} is outside the softmax's {shape[2]} classes")
