"""Accuracy of readings against labels: the one definition training and ``shixin score`` share.

Labelled captchas carry their answer in the file name, the reference project's naming
``<label>_<md5>.png`` (``347H_9ac6e7...jpg``), so a folder of them is a test set as it
stands: the private real set a site's owners hold, a generated dataset, the real samples in datasets/real.
Matching ignores case, as the site does and as the model reads (labels are lowercase).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import Optional

from ._exceptions import InvalidInputError


def label_of(path: str, length: Optional[int] = None) -> str:
    """The lowercase label a file name carries before its first ``_`` (the reference naming).

    Raises InvalidInputError when the name has no ``_``, or nothing but letters and digits
    before it, or (given ``length``, the model's label length) a label of another length
    (``big_x.png`` for a model that reads four characters): such a file is not labelled for
    this model, and scoring it would count a misread the model could never avoid.
    """
    name = PurePath(path).name
    label, sep, _ = name.partition("_")
    if not sep or not label:
        raise InvalidInputError(
            repr(path), "file name carries no label (expected <label>_<anything>, e.g. 347H_9ac6e7.png)"
        )
    if not (label.isascii() and label.isalnum()):
        raise InvalidInputError(repr(path), f"label {label!r} before '_' is not letters and digits")
    if length is not None and len(label) != length:
        raise InvalidInputError(
            repr(path), f"label {label!r} has {len(label)} characters; the model reads {length}"
        )
    return label.lower()


@dataclass(frozen=True)
class Score:
    """Exact match and per-character accuracy of readings against their labels.

    A character counts as right when it is in its place in a reading of the label's
    length; a reading of another length gets none of its characters right, since CTC
    then aligns them to no particular position. ``confusions`` counts (label char, read
    char) for same-length readings, and (label, reading) pairs for the others.
    """

    readings: int
    exact: int
    characters: int
    characters_right: int
    confusions: Counter[tuple[str, str]] = field(default_factory=Counter, compare=False)

    @property
    def exact_match(self) -> float:
        return self.exact / self.readings if self.readings else 0.0

    @property
    def char_accuracy(self) -> float:
        return self.characters_right / self.characters if self.characters else 0.0


def score(pairs: Iterable[tuple[str, str]]) -> Score:
    """Score (label, reading) pairs, case ignored on both sides."""
    readings = exact = characters = right = 0
    confusions: Counter[tuple[str, str]] = Counter()
    for label, reading in pairs:
        truth, read = label.lower(), reading.lower()
        readings += 1
        exact += truth == read
        characters += len(truth)
        if len(read) == len(truth):
            for a, b in zip(truth, read, strict=True):
                right += a == b
                if a != b:
                    confusions[(a, b)] += 1
        else:
            confusions[(truth, read or "<empty>")] += 1
    return Score(readings, exact, characters, right, confusions)
