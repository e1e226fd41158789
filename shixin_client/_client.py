"""ShixinClient and AsyncShixinClient: one request/response model, two ways to wait.

Everything that does not wait on a socket lives once, in :class:`_BaseClient`: picking
the transport from the URL, merging per-call options, planning batches, building the
predict call and turning the softmax into :class:`Prediction` objects. The twins add
only the waiting: a short retry loop each (every decision comes from :mod:`._retry`)
and public methods of a few lines (build, send or ``await`` send, finish).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Optional, TypedDict, TypeVar, Union, overload
from urllib.parse import urlsplit

from ._batching import Batch, BatchPlan, Item, expand
from ._config import DEFAULT_BATCH_SIZE, Headers, ModelRef, RetryPolicy, Timeout, TLSConfig, server_from_env
from ._decode import alphabet_classes, to_predictions
from ._exceptions import (
    BadResponseError,
    InvalidInputError,
    MissingDependencyError,
    ModelNotFoundError,
    RequestRejectedError,
    ServerUnavailableError,
    ShixinConnectionError,
    ShixinError,
    ShixinTimeoutError,
    require_numpy,
)
from ._images import DEFAULT_LIMITS, ImageInput, ImageLimits, input_name, preprocess, wire_bytes
from ._models import ModelMetadata, ModelStatus, Prediction
from ._retry import RetryBudget, retry_delay
from ._spec import (
    DEFAULT_GRPC_PORT,
    DEFAULT_MODEL_NAME,
    DEFAULT_REST_PORT,
    DEFAULT_SPEC,
    DESCRIBE_OUTPUTS,
    INPUT_BYTES,
    INPUT_DESCRIBE,
    INPUT_FLOAT,
    OUTPUT_SOFTMAX,
    SIGNATURE_BYTES,
    SIGNATURE_DESCRIBE,
    SIGNATURE_FLOAT,
    CaptchaSpec,
)
from ._transports.base import AsyncTransport, PredictCall, SyncTransport, Tensor, TensorLike
from ._types import NOT_GIVEN, HeaderTypes, ModelTypes, NotGiven, RetryTypes, ServerTypes, TimeoutTypes

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger("shixin_client")

T = TypeVar("T")
_Client = TypeVar("_Client", bound="_BaseClient")
Result = Union[T, ShixinError]

#: How often wait_until_ready asks the server, in seconds.
READY_POLL_INTERVAL = 0.5


class CallOptions(TypedDict, total=False):
    """Per-call overrides; a key left out keeps the client's setting (``timeout=None``: no timeout)."""

    model: ModelTypes
    version: Optional[int]
    label: Optional[str]
    signature: Optional[str]
    float_input: bool
    timeout: TimeoutTypes


class ClientOptions(CallOptions, total=False):
    """What :meth:`with_options` may change besides the per-call options."""

    retry: RetryTypes
    batch_size: int
    beam_width: Optional[int]
    alphabet: Optional[str]
    image_limits: ImageLimits


