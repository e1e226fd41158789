"""The embedded transport: a LiteRT conversion of the Keras model gives the Keras softmax.

An untrained ``default`` model is enough: parity does not depend on the weights. The
conversion goes through export's own ``write_embedded``, so the test holds the exact
asset pair (``shixin.tflite`` + ``spec.json``) the package ships; a recurrent (``gru``)
model also gets the batch-1 companion.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from shixin_client import (
    DEFAULT_SPEC,
    AsyncShixinClient,
    CaptchaSpec,
    InvalidInputError,
    LowConfidenceError,
    MissingDependencyError,
    ModelNotFoundError,
    PredictCall,
    RequestRejectedError,
    RetryPolicy,
    ShixinClient,
    ShixinConnectionError,
    Timeout,
    decode_softmax,
)
from shixin_client._config import DEFAULT_MIN_CONFIDENCE, ModelRef
from shixin_client._decode.greedy import greedy_confidences
from shixin_client._images import preprocess
from shixin_client._spec import INPUT_FLOAT, OUTPUT_SOFTMAX, SIGNATURE_BYTES, SIGNATURE_FLOAT
from shixin_client._transports.local import (
    DEFAULT_MODEL_PATH,
    INT8_TRUST,
    LocalTransport,
    int8_path,
    read_spec,
    single_image_path,
)


def _embedded(preset: str, folder: Path) -> tuple[Any, Path]:
    keras = pytest.importorskip("keras")
    from export.tflite import write_embedded
    from training.model import build_model

    keras.utils.set_random_seed(7)
    model = build_model(preset)
    return model, write_embedded(model, folder / "shixin.tflite")


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    return _embedded("default", tmp_path_factory.mktemp("assets"))


@pytest.fixture(scope="module")
def embedded_gru(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    """A recurrent model: export writes it a batch-1 companion for single images."""
    return _embedded("gru", tmp_path_factory.mktemp("gru-assets"))


@pytest.mark.slow
@pytest.mark.parametrize("which", ["embedded", "embedded_gru"])
def test_litert_softmax_equals_keras(
    which: str, request: pytest.FixtureRequest, real_samples: list[tuple[Path, str]]
) -> None:
    model, path = request.getfixturevalue(which)
    rng = np.random.default_rng(0)
    noise = [(rng.random((70, 160)) > 0.5).astype(np.float32)[:, :, None] for _ in range(2)]
    batch = np.stack([preprocess(p) for p, _ in real_samples[:3]] + noise)
    expected = np.asarray(model(batch, training=False))
    transport = LocalTransport(path)
    got = transport.run(batch)
    assert got.shape == expected.shape == (len(batch), 40, 37)
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # A recurrent model's single images go to its batch-1 companion; a different batch size
    # later on resizes the interpreter; all agree.
    assert transport._has_single == (which == "embedded_gru")
    np.testing.assert_allclose(transport.run(batch[:1]), expected[:1], atol=1e-5)
    np.testing.assert_allclose(transport.run(batch[1:3]), expected[1:3], atol=1e-5)


@pytest.mark.slow
def test_without_the_single_image_companion_the_main_model_reads_one_image(
    embedded_gru: tuple[Any, Path], real_samples: list[tuple[Path, str]], tmp_path: Path
) -> None:
    model, path = embedded_gru
    assert single_image_path(path).is_file()
    alone = tmp_path / path.name
    shutil.copy(path, alone)
    shutil.copy(path.with_name("spec.json"), tmp_path / "spec.json")
    transport = LocalTransport(alone)
    assert not transport._has_single
    image = preprocess(real_samples[0][0])[None]
    np.testing.assert_allclose(transport.run(image), np.asarray(model(image, training=False)), atol=1e-5)


@pytest.mark.slow
def test_clients_on_the_embedded_model(
    embedded: tuple[Any, Path], real_samples: list[tuple[Path, str]]
) -> None:
    model, path = embedded
    paths = [p for p, _ in real_samples[:3]]
    expected = [
        p.text
        for p in decode_softmax(np.asarray(model(np.stack([preprocess(p) for p in paths]))), DEFAULT_SPEC)
    ]
    # The untrained model is sure of nothing: the reject option stays off to compare strings.
    with ShixinClient.local(path, min_confidence=0) as client:
        assert client.get_spec() == DEFAULT_SPEC == client.spec
        assert client.recognize_many(paths) == expected
        # One LiteRT thread or several: the same strings.
        with ShixinClient.local(path, threads=1, min_confidence=0) as single:
            assert single.recognize_many(paths) == expected
        assert client.recognize_many(paths, payload="image") == expected  # the bytes path too
        with pytest.raises(InvalidInputError, match="pass payload='image'"):
            client.recognize_many(paths, signature=SIGNATURE_BYTES)
        assert client.ready() and client.metadata().signature(SIGNATURE_FLOAT) is not None

    async def main() -> list[str]:
        async with AsyncShixinClient.local(path, min_confidence=0) as async_client:
            return list(await async_client.recognize_many(paths))

    assert asyncio.run(main()) == expected


@pytest.mark.slow
def test_local_refuses_bad_calls(embedded: tuple[Any, Path]) -> None:
    transport = LocalTransport(embedded[1])
    wrong_shape = PredictCall(
        ModelRef(signature=SIGNATURE_FLOAT), {INPUT_FLOAT: np.zeros((1, 10, 10, 1), np.float32)}, Timeout()
    )
    with pytest.raises(RequestRejectedError, match="shape"):
        transport.predict(wrong_shape)
    unknown = PredictCall(
        ModelRef(signature="nope"), {INPUT_FLOAT: np.zeros((1, 70, 160, 1), np.float32)}, Timeout()
    )
    with pytest.raises(RequestRejectedError, match='"nope" not found'):
        transport.predict(unknown)
    empty = PredictCall(ModelRef(), {INPUT_FLOAT: np.zeros((0, 70, 160, 1), np.float32)}, Timeout())
    assert transport.predict(empty)[OUTPUT_SOFTMAX].shape == (0, 40, 37)
    assert 1 <= transport.threads <= 4
    for bad in (0, -2, 1.5, True, "2"):
        with pytest.raises(InvalidInputError, match="threads must be a positive int"):
            LocalTransport(embedded[1], threads=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="int8 must be True or False"):
        LocalTransport(embedded[1], int8="yes")  # type: ignore[arg-type]
    assert transport._int8 is None and "int8=False" in repr(transport)  # no companion beside it


def _int8_softmax(batch: np.ndarray) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(int8_path(DEFAULT_MODEL_PATH)))
    (image_input,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(image_input["index"], batch.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(image_input["index"], batch)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def test_the_int8_companion_answers_what_it_is_sure_of_and_the_float_model_the_rest(
    real_samples: list[tuple[Path, str]],
) -> None:
    pytest.importorskip("ai_edge_litert")
    rng = np.random.default_rng(0)
    noise = [(rng.random((70, 160)) > 0.5).astype(np.float32)[:, :, None] for _ in range(2)]
    batch = np.stack([preprocess(p) for p, _ in real_samples] + noise)
    quick = _int8_softmax(batch)
    sure = greedy_confidences(quick, DEFAULT_SPEC) >= INT8_TRUST
    assert sure.tolist() == [True] * len(real_samples) + [False, False]
    exact = LocalTransport(int8=False)
    float_rows = np.concatenate([exact.run(batch[i : i + 1]) for i in range(len(batch))])
    assert exact.int8_rows == 0 and exact.float_rows == len(batch)
    cascade = LocalTransport()
    assert "int8=True" in repr(cascade)
    got = cascade.run(batch)
    np.testing.assert_array_equal(got[sure], quick[sure])
    np.testing.assert_array_equal(got[~sure], float_rows[~sure])
    assert (cascade.int8_rows, cascade.float_rows) == (len(real_samples), 2)
    assert not np.array_equal(quick[sure], float_rows[sure])  # truly another model, read where sure
    # One image at a time takes the same route.
    np.testing.assert_array_equal(cascade.run(batch[:1]), quick[:1])
    np.testing.assert_array_equal(cascade.run(batch[-1:]), float_rows[-1:])


def test_local_clients_pass_int8_on() -> None:
    pytest.importorskip("ai_edge_litert")
    with ShixinClient.local(int8=False) as exact, ShixinClient.local() as quick:
        assert exact._shared.transport._int8 is None  # type: ignore[attr-defined]
        assert quick._shared.transport._int8 is not None  # type: ignore[attr-defined]
    client = AsyncShixinClient.local(int8=False)
    assert client._shared.transport.transport._int8 is None  # type: ignore[attr-defined]


def test_the_shipped_model_reads_site_captchas_and_rejects_noise_by_default(
    real_samples: list[tuple[Path, str]],
) -> None:
    pytest.importorskip("ai_edge_litert")
    noise = np.random.default_rng(0).integers(0, 256, (70, 160, 3), dtype=np.uint8)
    with ShixinClient.local() as client:
        assert client.min_confidence == DEFAULT_MIN_CONFIDENCE
        assert client.recognize_many([path for path, _ in real_samples]) == [
            label for _, label in real_samples
        ]
        with pytest.raises(LowConfidenceError, match=r"array\(70, 160, 3\)"):
            client.recognize(noise)
        reading = client.predict(noise)
        assert reading.confidence < DEFAULT_MIN_CONFIDENCE
    with ShixinClient.local(min_confidence=0) as everything:
        assert everything.recognize(noise) == reading.text
    assert AsyncShixinClient.local(min_confidence=0.5).min_confidence == 0.5


def test_missing_litert_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = tmp_path / "shixin.tflite"
    model.write_bytes(b"not read: the import fails first")
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    with pytest.raises(MissingDependencyError, match=r'pip install "shixin-client\[local\]"'):
        ShixinClient.local(model)


def test_missing_numpy_names_the_local_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """numpy comes with [local] too: without it local() names that extra, not numpy's import error."""
    monkeypatch.setitem(sys.modules, "numpy", None)
    monkeypatch.delitem(sys.modules, "shixin_client._transports.local", raising=False)
    for twin in (ShixinClient, AsyncShixinClient):
        with pytest.raises(
            MissingDependencyError, match=r'embedded model.*pip install "shixin-client\[local\]"'
        ):
            twin.local()


