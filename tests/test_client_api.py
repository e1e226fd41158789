"""The client's request/response model, driven through MockTransport on both twins.

Every test runs on ShixinClient and AsyncShixinClient alike (the ``make`` fixture), so
the twins cannot drift: same options, same batching, same checks on the answer.
"""

from __future__ import annotations

import asyncio
import io
import logging
import pydoc
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from PIL import Image

from shixin_client import (
    DEFAULT_SPEC,
    SITE_ALPHABET,
    AsyncMockTransport,
    AsyncShixinClient,
    BadResponseError,
    CaptchaSpec,
    InvalidInputError,
    LowConfidenceError,
    MissingDependencyError,
    MockRequest,
    MockTransport,
    ModelMetadata,
    ModelNotFoundError,
    ModelRef,
    ModelStatus,
    Prediction,
    RequestRejectedError,
    RetryPolicy,
    ServerUnavailableError,
    ShixinClient,
    ShixinError,
    ShixinTimeoutError,
    ThreadedAsyncTransport,
    Timeout,
    UsageError,
    VersionStatus,
)
from shixin_client._config import DEFAULT_MIN_CONFIDENCE
from shixin_client._images import wire_bytes
from shixin_client._spec import (
    INPUT_BYTES,
    INPUT_DESCRIBE,
    INPUT_FLOAT,
    OUTPUT_SOFTMAX,
    SIGNATURE_BYTES,
    SIGNATURE_DESCRIBE,
    SIGNATURE_FLOAT,
)
from shixin_client._transports.local import describe_outputs
from shixin_client._transports.mock import softmax_for
from shixin_client._urls import parse_server


