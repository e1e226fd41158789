"""Row 11: one captcha read by a whole new process, ours against ddddocr's one-liner.

What a script that reads one captcha and exits pays, start to end: ours is the command
line, ``shixin recognize one.png`` (embedded model, no server); ddddocr's equivalent is
``python -c "import ddddocr; print(ddddocr.DdddOcr(show_ad=False).classification(...))"``.
Each run is a fresh process (:func:`benchmarks._children.run_fresh`); its peak resident
memory (``ru_maxrss``) is row 11a and its wall time row 11b. One untimed run of each
first, so both read their files from the page cache; then the sides take turns.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from ._children import Finished, run_fresh
from ._context import Context
from ._results import SKIP, Row, Target, measured, not_measured
from ._timing import median

DDDDOCR_ONE_LINER = (
    "import ddddocr, sys; "
    "print(ddddocr.DdddOcr(show_ad=False).classification(open(sys.argv[1], 'rb').read()))"
)
MEMORY_TARGET = Target("<=", 1 / 3, "at most 1/3")
COLD_START_TARGET = Target("<=", 1 / 3, "at most 1/3")
MEMORY_TITLE = "Embedded peak memory"
COLD_START_TITLE = "Cold start, one captcha"


def shixin_command() -> list[str]:
    """The installed ``shixin`` console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "shixin"
    if not script.is_file():
        raise RuntimeError(f"no `shixin` command at {script}: install the project (pip install -e .)")
    return [str(script), "recognize"]


def _one_captcha(ctx: Context) -> Path:
    """A real site captcha when the repository has one, else a generated one, as a file."""
    sample = next((s for s in ctx.real if s.name.startswith("origin/")), None) or ctx.generated[0]
    path = ctx.tmp / "fresh" / f"{sample.label}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(sample.data)
    return path


def fresh_rows(ctx: Context) -> list[Row]:
    compares = (
        "a fresh process reading one captcha file and printing its text: `shixin recognize one.png` "
        "(the command line, embedded model) vs ddddocr's one-liner `python -c \"import ddddocr; "
        "print(ddddocr.DdddOcr(show_ad=False).classification(open(p, 'rb').read()))\"`"
    )
    if importlib.util.find_spec("ddddocr") is None:
        return [
            not_measured(
                "11a", 11, MEMORY_TITLE, compares, "MB", MEMORY_TARGET, SKIP, "ddddocr is not installed"
            ),
            not_measured(
                "11b",
                11,
                COLD_START_TITLE,
                compares,
                "s",
                COLD_START_TARGET,
                SKIP,
                "ddddocr is not installed",
            ),
        ]
    image = _one_captcha(ctx)
    sides = {
        "ours": [*shixin_command(), str(image)],
        "ddddocr": [sys.executable, "-c", DDDDOCR_ONE_LINER, str(image)],
    }
    for command in sides.values():
        run_fresh(command)
    runs: dict[str, list[Finished]] = {name: [] for name in sides}
    for _ in range(ctx.counts.process_runs):
        for name, command in sides.items():
            runs[name].append(run_fresh(command))
    reads = {name: found[-1].stdout.strip().rsplit("\t", 1)[-1] for name, found in runs.items()}
    times = f"{ctx.counts.process_runs} runs each after one untimed run, sides taking turns; medians"
    extra = {"image": image.name, "reads": reads}
    return [
        measured(
            "11a",
            11,
            MEMORY_TITLE,
            f"peak resident memory (ru_maxrss of the finished child) of {compares}; {times}",
            "MB",
            median([run.peak_mb for run in runs["ours"]]),
            median([run.peak_mb for run in runs["ddddocr"]]),
            MEMORY_TARGET,
            extra=extra,
        ),
        measured(
            "11b",
            11,
            COLD_START_TITLE,
            f"wall time from start to exit of {compares}; {times}",
            "s",
            median([run.seconds for run in runs["ours"]]),
            median([run.seconds for run in runs["ddddocr"]]),
            COLD_START_TARGET,
            extra=extra,
        ),
    ]
