"""CLI: how many labelled captchas of an unseen style fine-tuning needs to reach a target accuracy.

    python -m training.finetune_curve --work /tmp/finetune-curve [--style changed]
        [--sizes 100,200,500,1000,2000] [--eval-count 1000] [--draws 10000] [--threads 1]

Renders, with the style (default ``training/styles/changed.json``: fonts, background, colours
and filter chains the shipped model never saw), a held-out set of ``--eval-count`` captchas
(seed ``EVAL_SEED``) and, for each size N, the first N captchas of a training stream (seed
``TRAIN_SEED``, so each set holds the smaller ones). Each set then goes through
``python -m training.finetune SET --eval HELD-OUT --style STYLE --epochs E`` in a fresh
process limited to ``--threads`` TensorFlow threads, from the shipped model with the CLI's
defaults (augmentation on, no generated captchas): the run a user with N labelled captchas
makes. Every size is read on the same held-out set, so the sizes compare.

Epochs: E = ``--draws`` / N, between ``MIN_EPOCHS`` and ``MAX_EPOCHS``, so every size gets
about the same number of training steps (small sets more passes, each perturbed afresh).
Sizes are run smallest first; those after the first to reach ``--target`` exact match are
not run unless ``--all``.

Written: ``--results`` (default ``docs/finetune_curve.json``, which ``python -m benchmarks``
reads) and the same path with ``.md`` (the table); the captchas and runs stay under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .finetune import SHIPPED_MODEL
from .generate import main as generate
from .style import StyleError, load_style

ROOT = Path(__file__).resolve().parents[1]
#: The committed measurement; ``benchmarks`` reads how many captchas reached the target from it.
CURVE_RESULTS = ROOT / "docs" / "finetune_curve.json"
DEFAULT_STYLE = "changed"
DEFAULT_SIZES = (100, 200, 500, 1000, 2000)
#: Seeds of their own: neither stream is any shipped model's training or test data.
TRAIN_SEED = 4101
EVAL_SEED = 4102
MIN_EPOCHS = 6
MAX_EPOCHS = 30


def epochs_for(size: int, draws: int) -> int:
    """Passes over ``size`` captchas that make about ``draws`` training draws, clamped."""
    if size <= 0 or draws <= 0:
        raise ValueError(f"size and draws must be positive, got size={size}, draws={draws}")
    return min(MAX_EPOCHS, max(MIN_EPOCHS, math.ceil(draws / size)))


def thread_env(threads: int) -> dict[str, str]:
    """The environment that holds a child's TensorFlow (and any OpenMP) to ``threads`` threads."""
    count = str(threads)
    return {
        **os.environ,
        "TF_NUM_INTRAOP_THREADS": count,
        "TF_NUM_INTEROP_THREADS": count,
        "OMP_NUM_THREADS": count,
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }


def render(folder: Path, style: str, seed: int, count: int) -> Path:
    """The first ``count`` captchas of the ``(style, seed)`` stream in ``folder``, once."""
    if not (folder.is_dir() and len(list(folder.glob("*.png"))) == count):
        code = generate(["--out", str(folder), "--count", str(count), "--seed", str(seed), "--style", style])
        if code:
            raise SystemExit(f"could not render style {style!r} into {folder}")
    return folder


def run_size(args: argparse.Namespace, size: int, held_out: Path) -> dict[str, Any]:
    """One ``training.finetune`` process on the first ``size`` captchas; its figures."""
    labelled = render(args.work / "train" / str(size), args.style, TRAIN_SEED, size)
    out = args.work / "runs" / str(size)
    epochs = epochs_for(size, args.draws)
    command = [
        sys.executable, "-m", "training.finetune", str(labelled), "--eval", str(held_out),
        "--style", args.style, "--epochs", str(epochs), "--model", str(args.model),
        "--out", str(out), "--workers", "1",
    ]  # fmt: skip
    print(f"N={size}: {epochs} epochs", flush=True)
    started = time.perf_counter()
    with (args.work / f"finetune-{size}.log").open("w") as log:
        subprocess.run(command, cwd=ROOT, env=thread_env(args.threads), stdout=log, stderr=log, check=True)
    wall = time.perf_counter() - started
    report = json.loads((out / "finetune.json").read_text())
    figures = {
        "labelled": size,
        "epochs": epochs,
        "before_exact_match": report["before"]["exact_match"],
        "after_exact_match": report["after"]["exact_match"],
        "before_char_accuracy": report["before"]["char_accuracy"],
        "after_char_accuracy": report["after"]["char_accuracy"],
        "train_seconds": report["seconds"],
        "wall_minutes": wall / 60,
        "seconds_per_1000_per_epoch": 1000 * report["seconds"] / (size * epochs),
    }
    print(
        f"N={size}: exact match {figures['before_exact_match']:.2%} -> {figures['after_exact_match']:.2%}, "
        f"{figures['wall_minutes']:.1f} min, "
        f"{figures['seconds_per_1000_per_epoch']:.1f} s per 1,000 captchas per epoch",
        flush=True,
    )
    return figures