def png(seed: int, size: tuple[int, int] = (160, 70)) -> bytes:
    """A small noisy PNG; its first pixel byte tells the fake model which text to answer."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, size=(size[1], size[0], 3), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


IMAGES = [png(i) for i in range(5)]
TEXTS = ["ab12", "cd34", "ef56", "gh78", "ij90"]
TEXT_OF = dict(zip((wire_bytes(image) for image in IMAGES), TEXTS, strict=True))


class FakeModel:
    """A handler playing TF Serving with our model: it records every request it gets."""

    def __init__(self, spec: CaptchaSpec | None = DEFAULT_SPEC, rows_delta: int = 0) -> None:
        self.spec = spec
        self.rows_delta = rows_delta
        self.requests: list[MockRequest] = []

    def __call__(self, request: MockRequest) -> Any:
        self.requests.append(request)
        if request.kind == "status":
            return ModelStatus(request.model.name, (VersionStatus(1, "AVAILABLE"),))
        if request.kind == "metadata":
            return ModelMetadata(request.model.name, 1, ())
        signature = request.model.signature
        if signature == SIGNATURE_DESCRIBE:
            if self.spec is None:
                raise RequestRejectedError(
                    'Serving signature name: "describe" not found in signature def', code="INVALID_ARGUMENT"
                )
            return describe_outputs(self.spec, len(request.inputs[INPUT_DESCRIBE]))
        spec = self.spec or DEFAULT_SPEC
        if signature == SIGNATURE_BYTES:
            texts = [TEXT_OF.get(bytes(data), "zzzz") for data in request.inputs[INPUT_BYTES]]
        else:
            texts = ["flt0"] * len(request.inputs[INPUT_FLOAT])
        texts = (
            texts[: len(texts) + self.rows_delta]
            if self.rows_delta < 0
            else texts + ["xtra"] * self.rows_delta
        )
        return {OUTPUT_SOFTMAX: softmax_for(texts, spec)}

    def predicts(self) -> list[MockRequest]:
        return [r for r in self.requests if r.kind == "predict" and r.model.signature != SIGNATURE_DESCRIBE]


def run(value: Any) -> Any:
    """The value of a sync call, or of an awaited async one: lets one test body drive both twins."""
    return asyncio.run(_await(value)) if asyncio.iscoroutine(value) else value


async def _await(value: Any) -> Any:
    return await value


@pytest.fixture(params=["sync", "async"])
def make(request: pytest.FixtureRequest) -> Callable[..., Any]:
    def build(handler: Callable[[MockRequest], Any], **options: Any) -> Any:
        if request.param == "sync":
            return ShixinClient(transport=MockTransport(handler), **options)
        return AsyncShixinClient(transport=AsyncMockTransport(handler), **options)

    return build


def test_recognize_sends_the_compact_wire_file_to_the_bytes_signature(make: Callable[..., Any]) -> None:
    model = FakeModel()
    client = make(model)
    assert run(client.recognize(IMAGES[0])) == "ab12"
    (call,) = model.predicts()
    assert call.model.signature == SIGNATURE_BYTES
    assert list(call.inputs) == [INPUT_BYTES]
    assert call.inputs[INPUT_BYTES].dtype == object and bytes(call.inputs[INPUT_BYTES][0]) == wire_bytes(
        IMAGES[0]
    )
    assert call.output_filter == (OUTPUT_SOFTMAX,)


def test_the_tensor_payload_sends_the_preprocessed_tensor(make: Callable[..., Any]) -> None:
    model = FakeModel()
    client = make(model)
    assert run(client.recognize(IMAGES[0], payload="tensor")) == "flt0"
    assert run(client.with_options(payload="tensor").recognize(IMAGES[1])) == "flt0"
    assert run(make(model, payload="tensor").recognize(IMAGES[2])) == "flt0"
    calls = model.predicts()
    assert len(calls) == 3
    for call in calls:
        assert call.model.signature == SIGNATURE_FLOAT
        tensor = call.inputs[INPUT_FLOAT]
        assert tensor.shape == (1, 70, 160, 1) and tensor.dtype == np.float32
        assert set(np.unique(tensor)) <= {0.0, 1.0}


def test_signature_renames_the_signature_and_never_changes_the_payload(make: Callable[..., Any]) -> None:
    model = FakeModel()
    seen: list[MockRequest] = []

    def renamed(request: MockRequest) -> Any:
        if request.model.signature in ("bytes_v2", "floats_v2"):
            seen.append(request)
            signature = SIGNATURE_BYTES if request.model.signature == "bytes_v2" else SIGNATURE_FLOAT
            request = replace(request, model=request.model.with_signature(signature))
        return model(request)

    client = make(renamed)
    assert run(client.recognize(IMAGES[0], signature="bytes_v2")) == "ab12"
    assert run(client.recognize(IMAGES[0], signature="floats_v2", payload="tensor")) == "flt0"
    assert [list(r.inputs) for r in seen] == [[INPUT_BYTES], [INPUT_FLOAT]]
    # The exported model's own names fix their payload: a contradiction is refused, naming the fix.
    with pytest.raises(InvalidInputError, match="pass payload='tensor'"):
        run(client.recognize(IMAGES[0], signature=SIGNATURE_FLOAT))
    with pytest.raises(InvalidInputError, match="pass payload='image'"):
        make(renamed, payload="tensor", signature=SIGNATURE_BYTES)
    with pytest.raises(InvalidInputError, match="payload"):
        client.with_options(payload="floats")
    assert len(seen) == 2


def test_recognize_many_keeps_input_order_in_few_requests(make: Callable[..., Any]) -> None:
    model = FakeModel()
    client = make(model, batch_size=2)
    images = [IMAGES[4], IMAGES[0], IMAGES[3], IMAGES[1], IMAGES[2]]
    assert run(client.recognize_many(images)) == ["ij90", "ab12", "gh78", "cd34", "ef56"]
    assert [len(c.inputs[INPUT_BYTES]) for c in model.predicts()] == [2, 2, 1]
    model.requests.clear()
    assert run(client.recognize_many(images, batch_size=10)) == ["ij90", "ab12", "gh78", "cd34", "ef56"]
    assert [len(c.inputs[INPUT_BYTES]) for c in model.predicts()] == [5]


def test_every_image_kind_is_accepted(make: Callable[..., Any], tmp_path: Any) -> None:
    path = tmp_path / "captcha.png"
    path.write_bytes(IMAGES[2])
    picture = Image.open(io.BytesIO(IMAGES[3]))
    array = np.asarray(picture)
    batch = np.stack([array, array])
    client = make(FakeModel())
    texts = run(client.recognize_many([str(path), path, io.BytesIO(IMAGES[2]), picture, array, batch]))
    # The PIL image and arrays are re-encoded as PNG, so the fake model does not know their bytes.
    assert texts[:3] == ["ef56", "ef56", "ef56"] and len(texts) == 7


def test_a_bad_image_fails_alone_with_return_exceptions(make: Callable[..., Any]) -> None:
    model = FakeModel()
    client = make(model)
    images = [IMAGES[0], b"not an image", IMAGES[1]]
    results = run(client.recognize_many(images, return_exceptions=True))
    assert results[0] == "ab12" and results[2] == "cd34"
    assert isinstance(results[1], InvalidInputError) and "item 1" in str(results[1])
    with pytest.raises(InvalidInputError, match="item 1"):
        run(client.recognize_many(images))


def test_a_failed_batch_marks_only_its_own_items(make: Callable[..., Any]) -> None:
    model = FakeModel()
    calls = {"n": 0}

    def flaky(request: MockRequest) -> Any:
        if request.kind == "predict" and request.model.signature == SIGNATURE_BYTES:
            calls["n"] += 1
            if calls["n"] == 2:
                raise RequestRejectedError("batch two refused", code="INVALID_ARGUMENT")
        return model(request)

    client = make(flaky, batch_size=2)
    results = run(client.recognize_many(IMAGES, return_exceptions=True))
    assert results[0:2] == ["ab12", "cd34"] and results[4] == "ij90"
    assert all(isinstance(r, RequestRejectedError) for r in results[2:4])


def unsure_model(unsure: bytes, per_char: float = 0.6) -> Callable[[MockRequest], Any]:
    """FakeModel's answers, except that ``unsure`` reads with each character at ``per_char``."""
    model = FakeModel()

    def handler(request: MockRequest) -> Any:
        answer = model(request)
        if request.kind == "predict" and request.model.signature == SIGNATURE_BYTES:
            for row, data in enumerate(request.inputs[INPUT_BYTES]):
                if bytes(data) == wire_bytes(unsure):
                    text = TEXT_OF[bytes(data)]
                    answer[OUTPUT_SOFTMAX][row] = softmax_for([text], confidence=per_char)[0]
        return answer

    return handler


