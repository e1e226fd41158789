"""REST transports: urllib3 connection pools (sync) or one ``httpx.AsyncClient`` (async) per client.

Everything about the wire format lives in :mod:`._rest_codec`; this module only sends,
picks a replica, and maps each HTTP library's exceptions onto the ShixinError tree
(``raise ... from exc``). Both twins give the same class and the same message for the
same failure (the library's own text stays in ``__cause__``):

- could not connect, TLS failed, connection dropped before an answer
  -> ShixinConnectionError (and the next replica is tried, when there are several)
- no connection within ``Timeout.connect``, no answer within ``Timeout.read``, a pause
  in the answer longer than ``Timeout.read``, or the whole answer not in within
  ``Timeout.total`` (a server trickling bytes) -> ShixinTimeoutError
- the body was cut short -> BadResponseError
"""

from __future__ import annotations

import asyncio
import errno
import http.cookiejar
import itertools
import logging
import os
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Optional
from urllib.parse import unquote, urlsplit

import urllib3
import urllib3.exceptions

from .._config import DEFAULT_POOL_SIZE, NO_HEADERS, Headers, ModelRef, Timeout, TLSConfig
from .._exceptions import (
    BadResponseError,
    InvalidInputError,
    MissingDependencyError,
    ShixinConnectionError,
    ShixinError,
    ShixinTimeoutError,
)
from .._models import ModelMetadata, ModelStatus
from .._retry import parse_retry_after
from .._spec import OUTPUT_SOFTMAX
from .._tensor import Tensor
from .._urls import redact_url
from . import _rest_codec as codec
from .base import AsyncTransport, PredictCall, SyncTransport

logger = logging.getLogger("shixin_client")

#: Bytes asked for per read of a body; each read returns as soon as some have arrived.
READ_CHUNK_BYTES = 64 * 1024
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


@dataclass(frozen=True)
class _Replica:
    """One server: its URL without credentials, the name shown for it, and the headers
    every request to it carries (Basic auth from a ``user:password@`` URL among them)."""

    url: str
    shown: str
    headers: dict[str, str]


