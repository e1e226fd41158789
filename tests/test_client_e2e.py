"""Both client twins against the project's own server and exported model, over REST and gRPC.

The contract test between the parallel pieces: export's three signatures, shixin_client.server's
wire behaviour and the client's codecs must agree end to end, and the texts must be
what decoding the Keras model's own softmax gives.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shixin_client import (
    DEFAULT_SPEC,
    AsyncShixinClient,
    ModelNotFoundError,
    RequestRejectedError,
    ShixinClient,
    decode_softmax,
)
from shixin_client._images import preprocess

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, real_samples: list[tuple[Path, str]]
) -> Iterator[dict[str, Any]]:
    keras = pytest.importorskip("keras")
    from export.saved_model import export_model
    from shixin_client.server.testing import running_server
    from training.model import build_model

    keras.utils.set_random_seed(3)
    model = build_model("default")
    base = tmp_path_factory.mktemp("models")
    export_model(model, base, "shixin", version=1)
    images = [path for path, _ in real_samples[:3]]
    softmax = np.asarray(model(np.stack([preprocess(p) for p in images]), training=False))
    expected = [p.text for p in decode_softmax(softmax, DEFAULT_SPEC)]
    with running_server(base / "shixin", "shixin") as server:
        yield {
            "urls": [server.rest_url, f"grpc://{server.grpc_target}"],
            "images": images,
            "expected": expected,
        }


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_sync_client_end_to_end(served: dict[str, Any], transport: str) -> None:
    url = served["urls"][transport == "grpc"]
    # The model is untrained and sure of nothing: min_confidence=0 reads every answer.
    with ShixinClient(url, min_confidence=0) as client:
        assert client.get_spec() == DEFAULT_SPEC  # from the model's describe signature
        assert client.recognize_many(served["images"]) == served["expected"]
        assert client.recognize_many(served["images"], payload="tensor") == served["expected"]
        assert client.status().ready and client.metadata().signature("serving_bytes") is not None
        with pytest.raises(ModelNotFoundError):
            client.recognize(served["images"][0], model="nope")
        with pytest.raises(ModelNotFoundError):
            client.recognize(served["images"][0], label="nope")
        with pytest.raises(RequestRejectedError):
            client.recognize(served["images"][0], signature="nope")


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_async_client_end_to_end(served: dict[str, Any], transport: str) -> None:
    url = served["urls"][transport == "grpc"]

    async def main() -> tuple[list[str], bool]:
        async with AsyncShixinClient(url, min_confidence=0) as client:
            return list(await client.recognize_many(served["images"])), await client.ready()

    assert asyncio.run(main()) == (served["expected"], True)
