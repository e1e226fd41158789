"""``assets.extra/tf_serving_warmup_requests``: requests TF Serving replays before it serves.

TF Serving (``--enable_model_warmup``, on by default) reads this TFRecord file of
``PredictionLog`` protos when it loads a version and runs each request once, so the
first real request does not pay for graph tracing and memory allocation. One request
per serving signature, each with a small real batch, covers every path a client uses.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf
from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2

from shixin_client._images import preprocess
from shixin_client._spec import (
    DEFAULT_SPEC,
    INPUT_BYTES,
    INPUT_DESCRIBE,
    INPUT_FLOAT,
    SIGNATURE_BYTES,
    SIGNATURE_DESCRIBE,
    SIGNATURE_FLOAT,
    CaptchaSpec,
)

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"


def warmup_requests(
    samples: Sequence[bytes], model_name: str, spec: CaptchaSpec = DEFAULT_SPEC
) -> list[prediction_log_pb2.PredictionLog]:
    """One PredictionLog per signature, all built from the same encoded sample files."""
    if not samples:
        raise ValueError("warm-up needs at least one sample image")
    floats = np.stack([preprocess(data, spec) for data in samples])
    inputs = {
        SIGNATURE_FLOAT: {INPUT_FLOAT: tf.make_tensor_proto(floats, dtype=tf.float32)},
        SIGNATURE_BYTES: {INPUT_BYTES: tf.make_tensor_proto(list(samples), dtype=tf.string)},
        SIGNATURE_DESCRIBE: {INPUT_DESCRIBE: tf.make_tensor_proto([0], dtype=tf.int32)},
    }
    logs = []
    for signature, tensors in inputs.items():
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature)
        )
        for key, proto in tensors.items():
            request.inputs[key].CopyFrom(proto)
        logs.append(
            prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
        )
    return logs


def write_warmup(
    version_dir: Path, samples: Sequence[bytes], model_name: str, spec: CaptchaSpec = DEFAULT_SPEC
) -> Path:
    path = version_dir / WARMUP_DIR / WARMUP_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in warmup_requests(samples, model_name, spec):
            writer.write(log.SerializeToString())
    return path


def read_warmup(version_dir: Path) -> list[prediction_log_pb2.PredictionLog]:
    """The warm-up records as TF Serving parses them."""
    path = version_dir / WARMUP_DIR / WARMUP_FILE
    return [
        prediction_log_pb2.PredictionLog.FromString(record.numpy())
        for record in tf.data.TFRecordDataset(str(path))
    ]
