"""Accuracy report of a trained model on fresh generated captchas and the real site samples.

    python -m training.evaluate --model models/shixin.keras --out models/report --count 10000

Writes ``report.json`` and ``report.md``: per-captcha exact match (ignoring case),
per-character accuracy, accuracy per distortion style, the most confused character
pairs, and what the model reads on every real sample it is given. ``--java-eval DIR``
adds a labelled set with its ``families.csv`` (``datasets/patchca-java-eval``), read by this
model, the embedded default and ddddocr, overall and per filter family (training/java_eval.py).
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from shixin_client import decode_softmax
from shixin_client._exceptions import InvalidInputError
from shixin_client._images import preprocess
from shixin_client._scoring import label_of, score
from shixin_client._spec import DEFAULT_SPEC, SITE_ALPHABET, CaptchaSpec

from . import java_eval
from .augment import KINDS, perturb
from .dataset import render_parallel

#: The two real site captchas kept in the repository, raw and binarized (datasets/README.md).
REAL_SAMPLES = Path(__file__).resolve().parents[1] / "datasets" / "real"
#: Seeded variants of each raw real sample per perturbation kind; a seed of its own.
PERTURBED_VARIANTS = 25
PERTURB_SEED = 900003
#: The generator draws half the captchas each way (training/generator.py).
MODE_NOTES = {"faithful": "Patchca's own ranges, as the site draws", "wide": "stretched ranges"}


def decode(softmax: np.ndarray, spec: CaptchaSpec = DEFAULT_SPEC, alphabet: str | None = None) -> list[str]:
    """Decode with the SDK's own decoder, so accuracy is measured with the code users run."""
    return [p.text for p in decode_softmax(softmax, spec, alphabet=alphabet)]


def real_samples(folder: Path = REAL_SAMPLES) -> list[tuple[Path, str]]:
    """(path, lowercase label) for every image under ``folder``, labelled by the reference naming."""
    return [(p, label_of(str(p))) for p in sorted(folder.rglob("*")) if p.is_file()]


#: --mode: the generator's own mix, or one of its modes alone.
MODES: dict[str, bool | None] = {"mixed": None, "faithful": False, "wide": True}


def evaluate(  # type: ignore[no-untyped-def]
    model,
    seed: int,
    count: int,
    spec: CaptchaSpec = DEFAULT_SPEC,
    workers: int = 2,
    mode: str = "mixed",
    alphabet: str | None = None,
) -> dict:  # type: ignore[type-arg]
    """``alphabet`` reads every image (generated, real, perturbed) as a client with that option would."""
    batch = render_parallel(seed, count, workers=workers, wide=MODES[mode])
    softmax = model.predict(batch.images.astype(np.float32), batch_size=256, verbose=0)
    texts = decode(softmax, spec, alphabet)
    hits = [t == y for t, y in zip(texts, batch.texts, strict=True)]
    scored = score(zip(batch.texts, texts, strict=True))
    real = []
    for path, label in real_samples():
        text = decode(model.predict(preprocess(path, spec)[None], verbose=0), spec, alphabet)[0]
        real.append(
            {"file": f"{path.parent.name}/{path.name}", "label": label, "read": text, "ok": text == label}
        )
    return {
        "seed": seed,
        "count": count,
        "mode": mode,
        "alphabet": alphabet,
        "real_perturbed": real_perturbed(model, spec, alphabet=alphabet),
        "exact_match": scored.exact_match,
        "char_accuracy": scored.char_accuracy,
        "by_style": _accuracy_by(hits, batch.styles),
        "by_mode": _accuracy_by(hits, ["wide" if wide else "faithful" for wide in batch.wide]),
        "confusions": [{"true": a, "read": b, "count": n} for (a, b), n in scored.confusions.most_common(15)],
        "real_samples": real,
    }


def _accuracy_by(hits: list[bool], groups: list[str]) -> dict[str, float]:
    """Exact match per group (style, generator mode), groups in sorted order."""
    return {
        group: float(np.mean([h for h, g in zip(hits, groups, strict=True) if g == group]))
        for group in sorted(set(groups))
    }


def real_perturbed(  # type: ignore[no-untyped-def]
    model, spec: CaptchaSpec = DEFAULT_SPEC, folder: Path = REAL_SAMPLES, alphabet: str | None = None
) -> dict[str, float]:
    """Exact match on the raw real samples, each shifted, scaled, rotated, blurred, JPEG'd, resized.

    Two real captchas are too few to show how a model generalises; their perturbed
    variants show whether it reads them only as drawn or also slightly otherwise.
    """
    samples = [
        (Image.open(path).convert("RGB"), label)
        for path, label in real_samples(folder)
        if path.parent.name == "origin"
    ]
    if not samples:
        return {}
    labels = [label for _, label in samples for _ in range(PERTURBED_VARIANTS)]
    scores = {}
    for kind in KINDS:
        rng = np.random.default_rng([PERTURB_SEED, KINDS.index(kind)])
        images = [
            preprocess(perturb(original, kind, rng), spec)
            for original, _ in samples
            for _ in range(PERTURBED_VARIANTS)
        ]
        texts = decode(model.predict(np.stack(images), batch_size=256, verbose=0), spec, alphabet)
        scores[kind] = float(np.mean([t == y for t, y in zip(texts, labels, strict=True)]))
    return scores


