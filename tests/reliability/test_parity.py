"""The two client twins behave as one: same result, same error class and message, same attempts.

Each scenario drives the public API of ShixinClient and of AsyncShixinClient, built the
same way, through one fault, and compares what came back. The faults are the ones the
rest of this package knows, on every transport:

- REST and gRPC through the fault proxies of conftest.py in front of the local server
  (a refused port needs no proxy);
- the embedded model and MockTransport through :class:`FaultyTransport`, which raises
  what a transport raises for the same fault or spoils the model's answer.

Every scenario first fetches the spec (no fault), then scripts the fault twice and
reads four captchas in two batches (a transient fault is retried and recovers, a
permanent one fails the batch it hits), then scripts it once more for one ``predict``.
Retry waits are recorded, not slept, and count the attempts where no proxy can. A last
scenario, fault-free on every transport, rejects the readings under a ``min_confidence``.
"""

from __future__ import annotations

import asyncio
import inspect
import shutil
import socket
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shixin_client import (
    AsyncMockTransport,
    AsyncShixinClient,
    CaptchaSpec,
    MockRequest,
    MockTransport,
    ModelMetadata,
    ModelRef,
    ModelStatus,
    PredictCall,
    Prediction,
    RetryPolicy,
    ServerUnavailableError,
    ShixinClient,
    ShixinConnectionError,
    ShixinError,
    ShixinTimeoutError,
    SyncTransport,
    ThreadedAsyncTransport,
    Timeout,
)
from shixin_client._exceptions import error_class_for_code
from shixin_client._spec import DEFAULT_MODEL_NAME, OUTPUT_SOFTMAX, SIGNATURE_DESCRIBE
from shixin_client.protocol import HTTP_STATUS_BY_CODE

#: Two retries, no waiting, and a budget that never runs dry within a scenario.
RETRY = RetryPolicy(max_retries=2, initial_delay=0.0, max_delay=0.0, budget=1.0)
#: Short enough for stalls to end quickly: a call is over after 0.8 s at most.
TIMEOUT = Timeout(connect=0.4, read=0.4)
#: Every TF Serving status name a server can answer with.
STATUSES = sorted(code for code in HTTP_STATUS_BY_CODE if code != "OK")

REST_FAULTS = [
    "pass",
    "refused",
    "reset",
    "slow:2",
    "stall_body:2",
    "trickle",
    "truncate",
    "garble",
    "non_json",
    "drop_prediction",
    *(f"status:{code}" for code in STATUSES),
]
GRPC_FAULTS = ["pass", "refused", "slow:2", "garble", "drop_prediction", *STATUSES]
#: What the embedded model and a mock can meet: a transport's failures, and spoiled answers.
IN_PROCESS_FAULTS = [
    "pass",
    "refused",
    "reset",
    "slow",
    *(f"status:{code}" for code in STATUSES),
    "drop_prediction",
    "wrong_classes",
    "int_softmax",
    "no_softmax",
    "respec",
]


def dead_url(scheme: str) -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"{scheme}://127.0.0.1:{port}"


class Faults:
    """A script of faults, taken one per image request (thread-safe), and a count of requests."""

    def __init__(self) -> None:
        self.queue: deque[str] = deque()
        self.requests = 0
        self._lock = threading.Lock()

    def script(self, *faults: str) -> None:
        with self._lock:
            self.queue.clear()
            self.queue.extend(faults)

    def take(self) -> str:
        with self._lock:
            self.requests += 1
            return self.queue.popleft() if self.queue else "pass"


def fail_as_a_transport_would(fault: str, endpoint: str) -> None:
    """Raise what a real transport raises for ``fault`` (or nothing for a fault of the answer)."""
    if fault == "refused":
        raise ShixinConnectionError(f"cannot reach {endpoint}: Connection refused")
    if fault == "reset":
        raise ShixinConnectionError(
            f"the connection to {endpoint} broke before an answer: closed by the server"
        )
    if fault == "slow":
        raise ShixinTimeoutError(f"no answer from {endpoint} within {TIMEOUT.read}s")
    if fault.startswith("status:"):
        code = fault.split(":")[1]
        message = f"injected {code}"
        if code == "DEADLINE_EXCEEDED":
            raise ShixinTimeoutError(f"{code} from {endpoint}: {message}")
        raise error_class_for_code(code, message)(message, code=code, endpoint=endpoint)


