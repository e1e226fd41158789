"""One benchmark figure: ours, its baseline measured in the same run, their ratio and the verdict.

Every figure is a ratio ``ours / baseline`` (times, bytes, megabytes, images per second
alike), because the machines are shared and noisy: absolute numbers drift between runs,
ratios taken in one run hold. A target says which way the ratio must fall; a row that
misses its target says MISS, never a softer word. Accuracy and error rates are the
exception: their targets are absolute (``Target(..., of="ours")``), and the baseline
beside them is context.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

PASS = "PASS"
MISS = "MISS"
#: Measured, with no target set for it.
INFO = "INFO"
#: Not measured in this run; the row's note says why (``--quick``, a missing package).
SKIP = "SKIP"
#: Needs the trained model, which this run did not have.
PENDING = "PENDING"
#: The measurement itself failed; the note holds the error.
ERROR = "ERROR"
VERDICTS = (PASS, MISS, INFO, SKIP, PENDING, ERROR)

#: "any": the ratio is only reported; the row passes or misses on its ``required`` condition.
_OPS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">=": operator.ge,
    "any": lambda r, v: True,
}


#: What a target judges: the ratio to the baseline, or our own figure (an accuracy, an error rate).
RATIO = "ratio"
OURS = "ours"


@dataclass(frozen=True)
class Target:
    """``<of> <op> value``; ``text`` is how the target is worded (e.g. "at most 1/10")."""

    op: str
    value: float
    text: str
    of: str = RATIO

    def __post_init__(self) -> None:
        if self.op not in _OPS:
            raise ValueError(f"Target.op must be one of {sorted(_OPS)}, got {self.op!r}")
        if self.of not in (RATIO, OURS):
            raise ValueError(f"Target.of must be {RATIO!r} or {OURS!r}, got {self.of!r}")

    def met(self, ratio: float | None, ours: float) -> bool:
        """Whether the row meets it; a ratio target with no ratio (no baseline) never does."""
        if self.of == OURS:
            return _OPS[self.op](ours, self.value)
        return ratio is not None and _OPS[self.op](ratio, self.value)


@dataclass
class Row:
    """One line of the table and of results.json."""

    id: str
    item: int
    title: str
    #: What exactly is compared, in words: both sides, the inputs and the counts.
    compares: str
    unit: str
    ours: float | None
    baseline: float | None
    ratio: float | None
    target: Target | None
    verdict: str
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["target"] = asdict(self.target) if self.target else None
        return data


def measured(
    id: str,
    item: int,
    title: str,
    compares: str,
    unit: str,
    ours: float,
    baseline: float | None,
    target: Target | None,
    *,
    required: tuple[bool, str] | None = None,
    note: str = "",
    extra: dict[str, Any] | None = None,
) -> Row:
    """A row from two measurements; ``required`` is a further condition and the words for its failure.

    ``baseline`` may be None only where nothing else does the same thing: the row then has
    no ratio, and only a target on ``ours`` can judge it.
    """
    if baseline is None:
        ratio = None
    else:
        ratio = ours / baseline if baseline else math.inf
    if target is None:
        verdict = INFO
    else:
        verdict = PASS if target.met(ratio, ours) else MISS
    if required is not None and not required[0]:
        verdict = MISS
        note = "; ".join(part for part in (required[1], note) if part)
    return Row(id, item, title, compares, unit, ours, baseline, ratio, target, verdict, note, extra or {})


def not_measured(
    id: str, item: int, title: str, compares: str, unit: str, target: Target | None, verdict: str, note: str
) -> Row:
    """A row kept in the table with its reason, so a skipped figure never silently disappears."""
    if verdict not in (SKIP, PENDING, ERROR):
        raise ValueError(f"not_measured needs SKIP, PENDING or ERROR, got {verdict!r}")
    return Row(id, item, title, compares, unit, None, None, None, target, verdict, note)