def test_recognize_rejects_a_reading_under_min_confidence_and_predict_keeps_it(
    make: Callable[..., Any],
) -> None:
    client = make(unsure_model(IMAGES[1]))
    assert client.min_confidence == DEFAULT_MIN_CONFIDENCE > 0.6**4
    assert run(client.recognize(IMAGES[0])) == "ab12"
    with pytest.raises(LowConfidenceError) as caught:
        run(client.recognize(IMAGES[1]))
    error = caught.value
    assert isinstance(error, ShixinError)
    assert (error.text, error.threshold) == ("cd34", DEFAULT_MIN_CONFIDENCE)
    assert error.confidence == pytest.approx(0.6**4, rel=1e-5)
    assert error.input == f"item 0 bytes[{len(IMAGES[1])}]" and str(error).startswith(error.input)
    prediction = run(client.predict(IMAGES[1]))
    assert prediction.text == "cd34" and prediction.confidence == error.confidence


def test_recognize_many_returns_the_rejection_in_its_items_place(make: Callable[..., Any]) -> None:
    client = make(unsure_model(IMAGES[1]), batch_size=2)
    results = run(client.recognize_many(IMAGES[:3], return_exceptions=True))
    assert results[0] == "ab12" and results[2] == "ef56"
    assert isinstance(results[1], LowConfidenceError) and results[1].input.startswith("item 1 ")
    with pytest.raises(LowConfidenceError, match="item 1 "):
        run(client.recognize_many(IMAGES[:3]))
    assert [p.text for p in run(client.predict_many(IMAGES[:3]))] == ["ab12", "cd34", "ef56"]


