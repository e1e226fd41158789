"""The reject option's threshold: chosen on validation captchas only, measured on the rest.

    python -m training.calibrate        # writes the "Reject option" section of models/README.md

The embedded default (``ShixinClient.local()``, as users run it) reads four kinds of input:

- validation: faithful captchas of the validation seed from :data:`CALIBRATION_START` on, a
  range that the per-epoch validation of training never reached;
- the faithful test set: the captchas ``training.evaluate --mode faithful`` reads;
- the real-library evaluation set (``datasets/patchca-java-eval``);
- not-captchas (:data:`NOT_CAPTCHAS`), made from validation captchas to choose the threshold
  and from test captchas to measure it.

The threshold is the smallest multiple of 0.01 at which validation's error among the readings
it accepts is at most :data:`TARGET_ERROR` and no validation not-captcha is accepted; the
other sets only measure it. The section written gives, per threshold, the error among
accepted readings and the share rejected on each set, the confidence against the observed
accuracy (the reliability curve), and the chosen default. The exit status is 1 when the chosen
threshold is not the SDK's default (``DEFAULT_MIN_CONFIDENCE`` in shixin_client/_config.py).
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from shixin_client import InvalidInputError, Prediction, ShixinClient
from shixin_client._scoring import label_of

from .dataset import render_parallel
from .generator import captcha_at
from .train import TEST_SEED, VALIDATION_SEED

REPO = Path(__file__).resolve().parents[1]
JAVA_EVAL = REPO / "datasets" / "patchca-java-eval"
README = REPO / "models" / "README.md"
PLOT = REPO / "docs" / "calibration.png"
#: Validation captchas start here in the validation seed's stream: training validated on
#: ``epoch * val_size`` onwards, far below it, so the threshold is not chosen on captchas
#: that chose the model.
CALIBRATION_START = 1_000_000
VALIDATION_COUNT = 50_000
TEST_COUNT = 10_000
#: Not-captchas of each kind, on each side (validation and test).
NOT_CAPTCHA_COUNT = 500
#: The not-captchas' own random stream (training.evaluate's perturbations use 900003).
NOT_CAPTCHA_SEED = 900_004
#: The targets: at most this error among accepted readings, at most this share rejected.
TARGET_ERROR = 0.0005
TARGET_REJECTED = 0.02
#: Thresholds the calibration may choose, and the rows the table always shows.
GRID = tuple(k / 100 for k in range(1, 100))
TABLE_THRESHOLDS = (0.0, 0.5, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99)
#: Edges of the reliability curve's confidence bins (the last bin includes 1).
BINS = (0.0, 0.5, 0.8, 0.9, 0.95, 0.99, 1.0)
SECTION = "## Reject option"
SCREENSHOT = (260, 150)


def _colour(rng: np.random.Generator, low: int, high: int) -> tuple[int, int, int]:
    red, green, blue = (int(v) for v in rng.integers(low, high, 3))
    return red, green, blue


def bordered_screenshot(captcha: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The captcha inside a 260x150 screenshot: a light page, a dark frame, the captcha anywhere in it."""
    width, height = SCREENSHOT
    page = Image.new("RGB", SCREENSHOT, _colour(rng, 200, 256))
    ImageDraw.Draw(page).rectangle(
        (0, 0, width - 1, height - 1), outline=_colour(rng, 0, 120), width=int(rng.integers(1, 4))
    )
    x = int(rng.integers(4, width - captcha.width - 4))
    y = int(rng.integers(4, height - captcha.height - 4))
    page.paste(captcha.convert("RGB"), (x, y))
    return page


