"""Client configuration as small validated value objects, and every default in one place.

``None`` always means "not sent" (never 0: for TF Serving version 0 is a real number).
Public signatures accept shorthands (``timeout=5.0``, ``model="shixin"``); the client
normalises them once with the ``*.coerce`` helpers below.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Union

from ._spec import DEFAULT_MODEL_NAME

DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 2
DEFAULT_INITIAL_RETRY_DELAY = 0.2
DEFAULT_MAX_RETRY_DELAY = 5.0
DEFAULT_RETRY_BUDGET = 0.2
#: Images per request in recognize_many; TF Serving's REST parser has no limit, but
#: smaller requests keep latency even and stay far under gRPC's message limits.
DEFAULT_BATCH_SIZE = 64
#: gRPC message limit raised on both directions (TF Serving allows 2 GiB - 1, §2).
GRPC_MAX_MESSAGE_BYTES = 256 * 1024 * 1024
#: Environment variable read by :func:`server_from_env` (client and CLI alike).
SERVER_ENV = "SHIXIN_SERVER"


@dataclass(frozen=True)
class Timeout:
    """Connect and read deadlines in seconds; ``None`` disables one."""

    connect: Optional[float] = DEFAULT_CONNECT_TIMEOUT
    read: Optional[float] = DEFAULT_READ_TIMEOUT

    def __post_init__(self) -> None:
        for name in ("connect", "read"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(
                    f"Timeout.{name} must be a positive number of seconds or None, got {value!r}"
                )

    @property
    def total(self) -> Optional[float]:
        """One deadline for transports that have only one (gRPC)."""
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
        return cls(float(value), float(value))


TimeoutTypes = Union[Timeout, float, int, "tuple[Optional[float], Optional[float]]", None]


@dataclass(frozen=True)
class RetryPolicy:
    """Retries for transient failures only, with exponential backoff and full jitter.

    ``budget`` caps retries at that fraction of all requests this client has sent
    (plus ``max_retries`` to get started), so a dead server is not hammered.
    """

    max_retries: int = DEFAULT_MAX_RETRIES
    initial_delay: float = DEFAULT_INITIAL_RETRY_DELAY
    max_delay: float = DEFAULT_MAX_RETRY_DELAY
    budget: float = DEFAULT_RETRY_BUDGET

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("RetryPolicy.max_retries must be >= 0")
        if self.initial_delay < 0 or self.max_delay < self.initial_delay:
            raise ValueError("RetryPolicy needs 0 <= initial_delay <= max_delay")
        if self.budget < 0:
            raise ValueError("RetryPolicy.budget must be >= 0")

    @classmethod
    def coerce(cls, value: Union[RetryPolicy, int, None]) -> RetryPolicy:
        if isinstance(value, RetryPolicy):
            return value
        return cls(max_retries=0 if value is None else int(value))


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
            raise ValueError("TLSConfig needs both cert_file and key_file for mTLS, or neither")
        for name in ("ca_file", "cert_file", "key_file"):
            path = getattr(self, name)
            if path is not None and not Path(path).is_file():
                raise ValueError(f"TLSConfig.{name}: no such file {path!r}")

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
            raise ValueError("ModelRef.name must not be empty")
        if self.version is not None and self.label is not None:
            raise ValueError("give a model version or a version label, not both")
        if self.version is not None and (isinstance(self.version, bool) or int(self.version) < 0):
            raise ValueError(f"ModelRef.version must be a non-negative int, got {self.version!r}")

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
    def coerce(cls, value: Union[Headers, dict[str, str], None]) -> Headers:
        if isinstance(value, Headers):
            return value
        return cls(tuple((str(k), str(v)) for k, v in (value or {}).items()))

    def as_dict(self) -> dict[str, str]:
        return dict(self.items)
