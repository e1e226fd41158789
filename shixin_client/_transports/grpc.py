"""gRPC transports: one channel per transport, sync (``grpc``) and async (``grpc.aio``).

The messages come from :mod:`._grpc_codec`; this module only opens the channel, sends
TF Serving's three calls on their TF Serving method paths, and maps ``grpc.RpcError``
onto the ShixinError tree (``raise ... from exc``), the same way for both twins:

- DEADLINE_EXCEEDED -> ShixinTimeoutError
- UNAVAILABLE because no connection could be made (refused, DNS, TLS handshake), or
  CANCELLED (the server dropped the call, as one that is shutting down does)
  -> ShixinConnectionError
- any other status -> the class :func:`error_class_for_code` gives its name, with
  ``code`` and ``grpc_code`` set to that name

The sync transport is safe to share between threads (a gRPC channel is). The async one
belongs to the event loop that first uses it, as a ``grpc.aio`` channel does; using it
from another loop is a RuntimeError that says so. Only this module imports grpc, and
only when a grpc:// server is used.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any, Optional

from .._config import (
    GRPC_MAX_MESSAGE_BYTES,
    GRPC_RECONNECT_BACKOFF_MS,
    NO_HEADERS,
    Headers,
    ModelRef,
    Timeout,
    TLSConfig,
)
from .._exceptions import (
    BadResponseError,
    InvalidInputError,
    MissingDependencyError,
    ShixinConnectionError,
    ShixinError,
    ShixinTimeoutError,
    UsageError,
    error_class_for_code,
)
from .._models import ModelMetadata, ModelStatus
from .._tensor import Tensor
from .base import AsyncTransport, PredictCall, SyncTransport

try:
    import grpc
    import grpc.aio
    from google.protobuf.message import Message

    from .._proto import get_model_metadata_pb2, get_model_status_pb2, predict_pb2
    from . import _grpc_codec as codec
except ImportError as exc:  # grpcio or protobuf is missing
    raise MissingDependencyError("gRPC transport", "grpc") from exc

# TF Serving's method paths (docs/tf-serving-compat.md §2): our messages live in their own
# proto package, but the wire names must stay TF Serving's.
PREDICT_METHOD = "/tensorflow.serving.PredictionService/Predict"
GET_MODEL_METADATA_METHOD = "/tensorflow.serving.PredictionService/GetModelMetadata"
GET_MODEL_STATUS_METHOD = "/tensorflow.serving.ModelService/GetModelStatus"

#: Resolver schemes whose targets may resolve to several addresses, all of them used.
_MULTI_ADDRESS_SCHEMES = ("dns:", "ipv4:", "ipv6:")
#: gRPC metadata keys: lowercase ASCII; "grpc-" is reserved for gRPC itself.
_METADATA_KEY = re.compile(r"^[0-9a-z_.-]+$")
#: Texts gRPC puts in UNAVAILABLE when no connection was ever made (not a server's answer).
_CONNECT_FAILURES = ("failed to connect", "connection refused", "dns resolution failed", "handshake")
#: gRPC's text when our own deserializer rejects the response bytes.
_UNPARSABLE_RESPONSE = "Exception deserializing response"

#: The response message of each method, parsed by our own classes.
_RESPONSE_TYPES: dict[str, type[Message]] = {
    PREDICT_METHOD: predict_pb2.PredictResponse,
    GET_MODEL_METADATA_METHOD: get_model_metadata_pb2.GetModelMetadataResponse,
    GET_MODEL_STATUS_METHOD: get_model_status_pb2.GetModelStatusResponse,
}


class _GrpcSettings:
    """Everything but the channel and the waiting: shared by both twins."""

    def __init__(
        self,
        target: str,
        *,
        tls: Optional[TLSConfig],
        secure: bool,
        headers: Headers,
        max_message_bytes: int,
    ) -> None:
        if (
            not isinstance(target, str)
            or not target
            or any(c.isspace() for c in target)
            or ("://" in target and not target.startswith("dns:"))
        ):
            raise InvalidInputError(
                "target", f"a gRPC target is 'host:port' or 'dns:///host:port', got {target!r}"
            )
        if (
            isinstance(max_message_bytes, bool)
            or not isinstance(max_message_bytes, int)
            or max_message_bytes <= 0
        ):
            raise InvalidInputError("max_message_bytes", f"must be a positive int, got {max_message_bytes!r}")
        for key, _ in headers.items:
            if not _METADATA_KEY.match(key.lower()) or key.lower().startswith("grpc-"):
                raise InvalidInputError(
                    f"header {key!r}",
                    "cannot be gRPC metadata: keys are ASCII letters, digits, '-', '_' or '.', "
                    "and 'grpc-' is reserved",
                )
        self.target = target
        self.secure = secure or tls is not None
        self.endpoint = f"{'grpcs' if self.secure else 'grpc'}://{target}"
        self._tls = tls if tls is not None else TLSConfig()
        self._headers = headers
        self._metadata = tuple((key.lower(), value) for key, value in headers.items)
        self.options = channel_options(
            target, max_message_bytes, self._tls.server_name if self.secure else None
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, headers={self._headers!r})"

    def _closed_error(self) -> UsageError:
        return UsageError(f"{self!r} is closed; create a new one")

    def _credentials(self) -> grpc.ChannelCredentials:
        return grpc.ssl_channel_credentials(
            root_certificates=self._tls.read("ca_file"),
            private_key=self._tls.read("key_file"),
            certificate_chain=self._tls.read("cert_file"),
        )

    def _error(self, exc: grpc.RpcError, method: str, timeout: Timeout) -> ShixinError:
        code: grpc.StatusCode = exc.code()
        details: str = exc.details() or ""
        call = f"{method.rsplit('/', 1)[-1]} on {self.endpoint}"
        if code == grpc.StatusCode.DEADLINE_EXCEEDED:
            return ShixinTimeoutError(f"no answer to {call} within {timeout.total}s: {details}")
        if code == grpc.StatusCode.UNAVAILABLE and any(text in details.lower() for text in _CONNECT_FAILURES):
            return ShixinConnectionError(f"cannot connect for {call}: {details}")
        if code == grpc.StatusCode.CANCELLED:
            # This client cancels nothing (its deadlines end as DEADLINE_EXCEEDED, and a
            # cancelled asyncio task raises CancelledError), so the server dropped the call:
            # it was shutting down. The same as a REST connection cut mid-call, and retried.
            return ShixinConnectionError(f"the server dropped {call} (CANCELLED: {details})")
        if code == grpc.StatusCode.INTERNAL and details.startswith(_UNPARSABLE_RESPONSE):
            return self._unparsable(method)
        name = code.name
        return error_class_for_code(name, details)(details, code=name, grpc_code=name, endpoint=self.endpoint)

    def _unparsable(self, method: str) -> BadResponseError:
        """Response bytes our deserializer rejects (grpc says so; grpc.aio returns None)."""
        return BadResponseError(
            f"the answer to {method.rsplit('/', 1)[-1]} on {self.endpoint} is not a valid response message"
        )


def channel_options(target: str, max_message_bytes: int, server_name: Optional[str]) -> list[tuple[str, Any]]:
    """The channel arguments: raised message limits (a 64-image float batch is ~11 MB, over
    gRPC's 4 MiB default), round-robin over every resolved address, TLS name override."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.min_reconnect_backoff_ms", GRPC_RECONNECT_BACKOFF_MS[0]),
        ("grpc.initial_reconnect_backoff_ms", GRPC_RECONNECT_BACKOFF_MS[0]),
        ("grpc.max_reconnect_backoff_ms", GRPC_RECONNECT_BACKOFF_MS[1]),
    ]
    if target.startswith(_MULTI_ADDRESS_SCHEMES):
        options.append(("grpc.lb_policy_name", "round_robin"))
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return options