def spoil(fault: str, outputs: dict[str, Any]) -> dict[str, Any]:
    """The model's answer as a broken or changed model would give it."""
    softmax = np.asarray(outputs[OUTPUT_SOFTMAX])
    if fault == "drop_prediction":
        return {OUTPUT_SOFTMAX: softmax[:-1]}
    if fault == "wrong_classes":
        return {OUTPUT_SOFTMAX: softmax[:, :, :-1]}
    if fault == "int_softmax":
        return {OUTPUT_SOFTMAX: (softmax * 100).astype(np.int32)}
    if fault == "no_softmax":
        return {"logits": softmax}
    if fault == "respec":
        # The model changed under the client: a new class (one more character) after the spec was read.
        return {OUTPUT_SOFTMAX: np.concatenate([softmax, softmax[:, :, :1]], axis=2)}
    return outputs


class FaultyTransport(SyncTransport):
    """Any sync transport with scripted faults in front of its image requests."""

    def __init__(self, inner: SyncTransport, faults: Faults) -> None:
        self.inner = inner
        self.faults = faults
        self.endpoint = inner.endpoint

    def predict(self, call: PredictCall) -> dict[str, Any]:
        if call.model.signature == SIGNATURE_DESCRIBE:
            return self.inner.predict(call)
        fault = self.faults.take()
        fail_as_a_transport_would(fault, self.endpoint)
        return spoil(fault, self.inner.predict(call))

    def status(self, model: ModelRef, timeout: Timeout) -> ModelStatus:
        return self.inner.status(model, timeout)

    def metadata(self, model: ModelRef, timeout: Timeout) -> ModelMetadata:
        return self.inner.metadata(model, timeout)

    def close(self) -> None:
        self.inner.close()


def faulty_handler(answer: Callable[[MockRequest], Any], faults: Faults, endpoint: str) -> Callable[..., Any]:
    """A MockTransport handler with the same scripted faults in front of the model's answers."""

    def handler(request: MockRequest) -> Any:
        if request.kind != "predict" or request.model.signature == SIGNATURE_DESCRIBE:
            return answer(request)
        fault = faults.take()
        fail_as_a_transport_would(fault, endpoint)
        return spoil(fault, answer(request))

    return handler


@dataclass
class Twins:
    """How to build each twin for one transport, and where its attempts are counted."""

    sync: Callable[[], ShixinClient]
    asynchronous: Callable[[], AsyncShixinClient]
    script: Callable[..., None]
    requests: Callable[[], int]
    reset_count: Callable[[], None]


@dataclass
class Outcome:
    """What one twin got: every result in order, and the attempts each call made."""

    results: list[Any] = field(default_factory=list)
    attempts: list[int] = field(default_factory=list)
    retries: list[int] = field(default_factory=list)


def observed(value: Any) -> Any:
    """A result as comparable data: errors by class and message, predictions by value."""
    if isinstance(value, ShixinError):
        return (type(value).__name__, str(value))
    if isinstance(value, Prediction):
        return (value.text, value.confidence, value.char_probabilities)
    return value


