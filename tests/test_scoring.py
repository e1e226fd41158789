"""The accuracy definition ``shixin score`` and ``training.evaluate`` share (shixin_client._scoring)."""

from __future__ import annotations

import pytest

from shixin_client import InvalidInputError
from shixin_client._scoring import Score, label_of, score


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("347H_9ac6e754789304e38f8729f499b25c0e.jpg", "347h"),
        ("/data/real/origin/3A3B_65ef.png", "3a3b"),
        ("ab12_x_y.png", "ab12"),  # the label ends at the first underscore
        ("dir_with_underscores/cd34_1.png", "cd34"),  # folders play no part
    ],
)
def test_label_is_the_lowercased_name_before_the_first_underscore(path: str, label: str) -> None:
    assert label_of(path) == label


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("captcha.png", "file name carries no label"),
        ("_abcd.png", "file name carries no label"),
        ("a b_1.png", "label 'a b' before '_' is not letters and digits"),
        ("验证_1.png", "is not letters and digits"),
    ],
)
def test_unlabelled_names_are_refused_by_name(path: str, problem: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        label_of(path)
    assert info.value.input == repr(path) and problem in info.value.problem


def test_exact_match_and_characters_ignore_case_and_count_only_same_length_readings() -> None:
    result = score([("ab12", "AB12"), ("cd34", "cd35"), ("ef56", "ef5"), ("gh78", "")])
    assert (result.readings, result.exact, result.characters, result.characters_right) == (4, 1, 16, 7)
    assert result.exact_match == 0.25 and result.char_accuracy == 7 / 16
    assert result.confusions == {("4", "5"): 1, ("ef56", "ef5"): 1, ("gh78", "<empty>"): 1}


def test_nothing_scored_is_zero_not_a_division_error() -> None:
    assert score([]) == Score(0, 0, 0, 0)
    assert (score([]).exact_match, score([]).char_accuracy) == (0.0, 0.0)
