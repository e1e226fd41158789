"""Rows 3 and 4: bytes each client puts on the wire, and the client's own CPU per image.

Both rows talk to :mod:`benchmarks._canned`, a server in another process that answers
at once with a fixed softmax, so what is measured is the client alone. The reference
client is the reference project's path: preprocess to a float [70, 160, 1] image, send
``{"instances": x.tolist()}`` as JSON with ``requests``, read ``predictions`` back and
decode with Keras ``ctc_decode``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import requests

from shixin_client import ModelRef, ShixinClient
from shixin_client._images import ImageInput, preprocess
from shixin_client._spec import DEFAULT_MODEL_NAME, DEFAULT_SPEC
from shixin_client._transports._rest_codec import predict_url

from ._children import child_server
from ._context import Context, Sample
from ._results import Row, Target, measured
from ._timing import cycling, median, per_call

BYTES_TARGET = Target("<=", 1 / 25, "at most 1/25")
CPU_TARGET = Target("<=", 1 / 10, "at most 1/10")


def reference_body(image: ImageInput) -> bytes:
    """The reference client's request for one image: its float tensor as JSON lists."""
    x = preprocess(image, DEFAULT_SPEC)[None]
    return json.dumps({"instances": x.tolist()}).encode("utf-8")


def reference_client(rest_url: str) -> Callable[[str], str]:
    """The reference project's recognise function, on one pooled session like ours."""
    import keras

    session = requests.Session()
    url = predict_url(rest_url, ModelRef(DEFAULT_MODEL_NAME))
    spec = DEFAULT_SPEC

    def recognize(path: str) -> str:
        response = session.post(url, data=reference_body(path))
        response.raise_for_status()
        softmax = np.array(response.json()["predictions"], dtype=np.float32)
        decoded, _ = keras.ops.ctc_decode(
            softmax, np.full(len(softmax), spec.time_steps), strategy="greedy", mask_index=spec.blank_index
        )
        return "".join(spec.class_to_char(int(c)) for c in np.asarray(decoded)[0, 0] if c >= 0)

    return recognize


def _wire_set(ctx: Context) -> tuple[list[Sample], str]:
    origin = [s for s in ctx.real if s.name.startswith("origin/")]
    if origin:
        return origin, f"the {len(origin)} real site captchas in datasets/real/origin"
    return ctx.generated, f"{len(ctx.generated)} generated captchas (no datasets/real/origin here)"


def wire_rows(ctx: Context) -> list[Row]:
    samples, described = _wire_set(ctx)
    with child_server("benchmarks._canned") as canned:
        for target in (canned["rest"], f"grpc://{canned['grpc']}"):
            with ShixinClient(target) as client:
                for sample in samples:
                    client.recognize(sample.data)
        sizes = requests.get(f"{canned['rest']}/sizes", timeout=10).json()
    reference = median([len(reference_body(s.data)) for s in samples])
    files = median([len(s.data) for s in samples])
    extra = {"image_file_bytes_median": files, "images": [s.name for s in samples]}
    return [
        measured(
            "3a",
            3,
            "Wire bytes per image, REST",
            f"HTTP body of our REST predict request (serving_bytes, image as b64) vs the reference "
            f'client\'s `{{"instances": x.tolist()}}` float JSON body; medians over {described}',
            "bytes",
            median(sizes["rest"]),
            reference,
            BYTES_TARGET,
            extra=extra,
        ),
        measured(
            "3b",
            3,
            "Wire bytes per image, gRPC",
            "serialized PredictRequest our gRPC client sends (image bytes as string_val) vs the same "
            f"reference float JSON body; medians over {described}",
            "bytes",
            median(sizes["grpc"]),
            reference,
            BYTES_TARGET,
            extra=extra,
        ),
    ]


def cpu_rows(ctx: Context) -> list[Row]:
    samples, described = _wire_set(ctx)
    paths = []
    for index, sample in enumerate(samples):
        path = ctx.tmp / "wire" / f"{index}_{Path(sample.name).name}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(sample.data)
        paths.append(str(path))
    counts = ctx.counts
    rows = []
    with child_server("benchmarks._canned") as canned:
        reference = reference_client(canned["rest"])
        for row_id, kind, target in (
            ("4a", "REST", canned["rest"]),
            ("4b", "gRPC", f"grpc://{canned['grpc']}"),
        ):
            with ShixinClient(target) as client:
                sides = {"ours": cycling(paths, client.recognize), "reference": cycling(paths, reference)}
                for fn in sides.values():
                    fn()  # warm: connections, the spec, Keras' first op
                cpu = per_call(sides, counts.cpu_calls, counts.cpu_rounds, clock=time.process_time)
            rows.append(
                measured(
                    row_id,
                    4,
                    f"Client CPU per image, {kind}",
                    f"process CPU time of `ShixinClient({kind} URL).recognize(path)` (read file, encode, "
                    "send, parse, greedy-decode to text) vs the reference path (read + preprocess to floats, "
                    "`tolist()` JSON via requests, parse, Keras `ctc_decode`), both against a canned server "
                    f"in another process; {counts.cpu_calls} calls x {counts.cpu_rounds} alternating rounds "
                    f"over {described}, median per call",
                    "ms",
                    cpu["ours"] * 1e3,
                    cpu["reference"] * 1e3,
                    CPU_TARGET,
                )
            )
    return rows
