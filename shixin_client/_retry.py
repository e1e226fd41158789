"""Every retry decision, as small functions both client twins call from their one loop.

Only transient failures are retried: a refused or reset connection (the request
never ran, or its answer was lost) and a server that says it is overloaded or not
ready (HTTP 429/503, gRPC RESOURCE_EXHAUSTED/UNAVAILABLE). A 400 or 404 from TF
Serving fails the same way every time, and a timed-out request may still be running
on the server, so neither is retried. The :class:`RetryBudget` stops a client from
multiplying the load on a server that is already failing.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Optional

from ._config import RETRY_BUDGET_WINDOW_REQUESTS, RetryPolicy
from ._exceptions import ServerError, ServerUnavailableError, ShixinConnectionError, ShixinTimeoutError


def is_retryable(error: BaseException) -> bool:
    """True for failures that a later identical request can plausibly survive."""
    if isinstance(error, ShixinTimeoutError):
        return False
    return isinstance(error, (ShixinConnectionError, ServerUnavailableError))


def backoff_delay(attempt: int, policy: RetryPolicy, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based).

    Exponential with jitter: ``min(max_delay, initial * 2**attempt) * uniform(0.5, 1]``,
    so clients that failed together do not come back together.
    """
    ceiling = min(policy.max_delay, policy.initial_delay * 2**attempt)
    return ceiling * (1.0 - 0.5 * rand())


def parse_retry_after(value: Optional[str], now: Optional[float] = None) -> Optional[float]:
    """An HTTP ``Retry-After`` value (seconds or an HTTP date) as seconds from now; None if unusable."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    import email.utils  # only servers that send an HTTP date pay for its import

    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def retry_delay(
    error: BaseException, attempt: int, policy: RetryPolicy, rand: Callable[[], float] = random.random
) -> Optional[float]:
    """How long to wait before retrying after ``error`` on retry ``attempt``; None means give up.

    A server's own ``Retry-After`` hint wins over the computed backoff, but never
    beyond ``policy.max_delay``: a client call should not silently stall for minutes.
    """
    if attempt >= policy.max_retries or not is_retryable(error):
        return None
    hint = error.retry_after if isinstance(error, ServerError) else None
    if hint is not None:
        return min(hint, policy.max_delay)
    return backoff_delay(attempt, policy, rand)


class RetryBudget:
    """A token bucket for one RetryPolicy, shared by a client and its ``with_options``
    copies that use that policy (thread-safe).

    It starts with ``max_retries`` tokens, each request adds ``budget`` tokens (up to
    :data:`RETRY_BUDGET_WINDOW_REQUESTS` requests' worth on top of the start), and each
    retry spends one. So over time retries stay under ``budget`` times the requests sent.
    """

    def __init__(self, policy: RetryPolicy) -> None:
        self._ratio = policy.budget
        self._capacity = policy.max_retries + policy.budget * RETRY_BUDGET_WINDOW_REQUESTS
        self._tokens = float(policy.max_retries)
        self._lock = threading.Lock()

    def record_request(self) -> None:
        with self._lock:
            self._tokens = min(self._capacity, self._tokens + self._ratio)

    def try_spend(self) -> bool:
        """Take one token for a retry; False when the budget is exhausted."""
        with self._lock:
            if self._tokens < 1.0 - 1e-9:  # ten deposits of 0.1 make one token
                return False
            self._tokens -= 1.0
            return True
