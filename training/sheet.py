"""CLI: a blind comparison sheet, the real site captchas (datasets/real) shuffled among generated ones.

    python -m training.sheet --out docs/generator_comparison.png
    python -m training.sheet --style my-site.json --real my-labelled-captchas --out sheet.png

The key (which tiles are real) goes to a Markdown file beside the PNG, so a person can
judge the sheet first and check afterwards. ``--style`` draws another style (default: the
site's) beside the captchas of ``--real`` (up to half the sheet, in name order): the way to
check a new style file against the site it imitates.

    python -m training.sheet --misread models/shixin.keras --out models/misread_validation.png

tiles the validation captchas a model misreads, each captioned ``truth -> read``, so a
person can see which misreads a reader would also make. It reads validation images
only (a stretch of the validation seed no training step uses), never the test seed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from shixin_client import IMAGE_SUFFIXES

from .dataset import render_parallel
from .evaluate import REAL_SAMPLES, decode
from .generator import captcha_at
from .style import CaptchaStyle, StyleError, load_style, site_style

COLUMNS, ROWS, PAD = 4, 4, 6
#: The misread sheet: where it reads in the validation stream, and its size.
MISREAD_START, MISREAD_COLUMNS, MISREAD_TILES, CAPTION = 2_000_000, 4, 48, 16


def build_sheet(
    seed: int, real_folder: Path, style: CaptchaStyle | None = None
) -> tuple[Image.Image, list[str]]:
    """Real captchas (shown at the style's size) shuffled among the style's generated ones, and the key."""
    style = style or site_style()
    size = (style.width, style.height)
    paths = sorted(p for p in real_folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    reals = [
        (Image.open(p).convert("RGB").resize(size, Image.Resampling.BILINEAR), f"real {p.name.split('_')[0]}")
        for p in paths[: COLUMNS * ROWS // 2]
    ]
    count = COLUMNS * ROWS - len(reals)
    fakes = [(c.image.convert("RGB"), f"generated {c.label} ({c.family})") for c in
             (captcha_at(seed, i, style=style) for i in range(count))]  # fmt: skip
    tiles = reals + fakes
    order = np.random.default_rng(seed).permutation(len(tiles))
    width, height = size
    sheet = Image.new("RGB", (COLUMNS * (width + PAD) + PAD, ROWS * (height + PAD) + PAD), (128, 128, 128))
    key = []
    for slot, index in enumerate(order):
        image, what = tiles[index]
        row, column = divmod(slot, COLUMNS)
        sheet.paste(image, (PAD + column * (width + PAD), PAD + row * (height + PAD)))
        key.append(f"row {row + 1}, column {column + 1}: {what}")
    return sheet, key


def misread_sheet(  # type: ignore[no-untyped-def]
    model, seed: int, count: int, workers: int = 2, style: CaptchaStyle | None = None
) -> tuple[Image.Image, int]:
    """The first misread captchas of ``count`` from ``seed`` (at :data:`MISREAD_START`), and how many."""
    style = style or site_style()
    batch = render_parallel(seed, count, workers=workers, start=MISREAD_START, style=style)
    texts = decode(model.predict(batch.images.astype(np.float32), batch_size=256, verbose=0), style.spec)
    wrong = [i for i, (read, truth) in enumerate(zip(texts, batch.texts, strict=True)) if read != truth]
    shown = wrong[:MISREAD_TILES]
    rows = max(1, -(-len(shown) // MISREAD_COLUMNS))
    tile_w, tile_h = style.width + PAD, style.height + CAPTION + PAD
    sheet = Image.new("RGB", (MISREAD_COLUMNS * tile_w + PAD, rows * tile_h + PAD), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for slot, i in enumerate(shown):
        row, column = divmod(slot, MISREAD_COLUMNS)
        x, y = PAD + column * tile_w, PAD + row * tile_h
        sheet.paste(captcha_at(seed, MISREAD_START + i, style=style).image.convert("RGB"), (x, y))
        mode = "wide" if batch.wide[i] else "faithful"
        caption = f"{batch.texts[i]} -> {texts[i] or '(none)'}  {mode} {batch.styles[i]}"
        draw.text((x, y + style.height + 2), caption, (0, 0, 0))
    return sheet, len(wrong)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.sheet", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--real", type=Path, default=REAL_SAMPLES / "origin")
    parser.add_argument("--misread", type=Path, help="a Keras model: tile what it misreads instead")
    parser.add_argument("--count", type=int, default=4000, help="--misread: validation captchas to read")
    parser.add_argument("--style", help="style file or name to draw (default: the site's)")
    args = parser.parse_args(argv)
    try:
        style = load_style(args.style)
    except StyleError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not args.misread and not args.real.is_dir():
        parser.error(f"--real {args.real} is not a folder")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.misread:
        import keras

        from .train import VALIDATION_SEED

        model = keras.models.load_model(args.misread)
        misread, wrong = misread_sheet(model, VALIDATION_SEED, args.count, style=style)
        misread.save(args.out)
        print(f"wrote {args.out}: {wrong} of {args.count} validation captchas misread")
        return 0
    sheet, key = build_sheet(args.seed, args.real, style)
    sheet.save(args.out)
    key_path = args.out.with_suffix(".md")
    command = " ".join(["python -m training.sheet", *(sys.argv[1:] if argv is None else argv)])
    key_path.write_text(
        f"# Key to `{args.out.name}`\n\nMade with `{command}`. "
        "Judge the sheet before reading on.\n\n" + "\n".join(f"- {line}" for line in key) + "\n"
    )
    print(f"wrote {args.out} and {key_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
