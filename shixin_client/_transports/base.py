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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from .._config import ModelRef, Timeout
from .._models import ModelMetadata, ModelStatus
from .._tensor import Tensor, TensorLike

T = TypeVar("T")

__all__ = [
    "AsyncTransport",
    "PredictCall",
    "SyncTransport",
    "Tensor",
    "TensorLike",
    "ThreadedAsyncTransport",
]


@dataclass(frozen=True)
class PredictCall:
    """One predict request, as the client builds it for any transport."""

    model: ModelRef
    #: Input alias -> a :data:`TensorLike` (typed Any so that transports may narrow it).
    inputs: dict[str, Any]
    timeout: Timeout
    #: gRPC only; REST always returns every output (docs/tf-serving-compat.md §1.3).
    output_filter: tuple[str, ...] = field(default=())


class SyncTransport(ABC):
    """What :class:`~shixin_client.ShixinClient` sends through (``transport=``).

    Implement the three calls and ``close``; raise ShixinError subclasses for failures
    (``ShixinConnectionError`` and ``ServerUnavailableError`` are retried by the client).
    """

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
    """What :class:`~shixin_client.AsyncShixinClient` sends through: :class:`SyncTransport`'s
    calls as coroutines, and ``aclose``. :class:`ThreadedAsyncTransport` makes one of any
    SyncTransport."""

    endpoint: str

    @abstractmethod
    async def predict(self, call: PredictCall) -> dict[str, Any]:
        """Output alias -> a :data:`TensorLike`."""

    @abstractmethod
    async def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus: ...

    @abstractmethod
    async def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata: ...

    @abstractmethod
    async def aclose(self) -> None: ...


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """``asyncio.to_thread``, with asyncio imported here rather than at module level: it is
    loaded anyway once an event loop runs, and importing it costs a sync program or the
    command line about a fifth of a cold start (row 11b of the benchmarks)."""
    import asyncio

    return await asyncio.to_thread(function, *args)


class ThreadedAsyncTransport(AsyncTransport):
    """Any sync transport on asyncio: each call runs in a worker thread, never on the event loop.

    ``AsyncShixinClient.local()`` runs the embedded model this way; wrap your own
    SyncTransport in it to hand it to the async client.
    """

    def __init__(self, transport: SyncTransport) -> None:
        self.transport = transport
        self.endpoint = transport.endpoint

    def __repr__(self) -> str:
        return f"ThreadedAsyncTransport({self.transport!r})"

    async def predict(self, call: PredictCall) -> dict[str, Any]:
        return await _in_thread(self.transport.predict, call)

    async def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus:
        return await _in_thread(self.transport.status, model, timeout)

    async def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata:
        return await _in_thread(self.transport.metadata, model, timeout)

    async def aclose(self) -> None:
        await _in_thread(self.transport.close)
