"""TF status codes as the server reports them on both wires (docs/tf-serving-compat.md §1.8, §2)."""

from __future__ import annotations

import re

import grpc

from shixin_client.protocol import HTTP_STATUS_BY_CODE

# §2: gRPC messages longer than this are cut and marked.
GRPC_MESSAGE_LIMIT = 1024
GRPC_TRUNCATION_MARK = "...TRUNCATED"


class ServingError(Exception):
    """A request failed with a TF status: ``code`` is its name (``"NOT_FOUND"``), ``message`` its text."""

    def __init__(self, code: str, message: str) -> None:
        if code not in HTTP_STATUS_BY_CODE or code == "OK":
            raise ValueError(f"ServingError code must be a TF error code name, got {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS_BY_CODE[self.code]

    @property
    def grpc_code(self) -> grpc.StatusCode:
        return grpc.StatusCode[self.code]

    def grpc_details(self) -> str:
        if len(self.message) <= GRPC_MESSAGE_LIMIT:
            return self.message
        return self.message[:GRPC_MESSAGE_LIMIT] + GRPC_TRUNCATION_MARK

    def to_string(self) -> str:
        """TF's ``Status::ToString()``, which nested row-format errors embed (§1.8)."""
        return f"{self.code}: {self.message}"


def invalid_argument(message: str) -> ServingError:
    return ServingError("INVALID_ARGUMENT", message)


def not_found(message: str) -> ServingError:
    return ServingError("NOT_FOUND", message)


def tf_error_code_name(exc: BaseException) -> str | None:
    """The TF status code of a TensorFlow ``OpError``: ``FailedPreconditionError`` -> FAILED_PRECONDITION.

    TF Serving passes ``Session::Run``'s status through unchanged, so the server reports the
    code TensorFlow raised rather than folding every failure into INTERNAL.
    """
    name = type(exc).__name__
    if not name.endswith("Error") or not hasattr(exc, "error_code"):
        return None
    code = re.sub(r"(?<!^)(?=[A-Z])", "_", name[: -len("Error")]).upper()
    return code if code in HTTP_STATUS_BY_CODE and code != "OK" else None