async def resolve(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


async def attempt(call: Callable[[], Any]) -> Any:
    try:
        return await resolve(call())
    except ShixinError as exc:
        return exc


async def drive(client: Any, twins: Twins, fault: str, captchas: list[bytes], slept: list[float]) -> Outcome:
    """The scenario, the same for both twins: only ``resolve`` tells them apart."""
    outcome = Outcome()
    try:
        outcome.results.append(observed(await attempt(client.get_spec)))
        for faults, call in (
            (
                (fault, fault),
                lambda: client.recognize_many(captchas[:4], batch_size=2, return_exceptions=True),
            ),
            ((fault,), lambda: client.predict(captchas[4])),
        ):
            twins.reset_count()
            slept.clear()
            twins.script(*faults)
            result = await attempt(call)
            outcome.results.append(
                [observed(r) for r in result] if isinstance(result, list) else observed(result)
            )
            outcome.attempts.append(twins.requests())
            outcome.retries.append(len(slept))
        twins.script()
        outcome.results.append(observed(await attempt(client.status)))
        outcome.results.append(observed(await attempt(client.ready)))
    finally:
        await resolve(client.aclose() if isinstance(client, AsyncShixinClient) else client.close())
    return outcome


def both(
    twins: Twins, fault: str, captchas: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> tuple[Outcome, Outcome]:
    slept: list[float] = []

    async def no_wait(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(ShixinClient, "_sleep", staticmethod(slept.append))
    monkeypatch.setattr(AsyncShixinClient, "_sleep", staticmethod(no_wait))

    async def sync_twin() -> Outcome:
        return await drive(twins.sync(), twins, fault, captchas, slept)

    async def async_twin() -> Outcome:
        return await drive(twins.asynchronous(), twins, fault, captchas, slept)

    return asyncio.run(sync_twin()), asyncio.run(async_twin())


def assert_parity(sync: Outcome, asynchronous: Outcome, fault: str, expected: list[str]) -> None:
    assert sync.results == asynchronous.results, fault
    assert sync.attempts == asynchronous.attempts, fault
    assert sync.retries == asynchronous.retries, fault
    # Not parity by both failing the same wrong way: the batch no fault reached reads right,
    # and a fault-free scenario reads everything right.
    batch = sync.results[1]
    assert batch[2:] == expected[2:4] or all(isinstance(r, tuple) for r in batch[2:]), batch
    if fault == "pass":
        assert batch == expected[:4] and sync.results[2][0] == expected[4]


def proxied(url: str, proxy: Any) -> Twins:
    options = {"retry": RETRY, "timeout": TIMEOUT}
    return Twins(
        sync=lambda: ShixinClient(url, **options),
        asynchronous=lambda: AsyncShixinClient(url, **options),
        script=proxy.script,
        requests=lambda: proxy.requests,
        reset_count=lambda: setattr(proxy, "requests", 0),
    )


class NoProxy:
    """Nothing in front of a dead port: no requests arrive, retries are counted by their waits."""

    requests = 0

    def script(self, *faults: str) -> None:
        pass


@pytest.mark.parametrize("fault", REST_FAULTS)
def test_rest_twins_agree(
    fault: str, http_proxy: Any, captchas: list[bytes], oracle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fault == "refused":
        twins = proxied(dead_url("http"), NoProxy())
    else:
        twins = proxied(http_proxy.url, http_proxy)
    sync, asynchronous = both(twins, fault, captchas, monkeypatch)
    assert_parity(sync, asynchronous, fault, oracle.texts(captchas[:5]))


@pytest.mark.parametrize("fault", GRPC_FAULTS)
def test_grpc_twins_agree(
    fault: str, grpc_proxy: Any, captchas: list[bytes], oracle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    if fault == "refused":
        twins = proxied(dead_url("grpc"), NoProxy())
    else:
        twins = proxied(f"grpc://{grpc_proxy.target}", grpc_proxy)
    sync, asynchronous = both(twins, fault, captchas, monkeypatch)
    assert_parity(sync, asynchronous, fault, oracle.texts(captchas[:5]))


def in_process(inner: Callable[[], SyncTransport], faults: Faults) -> Twins:
    options = {"retry": RETRY, "timeout": TIMEOUT, "payload": "tensor"}
    return Twins(
        sync=lambda: ShixinClient(transport=FaultyTransport(inner(), faults), **options),
        asynchronous=lambda: AsyncShixinClient(
            transport=ThreadedAsyncTransport(FaultyTransport(inner(), faults)), **options
        ),
        script=faults.script,
        requests=lambda: faults.requests,
        reset_count=lambda: setattr(faults, "requests", 0),
    )


@pytest.fixture(scope="module")
def embedded() -> Iterator[Callable[[], SyncTransport]]:
    pytest.importorskip("ai_edge_litert")
    from shixin_client._transports.local import LocalTransport

    yield LocalTransport


@pytest.mark.parametrize("fault", IN_PROCESS_FAULTS)
def test_embedded_twins_agree(
    fault: str,
    embedded: Callable[[], SyncTransport],
    captchas: list[bytes],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = ShixinClient.local().recognize_many(captchas[:5])
    sync, asynchronous = both(in_process(embedded, Faults()), fault, captchas, monkeypatch)
    assert_parity(sync, asynchronous, fault, expected)


@pytest.mark.parametrize("fault", IN_PROCESS_FAULTS)
def test_mock_twins_agree(
    fault: str, captchas: list[bytes], oracle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    faults = Faults()
    handler = faulty_handler(oracle.answer, faults, "mock://")
    twins = Twins(
        sync=lambda: ShixinClient(transport=MockTransport(handler), retry=RETRY),
        asynchronous=lambda: AsyncShixinClient(transport=AsyncMockTransport(handler), retry=RETRY),
        script=faults.script,
        requests=lambda: faults.requests,
        reset_count=lambda: setattr(faults, "requests", 0),
    )
    sync, asynchronous = both(twins, fault, captchas, monkeypatch)
    assert_parity(sync, asynchronous, fault, oracle.texts(captchas[:5]))


def low_confidence_twins(
    kind: str, request: pytest.FixtureRequest, oracle: Any
) -> tuple[Callable[[], ShixinClient], Callable[[], AsyncShixinClient]]:
    """Both twins on one transport, fault-free, with the default options."""
    if kind == "embedded":
        pytest.importorskip("ai_edge_litert")
        return ShixinClient.local, AsyncShixinClient.local
    if kind == "mock":
        return (
            lambda: ShixinClient(transport=MockTransport(oracle.answer)),
            lambda: AsyncShixinClient(transport=AsyncMockTransport(oracle.answer)),
        )
    url = request.getfixturevalue("server_urls")[kind]
    return lambda: ShixinClient(url), lambda: AsyncShixinClient(url)


async def reject_the_unsure_half(client: Any, captchas: list[bytes]) -> list[Any]:
    """Read four captchas, then again with min_confidence between the second and third most
    confident readings: recognize_many, recognize and predict on the same four."""
    try:
        predictions = await resolve(client.predict_many(captchas))
        ranked = sorted(p.confidence for p in predictions)
        threshold = (ranked[1] + ranked[2]) / 2
        strict = client.with_options(min_confidence=threshold)
        many = await resolve(strict.recognize_many(captchas, return_exceptions=True))
        unsure = next(i for i, p in enumerate(predictions) if p.confidence < threshold)
        one = await attempt(lambda: strict.recognize(captchas[unsure]))
        kept = await resolve(strict.predict(captchas[unsure]))
        return [
            [observed(p) for p in predictions],
            threshold,
            [observed(r) for r in many],
            observed(one),
            observed(kept),
        ]
    finally:
        await resolve(client.aclose() if isinstance(client, AsyncShixinClient) else client.close())


@pytest.mark.parametrize("kind", ["rest", "grpc", "embedded", "mock"])
def test_readings_under_min_confidence_are_rejected_alike_everywhere(
    kind: str, request: pytest.FixtureRequest, captchas: list[bytes], oracle: Any
) -> None:
    """The same readings are rejected with the same LowConfidenceError by both twins, each in
    its own slot, while predict still returns them."""
    sync_twin, async_twin = low_confidence_twins(kind, request, oracle)
    four = captchas[:4]
    sync = asyncio.run(reject_the_unsure_half(sync_twin(), four))
    assert sync == asyncio.run(reject_the_unsure_half(async_twin(), four))
    predictions, threshold, many, one, kept = sync
    for index, ((text, confidence, _), result) in enumerate(zip(predictions, many, strict=True)):
        if confidence >= threshold:
            assert result == text
        else:
            name, message = result
            assert name == "LowConfidenceError" and message.startswith(f"item {index} ")
            assert f"read {text!r} at confidence {confidence:.3f}" in message
    assert sum(isinstance(r, tuple) for r in many) == 2
    assert one[0] == "LowConfidenceError" and kept in predictions


def test_the_stall_in_the_body_is_a_timeout_on_both_twins(
    http_proxy: Any, captchas: list[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case the twins once disagreed on: ``except TimeoutError`` catches both."""
    sync, asynchronous = both(proxied(http_proxy.url, http_proxy), "stall_body:2", captchas, monkeypatch)
    for outcome in (sync, asynchronous):
        name, message = outcome.results[2]
        assert name == "ShixinTimeoutError" and "stalled" in message, outcome.results[2]
        assert outcome.attempts[1] == 1  # a timeout is never retried
    assert issubclass(ShixinTimeoutError, TimeoutError)


def test_transient_faults_recover_after_the_same_retries_everywhere(
    http_proxy: Any, captchas: list[bytes], oracle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two 503s then the answer: three requests for the first batch, one for the second."""
    sync, asynchronous = both(
        proxied(http_proxy.url, http_proxy), "status:UNAVAILABLE", captchas, monkeypatch
    )
    expected = oracle.texts(captchas[:5])
    for outcome in (sync, asynchronous):
        assert outcome.results[1] == expected[:4] and outcome.attempts[0] == 4 and outcome.retries[0] == 2
    assert issubclass(ServerUnavailableError, ShixinError)


#: The spec of a version that replaces the served one: the same network, the charset reversed.
CHANGED = CaptchaSpec(charset="".join(reversed(CaptchaSpec().charset)))


@pytest.fixture(scope="module")
def changed_version(tmp_path_factory: pytest.TempPathFactory, oracle_model: Any) -> Path:
    """Version 2 of the served model, exported with :data:`CHANGED` as its spec."""
    from export.saved_model import export_model

    out = tmp_path_factory.mktemp("changed")
    export_model(oracle_model, out, DEFAULT_MODEL_NAME, version=2, spec=CHANGED)
    return out / DEFAULT_MODEL_NAME / "2"


async def read_through_a_spec_change(
    client: Any, base: Path, version: Path, captchas: list[bytes]
) -> list[Any]:
    """Read, let version 2 replace version 1, then read unpinned and pinned to version 2."""
    try:
        seen: list[Any] = [observed(await resolve(client.get_spec()))]
        seen.append(await resolve(client.recognize_many(captchas[:4])))
        shutil.copytree(version, base / "incoming")  # not a version number: the server ignores it
        (base / "incoming").rename(base / "2")
        pinned = client.with_options(version=2)
        for _ in range(200):
            if await attempt(pinned.get_spec) == CHANGED:
                break
            await asyncio.sleep(0.05)
        seen.append(observed(pinned.spec))
        seen.append(await resolve(pinned.recognize_many(captchas[:4])))
        seen.append(await resolve(client.recognize_many(captchas[:4])))
        seen.append(observed(client.spec))
        return seen
    finally:
        await resolve(client.aclose() if isinstance(client, AsyncShixinClient) else client.close())


@pytest.mark.parametrize("kind", ["rest", "grpc"])
def test_a_served_model_that_changes_its_spec(
    kind: str, model_base: Path, changed_version: Path, tmp_path: Path, captchas: list[bytes]
) -> None:
    """Both twins keep the spec they read first for the calls that read it (an unpinned
    client is not told of the change: docs/reliability.md, Known limits), and both read
    version 2 with its own spec once they ask for it."""
    from shixin_client.server.testing import running_server

    outcomes = []
    for twin in (ShixinClient, AsyncShixinClient):
        base = tmp_path / twin.__name__ / DEFAULT_MODEL_NAME
        shutil.copytree(model_base, base)
        with running_server(base, DEFAULT_MODEL_NAME, file_system_poll_wait_seconds=0.1) as server:
            url = server.rest_url if kind == "rest" else f"grpc://{server.grpc_target}"
            client = twin(url, retry=RETRY)
            outcomes.append(asyncio.run(read_through_a_spec_change(client, base, changed_version, captchas)))
    sync, asynchronous = outcomes
    assert sync == asynchronous
    first, before, now, pinned, unpinned, kept = sync
    assert first == CaptchaSpec() == kept and now == CHANGED
    # The same softmax under the reversed charset: every character reads as its mirror.
    mirror = dict(zip(CaptchaSpec().charset, CHANGED.charset, strict=True))
    assert pinned == ["".join(mirror[c] for c in text) for text in before]
    assert unpinned == before
