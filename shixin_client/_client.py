"""ShixinClient and AsyncShixinClient: one request/response model, two ways to wait.

Everything that does not wait on a socket lives once, in :class:`_BaseClient`: the
constructor, picking the transport from the URL, merging per-call options, finding the
model's spec, planning batches, building the predict call, turning the softmax into
:class:`Prediction` objects, and every retry decision. The twins add only the waiting:
a short retry loop each and public methods of a few lines (build, send or ``await``
send, finish).
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Optional, TypedDict, TypeVar, Union, overload

from ._batching import Batch, BatchPlan, Item, expand
from ._config import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_LIMITS,
    DEFAULT_LOCAL_PAYLOAD,
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_PAYLOAD,
    DEFAULT_READY_TIMEOUT,
    DEFAULT_RETRY,
    DEFAULT_TIMEOUT,
    NO_HEADERS,
    READY_POLL_INTERVAL,
    Headers,
    ImageLimits,
    ModelRef,
    RetryPolicy,
    Timeout,
    TLSConfig,
    confidence_threshold,
    positive_int,
    server_from_env,
)
from ._decode.alphabet import alphabet_classes
from ._decode.predictions import predictions
from ._exceptions import (
    BadResponseError,
    InvalidInputError,
    LowConfidenceError,
    MissingDependencyError,
    ModelNotFoundError,
    RequestRejectedError,
    ServerUnavailableError,
    ShixinConnectionError,
    ShixinError,
    ShixinTimeoutError,
    UsageError,
    require_numpy,
)
from ._images import ImageInput, input_name, preprocess, wire_bytes
from ._models import ModelMetadata, ModelStatus, Prediction
from ._retry import RetryBudget, retry_delay
from ._spec import (
    DEFAULT_MODEL_NAME,
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
from ._tensor import Tensor, TensorLike
from ._transports.base import AsyncTransport, PredictCall, SyncTransport, ThreadedAsyncTransport
from ._types import HeaderTypes, ModelTypes, Payload, RetryTypes, ServerTypes, TimeoutTypes
from ._urls import parse_server

if TYPE_CHECKING:
    from typing_extensions import Unpack

logger = logging.getLogger("shixin_client")

T = TypeVar("T")
_Client = TypeVar("_Client", bound="_BaseClient")
Result = Union[T, ShixinError]
_SpecKey = tuple[str, Optional[int], Optional[str]]

#: Each payload's signature in an exported model, and its input alias there.
_SIGNATURES: dict[str, tuple[str, str]] = {
    "image": (SIGNATURE_BYTES, INPUT_BYTES),
    "tensor": (SIGNATURE_FLOAT, INPUT_FLOAT),
}


class CallOptions(TypedDict, total=False):
    """Per-call overrides; a key left out keeps the client's setting (``timeout=None``: no timeout)."""

    model: ModelTypes
    version: Optional[int]
    label: Optional[str]
    signature: Optional[str]
    payload: Payload
    timeout: TimeoutTypes


class ClientOptions(CallOptions, total=False):
    """What :meth:`~ShixinClient.with_options` and ``local()`` may set besides the per-call options."""

    retry: RetryTypes
    batch_size: int
    beam_width: Optional[int]
    alphabet: Optional[str]
    image_limits: ImageLimits
    min_confidence: float


