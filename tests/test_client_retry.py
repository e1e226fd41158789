"""Retries really happen, only for transient failures, with backoff, Retry-After and a budget.

The decisions are pure functions in shixin_client._retry (tested directly); the loops
in both client twins are driven through MockTransport with a recording sleep.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from shixin_client import (
    AsyncMockTransport,
    AsyncShixinClient,
    MockRequest,
    MockTransport,
    ModelNotFoundError,
    ModelStatus,
    RequestRejectedError,
    RetryPolicy,
    ServerError,
    ServerUnavailableError,
    ShixinClient,
    ShixinConnectionError,
    ShixinTimeoutError,
    VersionStatus,
)
from shixin_client._config import RETRY_BUDGET_WINDOW_REQUESTS
from shixin_client._retry import (
    RetryBudget,
    backoff_delay,
    is_retryable,
    parse_retry_after,
    retry_delay,
)

OK = ModelStatus("shixin", (VersionStatus(1, "AVAILABLE"),))
POLICY = RetryPolicy(max_retries=3, initial_delay=0.1, max_delay=1.0, budget=0.5)


def unavailable(retry_after: float | None = None) -> ServerUnavailableError:
    return ServerUnavailableError("overloaded", code="UNAVAILABLE", http_status=503, retry_after=retry_after)


# The pure decisions.


@pytest.mark.parametrize(
    ("error", "retried"),
    [
        (ShixinConnectionError("Connection refused"), True),
        (unavailable(), True),
        (ServerUnavailableError("Too many requests", code="RESOURCE_EXHAUSTED", http_status=429), True),
        (ShixinTimeoutError("read timed out"), False),
        (ModelNotFoundError("Servable not found for request: Latest(x)", code="NOT_FOUND"), False),
        (RequestRejectedError("JSON Parse error", code="INVALID_ARGUMENT", http_status=400), False),
        (ServerError("boom", code="INTERNAL", http_status=500), False),
        (ValueError("not ours"), False),
    ],
)
def test_only_transient_failures_retry(error: BaseException, retried: bool) -> None:
    assert is_retryable(error) is retried


def test_backoff_doubles_is_capped_and_jittered_down_to_half() -> None:
    assert [backoff_delay(n, POLICY, rand=lambda: 0.0) for n in range(6)] == [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    assert backoff_delay(2, POLICY, rand=lambda: 0.999999) == pytest.approx(0.2, rel=1e-4)
    assert all(0.2 <= backoff_delay(2, POLICY) <= 0.4 for _ in range(200))


def test_retry_after_is_honoured_up_to_max_delay() -> None:
    assert retry_delay(unavailable(retry_after=0.7), 0, POLICY) == 0.7
    assert retry_delay(unavailable(retry_after=120.0), 0, POLICY) == POLICY.max_delay
    assert retry_delay(unavailable(), 3, POLICY) is None  # max_retries reached
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_budget_caps_retries_at_a_fraction_of_requests() -> None:
    budget = RetryBudget(RetryPolicy(max_retries=2, budget=0.1))
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]
    for _ in range(10):
        budget.record_request()
    assert budget.try_spend() is True and budget.try_spend() is False
    for _ in range(10 * RETRY_BUDGET_WINDOW_REQUESTS):
        budget.record_request()
    spent = sum(budget.try_spend() for _ in range(100))
    assert spent == 2 + int(0.1 * RETRY_BUDGET_WINDOW_REQUESTS)


# The loops in both twins.


class Script:
    """A status handler that raises the scripted errors in turn, then answers."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.attempts = 0

    def __call__(self, request: MockRequest) -> Any:
        self.attempts += 1
        if self.errors:
            raise self.errors.pop(0)
        return OK


@pytest.fixture(params=["sync", "async"])
def client_for(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Build a client on a handler; its sleeps are recorded in ``client.slept`` instead of waited."""

    def build(handler: Callable[[MockRequest], Any], retry: RetryPolicy = POLICY) -> Any:
        slept: list[float] = []
        if request.param == "sync":
            monkeypatch.setattr(ShixinClient, "_sleep", staticmethod(slept.append))
            client: Any = ShixinClient(transport=MockTransport(handler), retry=retry)
        else:

            async def sleep(delay: float) -> None:
                slept.append(delay)

            monkeypatch.setattr(AsyncShixinClient, "_sleep", staticmethod(sleep))
            client = AsyncShixinClient(transport=AsyncMockTransport(handler), retry=retry)
        client.slept = slept
        return client

    return build


def call(client: Any, method: str = "status") -> Any:
    result = getattr(client, method)()
    return asyncio.run(result) if asyncio.iscoroutine(result) else result


def test_transient_failures_are_retried_until_success(client_for: Callable[..., Any]) -> None:
    script = Script(ShixinConnectionError("Connection refused"), unavailable(), unavailable())
    client = client_for(script)
    assert call(client) == OK
    assert script.attempts == 4
    assert len(client.slept) == 3
    for n, delay in enumerate(client.slept):
        ceiling = min(POLICY.max_delay, POLICY.initial_delay * 2**n)
        assert ceiling / 2 <= delay <= ceiling


def test_gives_up_after_max_retries_with_the_last_error(client_for: Callable[..., Any]) -> None:
    script = Script(*[unavailable() for _ in range(10)])
    client = client_for(script)
    with pytest.raises(ServerUnavailableError):
        call(client)
    assert script.attempts == POLICY.max_retries + 1


@pytest.mark.parametrize(
    "error",
    [
        ModelNotFoundError("Servable not found for request: Latest(x)", code="NOT_FOUND", http_status=404),
        RequestRejectedError("JSON Parse error: Invalid value. at offset: 0", code="INVALID_ARGUMENT"),
        ShixinTimeoutError("read timed out"),
    ],
)
def test_permanent_failures_are_not_retried(client_for: Callable[..., Any], error: Exception) -> None:
    script = Script(error)
    client = client_for(script)
    with pytest.raises(type(error)):
        call(client)
    assert script.attempts == 1 and client.slept == []


def test_retry_after_drives_the_wait(client_for: Callable[..., Any]) -> None:
    client = client_for(Script(unavailable(retry_after=0.75)))
    assert call(client) == OK
    assert client.slept == [0.75]


def test_budget_stops_retry_storms_across_calls(client_for: Callable[..., Any]) -> None:
    policy = RetryPolicy(max_retries=3, initial_delay=0.01, max_delay=0.01, budget=0.0)
    script = Script(*[unavailable() for _ in range(100)])
    client = client_for(script, retry=policy)
    for _ in range(3):
        with pytest.raises(ServerUnavailableError):
            call(client)
    # Three start-up tokens, no deposits: 3 calls make 3 first attempts plus 3 retries in all.
    assert script.attempts == 6 and len(client.slept) == 3


def test_retry_zero_means_one_attempt(client_for: Callable[..., Any]) -> None:
    script = Script(unavailable())
    client = client_for(script, retry=RetryPolicy.coerce(0))
    with pytest.raises(ServerUnavailableError):
        call(client)
    assert script.attempts == 1


def test_retries_are_logged_without_secrets(
    client_for: Callable[..., Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="shixin_client")
    client = client_for(Script(ShixinConnectionError("Connection refused")))
    assert call(client) == OK
    (record,) = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert record.name == "shixin_client" and "ShixinConnectionError" in record.getMessage()