def test_local_takes_the_retry_policy_it_is_given(monkeypatch: pytest.MonkeyPatch) -> None:
    """local(retry=...) is the policy in force, budget included, on both twins."""
    pytest.importorskip("ai_edge_litert")
    from shixin_client._transports.local import LocalTransport as Embedded

    attempts = {"n": 0}

    def refuse(self: Any, call: PredictCall) -> Any:
        attempts["n"] += 1
        raise ShixinConnectionError("the embedded model is gone")

    monkeypatch.setattr(Embedded, "predict", refuse)
    policy = RetryPolicy(max_retries=5, initial_delay=0.0, max_delay=0.0)
    client = ShixinClient.local(retry=policy)
    assert client.retry == policy
    with pytest.raises(ShixinConnectionError):
        client.get_spec()
    assert attempts["n"] == 6

    async def main() -> None:
        async with AsyncShixinClient.local(retry=policy) as async_client:
            await async_client.get_spec()

    attempts["n"] = 0
    with pytest.raises(ShixinConnectionError):
        asyncio.run(main())
    assert attempts["n"] == 6


def test_missing_model_file(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError, match="no embedded model file"):
        LocalTransport(tmp_path / "absent.tflite")


def test_spec_json_beside_the_model(tmp_path: Path) -> None:
    assert read_spec(tmp_path / "spec.json") == DEFAULT_SPEC
    custom = CaptchaSpec(charset="abc", blank_index=0, label_length=2, height=70, width=160, time_steps=40)
    (tmp_path / "spec.json").write_text(json.dumps(custom.__dict__))
    assert read_spec(tmp_path / "spec.json") == custom
    (tmp_path / "spec.json").write_text('{"charset": "abc"}')
    with pytest.raises(ModelNotFoundError, match="not a valid model spec"):
        read_spec(tmp_path / "spec.json")
