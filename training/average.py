"""CLI: average checkpoints fine-tuned from one parent ("model soup"), and keep what validates best.

    python -m training.average runs/a/best.keras runs/b/best.keras --out runs/soup.keras

Runs resumed from the same checkpoint on different fresh data stay in one basin of the
loss, so the mean of their weights is a model too, and often a better one than each
(Wortsman et al. 2022, "Model soups"). The candidates (each input and the average) are
scored on validation captchas that no epoch's checkpoint choice used; the best is saved.
The test seed is never looked at here.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .dataset import render_parallel
from .train import VALIDATION_SEED, exact_match

#: Where the selection images start in the validation stream: far past the 2,000 an epoch
#: that training draws from its start, so choosing here never reuses a checkpoint's own picks.
SELECTION_START = 1_000_000


def average_weights(weight_sets: Sequence[list[np.ndarray]], names: Sequence[str]) -> list[np.ndarray]:
    """Element-wise mean of same-shaped weight lists; a mismatch names the odd checkpoint."""
    first = weight_sets[0]
    for name, weights in zip(names, weight_sets, strict=True):
        shapes = [w.shape for w in weights]
        if shapes != [w.shape for w in first]:
            raise ValueError(f"{name} does not have the architecture of {names[0]}: weight shapes differ")
    return [np.mean([weights[i] for weights in weight_sets], axis=0) for i in range(len(first))]


def soup(models: dict[str, Any]) -> Any:
    """A new model of the first one's architecture holding the mean of all their weights."""
    import keras

    names = list(models)
    model = keras.models.clone_model(models[names[0]])
    model.set_weights(average_weights([m.get_weights() for m in models.values()], names))
    return model


def choose(candidates: dict[str, Any], score: Callable[[Any], float]) -> tuple[str, dict[str, float]]:
    """The best-scoring candidate's name (the first listed wins a tie) and every score."""
    scores = {name: score(model) for name, model in candidates.items()}
    return max(scores, key=lambda name: scores[name]), scores


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.average", description=__doc__.splitlines()[0])
    parser.add_argument("checkpoints", type=Path, nargs="+", help="Keras files fine-tuned from one parent")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=10_000, help="selection captchas")
    parser.add_argument("--workers", type=int, default=2)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import keras

    args = parse_args(argv)
    names = [str(path) for path in args.checkpoints]
    models = {name: keras.models.load_model(path) for name, path in zip(names, args.checkpoints, strict=True)}
    candidates = {**models, "average": soup(models)} if len(models) > 1 else models
    # One set of selection captchas (validation seed, from SELECTION_START) for every candidate.
    batch = render_parallel(VALIDATION_SEED, args.count, workers=args.workers, start=SELECTION_START)
    best, scores = choose(candidates, lambda model: exact_match(model, batch))
    candidates[best].save(args.out)
    print(json.dumps({"chosen": best, "selection_exact_match": scores}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