@dataclass(frozen=True)
class _Options:
    model: ModelRef
    float_input: bool
    timeout: Timeout
    retry: RetryPolicy
    batch_size: int
    beam_width: Optional[int]
    image_limits: ImageLimits
    #: Characters a reading may contain (case folded); None: every class of the model.
    alphabet: Optional[str] = None

    def __post_init__(self) -> None:
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {self.batch_size!r}")
        if self.beam_width is not None and (not isinstance(self.beam_width, int) or self.beam_width < 1):
            raise ValueError(f"beam_width must be a positive int or None, got {self.beam_width!r}")
        if self.alphabet is not None and (not isinstance(self.alphabet, str) or not self.alphabet):
            raise ValueError(f"alphabet must be a non-empty string or None, got {self.alphabet!r}")
        if self.float_input and self.model.signature == SIGNATURE_BYTES:
            raise ValueError(f"float_input=True cannot be sent to the {SIGNATURE_BYTES!r} signature")

    @property
    def sends_floats(self) -> bool:
        return self.float_input or self.model.signature == SIGNATURE_FLOAT

    @property
    def signature(self) -> str:
        if self.model.signature:
            return self.model.signature
        return SIGNATURE_FLOAT if self.float_input else SIGNATURE_BYTES

    def merge(self, changes: Mapping[str, Any]) -> _Options:
        """These options with ``changes`` applied; an unknown key is a TypeError, as for any keyword."""
        if not changes:
            return self  # frozen: every call without options shares them
        unknown = set(changes) - set(ClientOptions.__annotations__)
        if unknown:
            raise TypeError(
                f"unknown option(s) {sorted(unknown)}; known: {sorted(ClientOptions.__annotations__)}"
            )
        model = self.model

        def given(key: str) -> Any:
            return changes.get(key, NOT_GIVEN)

        if not isinstance(new_model := given("model"), NotGiven):
            model = (
                new_model
                if isinstance(new_model, ModelRef)
                else ModelRef(str(new_model), signature=model.signature)
            )
        if not isinstance(version := given("version"), NotGiven):
            model = replace(model, version=version, label=None if version is not None else model.label)
        if not isinstance(label := given("label"), NotGiven):
            if label is not None and not isinstance(version, NotGiven) and version is not None:
                raise ValueError("give a model version or a version label, not both")
            model = replace(model, label=label, version=None if label is not None else model.version)
        if not isinstance(signature := given("signature"), NotGiven):
            model = replace(model, signature=signature)
        fields: dict[str, Any] = {"model": model}
        if not isinstance(timeout := given("timeout"), NotGiven):
            fields["timeout"] = Timeout.coerce(timeout)
        if not isinstance(retry := given("retry"), NotGiven):
            fields["retry"] = RetryPolicy.coerce(retry)
        for key in ("float_input", "batch_size", "beam_width", "alphabet", "image_limits"):
            if not isinstance(value := given(key), NotGiven):
                fields[key] = value
        return replace(self, **fields)


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
        raise ValueError("no server URL given")
    schemes = {url.split("://", 1)[0].lower() if "://" in url else "" for url in urls}
    if schemes <= {"http", "https"}:
        return "rest", [_rest_url(url) for url in urls], schemes == {"https"}
    if len(urls) == 1 and schemes <= {"grpc", "grpcs"}:
        scheme = schemes.pop()
        return "grpc", [_grpc_target(urls[0], scheme)], scheme == "grpcs"
    if schemes <= {"grpc", "grpcs"}:
        raise ValueError("for several gRPC replicas use one grpc://dns:///host:port URL, not a list")
    raise ValueError(
        f"unsupported server URL(s) {[_shown(u) for u in urls]}: use http://, https:// (REST), grpc:// or grpcs://"
    )


def _shown(url: str) -> str:
    parts = urlsplit(url if "://" in url else f"//{url}")
    return url.replace(f"{parts.username}:{parts.password}@", "") if parts.password else url


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
        raise ValueError(f"a gRPC URL is {scheme}://host:port, got {_shown(url)!r}")
    parts = urlsplit(f"//{target}")
    if parts.port is None and scheme == "grpc":
        return f"{target}:{DEFAULT_GRPC_PORT}"
    return target


def _first(tensor: TensorLike) -> Any:
    """The first element of a tensor, in row-major order."""
    if isinstance(tensor, Tensor):
        return tensor.values[0]
    return tensor.reshape(-1)[0]


def spec_from_describe(outputs: Mapping[str, TensorLike]) -> CaptchaSpec:
    """The model's own description, from row 0 of the ``describe`` signature's outputs."""
    try:
        values: dict[str, Any] = {}
        for name in DESCRIBE_OUTPUTS:
            first = _first(outputs[name])
            if name == "charset":
                values[name] = first.decode("utf-8") if isinstance(first, bytes) else str(first)
            else:
                values[name] = int(first)
        return CaptchaSpec(**values)
    except (KeyError, IndexError, ValueError, TypeError, UnicodeDecodeError) as exc:
        raise BadResponseError(f"the model's describe signature gave an unusable answer: {exc!r}") from exc


