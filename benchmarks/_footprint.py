"""Rows 1 and 2: what importing and installing the client costs, against tensorflow-serving-api."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from ._children import run_fresh
from ._context import QUIET_TF, ROOT, Context
from ._results import SKIP, Row, Target, measured, not_measured
from ._timing import median

OURS_MODULE = "shixin_client"
REFERENCE_MODULE = "tensorflow_serving.apis.prediction_service_pb2_grpc"
REFERENCE_PACKAGE = "tensorflow-serving-api"
#: Reused between runs: the reference venv alone is about 2.5 GB and takes minutes to make.
CACHE_DIR = Path(os.environ.get("SHIXIN_BENCH_CACHE", "/tmp/shixin-bench-cache"))
INSTALL_TIMEOUT_S = 1800

_PROBE = (
    "import json, time\n"
    "start = time.perf_counter()\n"
    "import {module}\n"
    "print(json.dumps(time.perf_counter() - start))\n"
)


def _import_once(module: str) -> tuple[float, float]:
    """Seconds to import ``module`` in a fresh interpreter, and that process's peak RSS in MB."""
    finished = run_fresh([sys.executable, "-c", _PROBE.format(module=module)], {**os.environ, **QUIET_TF})
    return float(json.loads(finished.stdout.strip().splitlines()[-1])), finished.peak_mb


def import_rows(ctx: Context) -> list[Row]:
    ours: list[tuple[float, float]] = []
    reference: list[tuple[float, float]] = []
    for _ in range(ctx.counts.import_repeats):
        ours.append(_import_once(OURS_MODULE))
        reference.append(_import_once(REFERENCE_MODULE))
    runs = f"fresh `python -c` processes, {ctx.counts.import_repeats} each, alternating; medians"
    return [
        measured(
            "1a",
            1,
            "Import time",
            f"`import {OURS_MODULE}` vs `import {REFERENCE_MODULE}`: seconds spent in the import "
            f"statement, {runs}",
            "s",
            median([t for t, _ in ours]),
            median([t for t, _ in reference]),
            Target("<=", 1 / 10, "at most 1/10"),
        ),
        measured(
            "1b",
            1,
            "Import peak RSS",
            f"peak resident memory (ru_maxrss) of the same processes, started from a small launcher "
            f"(a child of the harness would inherit its peak), {runs}",
            "MB",
            median([m for _, m in ours]),
            median([m for _, m in reference]),
            Target("<=", 1 / 5, "at most 1/5"),
        ),
    ]


INSTALL_TITLE = "Install footprint"
INSTALL_COMPARES = (
    "bytes under site-packages of a fresh venv after `pip install .[grpc]` (this checkout, REST + gRPC "
    f"client) vs after `pip install {REFERENCE_PACKAGE}`; pip itself is not installed into either venv"
)
INSTALL_TARGET = Target("<=", 1 / 20, "at most 1/20")


def _site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise RuntimeError(f"{venv} has no lib/python*/site-packages")
    return found[0]


def _tree_bytes(folder: Path) -> int:
    total = 0
    for directory, _, files in os.walk(folder):
        for name in files:
            path = Path(directory, name)
            if not path.is_symlink():
                total += path.stat().st_size
    return total


def _make_venv(venv: Path, requirement: str, fresh: bool) -> Path:
    """A venv (no pip of its own) holding ``requirement``; reused unless ``fresh``."""
    done = venv / ".complete"
    if done.exists() and not fresh:
        return _site_packages(venv)
    shutil.rmtree(venv, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    pip = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        str(venv / "bin" / "python"),
        "install",
        "-q",
        requirement,
    ]
    result = subprocess.run(
        pip,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=INSTALL_TIMEOUT_S,
        env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    if result.returncode != 0:
        raise RuntimeError(f"`pip install {requirement}` into {venv} failed: {result.stderr[-2000:]}")
    done.touch()
    return _site_packages(venv)


def install_rows(ctx: Context) -> list[Row]:
    if ctx.quick:
        return [
            not_measured(
                "2", 2, INSTALL_TITLE, INSTALL_COMPARES, "MB", INSTALL_TARGET, SKIP, "skipped by --quick"
            )
        ]
    # Ours is rebuilt every run so it measures this checkout; the reference is reused.
    ours_site = _make_venv(CACHE_DIR / "ours", f"{ROOT}[grpc]", fresh=True)
    reference = _tree_bytes(_make_venv(CACHE_DIR / "reference", REFERENCE_PACKAGE, fresh=False))
    entries = {
        entry.name: _tree_bytes(entry) if entry.is_dir() else entry.stat().st_size
        for entry in ours_site.iterdir()
    }
    ours = sum(entries.values())
    largest = sorted(entries.items(), key=lambda item: -item[1])[:6]
    return [
        measured(
            "2",
            2,
            INSTALL_TITLE,
            INSTALL_COMPARES,
            "MB",
            ours / 1e6,
            reference / 1e6,
            INSTALL_TARGET,
            note=f"venvs cached under {CACHE_DIR}",
            extra={"ours_largest_mb": {name: round(size / 1e6, 1) for name, size in largest}},
        )
    ]
