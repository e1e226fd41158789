"""CLI: give a trained model a new sequence head, trained on its frozen CNN's features.

    python -m training.transplant runs/p8/chosen.keras --preset default --out runs/conv --seed 31

A preset that differs from a trained model only in its head (``training.model.sequence_head``)
does not need training from scratch: its CNN can start as the trained one. This copies every
layer whose name and weight shapes match, renders a pool of augmented captchas, computes
their per-step features once, and trains the head alone on them with the CTC loss; an
epoch then costs the head's share of the network, not the CNN's. The head is not taught
the old head's frame-by-frame outputs: a new head places its characters on frames of its
own choosing, so only the labels are a fair target. The result is written as a checkpoint
that ``python -m training.train --resume`` fine-tunes end to end.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import time
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np

from shixin_client._spec import DEFAULT_SPEC, CaptchaSpec

from .dataset import render, render_parallel
from .model import FEATURES_LAYER, PRESETS, Preset, build_model, sequence_head
from .train import TEST_SEED, VALIDATION_SEED, ctc_loss, exact_match, start_run

log = logging.getLogger("training")

#: Where this step's validation captchas start in the validation stream: apart from the
#: stretch train.py walks (from 0) and from training.average's selection (1,000,000).
VALIDATION_START = 1_500_000


def copy_matching_weights(source: Any, target: Any, skip: Collection[str] = ()) -> list[str]:
    """Copy each layer of ``source`` into the same-named ``target`` layer of the same shapes."""
    copied = []
    for layer in target.layers:
        if not layer.weights or layer.name in skip:
            continue
        try:
            other = source.get_layer(layer.name)
        except ValueError:
            continue
        if [w.shape for w in other.weights] == [w.shape for w in layer.weights]:
            layer.set_weights(other.get_weights())
            copied.append(layer.name)
    return copied


def features(model: Any, images: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Per-step CNN features [N, steps, F] as float16, halving the pool's memory.

    The uint8 images become float32 a chunk at a time: a pool of 150,000 at once would
    take 6.7 GB before Keras copies it again.
    """
    import keras

    layer = model.get_layer(FEATURES_LAYER)
    extractor = keras.Model(model.input, layer.output)
    out = np.empty((len(images), *layer.output.shape[1:]), dtype=np.float16)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].astype(np.float32)
        out[start : start + chunk] = extractor.predict(part, batch_size=256, verbose=0)
    return out


def head_model(preset: Preset, width: int, spec: CaptchaSpec = DEFAULT_SPEC) -> Any:
    """The preset's head alone (features [N, steps, width] -> logits), layers named as in its model."""
    import keras

    inputs = keras.Input((spec.time_steps, width), name="features")
    return keras.Model(inputs, sequence_head(inputs, preset, spec), name="head")


def transplant(args: argparse.Namespace) -> Path:
    import keras

    spec = DEFAULT_SPEC
    out: Path = args.out
    start_run(out, args.seed)
    source = keras.models.load_model(args.source)
    model = build_model(args.preset, spec)
    head = head_model(PRESETS[args.preset], model.get_layer(FEATURES_LAYER).output.shape[-1], spec)
    # Only the CNN comes from the source: a head layer that happens to match in shape (the
    # logits, when the old and new heads are equally wide) starts fresh like the rest.
    copied = copy_matching_weights(source, model, skip={layer.name for layer in head.layers})
    if FEATURES_LAYER not in copied:
        raise SystemExit(f"{args.source} has no {FEATURES_LAYER!r} layer of {args.preset}'s shape to copy")
    log.info("copied %s from %s; training the rest", ", ".join(copied), args.source)
    t0 = time.time()
    pool = render_parallel(args.seed, args.train_size, workers=args.workers, augment=True)
    pool_features = features(model, pool.images)
    val = render(VALIDATION_SEED, VALIDATION_START, args.val_size, spec)
    log.info("rendered %d captchas and their features in %.0f s", args.train_size, time.time() - t0)

    head.compile(optimizer=keras.optimizers.Adam(args.lr, amsgrad=True, clipnorm=5.0), loss=ctc_loss(spec))
    history: list[dict[str, float]] = []
    best = -1.0
    lr = args.lr
    for epoch in range(args.epochs):
        t0 = time.time()
        if epoch >= args.decay_from:
            lr *= 0.5
            head.optimizer.learning_rate.assign(lr)
        fit = head.fit(pool_features, pool.labels, batch_size=args.batch_size, epochs=1, verbose=0)
        copy_matching_weights(head, model)
        accuracy = exact_match(model, val, spec)
        history.append({"epoch": epoch + 1, "loss": float(fit.history["loss"][-1]), "val_accuracy": accuracy})
        log.info(
            "head epoch %d/%d loss %.4f val_exact %.4f lr %.2e %.0fs",
            epoch + 1, args.epochs, history[-1]["loss"], accuracy, lr, time.time() - t0,
        )  # fmt: skip
        if accuracy > best:
            best = accuracy
            model.save(out / "best.keras")
    # train.py --resume picks up from here: it fine-tunes the whole network from the best head.
    shutil.copyfile(out / "best.keras", out / "last.keras")
    (out / "state.json").write_text(json.dumps({"epoch": 0, "best": -1.0, "lr": lr, "stale": 0}))
    (out / "history.json").write_text("[]")
    (out / "transplant.json").write_text(json.dumps({"copied": copied, "history": history}, indent=1))
    log.info("best head: validation exact match %.4f; %s", best, out / "last.keras")
    return out / "last.keras"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.transplant", description=__doc__.splitlines()[0]
    )
    parser.add_argument("source", type=Path, help="a trained Keras model whose CNN the preset shares")
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, required=True, help="training pool seed (never 900001/900002)")
    parser.add_argument("--train-size", type=int, default=100_000)
    parser.add_argument("--val-size", type=int, default=5_000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--decay-from", type=int, default=4, help="halve the rate every epoch from this one")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    if args.seed in (VALIDATION_SEED, TEST_SEED):
        parser.error(f"--seed {args.seed} is a validation or test seed")
    return args


def main(argv: list[str] | None = None) -> int:
    transplant(parse_args(argv))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
