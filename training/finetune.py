"""CLI: adapt a trained model to a folder of labelled captchas, report before and after, export.

    python -m training.finetune data/labelled --out runs/tuned [--model models/shixin.keras]
        [--style FILE] [--epochs 10] [--holdout 0.2 | --eval DIR...] [--generated-ratio 0] [--export [--int8]]

For a user whose site changed its captchas, or whose real captchas the shipped model
misreads: it reads the folders as ``training.train --labelled`` does (one line per file left
out), holds out a share ``--holdout`` drawn by ``--seed``, reads the held-out captchas with
the model as it is, trains the whole model on the rest for ``--epochs`` epochs (each
labelled captcha perturbed afresh per epoch unless ``--no-augment``, plus
``--generated-ratio`` generated captchas of ``--style`` per labelled one), and reads them
again. The held-out captchas are never trained on nor used to choose anything, so the
after figure is a fair estimate on the site's captchas. ``--eval DIR...`` reads a labelled
set of its own for the report instead, and every file of the folders is trained on.

``--style`` gives the model's spec (charset, label length, size): the site's by default,
another style file for a model trained for another style. Written to ``--out``:
``finetuned.keras``, ``finetune.json`` and ``finetune.md`` (the before/after report with
every misread), ``train.log``; with ``--export`` also the SavedModel for TF Serving
(``<out>/models/<name>/<version>/``, warmed up with held-out captchas) and the embedded
LiteRT model with its ``spec.json`` (``<out>/embedded/<name>.tflite``), which
``ShixinClient.local(path)`` reads.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from shixin_client._spec import DEFAULT_MODEL_NAME, CaptchaSpec

from .dataset import mixed_epochs, render_parallel
from .labelled import LabelledSet, load_labelled, read, reading_report, split
from .model import logits_model
from .style import CaptchaStyle, load_style
from .train import TRAIN_SEED_OFFSET, ctc_loss, run_tool, start_run

log = logging.getLogger("training")

SHIPPED_MODEL = Path(__file__).resolve().parents[1] / "models" / "shixin.keras"
#: Held-out captchas replayed as the SavedModel's warm-up requests.
WARMUP_SAMPLES = 4


def held_out_report(model: Any, holdout: LabelledSet, spec: CaptchaSpec) -> dict[str, Any]:
    files = [str(path) for path in holdout.files]
    return reading_report(files, holdout.texts, read(model, holdout.images, spec))


def compare(before: dict[str, Any], after: dict[str, Any]) -> dict[str, list[str]]:
    """Held-out files the fine-tuning taught the model to read, and those it unlearned."""
    wrong_before = {m["file"] for m in before["misreads"]}
    wrong_after = {m["file"] for m in after["misreads"]}
    return {"fixed": sorted(wrong_before - wrong_after), "broken": sorted(wrong_after - wrong_before)}


def report_lines(result: dict[str, Any]) -> list[str]:
    """The before/after table and the misreads left, as printed and written to finetune.md."""
    before, after = result["before"], result["after"]
    lines = [
        f"held-out labelled captchas: {after['count']} (fine-tuned on {result['trained_on']}, "
        f"{result['epochs']} epochs, {result['seconds']:.0f} s)",
        "",
        "|  | before | after |",
        "|---|---|---|",
        f"| exact match | {before['exact_match']:.2%} | {after['exact_match']:.2%} |",
        f"| per character | {before['char_accuracy']:.2%} | {after['char_accuracy']:.2%} |",
        "",
        f"fixed {len(result['fixed'])}, broken {len(result['broken'])}; "
        f"misreads after fine-tuning: {len(after['misreads'])}",
    ]
    lines += [f"- {m['file']}: {m['label']} -> {m['read'] or '(none)'}" for m in after["misreads"]]
    return lines


def check_fits(model: Any, style: CaptchaStyle) -> None:
    """Refuse a model that cannot read the style: other image size, classes or steps."""
    from export.saved_model import check_model_matches, inference_model

    try:
        check_model_matches(inference_model(model), style.spec)
    except ValueError as exc:
        raise SystemExit(f"the model does not fit style {style.name!r} ({style.source}): {exc}") from None


def export(model: Any, out: Path, name: str, spec: CaptchaSpec, holdout: LabelledSet, int8: bool) -> None:
    """The SavedModel under ``<out>/models/<name>/`` and the embedded model under ``<out>/embedded/``."""
    from export.saved_model import export_model, inference_model
    from export.tflite import write_embedded

    served = inference_model(model)
    version = export_model(
        served, out / "models", name, spec=spec, warmup_samples=holdout.data[:WARMUP_SAMPLES] or None
    )
    log.info(
        "exported %s (serve it: shixin serve --model_name=%s --model_base_path=%s)",
        version,
        name,
        version.parent,
    )
    embedded = write_embedded(served, out / "embedded" / f"{name}.tflite", spec, int8=int8)
    log.info("wrote %s and its spec.json (read it: ShixinClient.local(%r))", embedded, str(embedded))


def compiled_trainer(model: Any, lr: float, spec: CaptchaSpec) -> Any:
    """The model's logits, compiled with the CTC loss and the optimizer every fine-tuning step uses
    (the benchmarks time this same step)."""
    import keras

    trainer = logits_model(model)
    trainer.compile(optimizer=keras.optimizers.Adam(lr, amsgrad=True, clipnorm=5.0), loss=ctc_loss(spec))
    return trainer


def finetune(args: argparse.Namespace) -> dict[str, Any]:
    import keras

    style = load_style(args.style)
    spec = style.spec
    out: Path = args.out
    start_run(out, args.seed)
    model = keras.models.load_model(args.model, compile=False)
    check_fits(model, style)
    found = load_labelled(args.folders, spec, say=log.info)
    if args.eval:
        train_part, holdout = found, load_labelled(args.eval, spec, say=log.info)
    else:
        train_part, holdout = split(found, args.holdout, args.seed)
    if not len(train_part) or not len(holdout):
        raise SystemExit(
            "need usable labelled captchas to train on and to report on, "
            f"found {len(train_part)} and {len(holdout)}"
        )
    before = held_out_report(model, holdout, spec)
    log.info("before: exact match %.2f%% on %d held-out captchas", 100 * before["exact_match"], len(holdout))

    count = round(args.generated_ratio * len(train_part))
    generated = None
    if count:
        pool = render_parallel(
            args.seed + TRAIN_SEED_OFFSET, count, workers=args.workers, augment=args.augment, style=style
        )
        generated = lambda epoch: pool  # noqa: E731
    epochs = mixed_epochs(train_part, generated, args.batch_size, args.seed, spec, args.augment)
    trainer = compiled_trainer(model, args.lr, spec)
    started = time.time()
    for epoch in range(args.epochs):
        fit = trainer.fit(epochs(epoch), epochs=1, verbose=0)
        log.info(
            "epoch %d/%d loss %.4f %.0fs",
            epoch + 1,
            args.epochs,
            fit.history["loss"][-1],
            time.time() - started,
        )
    seconds = time.time() - started
    model.save(out / "finetuned.keras")

    after = held_out_report(model, holdout, spec)
    result = {
        "model": str(args.model),
        "style": style.name,
        "trained_on": f"{len(train_part)} labelled + {count} generated captchas",
        "epochs": args.epochs,
        "seconds": seconds,
        "before": before,
        "after": after,
        **compare(before, after),
    }
    lines = report_lines(result)
    for line in lines:
        log.info("%s", line)
    (out / "finetune.json").write_text(json.dumps(result, indent=1))
    command = " ".join(["python -m training.finetune", *sys.argv[1:]])
    (out / "finetune.md").write_text(
        "\n".join(["# Fine-tuning", "", f"Made with `{command}`.", "", *lines]) + "\n"
    )
    if args.export:
        export(model, out, args.name, spec, holdout, args.int8)
    else:
        log.info(
            "export it: python -m export --model %s --base-path DIR --name %s --tflite DIR/%s.tflite "
            "--charset %s --label-length %d",
            out / "finetuned.keras", args.name, args.name, spec.charset, spec.label_length,
        )  # fmt: skip
    return result


def build_parser() -> argparse.ArgumentParser:
    """The CLI's arguments; their defaults are the fine-tuning defaults (the benchmarks read them)."""
    parser = argparse.ArgumentParser(prog="python -m training.finetune", description=__doc__.splitlines()[0])
    parser.add_argument("folders", type=Path, nargs="+", help="folders of <label>_<anything>.<ext> captchas")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--model", type=Path, default=SHIPPED_MODEL, help="a trained .keras (default: the shipped one)"
    )
    parser.add_argument("--style", help="style file or name giving the model's spec (default: the site's)")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--holdout", type=float, default=0.2, help="share held out for the report")
    parser.add_argument(
        "--eval", type=Path, nargs="+", help="labelled folders to report on instead of a held-out share"
    )
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--generated-ratio", type=float, default=0.0, help="generated captchas of --style per labelled one"
    )
    parser.add_argument(
        "--no-augment", dest="augment", action="store_false", help="train on the images as drawn"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--export", action="store_true", help="also write the SavedModel and the embedded model"
    )
    parser.add_argument("--name", default=DEFAULT_MODEL_NAME, help="model name for the export")
    parser.add_argument("--int8", action="store_true", help="with --export: also the embedded int8 companion")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.epochs < 0:
        parser.error("--epochs must be 0 or more")
    if not 0 < args.holdout < 1:
        parser.error("--holdout must be above 0 and below 1: the report reads the held-out captchas")
    if args.generated_ratio < 0:
        parser.error("--generated-ratio must be 0 or more")
    if not args.model.is_file():
        parser.error(f"--model {args.model} is not a file")
    return args


def main(argv: list[str] | None = None) -> int:
    return run_tool("training.finetune", lambda: finetune(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
