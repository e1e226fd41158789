"""Start a benchmark server child, wait for its address line, stop it when done."""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ._context import QUIET_TF, ROOT

START_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 30.0


@contextmanager
def child_server(module: str, *args: str) -> Iterator[dict[str, Any]]:
    """Run ``python -m module args``; yields the JSON object it prints first; closing stdin stops it."""
    with tempfile.TemporaryFile(mode="w+") as errors:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env={**os.environ, **QUIET_TF},
        )
        assert process.stdin is not None and process.stdout is not None
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(process.stdout, selectors.EVENT_READ)
                ready = selector.select(START_TIMEOUT_S)
            line = process.stdout.readline() if ready else ""
            if not line:
                process.kill()
                process.wait()
                errors.seek(0)
                raise RuntimeError(f"{module} did not start: {errors.read()[-2000:]}")
            yield json.loads(line)
        finally:
            if process.poll() is None:
                process.stdin.close()
                try:
                    process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
