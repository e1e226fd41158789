"""CLI: a blind comparison sheet, the shared real captchas shuffled among generated ones.

    python -m training.sheet --out docs/generator_comparison.png

The key (which tiles are real) goes to a Markdown file beside the PNG, so a person can
judge the sheet first and check afterwards.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from .evaluate import REAL_SAMPLES
from .generator import HEIGHT, WIDTH, captcha_at

COLUMNS, ROWS, PAD = 4, 4, 6


def build_sheet(seed: int, real_folder: Path) -> tuple[Image.Image, list[str]]:
    reals = [
        (Image.open(p).convert("RGB"), f"real {p.name.split('_')[0]}") for p in sorted(real_folder.iterdir())
    ]
    count = COLUMNS * ROWS - len(reals)
    fakes = [(c.image.convert("RGB"), f"generated {c.label} ({c.style})") for c in
             (captcha_at(seed, i) for i in range(count))]  # fmt: skip
    tiles = reals + fakes
    order = np.random.default_rng(seed).permutation(len(tiles))
    sheet = Image.new("RGB", (COLUMNS * (WIDTH + PAD) + PAD, ROWS * (HEIGHT + PAD) + PAD), (128, 128, 128))
    key = []
    for slot, index in enumerate(order):
        image, what = tiles[index]
        row, column = divmod(slot, COLUMNS)
        sheet.paste(image, (PAD + column * (WIDTH + PAD), PAD + row * (HEIGHT + PAD)))
        key.append(f"row {row + 1}, column {column + 1}: {what}")
    return sheet, key


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.sheet", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--real", type=Path, default=REAL_SAMPLES / "origin")
    args = parser.parse_args(argv)
    sheet, key = build_sheet(args.seed, args.real)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out)
    key_path = args.out.with_suffix(".md")
    key_path.write_text(
        f"# Key to `{args.out.name}`\n\nMade with `python -m training.sheet --out {args.out}`. "
        "Judge the sheet before reading on.\n\n" + "\n".join(f"- {line}" for line in key) + "\n"
    )
    print(f"wrote {args.out} and {key_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
