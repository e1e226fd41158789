"""Client configuration as small validated value objects, and every default in one place.

``None`` always means "not sent" (never 0: for TF Serving version 0 is a real number).
Public signatures accept shorthands (``timeout=5.0``, ``model="shixin"``); the client
normalises them once with the ``*.coerce`` helpers below. A value that cannot be used is
an :class:`InvalidInputError` (a ``ValueError`` too) naming the option.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final, Optional, Union

from ._exceptions import InvalidInputError
from ._spec import DEFAULT_MODEL_NAME

if TYPE_CHECKING:
    from ._types import HeaderTypes, RetryTypes, TimeoutTypes

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_INITIAL_RETRY_DELAY = 0.2
DEFAULT_MAX_RETRY_DELAY = 5.0
DEFAULT_RETRY_BUDGET = 0.2
#: The retry budget remembers this many requests' worth of deposits, so a long healthy
#: spell cannot save up an unbounded burst of retries for the next outage.
RETRY_BUDGET_WINDOW_REQUESTS = 100
#: Images per request in recognize_many; TF Serving's REST parser has no limit, but
#: smaller requests keep latency even and stay far under gRPC's message limits.
DEFAULT_BATCH_SIZE = 64
#: Beam width of beam search when it is asked for without one (``decode_softmax``).
DEFAULT_BEAM_WIDTH = 16
#: What is sent by default: the image file to ``serving_bytes`` (about 450 bytes a captcha).
DEFAULT_PAYLOAD: Final = "image"
#: What the embedded model is sent by default: the float tensor (no wire to save, and
#: encoding a PNG only for LiteRT to decode it again would double the work).
DEFAULT_LOCAL_PAYLOAD: Final = "tensor"
#: REST connections kept per replica: enough for a thread pool hammering one client.
DEFAULT_POOL_SIZE = 64
#: gRPC message limit raised on both directions (TF Serving allows 2 GiB - 1, §2).
GRPC_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
#: Bounds of the gRPC channel's reconnect backoff, in ms: (first, longest). gRPC's own
#: grows towards 120 s, so a client would keep failing long after a restarted server is back.
GRPC_RECONNECT_BACKOFF_MS = (100, 1000)
#: How long wait_until_ready waits unless told, and how often it asks, in seconds.
DEFAULT_READY_TIMEOUT = 60.0
READY_POLL_INTERVAL = 0.5
#: The embedded model's thread count for batches is every core up to this many (past 4
#: the model is too small to gain; ddddocr's onnxruntime takes every core by default).
DEFAULT_MAX_LOCAL_THREADS = 4
#: The reject option: ``recognize`` refuses a reading whose confidence (the product of its
#: characters' probabilities, :class:`~shixin_client.Prediction`) is under this, with a
#: LowConfidenceError. Calibrated on validation captchas only (``python -m training.calibrate``;
#: models/README.md, "Reject option", has the measured table): misreads of site captchas fall
#: under it, and so does every non-captcha tried (noise, a screenshot, a rotated captcha, a
#: photograph). ``min_confidence=0`` turns it off; ``predict`` never rejects.
DEFAULT_MIN_CONFIDENCE = 0.92
#: Environment variable read by :func:`server_from_env` (client and CLI alike).
SERVER_ENV = "SHIXIN_SERVER"


def positive_int(option: str, value: object) -> None:
    """Refuse anything but a positive int (bools included) for ``option``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(option, f"must be a positive int, got {value!r}")


