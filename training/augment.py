"""Perturbations of a finished captcha that the site never makes but the model must shrug off.

A model that only reads its own generator's output is not done: the real samples read
correctly as rendered, but a slight rotation, blur or JPEG pass turned ``3A3B`` into
``3a38`` a third of the time while ddddocr read every variant. So training images get
these on top of the generator's own randomisation, and the evaluation report reads the
real samples through the same perturbations (:func:`perturb` with a fixed kind).

The generator stays the definition of the test set; augmentation is a training-time step
with its own random stream, so turning it on changes no test or validation image.
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageFilter

KINDS = ("shift", "scale", "rotate", "blur", "jpeg", "resize")


def perturb(image: Image.Image, kind: str, rng: np.random.Generator) -> Image.Image:
    """One perturbation of ``kind`` with a random strength; the size stays the same except ``resize``."""
    rgb = image.convert("RGB")
    width, height = rgb.size
    if kind == "shift":
        dx, dy = rng.integers(-8, 9), rng.integers(-6, 7)
        return rgb.transform(rgb.size, Image.Transform.AFFINE, (1, 0, dx, 0, 1, dy), fillcolor="white")
    if kind == "scale":
        s = float(rng.uniform(0.85, 1.15))
        cx, cy = width / 2, height / 2
        matrix = (1 / s, 0, cx - cx / s, 0, 1 / s, cy - cy / s)
        return rgb.transform(
            rgb.size, Image.Transform.AFFINE, matrix, resample=Image.Resampling.BILINEAR, fillcolor="white"
        )
    if kind == "rotate":
        return rgb.rotate(float(rng.uniform(-8, 8)), resample=Image.Resampling.BILINEAR, fillcolor="white")
    if kind == "blur":
        return rgb.filter(ImageFilter.GaussianBlur(float(rng.uniform(0.3, 1.0))))
    if kind == "jpeg":
        out = io.BytesIO()
        rgb.save(out, format="JPEG", quality=int(rng.integers(30, 91)))
        return Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    if kind == "resize":
        new_width = int(rng.integers(120, 241))
        return rgb.resize((new_width, round(new_width * height / width)), Image.Resampling.BILINEAR)
    raise ValueError(f"unknown perturbation {kind!r}; choose from {KINDS}")


def augment(image: Image.Image, rng: np.random.Generator, rate: float = 0.5) -> Image.Image:
    """With probability ``rate``, one to two random perturbations in a random order."""
    if rng.random() >= rate:
        return image
    count = 1 if rng.random() < 0.7 else 2
    for index in rng.choice(len(KINDS), size=count, replace=False):
        image = perturb(image, KINDS[int(index)], rng)
    return image