def test_min_confidence_is_a_client_option_and_zero_turns_it_off(make: Callable[..., Any]) -> None:
    handler = unsure_model(IMAGES[1])
    assert run(make(handler, min_confidence=0).recognize(IMAGES[1])) == "cd34"
    client = make(handler)
    exact = run(client.predict(IMAGES[1])).confidence
    assert run(client.with_options(min_confidence=exact).recognize(IMAGES[1])) == "cd34"
    assert client.min_confidence == DEFAULT_MIN_CONFIDENCE
    # The default mock reading (0.99 a character) is sure enough for the default, not for 0.99.
    with pytest.raises(LowConfidenceError, match="under min_confidence 0.99"):
        run(make(FakeModel(), min_confidence=0.99).recognize(IMAGES[0]))
    for bad in (-0.1, 1.5, True, "0.9", float("nan"), None):
        with pytest.raises(InvalidInputError, match="min_confidence"):
            make(handler, min_confidence=bad)
        with pytest.raises(InvalidInputError, match="min_confidence"):
            client.with_options(min_confidence=bad)


def test_a_nan_reading_is_never_confident_enough(make: Callable[..., Any]) -> None:
    def broken(request: MockRequest) -> Any:
        if request.model.signature == SIGNATURE_DESCRIBE:
            return describe_outputs(DEFAULT_SPEC, 1)
        softmax = softmax_for(["ab12"])
        softmax[0, :2, :] = np.nan  # the frames of "a": read as the first class, "0", at NaN
        return {OUTPUT_SOFTMAX: softmax}

    with pytest.raises(LowConfidenceError, match="read '0b12' at confidence nan"):
        run(make(broken).recognize(IMAGES[0]))
    assert run(make(broken, min_confidence=0).recognize(IMAGES[0])) == "0b12"


def test_a_prediction_says_whether_a_threshold_accepts_it() -> None:
    sure = Prediction("ab12", 0.95, (0.99, 0.99, 0.99, 0.98))
    assert sure.accepted(0.95) and sure.accepted(0.0) and not sure.accepted(0.951)
    unknown = Prediction("ab12", float("nan"), ())
    assert not unknown.accepted(1e-9) and unknown.accepted(0)


@pytest.mark.parametrize("delta", [-1, 1])
def test_wrong_number_of_rows_is_a_bad_response(make: Callable[..., Any], delta: int) -> None:
    client = make(FakeModel(rows_delta=delta))
    with pytest.raises(BadResponseError, match="sent 2 image"):
        run(client.recognize_many(IMAGES[:2]))


def test_wrong_class_count_is_a_bad_response(make: Callable[..., Any]) -> None:
    def handler(request: MockRequest) -> Any:
        if request.model.signature == SIGNATURE_DESCRIBE:
            return describe_outputs(DEFAULT_SPEC, 1)
        return {OUTPUT_SOFTMAX: np.full((1, 40, 11), 1 / 11, dtype=np.float32)}

    with pytest.raises(BadResponseError, match=r"\[1, 40, 11\]"):
        run(make(handler).recognize(IMAGES[0]))


def test_predict_gives_confidence_and_optional_softmax(make: Callable[..., Any]) -> None:
    client = make(FakeModel())
    plain = run(client.predict(IMAGES[0]))
    assert isinstance(plain, Prediction) and plain.text == "ab12" and plain.softmax is None
    assert 0.0 < plain.confidence <= 1.0 and len(plain.char_probabilities) == 4
    full = run(client.predict(IMAGES[0], with_softmax=True))
    assert full.softmax is not None and full.softmax.shape == (40, 37)


