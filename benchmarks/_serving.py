"""Rows 5 and 6: our client through a server against the reference ways of calling the same server.

The server (:mod:`shixin_client.server`, started by :mod:`benchmarks._serve`) runs in its own
process, as TF Serving does; ``--server-grpc``/``--server-rest`` point the rows at a server
started outside the harness instead (the real TF Serving by ``serving/run.sh``), after
checking that it answers with the model this run loads. Every side reads captcha files to
text one image per call (:mod:`benchmarks._callers` says exactly how): ours with
``ShixinClient(url).recognize(path)``, against the reference project's REST flow and
``tensorflow-serving-api``'s gRPC flow on the same server and model. The same SavedModel
called in-process is the limit no server reaches; ours against it is reported, no target.

Each side's time inside the server comes from the server's own request-latency metric
(TF Serving's ``/tensorflow/serving/request_latency``, on its Prometheus endpoint), whose
running sum is read before and after each side's calls.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

import numpy as np
import urllib3

from shixin_client import ShixinClient
from shixin_client._spec import DEFAULT_MODEL_NAME, INPUT_BYTES, OUTPUT_SOFTMAX, SIGNATURE_BYTES
from shixin_client.server._config_files import DEFAULT_PROMETHEUS_PATH
from shixin_client.server._metrics import REQUEST_LATENCY, prometheus_name

from ._callers import IN_PROCESS, OURS, REFERENCE_GRPC, REFERENCE_REST, Callers
from ._children import child_server
from ._context import ROOT, Context
from ._results import Row, Target, measured
from ._timing import median, percentile

BATCHING_CONFIG = ROOT / "serving" / "batching.config"
WARM_CALLS = 3
#: An outside server must give the in-process softmax on these many captchas, to within
#: SAME_MODEL_ATOL (float32 noise of another build of the same kernels): otherwise it serves
#: another model and its timings would compare nothing.
SAME_MODEL_SAMPLES = 4
SAME_MODEL_ATOL = 1e-4
METRICS_TIMEOUT_S = 10.0

#: The sides, by name: (kind, which of the server's two addresses it calls, or none).
SIDES: dict[str, tuple[str, str | None]] = {
    "ours gRPC": (OURS, "grpc"),
    "ours REST": (OURS, "rest"),
    "tensorflow-serving-api": (REFERENCE_GRPC, "grpc"),
    "reference REST flow": (REFERENCE_REST, "rest"),
    "in-process": (IN_PROCESS, None),
}
#: What each side does, for the rows' words.
DOES = {
    "ours gRPC": "`ShixinClient(grpc URL).recognize(path)`",
    "ours REST": "`ShixinClient(REST URL).recognize(path)`",
    "tensorflow-serving-api": (
        "tensorflow-serving-api's `PredictionServiceStub.Predict` with "
        "`tf.make_tensor_proto(floats)` (the project's preprocessing) and Keras `ctc_decode` (greedy)"
    ),
    "reference REST flow": (
        "the reference REST flow: `requests.post(url, json={'instances': floats.tolist()})` with the "
        "project's preprocessing, then Keras `ctc_decode` (greedy) on `predictions`"
    ),
    "in-process": f"the same SavedModel's `{SIGNATURE_BYTES}` signature called in-process (softmax out)",
}
#: Each row pair: our side, its baseline, and the row ids (latency p50, p99 or throughput).
LATENCY_ROWS = (
    ("5a", "ours gRPC", "tensorflow-serving-api", 50, Target("<=", 0.75, "at most 0.75x")),
    ("5b", "ours REST", "reference REST flow", 50, Target("<=", 0.4, "at most 0.4x")),
    ("5c", "ours gRPC", "tensorflow-serving-api", 99, None),
    ("5d", "ours REST", "reference REST flow", 99, None),
    ("5e", "ours gRPC", "in-process", 50, None),
    ("5f", "ours REST", "in-process", 50, None),
)
THROUGHPUT_ROWS = (
    ("6a", "ours gRPC", "tensorflow-serving-api", Target(">=", 1.3, "at least 1.3x")),
    ("6b", "ours REST", "reference REST flow", Target(">=", 2.5, "at least 2.5x")),
    ("6c", "ours gRPC", "in-process", None),
    ("6d", "ours REST", "in-process", None),
)
#: How the time inside the server is measured, for the report.
SERVER_TIME = (
    "The server's own request-latency histogram (TF Serving's metric, "
    f"`{prometheus_name(REQUEST_LATENCY)}` at `{DEFAULT_PROMETHEUS_PATH}`; it runs from the handler "
    "receiving a request to its answer being ready: parsing the input, the model, building the answer) "
    "is read before and after each side's calls; the difference of its sum, over the time the side's "
    "callers spent in those calls (for throughput: callers x wall time), is the share of the side's "
    "time spent inside the server, the part no client can shorten. A server whose metrics are off "
    "(TF Serving without `--monitoring_config_file`) leaves it unmeasured"
)
#: How rows 5 and 6 say where their time-inside-the-server figures are.
SEE_SERVER_TIME = "time inside the server from the server's own metric (see Time inside the server)"


def check_same_model(ours: np.ndarray, theirs: np.ndarray, where: str) -> None:
    """Refuse a server whose softmax is not the in-process model's."""
    if ours.shape != theirs.shape:
        raise RuntimeError(f"{where} answers with shape {theirs.shape}, the in-process model {ours.shape}")
    differs_by = float(np.abs(ours - theirs).max())
    if not differs_by <= SAME_MODEL_ATOL:
        raise RuntimeError(
            f"{where} does not serve the model this run compares with: its softmax differs by "
            f"{differs_by:.3g} (allowed {SAME_MODEL_ATOL:g}); serve models/shixin (serving/run.sh)"
        )


