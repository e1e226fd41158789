"""Model soup: averaged weights, the architecture check, selection by validation and the CLI."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from training import average
from training.model import Preset, build_model

TINY = Preset(conv_filters=(2, 2, 2), gru_units=4, projection=8, dropout=0.0)


def test_average_is_the_elementwise_mean() -> None:
    a = [np.array([1.0, 2.0]), np.full((2, 2), 4.0)]
    b = [np.array([3.0, 6.0]), np.zeros((2, 2))]
    mean = average.average_weights([a, b], ["a", "b"])
    np.testing.assert_array_equal(mean[0], [2.0, 4.0])
    np.testing.assert_array_equal(mean[1], np.full((2, 2), 2.0))


def test_a_different_architecture_is_named() -> None:
    with pytest.raises(ValueError, match="b.keras does not have the architecture of a.keras"):
        average.average_weights([[np.zeros(2)], [np.zeros(3)]], ["a.keras", "b.keras"])


def test_soup_holds_the_mean_and_still_predicts() -> None:
    keras.utils.set_random_seed(0)
    models = {"a": build_model(TINY), "b": build_model(TINY)}
    mixed = average.soup(models)
    a_weights, b_weights = models["a"].get_weights(), models["b"].get_weights()
    for got, a, b in zip(mixed.get_weights(), a_weights, b_weights, strict=True):
        np.testing.assert_allclose(got, (a + b) / 2, rtol=1e-6)
    probs = mixed.predict(np.zeros((1, 70, 160, 1), np.float32), verbose=0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


def test_choose_keeps_the_best_and_the_first_on_a_tie() -> None:
    scores = {"x": 0.5, "y": 0.9, "z": 0.9}
    assert average.choose(scores, lambda s: s) == ("y", scores)


def test_cli_saves_the_best_candidate(tmp_path, capsys) -> None:
    keras.utils.set_random_seed(0)
    paths = []
    for i in range(2):
        model = build_model(TINY)
        path = tmp_path / f"m{i}.keras"
        model.save(path)
        paths.append(path)
    out = tmp_path / "soup.keras"
    assert average.main([str(p) for p in paths] + ["--out", str(out), "--count", "8", "--workers", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["selection_exact_match"]) == {str(paths[0]), str(paths[1]), "average"}
    chosen = keras.models.load_model(out)
    source = keras.models.load_model(paths[0]) if report["chosen"] == str(paths[0]) else None
    if source is not None:
        for got, want in zip(chosen.get_weights(), source.get_weights(), strict=True):
            np.testing.assert_array_equal(got, want)
    assert chosen.output_shape == build_model(TINY).output_shape
