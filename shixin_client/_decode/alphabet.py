"""Reading only some characters: every class outside an alphabet gets probability 0.

Decoding then never reads those characters: a frame's best class is the best allowed
one, and the exact-length pass cannot route a label through them either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._exceptions import InvalidInputError
from .._spec import CaptchaSpec
from .._tensor import Tensor

if TYPE_CHECKING:
    import numpy as np


def alphabet_classes(spec: CaptchaSpec, alphabet: str) -> list[int]:
    """The classes of ``alphabet``'s characters (case folded); one the model cannot read is an error."""
    if not isinstance(alphabet, str) or not alphabet:
        raise InvalidInputError("alphabet", f"must be a non-empty string of characters, got {alphabet!r}")
    unknown = "".join(sorted({char for char in alphabet.lower() if char not in spec.charset}))
    if unknown:
        raise InvalidInputError(
            "alphabet", f"alphabet has {unknown!r}, which the model cannot read (charset {spec.charset!r})"
        )
    return sorted({spec.char_to_class(char) for char in alphabet.lower()})


def _banned(spec: CaptchaSpec, alphabet: str) -> list[int]:
    allowed = set(alphabet_classes(spec, alphabet)) | {spec.blank_index}
    return [c for c in range(spec.num_classes) if c not in allowed]


def restrict_tensor(softmax: Tensor, spec: CaptchaSpec, alphabet: str) -> Tensor:
    """A copy in which every class outside ``alphabet`` (the blank stays) has probability 0."""
    banned = _banned(spec, alphabet)
    values = list(softmax.values)
    for offset in range(0, len(values), softmax.shape[2]):
        for c in banned:
            values[offset + c] = 0.0
    return Tensor(softmax.dtype, softmax.shape, values)


def restrict_array(softmax: np.ndarray, spec: CaptchaSpec, alphabet: str) -> np.ndarray:
    """:func:`restrict_tensor` for a numpy softmax."""
    array = softmax.copy()
    array[..., _banned(spec, alphabet)] = 0.0
    return array