def test_predict_refuses_a_batch_array(make: Callable[..., Any]) -> None:
    batch = np.zeros((3, 70, 160, 1), dtype=np.uint8)
    with pytest.raises(InvalidInputError, match="3 images"):
        run(make(FakeModel()).predict(batch))


def test_spec_comes_from_describe_once_and_drives_decoding(make: Callable[..., Any]) -> None:
    custom = CaptchaSpec(
        charset="abcdefghij", blank_index=0, label_length=4, height=70, width=160, time_steps=40
    )
    model = FakeModel(spec=custom)

    def handler(request: MockRequest) -> Any:
        if request.model.signature == SIGNATURE_BYTES:
            model.requests.append(request)
            return {OUTPUT_SOFTMAX: softmax_for(["jihg"] * len(request.inputs[INPUT_BYTES]), custom)}
        return model(request)

    client = make(handler)
    assert run(client.recognize(IMAGES[0])) == "jihg"
    assert run(client.recognize(IMAGES[1])) == "jihg"
    describes = [r for r in model.requests if r.model.signature == SIGNATURE_DESCRIBE]
    assert len(describes) == 1
    assert describes[0].inputs[INPUT_DESCRIBE].dtype == np.int32
    assert client.spec == custom


def test_spec_falls_back_to_the_reference_without_describe(make: Callable[..., Any]) -> None:
    client = make(FakeModel(spec=None))
    assert run(client.get_spec()) == DEFAULT_SPEC
    assert client.spec == DEFAULT_SPEC


def test_spec_before_any_fetch_is_a_usage_error_on_both_twins(make: Callable[..., Any]) -> None:
    model = FakeModel()
    client = make(model)
    with pytest.raises(UsageError, match=r"get_spec\(\)") as caught:
        _ = client.spec
    assert isinstance(caught.value, RuntimeError) and model.requests == []  # reading it sends nothing
    assert run(client.get_spec()) == DEFAULT_SPEC == client.spec


def test_concurrent_first_calls_fetch_the_spec_once() -> None:
    model = FakeModel()

    async def slow(request: MockRequest) -> Any:
        if request.model.signature == SIGNATURE_DESCRIBE:
            await asyncio.sleep(0.05)  # every caller arrives while the first fetch is in flight
        return model(request)

    async def main() -> list[str]:
        async with AsyncShixinClient(transport=AsyncMockTransport(slow)) as client:
            return list(await asyncio.gather(*(client.recognize(IMAGES[i]) for i in range(5))))

    assert asyncio.run(main()) == TEXTS
    assert [r.model.signature for r in model.requests].count(SIGNATURE_DESCRIBE) == 1


def test_threads_sharing_a_client_fetch_the_spec_once() -> None:
    model = FakeModel()
    entered = threading.Barrier(5)

    def slow(request: MockRequest) -> Any:
        if request.model.signature == SIGNATURE_DESCRIBE:
            time.sleep(0.05)
        return model(request)

    client = ShixinClient(transport=MockTransport(slow))

    def one(index: int) -> str:
        entered.wait()
        return client.recognize(IMAGES[index])

    with ThreadPoolExecutor(5) as pool:
        assert list(pool.map(one, range(5))) == TEXTS
    assert [r.model.signature for r in model.requests].count(SIGNATURE_DESCRIBE) == 1


def test_per_call_overrides_and_not_given(make: Callable[..., Any]) -> None:
    model = FakeModel()
    client = make(model, model="shixin", timeout=7.0)
    run(client.recognize(IMAGES[0]))
    run(client.recognize(IMAGES[0], timeout=None, version=3))
    run(client.recognize(IMAGES[0], model="other", label="stable", timeout=(1.0, 2.0)))
    first, second, third = model.predicts()
    assert first.timeout == Timeout(7.0, 7.0) and first.model == ModelRef("shixin", signature=SIGNATURE_BYTES)
    assert second.timeout == Timeout(None, None) and second.model.version == 3
    assert third.model == ModelRef("other", label="stable", signature=SIGNATURE_BYTES)
    assert third.timeout == Timeout(1.0, 2.0)
    with pytest.raises(TypeError, match="timout"):
        run(client.recognize(IMAGES[0], timout=3))
    with pytest.raises(InvalidInputError, match="not both"):
        run(client.recognize(IMAGES[0], version=1, label="stable"))


