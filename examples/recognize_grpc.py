"""Recognise captchas over gRPC (TF Serving's port 8500) with :class:`shixin_client.ShixinClient`.

The same client as over REST: only the URL scheme changes. gRPC needs the ``[grpc]``
extra (``pip install "shixin-client[grpc]"``) and sends smaller, binary requests. Each
file is its own call here; a file that cannot be read is reported and the others go on.

Run, with a model served on localhost (e.g. ``shixin serve --model_name=shixin
--model_base_path=$PWD/models/shixin --port=8500 --rest_api_port=8501``)::

    python examples/recognize_grpc.py [--server grpc://localhost:8500] [FOLDER]

The URL comes from ``--server``, else ``$SHIXIN_SERVER``, else grpc://localhost:8500
(a URL without a port gets TF Serving's gRPC port). Prints one ``file<TAB>text`` line
per captcha in FOLDER (default: examples/captchas); failures go to stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from shixin_client import IMAGE_SUFFIXES, InvalidInputError, ShixinClient, ShixinError, server_from_env

CAPTCHAS = Path(__file__).resolve().parent / "captchas"


def main() -> int:
    parser = argparse.ArgumentParser(description="Recognise captchas over gRPC.")
    parser.add_argument("--server", default=server_from_env() or "grpc://localhost")
    parser.add_argument("folder", nargs="?", type=Path, default=CAPTCHAS)
    args = parser.parse_args()
    if not args.server.startswith(("grpc://", "grpcs://")):
        parser.error(f"--server must be a grpc:// or grpcs:// URL, got {args.server!r}")

    if not args.folder.is_dir():
        parser.error(f"{str(args.folder)!r} is not a folder")
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    failed = 0
    with ShixinClient(args.server, timeout=10.0) as client:
        for path in files:
            try:
                text = client.recognize(path)
            except InvalidInputError as exc:  # this file only; a server failure ends the run below
                failed += 1
                print(f"{path.name}: {exc}", file=sys.stderr)
            else:
                print(f"{path.name}\t{text}")
    return 1 if failed else 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ShixinError as exc:  # server unreachable, model not found, ...: one line, not a traceback
        sys.exit(f"error: {exc}")
