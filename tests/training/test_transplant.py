"""A new sequence head on a trained CNN: weight copying, the head-only model, and the CLI."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from shixin_client._spec import NUM_CLASSES, TIME_STEPS
from training import model as model_module
from training import train, transplant
from training.model import FEATURES_LAYER, LOGITS_LAYER, PRESETS, Preset, build_model

TINY_GRU = Preset(conv_filters=(2, 2, 2), gru_units=4, projection=8, dropout=0.0)
#: Its logits read 2 x 3 = 6 features, as TINY_CONV's do: same name, same shape, still a head layer.
TINY_GRU_AS_WIDE = Preset(conv_filters=(2, 2, 2), gru_units=3, projection=8, dropout=0.0)
TINY_CONV = Preset(conv_filters=(2, 2, 2), projection=8, dropout=0.0, temporal_convs=((6, 3, 1), (6, 3, 2)))
CNN_LAYERS = ["conv1", "bn1", "conv2", "bn2", "conv3", "bn3", FEATURES_LAYER]


def assert_same_cnn(got_model, want_model) -> None:  # type: ignore[no-untyped-def]
    for name in CNN_LAYERS:
        got, want = got_model.get_layer(name).get_weights(), want_model.get_layer(name).get_weights()
        for got_weight, want_weight in zip(got, want, strict=True):
            np.testing.assert_array_equal(got_weight, want_weight)


def test_a_preset_has_exactly_one_head() -> None:
    with pytest.raises(ValueError, match="either gru_units or temporal_convs"):
        Preset(conv_filters=(2, 2, 2), projection=8, dropout=0.0)
    with pytest.raises(ValueError, match="either gru_units or temporal_convs"):
        Preset(conv_filters=(2, 2, 2), projection=8, dropout=0.0, gru_units=4, temporal_convs=((4, 3, 1),))


def test_the_default_preset_has_no_recurrent_layer_and_the_same_io() -> None:
    model = build_model("default")
    assert model.output_shape == (None, TIME_STEPS, NUM_CLASSES)
    assert not [layer for layer in model.layers if "gru" in layer.name]
    dilations = [layer.dilation_rate for layer in model.layers if layer.name.startswith("tconv")]
    assert dilations == [(1,), (2,), (4,)]


def test_only_same_named_same_shaped_layers_are_copied() -> None:
    keras.utils.set_random_seed(0)
    source, target = build_model(TINY_GRU), build_model(TINY_CONV)
    # The GRU head's logits read 2 x 4 features, the conv head's 6: not copied.
    assert transplant.copy_matching_weights(source, target) == CNN_LAYERS
    assert transplant.copy_matching_weights(source, target, skip={"conv1", "bn1"}) == CNN_LAYERS[2:]
    assert_same_cnn(target, source)


def test_the_head_model_is_the_full_model_after_the_features() -> None:
    keras.utils.set_random_seed(1)
    full = build_model(TINY_CONV)
    head = transplant.head_model(TINY_CONV, 8)
    head.set_weights([w + 0.1 for w in head.get_weights()])
    assert transplant.copy_matching_weights(head, full) == ["tconv1", "tconv2", LOGITS_LAYER]
    images = np.random.default_rng(0).integers(0, 2, size=(3, 70, 160, 1)).astype(np.float32)
    feats = transplant.features(full, images)
    assert feats.dtype == np.float16 and feats.shape == (3, TIME_STEPS, 8)
    np.testing.assert_allclose(transplant.features(full, images, chunk=2), feats, rtol=2e-3, atol=1e-3)
    logits = keras.Model(full.input, full.get_layer(LOGITS_LAYER).output).predict(images, verbose=0)
    np.testing.assert_allclose(head.predict(feats.astype(np.float32), verbose=0), logits, atol=2e-2)


def test_cli_trains_a_head_that_train_resumes_end_to_end(tmp_path, monkeypatch) -> None:
    monkeypatch.setitem(model_module.PRESETS, "tinyconv", TINY_CONV)
    keras.utils.set_random_seed(0)
    source = build_model(TINY_GRU_AS_WIDE)
    source_path = tmp_path / "source.keras"
    source.save(source_path)
    out = tmp_path / "run"
    args = [str(source_path), "--preset", "tinyconv", "--out", str(out), "--seed", "5",
            "--train-size", "64", "--val-size", "8", "--epochs", "2", "--decay-from", "1",
            "--batch-size", "32", "--workers", "1"]  # fmt: skip
    assert transplant.main(args) == 0
    report = json.loads((out / "transplant.json").read_text())
    assert report["copied"] == CNN_LAYERS  # not the equally shaped logits: the head starts fresh
    assert [row["epoch"] for row in report["history"]] == [1, 2]
    assert report["history"][1]["loss"] < report["history"][0]["loss"]
    assert json.loads((out / "state.json").read_text())["epoch"] == 0
    moved = keras.models.load_model(out / "last.keras")
    assert_same_cnn(moved, source)
    # The whole network then trains on from the transplanted checkpoint.
    resume = ["--out", str(out), "--train-size", "64", "--val-size", "8", "--test-size", "8", "--epochs", "1",
              "--batch-size", "32", "--workers", "1", "--resume", "--preset", "tinyconv"]  # fmt: skip
    assert train.main(resume) == 0
    assert json.loads((out / "state.json").read_text())["epoch"] == 1


@pytest.mark.parametrize("seed", ["900001", "900002"])
def test_cli_refuses_the_validation_and_test_seeds(seed, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        transplant.parse_args(["m.keras", "--out", str(tmp_path), "--seed", seed])
    assert "validation or test seed" in capsys.readouterr().err


def test_every_named_preset_is_offered() -> None:
    args = transplant.parse_args(["m.keras", "--out", "x", "--seed", "3", "--preset", "gru"])
    assert args.preset == "gru"
    assert set(PRESETS) >= {"seed", "default", "gru"}
