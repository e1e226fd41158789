"""The SDK against a server started outside the tests: the real TF Serving, by serving/e2e.sh.

Skipped unless ``SHIXIN_E2E_REST`` (a REST URL) and/or ``SHIXIN_E2E_GRPC`` (``HOST:PORT``) name
the server under test. It must serve the model ``shixin`` from the export base path
``SHIXIN_E2E_MODEL_BASE_PATH`` (default: this checkout's ``models/shixin``), which these tests
also run in-process as the reference. ``SHIXIN_E2E_LABELS`` (comma-separated) lists version
labels the server must resolve. tests/test_tf_serving_e2e.py runs this module against the local
server, so it is known to pass there before it meets TF Serving.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shixin_client import (
    DEFAULT_SPEC,
    AsyncShixinClient,
    ModelNotFoundError,
    RequestRejectedError,
    ShixinClient,
    preprocess,
)
from shixin_client._spec import (
    DEFAULT_MODEL_NAME,
    INPUT_FLOAT,
    OUTPUT_SOFTMAX,
    SIGNATURE_BYTES,
    SIGNATURE_DESCRIBE,
    SIGNATURE_FLOAT,
)

REPO = Path(__file__).resolve().parents[1]
REST = os.environ.get("SHIXIN_E2E_REST", "")
GRPC = os.environ.get("SHIXIN_E2E_GRPC", "")
MODEL_BASE_PATH = Path(os.environ.get("SHIXIN_E2E_MODEL_BASE_PATH") or REPO / "models" / DEFAULT_MODEL_NAME)
LABELS = [label for label in os.environ.get("SHIXIN_E2E_LABELS", "").split(",") if label]
URLS = {name: url for name, url in (("rest", REST), ("grpc", GRPC and f"grpc://{GRPC}")) if url}
SAMPLES = 3

pytestmark = pytest.mark.skipif(
    not URLS, reason="no outside server: set SHIXIN_E2E_REST and/or SHIXIN_E2E_GRPC (serving/e2e.sh does)"
)


@pytest.fixture(params=sorted(URLS))
def client(request: pytest.FixtureRequest) -> Iterator[ShixinClient]:
    # The served model may be any export, trained or not: every reading is compared, none rejected.
    with ShixinClient(URLS[request.param], min_confidence=0) as client:
        yield client


def available_versions(client: ShixinClient) -> list[int]:
    return sorted(version.version for version in client.status().versions if version.available)


@pytest.fixture(scope="module")
def reference(real_samples: list[tuple[Path, str]]) -> dict[str, Any]:
    """The export's serving_default run in this process on the first samples: its softmax."""
    tf = pytest.importorskip("tensorflow")
    import numpy as np

    versions = sorted(int(path.name) for path in MODEL_BASE_PATH.iterdir() if path.name.isdigit())
    assert versions, f"no version folders under {MODEL_BASE_PATH}"
    loaded = tf.saved_model.load(str(MODEL_BASE_PATH / str(versions[-1])))
    images = [path for path, _ in real_samples[:SAMPLES]]
    batch = tf.constant(np.stack([preprocess(path) for path in images]))
    softmax = loaded.signatures[SIGNATURE_FLOAT](**{INPUT_FLOAT: batch})[OUTPUT_SOFTMAX].numpy()
    return {"version": versions[-1], "images": images, "softmax": softmax}


def test_a_version_on_disk_is_available(client: ShixinClient) -> None:
    available = available_versions(client)
    assert available, client.status()
    for version in available:
        assert (MODEL_BASE_PATH / str(version) / "saved_model.pb").is_file(), version


def test_metadata_lists_the_export_signatures_and_the_model_describes_itself(client: ShixinClient) -> None:
    metadata = client.metadata()
    assert metadata.version in available_versions(client)
    for name in (SIGNATURE_FLOAT, SIGNATURE_BYTES, SIGNATURE_DESCRIBE):
        assert metadata.signature(name) is not None, name
    assert client.get_spec() == DEFAULT_SPEC


def test_recognition_matches_the_export_run_in_process(
    client: ShixinClient, reference: dict[str, Any]
) -> None:
    import numpy as np

    from benchmarks._serving import SAME_MODEL_ATOL

    assert max(available_versions(client)) == reference["version"]
    # The SDK sends the picture to serving_bytes, whose in-graph decoding gives the tensor that
    # preprocess() gives (tests/export/test_export_parity.py), so the softmax must agree.
    predictions = client.predict_many(reference["images"], with_softmax=True)
    served = np.stack([np.asarray(prediction.softmax) for prediction in predictions])
    np.testing.assert_allclose(served, reference["softmax"], atol=SAME_MODEL_ATOL)
    assert client.recognize_many(reference["images"]) == [prediction.text for prediction in predictions]


def test_async_client_reads_what_the_sync_client_reads(reference: dict[str, Any]) -> None:
    import asyncio

    async def read(url: str) -> list[str]:
        async with AsyncShixinClient(url, min_confidence=0) as client:
            return list(await client.recognize_many(reference["images"]))

    for url in URLS.values():
        with ShixinClient(url, min_confidence=0) as client:
            assert asyncio.run(read(url)) == client.recognize_many(reference["images"]), url


def test_errors_arrive_as_the_sdks_typed_exceptions(client: ShixinClient, reference: dict[str, Any]) -> None:
    image = reference["images"][0]
    with pytest.raises(ModelNotFoundError):
        client.recognize(image, model="no_such_model")
    with pytest.raises(ModelNotFoundError):
        client.recognize(image, label="no_such_label")
    with pytest.raises(ModelNotFoundError):
        client.recognize(image, version=max(available_versions(client)) + 1000)
    with pytest.raises(RequestRejectedError):
        client.recognize(image, signature="no_such_signature")


NO_LABELS = [pytest.param("", marks=pytest.mark.skip(reason="SHIXIN_E2E_LABELS names no label"))]


@pytest.mark.parametrize("label", LABELS or NO_LABELS)
def test_labels_resolve_to_available_versions(
    client: ShixinClient, reference: dict[str, Any], label: str
) -> None:
    # TF Serving keeps labels only with --allow_version_labels_for_unavailable_models at startup
    # (docs/tf-serving-compat.md §3.3); metadata resolves a label, status ignores it (§1.2).
    version = client.metadata(label=label).version
    assert version in available_versions(client)
    texts = client.recognize_many(reference["images"], label=label)
    if version == client.metadata().version:
        assert texts == client.recognize_many(reference["images"])
    else:
        assert len(texts) == len(reference["images"])
