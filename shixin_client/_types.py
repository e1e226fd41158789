"""Names for the loose inputs the public API accepts; each is normalised once, by the client.

Per-call options arrive as keyword arguments, so an option the caller did not pass is
simply absent: ``timeout=None`` ("no timeout") and ``version=None`` ("the latest
version") stay real choices without a sentinel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, Optional, Union

from ._config import Headers, ModelRef, RetryPolicy, Timeout

#: One server URL, or several REST replicas.
ServerTypes = Union[str, Sequence[str]]
TimeoutTypes = Union[Timeout, float, int, tuple[Optional[float], Optional[float]], None]
RetryTypes = Union[RetryPolicy, int, None]
HeaderTypes = Union[Headers, Mapping[str, str], None]
ModelTypes = Union[ModelRef, str]
#: What a predict call sends: ``"image"``, the image file (to ``serving_bytes``), or
#: ``"tensor"``, the preprocessed float tensor (to ``serving_default``).
Payload = Literal["image", "tensor"]