@dataclass(frozen=True)
class _Options:
    model: ModelRef
    payload: Payload
    timeout: Timeout
    retry: RetryPolicy
    batch_size: int
    beam_width: Optional[int]
    image_limits: ImageLimits
    #: Characters a reading may contain (case folded); None: every class of the model.
    alphabet: Optional[str] = None
    #: recognize refuses readings less confident than this (0: accepts every reading).
    min_confidence: float = DEFAULT_MIN_CONFIDENCE

    def __post_init__(self) -> None:
        if self.payload not in _SIGNATURES:
            raise InvalidInputError("payload", f"must be 'image' or 'tensor', got {self.payload!r}")
        positive_int("batch_size", self.batch_size)
        if self.beam_width is not None:
            positive_int("beam_width", self.beam_width)
        if self.alphabet is not None and (not isinstance(self.alphabet, str) or not self.alphabet):
            raise InvalidInputError("alphabet", f"must be a non-empty string or None, got {self.alphabet!r}")
        confidence_threshold(self.min_confidence)
        for payload, (signature, _) in _SIGNATURES.items():
            if self.model.signature == signature and self.payload != payload:
                raise InvalidInputError(
                    "signature",
                    f"{signature!r} reads the {'image file' if payload == 'image' else 'float tensor'}, "
                    f"but payload={self.payload!r}; pass payload={payload!r} to send it",
                )

    @property
    def signature(self) -> str:
        """The signature named by the model reference, else the one the payload's exported model has."""
        return self.model.signature or _SIGNATURES[self.payload][0]

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
        if "model" in changes:
            new = changes["model"]
            model = new if isinstance(new, ModelRef) else ModelRef(str(new), signature=model.signature)
        version, label = changes.get("version"), changes.get("label")
        if version is not None and label is not None:
            raise InvalidInputError("version", "give a model version or a version label, not both")
        if "version" in changes:
            model = replace(model, version=version, label=None if version is not None else model.label)
        if "label" in changes:
            model = replace(model, label=label, version=None if label is not None else model.version)
        if "signature" in changes:
            model = replace(model, signature=changes["signature"])
        fields: dict[str, Any] = {"model": model}
        if "timeout" in changes:
            fields["timeout"] = Timeout.coerce(changes["timeout"])
        if "retry" in changes:
            fields["retry"] = RetryPolicy.coerce(changes["retry"])
        for key in ("payload", "batch_size", "beam_width", "alphabet", "image_limits", "min_confidence"):
            if key in changes:
                fields[key] = changes[key]
        return replace(self, **fields)


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
    """What a client and its ``with_options`` copies share: the transport, the retry budgets
    (one per RetryPolicy in use), the specs found, and one fetch at a time per model."""

    def __init__(self, transport: Any) -> None:
        self.transport = transport
        self.specs: dict[_SpecKey, CaptchaSpec] = {}
        self._budgets: dict[RetryPolicy, RetryBudget] = {}
        self._fetching: dict[_SpecKey, Any] = {}
        self._lock = threading.Lock()

    def budget(self, policy: RetryPolicy) -> RetryBudget:
        budget = self._budgets.get(policy)
        if budget is None:
            with self._lock:
                budget = self._budgets.setdefault(policy, RetryBudget(policy))
        return budget

    def fetch_lock(self, key: _SpecKey, make: Callable[[], T]) -> T:
        """The lock that lets one caller at a time fetch ``key``'s spec (a threading or asyncio lock)."""
        with self._lock:
            lock: T = self._fetching.setdefault(key, make())
        return lock


