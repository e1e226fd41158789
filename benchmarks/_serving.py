"""Rows 5 and 6: the client through the local server against the same model called in-process.

The server (:mod:`shixin_client.server`, started by :mod:`benchmarks._serve`) runs in its own
process, as TF Serving does; ``--server-grpc``/``--server-rest`` point the rows at a server
started outside the harness instead (the real TF Serving by ``serving/run.sh``), after
checking that it answers with the model this run loads. The baseline loads the same
exported SavedModel in this process and calls its ``serving_bytes`` signature directly: no
sockets, no client. Ours is the whole client call, ``ShixinClient(url).recognize(png_bytes)``,
text out.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import numpy as np

from shixin_client import ShixinClient
from shixin_client._spec import DEFAULT_MODEL_NAME, INPUT_BYTES, OUTPUT_SOFTMAX, SIGNATURE_BYTES

from ._children import child_server
from ._context import ROOT, Context
from ._results import Row, Target, measured
from ._timing import cycling, latencies, median, percentile

BATCHING_CONFIG = ROOT / "serving" / "batching.config"
WARM_CALLS = 3
#: An outside server must give the in-process softmax on these many captchas, to within
#: SAME_MODEL_ATOL (float32 noise of another build of the same kernels): otherwise it serves
#: another model and its timings would compare nothing.
SAME_MODEL_SAMPLES = 4
SAME_MODEL_ATOL = 1e-4


def _in_process(ctx: Context) -> Callable[[list[bytes]], object]:
    import tensorflow as tf

    signature = ctx.signatures[SIGNATURE_BYTES]

    def run(batch: list[bytes]) -> object:
        return signature(**{INPUT_BYTES: tf.constant(batch)})[OUTPUT_SOFTMAX].numpy()

    return run


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


@contextmanager
def _server(ctx: Context, *child_args: str) -> Iterator[tuple[dict[str, str], str]]:
    """The addresses rows 5 and 6 call and how the rows describe that server."""
    if ctx.server is None:
        with child_server("benchmarks._serve", str(ctx.model_dir), DEFAULT_MODEL_NAME, *child_args) as server:
            yield server, "shixin_client.server in another process"
        return
    where = f"the server at {ctx.server.rest} and grpc://{ctx.server.grpc}"
    samples = ctx.generated[:SAME_MODEL_SAMPLES]
    in_process = _in_process(ctx)
    with ShixinClient(ctx.server.rest) as client:
        theirs = np.stack([np.asarray(client.predict(s.data, with_softmax=True).softmax) for s in samples])
    check_same_model(np.concatenate([in_process([s.data]) for s in samples]), theirs, where)
    yield {"grpc": ctx.server.grpc, "rest": ctx.server.rest}, f"{where} (started outside the harness)"


def _clients(server: dict[str, str]) -> dict[str, ShixinClient]:
    return {"gRPC": ShixinClient(f"grpc://{server['grpc']}"), "REST": ShixinClient(server["rest"])}


def latency_rows(ctx: Context) -> list[Row]:
    samples, counts = ctx.generated, ctx.counts
    in_process = _in_process(ctx)
    with _server(ctx) as (server, served_by):
        clients = _clients(server)
        try:
            sides: dict[str, Callable[[], object]] = {
                kind: cycling([s.data for s in samples], client.recognize) for kind, client in clients.items()
            }
            sides["in-process"] = cycling([s.data for s in samples], lambda data: in_process([data]))
            for fn in sides.values():
                for _ in range(WARM_CALLS):
                    fn()
            times = latencies(sides, counts.latency_calls, counts.latency_rounds)
        finally:
            for client in clients.values():
                client.close()
    calls = f"{counts.latency_calls} calls x {counts.latency_rounds} rounds per side, sides taking turns"
    rows = []
    for row_id, kind, q, target in (
        ("5a", "gRPC", 50, Target("<=", 1.5, "at most 1.5x")),
        ("5b", "REST", 50, Target("<=", 2.0, "at most 2x")),
        ("5c", "gRPC", 99, None),
        ("5d", "REST", 99, None),
    ):
        rows.append(
            measured(
                row_id,
                5,
                f"Latency p{q}, {kind}",
                f"p{q} wall time of `ShixinClient({kind} URL).recognize(png)` through {served_by} "
                f"(no batching) vs the same SavedModel's `{SIGNATURE_BYTES}` signature "
                f"called in-process on the same PNG, one image per call (ours also encodes and decodes to "
                f"text, the baseline stops at the softmax); {calls}, "
                f"{len(samples)} generated captchas",
                "ms",
                percentile(times[kind], q) * 1e3,
                percentile(times["in-process"], q) * 1e3,
                target,
                note="" if target else "p99 is reported, the issue sets no target for it",
            )
        )
    return rows


def throughput_rows(ctx: Context) -> list[Row]:
    samples, counts = ctx.generated, ctx.counts
    callers, per_caller = counts.callers, counts.images_per_caller
    total = callers * per_caller
    in_process = _in_process(ctx)
    batches = [
        [samples[(i + j) % len(samples)].data for j in range(callers)] for i in range(0, total, callers)
    ]
    rates: dict[str, list[float]] = {"gRPC": [], "REST": [], "in-process": []}
    args = ("--batching-parameters-file", str(BATCHING_CONFIG))
    with _server(ctx, *args) as (server, served_by):
        batching = "serving/batching.config" if ctx.server is None else "its own batching configuration"
        clients = _clients(server)
        try:
            for client in clients.values():
                for _ in range(WARM_CALLS):
                    client.recognize(samples[0].data)
            in_process(batches[0])
            with ThreadPoolExecutor(callers) as pool:
                for _ in range(counts.latency_rounds):
                    for kind, client in clients.items():

                        def caller(index: int, client: ShixinClient = client) -> None:
                            for i in range(per_caller):
                                client.recognize(samples[(index * per_caller + i) % len(samples)].data)

                        start = time.perf_counter()
                        list(pool.map(caller, range(callers)))
                        rates[kind].append(total / (time.perf_counter() - start))
                    start = time.perf_counter()
                    for batch in batches:
                        in_process(batch)
                    rates["in-process"].append(total / (time.perf_counter() - start))
        finally:
            for client in clients.values():
                client.close()
    rows = []
    for kind, row_id in (("gRPC", "6a"), ("REST", "6b")):
        rows.append(
            measured(
                row_id,
                6,
                f"Throughput, {kind}",
                f"images/s of {callers} threads each calling `ShixinClient({kind} URL).recognize(png)` "
                f"{per_caller} times (one image per request) through {served_by} with "
                f"{batching} vs the same SavedModel's `{SIGNATURE_BYTES}` signature called "
                f"in-process on batches of {callers}; {total} images per side per round, "
                f"{counts.latency_rounds} rounds taking turns, median rate",
                "images/s",
                median(rates[kind]),
                median(rates["in-process"]),
                Target(">=", 0.8, "at least 0.8x"),
            )
        )
    return rows
