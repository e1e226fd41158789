"""Row 15: how fast ``python -m training.finetune`` trains on this CPU, and how many captchas it needs.

A short run of the fine-tuning step: the shipped model (an untrained stand-in before one
exists; the time does not depend on the weights), ``finetune_captchas`` labelled captchas
of the unseen style ``training.finetune_curve`` measures, the optimizer, learning rate,
batch size and augmentation of ``python -m training.finetune``'s defaults (read from its
argument parser). After a few untimed steps (tracing), one whole epoch is timed, each
captcha perturbed afresh as ``--augment`` does. The figure is CPU-seconds (all threads)
per 1,000 captchas per epoch: a single core's wall seconds, as the curve's runs on one
thread measure it.

How many labelled captchas reach 99% is a training run per size, minutes each, so the row
reads it from the committed curve (``docs/finetune_curve.json``, made by
``python -m training.finetune_curve``) rather than measuring it in this run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from ._context import ROOT, TRAINED_KERAS, Context
from ._results import INFO, Row

WARM_STEPS = 2
#: A seed of its own: these captchas are never any model's training data.
SEED = 37
#: The fine-tuning run's epoch numbers: the warm-up draws epoch 0, the timed epoch is 1.
TIMED_EPOCH = 1


def _labelled(folder: Path, count: int, style: Any) -> Any:
    """``count`` captchas of ``style`` written as a labelled folder and read as fine-tuning reads it."""
    from training.generator import captcha_at, file_name, png_bytes
    from training.labelled import load_labelled

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        captcha = captcha_at(SEED, index, style=style)
        data = png_bytes(captcha)
        (folder / file_name(captcha, data)).write_bytes(data)
    return load_labelled([folder], style.spec, say=lambda line: None)


def curve_summary(path: Path) -> tuple[str, dict[str, Any] | None]:
    """The note's sentence on the committed fine-tuning curve, and the curve's figures (None: none)."""
    shown = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    if not path.is_file():
        return f"no fine-tuning curve at {shown} (`python -m training.finetune_curve` writes it)", None
    curve = json.loads(path.read_text(encoding="utf-8"))
    style, target, held_out = curve["style"], curve["target"], curve["held_out"]
    largest = max(run["labelled"] for run in curve["runs"])
    if curve["reached"] is None:
        said = f"no set of up to {largest} labelled captchas of the unseen style `{style}` reached"
    else:
        said = f"{curve['reached']} labelled captchas of the unseen style `{style}` reached"
    figures = {
        "reached": curve["reached"],
        "target": target,
        "held_out": held_out,
        "runs": [
            {"labelled": run["labelled"], "exact_match": run["after_exact_match"]} for run in curve["runs"]
        ],
    }
    return f"{said} {target:.0%} exact match on {held_out} held-out ones ({shown})", figures


def finetuning_rows(ctx: Context, curve: Path | None = None) -> list[Row]:
    import keras

    from training.dataset import mixed_epochs
    from training.finetune import build_parser, compiled_trainer
    from training.finetune_curve import CURVE_RESULTS, DEFAULT_STYLE
    from training.model import build_model
    from training.style import load_style

    defaults = build_parser().parse_args([str(ctx.tmp), "--out", str(ctx.tmp / "finetune")])
    style = load_style(DEFAULT_STYLE)
    labelled = _labelled(ctx.tmp / "finetune-labelled", ctx.counts.finetune_captchas, style)
    keras.utils.set_random_seed(SEED)
    # A copy of its own: training changes the weights, which the other rows' model must keep.
    model = keras.models.load_model(TRAINED_KERAS, compile=False) if ctx.trained else build_model("default")
    trainer = compiled_trainer(model, defaults.lr, style.spec)
    epochs = mixed_epochs(labelled, None, defaults.batch_size, defaults.seed, style.spec, defaults.augment)
    trainer.fit(epochs(0).take(WARM_STEPS), epochs=1, verbose=0)
    cpu, wall = time.process_time(), time.perf_counter()
    trainer.fit(epochs(TIMED_EPOCH), epochs=1, verbose=0)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    captchas = len(labelled)
    said, figures = curve_summary(CURVE_RESULTS if curve is None else curve)
    return [
        Row(
            "15",
            15,
            "Fine-tuning on labelled captchas",
            f"CPU-seconds (one core's seconds) per 1,000 labelled captchas per epoch of "
            f"`python -m training.finetune`'s training step on {ctx.model_source} (batch "
            f"{defaults.batch_size}, {captchas} captchas of the unseen style `{style.name}`, each perturbed "
            f"afresh): one epoch timed after {WARM_STEPS} untimed steps",
            "s per 1,000 per epoch",
            1000 * cpu / captchas,
            None,
            None,
            None,
            INFO,
            f"no baseline: a figure for planning a fine-tuning run; {said}",
            {
                "wall_s_per_1000_per_epoch": 1000 * wall / captchas,
                "cpu_s": cpu,
                "wall_s": wall,
                "captchas": captchas,
                "curve": figures,
            },
        )
    ]
