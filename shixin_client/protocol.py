"""TF Serving's wire facts that the client and the local dev server both speak.

A public module, shared on purpose: ``shixin_client.server`` answers with these tables
and the client reads answers with them, so the two cannot disagree. Section numbers (§)
refer to docs/tf-serving-compat.md. Nothing here does I/O or needs an optional extra.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CODE_BY_HTTP_STATUS", "HTTP_STATUS_BY_CODE", "json_shape"]

#: §1.8: the REST status that carries each TF Serving status name.
HTTP_STATUS_BY_CODE: dict[str, int] = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}

#: The reverse direction is ambiguous (400 has three names); this picks the common one.
CODE_BY_HTTP_STATUS: dict[int, str] = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def json_shape(value: Any) -> list[int]:
    """The shape a nested JSON list claims (§1.4), read down its first elements.

    Raggedness is the caller's to check: this only says what a well-formed tensor
    with that first path would be.
    """
    shape: list[int] = []
    probe = value
    while isinstance(probe, list):
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    return shape