def confidence_threshold(value: object) -> float:
    """``value`` as a min_confidence: a number from 0 (every reading accepted) to 1."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidInputError("min_confidence", f"must be a number from 0 (off) to 1, got {value!r}")
    return float(value)


def _positive_or_none(option: str, value: object) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0
    ):
        raise InvalidInputError(option, f"must be a positive number of seconds or None, got {value!r}")


@dataclass(frozen=True)
class Timeout:
    """How long a call may wait, in seconds; ``None`` disables a bound.

    ``connect`` bounds making the connection and ``read`` every wait for the server: for
    its answer to begin, then for each further part of it. Whatever the time is spent on,
    a call ends within :attr:`total`, ``connect + read``. gRPC has a single deadline per
    call, so over gRPC ``total`` is the one bound; over REST each step is bounded on its
    own as well. ``timeout=5`` is ``Timeout(5, 5)``: a call ends within 10 s on either
    transport. Each attempt of a retried call has its own ``total``.
    """

    connect: Optional[float] = DEFAULT_CONNECT_TIMEOUT
    read: Optional[float] = DEFAULT_READ_TIMEOUT

    def __post_init__(self) -> None:
        _positive_or_none("Timeout.connect", self.connect)
        _positive_or_none("Timeout.read", self.read)

    @property
    def total(self) -> Optional[float]:
        """The bound on a whole call, ``connect + read``; None when either bound is off."""
        if self.connect is None or self.read is None:
            return None
        return self.connect + self.read

    @classmethod
    def coerce(cls, value: TimeoutTypes) -> Timeout:
        if isinstance(value, Timeout):
            return value
        if value is None:
            return cls(None, None)
        if isinstance(value, tuple):
            return cls(*value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInputError(
                "timeout", f"must be seconds, a (connect, read) pair or a Timeout, got {value!r}"
            )
        return cls(float(value), float(value))


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for transient failures only, with exponential backoff and full jitter.

    ``budget`` caps retries at that fraction of all requests sent under this policy by
    a client and its ``with_options`` copies (plus ``max_retries`` to get started), so a
    dead server is not hammered.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = DEFAULT_INITIAL_RETRY_DELAY
    max_delay: float = DEFAULT_MAX_RETRY_DELAY
    budget: float = DEFAULT_RETRY_BUDGET

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_retries, bool)
            or not isinstance(self.max_retries, int)
            or self.max_retries < 0
        ):
            raise InvalidInputError(
                "RetryPolicy.max_retries", f"must be an int >= 0, got {self.max_retries!r}"
            )
        if self.initial_delay < 0 or self.max_delay < self.initial_delay:
            raise InvalidInputError("RetryPolicy", "needs 0 <= initial_delay <= max_delay")
        if self.budget < 0:
            raise InvalidInputError("RetryPolicy.budget", f"must be >= 0, got {self.budget!r}")

    @classmethod
    def coerce(cls, value: RetryTypes) -> RetryPolicy:
        if isinstance(value, RetryPolicy):
            return value
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInputError(
                "retry", f"must be a number of retries, a RetryPolicy or None, got {value!r}"
            )
        return cls(max_retries=0 if value is None else value)


@dataclass(frozen=True)
class TLSConfig:
    """Files for TLS: a CA bundle to verify the server, and a client cert+key for mTLS.

    With no ``ca_file`` the system's trust store is used. Verification is always on.
    """

    ca_file: Optional[str] = None
    cert_file: Optional[str] = None
    key_file: Optional[str] = None
    server_name: Optional[str] = None  # override the name checked in the server's certificate

    def __post_init__(self) -> None:
        if (self.cert_file is None) != (self.key_file is None):
            raise InvalidInputError("TLSConfig", "needs both cert_file and key_file for mTLS, or neither")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise InvalidInputError(f"TLSConfig.{name}", f"no such file {path!r}")

    def read(self, name: str) -> Optional[bytes]:
        path = getattr(self, name)
        return None if path is None else Path(path).read_bytes()


@dataclass(frozen=True)
class ModelRef:
    """Which model, version (or label) and signature a call addresses."""

    name: str = DEFAULT_MODEL_NAME
    version: Optional[int] = None
    label: Optional[str] = None
    signature: Optional[str] = None

    def __post_init__(self) -> None:
        if not self.name:
            raise InvalidInputError("model", "the model name must not be empty")
        if self.version is not None and self.label is not None:
            raise InvalidInputError("version", "give a model version or a version label, not both")
        if self.version is not None and (
            isinstance(self.version, bool) or not isinstance(self.version, int) or self.version < 0
        ):
            raise InvalidInputError("version", f"must be a non-negative int, got {self.version!r}")

    def with_signature(self, signature: str) -> ModelRef:
        return replace(self, signature=signature)

    @classmethod
    def coerce(cls, value: Union[ModelRef, str, None]) -> ModelRef:
        if isinstance(value, ModelRef):
            return value
        return cls(name=value or DEFAULT_MODEL_NAME)


def server_from_env() -> Optional[str]:
    """The server URL from ``$SHIXIN_SERVER``, read in one place for client and CLI."""
    value = os.environ.get(SERVER_ENV, "").strip()
    return value or None


@dataclass(frozen=True)
class Headers:
    """Extra request headers / gRPC metadata (auth). Values never appear in reprs."""

    items: tuple[tuple[str, str], ...] = field(default=())

    def __repr__(self) -> str:
        return f"Headers({', '.join(f'{k}=<redacted>' for k, _ in self.items)})"

    @classmethod
    def coerce(cls, value: HeaderTypes) -> Headers:
        if isinstance(value, Headers):
            return value
        return cls(tuple((str(k), str(v)) for k, v in (value or {}).items()))

    def as_dict(self) -> dict[str, str]:
        return dict(self.items)


@dataclass(frozen=True)
class ImageLimits:
    """Bounds that protect the client from hostile or absurd images."""

    max_pixels: int = 16_000_000
    max_bytes: int = 20 * 1024 * 1024
    min_width: int = 16
    min_height: int = 8

    def __post_init__(self) -> None:
        if self.max_pixels <= 0 or self.max_bytes <= 0:
            raise InvalidInputError("ImageLimits", "max_pixels and max_bytes must be positive")


DEFAULT_TIMEOUT = Timeout()
DEFAULT_RETRY = RetryPolicy()
NO_HEADERS = Headers()
DEFAULT_LIMITS = ImageLimits()