class _Shared:
    """What a client and its ``with_options`` copies share: the transport, the budget, the specs."""

    def __init__(self, transport: Any, retry: RetryPolicy) -> None:
        self.transport = transport
        self.budget = RetryBudget(retry)
        self.specs: dict[tuple[str, Optional[int], Optional[str]], CaptchaSpec] = {}
        self.lock = threading.Lock()


class _BaseClient:
    """Options, transport choice, request building and result decoding; no I/O at all."""

    _shared: _Shared
    _options: _Options

    def _setup(
        self,
        server: Optional[ServerTypes],
        transport: Optional[Any],
        transport_type: type,
        asynchronous: bool,
        *,
        model: ModelTypes,
        version: Optional[int],
        label: Optional[str],
        signature: Optional[str],
        float_input: bool,
        timeout: TimeoutTypes,
        retry: RetryTypes,
        tls: Optional[TLSConfig],
        headers: HeaderTypes,
        batch_size: int,
        beam_width: Optional[int],
        image_limits: ImageLimits,
        alphabet: Optional[str] = None,
    ) -> None:
        ref = ModelRef.coerce(model)
        ref = replace(
            ref,
            version=ref.version if version is None else version,
            label=ref.label if label is None else label,
            signature=ref.signature if signature is None else signature,
        )
        self._options = _Options(
            model=ref,
            float_input=float_input,
            timeout=Timeout.coerce(timeout),
            retry=RetryPolicy.coerce(retry),
            batch_size=batch_size,
            beam_width=beam_width,
            image_limits=image_limits,
            alphabet=alphabet,
        )
        if transport is None:
            transport = _make_transport(server, tls, Headers.coerce(_header_dict(headers)), asynchronous)
        elif server is not None:
            raise ValueError("give a server URL or a transport, not both")
        if not isinstance(transport, transport_type):
            raise TypeError(
                f"{type(self).__name__} needs a {transport_type.__name__}, got {type(transport).__name__}"
                + (" (wrap it in ThreadedAsyncTransport)" if isinstance(transport, SyncTransport) else "")
            )
        self._shared = _Shared(transport, self._options.retry)

    def __repr__(self) -> str:
        model = self._options.model
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, model={model.name!r})"

    @property
    def endpoint(self) -> str:
        """Where requests go: scheme, host and port only, safe to print."""
        return str(self._shared.transport.endpoint)

    @property
    def model(self) -> ModelRef:
        return self._options.model

    @property
    def timeout(self) -> Timeout:
        return self._options.timeout

    @property
    def batch_size(self) -> int:
        """Images per request in the ``*_many`` methods unless a call says otherwise."""
        return self._options.batch_size

    def _copy_with(self: _Client, changes: Mapping[str, Any]) -> _Client:
        clone = copy.copy(self)
        clone._options = self._options.merge(changes)
        return clone

    # Retries: the decision, never the waiting.
    def _retry_delay(self, error: ShixinError, attempt: int) -> Optional[float]:
        delay = retry_delay(error, attempt, self._options.retry)
        if delay is None:
            return None
        if not self._shared.budget.try_spend():
            logger.warning("shixin_client: retry budget exhausted; not retrying %s", type(error).__name__)
            return None
        logger.info(
            "shixin_client: retrying %s in %.2fs after %s (retry %d of %d): %s",
            self.endpoint,
            delay,
            type(error).__name__,
            attempt + 1,
            self._options.retry.max_retries,
            error,
        )
        return delay

    # Spec discovery.
    @staticmethod
    def _spec_key(options: _Options) -> tuple[str, Optional[int], Optional[str]]:
        return (options.model.name, options.model.version, options.model.label)

    def _cached_spec(self, options: _Options) -> Optional[CaptchaSpec]:
        with self._shared.lock:
            return self._shared.specs.get(self._spec_key(options))

    def _describe_call(self, options: _Options) -> PredictCall:
        return PredictCall(
            model=options.model.with_signature(SIGNATURE_DESCRIBE),
            inputs={INPUT_DESCRIBE: Tensor("int32", (1,), [0])},
            timeout=options.timeout,
            output_filter=DESCRIBE_OUTPUTS,
        )

    def _remember_spec(self, options: _Options, spec: CaptchaSpec) -> CaptchaSpec:
        with self._shared.lock:
            return self._shared.specs.setdefault(self._spec_key(options), spec)

    def _spec_from_failure(self, options: _Options, error: RequestRejectedError) -> CaptchaSpec:
        """A model without a ``describe`` signature is the reference model."""
        logger.debug(
            "shixin_client: %s has no describe signature (%s); using DEFAULT_SPEC", options.model.name, error
        )
        return self._remember_spec(options, DEFAULT_SPEC)

    # Requests.
    @staticmethod
    def _one(image: ImageInput) -> list[ImageInput]:
        items = expand([image])
        if len(items) != 1:
            raise InvalidInputError(input_name(image), f"holds {len(items)} images; use the *_many() methods")
        return [image]

    def _plan(
        self,
        images: Iterable[ImageInput],
        options: _Options,
        spec: CaptchaSpec,
        batch_size: Optional[int],
        return_exceptions: bool,
    ) -> BatchPlan[Prediction]:
        if options.sends_floats:

            def encode(item: Item) -> Any:
                return preprocess(item.image, spec, name=item.name, limits=options.image_limits)

        else:

            def encode(item: Item) -> Any:
                return wire_bytes(item.image, spec, name=item.name, limits=options.image_limits)

        size = options.batch_size if batch_size is None else batch_size
        return BatchPlan(expand(images), encode, size, return_exceptions=return_exceptions)

    @staticmethod
    def _check_features(options: _Options, with_softmax: bool) -> None:
        """Refuse what needs numpy up front, before any request, when numpy is missing."""
        if options.sends_floats:
            require_numpy(f"float tensors (float_input=True, the {SIGNATURE_FLOAT!r} signature)")
        if options.beam_width is not None:
            require_numpy("beam search (beam_width)")
        if with_softmax:
            require_numpy("softmax arrays (with_softmax=True)")

    @staticmethod
    def _check_alphabet(options: _Options, spec: CaptchaSpec) -> None:
        """An alphabet the model cannot read is refused before any image is sent."""
        if options.alphabet is not None:
            alphabet_classes(spec, options.alphabet)

    def _predict_call(self, batch: Batch, options: _Options) -> PredictCall:
        inputs: dict[str, TensorLike]
        if options.sends_floats:
            inputs = {INPUT_FLOAT: require_numpy("float tensors").stack(batch.encoded)}
        else:
            inputs = {INPUT_BYTES: Tensor.strings(batch.encoded)}
        return PredictCall(
            model=options.model.with_signature(options.signature),
            inputs=inputs,
            timeout=options.timeout,
            output_filter=(OUTPUT_SOFTMAX,),
        )

    def _finish(
        self,
        outputs: Mapping[str, TensorLike],
        batch: Batch,
        options: _Options,
        spec: CaptchaSpec,
        keep: bool,
    ) -> list[Prediction]:
        """Softmax rows -> Predictions, after checking the answer fits exactly what was sent."""
        softmax = outputs.get(OUTPUT_SOFTMAX)
        if softmax is None and len(outputs) == 1:
            softmax = next(iter(outputs.values()))
        if softmax is None:
            raise BadResponseError(f"the answer has no {OUTPUT_SOFTMAX!r} output, only {sorted(outputs)}")
        expected = (len(batch.indices), spec.time_steps, spec.num_classes)
        floats = (
            softmax.dtype.startswith("float") if isinstance(softmax, Tensor) else softmax.dtype.kind == "f"
        )
        if softmax.ndim != 3 or not floats or softmax.shape[0] != expected[0]:
            raise BadResponseError(
                f"sent {expected[0]} image(s) but got a {softmax.dtype} softmax of shape {softmax.shape}, "
                f"expecting {list(expected)}"
            )
        return to_predictions(
            softmax, spec, beam_width=options.beam_width, keep_softmax=keep, alphabet=options.alphabet
        )

    @staticmethod
    def _texts(results: Sequence[Result[Prediction]]) -> list[Result[str]]:
        return [result.text if isinstance(result, Prediction) else result for result in results]

    @staticmethod
    def _is_ready_failure(error: ShixinError) -> bool:
        return isinstance(error, (ModelNotFoundError, ServerUnavailableError, ShixinConnectionError))

    def _not_ready(self, waited: float) -> ShixinTimeoutError:
        return ShixinTimeoutError(
            f"model {self._options.model.name!r} on {self.endpoint} was not ready after {waited:.1f}s"
        )