class GrpcTransport(_GrpcSettings, SyncTransport):
    """TF Serving over gRPC with a blocking channel; share one between threads freely.

    ``target`` is ``host:port``, or ``dns:///host:port`` to spread calls round-robin over
    every address the name resolves to. ``secure`` (or any ``tls``) turns TLS on; a
    ``tls`` with ``cert_file`` and ``key_file`` is mutual TLS. ``headers`` travel as call
    metadata (keys lowercased) and never appear in reprs, logs or errors.
    """

    def __init__(
        self,
        target: str,
        *,
        tls: Optional[TLSConfig] = None,
        secure: bool = False,
        headers: Headers = NO_HEADERS,
        max_message_bytes: int = GRPC_MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(target, tls=tls, secure=secure, headers=headers, max_message_bytes=max_message_bytes)
        self._channel = (
            grpc.secure_channel(target, self._credentials(), options=self.options)
            if self.secure
            else grpc.insecure_channel(target, options=self.options)
        )
        self._methods = _methods(self._channel)
        self._closed = False

    def _send(self, method: str, request: Message, timeout: Timeout) -> Any:
        if self._closed:
            raise self._closed_error()
        try:
            response = self._methods[method](request, timeout=timeout.total, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(exc, method, timeout) from exc
        return response

    def predict(self, call: PredictCall) -> dict[str, Tensor]:
        response = self._send(PREDICT_METHOD, codec.predict_request(call), call.timeout)
        return codec.parse_predict_response(response, call.output_filter)

    def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus:
        response = self._send(GET_MODEL_STATUS_METHOD, codec.status_request(model), timeout)
        return codec.parse_status_response(response, model)

    def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata:
        response = self._send(GET_MODEL_METADATA_METHOD, codec.metadata_request(model), timeout)
        return codec.parse_metadata_response(response, model)

    def close(self) -> None:
        self._closed = True
        self._channel.close()


class AsyncGrpcTransport(_GrpcSettings, AsyncTransport):
    """The ``grpc.aio`` twin of :class:`GrpcTransport`: same arguments, coroutine methods.

    The channel opens on first use, in the running event loop, and stays bound to it.
    """

    def __init__(
        self,
        target: str,
        *,
        tls: Optional[TLSConfig] = None,
        secure: bool = False,
        headers: Headers = NO_HEADERS,
        max_message_bytes: int = GRPC_MAX_MESSAGE_BYTES,
    ) -> None:
        super().__init__(target, tls=tls, secure=secure, headers=headers, max_message_bytes=max_message_bytes)
        self._channel: Optional[grpc.aio.Channel] = None
        self._methods: dict[str, Any] = {}
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._closed = False

    def _methods_here(self) -> dict[str, Any]:
        """The channel's calls, opening the channel in the running loop on first use."""
        loop = asyncio.get_running_loop()
        if self._closed:
            raise self._closed_error()
        if self._channel is None:
            self._channel = (
                grpc.aio.secure_channel(self.target, self._credentials(), options=self.options)
                if self.secure
                else grpc.aio.insecure_channel(self.target, options=self.options)
            )
            self._methods = _methods(self._channel)
            self._loop = loop
        elif self._loop is not loop:
            raise UsageError(
                f"{self!r} was first used in another event loop; a grpc.aio channel cannot change "
                "loops, so create one transport (or client) per event loop"
            )
        return self._methods

    async def _send(self, method: str, request: Message, timeout: Timeout) -> Any:
        call = self._methods_here()[method]
        try:
            response = await call(request, timeout=timeout.total, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(exc, method, timeout) from exc
        if response is None:  # grpc.aio logs bytes its deserializer rejects and returns None
            raise self._unparsable(method)
        return response

    async def predict(self, call: PredictCall) -> dict[str, Tensor]:
        response = await self._send(PREDICT_METHOD, codec.predict_request(call), call.timeout)
        return codec.parse_predict_response(response, call.output_filter)

    async def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus:
        response = await self._send(GET_MODEL_STATUS_METHOD, codec.status_request(model), timeout)
        return codec.parse_status_response(response, model)

    async def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata:
        response = await self._send(GET_MODEL_METADATA_METHOD, codec.metadata_request(model), timeout)
        return codec.parse_metadata_response(response, model)

    async def aclose(self) -> None:
        self._closed = True
        if self._channel is not None:
            await self._channel.close()


def _serialize(message: Message) -> bytes:
    return message.SerializeToString()


def _methods(channel: Any) -> dict[str, Any]:
    """One callable per TF Serving method on ``channel`` (sync or aio), made once."""
    return {
        method: channel.unary_unary(
            method, request_serializer=_serialize, response_deserializer=response.FromString
        )
        for method, response in _RESPONSE_TYPES.items()
    }
