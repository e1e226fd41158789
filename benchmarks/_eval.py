"""Rows 12 and 13: accuracy on the real generator's captchas, and the reject option.

Row 12 reads ``datasets/patchca-java-eval`` (1,000 captchas drawn by the Java Patchca
library with the site's settings, never trained on) with the embedded default model as
users run it and with ddddocr, scored by ``training.java_eval`` (the SDK's scoring: exact
match, case ignored), overall and per filter family. Row 13 reads the same set and the
faithful generated test captchas through ``recognize_many`` with the client's default
``min_confidence``: a reading under it comes back as ``LowConfidenceError`` (rejected),
and the error rate among the accepted readings is set beside the error rate with nothing
rejected. Accuracy and error targets are absolute (``Target(of="ours")``).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from typing import Any

from shixin_client import LowConfidenceError, ShixinClient
from shixin_client._config import DEFAULT_MIN_CONFIDENCE
from shixin_client._images import ImageInput

from ._context import JAVA_EVAL, Context
from ._results import OURS, PENDING, SKIP, Row, Target, measured, not_measured

ACCURACY_TARGET = Target(">=", 99.9, "ours at least 99.9%", of=OURS)
#: Per family the recognition targets ask for a little less than overall.
FAMILY_TARGET = Target(">=", 99.7, "ours at least 99.7%", of=OURS)
ACCEPTED_ERROR_TARGET = Target("<=", 0.05, "ours at most 0.05%", of=OURS)
REJECTED_TARGET = Target("<=", 2.0, "ours at most 2%", of=OURS)


def _java_set(ctx: Context) -> Any:
    """The real-library set (its first ``java_eval_images`` under --quick), with labels and families."""
    from training.java_eval import LabelledSet, load_set

    labelled = load_set(JAVA_EVAL)
    count = ctx.counts.java_eval_images
    if count is None:
        return labelled
    return LabelledSet(
        labelled.folder, labelled.files[:count], labelled.labels[:count], labelled.families[:count]
    )


def java_eval_rows(ctx: Context) -> list[Row]:
    title = "Accuracy, real-library set"
    compares = (
        "exact-match accuracy (case ignored) of the embedded default model (`ShixinClient.local()`, "
        "every reading as predicted) vs ddddocr (`DdddOcr(show_ad=False).classification`) on the same "
        "captchas of datasets/patchca-java-eval, drawn by the Java Patchca library with the site's settings"
    )
    missing = (
        f"no {JAVA_EVAL} here"
        if not JAVA_EVAL.is_dir()
        else "ddddocr is not installed"
        if importlib.util.find_spec("ddddocr") is None
        else None
    )
    if missing is not None:
        return [not_measured("12a", 12, title, compares, "%", ACCURACY_TARGET, SKIP, missing)]
    if not ctx.embedded_trained:
        note = "pending model: no shipped shixin_client/_assets/shixin.tflite yet"
        return [not_measured("12a", 12, title, compares, "%", ACCURACY_TARGET, PENDING, note)]
    from training.java_eval import ddddocr_reader, embedded_reader, evaluate_set

    labelled = _java_set(ctx)
    readers = {"ours": embedded_reader(), "ddddocr": ddddocr_reader()}
    section = evaluate_set(labelled, readers)
    ours, theirs = section["readers"]["ours"], section["readers"]["ddddocr"]
    rows = [
        measured(
            "12a",
            12,
            title,
            f"{compares}; all {section['count']:,} captchas",
            "%",
            100 * ours["exact_match"],
            100 * theirs["exact_match"],
            ACCURACY_TARGET,
            note=f"{len(ours['misreads'])} misread by ours, {len(theirs['misreads'])} by ddddocr",
            extra={
                "images": section["count"],
                "char_accuracy": {"ours": ours["char_accuracy"], "ddddocr": theirs["char_accuracy"]},
                "misreads": ours["misreads"],
            },
        )
    ]
    for letter, (family, count) in zip("bcdefghij", section["family_counts"].items(), strict=False):
        rows.append(
            measured(
                f"12{letter}",
                12,
                f"{title}: {family}",
                f"{compares}; the {count} captchas of the `{family}` filter family (families.csv)",
                "%",
                100 * ours["by_family"][family],
                100 * theirs["by_family"][family],
                FAMILY_TARGET,
                extra={"images": count},
            )
        )
    return rows


def reject_counts(
    client: ShixinClient, images: Sequence[ImageInput], labels: Sequence[str]
) -> dict[str, int]:
    """Readings of ``images`` with the client's reject option: accepted, accepted wrong, rejected,
    rejected that were wrong, and wrong with nothing rejected (case ignored throughout)."""
    results = client.recognize_many(list(images), return_exceptions=True)
    counts = {"images": len(results), "accepted": 0, "accepted_wrong": 0, "rejected": 0, "rejected_wrong": 0}
    for result, label in zip(results, labels, strict=True):
        if isinstance(result, LowConfidenceError):
            counts["rejected"] += 1
            counts["rejected_wrong"] += result.text.lower() != label.lower()
        elif isinstance(result, BaseException):
            raise result
        else:
            counts["accepted"] += 1
            counts["accepted_wrong"] += result.lower() != label.lower()
    counts["wrong_without_reject"] = counts["accepted_wrong"] + counts["rejected_wrong"]
    return counts


def reject_rows(ctx: Context) -> list[Row]:
    threshold = f"the client's default min_confidence ({DEFAULT_MIN_CONFIDENCE:g})"
    compares = (
        f"`ShixinClient.local().recognize_many(images, return_exceptions=True)` with {threshold}: a "
        "reading under it is a `LowConfidenceError` (rejected)"
    )
    sets: list[tuple[str, str, Sequence[ImageInput], Sequence[str]]] = []
    if JAVA_EVAL.is_dir():
        labelled = _java_set(ctx)
        sets.append(("real-library set", "datasets/patchca-java-eval", labelled.files, labelled.labels))
    generated = ctx.faithful_set
    sets.append(
        (
            "faithful generated",
            "faithful generated test captchas (Patchca's own ranges, the training test seed, never trained "
            "on; `training.evaluate --mode faithful`'s set)",
            [s.data for s in generated],
            [s.label for s in generated],
        )
    )
    if not ctx.embedded_trained:
        note = "pending model: no shipped shixin_client/_assets/shixin.tflite yet"
        return [not_measured("13a", 13, "Reject option", compares, "%", ACCEPTED_ERROR_TARGET, PENDING, note)]
    rows = []
    with ShixinClient.local() as client:
        for (name, described, images, labels), (error_id, rejected_id) in zip(
            sets, (("13a", "13b"), ("13c", "13d")), strict=False
        ):
            counts = reject_counts(client, images, labels)
            total, accepted = counts["images"], counts["accepted"]
            on = f"{total:,} {described}"
            rows.append(
                measured(
                    error_id,
                    13,
                    f"Reject option, {name}: error among accepted",
                    f"{compares}; per cent of the accepted readings that are wrong vs per cent of all "
                    f"readings wrong with nothing rejected; {on}",
                    "%",
                    100 * counts["accepted_wrong"] / accepted if accepted else 0.0,
                    100 * counts["wrong_without_reject"] / total,
                    ACCEPTED_ERROR_TARGET,
                    note=f"{counts['accepted_wrong']} wrong of {accepted:,} accepted",
                    extra=counts,
                )
            )
            rows.append(
                measured(
                    rejected_id,
                    13,
                    f"Reject option, {name}: rejected",
                    f"{compares}; per cent of the readings rejected (no baseline: the alternatives have no "
                    f"reject option); {on}",
                    "%",
                    100 * counts["rejected"] / total,
                    None,
                    REJECTED_TARGET,
                    note=f"{counts['rejected_wrong']} of the {counts['rejected']} rejected were wrong",
                    extra=counts,
                )
            )
    return rows
