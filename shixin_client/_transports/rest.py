"""REST transports: urllib3 connection pools (sync) or one ``httpx.AsyncClient`` (async) per client.

Everything about the wire format lives in :mod:`._rest_codec`; this module only sends,
picks a replica, and maps each HTTP library's exceptions onto the ShixinError tree
(``raise ... from exc``), the same way for both libraries:

- could not connect, TLS handshake failed, connection reset -> ShixinConnectionError
  (and the next replica is tried, when there are several)
- connect or read deadline passed, or the whole answer took longer than
  ``Timeout.total`` (a server trickling bytes) -> ShixinTimeoutError
- the body was cut short or cannot be decoded -> BadResponseError
"""

from __future__ import annotations

import asyncio
import http.cookiejar
import itertools
import logging
import ssl
import threading
import time
import urllib.request
from collections.abc import Callable, Sequence
from typing import Optional
from urllib.parse import unquote, urlsplit

import urllib3
import urllib3.exceptions

from .._config import Headers, ModelRef, Timeout, TLSConfig
from .._exceptions import (
    BadResponseError,
    MissingDependencyError,
    ShixinConnectionError,
    ShixinError,
    ShixinTimeoutError,
)
from .._models import ModelMetadata, ModelStatus
from .._retry import parse_retry_after
from .._spec import OUTPUT_SOFTMAX
from . import _rest_codec as codec
from .base import AsyncTransport, PredictCall, SyncTransport, Tensor

logger = logging.getLogger("shixin_client")

#: Connections kept per replica: enough for a thread pool hammering one client.
POOL_MAXSIZE = 64
#: Bytes asked for per read of a body; each read returns as soon as some have arrived.
READ_CHUNK_BYTES = 64 * 1024
NO_HEADERS = Headers()
_JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json"}


class _Replicas:
    """The base URLs of one model server's replicas, handed out round-robin (thread-safe)."""

    def __init__(self, base_urls: Sequence[str], tls: Optional[TLSConfig]) -> None:
        if isinstance(base_urls, str) or not base_urls:
            raise ValueError("base_urls must be a non-empty list of http:// or https:// URLs")
        if tls is not None and tls.server_name is not None:
            # urllib3 and httpx check a certificate against the URL's host; refuse rather than ignore.
            raise ValueError(
                "TLSConfig.server_name is supported on gRPC only; use the certificate's host in the URL"
            )
        self.urls: list[str] = []
        shown: list[str] = []
        for url in base_urls:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http:// or https:// server URL: {_redact(url)!r}")
            if tls is not None and parts.scheme != "https":
                raise ValueError(f"tls= was given but {_redact(url)!r} is plain http://; use https://")
            if parts.query or parts.fragment:
                raise ValueError(f"server URL {_redact(url)!r} must not have a query or fragment")
            self.urls.append(url.rstrip("/"))
            shown.append(_redact(url))
        self.endpoint = ",".join(shown)
        self._counter = itertools.count()
        self._lock = threading.Lock()

    def order(self) -> list[str]:
        """Every replica once, starting one further along than the previous request did."""
        with self._lock:
            start = next(self._counter) % len(self.urls)
        return self.urls[start:] + self.urls[:start]