class _BaseClient:
    """Options, transport choice, spec discovery, request building, decoding and retry
    decisions; no I/O at all."""

    #: The transport class a twin sends through, and whether it waits with asyncio.
    _transport_type: ClassVar[type]
    _asynchronous: ClassVar[bool]
    _shared: _Shared
    _options: _Options

    def __init__(
        self,
        server: Optional[ServerTypes] = None,
        *,
        model: ModelTypes = DEFAULT_MODEL_NAME,
        version: Optional[int] = None,
        label: Optional[str] = None,
        signature: Optional[str] = None,
        payload: Payload = DEFAULT_PAYLOAD,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        retry: RetryTypes = DEFAULT_RETRY,
        tls: Optional[TLSConfig] = None,
        headers: HeaderTypes = NO_HEADERS,
        batch_size: int = DEFAULT_BATCH_SIZE,
        beam_width: Optional[int] = None,
        alphabet: Optional[str] = None,
        image_limits: ImageLimits = DEFAULT_LIMITS,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        transport: Union[SyncTransport, AsyncTransport, None] = None,
    ) -> None:
        """A client for one model on one server (or on several REST replicas).

        ``server`` is ``http(s)://host[:port]`` (REST; a list or a comma-separated string
        for replicas), ``grpc(s)://host[:port]`` or ``grpc://dns:///name:port``; without
        one, ``$SHIXIN_SERVER`` is read. Ports default to TF Serving's (8501 REST, 8500
        gRPC). ``model``, ``version`` or ``label``, and ``signature`` address the model.
        ``payload`` chooses what is sent: ``"image"``, the preprocessed picture as a small
        PNG, to the ``serving_bytes`` signature, or ``"tensor"``, the float tensor, to
        ``serving_default`` (``signature=`` renames the signature, never the payload).
        ``timeout`` is seconds, ``(connect, read)`` or a :class:`Timeout` (which says
        exactly what each bound covers); ``retry`` a number of retries or a
        :class:`RetryPolicy`; ``tls`` a :class:`TLSConfig`; ``headers`` are sent with
        every request (as gRPC metadata over gRPC) and never printed. ``batch_size`` is
        images per request in the ``*_many`` methods, ``beam_width`` turns on beam
        search, ``alphabet`` limits what may be read (``SITE_ALPHABET``), and
        ``image_limits`` bounds the images accepted. ``min_confidence`` is the reject
        option: ``recognize`` raises :class:`LowConfidenceError` for a reading less
        confident than this (the default is calibrated for the shipped model; 0 turns it
        off), and ``predict`` still returns it. ``transport`` replaces the server
        with your own :class:`SyncTransport` (:class:`AsyncTransport` for the async
        client), such as :class:`MockTransport`.
        """
        ref = ModelRef.coerce(model)
        ref = replace(
            ref,
            version=ref.version if version is None else version,
            label=ref.label if label is None else label,
            signature=ref.signature if signature is None else signature,
        )
        self._options = _Options(
            model=ref,
            payload=payload,
            timeout=Timeout.coerce(timeout),
            retry=RetryPolicy.coerce(retry),
            batch_size=batch_size,
            beam_width=beam_width,
            image_limits=image_limits,
            alphabet=alphabet,
            min_confidence=min_confidence,
        )
        if transport is None:
            transport = self._make_transport(server, tls, Headers.coerce(headers))
        elif server is not None:
            raise InvalidInputError("transport", "give a server URL or a transport, not both")
        if not isinstance(transport, self._transport_type):
            wanted = self._transport_type.__name__
            raise TypeError(
                f"{type(self).__name__} needs a {wanted}, got {type(transport).__name__}"
                + (" (wrap it in ThreadedAsyncTransport)" if isinstance(transport, SyncTransport) else "")
            )
        self._shared = _Shared(transport)

    @classmethod
    def local(
        cls: type[_Client],
        model_path: Optional[Path] = None,
        *,
        threads: Optional[int] = None,
        int8: bool = True,
        **options: Unpack[ClientOptions],
    ) -> _Client:
        """A client on the embedded LiteRT model (the ``[local]`` extra): no server, no network.

        It sends the float tensor unless ``payload="image"`` is given: with no wire to
        save, encoding each picture as a PNG only for the model to decode it again would
        double the work. ``threads`` is LiteRT's thread count for batches (default: every
        core, up to 4; one image at a time runs on one thread). ``int8`` runs the model's
        int8 companion first where there is one (the shipped model has): about twice as
        fast on some CPUs (no faster on an AVX2-only AMD EPYC), with the float model
        reading whatever the companion is unsure of, so the strings stay the float
        model's; ``int8=False`` runs only the float model. The other options are the
        constructor's. On the async client each inference runs in a worker thread, off
        the event loop. Without the extra installed this is a MissingDependencyError
        naming it.
        """
        from ._transports.local import LocalTransport

        embedded = LocalTransport(model_path, threads, int8)
        transport = ThreadedAsyncTransport(embedded) if cls._asynchronous else embedded
        options.setdefault("payload", DEFAULT_LOCAL_PAYLOAD)
        return cls(transport=transport, **options)

    def with_options(self: _Client, **changes: Unpack[ClientOptions]) -> _Client:
        """A copy with some options changed, sharing this client's connections, budgets and specs."""
        clone = copy.copy(self)
        clone._options = self._options.merge(changes)
        return clone

    def __repr__(self) -> str:
        return f"{type(self).__name__}(endpoint={self.endpoint!r}, model={self._options.model.name!r})"

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
    def retry(self) -> RetryPolicy:
        return self._options.retry

    @property
    def min_confidence(self) -> float:
        """The confidence under which ``recognize`` raises LowConfidenceError (0: never)."""
        return self._options.min_confidence

    @property
    def batch_size(self) -> int:
        """Images per request in the ``*_many`` methods unless a call says otherwise."""
        return self._options.batch_size

    @property
    def spec(self) -> CaptchaSpec:
        """The model's CaptchaSpec, as the first call that needed it fetched it.

        Reading it does no I/O: before any call has fetched it, it is a UsageError;
        ``get_spec()`` fetches it.
        """
        spec = self._known_spec(self._options)
        if spec is None:
            raise UsageError(
                f"the spec of model {self._options.model.name!r} is not fetched yet: call get_spec() "
                "(awaited on AsyncShixinClient) or any recognize or predict method first"
            )
        return spec

    def _make_transport(
        self, server: Optional[ServerTypes], tls: Optional[TLSConfig], headers: Headers
    ) -> Any:
        server = server if server is not None else server_from_env()
        if server is None:
            raise InvalidInputError(
                "server", "no server: pass a URL, set $SHIXIN_SERVER, or use ShixinClient.local()"
            )
        kind, addresses, secure = parse_server(server)
        if kind == "rest":
            from ._transports.rest import AsyncRestTransport, RestTransport

            rest = AsyncRestTransport if self._asynchronous else RestTransport
            return rest(addresses, tls=tls, headers=headers)
        try:
            from ._transports import grpc as grpc_transport
        except MissingDependencyError:
            raise
        except ImportError as exc:
            raise MissingDependencyError("the gRPC transport", "grpc") from exc
        grpc_class = grpc_transport.AsyncGrpcTransport if self._asynchronous else grpc_transport.GrpcTransport
        return grpc_class(addresses[0], tls=tls, secure=secure, headers=headers)

    # Options of a call.
    def _call_options(self, options: Mapping[str, Any], with_softmax: bool) -> _Options:
        """A predict call's options, the client's with the call's applied; what needs numpy
        is refused up front, before any request."""
        opts = self._options.merge(options)
        if opts.payload == "tensor":
            require_numpy(f'float tensors (payload="tensor", the {opts.signature!r} signature)')
        if opts.beam_width is not None:
            require_numpy("beam search (beam_width)")
        if with_softmax:
            require_numpy("softmax arrays (with_softmax=True)")
        return opts

    # Retries: the decision, never the waiting.
    def _budget(self, options: _Options) -> RetryBudget:
        budget = self._shared.budget(options.retry)
        budget.record_request()
        return budget

    def _retry_delay(
        self, options: _Options, budget: RetryBudget, error: ShixinError, attempt: int
    ) -> Optional[float]:
        """Seconds to wait before retrying after ``error``, under the call's own policy; None: give up."""
        policy = options.retry
        delay = retry_delay(error, attempt, policy)
        if delay is None:
            return None
        if not budget.try_spend():
            logger.warning("shixin_client: retry budget exhausted; not retrying %s", type(error).__name__)
            return None
        logger.info(
            "shixin_client: retrying %s in %.2fs after %s (retry %d of %d): %s",
            self.endpoint,
            delay,
            type(error).__name__,
            attempt + 1,
            policy.max_retries,
            error,
        )
        return delay

    # Spec discovery.
    @staticmethod
    def _spec_key(options: _Options) -> _SpecKey:
        return (options.model.name, options.model.version, options.model.label)

    def _known_spec(self, options: _Options) -> Optional[CaptchaSpec]:
        return self._shared.specs.get(self._spec_key(options))

    @staticmethod
    def _describe_call(options: _Options) -> PredictCall:
        return PredictCall(
            model=options.model.with_signature(SIGNATURE_DESCRIBE),
            inputs={INPUT_DESCRIBE: Tensor("int32", (1,), [0])},
            timeout=options.timeout,
            output_filter=DESCRIBE_OUTPUTS,
        )

    def _learn_spec(
        self, options: _Options, answer: Union[Mapping[str, TensorLike], RequestRejectedError]
    ) -> CaptchaSpec:
        """Remember the spec the describe call gave; a model that has no such signature
        (its call rejected) is the reference model."""
        if isinstance(answer, RequestRejectedError):
            logger.debug(
                "shixin_client: %s has no describe signature (%s); using DEFAULT_SPEC",
                options.model.name,
                answer,
            )
            spec = DEFAULT_SPEC
        else:
            spec = spec_from_describe(answer)
        return self._shared.specs.setdefault(self._spec_key(options), spec)

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
        """Every image encoded for the payload and grouped into requests; an alphabet the
        model cannot read is refused here, before any image is sent."""
        if options.alphabet is not None:
            alphabet_classes(spec, options.alphabet)
        encode = preprocess if options.payload == "tensor" else wire_bytes
        limits = options.image_limits

        def encoded(item: Item) -> Any:
            return encode(item.image, spec, name=item.name, limits=limits)

        size = options.batch_size if batch_size is None else batch_size
        return BatchPlan(expand(images), encoded, size, return_exceptions=return_exceptions)

    @staticmethod
    def _predict_call(batch: Batch, options: _Options) -> PredictCall:
        inputs: dict[str, TensorLike]
        if options.payload == "tensor":
            inputs = {INPUT_FLOAT: require_numpy("float tensors").stack(batch.encoded)}
        else:
            inputs = {INPUT_BYTES: Tensor.strings(batch.encoded)}
        return PredictCall(
            model=options.model.with_signature(options.signature),
            inputs=inputs,
            timeout=options.timeout,
            output_filter=(OUTPUT_SOFTMAX,),
        )

    @staticmethod
    def _finish(
        outputs: Mapping[str, TensorLike], batch: Batch, options: _Options, spec: CaptchaSpec, keep: bool
    ) -> list[Prediction]:
        """Softmax rows -> Predictions, after checking the answer fits exactly what was sent."""
        softmax = outputs.get(OUTPUT_SOFTMAX)
        if softmax is None and len(outputs) == 1:
            softmax = next(iter(outputs.values()))
        if softmax is None:
            raise BadResponseError(f"the answer has no {OUTPUT_SOFTMAX!r} output, only {sorted(outputs)}")
        return predictions(
            softmax,
            spec,
            beam_width=options.beam_width,
            keep_softmax=keep,
            alphabet=options.alphabet,
            rows=len(batch.indices),
        )

    @staticmethod
    def _readings(
        plan: BatchPlan[Prediction], options: _Options, return_exceptions: bool
    ) -> list[Result[str]]:
        """Each item's text, or a LowConfidenceError where its reading is less confident than
        ``min_confidence`` (raised at once unless errors are returned); NaN never passes."""
        threshold = options.min_confidence
        readings: list[Result[str]] = []
        for name, result in zip(plan.names, plan.results(), strict=True):
            if isinstance(result, Prediction) and not result.accepted(threshold):
                error = LowConfidenceError(name, result.text, result.confidence, threshold)
                if not return_exceptions:
                    raise error
                readings.append(error)
            else:
                readings.append(result.text if isinstance(result, Prediction) else result)
        return readings

    @staticmethod
    def _is_ready_failure(error: ShixinError) -> bool:
        return isinstance(error, (ModelNotFoundError, ServerUnavailableError, ShixinConnectionError))

    def _not_ready(self, waited: float) -> ShixinTimeoutError:
        return ShixinTimeoutError(
            f"model {self._options.model.name!r} on {self.endpoint} was not ready after {waited:.1f}s"
        )


