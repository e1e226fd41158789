"""Server URLs: which transport a URL names, its addresses, and how to show it safely."""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from ._exceptions import InvalidInputError
from ._spec import DEFAULT_GRPC_PORT, DEFAULT_REST_PORT
from ._types import ServerTypes


def parse_server(server: ServerTypes) -> tuple[Literal["rest", "grpc"], list[str], bool]:
    """A server URL (or several REST replicas) -> transport kind, addresses, and whether TLS is on.

    ``http://host`` and ``grpc://host`` without a port get TF Serving's ports (8501 and 8500);
    ``https://`` and ``grpcs://`` keep their scheme's own default (443, usually a proxy).
    Several REST replicas are a list or one comma-separated string; gRPC replicas are
    resolved by gRPC itself from ``grpc://dns:///host:port``.
    """
    urls = (
        [part.strip() for part in server.split(",")] if isinstance(server, str) else [str(s) for s in server]
    )
    urls = [url for url in urls if url]
    if not urls:
        raise InvalidInputError("server", "no server URL given")
    schemes = {url.split("://", 1)[0].lower() if "://" in url else "" for url in urls}
    if schemes <= {"http", "https"}:
        return "rest", [_rest_url(url) for url in urls], schemes == {"https"}
    if len(urls) == 1 and schemes <= {"grpc", "grpcs"}:
        scheme = schemes.pop()
        return "grpc", [_grpc_target(urls[0], scheme)], scheme == "grpcs"
    if schemes <= {"grpc", "grpcs"}:
        raise InvalidInputError(
            "server", "for several gRPC replicas use one grpc://dns:///host:port URL, not a list"
        )
    raise InvalidInputError(
        "server",
        f"unsupported URL(s) {[redact_url(u) for u in urls]}: use http://, https:// (REST), grpc:// or grpcs://",
    )


def redact_url(url: str) -> str:
    """Scheme, host, port and path only: ``user:password@``, queries and fragments never reach
    a message, log line or repr."""
    parts = urlsplit(url if "://" in url else f"//{url}")
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    scheme = f"{parts.scheme}://" if parts.scheme else ""
    return f"{scheme}{host}{port}{parts.path.rstrip('/')}"


def _rest_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme.lower() == "http" and parts.port is None and parts.hostname:
        netloc = parts.netloc + f":{DEFAULT_REST_PORT}"
        return parts._replace(netloc=netloc).geturl()
    return url


def _grpc_target(url: str, scheme: str) -> str:
    target = url.split("://", 1)[1].rstrip("/")
    if target.startswith("dns:"):
        return target
    if "/" in target or not target:
        raise InvalidInputError("server", f"a gRPC URL is {scheme}://host:port, got {redact_url(url)!r}")
    parts = urlsplit(f"//{target}")
    if parts.port is None and scheme == "grpc":
        return f"{target}:{DEFAULT_GRPC_PORT}"
    return target
