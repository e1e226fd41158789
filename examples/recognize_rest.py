"""Recognise a folder of captchas over REST with :class:`shixin_client.ShixinClient`.

The client sends each file as it is (``{"b64": ...}`` to the ``serving_bytes``
signature), batches the folder into few requests, retries transient failures and
decodes the answer locally. One unreadable file does not lose the others.

Run, with a model served on localhost (e.g. ``shixin serve --model_name=shixin
--model_base_path=$PWD/models/shixin --port=8500 --rest_api_port=8501``)::

    python examples/recognize_rest.py [--server http://localhost:8501] [FOLDER]

The URL comes from ``--server``, else ``$SHIXIN_SERVER``, else http://localhost:8501
(a URL without a port gets TF Serving's REST port). Prints one ``file<TAB>text`` line
per captcha in FOLDER (default: examples/captchas); failures go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shixin_client import IMAGE_SUFFIXES, ShixinClient, ShixinError, server_from_env

CAPTCHAS = Path(__file__).resolve().parent / "captchas"


def main() -> int:
    parser = argparse.ArgumentParser(description="Recognise captchas over REST.")
    parser.add_argument("--server", default=server_from_env() or "http://localhost")
    parser.add_argument("folder", nargs="?", type=Path, default=CAPTCHAS)
    args = parser.parse_args()

    if not args.folder.is_dir():
        parser.error(f"{str(args.folder)!r} is not a folder")
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    failed = 0
    with ShixinClient(args.server) as client:
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
    except ShixinError as exc:  # server unreachable, model not found, ...: one line, not a traceback
        sys.exit(f"error: {exc}")