def write_report(report: dict, out: Path, command: str) -> None:  # type: ignore[type-arg]
    out.mkdir(parents=True, exist_ok=True)
    report = {**report, "command": command}
    (out / "report.json").write_text(json.dumps(report, indent=1))
    java_lines: list[str] = []
    if report.get("java_eval"):
        java_lines = [*java_eval.markdown(report["java_eval"]), "## Generated captchas", ""]
    lines = [
        "# Evaluation report",
        "",
        f"Reproduce: `{command}`",
        "",
        *java_lines,
        f"- Exact match (ignoring case): **{report['exact_match']:.4%}** on {report['count']} fresh captchas "
        f"(seed {report['seed']}, never used in training; generator mode: {report.get('mode', 'mixed')}"
        + (f"; read with alphabet {report['alphabet']!r}" if report.get("alphabet") else "")
        + ")",
        f"- Per-character accuracy: {report['char_accuracy']:.4%}",
        "",
        "| generator mode | exact match |",
        "|---|---|",
        *[f"| {mode} ({MODE_NOTES[mode]}) | {v:.4%} |" for mode, v in report.get("by_mode", {}).items()],
        "",
        "| style | exact match |",
        "|---|---|",
        *[f"| {k} | {v:.4%} |" for k, v in report["by_style"].items()],
        "",
        "Most confused (true -> read):",
        "",
        *[f"- `{c['true']}` -> `{c['read']}`: {c['count']}" for c in report["confusions"]],
        "",
        "| real sample | label | read | ok |",
        "|---|---|---|---|",
        *[
            f"| {r['file']} | {r['label']} | {r['read']} | {'yes' if r['ok'] else 'NO'} |"
            for r in report["real_samples"]
        ],
    ]
    if report.get("real_perturbed"):
        lines += [
            "",
            f"Raw real samples, {PERTURBED_VARIANTS} seeded variants each per perturbation "
            f"(training/augment.py; seed {PERTURB_SEED}):",
            "",
            "| perturbation | exact match |",
            "|---|---|",
            *[f"| {k} | {v:.1%} |" for k, v in report["real_perturbed"].items()],
        ]
    (out / "report.md").write_text("\n".join(lines) + "\n")


def plot_curve(history: list[dict], path: Path) -> None:  # type: ignore[type-arg]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, loss_ax = plt.subplots(figsize=(7, 4))
    loss_ax.plot(epochs, [h["loss"] for h in history], "b-o", label="training CTC loss")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("CTC loss", color="b")
    acc_ax = loss_ax.twinx()
    acc_ax.plot(epochs, [h["val_accuracy"] for h in history], "g-s", label="validation exact match")
    acc_ax.set_ylabel("validation exact match", color="g")
    acc_ax.set_ylim(0, 1)
    fig.suptitle("Training curve")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    import keras

    from .train import TEST_SEED

    parser = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=TEST_SEED)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--mode", choices=list(MODES), default="mixed", help="the generator's 50/50 mix, or one mode alone"
    )
    parser.add_argument("--alphabet", help="decode with this client alphabet; 'site': the site's own")
    parser.add_argument(
        "--java-eval",
        type=Path,
        metavar="DIR",
        help="also score a labelled set with families.csv (datasets/patchca-java-eval) with this model, "
        "the embedded default and ddddocr",
    )
    args = parser.parse_args(argv)
    try:
        labelled = java_eval.load_set(args.java_eval) if args.java_eval else None
    except InvalidInputError as error:
        parser.error(f"--java-eval: {error}")
    if labelled is not None and importlib.util.find_spec("ddddocr") is None:
        parser.error("--java-eval compares with ddddocr: pip install ddddocr (in the [bench] extra)")
    model = keras.models.load_model(args.model)
    alphabet = SITE_ALPHABET if args.alphabet == "site" else args.alphabet
    report = evaluate(model, args.seed, args.count, workers=args.workers, mode=args.mode, alphabet=alphabet)
    if labelled is not None:
        readers = {
            f"this model (`{args.model.as_posix()}`)": java_eval.keras_reader(model, alphabet=alphabet),
            "embedded default (`ShixinClient.local()`)": java_eval.embedded_reader(alphabet),
            f"ddddocr {importlib.metadata.version('ddddocr')}": java_eval.ddddocr_reader(),
        }
        report["java_eval"] = java_eval.evaluate_set(labelled, readers)
    given = sys.argv[1:] if argv is None else argv
    write_report(report, args.out, command="python -m training.evaluate " + " ".join(given))
    print(json.dumps({k: report[k] for k in ("exact_match", "char_accuracy", "by_style")}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