def _shown(path: Path) -> str:
    """``path`` relative to the repository when inside it, so the results name no machine's folders."""
    resolved = path.resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else str(path)


def reached(runs: list[dict[str, Any]], target: float) -> int | None:
    """The fewest labelled captchas whose run reached ``target`` exact match; None if none did."""
    sizes = [run["labelled"] for run in runs if run["after_exact_match"] >= target]
    return min(sizes) if sizes else None


def table(results: dict[str, Any]) -> str:
    """The markdown report: the runs' table and how to reproduce it."""
    lines = [
        "# Fine-tuning curve",
        "",
        f"The shipped model fine-tuned on N labelled captchas of style `{results['style']}` "
        f"(`{results['style_file']}`), every N read on the same {results['held_out']} held-out "
        f"captchas of that style; {results['threads']} TensorFlow thread(s) per run on a "
        f"{results['machine']['cpus']}-CPU {results['machine']['platform']}. "
        f"Made with `{results['command']}`.",
        "",
        "| labelled N | epochs | exact match before | after | per character after | wall minutes "
        "| s per 1,000 per epoch |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['labelled']} | {r['epochs']} | {r['before_exact_match']:.1%} | {r['after_exact_match']:.1%} "
        f"| {r['after_char_accuracy']:.1%} | {r['wall_minutes']:.1f} "
        f"| {r['seconds_per_1000_per_epoch']:.1f} |"
        for r in results["runs"]
    ]
    target, first, largest = results["target"], results["reached"], results["runs"][-1]["labelled"]
    lines += [
        "",
        f"{target:.0%} exact match reached with {first} labelled captchas."
        if first is not None
        else f"{target:.0%} exact match not reached with up to {largest} labelled captchas.",
    ]
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m training.finetune_curve", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--work", type=Path, required=True, help="folder for the captchas and the runs")
    parser.add_argument("--style", default=DEFAULT_STYLE, help="style file or name (default: changed)")
    parser.add_argument("--model", type=Path, default=SHIPPED_MODEL)
    parser.add_argument("--sizes", default=",".join(map(str, DEFAULT_SIZES)), help="labelled set sizes")
    parser.add_argument("--eval-count", type=int, default=1000, help="held-out captchas read for every size")
    parser.add_argument("--draws", type=int, default=10000, help="training draws per size (sets the epochs)")
    parser.add_argument("--target", type=float, default=0.99, help="exact match to reach")
    parser.add_argument("--threads", type=int, default=1, help="TensorFlow threads of each run")
    parser.add_argument("--all", action="store_true", help="run every size, also after the target is reached")
    parser.add_argument("--results", type=Path, default=CURVE_RESULTS, help="JSON written (and .md beside)")
    args = parser.parse_args(argv)
    try:
        args.sizes = sorted({int(size) for size in args.sizes.split(",")})
    except ValueError:
        parser.error(f"--sizes must be comma-separated whole numbers, got {args.sizes!r}")
    for name in ("eval_count", "draws", "threads"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    if args.sizes[0] <= 0:
        parser.error("--sizes must be positive")
    if not 0 < args.target <= 1:
        parser.error("--target must be above 0 and at most 1")
    if not args.model.is_file():
        parser.error(f"--model {args.model} is not a file")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        style = load_style(args.style)
    except StyleError as exc:
        print(f"training.finetune_curve: {exc}", file=sys.stderr)
        return 2
    load = round(os.getloadavg()[0], 1)
    held_out = render(args.work / "held-out", args.style, EVAL_SEED, args.eval_count)
    runs: list[dict[str, Any]] = []
    for size in args.sizes:
        runs.append(run_size(args, size, held_out))
        if not args.all and reached(runs, args.target) is not None:
            break
    results = {
        "command": " ".join(["python -m training.finetune_curve", *(sys.argv[1:] if argv is None else argv)]),
        "style": style.name,
        "style_file": _shown(Path(style.source)),
        "model": _shown(args.model),
        "held_out": args.eval_count,
        "train_seed": TRAIN_SEED,
        "eval_seed": EVAL_SEED,
        "draws": args.draws,
        "threads": args.threads,
        "target": args.target,
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": load, "platform": platform.platform(),
                    "python": platform.python_version()},
        "runs": runs,
        "reached": reached(runs, args.target),
    }  # fmt: skip
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(json.dumps(results, indent=1) + "\n")
    args.results.with_suffix(".md").write_text(table(results))
    print(table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
