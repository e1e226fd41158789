"""Timing helpers: interleaved rounds, medians and percentiles.

Ours and the baseline are timed in alternating rounds, so a burst of load from another
process on the shared machine slows every side alike instead of one of them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from itertools import cycle
from typing import TypeVar

import numpy as np

T = TypeVar("T")
R = TypeVar("R")


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def cycling(items: Sequence[T], fn: Callable[[T], R]) -> Callable[[], R]:
    """A no-argument call of ``fn`` on the next item each time, round and round."""
    source = cycle(items)
    return lambda: fn(next(source))


def latencies(sides: Mapping[str, Callable[[], object]], calls: int, rounds: int) -> dict[str, list[float]]:
    """Wall seconds of every single call: ``calls`` per side per round, sides taking turns."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            for _ in range(calls):
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
    return times


def per_call(
    sides: Mapping[str, Callable[[], object]],
    calls: int,
    rounds: int,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median over rounds of ``clock`` seconds per call; ``time.process_time`` measures CPU, not waiting."""
    per_round: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, fn in sides.items():
            start = clock()
            for _ in range(calls):
                fn()
            per_round[name].append((clock() - start) / calls)
    return {name: median(values) for name, values in per_round.items()}
