"""The reference REST flow with plain ``requests``: float tensors in, softmax out, decoding here.

This is how the original project called TensorFlow Serving, kept working so existing
callers can switch step by step. Each image travels as a [70, 160, 1] float tensor
(about 113 KB of JSON); the SDK examples send the thresholded picture as a 1-bit PNG
(about 450 bytes) instead.

Run, with a model served on localhost (e.g. ``shixin serve --model_name=shixin
--model_base_path=$PWD/models/shixin --port=8500 --rest_api_port=8501``)::

    python examples/rest_requests.py [--server http://localhost:8501] [FOLDER]

Needs ``requests`` (``pip install requests``; the SDK itself does not).
The URL comes from ``--server``, else ``$SHIXIN_SERVER``, else http://localhost:8501.
Prints one ``file<TAB>text`` line per captcha in FOLDER (default: examples/captchas).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import requests

# The SDK's own preprocessing and CTC decoder, so this flow reads exactly what the
# model was trained on; greedy decoding here gives what keras.backend.ctc_decode gives.
from shixin_client import (
    DEFAULT_MODEL_NAME,
    DEFAULT_REST_PORT,
    DEFAULT_SPEC,
    decode_softmax,
    preprocess,
    server_from_env,
)
from shixin_client.cli import IMAGE_SUFFIXES

CAPTCHAS = Path(__file__).resolve().parent / "captchas"
#: Float tensors are big on the wire: send a folder in requests of this many images.
BATCH_SIZE = 16


def main() -> None:
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
    for start in range(0, len(files), BATCH_SIZE):
        chunk = files[start : start + BATCH_SIZE]
        x = np.stack([preprocess(path) for path in chunk])  # float32 [N, 70, 160, 1] in {0, 1}
        try:
            response = requests.post(url, json={"instances": x.tolist()}, timeout=60)
        except requests.RequestException as exc:  # refused, timed out, ...: one line, not a traceback
            raise SystemExit(f"error: {url}: {exc}") from None
        if not response.ok:  # TF Serving explains itself in {"error": "..."}
            raise SystemExit(f"error: {url}: HTTP {response.status_code}: {response.text}")
        softmax = np.asarray(response.json()["predictions"], dtype=np.float32)  # [N, 40, 37]
        for path, prediction in zip(chunk, decode_softmax(softmax, DEFAULT_SPEC), strict=True):
            print(f"{path.name}\t{prediction.text}")


if __name__ == "__main__":
    main()
