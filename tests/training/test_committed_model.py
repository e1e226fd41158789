"""The committed model: it reads the real site captchas (datasets/real), raw and binarized, on every path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from shixin_client import ShixinClient, decode_softmax
from shixin_client._images import preprocess

REPO = Path(__file__).resolve().parents[2]
KERAS_MODEL = REPO / "models" / "shixin.keras"
EXPORT = REPO / "models" / "shixin" / "1"


def test_committed_files_are_there_and_small():
    assert KERAS_MODEL.stat().st_size <= 8 * 1024 * 1024
    assert (EXPORT / "saved_model.pb").is_file()
    assert (EXPORT / "assets.extra" / "tf_serving_warmup_requests").is_file()
    report = json.loads((REPO / "models" / "report.json").read_text())
    assert report["count"] >= 10_000
    assert all(r["ok"] for r in report["real_samples"])


def test_keras_model_reads_every_shared_real_sample(real_samples):
    import keras

    model = keras.models.load_model(KERAS_MODEL)
    batch = np.stack([preprocess(path) for path, _ in real_samples])
    texts = [p.text for p in decode_softmax(model.predict(batch, verbose=0), ShixinClient.local().get_spec())]
    assert texts == [label for _, label in real_samples]


def test_embedded_default_reads_every_shared_real_sample_and_the_examples(real_samples):
    with ShixinClient.local() as client:
        labels = [label for _, label in real_samples]
        assert client.recognize_many([path for path, _ in real_samples]) == labels
        examples = sorted((REPO / "examples" / "captchas").glob("*.png"))
        assert client.recognize_many(examples) == [p.name.split("_")[0] for p in examples]


def test_embedded_default_gives_the_savedmodels_strings_on_1000_generated_captchas():
    """The light runtime may replace TensorFlow only if the strings agree,
    with the shipped int8 companion in front of the float model as users get it."""
    import tensorflow as tf

    from shixin_client._spec import INPUT_BYTES, OUTPUT_SOFTMAX, SIGNATURE_BYTES
    from training.generator import generate, png_bytes
    from training.train import TEST_SEED

    files = [png_bytes(c) for c in generate(TEST_SEED, 1000)]
    serve = tf.saved_model.load(str(EXPORT)).signatures[SIGNATURE_BYTES]
    with ShixinClient.local() as client:
        spec = client.get_spec()
        saved = []
        for start in range(0, len(files), 200):
            chunk = tf.constant(files[start : start + 200])
            softmax = serve(**{INPUT_BYTES: chunk})[OUTPUT_SOFTMAX].numpy()
            saved += [p.text for p in decode_softmax(softmax, spec)]
        embedded = [p.text for p in client.predict_many(files, batch_size=200)]
        transport = client._shared.transport
    assert embedded == saved
    # The int8 companion read most of them; the float model only those it was unsure of.
    assert transport.int8_rows + transport.float_rows == len(files)
    assert transport.int8_rows >= 0.85 * len(files)
