"""The local server keeps its memory flat under a stream of bad requests.

The server runs in its own process, so its resident memory is read from /proc without
the test's own allocations mixed in.
"""

from __future__ import annotations

import base64
import random
import socket
import subprocess
import sys
from pathlib import Path

import requests

from shixin_client import ShixinClient

MODEL_URL = "/v1/models/shixin"


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc status")


def _bad_requests(rng: random.Random) -> list[tuple[str, str, bytes]]:
    junk = bytes(rng.getrandbits(8) for _ in range(rng.randint(0, 300)))
    b64 = base64.b64encode(junk).decode()
    return [
        ("POST", f"{MODEL_URL}:predict", junk),  # not JSON
        ("POST", f"{MODEL_URL}:predict", b'{"instances": [[1, 2], [3]]}'),  # ragged
        ("POST", f"{MODEL_URL}:predict", b'{"signature_name": "nope", "instances": [0]}'),
        (
            "POST",
            f"{MODEL_URL}:predict",
            f'{{"signature_name": "serving_bytes", "instances": [{{"b64": "{b64}"}}]}}'.encode(),
        ),
        ("POST", f"{MODEL_URL}/versions/99:predict", b'{"instances": [0]}'),
        ("POST", f"{MODEL_URL}/labels/none:predict", b'{"instances": [0]}'),
        ("GET", f"{MODEL_URL}/versions/abc", b""),
        ("PUT", f"{MODEL_URL}:predict", b"{}"),
    ]


def _send_rounds(url: str, rounds: int, rng: random.Random) -> None:
    with requests.Session() as session:
        for _ in range(rounds):
            for method, path, body in _bad_requests(rng):
                response = session.request(method, url + path, data=body, timeout=30)
                assert 400 <= response.status_code < 500, (path, response.status_code, response.text[:200])


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_bad_requests_do_not_grow_the_servers_memory(model_base):
    rest, grpc = _free_port(), _free_port()
    flags = [
        f"--port={grpc}",
        f"--rest_api_port={rest}",
        "--model_name=shixin",
        f"--model_base_path={model_base}",
    ]
    process = subprocess.Popen(
        [sys.executable, "-m", "shixin_client.server", *flags], stdout=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{rest}"
    try:
        with ShixinClient(url, retry=0) as client:
            client.wait_until_ready(120)
        rng = random.Random(7)
        _send_rounds(url, 60, rng)  # warm-up: allocator pools, TF kernels, caches
        warm = _rss_mb(process.pid)
        _send_rounds(url, 250, rng)  # 2,000 more bad requests
        end = _rss_mb(process.pid)
        assert process.poll() is None
        assert end < warm * 1.10, f"server RSS grew from {warm:.0f} to {end:.0f} MiB over 2,000 bad requests"
    finally:
        process.terminate()
        process.wait(30)