def _redact(url: str) -> str:
    """Scheme, host, port and path only: user:password@ never reaches a message or repr."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


def _single_output(call: PredictCall) -> str:
    """The name for an answer that carries one unnamed output (§1.5)."""
    return call.output_filter[0] if call.output_filter else OUTPUT_SOFTMAX


def _ssl_context(tls: TLSConfig) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=tls.ca_file)
    if tls.cert_file and tls.key_file:
        context.load_cert_chain(tls.cert_file, tls.key_file)
    return context


def _failover(replica: str, exc: ShixinConnectionError, remaining: int) -> bool:
    """Whether to try the next replica: only when this one could not be reached at all."""
    if isinstance(exc, ShixinTimeoutError) or remaining == 0:
        return False
    logger.warning("shixin_client: %s unreachable (%s); trying the next replica", _redact(replica), exc)
    return True


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
        pool_maxsize: int = POOL_MAXSIZE,
    ) -> None:
        self._replicas = _Replicas(base_urls, tls)
        self.endpoint = self._replicas.endpoint
        self._headers = headers
        self._pools = urllib3.PoolManager(
            num_pools=len(base_urls),
            maxsize=pool_maxsize,
            retries=False,
            ssl_context=_ssl_context(tls) if tls else None,
        )
        self._routes: dict[str, tuple[urllib3.HTTPConnectionPool, dict[str, str]]] = {}
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
        for position, base in enumerate(replicas):
            try:
                return self._send_once(method, url_for(base), base, body, timeout)
            except ShixinConnectionError as exc:
                if not _failover(base, exc, remaining=len(replicas) - position - 1):
                    raise
        raise AssertionError("unreachable: the last replica's error is always raised")

    def _route(self, base: str) -> tuple[urllib3.HTTPConnectionPool, dict[str, str]]:
        """The replica's pool and the headers every request to it carries (auth from its URL)."""
        route = self._routes.get(base)
        if route is None:
            parts = urlsplit(base)
            pool = self._pools.connection_from_host(parts.hostname, parts.port, parts.scheme)
            headers = {**_JSON_HEADERS, **self._headers.as_dict()}
            if parts.username is not None:
                credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
                headers["Authorization"] = urllib3.util.make_headers(basic_auth=credentials)["authorization"]
            route = self._routes.setdefault(base, (pool, headers))
        return route

    def _send_once(self, method: str, url: str, base: str, body: Optional[bytes], timeout: Timeout) -> bytes:
        where = _redact(base)
        pool, headers = self._route(base)
        parts = urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        if len(self._cookies):
            request = _cookie_view(parts.scheme, parts.netloc, target)
            self._cookies.add_cookie_header(request)
            cookie = request.get_header("Cookie")
            headers = {**headers, "Cookie": cookie} if cookie else headers
        deadline = None if timeout.total is None else time.monotonic() + timeout.total
        try:
            response = pool.urlopen(
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
            raise ShixinConnectionError(f"cannot reach {where}: {exc}") from exc
        except urllib3.exceptions.TimeoutError as exc:
            raise ShixinTimeoutError(f"no answer from {where} in time ({timeout}): {exc}") from exc
        except urllib3.exceptions.SSLError as exc:
            raise ShixinConnectionError(f"TLS handshake with {where} failed: {exc}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise ShixinConnectionError(f"cannot reach {where}: {exc}") from exc
        try:
            content = _read_body(response, where, timeout, deadline)
        except BaseException:
            response.close()  # a half-read answer leaves the connection unusable: never pool it
            raise
        finally:
            response.release_conn()
        if "Set-Cookie" in response.headers:
            view = _cookie_view(parts.scheme, parts.netloc, target)
            self._cookies.extract_cookies(_SetCookies(response.headers), view)  # type: ignore[arg-type]
        if response.status != 200:
            hint = parse_retry_after(response.headers.get("Retry-After"))
            raise codec.error_from_response(response.status, content, where, hint)
        return content


def _cookie_view(scheme: str, netloc: str, target: str) -> urllib.request.Request:
    """The request as ``CookieJar`` matches cookies against it: no credentials in the host."""
    return urllib.request.Request(f"{scheme}://{netloc.rpartition('@')[2]}{target}")


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

    urllib3's read timeout bounds each socket read, not the whole answer.
    """
    chunks: list[bytes] = []
    while True:
        try:
            chunk = response.read1(READ_CHUNK_BYTES)
        except urllib3.exceptions.ReadTimeoutError as exc:
            raise ShixinTimeoutError(f"the answer from {where} stalled ({timeout}): {exc}") from exc
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise BadResponseError(f"the answer from {where} was cut short: {exc}") from exc
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        if deadline is not None and time.monotonic() > deadline:
            raise ShixinTimeoutError(f"the answer from {where} did not finish within {timeout.total}s")


class AsyncRestTransport(AsyncTransport):
    """The same REST API on one ``httpx.AsyncClient`` (the ``[async]`` extra)."""

    def __init__(
        self,
        base_urls: Sequence[str],
        *,
        tls: Optional[TLSConfig] = None,
        headers: Headers = NO_HEADERS,
        pool_maxsize: int = POOL_MAXSIZE,
    ) -> None:
        try:
            import httpx
        except ImportError as exc:
            raise MissingDependencyError("the async REST client", "async") from exc
        self._httpx = httpx
        self._replicas = _Replicas(base_urls, tls)
        self.endpoint = self._replicas.endpoint
        self._headers = headers
        self._client = httpx.AsyncClient(
            verify=_ssl_context(tls) if tls else True,
            headers={**_JSON_HEADERS, **headers.as_dict()},
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

    async def close(self) -> None:
        await self._client.aclose()

    async def _send(
        self, method: str, url_for: Callable[[str], str], body: Optional[bytes], timeout: Timeout
    ) -> bytes:
        replicas = self._replicas.order()
        for position, base in enumerate(replicas):
            try:
                return await self._send_once(method, url_for(base), base, body, timeout)
            except ShixinConnectionError as exc:
                if not _failover(base, exc, remaining=len(replicas) - position - 1):
                    raise
        raise AssertionError("unreachable: the last replica's error is always raised")

    async def _send_once(
        self, method: str, url: str, base: str, body: Optional[bytes], timeout: Timeout
    ) -> bytes:
        where = _redact(base)
        # httpx's timeouts bound each read; this bounds the whole answer (a trickling server).
        try:
            return await asyncio.wait_for(self._exchange(method, url, where, body, timeout), timeout.total)
        except ShixinError:
            raise
        except asyncio.TimeoutError as exc:
            raise ShixinTimeoutError(
                f"the answer from {where} did not finish within {timeout.total}s"
            ) from exc

    async def _exchange(
        self, method: str, url: str, where: str, body: Optional[bytes], timeout: Timeout
    ) -> bytes:
        httpx = self._httpx
        # user:password@ goes in as Basic auth, not in the URL: httpx logs request URLs at INFO.
        target = httpx.URL(url)
        auth = httpx.BasicAuth(target.username, target.password) if target.userinfo else None
        request = self._client.build_request(
            method,
            target.copy_with(username=None, password=None),
            content=body,
            timeout=httpx.Timeout(
                connect=timeout.connect, read=timeout.read, write=timeout.read, pool=timeout.connect
            ),
        )
        try:
            response = await self._client.send(request, stream=True, auth=auth)
        except httpx.TimeoutException as exc:
            raise ShixinTimeoutError(f"no answer from {where} in time ({timeout}): {exc!r}") from exc
        except httpx.HTTPError as exc:
            raise ShixinConnectionError(f"cannot reach {where}: {exc!r}") from exc
        except ssl.SSLError as exc:
            # httpcore lets TLS alerts that arrive after the handshake through unwrapped
            # (TLS 1.3 reports a refused client certificate on the first read).
            raise ShixinConnectionError(f"TLS with {where} failed: {exc}") from exc
        try:
            content = await response.aread()
        except httpx.HTTPError as exc:
            raise BadResponseError(f"the answer from {where} was cut short: {exc!r}") from exc
        except ssl.SSLError as exc:
            raise ShixinConnectionError(f"TLS with {where} failed: {exc}") from exc
        finally:
            await response.aclose()
        if response.status_code != 200:
            hint = parse_retry_after(response.headers.get("Retry-After"))
            raise codec.error_from_response(response.status_code, content, where, hint)
        return content
