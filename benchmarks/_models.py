"""Rows 8, 9 and 10: the embedded model against ddddocr, the two presets, and the generator.

Accuracy is exact match of the whole 4-character text, ignoring case, on the same images
for every side: generated captchas from the training code's test seed (never trained on)
and the real site captchas (datasets/real). Without the trained model the accuracy of ours is
PENDING, never a number from random weights.
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from shixin_client import ShixinClient, decode_softmax
from shixin_client._images import preprocess
from shixin_client._spec import DEFAULT_SPEC
from shixin_client._transports.local import DEFAULT_MODEL_PATH

from ._context import QUIET_TF, Context, Sample
from ._embedded_timing import time_in_child
from ._results import INFO, PENDING, SKIP, Row, Target, measured, not_measured
from ._timing import per_call

GENERATOR_SEED = 0
ACCURACY_BATCH = 256


def accuracy(texts: Sequence[str], samples: Sequence[Sample]) -> float:
    """Per cent of texts equal to their sample's label, ignoring case."""
    hits = [text.lower() == sample.label for text, sample in zip(texts, samples, strict=True)]
    return 100.0 * float(np.mean(hits))


def _accuracy_row(
    row_id: str,
    item: int,
    title: str,
    compares: str,
    ours: float | None,
    baseline: float | None,
    pending: str,
    extra: dict[str, Any],
) -> Row:
    """Accuracy beside the timings: reported, no target; PENDING while a side has no trained model."""
    if ours is not None and baseline is not None:
        return measured(row_id, item, title, compares, "%", ours, baseline, None, extra=extra)
    return Row(row_id, item, title, compares, "%", ours, baseline, None, None, PENDING, pending, extra)


def embedded_rows(ctx: Context) -> list[Row]:
    compares_time = (
        "wall time per image of the embedded LiteRT model via `ShixinClient.local()` (its int8 companion "
        "first, the float model for the readings under 0.9 confidence) vs "
        "`ddddocr.DdddOcr(show_ad=False).classification(bytes)`, both from the same encoded files"
    )
    try:
        import ddddocr
    except ImportError:
        target = Target("<=", 1 / 5, "at most 1/5")
        return [
            not_measured(row_id, 8, title, compares_time, "ms", target, SKIP, "ddddocr is not installed")
            for row_id, title in (("8a", "Embedded, batch 1"), ("8b", "Embedded, batched"))
        ]
    embedded = ctx.tflite
    timed = ctx.generated + ctx.real
    data = [sample.data for sample in timed]
    model = None if embedded == DEFAULT_MODEL_PATH else str(embedded)
    times = time_in_child(data, model, ctx.counts.embedded_rounds, {**os.environ, **QUIET_TF})
    per_image = {name: seconds / len(data) * 1e3 for name, seconds in times.items()}
    images = f"{len(ctx.generated)} generated + {len(ctx.real)} real captchas"
    rounds = (
        f"median of {ctx.counts.embedded_rounds} alternating rounds, in a fresh process without TensorFlow"
    )
    rows = [
        measured(
            "8a",
            8,
            "Embedded, batch 1",
            f"{compares_time}: one `recognize(bytes)` per image; {images}, {rounds}",
            "ms",
            per_image["ours_one"],
            per_image["ddddocr"],
            Target("<=", 1 / 5, "at most 1/5"),
        ),
        measured(
            "8b",
            8,
            "Embedded, batched",
            f"{compares_time}: ours one `recognize_many(all images)` (batches of the client's default size), "
            f"ddddocr has no batch API so one call per image; {images}, {rounds}",
            "ms",
            per_image["ours_many"],
            per_image["ddddocr"],
            Target("<=", 1 / 5, "at most 1/5"),
        ),
    ]
    ocr = ddddocr.DdddOcr(show_ad=False)
    client = (
        ShixinClient.local() if embedded == DEFAULT_MODEL_PATH else ShixinClient.local(model_path=embedded)
    )
    pending = "pending model: no shipped shixin_client/_assets/shixin.tflite yet"
    for row_id, title, samples in (
        ("8c", "Accuracy, generated", ctx.accuracy_set),
        ("8d", "Accuracy, real captchas", ctx.real),
    ):
        compares = (
            "exact-match accuracy of the embedded model (every reading as predicted; row 13 is the reject "
            f"option) vs ddddocr on the same {len(samples)} "
            + (
                "generated captchas (training test seed)"
                if row_id == "8c"
                else "real site captchas (datasets/real)"
            )
        )
        if not samples:
            rows.append(not_measured(row_id, 8, title, compares, "%", None, SKIP, "no real samples here"))
            continue
        items = [sample.data for sample in samples]
        texts = [p.text for p in client.predict_many(items)] if ctx.embedded_trained else None
        reads = [ocr.classification(item).lower() for item in items]
        extra: dict[str, Any] = {"images": len(samples)}
        if row_id == "8d":
            ours_reads: Sequence[str | None] = texts if texts is not None else [None] * len(samples)
            extra["reads"] = [
                {"file": s.name, "label": s.label, "ours": text, "ddddocr": read}
                for s, text, read in zip(samples, ours_reads, reads, strict=True)
            ]
        ours = accuracy(texts, samples) if texts is not None else None
        rows.append(_accuracy_row(row_id, 8, title, compares, ours, accuracy(reads, samples), pending, extra))
    client.close()
    return rows


