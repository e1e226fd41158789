"""``python -m benchmarks._embedded_timing``: row 8's timings, in a process without TensorFlow.

By row 8 the harness has run TensorFlow in its own process (rows 4-7), and TensorFlow's
thread pools keep spinning for a while after each call. On 2 cores they take the CPU that
LiteRT's and onnxruntime's own threads need: measured in the harness process, ours went
from 0.70 to 1.1 ms per image and ddddocr's from 3.5 to 4.3 ms. So the embedded model and
ddddocr are timed side by side here, in a fresh process that never imports TensorFlow.

Reads a JSON job on stdin (``model``: a model path or null for the shipped one, ``images``:
base64 files, ``rounds``) and prints the median seconds per call of each side as JSON;
:func:`time_in_child` is the harness side of that exchange.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from ._timing import per_call

ROOT = Path(__file__).resolve().parent.parent


def time_in_child(
    images: Sequence[bytes], model: str | None, rounds: int, env: Mapping[str, str]
) -> dict[str, float]:
    """This module run on ``images`` in a fresh process with ``env``: seconds per call of each side."""
    job = {
        "model": model,
        "images": [base64.b64encode(data).decode("ascii") for data in images],
        "rounds": rounds,
    }
    done = subprocess.run(
        [sys.executable, "-m", __name__],
        input=json.dumps(job),
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=dict(env),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{__name__} failed: {done.stderr[-2000:]}")
    times: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return times


def main() -> int:
    job = json.load(sys.stdin)
    from shixin_client import LowConfidenceError, ShixinClient

    data = [base64.b64decode(item) for item in job["images"]]
    client = ShixinClient.local() if job["model"] is None else ShixinClient.local(model_path=job["model"])
    import ddddocr

    def recognize(item: bytes) -> str:
        """A user's call: the text, or the reading the reject option refused (the same work)."""
        try:
            return client.recognize(item)
        except LowConfidenceError as rejected:
            return rejected.text

    ocr = ddddocr.DdddOcr(show_ad=False)
    recognize(data[0])
    ocr.classification(data[0])
    times = per_call(
        {
            "ours_one": lambda: [recognize(item) for item in data],
            "ours_many": lambda: client.recognize_many(data, return_exceptions=True),
            "ddddocr": lambda: [ocr.classification(item) for item in data],
        },
        1,
        job["rounds"],
    )
    client.close()
    assert "tensorflow" not in sys.modules, "the timing process must stay free of TensorFlow"
    print(json.dumps(times))
    return 0


if __name__ == "__main__":
    sys.exit(main())
