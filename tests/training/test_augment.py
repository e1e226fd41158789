"""Training-time perturbations: deterministic, label-preserving, and invisible to the test set."""

from __future__ import annotations

import numpy as np
import pytest

from training.augment import KINDS, augment, perturb
from training.dataset import render, render_parallel
from training.generator import captcha_at
from training.style import site_style

WIDTH, HEIGHT = site_style().width, site_style().height


@pytest.mark.parametrize("kind", KINDS)
def test_each_perturbation_changes_the_picture_and_keeps_it_readable_size(kind):
    image = captcha_at(3, 0).image
    out = perturb(image, kind, np.random.default_rng(0))
    assert out.mode == "RGB"
    if kind == "resize":
        assert out.size != (WIDTH, HEIGHT) and abs(out.width / out.height - WIDTH / HEIGHT) < 0.05
    else:
        assert out.size == (WIDTH, HEIGHT)
    assert not np.array_equal(np.asarray(out), np.asarray(image.convert("RGB")))


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="unknown perturbation 'smear'"):
        perturb(captcha_at(3, 0).image, "smear", np.random.default_rng(0))


def test_rate_bounds_how_many_images_change():
    image = captcha_at(3, 1).image
    rng = np.random.default_rng(1)
    assert all(augment(image, rng, rate=0.0) is image for _ in range(20))
    changed = sum(augment(image, rng, rate=0.5) is not image for _ in range(400))
    assert 150 < changed < 250


def test_augmented_render_is_deterministic_keeps_labels_and_leaves_plain_images_alone():
    plain = render(7, 10, 40)
    augmented = render(7, 10, 40, augment=True)
    assert np.array_equal(render(7, 10, 40, augment=True).images, augmented.images)
    assert augmented.texts == plain.texts and np.array_equal(augmented.labels, plain.labels)
    changed = (augmented.images != plain.images).any(axis=(1, 2, 3))
    assert 0 < changed.sum() < len(changed)
    # Validation and test sets never pass augment=True, so their images are what they were.
    assert np.array_equal(render_parallel(7, 40, workers=1, start=10).images, plain.images)
    assert np.array_equal(render_parallel(7, 40, workers=1, start=10, augment=True).images, augmented.images)
