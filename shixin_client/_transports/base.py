"""The transport contract: three calls on neutral objects, sync and async.

A transport knows its wire (REST, gRPC, in-process) and nothing else: no retries, no
batching, no decoding. It turns its library's failures into the ShixinError tree at
this boundary (``raise ... from exc``) and returns plain numpy arrays and _models objects.

Inputs of DT_STRING are numpy arrays of dtype object holding ``bytes``; DT_FLOAT inputs
are float32 arrays. Outputs come back keyed by the signature's output alias.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from .._config import ModelRef, Timeout
from .._models import ModelMetadata, ModelStatus


@dataclass(frozen=True)
class PredictCall:
    model: ModelRef
    inputs: dict[str, np.ndarray]
    timeout: Timeout
    #: gRPC only; REST always returns every output (tf-serving-protocol.md §1.3).
    output_filter: tuple[str, ...] = field(default=())


class SyncTransport(ABC):
    #: A description safe to print: scheme, host and port only, never credentials.
    endpoint: str

    @abstractmethod
    def predict(self, call: PredictCall) -> dict[str, np.ndarray]: ...

    @abstractmethod
    def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus: ...

    @abstractmethod
    def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata: ...

    @abstractmethod
    def close(self) -> None: ...


class AsyncTransport(ABC):
    endpoint: str

    @abstractmethod
    async def predict(self, call: PredictCall) -> dict[str, np.ndarray]: ...

    @abstractmethod
    async def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus: ...

    @abstractmethod
    async def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata: ...

    @abstractmethod
    async def close(self) -> None: ...
