"""One input-sensitive model, served once per session, and an oracle that says what it reads.

The shipped network, untrained, reads the same text from every image, so "never a wrong
string" could not fail with it. These tests serve a tiny linear CTC model instead
(each of the 40 time steps sees its own 4 pixel columns) with random weights: every
captcha gets its own text, a swapped or shifted answer shows at once, and numpy can
compute the same softmax without TensorFlow. The oracle's text for one image alone is
the truth every result is compared to.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shixin_client import DEFAULT_SPEC, MockRequest, MockTransport, RequestRejectedError, ShixinClient
from shixin_client._decode import to_predictions
from shixin_client._images import preprocess
from shixin_client._models import ModelStatus, VersionStatus
from shixin_client._spec import INPUT_BYTES, INPUT_FLOAT, OUTPUT_SOFTMAX

MODEL_NAME = "shixin"
SPEC = DEFAULT_SPEC
COLUMNS_PER_STEP = SPEC.width // SPEC.time_steps
FEATURES = SPEC.height * COLUMNS_PER_STEP


@dataclass(frozen=True)
class Oracle:
    """The served model's weights, applied in numpy: the text any image should get."""

    kernel: np.ndarray  # [FEATURES, classes]
    bias: np.ndarray  # [classes]

    def softmax(self, batch: np.ndarray) -> np.ndarray:
        """[N, H, W, 1] in {0, 1} -> [N, T, C], laid out as the Keras model's Permute+Reshape."""
        steps = batch.transpose(0, 2, 1, 3).reshape(len(batch), SPEC.time_steps, FEATURES)
        logits = steps @ self.kernel + self.bias
        logits -= logits.max(axis=-1, keepdims=True)
        exp = np.exp(logits)
        return (exp / exp.sum(axis=-1, keepdims=True)).astype(np.float32)

    def texts(self, images: list[Any]) -> list[str]:
        batch = np.stack([preprocess(image) for image in images])
        return [p.text for p in to_predictions(self.softmax(batch), SPEC)]

    def text(self, image: Any) -> str:
        return self.texts([image])[0]

    def answer(self, request: MockRequest) -> Any:
        """A MockTransport handler that plays the served model for both image signatures."""
        if request.kind == "status":
            return ModelStatus(MODEL_NAME, (VersionStatus(1, "AVAILABLE"),))
        if INPUT_FLOAT in request.inputs:
            batch = request.inputs[INPUT_FLOAT]
        elif INPUT_BYTES in request.inputs:
            batch = np.stack([preprocess(bytes(data)) for data in request.inputs[INPUT_BYTES]])
        else:
            raise RequestRejectedError("no describe signature in the mock", code="INVALID_ARGUMENT")
        return {OUTPUT_SOFTMAX: self.softmax(batch)}


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    rng = np.random.default_rng(2024)
    kernel = rng.normal(0.0, 0.35, size=(FEATURES, SPEC.num_classes)).astype(np.float32)
    bias = np.zeros(SPEC.num_classes, dtype=np.float32)
    bias[SPEC.blank_index] = 2.0  # some blank frames, so texts have gaps as a real CTC output does
    return Oracle(kernel, bias)


@pytest.fixture(scope="session")
def captchas() -> list[bytes]:
    """Sixteen generated captchas as PNG files, all with different texts under the oracle."""
    from training.generator import generate, png_bytes

    return [png_bytes(captcha) for captcha in generate(seed=77, count=16)]


@pytest.fixture(scope="session")
def model_base(tmp_path_factory: pytest.TempPathFactory, oracle: Oracle) -> Path:
    """The oracle's weights as a Keras model, exported once with all three signatures."""
    keras = pytest.importorskip("keras")
    from keras import layers

    from export.saved_model import export_model

    image = keras.Input((SPEC.height, SPEC.width, 1), name=INPUT_FLOAT)
    steps = layers.Reshape((SPEC.time_steps, FEATURES))(layers.Permute((2, 1, 3))(image))
    logits = layers.Dense(SPEC.num_classes, name="logits")(steps)
    softmax = layers.Activation("softmax", name=OUTPUT_SOFTMAX)(logits)
    model = keras.Model(image, softmax)
    model.get_layer("logits").set_weights([oracle.kernel, oracle.bias])
    base = tmp_path_factory.mktemp("reliability_models")
    export_model(model, base, MODEL_NAME, version=1)
    return base / MODEL_NAME


@pytest.fixture(scope="session")
def server(model_base: Path) -> Iterator[Any]:
    """The project's dev server on free loopback ports, shared by the whole package."""
    from shixin_server.testing import running_server

    with running_server(model_base, MODEL_NAME) as running:
        yield running


@pytest.fixture(scope="session")
def server_urls(server: Any) -> dict[str, str]:
    return {"rest": server.rest_url, "grpc": f"grpc://{server.grpc_target}"}


@pytest.fixture
def mock_client(oracle: Oracle) -> Iterator[ShixinClient]:
    with ShixinClient(transport=MockTransport(oracle.answer)) as client:
        yield client


def png(picture: Any) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="session")
def to_png() -> Callable[[Any], bytes]:
    return png