def _header_dict(headers: HeaderTypes) -> Union[Headers, dict[str, str], None]:
    return headers if headers is None or isinstance(headers, Headers) else dict(headers)


def _make_transport(
    server: Optional[ServerTypes], tls: Optional[TLSConfig], headers: Headers, asynchronous: bool
) -> Any:
    server = server if server is not None else server_from_env()
    if server is None:
        raise ValueError("no server: pass a URL, set $SHIXIN_SERVER, or use ShixinClient.local()")
    kind, addresses, secure = parse_server(server)
    if kind == "rest":
        from ._transports.rest import AsyncRestTransport, RestTransport

        rest = AsyncRestTransport if asynchronous else RestTransport
        return rest(addresses, tls=tls, headers=headers)
    try:
        from ._transports import grpc as grpc_transport
    except ImportError as exc:
        raise MissingDependencyError("the gRPC transport", "grpc") from exc
    grpc_class = grpc_transport.AsyncGrpcTransport if asynchronous else grpc_transport.GrpcTransport
    return grpc_class(addresses[0], tls=tls, secure=secure, headers=headers)


_NO_HEADERS = Headers()
_DEFAULT_TIMEOUT = Timeout()
_DEFAULT_RETRY = RetryPolicy()


class ShixinClient(_BaseClient):
    """Recognise captchas on a TF Serving model over REST (``http(s)://``) or gRPC (``grpc(s)://``).

    One connection pool (or gRPC channel) per client, safe to share between threads;
    ``with_options`` copies share it. Transient failures are retried with backoff.
    """

    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def __init__(
        self,
        server: Optional[ServerTypes] = None,
        *,
        model: ModelTypes = DEFAULT_MODEL_NAME,
        version: Optional[int] = None,
        label: Optional[str] = None,
        signature: Optional[str] = None,
        float_input: bool = False,
        timeout: TimeoutTypes = _DEFAULT_TIMEOUT,
        retry: RetryTypes = _DEFAULT_RETRY,
        tls: Optional[TLSConfig] = None,
        headers: HeaderTypes = _NO_HEADERS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        beam_width: Optional[int] = None,
        alphabet: Optional[str] = None,
        image_limits: ImageLimits = DEFAULT_LIMITS,
        transport: Optional[SyncTransport] = None,
    ) -> None:
        self._setup(
            server,
            transport,
            SyncTransport,
            False,
            model=model,
            version=version,
            label=label,
            signature=signature,
            float_input=float_input,
            timeout=timeout,
            retry=retry,
            tls=tls,
            headers=headers,
            batch_size=batch_size,
            beam_width=beam_width,
            image_limits=image_limits,
            alphabet=alphabet,
        )

    @classmethod
    def local(
        cls,
        model_path: Optional[Path] = None,
        *,
        threads: Optional[int] = None,
        int8: bool = True,
        **options: Unpack[ClientOptions],
    ) -> ShixinClient:
        """A client on the embedded LiteRT model (the ``[local]`` extra): no server, no network.

        It sends float tensors by default: with no wire to save, encoding each picture as
        a PNG only for the transport to decode it again would double the work. ``threads``
        is LiteRT's thread count for batches (default: every core, up to 4; one image at a
        time runs on one thread). ``int8`` runs the model's
        int8 companion first where there is one (the shipped model has): about twice as
        fast, with the float model reading whatever the companion is unsure of, so the
        strings stay the float model's; ``int8=False`` runs only the float model.
        """
        from ._transports.local import LocalTransport

        transport = LocalTransport(model_path, threads, int8)
        return cls(transport=transport, float_input=True)._copy_with(options)

    def with_options(self, **changes: Unpack[ClientOptions]) -> ShixinClient:
        """A copy with some options changed, sharing this client's connections, budget and specs."""
        return self._copy_with(changes)

    def recognize(self, image: ImageInput, **options: Unpack[CallOptions]) -> str:
        return self.predict(image, **options).text

    @overload
    def recognize_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: Literal[False] = False,
        **options: Unpack[CallOptions],
    ) -> list[str]: ...
    @overload
    def recognize_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: Literal[True],
        **options: Unpack[CallOptions],
    ) -> list[Result[str]]: ...
    def recognize_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: bool = False,
        **options: Unpack[CallOptions],
    ) -> Union[list[str], list[Result[str]]]:
        """Texts in input order, in as few requests as ``batch_size`` allows.

        With ``return_exceptions=True`` a bad image or a failed request leaves its
        ShixinError in the affected slots and every other answer still comes back.
        """
        return self._texts(self._predict_many(images, batch_size, return_exceptions, False, options))

    def predict(
        self, image: ImageInput, *, with_softmax: bool = False, **options: Unpack[CallOptions]
    ) -> Prediction:
        return self.predict_many(self._one(image), with_softmax=with_softmax, **options)[0]

    @overload
    def predict_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: Literal[False] = False,
        with_softmax: bool = False,
        **options: Unpack[CallOptions],
    ) -> list[Prediction]: ...
    @overload
    def predict_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: Literal[True],
        with_softmax: bool = False,
        **options: Unpack[CallOptions],
    ) -> list[Result[Prediction]]: ...
    def predict_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: bool = False,
        with_softmax: bool = False,
        **options: Unpack[CallOptions],
    ) -> Union[list[Prediction], list[Result[Prediction]]]:
        return self._predict_many(images, batch_size, return_exceptions, with_softmax, options)

    def status(self, **options: Unpack[CallOptions]) -> ModelStatus:
        opts = self._options.merge(options)
        return self._send(lambda: self._shared.transport.status(opts.model, opts.timeout))

    def metadata(self, **options: Unpack[CallOptions]) -> ModelMetadata:
        opts = self._options.merge(options)
        return self._send(lambda: self._shared.transport.metadata(opts.model, opts.timeout))

    def ready(self, **options: Unpack[CallOptions]) -> bool:
        """Whether some version of the model is AVAILABLE now; one attempt, no retries."""
        opts = self._options.merge(options)
        try:
            return bool(self._shared.transport.status(opts.model, opts.timeout).ready)
        except ShixinError as exc:
            if self._is_ready_failure(exc):
                return False
            raise

    def wait_until_ready(self, timeout: float = 60.0) -> None:
        """Block until :meth:`ready`; ShixinTimeoutError after ``timeout`` seconds."""
        start = time.monotonic()
        while not self.ready():
            if time.monotonic() - start >= timeout:
                raise self._not_ready(time.monotonic() - start)
            self._sleep(READY_POLL_INTERVAL)

    @property
    def spec(self) -> CaptchaSpec:
        """The model's CaptchaSpec: its ``describe`` signature's answer, else DEFAULT_SPEC."""
        return self._spec(self._options)

    def get_spec(self, **options: Unpack[CallOptions]) -> CaptchaSpec:
        return self._spec(self._options.merge(options))

    def close(self) -> None:
        self._shared.transport.close()

    def __enter__(self) -> ShixinClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _predict_many(
        self,
        images: Iterable[ImageInput],
        batch_size: Optional[int],
        return_exceptions: bool,
        with_softmax: bool,
        options: Mapping[str, Any],
    ) -> list[Result[Prediction]]:
        opts = self._options.merge(options)
        self._check_features(opts, with_softmax)
        spec = self._spec(opts)
        self._check_alphabet(opts, spec)
        plan = self._plan(images, opts, spec, batch_size, return_exceptions)
        for batch in plan.batches:
            call = self._predict_call(batch, opts)
            try:
                outputs = self._send(partial(self._shared.transport.predict, call))
                plan.fill(batch, self._finish(outputs, batch, opts, spec, with_softmax))
            except ShixinError as exc:
                plan.fail(batch, exc)
        return plan.results()

    def _spec(self, options: _Options) -> CaptchaSpec:
        cached = self._cached_spec(options)
        if cached is not None:
            return cached
        try:
            outputs = self._send(lambda: self._shared.transport.predict(self._describe_call(options)))
        except RequestRejectedError as exc:
            return self._spec_from_failure(options, exc)
        return self._remember_spec(options, spec_from_describe(outputs))

    def _send(self, request: Callable[[], T]) -> T:
        self._shared.budget.record_request()
        attempt = 0
        while True:
            try:
                return request()
            except ShixinError as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
            self._sleep(delay)
            attempt += 1


