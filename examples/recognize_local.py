"""Recognise a folder of captchas with the embedded model: no server, no network.

:meth:`shixin_client.ShixinClient.local` runs the model shipped inside the package on
LiteRT, in this process; it is the quick start's path, and the same client API as over
REST or gRPC. ``recognize_many`` reads the folder in few batches, and with
``return_exceptions=True`` an unreadable file stands as its error in the list while
every other file keeps its text.

Run, after ``pip install "shixin-client[local]"``::

    python examples/recognize_local.py [FOLDER]

Prints one ``file<TAB>text`` line per captcha in FOLDER (default: examples/captchas);
each file that could not be read is one line on stderr, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shixin_client import IMAGE_SUFFIXES, ShixinClient, ShixinError

CAPTCHAS = Path(__file__).resolve().parent / "captchas"


def main() -> int:
    parser = argparse.ArgumentParser(description="Recognise captchas with the embedded model.")
    parser.add_argument("folder", nargs="?", type=Path, default=CAPTCHAS)
    args = parser.parse_args()
    if not args.folder.is_dir():
        parser.error(f"{str(args.folder)!r} is not a folder")

    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    failed = 0
    with ShixinClient.local() as client:
        for path, result in zip(files, client.recognize_many(files, return_exceptions=True), strict=True):
            if isinstance(result, ShixinError):
                failed += 1
                print(f"{path.name}: {result}", file=sys.stderr)
            else:
                print(f"{path.name}\t{result}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ShixinError as exc:  # the [local] extra missing, no model file, ...: one line, not a traceback
        sys.exit(f"error: {exc}")