def _texts(model: Any, images: np.ndarray) -> list[str]:
    """The model's readings, batched as training.evaluate batches them (its reports' figures)."""
    softmax = model.predict(images, batch_size=ACCURACY_BATCH, verbose=0)
    return [prediction.text for prediction in decode_softmax(softmax, DEFAULT_SPEC)]


def preset_rows(ctx: Context) -> list[Row]:
    import tensorflow as tf

    counts = ctx.counts
    default = ctx.keras_model
    seed, _ = ctx.seed_preset
    batch = np.stack([preprocess(s.data) for s in ctx.generated[: counts.model_batch]])
    while len(batch) < counts.model_batch:
        batch = np.concatenate([batch, batch])[: counts.model_batch]
    spec = tf.TensorSpec([None, *batch.shape[1:]], tf.float32)
    calls = {
        name: tf.function(lambda x, m=model: m(x, training=False), input_signature=[spec])
        for name, model in (("default", default), ("seed", seed))
    }
    tensor = tf.constant(batch)
    for fn in calls.values():
        fn(tensor)

    def timed(fn: Any) -> Callable[[], object]:
        return lambda: fn(tensor).numpy()

    times = per_call({name: timed(fn) for name, fn in calls.items()}, 1, counts.model_rounds)
    rows = [
        measured(
            "9a",
            9,
            "Inference cost, default vs seed",
            f"wall time per image of the compact `default` preset ({default.count_params():,} parameters) "
            f"vs the reference-sized `seed` preset ({seed.count_params():,}), each a tf.function on one "
            f"batch of {counts.model_batch} preprocessed captchas, median of {counts.model_rounds} "
            "alternating rounds (time does not depend on the weights)",
            "ms",
            times["default"] / counts.model_batch * 1e3,
            times["seed"] / counts.model_batch * 1e3,
            None,
            note="no target; lower is cheaper",
        )
    ]
    samples = ctx.preset_accuracy_set
    images = np.stack([preprocess(s.data) for s in samples])
    # Each row: the default preset's run and the seed preset's run it is compared with.
    pairs = (
        ("9b", "Accuracy, default vs seed (equal data, 2 epochs)", "default", "seed",
         "the same data for 2 epochs"),
        ("9c", "Accuracy, default vs seed (equal time)", "default-equal-time", "seed",
         "the same data for as many epochs as fit in the seed preset's 2-epoch training minutes (6)"),
        ("9d", "Accuracy, default vs seed (equal data, 6 epochs)", "default-equal-time", "seed-6-epochs",
         "the same data for 6 epochs (the default's run is 9c's)"),
        ("9e", "Accuracy, default vs seed (equal data, 10 epochs)", "default-10-epochs", "seed-10-epochs",
         "the same data for 10 epochs (9d's runs, continued)"),
    )  # fmt: skip
    runs = {
        name: ctx.preset_run(name)
        for _, _, default_run, seed_run, _ in pairs
        for name in (default_run, seed_run)
    }
    reads = {  # each run read once, however many rows name it
        name: (accuracy(_texts(run[0], images), samples), training_minutes(run[1].parent))
        for name, run in runs.items()
        if run is not None
    }
    weights = {name: str(run[1]) for name, run in runs.items() if run is not None}
    for row_id, title, default_run, seed_run, budget in pairs:
        ours, minutes = reads.get(default_run, (None, None))
        baseline, seed_minutes = reads.get(seed_run, (None, None))
        missing = "; ".join(
            text
            for text, absent in (
                (f"default preset: not trained with {budget}", ours is None),
                ("seed preset: not trained with it", baseline is None),
            )
            if absent
        )
        compares = (
            "exact-match accuracy (Keras model, the SDK's decoder) on "
            f"{len(samples)} generated captchas from the training test seed, of the two presets each "
            f'trained from scratch on {budget} (models/README.md, "Default vs seed"); the committed '
            "model trained far longer and is row 8c"
        )
        extra = {
            "default_weights": weights.get(default_run),
            "seed_weights": weights.get(seed_run),
            "default_training_minutes": minutes,
            "seed_training_minutes": seed_minutes,
        }
        if ours is None or baseline is None:
            rows.append(_accuracy_row(row_id, 9, title, compares, ours, baseline, missing, extra))
            continue
        rows.append(
            measured(
                row_id,
                9,
                title,
                compares,
                "%",
                ours,
                baseline,
                Target(">=", 1.0, "at least the seed preset's"),
                note=f"training: default {minutes:.0f} min, seed {seed_minutes:.0f} min",
                extra=extra,
            )
        )
    return rows


def training_minutes(run: Path) -> float:
    """Minutes of training (epochs and their validation) that ``<run>/train.log`` records."""
    seconds = [float(m.group(1)) for m in re.finditer(r" lr \S+ (\d+)s", (run / "train.log").read_text())]
    return sum(seconds) / 60


def generator_rows(ctx: Context) -> list[Row]:
    from training.generator import generate

    count = ctx.counts.generator_images
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in generate(GENERATOR_SEED, count):
        pass
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return [
        Row(
            "10",
            10,
            "Generator",
            f"captchas rendered per CPU-second by `training.generator.generate` in one process "
            f"({count} images, PIL images out, no encoding)",
            "images/s",
            count / cpu,
            None,
            None,
            None,
            INFO,
            "no baseline: the reference project has no Python generator (Patchca is Java)",
            {"wall_images_per_s": count / wall},
        )
    ]