class AsyncShixinClient(_BaseClient):
    """The asyncio twin of :class:`ShixinClient`: the same options, methods and results.

    ``spec`` is known once a call has fetched it; ``await client.get_spec()`` fetches it.
    """

    _sleep: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    def __init__(
        self,
        server: Optional[ServerTypes] = None,
        *,
        model: ModelTypes = DEFAULT_MODEL_NAME,
        version: Optional[int] = None,
        label: Optional[str] = None,
        signature: Optional[str] = None,
        float_input: bool = False,
        timeout: TimeoutTypes = _DEFAULT_TIMEOUT,
        retry: RetryTypes = _DEFAULT_RETRY,
        tls: Optional[TLSConfig] = None,
        headers: HeaderTypes = _NO_HEADERS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        beam_width: Optional[int] = None,
        alphabet: Optional[str] = None,
        image_limits: ImageLimits = DEFAULT_LIMITS,
        transport: Optional[AsyncTransport] = None,
    ) -> None:
        self._setup(
            server,
            transport,
            AsyncTransport,
            True,
            model=model,
            version=version,
            label=label,
            signature=signature,
            float_input=float_input,
            timeout=timeout,
            retry=retry,
            tls=tls,
            headers=headers,
            batch_size=batch_size,
            beam_width=beam_width,
            image_limits=image_limits,
            alphabet=alphabet,
        )

    @classmethod
    def local(
        cls,
        model_path: Optional[Path] = None,
        *,
        threads: Optional[int] = None,
        int8: bool = True,
        **options: Unpack[ClientOptions],
    ) -> AsyncShixinClient:
        """The embedded model (see :meth:`ShixinClient.local`); each inference runs in a worker
        thread, off the event loop."""
        from ._transports.local import LocalTransport, ThreadedAsyncTransport

        transport = ThreadedAsyncTransport(LocalTransport(model_path, threads, int8))
        return cls(transport=transport, float_input=True)._copy_with(options)

    def with_options(self, **changes: Unpack[ClientOptions]) -> AsyncShixinClient:
        return self._copy_with(changes)

    async def recognize(self, image: ImageInput, **options: Unpack[CallOptions]) -> str:
        return (await self.predict(image, **options)).text

    @overload
    async def recognize_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: Literal[False] = False,
        **options: Unpack[CallOptions],
    ) -> list[str]: ...
    @overload
    async def recognize_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: Literal[True],
        **options: Unpack[CallOptions],
    ) -> list[Result[str]]: ...
    async def recognize_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: bool = False,
        **options: Unpack[CallOptions],
    ) -> Union[list[str], list[Result[str]]]:
        return self._texts(await self._predict_many(images, batch_size, return_exceptions, False, options))

    async def predict(
        self, image: ImageInput, *, with_softmax: bool = False, **options: Unpack[CallOptions]
    ) -> Prediction:
        return (await self.predict_many(self._one(image), with_softmax=with_softmax, **options))[0]

    @overload
    async def predict_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: Literal[False] = False,
        with_softmax: bool = False,
        **options: Unpack[CallOptions],
    ) -> list[Prediction]: ...
    @overload
    async def predict_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: Literal[True],
        with_softmax: bool = False,
        **options: Unpack[CallOptions],
    ) -> list[Result[Prediction]]: ...
    async def predict_many(
        self,
        images: Iterable[ImageInput],
        *,
        batch_size: Optional[int] = None,
        return_exceptions: bool = False,
        with_softmax: bool = False,
        **options: Unpack[CallOptions],
    ) -> Union[list[Prediction], list[Result[Prediction]]]:
        return await self._predict_many(images, batch_size, return_exceptions, with_softmax, options)

    async def status(self, **options: Unpack[CallOptions]) -> ModelStatus:
        opts = self._options.merge(options)
        return await self._send(lambda: self._shared.transport.status(opts.model, opts.timeout))

    async def metadata(self, **options: Unpack[CallOptions]) -> ModelMetadata:
        opts = self._options.merge(options)
        return await self._send(lambda: self._shared.transport.metadata(opts.model, opts.timeout))

    async def ready(self, **options: Unpack[CallOptions]) -> bool:
        opts = self._options.merge(options)
        try:
            return bool((await self._shared.transport.status(opts.model, opts.timeout)).ready)
        except ShixinError as exc:
            if self._is_ready_failure(exc):
                return False
            raise

    async def wait_until_ready(self, timeout: float = 60.0) -> None:
        start = time.monotonic()
        while not await self.ready():
            if time.monotonic() - start >= timeout:
                raise self._not_ready(time.monotonic() - start)
            await self._sleep(READY_POLL_INTERVAL)

    @property
    def spec(self) -> CaptchaSpec:
        """The model's CaptchaSpec once fetched (by any call, or ``await get_spec()``)."""
        cached = self._cached_spec(self._options)
        if cached is None:
            raise RuntimeError("the async client's spec is not fetched yet: use `await client.get_spec()`")
        return cached

    async def get_spec(self, **options: Unpack[CallOptions]) -> CaptchaSpec:
        return await self._spec(self._options.merge(options))

    async def aclose(self) -> None:
        await self._shared.transport.close()

    async def __aenter__(self) -> AsyncShixinClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _predict_many(
        self,
        images: Iterable[ImageInput],
        batch_size: Optional[int],
        return_exceptions: bool,
        with_softmax: bool,
        options: Mapping[str, Any],
    ) -> list[Result[Prediction]]:
        opts = self._options.merge(options)
        self._check_features(opts, with_softmax)
        spec = await self._spec(opts)
        self._check_alphabet(opts, spec)
        plan = self._plan(images, opts, spec, batch_size, return_exceptions)
        for batch in plan.batches:
            call = self._predict_call(batch, opts)
            try:
                outputs = await self._send(partial(self._shared.transport.predict, call))
                plan.fill(batch, self._finish(outputs, batch, opts, spec, with_softmax))
            except ShixinError as exc:
                plan.fail(batch, exc)
        return plan.results()

    async def _spec(self, options: _Options) -> CaptchaSpec:
        cached = self._cached_spec(options)
        if cached is not None:
            return cached
        try:
            outputs = await self._send(lambda: self._shared.transport.predict(self._describe_call(options)))
        except RequestRejectedError as exc:
            return self._spec_from_failure(options, exc)
        return self._remember_spec(options, spec_from_describe(outputs))

    async def _send(self, request: Callable[[], Awaitable[T]]) -> T:
        self._shared.budget.record_request()
        attempt = 0
        while True:
            try:
                return await request()
            except ShixinError as exc:
                delay = self._retry_delay(exc, attempt)
                if delay is None:
                    raise
            await self._sleep(delay)
            attempt += 1