_SERIES = re.compile(r"^(?P<name>\S+?)_(?P<part>sum|count)\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def predict_latency_totals(text: str, model: str = DEFAULT_MODEL_NAME) -> tuple[float, int] | None:
    """Seconds and count of the predict requests ``model`` served, from Prometheus text; None if absent.

    The request-latency histogram is in microseconds, labelled by model, API and entrypoint
    (TF Serving's and the local server's alike); REST and gRPC predicts are summed.
    """
    name = prometheus_name(REQUEST_LATENCY)
    totals = {"sum": 0.0, "count": 0.0}
    found = False
    for line in text.splitlines():
        match = _SERIES.match(line.strip())
        if match is None or match["name"] != name:
            continue
        labels = dict(_LABEL.findall(match["labels"]))
        if labels.get("model_name") != model or labels.get("API", "").lower() != "predict":
            continue
        totals[match["part"]] += float(match["value"])
        found = True
    return (totals["sum"] / 1e6, int(totals["count"])) if found else None


class ServerClock:
    """Reads the server's predict-time total; ``None`` throughout if the server does not export it."""

    def __init__(self, rest_url: str) -> None:
        self._url = rest_url.rstrip("/") + DEFAULT_PROMETHEUS_PATH
        self._http = urllib3.PoolManager()

    def read(self) -> tuple[float, int] | None:
        try:
            response = self._http.request("GET", self._url, timeout=METRICS_TIMEOUT_S, retries=False)
        except urllib3.exceptions.HTTPError:
            return None
        if response.status != 200:
            return None
        return predict_latency_totals(response.data.decode("utf-8", "replace"))


@dataclass
class InsideServer:
    """A side's server seconds and requests, against the call seconds and calls that caused them."""

    available: bool = True
    server_s: float = 0.0
    requests: int = 0
    call_s: float = 0.0
    calls: int = 0

    def add(
        self, before: tuple[float, int] | None, after: tuple[float, int] | None, call_s: float, calls: int
    ) -> None:
        if before is None or after is None:
            self.available = False
            return
        self.server_s += after[0] - before[0]
        self.requests += after[1] - before[1]
        self.call_s += call_s
        self.calls += calls

    @property
    def share(self) -> float | None:
        return self.server_s / self.call_s if self.available and self.call_s > 0 else None

    def words(self, who: str) -> str:
        if self.share is None:
            return f"{who}: not measured (the server exports no request-latency metric)"
        per_request = self.server_s / self.requests * 1e3 if self.requests else 0.0
        return f"{who} {self.share:.0%} ({per_request:.2g} ms per request)"

    def to_json(self) -> dict[str, float | int | None]:
        return {
            "share": None if self.share is None else round(self.share, 4),
            "server_s": round(self.server_s, 4),
            "requests": self.requests,
            "call_s": round(self.call_s, 4),
            "calls": self.calls,
        }


@dataclass
class _Run:
    """The served addresses, the workers holding the sides, and the server's clock."""

    addresses: dict[str, str]
    served_by: str
    workers: dict[str, Callers]
    clock: ServerClock
    inside: dict[str, InsideServer] = field(default_factory=dict)


def _sample_files(ctx: Context) -> list[str]:
    folder = ctx.tmp / "serving"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index, sample in enumerate(ctx.generated):
        path = folder / f"{sample.label}_{index}.png"
        path.write_bytes(sample.data)
        paths.append(str(path))
    return paths


def _in_process_softmax(ctx: Context, data: list[bytes]) -> np.ndarray:
    import tensorflow as tf

    signature = ctx.signatures[SIGNATURE_BYTES]
    return np.asarray(signature(**{INPUT_BYTES: tf.constant(data)})[OUTPUT_SOFTMAX].numpy())


@contextmanager
def _served(ctx: Context, *child_args: str) -> Iterator[_Run]:
    """The server rows 5 and 6 call (started here, or checked), with both workers started."""
    with ExitStack() as stack:
        if ctx.server is None:
            server = stack.enter_context(
                child_server("benchmarks._serve", str(ctx.model_dir), DEFAULT_MODEL_NAME, *child_args)
            )
            addresses = {"grpc": server["grpc"], "rest": server["rest"]}
            served_by = "shixin_client.server in another process"
        else:
            where = f"the server at {ctx.server.rest} and grpc://{ctx.server.grpc}"
            samples = ctx.generated[:SAME_MODEL_SAMPLES]
            with ShixinClient(ctx.server.rest) as client:
                theirs = [np.asarray(client.predict(s.data, with_softmax=True).softmax) for s in samples]
            ours = np.concatenate([_in_process_softmax(ctx, [s.data]) for s in samples])
            check_same_model(ours, np.stack(theirs), where)
            addresses = {"grpc": ctx.server.grpc, "rest": ctx.server.rest}
            served_by = f"{where} (started outside the harness)"
        targets = {"grpc": f"grpc://{addresses['grpc']}", "rest": addresses["rest"]}
        paths = _sample_files(ctx)
        version_dir = str(ctx.model_dir / "1")

        def address(kind: str, wire: str | None) -> str:
            if wire is None:
                return version_dir
            return targets[wire] if kind == OURS else addresses[wire]

        workers: dict[str, Callers] = {}
        for our_worker in (True, False):
            sides = {
                name: (kind, address(kind, wire))
                for name, (kind, wire) in SIDES.items()
                if (kind == OURS) == our_worker
            }
            worker = stack.enter_context(Callers(sides, paths))
            workers.update({name: worker for name in sides})
        yield _Run(addresses, served_by, workers, ServerClock(addresses["rest"]))


def _inside(run: _Run, side: str) -> InsideServer:
    return run.inside.setdefault(side, InsideServer())


def _server_note(run: _Run, ours: str, baseline: str) -> tuple[str, dict[str, object]]:
    """The row's note and extra on time inside the server, for each side that calls one."""
    served = [(ours, "ours")] + ([] if SIDES[baseline][1] is None else [(baseline, "the baseline")])
    note = "time inside the server: " + ", ".join(_inside(run, side).words(who) for side, who in served)
    return note, {"inside_server": {side: _inside(run, side).to_json() for side, _ in served}}


def latency_rows(ctx: Context) -> list[Row]:
    counts = ctx.counts
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    with _served(ctx) as run:
        for side, worker in run.workers.items():
            worker.warm(side, WARM_CALLS)
        for _ in range(counts.latency_rounds):
            for side, worker in run.workers.items():
                before = run.clock.read() if SIDES[side][1] else None
                seconds = worker.latency(side, counts.latency_calls)
                if SIDES[side][1]:
                    _inside(run, side).add(before, run.clock.read(), sum(seconds), len(seconds))
                times[side] += seconds
    calls = (
        f"{counts.latency_calls} calls x {counts.latency_rounds} rounds per side, sides taking turns, "
        f"{len(ctx.generated)} generated captchas, one image per call"
    )
    rows = []
    for row_id, ours, baseline, q, target in LATENCY_ROWS:
        limit = baseline == "in-process"
        note, extra = _server_note(run, ours, baseline)
        if target is None:
            note = ("ours / in-process limit; " if limit else "no target for p99; ") + note
        wire = ours.split()[1]
        rows.append(
            measured(
                row_id,
                5,
                f"Latency p{q}, {wire}" + (" / in-process limit" if limit else f" vs {baseline}"),
                f"p{q} wall time of {DOES[ours]} vs {DOES[baseline]}, both through {run.served_by} "
                f"(no batching), the clients in worker processes (ours without TensorFlow); {calls}; "
                + SEE_SERVER_TIME,
                "ms",
                percentile(times[ours], q) * 1e3,
                percentile(times[baseline], q) * 1e3,
                target,
                note=note,
                extra=extra,
            )
        )
    return rows


def throughput_rows(ctx: Context) -> list[Row]:
    counts = ctx.counts
    callers, per_caller = counts.callers, counts.images_per_caller
    total = callers * per_caller
    rates: dict[str, list[float]] = {side: [] for side in SIDES}
    args = ("--batching-parameters-file", str(BATCHING_CONFIG))
    with _served(ctx, *args) as run:
        batching = "serving/batching.config" if ctx.server is None else "its own batching configuration"
        for side, worker in run.workers.items():
            worker.warm(side, WARM_CALLS, callers)
        for _ in range(counts.latency_rounds):
            for side, worker in run.workers.items():
                before = run.clock.read() if SIDES[side][1] else None
                seconds = worker.throughput(side, callers, per_caller)
                if SIDES[side][1]:
                    _inside(run, side).add(before, run.clock.read(), seconds * callers, total)
                rates[side].append(total / seconds)
    rows = []
    for row_id, ours, baseline, target in THROUGHPUT_ROWS:
        limit = baseline == "in-process"
        note, extra = _server_note(run, ours, baseline)
        wire = ours.split()[1]
        against = (
            f"{DOES[baseline]} on batches of {callers}"
            if limit
            else f"{callers} threads of {DOES[baseline]}, through the same server"
        )
        rows.append(
            measured(
                row_id,
                6,
                f"Throughput, {wire}" + (" / in-process limit" if limit else f" vs {baseline}"),
                f"images/s of {callers} threads each calling {DOES[ours]} {per_caller} times (one image per "
                f"request) through {run.served_by} with {batching}, vs {against}; {total} images per side "
                f"per round, {counts.latency_rounds} rounds taking turns, median rate; " + SEE_SERVER_TIME,
                "images/s",
                median(rates[ours]),
                median(rates[baseline]),
                target,
                note=("ours / in-process limit; " if limit else "") + note,
                extra=extra,
            )
        )
    return rows