def uniform_noise(captcha: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Every pixel of the captcha's size an independent uniform colour."""
    return Image.fromarray(rng.integers(0, 256, (captcha.height, captcha.width, 3), dtype=np.uint8))


def blank(captcha: Image.Image, rng: np.random.Generator) -> Image.Image:
    """One flat colour (the client refuses it before the model: InvalidInputError)."""
    return Image.new("RGB", captcha.size, _colour(rng, 0, 256))


def faint_blank(captcha: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A flat colour with two levels of noise: blank to the eye, not to the blank check."""
    flat = np.array(_colour(rng, 2, 254), dtype=np.int16)
    jitter = rng.integers(-2, 3, (captcha.height, captcha.width, 3))
    return Image.fromarray((flat + jitter).astype(np.uint8))


def rotated(captcha: Image.Image, rng: np.random.Generator) -> Image.Image:
    """The captcha turned a quarter either way."""
    return captcha.rotate(90 if rng.random() < 0.5 else 270, expand=True)


def photograph(captcha: Image.Image, rng: np.random.Generator) -> Image.Image:
    """A photo-like picture: a smooth three-colour gradient, soft shapes, sensor noise."""
    width, height = 320, 180
    across = np.linspace(0.0, 1.0, width)[None, :, None]
    down = np.linspace(0.0, 1.0, height)[:, None, None]
    corners = [np.array(_colour(rng, 0, 256), dtype=np.float64) for _ in range(3)]
    gradient = corners[0] * (1 - across) * (1 - down) + corners[1] * across + corners[2] * down * (1 - across)
    picture = Image.fromarray(np.clip(gradient, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(picture)
    for _ in range(int(rng.integers(2, 8))):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        box = (x, y, x + int(rng.integers(20, 150)), y + int(rng.integers(10, 90)))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=_colour(rng, 0, 256))
    picture = picture.filter(ImageFilter.GaussianBlur(float(rng.uniform(1.0, 4.0))))
    noisy = np.asarray(picture, dtype=np.float64) + rng.normal(0.0, 4.0, (height, width, 3))
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))


#: Inputs that are not a site captcha; each must be rejected.
NOT_CAPTCHAS: dict[str, Callable[[Image.Image, np.random.Generator], Image.Image]] = {
    "bordered screenshot": bordered_screenshot,
    "uniform noise": uniform_noise,
    "blank": blank,
    "faint blank": faint_blank,
    "rotated 90 degrees": rotated,
    "photograph": photograph,
}


@dataclass(frozen=True)
class Readings:
    """What the model read from one set: a Prediction per input (None where the client refused
    the input before the model), and each input's label (None for not-captchas)."""

    name: str
    predictions: Sequence[Optional[Prediction]]
    labels: Optional[Sequence[str]] = None

    def _accepted(self, threshold: float) -> list[int]:
        return [i for i, p in enumerate(self.predictions) if p is not None and p.accepted(threshold)]

    def rejected(self, threshold: float) -> float:
        """The share of inputs that ``recognize`` with this min_confidence does not answer."""
        return 1.0 - len(self._accepted(threshold)) / len(self.predictions)

    def error(self, threshold: float) -> float:
        """The share of accepted readings that are wrong (case ignored); 0 when none is accepted."""
        assert self.labels is not None, f"{self.name} has no labels"
        accepted = self._accepted(threshold)
        wrong = sum(self._wrong(i) for i in accepted)
        return wrong / len(accepted) if accepted else 0.0

    def _wrong(self, index: int) -> bool:
        prediction = self.predictions[index]
        assert prediction is not None and self.labels is not None
        return prediction.text != self.labels[index].lower()

    def reliability(self) -> list[tuple[int, float, float]]:
        """Per confidence bin of :data:`BINS`: (readings, mean confidence, share right)."""
        assert self.labels is not None
        rows = []
        for low, high in zip(BINS, BINS[1:], strict=False):
            inside = [
                i
                for i, p in enumerate(self.predictions)
                if p is not None and low <= p.confidence and (p.confidence < high or high == BINS[-1])
            ]
            confidences = [self.predictions[i].confidence for i in inside]  # type: ignore[union-attr]
            right = [not self._wrong(i) for i in inside]
            rows.append(
                (
                    len(inside),
                    float(np.mean(confidences)) if inside else math.nan,
                    float(np.mean(right)) if inside else math.nan,
                )
            )
        return rows


def choose(validation: Readings, not_captchas: Sequence[Readings]) -> Optional[float]:
    """The smallest threshold of :data:`GRID` at which validation's error among accepted readings
    is at most :data:`TARGET_ERROR` and every validation not-captcha is rejected; None if none is."""
    for threshold in GRID:
        if validation.error(threshold) <= TARGET_ERROR and all(
            kind.rejected(threshold) == 1.0 for kind in not_captchas
        ):
            return threshold
    return None


def read_generated(
    client: ShixinClient, name: str, seed: int, start: int, count: int, workers: int
) -> Readings:
    """Faithful generated captchas ``start .. start+count`` of ``seed``, read by ``client``."""
    batch = render_parallel(seed, count, workers=workers, start=start, wide=False)
    return Readings(name, client.predict_many(batch.images.astype(np.float32)), batch.texts)


def read_folder(client: ShixinClient, name: str, folder: Path) -> Readings:
    """Every ``<label>_<n>.png`` of ``folder``, read by ``client``."""
    files = sorted(folder.glob("*.png"))
    if not files:
        raise InvalidInputError(str(folder), "holds no <label>_<n>.png captchas")
    return Readings(name, client.predict_many(files), [label_of(str(path)) for path in files])


def read_not_captchas(client: ShixinClient, side: int, seed: int, start: int, count: int) -> list[Readings]:
    """Each kind of :data:`NOT_CAPTCHAS`, made from ``count`` captchas of ``seed`` from ``start``;
    ``side`` keeps the validation and test sides' random streams apart."""
    captchas = [captcha_at(seed, start + i, wide=False).image for i in range(count)]
    readings = []
    for kind, (name, make) in enumerate(NOT_CAPTCHAS.items()):
        rng = np.random.default_rng([NOT_CAPTCHA_SEED, side, kind])
        images = [make(captcha, rng) for captcha in captchas]
        results = client.predict_many(images, return_exceptions=True)
        readings.append(Readings(name, [r if isinstance(r, Prediction) else None for r in results]))
    return readings


def meets_targets(sets: Sequence[Readings]) -> str:
    """One sentence: the thresholds of :data:`GRID` at which each set errs on at most
    :data:`TARGET_ERROR` of the readings it accepts and rejects at most :data:`TARGET_REJECTED`."""
    parts = []
    for readings in sets:
        good = [
            t for t in GRID if readings.error(t) <= TARGET_ERROR and readings.rejected(t) <= TARGET_REJECTED
        ]
        where = f"{good[0]:.2f}-{good[-1]:.2f}" if good else "no threshold"
        parts.append(f"{readings.name}: {where}")
    return (
        f"At most {TARGET_ERROR:.2%} error among accepted readings with at most {TARGET_REJECTED:.0%} "
        f"rejected: {'; '.join(parts)}. Where no threshold meets both, the model's confident misreads "
        "are the limit: a better model, not a threshold, closes the gap."
    )


def _pooled(name: str, parts: Sequence[Readings]) -> Readings:
    return Readings(name, [p for part in parts for p in part.predictions])


def _percent(value: float) -> str:
    return f"{value:.2%}" if value < 0.1 else f"{value:.1%}"


def section(
    sets: Sequence[Readings], not_captchas: Sequence[Readings], chosen: Optional[float], default: float
) -> list[str]:
    """The README section: the table, the not-captchas at the default, the reliability curve."""
    pooled = _pooled("not-captchas", not_captchas)
    if chosen is None:
        verdict = f"No threshold meets that; the SDK's default is {default:.2f}."
    elif chosen == default:
        verdict = f"That is **{chosen:.2f}**, the SDK's default (`DEFAULT_MIN_CONFIDENCE`)."
    else:
        verdict = f"That is **{chosen:.2f}**; the SDK's default is still {default:.2f}."
    thresholds = sorted({*TABLE_THRESHOLDS, default, *([chosen] if chosen is not None else [])})
    header = " | ".join(f"{r.name} ({len(r.predictions):,})" for r in sets)
    lines = [
        SECTION,
        "",
        "`recognize` raises `LowConfidenceError` for a reading whose confidence (the product of its",
        "characters' probabilities) is under `min_confidence`; `predict` returns it. The default is",
        f"the smallest multiple of 0.01 at which validation errs on at most {TARGET_ERROR:.2%} of the",
        "readings it accepts and rejects every validation not-captcha; the other sets only measure it.",
        f"{verdict} Error among accepted readings / share rejected, embedded default:",
        "",
        f"| min_confidence | {header} | not-captchas rejected |",
        "|---" * (len(sets) + 2) + "|",
    ]
    for threshold in thresholds:
        label = (
            f"**{threshold:.2f}**"
            if threshold == default
            else ("0 (off)" if threshold == 0 else f"{threshold:.2f}")
        )
        cells = " | ".join(
            f"{_percent(r.error(threshold))} / {_percent(r.rejected(threshold))}" for r in sets
        )
        lines.append(f"| {label} | {cells} | {_percent(pooled.rejected(threshold))} |")
    kinds = ", ".join(f"{r.name} {_percent(r.rejected(default))}" for r in not_captchas)
    lines += ["", meets_targets(sets[1:])]
    lines += [
        "",
        f"Not-captchas ({len(not_captchas[0].predictions)} of each kind, made from test captchas) "
        f"rejected at the default: {kinds}. Confidence against the share read right:",
        "",
        f"| confidence | {' | '.join(r.name for r in sets)} |",
        "|---" * (len(sets) + 1) + "|",
    ]
    curves = [r.reliability() for r in sets]
    for index, (low, high) in enumerate(zip(BINS, BINS[1:], strict=False)):
        cells = " | ".join(
            "-" if curve[index][0] == 0 else f"{curve[index][2]:.2%} ({curve[index][0]:,})"
            for curve in curves
        )
        lines.append(f"| {low:.2f}-{high:.2f} | {cells} |")
    lines += [
        "",
        "Reproduce: `python -m training.calibrate` (writes this section and `docs/calibration.png`).",
        "",
    ]
    return lines


def with_section(readme: str, lines: Sequence[str]) -> str:
    """``readme`` with its Reject option section replaced by ``lines``, or inserted after the
    Accuracy section (at the end when there is none)."""
    text = readme.splitlines()
    new = list(lines)
    if SECTION in text:
        start = text.index(SECTION)
    else:
        after = text.index("## Accuracy") + 1 if "## Accuracy" in text else len(text)
        start = next((i for i in range(after, len(text)) if text[i].startswith("## ")), len(text))
        text[start:start] = [SECTION]
    end = next((i for i in range(start + 1, len(text)) if text[i].startswith("## ")), len(text))
    if end == len(text) and new[-1] == "":
        new = new[:-1]
    return "\n".join(text[:start] + new + text[end:]) + "\n"


def plot(sets: Sequence[Readings], chosen: Optional[float], path: Path) -> None:
    """Two panels: the reliability curve of each set, and its accepted error against its rejected share."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (curve_ax, trade_ax) = plt.subplots(1, 2, figsize=(10, 4))
    curve_ax.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    for readings in sets:
        rows = [row for row in readings.reliability() if row[0]]
        curve_ax.plot([r[1] for r in rows], [r[2] for r in rows], "o-", label=readings.name)
        trade_ax.plot(
            [100 * readings.rejected(t) for t in GRID],
            [100 * readings.error(t) for t in GRID],
            "-",
            label=readings.name,
        )
        if chosen is not None:
            trade_ax.plot(100 * readings.rejected(chosen), 100 * readings.error(chosen), "ko")
    curve_ax.set(xlabel="mean confidence in bin", ylabel="share read right", title="Reliability")
    trade_ax.axhline(100 * TARGET_ERROR, color="r", ls="--", label="error target")
    trade_ax.axvline(100 * TARGET_REJECTED, color="r", ls=":", label="rejection budget")
    trade_ax.set(
        xlabel="% rejected",
        ylabel="% wrong among accepted",
        title="Thresholds 0.01-0.99 (dots: chosen)",
        xlim=(0, 10),
    )
    for ax in (curve_ax, trade_ax):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.calibrate", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="a LiteRT model file (default: the embedded default)")
    parser.add_argument("--validation-count", type=int, default=VALIDATION_COUNT)
    parser.add_argument("--test-count", type=int, default=TEST_COUNT)
    parser.add_argument(
        "--not-captchas", type=int, default=NOT_CAPTCHA_COUNT, help="of each kind, on each side"
    )
    parser.add_argument("--java-eval", type=Path, default=JAVA_EVAL, metavar="DIR")
    parser.add_argument("--readme", type=Path, default=README, help="the file whose section is written")
    parser.add_argument("--plot", type=Path, default=PLOT, help="the figure written")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    with ShixinClient.local(args.model) as client:
        default = client.min_confidence
        validation = read_generated(
            client, "validation", VALIDATION_SEED, CALIBRATION_START, args.validation_count, args.workers
        )
        beyond = CALIBRATION_START + args.validation_count
        chosen = choose(validation, read_not_captchas(client, 0, VALIDATION_SEED, beyond, args.not_captchas))
        sets = [
            validation,
            read_generated(client, "faithful test", TEST_SEED, 0, args.test_count, args.workers),
            read_folder(client, "real library", args.java_eval),
        ]
        not_captchas = read_not_captchas(client, 1, TEST_SEED, 0, args.not_captchas)
    lines = section(sets, not_captchas, chosen, default)
    args.readme.write_text(with_section(args.readme.read_text(), lines))
    plot(sets, chosen, args.plot)
    print("\n".join(lines))
    if chosen != default:
        print(
            f"the calibration chooses {chosen}, the SDK's default is {default}: set DEFAULT_MIN_CONFIDENCE "
            "in shixin_client/_config.py and run this again",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
