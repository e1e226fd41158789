"""Prometheus text for the REST port (docs/tf-serving-compat.md §3.2), TF Serving's metric names.

TF metric names become Prometheus names by turning every character outside
``[A-Za-z0-9_]`` into ``:``; latencies are histograms in microseconds like TF Serving's.
"""

from __future__ import annotations

import re
import threading
from collections import defaultdict

REQUEST_COUNT = "/tensorflow/serving/request_count"
REQUEST_LATENCY = "/tensorflow/serving/request_latency"
#: Ours, not TF Serving's: TensorFlow calls made, which shows how well batching merges.
MODEL_CALLS = "/shixin_client/server/model_call_count"
# TF Serving's request latency buckets: 10 us growing by 1.8x, 33 of them.
LATENCY_BUCKETS_US = tuple(10 * 1.8**i for i in range(33))
_LabelKey = tuple[tuple[str, str], ...]


def prometheus_name(tf_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", ":", tf_name)


def _labels(pairs: _LabelKey, extra: str = "") -> str:
    parts = [f'{key}="{_escape(value)}"' for key, value in pairs]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    """Counters and histograms updated from the event loop and read by the Prometheus handler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[_LabelKey, int] = defaultdict(int)
        self._latencies: dict[_LabelKey, list[int]] = {}
        self._latency_sums: dict[_LabelKey, float] = defaultdict(float)

    def record(self, model_name: str, api: str, entrypoint: str, code: str, seconds: float) -> None:
        micros = seconds * 1e6
        count_key = (("model_name", model_name), ("status", code))
        latency_key = (("model_name", model_name), ("API", api), ("entrypoint", entrypoint))
        with self._lock:
            self._counts[count_key] += 1
            buckets = self._latencies.setdefault(latency_key, [0] * (len(LATENCY_BUCKETS_US) + 1))
            index = next(
                (i for i, bound in enumerate(LATENCY_BUCKETS_US) if micros <= bound), len(LATENCY_BUCKETS_US)
            )
            buckets[index] += 1
            self._latency_sums[latency_key] += micros

    def render(self, model_calls: int) -> str:
        count_name = prometheus_name(REQUEST_COUNT)
        latency_name = prometheus_name(REQUEST_LATENCY)
        calls_name = prometheus_name(MODEL_CALLS)
        lines = [f"# TYPE {count_name} counter"]
        with self._lock:
            for key, value in sorted(self._counts.items()):
                lines.append(f"{count_name}{_labels(key)} {value}")
            lines.append(f"# TYPE {latency_name} histogram")
            for key, buckets in sorted(self._latencies.items()):
                cumulative = 0
                for bound, count in zip((*LATENCY_BUCKETS_US, None), buckets, strict=True):
                    cumulative += count
                    le = 'le="' + ("+Inf" if bound is None else f"{bound:g}") + '"'
                    lines.append(f"{latency_name}_bucket{_labels(key, le)} {cumulative}")
                lines.append(f"{latency_name}_sum{_labels(key)} {self._latency_sums[key]:g}")
                lines.append(f"{latency_name}_count{_labels(key)} {cumulative}")
        lines.append(f"# TYPE {calls_name} counter")
        lines.append(f"{calls_name} {model_calls}")
        return "\n".join(lines) + "\n"
