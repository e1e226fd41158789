"""Model presets: the seed preset is the reference network, the default is compact."""

from __future__ import annotations

import numpy as np
import pytest

from shixin_client._spec import DEFAULT_SPEC, INPUT_FLOAT, NUM_CLASSES, OUTPUT_SOFTMAX, TIME_STEPS
from training.model import build_model, logits_model


@pytest.mark.parametrize(
    ("preset", "params"),
    [("seed", 6_739_877), ("default", None), ("gru", None)],
)
def test_presets_shapes_and_parameter_counts(preset, params):
    model = build_model(preset)
    assert model.input_shape == (None, DEFAULT_SPEC.height, DEFAULT_SPEC.width, 1)
    assert model.output_shape == (None, TIME_STEPS, NUM_CLASSES)
    assert model.inputs[0].name.startswith(INPUT_FLOAT)
    assert model.layers[-1].name == OUTPUT_SOFTMAX
    if params is not None:
        assert model.count_params() == params  # reference-model-and-data.md: 6,739,877
    else:  # compact: a float32 file well inside the 8 MB budget
        assert model.count_params() < 6_739_877 / 7


def test_softmax_rows_sum_to_one_and_logits_share_weights():
    model = build_model("default")
    x = np.random.default_rng(0).integers(0, 2, size=(2, 70, 160, 1)).astype(np.float32)
    probs = model.predict(x, verbose=0)
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    logits = logits_model(model).predict(x, verbose=0)
    exp = np.exp(logits - logits.max(-1, keepdims=True))
    np.testing.assert_allclose(exp / exp.sum(-1, keepdims=True), probs, atol=1e-5)