class ShixinClient(_BaseClient):
    """Recognise captchas on a TF Serving model over REST (``http(s)://``) or gRPC
    (``grpc(s)://``), or on the embedded model (:meth:`local`).

    One connection pool (or gRPC channel) per client, safe to share between threads;
    ``with_options`` copies share it. Transient failures are retried with backoff.
    """

    _transport_type = SyncTransport
    _asynchronous = False
    _sleep: Callable[[float], None] = staticmethod(time.sleep)

    def recognize(self, image: ImageInput, **options: Unpack[CallOptions]) -> str:
        """The captcha's text; LowConfidenceError when the reading is under ``min_confidence``."""
        return self.recognize_many(self._one(image), **options)[0]

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

        With ``return_exceptions=True`` a bad image, a failed request or a reading under
        ``min_confidence`` (LowConfidenceError) leaves its ShixinError in the affected
        slots and every other answer still comes back.
        """
        opts = self._call_options(options, False)
        plan = self._predict_many(images, opts, batch_size, return_exceptions, False)
        return self._readings(plan, opts, return_exceptions)

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
        """Every reading with its confidence, in input order; never rejected for low confidence."""
        opts = self._call_options(options, with_softmax)
        return self._predict_many(images, opts, batch_size, return_exceptions, with_softmax).results()

    def status(self, **options: Unpack[CallOptions]) -> ModelStatus:
        opts = self._options.merge(options)
        return self._send(opts, self._shared.transport.status, opts.model, opts.timeout)

    def metadata(self, **options: Unpack[CallOptions]) -> ModelMetadata:
        opts = self._options.merge(options)
        return self._send(opts, self._shared.transport.metadata, opts.model, opts.timeout)

    def ready(self, **options: Unpack[CallOptions]) -> bool:
        """Whether some version of the model is AVAILABLE now; one attempt, no retries."""
        opts = self._options.merge(options)
        try:
            return bool(self._shared.transport.status(opts.model, opts.timeout).ready)
        except ShixinError as exc:
            if self._is_ready_failure(exc):
                return False
            raise

    def wait_until_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        """Block until :meth:`ready`; ShixinTimeoutError after ``timeout`` seconds."""
        start = time.monotonic()
        while not self.ready():
            if time.monotonic() - start >= timeout:
                raise self._not_ready(time.monotonic() - start)
            self._sleep(READY_POLL_INTERVAL)

    def get_spec(self, **options: Unpack[CallOptions]) -> CaptchaSpec:
        """The model's CaptchaSpec: its ``describe`` signature's answer (fetched once), else DEFAULT_SPEC."""
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
        opts: _Options,
        batch_size: Optional[int],
        return_exceptions: bool,
        with_softmax: bool,
    ) -> BatchPlan[Prediction]:
        spec = self._spec(opts)
        plan = self._plan(images, opts, spec, batch_size, return_exceptions)
        for batch in plan.batches:
            try:
                outputs = self._send(opts, self._shared.transport.predict, self._predict_call(batch, opts))
                plan.fill(batch, self._finish(outputs, batch, opts, spec, with_softmax))
            except ShixinError as exc:
                plan.fail(batch, exc)
        return plan

    def _spec(self, options: _Options) -> CaptchaSpec:
        spec = self._known_spec(options)
        if spec is None:
            with self._shared.fetch_lock(self._spec_key(options), threading.Lock):
                spec = self._known_spec(options)
                if spec is None:
                    answer: Union[Mapping[str, TensorLike], RequestRejectedError]
                    try:
                        answer = self._send(
                            options, self._shared.transport.predict, self._describe_call(options)
                        )
                    except RequestRejectedError as exc:
                        answer = exc
                    spec = self._learn_spec(options, answer)
        return spec

    def _send(self, options: _Options, method: Callable[..., T], *args: Any) -> T:
        budget = self._budget(options)
        attempt = 0
        while True:
            try:
                return method(*args)
            except ShixinError as exc:
                delay = self._retry_delay(options, budget, exc, attempt)
                if delay is None:
                    raise
            self._sleep(delay)
            attempt += 1


async def _async_sleep(seconds: float) -> None:
    import asyncio  # already loaded under a running event loop; see _transports.base

    await asyncio.sleep(seconds)


class AsyncShixinClient(_BaseClient):
    """The asyncio twin of :class:`ShixinClient`: the same constructor, options, methods and
    results, each method a coroutine (``httpx`` for REST, ``grpc.aio`` for gRPC)."""

    _transport_type = AsyncTransport
    _asynchronous = True
    _sleep: Callable[[float], Awaitable[None]] = staticmethod(_async_sleep)

    async def recognize(self, image: ImageInput, **options: Unpack[CallOptions]) -> str:
        return (await self.recognize_many(self._one(image), **options))[0]

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
        opts = self._call_options(options, False)
        plan = await self._predict_many(images, opts, batch_size, return_exceptions, False)
        return self._readings(plan, opts, return_exceptions)

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
        opts = self._call_options(options, with_softmax)
        return (await self._predict_many(images, opts, batch_size, return_exceptions, with_softmax)).results()

    async def status(self, **options: Unpack[CallOptions]) -> ModelStatus:
        opts = self._options.merge(options)
        return await self._send(opts, self._shared.transport.status, opts.model, opts.timeout)

    async def metadata(self, **options: Unpack[CallOptions]) -> ModelMetadata:
        opts = self._options.merge(options)
        return await self._send(opts, self._shared.transport.metadata, opts.model, opts.timeout)

    async def ready(self, **options: Unpack[CallOptions]) -> bool:
        opts = self._options.merge(options)
        try:
            return bool((await self._shared.transport.status(opts.model, opts.timeout)).ready)
        except ShixinError as exc:
            if self._is_ready_failure(exc):
                return False
            raise

    async def wait_until_ready(self, timeout: float = DEFAULT_READY_TIMEOUT) -> None:
        start = time.monotonic()
        while not await self.ready():
            if time.monotonic() - start >= timeout:
                raise self._not_ready(time.monotonic() - start)
            await self._sleep(READY_POLL_INTERVAL)

    async def get_spec(self, **options: Unpack[CallOptions]) -> CaptchaSpec:
        return await self._spec(self._options.merge(options))

    async def aclose(self) -> None:
        await self._shared.transport.aclose()

    async def __aenter__(self) -> AsyncShixinClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _predict_many(
        self,
        images: Iterable[ImageInput],
        opts: _Options,
        batch_size: Optional[int],
        return_exceptions: bool,
        with_softmax: bool,
    ) -> BatchPlan[Prediction]:
        spec = await self._spec(opts)
        plan = self._plan(images, opts, spec, batch_size, return_exceptions)
        for batch in plan.batches:
            try:
                outputs = await self._send(
                    opts, self._shared.transport.predict, self._predict_call(batch, opts)
                )
                plan.fill(batch, self._finish(outputs, batch, opts, spec, with_softmax))
            except ShixinError as exc:
                plan.fail(batch, exc)
        return plan

    async def _spec(self, options: _Options) -> CaptchaSpec:
        import asyncio

        spec = self._known_spec(options)
        if spec is None:
            async with self._shared.fetch_lock(self._spec_key(options), asyncio.Lock):
                spec = self._known_spec(options)
                if spec is None:
                    answer: Union[Mapping[str, TensorLike], RequestRejectedError]
                    try:
                        answer = await self._send(
                            options, self._shared.transport.predict, self._describe_call(options)
                        )
                    except RequestRejectedError as exc:
                        answer = exc
                    spec = self._learn_spec(options, answer)
        return spec

    async def _send(self, options: _Options, method: Callable[..., Awaitable[T]], *args: Any) -> T:
        budget = self._budget(options)
        attempt = 0
        while True:
            try:
                return await method(*args)
            except ShixinError as exc:
                delay = self._retry_delay(options, budget, exc, attempt)
                if delay is None:
                    raise
            await self._sleep(delay)
            attempt += 1
