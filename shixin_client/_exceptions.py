"""The error tree. Every failure the SDK raises is a :class:`ShixinError`.

::

    ShixinError
    ├── InvalidInputError(ShixinError, ValueError)          a bad image or option, found on the client
    ├── ShixinConnectionError(ShixinError, ConnectionError)  refused, reset, DNS, TLS handshake
    │   └── ShixinTimeoutError(ShixinConnectionError, TimeoutError)
    ├── ServerError                                           the server said no
    │   ├── ModelNotFoundError       404 / NOT_FOUND
    │   ├── RequestRejectedError     400 / INVALID_ARGUMENT, FAILED_PRECONDITION, ...
    │   └── ServerUnavailableError   503 / UNAVAILABLE, 429 / RESOURCE_EXHAUSTED (retried)
    ├── BadResponseError              an answer that is not what the model promised
    ├── LowConfidenceError            a reading under min_confidence: not submitted by recognize
    ├── MissingDependencyError(ShixinError, ImportError)     an optional extra is missing
    └── UsageError(ShixinError, RuntimeError)     the client used in a way it does not support

Builtins are mixed in so that ``except TimeoutError`` keeps working next to
``except ShixinError``. This module imports no transport library: mapping a library's
errors onto this tree happens at each transport's boundary, with ``raise ... from exc``.
"""

from __future__ import annotations

from types import ModuleType
from typing import Optional


class ShixinError(Exception):
    """Base class of every error raised by shixin_client."""


class InvalidInputError(ShixinError, ValueError):
    """An image or an option the client cannot use; found before anything was sent.

    ``input`` names the offending item or option (a path, ``bytes[123]``, ``item 3``,
    ``timeout``, ``alphabet``...) and ``problem`` says what is wrong with it.
    """

    def __init__(self, input_name: str, problem: str) -> None:
        self.input = input_name
        self.problem = problem
        super().__init__(f"{input_name}: {problem}")


class ShixinConnectionError(ShixinError, ConnectionError):
    """The server could not be reached or the connection broke."""


class ShixinTimeoutError(ShixinConnectionError, TimeoutError):
    """A deadline passed before the answer arrived."""


class ServerError(ShixinError):
    """The server answered with an error.

    ``code`` is TF Serving's status name (``NOT_FOUND``...), ``message`` its text;
    ``http_status`` or ``grpc_code`` says which transport carried it.
    ``retry_after`` is the server's own hint for when to retry, if it gave one.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str,
        http_status: Optional[int] = None,
        grpc_code: Optional[str] = None,
        endpoint: Optional[str] = None,
        retry_after: Optional[float] = None,
    ) -> None:
        self.message = message
        self.code = code
        self.http_status = http_status
        self.grpc_code = grpc_code
        self.endpoint = endpoint
        #: Seconds the server asked the client to wait before retrying (HTTP Retry-After).
        self.retry_after = retry_after
        where = f" from {endpoint}" if endpoint else ""
        status = f"HTTP {http_status} {code}" if http_status is not None else code
        super().__init__(f"{status}{where}: {message}")


class ModelNotFoundError(ServerError):
    """No such model, version or version label on the server."""


class RequestRejectedError(ServerError):
    """The server refused the request as invalid (bad signature, dtype, shape...)."""


class ServerUnavailableError(ServerError):
    """The server is overloaded or not ready; the request may succeed if retried."""


class BadResponseError(ShixinError):
    """The server's answer does not parse or does not match what was asked."""


class LowConfidenceError(ShixinError):
    """A reading less confident than the client's ``min_confidence``; ``recognize`` refuses it.

    The model read ``text`` at ``confidence`` (the product of its characters'
    probabilities), under ``threshold``: either the image is not a site captcha (a
    screenshot, noise, a photograph...) or the model is unsure of it, and a wrong
    answer would cost a round trip to the site. ``input`` names the image. Fetching a
    new captcha is the usual answer; ``predict`` returns every reading with its confidence.
    """

    def __init__(self, input_name: str, text: str, confidence: float, threshold: float) -> None:
        self.input = input_name
        self.text = text
        self.confidence = confidence
        self.threshold = threshold
        super().__init__(
            f"{input_name}: read {text!r} at confidence {confidence:.3f}, under min_confidence "
            f"{threshold:g}; not a site captcha, or one the model is unsure of"
        )


class MissingDependencyError(ShixinError, ImportError):
    """An optional dependency is not installed; the message gives the pip command.

    ``extra`` is the name of the extra that brings it (``numpy``, ``grpc``, ``async``, ``local``).
    """

    def __init__(self, feature: str, extra: str) -> None:
        self.extra = extra
        super().__init__(f'{feature} needs the [{extra}] extra: pip install "shixin-client[{extra}]"')


class UsageError(ShixinError, RuntimeError):
    """The client was used in a way it does not support, whatever the server does.

    A spec read before any call fetched it, a closed client, an async client moved to
    another event loop: the message says what to do instead.
    """


def require_numpy(feature: str) -> ModuleType:
    """numpy, or a MissingDependencyError naming ``feature`` and the ``[numpy]`` extra.

    The plain REST and gRPC client (files, bytes or PIL images in, text out) runs without
    numpy; float tensors, numpy-array inputs, beam search and softmax arrays need it.
    """
    try:
        import numpy
    except ImportError as exc:
        raise MissingDependencyError(feature, "numpy") from exc
    return numpy


def error_class_for_code(code: str, message: str = "") -> type[ServerError]:
    """The one table from TF Serving status names to classes, shared by both transports."""
    if code == "NOT_FOUND":
        return ModelNotFoundError
    if code == "INVALID_ARGUMENT" and message.startswith("Unrecognized servable version label"):
        # docs/tf-serving-compat.md §1.8: an unknown label is a 400, but it is a missing model.
        return ModelNotFoundError
    if code in ("UNAVAILABLE", "RESOURCE_EXHAUSTED"):
        return ServerUnavailableError
    if code in ("INVALID_ARGUMENT", "FAILED_PRECONDITION", "OUT_OF_RANGE"):
        return RequestRejectedError
    return ServerError