def test_with_options_shares_the_transport_and_keeps_the_original(make: Callable[..., Any]) -> None:
    client = make(FakeModel())
    other = client.with_options(model="other", timeout=1.0, batch_size=3)
    assert other._shared is client._shared
    assert client.model.name == "shixin" and other.model.name == "other"
    assert client.batch_size != 3 and other.batch_size == 3
    assert other.timeout == Timeout(1.0, 1.0)


def test_status_metadata_ready(make: Callable[..., Any]) -> None:
    client = make(FakeModel())
    assert run(client.status()).ready
    assert run(client.metadata()).name == "shixin"
    assert run(client.ready()) is True


def test_wait_until_ready_times_out(make: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    def missing(request: MockRequest) -> Any:
        raise ModelNotFoundError("Could not find any versions of model shixin", code="NOT_FOUND")

    client = make(missing)
    sleeps: list[float] = []

    async def async_sleep(delay: float) -> None:
        sleeps.append(delay)

    monkeypatch.setattr(
        type(client),
        "_sleep",
        staticmethod(async_sleep if isinstance(client, AsyncShixinClient) else sleeps.append),
    )
    assert run(client.ready()) is False
    with pytest.raises(ShixinTimeoutError, match="not ready"):
        run(client.wait_until_ready(timeout=0.05))
    assert sleeps


def test_async_client_refuses_a_sync_transport() -> None:
    with pytest.raises(TypeError, match="ThreadedAsyncTransport"):
        AsyncShixinClient(transport=MockTransport(FakeModel()))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="SyncTransport"):
        ShixinClient(transport=AsyncMockTransport(FakeModel()))  # type: ignore[arg-type]


def test_context_managers_close_the_transport() -> None:
    transport = MockTransport(FakeModel())
    with ShixinClient(transport=transport):
        pass
    assert transport.closed

    async def main() -> AsyncMockTransport:
        async_transport = AsyncMockTransport(FakeModel())
        async with AsyncShixinClient(transport=async_transport):
            pass
        return async_transport

    assert asyncio.run(main()).closed


@pytest.mark.parametrize(
    ("server", "expected"),
    [
        ("http://h", ("rest", ["http://h:8501"], False)),
        ("https://h", ("rest", ["https://h"], True)),
        ("http://a:1, http://b:2", ("rest", ["http://a:1", "http://b:2"], False)),
        (["https://a:1", "https://b:2"], ("rest", ["https://a:1", "https://b:2"], True)),
        ("grpc://h", ("grpc", ["h:8500"], False)),
        ("grpcs://h:9000", ("grpc", ["h:9000"], True)),
        ("grpc://dns:///h:8500", ("grpc", ["dns:///h:8500"], False)),
    ],
)
def test_server_urls_pick_the_transport(server: Any, expected: tuple[str, list[str], bool]) -> None:
    assert parse_server(server) == expected


@pytest.mark.parametrize("server", ["h:8501", "ftp://h", ["grpc://a", "grpc://b"], "http://a,grpc://b", ""])
def test_bad_server_urls_are_refused(server: Any) -> None:
    with pytest.raises(InvalidInputError, match="server"):
        parse_server(server)


def test_no_server_anywhere_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIXIN_SERVER", raising=False)
    for twin in (ShixinClient, AsyncShixinClient):
        with pytest.raises(InvalidInputError, match="SHIXIN_SERVER"):
            twin()
    monkeypatch.setenv("SHIXIN_SERVER", "http://127.0.0.1:1")
    assert ShixinClient().endpoint == "http://127.0.0.1:1"


