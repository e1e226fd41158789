"""assets.extra/tf_serving_warmup_requests: TFRecord PredictionLogs that TF Serving replays on load."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import prediction_log_pb2

from export.warmup import WARMUP_DIR, WARMUP_FILE, read_warmup, warmup_requests
from shixin_client._images import preprocess
from shixin_client._spec import (
    DEFAULT_MODEL_NAME,
    DEFAULT_SPEC,
    INPUT_BYTES,
    INPUT_DESCRIBE,
    INPUT_FLOAT,
    SIGNATURE_BYTES,
    SIGNATURE_DESCRIBE,
    SIGNATURE_FLOAT,
)


def test_warmup_file_holds_one_predict_log_per_signature(exported: Path, real_files: list[bytes]) -> None:
    path = exported / WARMUP_DIR / WARMUP_FILE
    assert path.is_file()
    raw = [record.numpy() for record in tf.data.TFRecordDataset(str(path))]
    logs = [prediction_log_pb2.PredictionLog.FromString(record) for record in raw]
    assert [log.WhichOneof("log_type") for log in logs] == ["predict_log"] * 3
    requests = {log.predict_log.request.model_spec.signature_name: log.predict_log.request for log in logs}
    assert set(requests) == {SIGNATURE_FLOAT, SIGNATURE_BYTES, SIGNATURE_DESCRIBE}
    assert {r.model_spec.name for r in requests.values()} == {DEFAULT_MODEL_NAME}

    samples = real_files[:2]
    floats = tf.make_ndarray(requests[SIGNATURE_FLOAT].inputs[INPUT_FLOAT])
    assert floats.dtype == np.float32 and floats.shape == (2, DEFAULT_SPEC.height, DEFAULT_SPEC.width, 1)
    np.testing.assert_array_equal(floats, np.stack([preprocess(data) for data in samples]))
    assert list(tf.make_ndarray(requests[SIGNATURE_BYTES].inputs[INPUT_BYTES])) == samples
    assert tf.make_ndarray(requests[SIGNATURE_DESCRIBE].inputs[INPUT_DESCRIBE]).tolist() == [0]


def test_every_warmup_request_runs_on_the_export(exported: Path, loaded: Any) -> None:
    for log in read_warmup(exported):
        request = log.predict_log.request
        function = loaded.signatures[request.model_spec.signature_name]
        inputs = {key: tf.constant(tf.make_ndarray(proto)) for key, proto in request.inputs.items()}
        assert set(inputs) == set(function.structured_input_signature[1])
        outputs = function(**inputs)
        assert all(tensor.shape[0] == next(iter(inputs.values())).shape[0] for tensor in outputs.values())


def test_warmup_needs_samples() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        warmup_requests([], DEFAULT_MODEL_NAME)