class _Replicas:
    """The replicas of one model server, handed out round-robin (thread-safe)."""

    def __init__(self, base_urls: Sequence[str], tls: Optional[TLSConfig], headers: Headers) -> None:
        if isinstance(base_urls, str) or not base_urls:
            raise InvalidInputError("base_urls", "must be a non-empty list of http:// or https:// URLs")
        if tls is not None and tls.server_name is not None:
            # urllib3 and httpx check a certificate against the URL's host; refuse rather than ignore.
            raise InvalidInputError(
                "TLSConfig.server_name", "is supported on gRPC only; use the certificate's host in the URL"
            )
        self.replicas: list[_Replica] = []
        for url in base_urls:
            parts = urlsplit(url)
            shown = redact_url(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise InvalidInputError("server", f"not an http:// or https:// server URL: {shown!r}")
            if tls is not None and parts.scheme != "https":
                raise InvalidInputError("tls", f"tls= was given but {shown!r} is plain http://; use https://")
            if parts.query or parts.fragment:
                raise InvalidInputError("server", f"server URL {shown!r} must not have a query or fragment")
            request_headers = {**_JSON_HEADERS, **headers.as_dict()}
            if parts.username is not None:
                credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                request_headers["Authorization"] = urllib3.util.make_headers(basic_auth=credentials)[
                    "authorization"
                ]
            plain = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl().rstrip("/")
            self.replicas.append(_Replica(plain, shown, request_headers))
        self.endpoint = ",".join(replica.shown for replica in self.replicas)
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def order(self) -> list[_Replica]:
        """Every replica once, starting one further along than the previous request did."""
        with self._lock:
            start = next(self._counter) % len(self.replicas)
        return self.replicas[start:] + self.replicas[:start]


def _single_output(call: PredictCall) -> str:
    """The name for an answer that carries one unnamed output (§1.5)."""
    return call.output_filter[0] if call.output_filter else OUTPUT_SOFTMAX


def _ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def _failover(replica: _Replica, exc: ShixinConnectionError, remaining: int) -> bool:
    """Whether to try the next replica: only when this one could not be reached at all."""
    if isinstance(exc, ShixinTimeoutError) or remaining == 0:
        return False
    logger.warning("shixin_client: %s unreachable (%s); trying the next replica", replica.shown, exc)
    return True


# One message per failure, whichever library saw it: both twins call these.


def _causes(exc: BaseException) -> list[BaseException]:
    chain: list[BaseException] = []
    current: Optional[BaseException] = exc
    while current is not None and current not in chain:
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def _tls_reason(exc: BaseException) -> Optional[str]:
    """The TLS library's reason (``CERTIFICATE_VERIFY_FAILED``...) when TLS failed, else None."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLError):
            return str(cause.reason or cause.strerror or "handshake failed")
    return None


def _os_reason(exc: BaseException) -> Optional[str]:
    """The operating system's words for the deepest socket error behind ``exc``, if any."""
    for cause in reversed(_causes(exc)):
        if isinstance(cause, socket.gaierror):
            return cause.strerror or "name resolution failed"
        if isinstance(cause, OSError) and isinstance(cause.errno, int) and cause.errno in errno.errorcode:
            return os.strerror(cause.errno)
    return None


def _unreachable(where: str, exc: BaseException) -> ShixinConnectionError:
    tls = _tls_reason(exc)
    if tls is not None:
        return ShixinConnectionError(f"TLS with {where} failed: {tls}")
    return ShixinConnectionError(f"cannot reach {where}: {_os_reason(exc) or 'connection failed'}")


def _dropped(where: str, exc: BaseException) -> ShixinConnectionError:
    tls = _tls_reason(exc)
    if tls is not None:
        return ShixinConnectionError(f"TLS with {where} failed: {tls}")
    reason = _os_reason(exc) or "closed by the server"
    return ShixinConnectionError(f"the connection to {where} broke before an answer: {reason}")


def _cut_short(where: str) -> BadResponseError:
    return BadResponseError(f"the answer from {where} was cut short")


def _connect_timeout(where: str, timeout: Timeout) -> ShixinTimeoutError:
    return ShixinTimeoutError(f"cannot connect to {where} within {timeout.connect}s")


def _no_answer(where: str, timeout: Timeout) -> ShixinTimeoutError:
    return ShixinTimeoutError(f"no answer from {where} within {timeout.read}s")


def _stalled(where: str, timeout: Timeout) -> ShixinTimeoutError:
    return ShixinTimeoutError(f"the answer from {where} stalled for over {timeout.read}s")


def _past_deadline(where: str, timeout: Timeout) -> ShixinTimeoutError:
    return ShixinTimeoutError(f"the answer from {where} did not finish within {timeout.total}s")


def _check_status(status: int, headers: Any, content: bytes, where: str) -> bytes:
    if status != 200:
        hint = parse_retry_after(headers.get("Retry-After"))
        raise codec.error_from_response(status, content, where, hint)
    return content


class RestTransport(SyncTransport):
    """TF Serving's REST API over one urllib3 connection pool per replica, safe to share between threads.

    urllib3 directly, not a ``requests.Session`` on top of it: the client used nothing a
    Session adds (environment proxies, redirects, hooks) and the Session cost 0.6 ms of
    CPU per call, a third of the client's whole per-image CPU. What it did use is kept:
    HTTP basic auth from a ``user:password@`` URL, and cookies (a sticky load balancer's)
    through the standard library's ``CookieJar``, which knows their domains, paths and expiry.
    """

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        tls: Optional[TLSConfig] = None,
        headers: Headers = NO_HEADERS,
        pool_maxsize: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self._replicas = _Replicas(base_urls, tls, headers)
        self.endpoint = self._replicas.endpoint
        self._headers = headers
        self._pools = urllib3.PoolManager(
            num_pools=len(base_urls),
            maxsize=pool_maxsize,
            retries=False,
            ssl_context=_ssl_context(tls) if tls else None,
        )
        self._routes: dict[str, urllib3.HTTPConnectionPool] = {}
        self._cookies = http.cookiejar.CookieJar()

    def __repr__(self) -> str:
        return f"RestTransport(endpoint={self.endpoint!r}, headers={self._headers!r})"

    def predict(self, call: PredictCall) -> dict[str, Tensor]:
        body = codec.predict_body(call.model, call.inputs)
        raw = self._send("POST", lambda base: codec.predict_url(base, call.model), body, call.timeout)
        return codec.parse_predict(raw, _single_output(call))

    def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus:
        raw = self._send("GET", lambda base: codec.status_url(base, model), None, timeout)
        return codec.parse_status(raw, model.name)

    def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata:
        raw = self._send("GET", lambda base: codec.metadata_url(base, model), None, timeout)
        return codec.parse_metadata(raw)

    def close(self) -> None:
        self._pools.clear()

    def _send(
        self, method: str, url_for: Callable[[str], str], body: Optional[bytes], timeout: Timeout
    ) -> bytes:
        replicas = self._replicas.order()
        for position, replica in enumerate(replicas):
            try:
                return self._send_once(method, url_for(replica.url), replica, body, timeout)
            except ShixinConnectionError as exc:
                if not _failover(replica, exc, remaining=len(replicas) - position - 1):
                    raise
        raise AssertionError("unreachable: the last replica's error is always raised")

    def _pool(self, base: str) -> urllib3.HTTPConnectionPool:
        pool = self._routes.get(base)
        if pool is None:
            parts = urlsplit(base)
            pool = self._routes.setdefault(
                base, self._pools.connection_from_host(parts.hostname, parts.port, parts.scheme)
            )
        return pool

    def _send_once(
        self, method: str, url: str, replica: _Replica, body: Optional[bytes], timeout: Timeout
    ) -> bytes:
        where = replica.shown
        headers = replica.headers
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(self._cookies):
            request = urllib.request.Request(url)
            self._cookies.add_cookie_header(request)
            cookie = request.get_header("Cookie")
            headers = {**headers, "Cookie": cookie} if cookie else headers
        deadline = None if timeout.total is None else time.monotonic() + timeout.total
        try:
            response = self._pool(replica.url).urlopen(
                method,
                target,
                body=body,
                headers=headers,
                retries=False,
                redirect=False,
                preload_content=False,
                timeout=urllib3.Timeout(connect=timeout.connect, read=timeout.read),
            )
        except urllib3.exceptions.NewConnectionError as exc:  # before its base, ConnectTimeoutError
            raise _unreachable(where, exc) from exc
        except urllib3.exceptions.ConnectTimeoutError as exc:
            raise _connect_timeout(where, timeout) from exc
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise _no_answer(where, timeout) from exc
        except urllib3.exceptions.SSLError as exc:
            raise _unreachable(where, exc) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _dropped(where, exc) from exc
        try:
            content = _read_body(response, where, timeout, deadline)
        except BaseException:
            response.close()  # a half-read answer leaves the connection unusable: never pool it
            raise
        finally:
            response.release_conn()
        if "Set-Cookie" in response.headers:
            self._cookies.extract_cookies(_SetCookies(response.headers), urllib.request.Request(url))  # type: ignore[arg-type]
        return _check_status(response.status, response.headers, content, where)


class _SetCookies:
    """The part of a urllib response that ``CookieJar.extract_cookies`` reads."""

    def __init__(self, headers: urllib3.HTTPHeaderDict) -> None:
        self._headers = headers

    def info(self) -> _SetCookies:
        return self

    def get_all(self, name: str, default: Optional[list[str]] = None) -> Optional[list[str]]:
        return self._headers.getlist(name) or default


def _read_body(
    response: urllib3.BaseHTTPResponse, where: str, timeout: Timeout, deadline: Optional[float]
) -> bytes:
    """The body as it arrives, so a server that trickles bytes cannot hold a call past its deadline.

    urllib3's read timeout bounds each socket read, not the whole answer: once less than
    ``Timeout.read`` is left before the deadline, each read waits only what is left.
    """
    chunks: list[bytes] = []
    sock = getattr(response.connection, "sock", None) if deadline is not None else None
    shortened = False
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise _past_deadline(where, timeout)
            if sock is not None and timeout.read is not None and left < timeout.read:
                sock.settimeout(left)
                shortened = True
        try:
            chunk = response.read1(READ_CHUNK_BYTES)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise (_past_deadline if shortened else _stalled)(where, timeout) from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise _cut_short(where) from exc
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)