def test_headers_never_show_in_repr_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    secret = "Bearer s3cr3t-t0ken"
    client = ShixinClient(
        "http://user:pw@127.0.0.1:1", headers={"Authorization": secret}, retry=0, timeout=0.5
    )
    caplog.set_level(logging.DEBUG, logger="shixin_client")
    text = repr(client) + repr(client._shared.transport) + client.endpoint
    with pytest.raises(Exception) as info:
        client.status()
    text += str(info.value) + repr(info.value) + caplog.text
    assert "s3cr3t" not in text and ":pw@" not in text
    assert "Authorization=<redacted>" in repr(client._shared.transport)


@pytest.mark.parametrize(
    ("module", "build", "extra"),
    [
        ("httpx", lambda: AsyncShixinClient("http://127.0.0.1:1"), "async"),
        ("shixin_client._transports.grpc", lambda: ShixinClient("grpc://127.0.0.1:1"), "grpc"),
    ],
)
def test_missing_extras_name_the_pip_command(
    monkeypatch: pytest.MonkeyPatch, module: str, build: Callable[[], Any], extra: str
) -> None:
    monkeypatch.setitem(sys.modules, module, None)
    parent, _, child = module.rpartition(".")
    if parent in sys.modules:  # a submodule imported by an earlier test stays an attribute of its package
        monkeypatch.delattr(sys.modules[parent], child, raising=False)
    with pytest.raises(MissingDependencyError, match=rf'pip install "shixin-client\[{extra}\]"') as caught:
        build()
    assert caught.value.extra == extra and isinstance(caught.value, ImportError)


def test_public_preprocess_and_decode_serve_callers_with_their_own_transport() -> None:
    """The raw-protocol example builds its own requests from these two functions."""
    import shixin_client

    picture = Image.new("RGB", (320, 140), "white")
    picture.paste((0, 0, 0), (40, 40, 280, 100))
    tensor = shixin_client.preprocess(picture)
    assert tensor.shape == (70, 160, 1) and tensor.dtype == np.float32
    assert set(np.unique(tensor)) == {0.0, 1.0}
    predictions = shixin_client.decode_softmax(softmax_for(["ab12", "7xyz"], DEFAULT_SPEC), DEFAULT_SPEC)
    assert [p.text for p in predictions] == ["ab12", "7xyz"]
    assert shixin_client.DEFAULT_REST_PORT == 8501 and shixin_client.DEFAULT_GRPC_PORT == 8500
    assert shixin_client.DEFAULT_MODEL_NAME == "shixin"


def test_an_alphabet_limits_what_is_read_and_a_bad_one_sends_nothing(make: Callable[..., Any]) -> None:
    model = FakeModel()
    client = make(model)
    assert run(client.recognize(IMAGES[0])) == "ab12"
    # '1' is not in the site's alphabet: its frames read as the best allowed class, '2',
    # which the model gave almost no probability, so recognize rejects that reading.
    site = client.with_options(alphabet=SITE_ALPHABET)
    assert run(site.predict(IMAGES[0])).text == "ab22"
    assert run(make(model, alphabet=SITE_ALPHABET).predict(IMAGES[0])).text == "ab22"
    with pytest.raises(LowConfidenceError, match="read 'ab22'"):
        run(site.recognize(IMAGES[0]))
    assert run(site.with_options(alphabet=None).recognize(IMAGES[0])) == "ab12"
    sent = len(model.predicts())
    with pytest.raises(InvalidInputError, match=r"alphabet has '\?'"):
        run(client.with_options(alphabet="ab?").recognize(IMAGES[0]))
    assert len(model.predicts()) == sent
    with pytest.raises(InvalidInputError, match="non-empty"):
        client.with_options(alphabet="")


