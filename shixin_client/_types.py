"""Names for the loose inputs the public API accepts, and the "not given" sentinel.

Per-call options must tell "not passed" apart from ``None``: ``timeout=None`` means
"no timeout" and ``version=None`` means "the latest version", both real choices.
:data:`NOT_GIVEN` is the default of every per-call keyword, so a merge can keep the
client's own setting exactly when the caller said nothing.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from typing import Final, Literal, Union

from ._config import Headers, ModelRef, RetryPolicy, TimeoutTypes
from ._images import ImageInput

__all__ = [
    "NOT_GIVEN",
    "HeaderTypes",
    "ImageInput",
    "ModelTypes",
    "NotGiven",
    "RetryTypes",
    "ServerTypes",
    "TimeoutTypes",
]


class NotGiven(enum.Enum):
    """The type of :data:`NOT_GIVEN`; an enum so type checkers can narrow it away."""

    NOT_GIVEN = "NOT_GIVEN"

    def __repr__(self) -> str:
        return "NOT_GIVEN"

    def __bool__(self) -> Literal[False]:
        return False


NOT_GIVEN: Final = NotGiven.NOT_GIVEN

#: One server URL, or several REST replicas.
ServerTypes = Union[str, Sequence[str]]
HeaderTypes = Union[Headers, Mapping[str, str], None]
ModelTypes = Union[ModelRef, str]
RetryTypes = Union[RetryPolicy, int, None]
