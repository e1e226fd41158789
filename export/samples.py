"""Sample images that export feeds to warm-up requests and to ``export check``.

Generated captchas by default (deterministic per seed), or the image files of a folder,
so a check can run on real captchas too. Always encoded files, because the
``serving_bytes`` signature takes files and the float path preprocesses the same bytes.
"""

from __future__ import annotations

from pathlib import Path

#: What the export's in-graph decoder reads (tf.io.decode_image: PNG, JPEG, GIF, BMP), a subset
#: of the SDK's IMAGE_SUFFIXES: warm-up samples go to serving_bytes exactly as files.
GRAPH_IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp"})


def generated(count: int, seed: int = 0) -> list[bytes]:
    """``count`` generated captchas as PNG files."""
    from training.generator import generate, png_bytes

    return [png_bytes(captcha) for captcha in generate(seed, count)]


def from_folder(folder: Path, limit: int | None = None) -> list[bytes]:
    """The image files of ``folder`` (sorted by name), up to ``limit``."""
    if not folder.is_dir():
        raise NotADirectoryError(f"sample folder {folder} does not exist or is not a directory")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in GRAPH_IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise FileNotFoundError(f"sample folder {folder} holds no .png/.jpg/.gif/.bmp files")
    return [p.read_bytes() for p in files[:limit]]
