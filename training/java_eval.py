"""Accuracy per filter family on a labelled evaluation set, several readers side by side.

The set is a folder of ``<word>_<n>.png`` captchas and a ``families.csv`` (``file,family,word``)
naming the Patchca filter family that drew each, as ``datasets/patchca-java-eval`` (1,000
captchas from the real Java library with the site's settings; never trained on). Every reader
is scored with the SDK's one definition (``shixin_client._scoring.score``: case ignored), so the
figures match ``shixin score`` on the same folder. ``python -m training.evaluate --java-eval
DIR`` adds the section this module writes to ``report.md`` and ``report.json``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shixin_client._exceptions import InvalidInputError
from shixin_client._images import preprocess
from shixin_client._scoring import label_of, score
from shixin_client._spec import DEFAULT_SPEC, CaptchaSpec

FAMILIES_CSV = "families.csv"
#: A reader takes the set's files and returns one reading per file, in order.
Reader = Callable[[Sequence[Path]], list[str]]


@dataclass(frozen=True)
class LabelledSet:
    """The files of an evaluation set with each one's label (its drawn case) and filter family."""

    folder: Path
    files: list[Path]
    labels: list[str]
    families: list[str]


def load_set(folder: Path) -> LabelledSet:
    """Read ``families.csv``; every row must name an existing file whose name carries its word.

    Raises InvalidInputError naming the file and the problem, so a damaged copy of the set
    fails before any reader runs rather than scoring against wrong answers.
    """
    table = folder / FAMILIES_CSV
    if not table.is_file():
        raise InvalidInputError(str(folder), f"no {FAMILIES_CSV} (file,family,word) in this folder")
    files, labels, families = [], [], []
    with table.open(newline="") as handle:
        for row in csv.DictReader(handle):
            path = folder / row["file"]
            if not path.is_file():
                raise InvalidInputError(str(table), f"lists {row['file']!r}, which is not in {folder}")
            if label_of(row["file"]) != row["word"].lower():
                raise InvalidInputError(str(table), f"{row['file']!r} is listed with word {row['word']!r}")
            files.append(path)
            labels.append(row["word"])
            families.append(row["family"])
    if not files:
        raise InvalidInputError(str(table), "lists no captchas")
    return LabelledSet(folder, files, labels, families)


def keras_reader(model: Any, spec: CaptchaSpec = DEFAULT_SPEC, alphabet: str | None = None) -> Reader:
    """A Keras model, fed the SDK's preprocessing and read with the SDK's decoder."""
    from .evaluate import decode

    def read(files: Sequence[Path]) -> list[str]:
        images = np.stack([preprocess(path, spec) for path in files])
        return decode(model.predict(images, batch_size=256, verbose=0), spec, alphabet)

    return read


def embedded_reader(alphabet: str | None = None) -> Reader:
    """The embedded default model as users run it: ``ShixinClient.local()``, readings as predicted."""
    from shixin_client import ShixinClient

    def read(files: Sequence[Path]) -> list[str]:
        with ShixinClient.local(alphabet=alphabet) as client:
            return [p.text for p in client.predict_many(list(files))]

    return read


def ddddocr_reader() -> Reader:
    """ddddocr's default model (``DdddOcr(show_ad=False).classification``), the usual baseline."""
    import ddddocr

    ocr = ddddocr.DdddOcr(show_ad=False)

    def read(files: Sequence[Path]) -> list[str]:
        return [str(ocr.classification(path.read_bytes())) for path in files]

    return read


def evaluate_set(labelled: LabelledSet, readers: dict[str, Reader]) -> dict[str, Any]:
    """Exact match and per-character accuracy of each reader, overall and per family."""
    names = sorted(set(labelled.families))
    results = {}
    for reader_name, reader in readers.items():
        readings = reader(labelled.files)
        pairs = list(zip(labelled.labels, readings, strict=True))
        overall = score(pairs)
        by_family = {
            family: score(p for p, f in zip(pairs, labelled.families, strict=True) if f == family).exact_match
            for family in names
        }
        misreads = [
            {"file": path.name, "read": read}
            for path, (label, read) in zip(labelled.files, pairs, strict=True)
            if label.lower() != read.lower()
        ]
        results[reader_name] = {
            "exact_match": overall.exact_match,
            "char_accuracy": overall.char_accuracy,
            "by_family": by_family,
            "misreads": misreads,
        }
    return {
        "folder": labelled.folder.as_posix(),
        "count": len(labelled.files),
        "family_counts": {family: labelled.families.count(family) for family in names},
        "readers": results,
    }


def markdown(section: dict[str, Any]) -> list[str]:
    """The report's table: one row per reader, overall then per family, counts in the header."""
    families = section["family_counts"]
    return [
        f"## Real-library evaluation set (`{section['folder']}`)",
        "",
        f"{section['count']:,} captchas drawn by the Java Patchca library with the site's settings "
        "(never trained on); exact match, case ignored:",
        "",
        "| reader | exact match | per character | "
        + " | ".join(f"{family} ({n})" for family, n in families.items())
        + " |",
        "|---|---|---|" + "---|" * len(families),
        *[
            f"| {name} | **{r['exact_match']:.2%}** | {r['char_accuracy']:.2%} | "
            + " | ".join(f"{r['by_family'][family]:.2%}" for family in families)
            + " |"
            for name, r in section["readers"].items()
        ],
        "",
    ]
