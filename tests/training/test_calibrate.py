"""The reject option's calibration: the threshold rule, the README section, the not-captchas."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from shixin_client import Prediction, ShixinClient
from shixin_client._config import DEFAULT_MIN_CONFIDENCE
from training.calibrate import (
    NOT_CAPTCHAS,
    README,
    SECTION,
    TARGET_ERROR,
    Readings,
    choose,
    section,
    with_section,
)
from training.generator import captcha_at
from training.train import TEST_SEED


def _reading(text: str, confidence: float) -> Prediction:
    return Prediction(text, confidence, (confidence,))


def _validation(wrong_confidences: list[float], right: int = 10_000) -> Readings:
    """``right`` confident right readings and one wrong reading at each confidence given."""
    predictions = [_reading("abcd", 0.999)] * right + [_reading("abce", c) for c in wrong_confidences]
    return Readings("validation", predictions, ["abcd"] * len(predictions))


def test_choose_takes_the_smallest_threshold_that_meets_the_error_target() -> None:
    # 10,000 right and 10 wrong: 0.1% error, twice the target, until the wrong ones at 0.5 go.
    validation = _validation([0.2] * 5 + [0.6] * 5)
    assert validation.error(0.0) > TARGET_ERROR
    assert choose(validation, []) == 0.21
    assert validation.error(0.21) <= TARGET_ERROR and validation.rejected(0.21) == pytest.approx(5 / 10_010)


def test_choose_also_rejects_every_validation_not_captcha() -> None:
    noise = Readings("noise", [_reading("ssss", 0.74), None])  # None: refused before the model
    assert choose(_validation([]), [noise]) == 0.75
    assert noise.rejected(0.75) == 1.0 and noise.rejected(0.74) == 0.5
    confident_noise = Readings("noise", [_reading("ssss", 0.995)])
    assert choose(_validation([]), [confident_noise]) is None


def test_the_section_replaces_only_its_own_part_of_the_readme() -> None:
    validation = _validation([0.2])
    lines = section([validation], [Readings("noise", [_reading("ssss", 0.1)])], 0.21, 0.21)
    assert lines[0] == SECTION and "That is **0.21**, the SDK's default" in "\n".join(lines)
    readme = "# Model\n\n## Accuracy\n\ntext\n\n## Train\n\nsteps\n"
    once = with_section(readme, lines)
    assert once.index("## Accuracy") < once.index(SECTION) < once.index("## Train")
    assert with_section(once, lines) == once
    assert "steps" in once and "text" in once


def test_the_committed_table_is_for_the_sdks_default() -> None:
    text = README.read_text()
    assert SECTION in text, "run python -m training.calibrate"
    part = text[text.index(SECTION) :]
    assert re.search(rf"\| \*\*{DEFAULT_MIN_CONFIDENCE:.2f}\*\* \|", part), "table is for another default"


@pytest.mark.parametrize("kind", sorted(NOT_CAPTCHAS))
def test_the_embedded_default_rejects_inputs_that_are_not_site_captchas(kind: str) -> None:
    pytest.importorskip("ai_edge_litert")
    rng = np.random.default_rng(7)
    images = [NOT_CAPTCHAS[kind](captcha_at(TEST_SEED, i, wide=False).image, rng) for i in range(12)]
    with ShixinClient.local() as client:
        results = client.recognize_many(images, return_exceptions=True)
    accepted = [r for r in results if isinstance(r, str)]
    assert accepted == [], f"{kind}: accepted {accepted}"


def test_readings_of_a_folder_carry_their_labels(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert")
    from training.calibrate import read_folder
    from training.generator import png_bytes

    captcha = captcha_at(TEST_SEED, 0, wide=False)
    (tmp_path / f"{captcha.text}_0.png").write_bytes(png_bytes(captcha))
    with ShixinClient.local() as client:
        readings = read_folder(client, "one", tmp_path)
    assert readings.labels == [captcha.text.lower()] and readings.error(0.0) == 0.0


def test_meets_targets_names_the_thresholds_that_meet_both_or_says_none_does() -> None:
    from training.calibrate import meets_targets

    clean = _validation([0.3])  # 1 wrong in 10,001: 0.01% error until 0.31, no rejection
    hopeless = Readings("hard", _validation([0.999] * 10).predictions, _validation([0.999] * 10).labels)
    sentence = meets_targets([clean, hopeless])  # hopeless: 0.1% error no threshold under 1 removes
    assert "validation: 0.01-0.99; hard: no threshold." in sentence
