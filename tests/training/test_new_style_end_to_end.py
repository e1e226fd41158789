"""A new captcha style from file to client: train, fine-tune, export, serve and read, no code change.

Five characters over another alphabet at another size: a style file is all it takes to
train a model for it; the SavedModel's ``describe`` signature tells the client the spec, and
the embedded model's ``spec.json`` tells the local runtime, so neither client changes.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from shixin_client import ShixinClient, decode_softmax, preprocess
from training import finetune, generate, train
from training.model import PRESETS, Preset
from training.style import load_style

pytestmark = pytest.mark.slow

#: Small enough to train and export in seconds, with the shipped preset's kinds of layers.
TINY = Preset(conv_filters=(4, 4, 4), projection=16, dropout=0.0, temporal_convs=((16, 3, 1),))
FIVE = {
    "extends": "site",
    "name": "five",
    "width": 120,
    "height": 48,
    "label_length": 5,
    "charset": "ABCDEFGH2345",
    "model_charset": "abcdefgh2345",
    "modes": {"faithful": {"font_size": 28}, "wide": {"font_size": 26, "extra_chars": ""}},
}


def test_a_five_character_style_is_trained_exported_served_and_read_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keras = pytest.importorskip("keras")
    from shixin_client.server.testing import running_server

    monkeypatch.setitem(PRESETS, "tiny", TINY)
    style_path = tmp_path / "five.json"
    style_path.write_text(json.dumps(FIVE))
    spec = load_style(style_path).spec
    assert (spec.charset, spec.label_length, spec.time_steps) == ("abcdefgh2345", 5, 30)

    run, labelled, tuned = tmp_path / "run", tmp_path / "labelled", tmp_path / "tuned"
    assert train.main(["--preset", "tiny", "--style", str(style_path), "--out", str(run),
                       "--train-size", "32", "--val-size", "8", "--test-size", "8", "--epochs", "1",
                       "--batch-size", "16", "--workers", "1", "--lr", "1e-2"]) == 0  # fmt: skip
    assert (
        generate.main(["--style", str(style_path), "--out", str(labelled), "--count", "12", "--seed", "5"])
        == 0
    )
    assert finetune.main([str(labelled), "--model", str(run / "best.keras"), "--style", str(style_path),
                          "--out", str(tuned), "--epochs", "1", "--batch-size", "4", "--export",
                          "--name", "five"]) == 0  # fmt: skip

    images = sorted(labelled.iterdir())[:4]
    model = keras.models.load_model(tuned / "finetuned.keras")
    softmax = model.predict(np.stack([preprocess(path, spec) for path in images]), verbose=0)
    expected = [p.text for p in decode_softmax(softmax, spec)]

    def check(client: ShixinClient) -> None:
        assert client.get_spec() == spec
        predictions = client.predict_many(images, with_softmax=True)
        assert [p.text for p in predictions] == expected
        for prediction, keras_softmax in zip(predictions, softmax, strict=True):
            assert prediction.softmax is not None and prediction.softmax.shape == (30, 13)
            np.testing.assert_allclose(prediction.softmax, keras_softmax, atol=1e-4)

    with running_server(tuned / "models" / "five", "five") as server:
        for url in (server.rest_url, f"grpc://{server.grpc_target}"):
            with ShixinClient(url, model="five") as client:
                check(client)
    pytest.importorskip("ai_edge_litert")
    with ShixinClient.local(tuned / "embedded" / "five.tflite") as local:
        check(local)
