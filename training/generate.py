"""CLI: write a folder of generated captchas, named like the reference data set.

    python -m training.generate --out data/gen --count 1000 --seed 7 [--workers 2] [--style FILE]

Each file is ``<label>_<md5>.png``, an opaque RGBA PNG like the site's. ``--style`` draws
another style (a JSON file, or a name in training/styles/; default: the site's).
"""

from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from .generator import captcha_at, file_name, png_bytes
from .style import CaptchaStyle, StyleError, load_style


def _write(args: tuple[Path, int, int, int, CaptchaStyle]) -> int:
    out, seed, start, count, style = args
    for index in range(start, start + count):
        captcha = captcha_at(seed, index, style=style)
        data = png_bytes(captcha)
        (out / file_name(captcha, data)).write_bytes(data)
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.generate", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="folder to write the PNG files into")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--start", type=int, default=0, help="index of the first image in the seed's stream")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--style", help="style file or name (default: the site's, training/styles/site.json)")
    args = parser.parse_args(argv)
    if args.count <= 0:
        parser.error("--count must be positive")
    try:
        style = load_style(args.style)
    except StyleError as exc:
        print(exc, file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    chunk = max(1, min(500, args.count // max(args.workers, 1) or 1))
    jobs = [(args.out, args.seed, s, min(chunk, args.start + args.count - s), style)
            for s in range(args.start, args.start + args.count, chunk)]  # fmt: skip
    if args.workers > 1:
        with ProcessPoolExecutor(args.workers) as pool:
            written = sum(pool.map(_write, jobs))
    else:
        written = sum(map(_write, jobs))
    print(f"wrote {written} captchas of style {style.name!r} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
