"""An export behind the local TF Serving double, called the way real clients call TF Serving.

docs/tf-serving-compat.md §1.3-§1.5: row format in, ``predictions`` out; one output comes
back unnamed, several come back as one object per row; DT_STRING inputs take ``{"b64": ...}``.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import requests

from shixin_client._images import preprocess
from shixin_client._spec import (
    DEFAULT_MODEL_NAME,
    DEFAULT_SPEC,
    DESCRIBE_OUTPUTS,
    SIGNATURE_BYTES,
    SIGNATURE_DESCRIBE,
)
from shixin_client.server.testing import running_server


@pytest.fixture(scope="module")
def predict_url(exported: Path) -> Iterator[str]:
    with running_server(exported.parent, DEFAULT_MODEL_NAME) as server:
        yield f"{server.rest_url}/v1/models/{DEFAULT_MODEL_NAME}:predict"


def test_reference_client_works_unchanged(predict_url: str, tiny_model: Any, real_files: list[bytes]) -> None:
    """The reference project's client: float instances, then Keras' CTC decode of ``predictions``."""
    images = np.stack([preprocess(data) for data in real_files])
    reply = requests.post(predict_url, json={"instances": images.tolist()}, timeout=60)
    assert reply.status_code == 200, reply.text
    predictions = np.asarray(reply.json()["predictions"], dtype=np.float32)
    assert predictions.shape == (len(real_files), DEFAULT_SPEC.time_steps, DEFAULT_SPEC.num_classes)
    np.testing.assert_allclose(predictions, tiny_model(images).numpy(), atol=1e-5)
    lengths = np.full(len(real_files), DEFAULT_SPEC.time_steps)
    decoded, _ = keras.ops.ctc_decode(predictions, lengths, strategy="greedy")
    assert np.asarray(decoded).shape[1] == len(real_files)


def test_bytes_signature_takes_b64_files(predict_url: str, tiny_model: Any, real_files: list[bytes]) -> None:
    instances = [{"b64": base64.b64encode(data).decode()} for data in real_files]
    reply = requests.post(
        predict_url, json={"signature_name": SIGNATURE_BYTES, "instances": instances}, timeout=60
    )
    assert reply.status_code == 200, reply.text
    want = tiny_model(np.stack([preprocess(data) for data in real_files])).numpy()
    np.testing.assert_allclose(np.asarray(reply.json()["predictions"]), want, atol=1e-5)


def test_a_file_that_is_no_image_is_a_400(predict_url: str) -> None:
    instances = [{"b64": base64.b64encode(b"no image").decode()}]
    reply = requests.post(
        predict_url, json={"signature_name": SIGNATURE_BYTES, "instances": instances}, timeout=60
    )
    assert reply.status_code == 400
    assert "error" in reply.json()


def test_describe_rows_are_objects_with_every_fact(predict_url: str) -> None:
    reply = requests.post(
        predict_url, json={"signature_name": SIGNATURE_DESCRIBE, "instances": [0]}, timeout=60
    )
    assert reply.status_code == 200, reply.text
    (row,) = reply.json()["predictions"]
    assert row == {name: getattr(DEFAULT_SPEC, name) for name in DESCRIBE_OUTPUTS}