def test_the_retry_policy_in_force_is_the_calls_own(
    make: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """with_options(retry=...) brings its own budget: the constructor's cannot cap it."""
    attempts = {"n": 0}

    def overloaded(request: MockRequest) -> Any:
        attempts["n"] += 1
        raise ServerUnavailableError("overloaded", code="UNAVAILABLE", http_status=503)

    client = make(overloaded, retry=RetryPolicy(max_retries=1, initial_delay=0.0, max_delay=0.0))

    async def no_wait(delay: float) -> None:
        return None

    monkeypatch.setattr(
        type(client),
        "_sleep",
        staticmethod(no_wait if isinstance(client, AsyncShixinClient) else (lambda delay: None)),
    )
    six = RetryPolicy(max_retries=6, initial_delay=0.0, max_delay=0.0)
    for copy, expected in (
        (client, 2),
        (client.with_options(retry=six), 7),
        (client.with_options(retry=0), 1),
    ):
        attempts["n"] = 0
        with pytest.raises(ServerUnavailableError):
            run(copy.status())
        assert attempts["n"] == expected, copy.retry


@pytest.mark.parametrize(
    "mistake",
    [
        lambda: ShixinClient(transport=MockTransport(FakeModel()), timeout=-1),
        lambda: ShixinClient(transport=MockTransport(FakeModel()), timeout="soon"),
        lambda: ShixinClient(transport=MockTransport(FakeModel()), retry=-1),
        lambda: ShixinClient(transport=MockTransport(FakeModel()), batch_size=0),
        lambda: ShixinClient(transport=MockTransport(FakeModel()), beam_width=True),
        lambda: ShixinClient(transport=MockTransport(FakeModel()), payload="floats"),  # type: ignore[arg-type]
        lambda: ShixinClient(transport=MockTransport(FakeModel()), version=-1),
        lambda: ShixinClient(transport=MockTransport(FakeModel()), alphabet="ab?").recognize(IMAGES[0]),
        lambda: ShixinClient(transport=MockTransport(FakeModel())).recognize_many(IMAGES, batch_size=0),
        lambda: ShixinClient("http://127.0.0.1:1", transport=MockTransport(FakeModel())),
        lambda: ShixinClient("ftp://127.0.0.1:1"),
        lambda: ShixinClient(transport=MockTransport(FakeModel())).spec,
        lambda: CaptchaSpec(charset="aa"),
        lambda: Timeout(connect=0),
    ],
)
def test_every_misuse_is_a_shixin_error_with_its_builtin(mistake: Callable[[], Any]) -> None:
    with pytest.raises(ShixinError) as caught:
        mistake()
    assert isinstance(caught.value, (ValueError, RuntimeError))


def test_the_public_names_are_exported_under_their_own_names() -> None:
    import shixin_client

    for name in (
        "SyncTransport",
        "AsyncTransport",
        "ThreadedAsyncTransport",
        "PredictCall",
        "Tensor",
        "softmax_for",
    ):
        assert name in shixin_client.__all__ and getattr(shixin_client, name).__module__ == "shixin_client"
    assert not hasattr(shixin_client, "NOT_GIVEN") and "NotGiven" not in shixin_client.__all__
    shown = pydoc.render_doc(shixin_client.decode_softmax, renderer=pydoc.plaintext)
    assert "decode_softmax(softmax" in shown
    assert hasattr(shixin_client.AsyncTransport, "aclose") and not hasattr(
        shixin_client.AsyncTransport, "close"
    )


def test_a_sync_transport_serves_the_async_client_through_threaded_async_transport() -> None:
    model = FakeModel()
    calls: list[str] = []

    def handler(request: MockRequest) -> Any:
        calls.append(threading.current_thread().name)
        return model(request)

    async def main() -> str:
        transport = MockTransport(handler)
        async with AsyncShixinClient(transport=ThreadedAsyncTransport(transport)) as client:
            text = await client.recognize(IMAGES[0])
        assert transport.closed
        return text

    assert asyncio.run(main()) == "ab12"
    assert threading.main_thread().name not in calls  # off the event loop's thread
