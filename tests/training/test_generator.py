"""The captcha generator: determinism, labels, layout and the CLI's files."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from shixin_client._spec import CHARSET, LABEL_LENGTH
from training import generate as generate_cli
from training.generator import captcha_at, generate, png_bytes, render_captcha
from training.style import site_style

STYLE = site_style()
FAMILIES = STYLE.family_names


def test_same_seed_same_images_and_independent_of_position():
    first = [png_bytes(c) for c in generate(seed=5, count=6)]
    again = [png_bytes(c) for c in generate(seed=5, count=6)]
    assert first == again
    # Image i depends only on (seed, i): a worker starting at 3 renders the same pictures.
    assert [png_bytes(c) for c in generate(seed=5, count=3, start=3)] == first[3:]
    assert png_bytes(captcha_at(6, 0)) != first[0]


def test_labels_are_four_lowercase_model_classes_and_text_is_mixed_case():
    captchas = list(generate(seed=11, count=200))
    for captcha in captchas:
        assert len(captcha.label) == LABEL_LENGTH
        assert captcha.label == captcha.text.lower()
        assert set(captcha.label) <= set(CHARSET)
        assert captcha.family in FAMILIES
    texts = "".join(c.text for c in captchas)
    assert any(ch.isupper() for ch in texts) and any(ch.islower() for ch in texts)
    assert {c.family for c in captchas} == set(FAMILIES)


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_renders_an_opaque_160x70_picture_with_ink_in_the_text_band(family):
    captcha = render_captcha(np.random.default_rng(3), text="3a3B", family=family, wide=False)
    pixels = np.asarray(captcha.image)
    assert captcha.image.mode == "RGBA" and captcha.image.size == (STYLE.width, STYLE.height) == (160, 70)
    assert (pixels[:, :, 3] == 255).all()  # like the site's PNGs: RGBA, fully opaque
    ink = np.argwhere(pixels[:, :, :3].min(axis=2) < 200)
    assert len(ink) > 500
    top, left = ink.min(axis=0)
    bottom, right = ink.max(axis=0)
    assert 0 <= left < 30 and right > 120  # four glyphs spread across the width (BestFit)
    assert bottom - top > 25


def test_given_text_is_drawn_and_unknown_family_is_refused():
    assert render_captcha(np.random.default_rng(0), text="347H").label == "347h"
    with pytest.raises(ValueError, match="unknown filter family 'blur'"):
        render_captcha(np.random.default_rng(0), family="blur")


def test_cli_writes_reference_named_files(tmp_path):
    assert generate_cli.main(["--out", str(tmp_path), "--count", "5", "--seed", "2"]) == 0
    files = sorted(tmp_path.iterdir())
    assert len(files) == 5
    for path in files:
        match = re.fullmatch(r"([0-9a-z]{4})_([0-9a-f]{32})\.png", path.name)
        assert match, path.name
        assert hashlib.md5(path.read_bytes()).hexdigest() == match.group(2)
    expected = sorted(c.label for c in generate(seed=2, count=5))
    assert sorted(p.name[:4] for p in files) == expected


def test_each_captcha_says_which_mode_drew_it_and_the_modes_are_mixed():
    assert render_captcha(np.random.default_rng(1), wide=True).wide
    assert not render_captcha(np.random.default_rng(1), wide=False).wide
    modes = [c.wide for c in generate(seed=12, count=100)]
    assert 25 < sum(modes) < 75
