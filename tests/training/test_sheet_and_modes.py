"""The comparison and misread sheets, and evaluating one generator mode alone."""

from __future__ import annotations

import keras
import pytest

from training import evaluate, sheet
from training.dataset import render
from training.model import Preset, build_model

TINY = Preset(conv_filters=(2, 2, 2), gru_units=4, projection=8, dropout=0.0)


def test_forcing_a_mode_draws_only_that_mode_and_none_keeps_the_mixed_stream() -> None:
    assert render(5, 0, 6, wide=False).wide == [False] * 6
    assert render(5, 0, 6, wide=True).wide == [True] * 6
    mixed, default = render(5, 0, 6, wide=None), render(5, 0, 6)
    assert mixed.texts == default.texts and (mixed.images == default.images).all()


def test_comparison_sheet_hides_both_real_samples_among_generated_ones() -> None:
    picture, key = sheet.build_sheet(2024, evaluate.REAL_SAMPLES / "origin")
    assert len(key) == sheet.COLUMNS * sheet.ROWS
    assert sum(line.split(": ", 1)[1].startswith("real") for line in key) == 2
    assert picture.size == (
        sheet.COLUMNS * (160 + sheet.PAD) + sheet.PAD,
        sheet.ROWS * (70 + sheet.PAD) + sheet.PAD,
    )


def test_misread_sheet_counts_and_tiles_what_the_model_gets_wrong() -> None:
    keras.utils.set_random_seed(0)
    picture, wrong = sheet.misread_sheet(build_model(TINY), seed=900_001, count=6, workers=1)
    assert wrong == 6  # an untrained model reads nothing right
    rows = -(-6 // sheet.MISREAD_COLUMNS)
    assert picture.size[1] == rows * (70 + sheet.CAPTION + sheet.PAD) + sheet.PAD


@pytest.mark.parametrize("mode", ["faithful", "wide"])
def test_evaluate_one_mode_reports_it(mode: str) -> None:
    keras.utils.set_random_seed(0)
    report = evaluate.evaluate(build_model(TINY), seed=900_002, count=4, workers=1, mode=mode)
    assert report["mode"] == mode and report["alphabet"] is None
    assert list(report["by_mode"]) == [mode]


def test_evaluate_records_the_alphabet_it_read_with() -> None:
    # What an alphabet does to decoding is tested in tests/test_decode.py.
    keras.utils.set_random_seed(0)
    report = evaluate.evaluate(build_model(TINY), seed=900_002, count=4, workers=1, alphabet="abc")
    assert report["alphabet"] == "abc"
