"""Bring your own HTTP client: plain ``requests`` to TF Serving, the SDK's preprocessing and decoding.

The reference REST flow: float tensors in, softmax out, CTC decoding here. It is how
the original project called TensorFlow Serving, kept working so existing callers can
switch step by step, and the way to reuse the SDK's :func:`shixin_client.preprocess`
and :func:`shixin_client.decode_softmax` with any transport. Each image travels as a
[70, 160, 1] float tensor (about 113 KB of JSON); the SDK's own clients send the
thresholded picture as a 1-bit PNG (about 450 bytes) instead. A file that cannot be
read is reported and left out of its request; the others are still sent.

Run, with a model served on localhost (e.g. ``shixin serve --model_name=shixin
--model_base_path=$PWD/models/shixin --port=8500 --rest_api_port=8501``)::

    python examples/rest_requests.py [--server http://localhost:8501] [FOLDER]

Needs ``requests`` and numpy (``pip install requests "shixin-client[numpy]"``); the SDK's
REST client needs neither. The URL comes from ``--server``, else ``$SHIXIN_SERVER``,
else http://localhost:8501. Prints one ``file<TAB>text`` line per captcha in FOLDER
(default: examples/captchas); failures go to stderr, and the exit status is then 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import requests

# The SDK's own preprocessing and CTC decoder, so this flow reads exactly what the
# model was trained on; greedy decoding here gives what keras.backend.ctc_decode gives.
from shixin_client import (
    DEFAULT_MODEL_NAME,
    DEFAULT_REST_PORT,
    DEFAULT_SPEC,
    IMAGE_SUFFIXES,
    InvalidInputError,
    decode_softmax,
    preprocess,
    server_from_env,
)

CAPTCHAS = Path(__file__).resolve().parent / "captchas"
#: Float tensors are big on the wire: send a folder in requests of this many images.
BATCH_SIZE = 16


def main() -> int:
    parser = argparse.ArgumentParser(description="Recognise captchas the reference way: requests + JSON.")
    parser.add_argument("--server", default=server_from_env() or f"http://localhost:{DEFAULT_REST_PORT}")
    parser.add_argument("--model", default=DEFAULT_MODEL_NAME)
    parser.add_argument("folder", nargs="?", type=Path, default=CAPTCHAS)
    args = parser.parse_args()
    if not args.server.startswith(("http://", "https://")):
        parser.error(f"--server must be an http:// or https:// URL, got {args.server!r}")

    if not args.folder.is_dir():
        parser.error(f"{str(args.folder)!r} is not a folder")
    files = sorted(p for p in args.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    url = f"{args.server.rstrip('/')}/v1/models/{args.model}:predict"
    failed = 0
    for start in range(0, len(files), BATCH_SIZE):
        chunk, tensors = [], []
        for path in files[start : start + BATCH_SIZE]:
            try:
                tensors.append(preprocess(path))  # float32 [70, 160, 1] in {0, 1}
            except InvalidInputError as exc:  # this file only
                failed += 1
                print(f"{path.name}: {exc}", file=sys.stderr)
            else:
                chunk.append(path)
        if not chunk:
            continue
        x = np.stack(tensors)
        try:
            response = requests.post(url, json={"instances": x.tolist()}, timeout=60)
        except requests.RequestException as exc:  # refused, timed out, ...: one line, not a traceback
            raise SystemExit(f"error: {url}: {exc}") from None
        if not response.ok:  # TF Serving explains itself in {"error": "..."}
            raise SystemExit(f"error: {url}: HTTP {response.status_code}: {response.text}")
        softmax = np.asarray(response.json()["predictions"], dtype=np.float32)  # [N, 40, 37]
        for path, prediction in zip(chunk, decode_softmax(softmax, DEFAULT_SPEC), strict=True):
            print(f"{path.name}\t{prediction.text}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
