"""Labelled captchas as training and evaluation data: folders of ``<label>_<anything>.<ext>`` files.

The reference naming (``347H_9ac6e7...jpg``) carries each captcha's answer; the label rule
is the SDK's (``shixin_client._scoring.label_of``), every image is decoded by the SDK's
reader (any format ``shixin recognize`` takes) and preprocessed by its one preprocessing,
so a model trained here reads what clients send it. A file that is not an image, carries
no usable label or cannot be decoded gets one line saying why and is left out; the rest
are used.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from shixin_client import IMAGE_SUFFIXES, InvalidInputError, decode_softmax, preprocess
from shixin_client._images import open_image
from shixin_client._scoring import label_of, score
from shixin_client._spec import CaptchaSpec

from .augment import augment as perturb_randomly

#: Third key of a labelled image's augmentation stream (``[seed, epoch, index, stream]``).
LABELLED_AUGMENT_STREAM = 2


@dataclass(frozen=True, eq=False)
class LabelledSet:
    """Readable labelled captchas: names, lowercase labels, file bytes and preprocessed images."""

    files: tuple[Path, ...]
    texts: tuple[str, ...]
    data: tuple[bytes, ...]  # kept to draw a fresh augmentation each epoch
    images: np.ndarray  # uint8 [N, H, W, 1] in {0, 1}, as drawn

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, indices: Sequence[int]) -> LabelledSet:
        chosen = list(indices)
        return LabelledSet(
            tuple(self.files[i] for i in chosen),
            tuple(self.texts[i] for i in chosen),
            tuple(self.data[i] for i in chosen),
            self.images[chosen],
        )

    def epoch_images(self, seed: int, epoch: int, spec: CaptchaSpec, augment: bool) -> np.ndarray:
        """The images for one training epoch: as drawn, or each perturbed afresh (``training.augment``)."""
        if not augment:
            return self.images
        out = np.empty_like(self.images)
        for i, data in enumerate(self.data):
            rng = np.random.default_rng([seed, epoch, i, LABELLED_AUGMENT_STREAM])
            picture = perturb_randomly(open_image(data, str(self.files[i])), rng)
            out[i] = preprocess(picture, spec).astype(np.uint8)
        return out


def _problem(path: Path, spec: CaptchaSpec) -> tuple[str | None, str]:
    """(label, "") for a usable file, else (None, why it is left out)."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return None, f"not an image file name (takes {', '.join(sorted(IMAGE_SUFFIXES))})"
    try:
        label = label_of(str(path), spec.label_length)
    except InvalidInputError as exc:
        return None, exc.problem
    missing = sorted(set(label) - set(spec.charset))
    if missing:
        return None, f"label {label!r} has characters the model has no class for: {''.join(missing)!r}"
    return label, ""


def load_labelled(
    folders: Iterable[Path], spec: CaptchaSpec, say: Callable[[str], None] = print
) -> LabelledSet:
    """Every usable labelled captcha under ``folders`` (searched recursively, in name order).

    Each file left out gets one ``skipped <path>: <why>`` line through ``say``, then one
    line says how many were used. A folder that does not exist is an error.
    """
    files: list[Path] = []
    texts: list[str] = []
    data: list[bytes] = []
    images: list[np.ndarray] = []
    seen = 0
    for folder in folders:
        if not folder.is_dir():
            raise NotADirectoryError(f"labelled folder {folder} does not exist or is not a folder")
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            seen += 1
            label, why = _problem(path, spec)
            if label is not None:
                try:
                    content = path.read_bytes()
                    image = preprocess(content, spec, name=str(path)).astype(np.uint8)
                except InvalidInputError as exc:
                    label, why = None, exc.problem
                except OSError as exc:
                    label, why = None, f"cannot be read ({exc.strerror or exc})"
            if label is None:
                say(f"skipped {path}: {why}")
                continue
            files.append(path)
            texts.append(label)
            data.append(content)
            images.append(image)
    say(f"labelled captchas: {len(files)} of {seen} files used")
    stacked = np.stack(images) if images else np.empty((0, spec.height, spec.width, 1), np.uint8)
    return LabelledSet(tuple(files), tuple(texts), tuple(data), stacked)


def split(labelled: LabelledSet, holdout: float, seed: int) -> tuple[LabelledSet, LabelledSet]:
    """(training part, held-out part): a share ``holdout`` of the files, drawn by ``seed``.

    At least one file is held out when ``holdout`` > 0 and one stays for training, so a
    small folder still gets a before/after figure.
    """
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout {holdout} must be at least 0 and below 1")
    order = np.random.default_rng(seed).permutation(len(labelled))
    count = 0 if holdout == 0 else min(max(1, round(len(labelled) * holdout)), len(labelled) - 1)
    held = sorted(int(i) for i in order[:count])
    kept = sorted(int(i) for i in order[count:])
    return labelled.subset(kept), labelled.subset(held)


def read(model: Any, images: np.ndarray, spec: CaptchaSpec) -> list[str]:
    """What a Keras model reads on preprocessed images, decoded by the SDK's own decoder."""
    if not len(images):
        return []
    softmax = model.predict(images.astype(np.float32), batch_size=256, verbose=0)
    return [p.text for p in decode_softmax(softmax, spec)]


def reading_report(names: Sequence[str], texts: Sequence[str], readings: Sequence[str]) -> dict[str, Any]:
    """Exact match, per character, and every misread ``(name, label, read)`` of a set of readings."""
    scored = score(zip(texts, readings, strict=True))
    return {
        "count": scored.readings,
        "exact_match": scored.exact_match,
        "char_accuracy": scored.char_accuracy,
        "misreads": [
            {"file": name, "label": label, "read": reading}
            for name, label, reading in zip(names, texts, readings, strict=True)
            if label != reading.lower()
        ],
        "confusions": [{"true": a, "read": b, "count": n} for (a, b), n in scored.confusions.most_common(15)],
    }