class AsyncRestTransport(AsyncTransport):
    """The same REST API on one ``httpx.AsyncClient`` (the ``[async]`` extra)."""

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        tls: Optional[TLSConfig] = None,
        headers: Headers = NO_HEADERS,
        pool_maxsize: int = DEFAULT_POOL_SIZE,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise MissingDependencyError("the async REST client", "async") from exc
        self._httpx = httpx
        self._replicas = _Replicas(base_urls, tls, headers)
        self.endpoint = self._replicas.endpoint
        self._headers = headers
        self._client = httpx.AsyncClient(
            verify=_ssl_context(tls) if tls else True,
            limits=httpx.Limits(
                max_connections=pool_maxsize * len(base_urls), max_keepalive_connections=pool_maxsize
            ),
            trust_env=False,
            follow_redirects=False,
        )

    def __repr__(self) -> str:
        return f"AsyncRestTransport(endpoint={self.endpoint!r}, headers={self._headers!r})"

    async def predict(self, call: PredictCall) -> dict[str, Tensor]:
        body = codec.predict_body(call.model, call.inputs)
        raw = await self._send("POST", lambda base: codec.predict_url(base, call.model), body, call.timeout)
        return codec.parse_predict(raw, _single_output(call))

    async def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus:
        raw = await self._send("GET", lambda base: codec.status_url(base, model), None, timeout)
        return codec.parse_status(raw, model.name)

    async def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata:
        raw = await self._send("GET", lambda base: codec.metadata_url(base, model), None, timeout)
        return codec.parse_metadata(raw)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _send(
        self, method: str, url_for: Callable[[str], str], body: Optional[bytes], timeout: Timeout
    ) -> bytes:
        replicas = self._replicas.order()
        for position, replica in enumerate(replicas):
            try:
                return await self._send_once(method, url_for(replica.url), replica, body, timeout)
            except ShixinConnectionError as exc:
                if not _failover(replica, exc, remaining=len(replicas) - position - 1):
                    raise
        raise AssertionError("unreachable: the last replica's error is always raised")

    async def _send_once(
        self, method: str, url: str, replica: _Replica, body: Optional[bytes], timeout: Timeout
    ) -> bytes:
        # httpx's timeouts bound each step; this bounds the whole answer (a trickling server).
        try:
            return await asyncio.wait_for(self._exchange(method, url, replica, body, timeout), timeout.total)
        except ShixinError:
            raise
        except asyncio.TimeoutError as exc:
            raise _past_deadline(replica.shown, timeout) from exc

    async def _exchange(
        self, method: str, url: str, replica: _Replica, body: Optional[bytes], timeout: Timeout
    ) -> bytes:
        httpx = self._httpx
        where = replica.shown
        request = self._client.build_request(
            method,
            url,
            content=body,
            headers=replica.headers,
            timeout=httpx.Timeout(
                connect=timeout.connect, read=timeout.read, write=timeout.read, pool=timeout.connect
            ),
        )
        try:
            response = await self._client.send(request, stream=True)
        except (httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise _connect_timeout(where, timeout) from exc
        except httpx.TimeoutException as exc:
            raise _no_answer(where, timeout) from exc
        except httpx.ConnectError as exc:
            raise _unreachable(where, exc) from exc
        except (httpx.HTTPError, ssl.SSLError) as exc:
            # httpcore lets TLS alerts that arrive after the handshake through unwrapped
            # (TLS 1.3 reports a refused client certificate on the first read).
            raise _dropped(where, exc) from exc
        try:
            content = await response.aread()
        except httpx.TimeoutException as exc:
            raise _stalled(where, timeout) from exc
        except ssl.SSLError as exc:
            raise _dropped(where, exc) from exc
        except httpx.HTTPError as exc:
            raise _cut_short(where) from exc
        finally:
            await response.aclose()
        return _check_status(response.status_code, response.headers, content, where)
