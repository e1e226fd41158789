"""Children of the harness: a benchmark server (started, waited for, stopped), and fresh processes
whose peak memory and wall time are measured.
"""

from __future__ import annotations

import json
import os
import selectors
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
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


#: Runs argv[1:] and prints its wall time, peak RSS (the raw ru_maxrss) and output as JSON.
#: Linux carries a process's peak RSS across fork and exec, so a child of the harness (which
#: holds TensorFlow, hundreds of MB) would report the harness's peak as its own; a child of
#: this small fresh interpreter starts from a few MB, below anything measured.
_LAUNCHER = (
    "import json, resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "done = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE)\n"
    "seconds = time.perf_counter() - start\n"
    "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
    "print(json.dumps({'code': done.returncode, 'seconds': seconds, 'max_rss': peak,"
    " 'stdout': done.stdout.decode('utf-8', 'replace')}))\n"
)


@dataclass(frozen=True)
class Finished:
    """A fresh process run to its end: wall seconds from start to exit, peak RSS in MB, its stdout."""

    seconds: float
    peak_mb: float
    stdout: str


def run_fresh(command: Sequence[str], env: Mapping[str, str] | None = None) -> Finished:
    """Run ``command`` as a fresh process (see ``_LAUNCHER``); raises with its stderr if it fails."""
    with tempfile.TemporaryFile(mode="w+") as errors:
        launched = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, *command],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            env=dict(os.environ if env is None else env),
            check=False,
        )
        report: dict[str, Any] = (
            json.loads(launched.stdout) if launched.returncode == 0 else {"code": launched.returncode}
        )
        if report["code"] != 0:
            errors.seek(0)
            raise RuntimeError(f"`{' '.join(command)}` exited with {report['code']}: {errors.read()[-2000:]}")
    # ru_maxrss is in KiB on Linux, in bytes on macOS.
    peak = report["max_rss"] / 2**20 if sys.platform == "darwin" else report["max_rss"] / 2**10
    return Finished(float(report["seconds"]), peak, report["stdout"])
