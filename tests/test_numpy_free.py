"""The plain client without numpy, and the Pillow preprocessing held to the numpy formulas.

numpy is an optional extra: files, bytes and PIL images in, text out, over REST and gRPC,
must work where ``import numpy`` fails. The checks that need numpy absent run in a child
interpreter whose import system refuses numpy; the parent (with numpy) says what the
answers must be. The preprocessing runs on Pillow alone, so its float32 steps are
compared here with the numpy formulas they stand for: every RGB colour, every
(colour, alpha) pair, every 16-bit level.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import math
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageDraw

from shixin_client import (
    MissingDependencyError,
    MockRequest,
    MockTransport,
    ModelStatus,
    ShixinClient,
    Tensor,
    VersionStatus,
    decode_softmax,
    softmax_for,
)
from shixin_client._decode.greedy import greedy_decode
from shixin_client._images import GRAY_WEIGHTS, _gray, preprocess, wire_bytes
from shixin_client._spec import DEFAULT_SPEC, OUTPUT_SOFTMAX, CaptchaSpec
from shixin_client._transports import _rest_codec

REPO = Path(__file__).resolve().parents[1]
WEIGHTS = np.array(GRAY_WEIGHTS, np.float32)

#: Put first in a child: any import of numpy (or a submodule) fails as if it were not installed.
BLOCK_NUMPY = """
import sys

class _NoNumpy:
    def find_spec(self, name, path=None, target=None):
        if name == "numpy" or name.startswith("numpy."):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, _NoNumpy())
"""

#: Put last in a child: the answer, plus the numpy modules that got loaded anyway.
REPORT = """
out["numpy_modules"] = sorted(m for m in sys.modules if m.split(".")[0] == "numpy" and sys.modules[m])
print(json.dumps(out))
"""


def without_numpy(code: str, given: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """Run ``code`` where numpy cannot be imported; it reads ``given`` and fills ``out``, returned."""
    script = BLOCK_NUMPY + "import json\ngiven = json.loads(sys.stdin.read())\nout = {}\n" + code + REPORT
    result = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(given),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer.pop("numpy_modules") == []
    return answer


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def captcha(text: str = "3a3b", seed: int = 0) -> Image.Image:
    """A captcha-like RGBA picture: see-through background, coloured strokes."""
    rng = np.random.default_rng(seed)
    picture = Image.new("RGBA", (160, 70), (0, 0, 0, 0))
    draw = ImageDraw.Draw(picture)
    for _ in range(6):
        points = [tuple(int(v) for v in rng.integers(0, (160, 70))) for _ in range(2)]
        draw.line(points, fill=tuple(int(v) for v in rng.integers(0, 200, 3)) + (255,), width=2)
    draw.text((30, 20), text, fill=(20, 30, 160, 255), font_size=32)
    return picture


def encoded(picture: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    picture.save(out, format=fmt, **options)
    return out.getvalue()


# The plain client path in a child without numpy.

CLIENT_WITHOUT_NUMPY = """
import base64, io
from PIL import Image
import shixin_client
from shixin_client import MissingDependencyError, MockTransport, ShixinClient
from shixin_client import decode_softmax
from shixin_client._images import wire_bytes
from shixin_client._spec import DEFAULT_SPEC, OUTPUT_SOFTMAX, SIGNATURE_DESCRIBE
from shixin_client._transports import _rest_codec

files = {name: base64.b64decode(data) for name, data in given["files"].items()}
out["wire"] = {name: base64.b64encode(wire_bytes(data)).decode() for name, data in files.items()}
rest = base64.b64decode(given["rest"])
softmax = _rest_codec.parse_predict(rest, OUTPUT_SOFTMAX)[OUTPUT_SOFTMAX]
out["rest"] = [p.text for p in decode_softmax(softmax, DEFAULT_SPEC)]
if given["grpc"] is not None:
    from shixin_client._proto import predict_pb2
    from shixin_client._transports import _grpc_codec
    response = predict_pb2.PredictResponse.FromString(base64.b64decode(given["grpc"]))
    softmax = _grpc_codec.parse_predict_response(response)[OUTPUT_SOFTMAX]
    out["grpc"] = [p.text for p in decode_softmax(softmax, DEFAULT_SPEC)]

sent = []

def model(request):
    if request.model.signature == SIGNATURE_DESCRIBE:
        raise shixin_client.RequestRejectedError("no describe", code="INVALID_ARGUMENT")
    images = request.inputs["image_bytes"]
    sent.append([base64.b64encode(bytes(image)).decode() for image in images])
    answer = _rest_codec.parse_predict(rest, OUTPUT_SOFTMAX)[OUTPUT_SOFTMAX]
    return {OUTPUT_SOFTMAX: type(answer)(answer.dtype, (len(images),) + answer.shape[1:],
                                         answer.values[: len(images) * 40 * 37])}

client = ShixinClient(transport=MockTransport(model))
path = given["path"]
out["recognize"] = [
    client.recognize(path),
    client.recognize(files["png"]),
    client.recognize(io.BytesIO(files["jpeg"])),
    client.recognize(Image.open(io.BytesIO(files["png"]))),
]
out["recognize_many"] = client.recognize_many([path, files["jpeg"]], batch_size=2)
prediction = client.predict(files["png"])
out["confidence"] = prediction.confidence
out["sent"] = sent
errors = {}
for name, call in {
    "payload": lambda: client.recognize(path, payload="tensor"),
    "beam_width": lambda: client.with_options(beam_width=4).recognize(path),
    "with_softmax": lambda: client.predict(path, with_softmax=True),
}.items():
    try:
        call()
    except MissingDependencyError as exc:
        errors[name] = str(exc)
out["errors"] = errors
"""


def test_the_plain_client_runs_without_numpy(tmp_path: Path) -> None:
    picture = captcha()
    files = {"png": encoded(picture, "PNG"), "jpeg": encoded(picture.convert("RGB"), "JPEG", quality=90)}
    path = tmp_path / "captcha.png"
    path.write_bytes(files["png"])
    softmax = softmax_for(["ab12", "cd34"])
    rest = json.dumps({"predictions": softmax.tolist()}).encode()
    grpc_response = None
    if importlib.util.find_spec("grpc") is not None:
        from shixin_client._proto import predict_pb2
        from shixin_client._transports._grpc_codec import ndarray_to_tensor_proto

        response = predict_pb2.PredictResponse()
        response.outputs[OUTPUT_SOFTMAX].CopyFrom(ndarray_to_tensor_proto(softmax, OUTPUT_SOFTMAX))
        grpc_response = b64(response.SerializeToString())
    given = {"files": {k: b64(v) for k, v in files.items()}, "rest": b64(rest), "grpc": grpc_response}
    answer = without_numpy(CLIENT_WITHOUT_NUMPY, {**given, "path": str(path)})

    for name, data in files.items():
        sent = base64.b64decode(answer["wire"][name])
        assert sent == wire_bytes(data)
        assert np.array_equal(preprocess(sent), preprocess(data))
    assert answer["rest"] == ["ab12", "cd34"]
    if grpc_response is not None:
        assert answer["grpc"] == ["ab12", "cd34"]
    assert answer["recognize"] == ["ab12"] * 4 and answer["recognize_many"] == ["ab12", "cd34"]
    assert answer["confidence"] == decode_softmax(softmax[:1], DEFAULT_SPEC)[0].confidence
    assert [base64.b64decode(image) for image in answer["sent"][0]] == [wire_bytes(files["png"])]
    assert answer["sent"][4] == [b64(wire_bytes(files["png"])), b64(wire_bytes(files["jpeg"]))]
    assert set(answer["errors"]) == {"payload", "beam_width", "with_softmax"}
    for name, message in answer["errors"].items():
        assert 'pip install "shixin-client[numpy]"' in message, name


def test_importing_the_sdk_does_not_import_numpy() -> None:
    answer = without_numpy(
        "import shixin_client, shixin_client.cli\n"
        "out['ok'] = shixin_client.ShixinClient('http://127.0.0.1:1') is not None\n",
        {},
    )
    assert answer == {"ok": True}
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, shixin_client; print('numpy' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    assert loaded.stdout.strip() == "False"


#: Put first in a child: a base install (``pip install .``: Pillow, urllib3 and orjson only) as far as
#: imports go; every optional extra's modules fail as if they were not installed.
BLOCK_EXTRAS = """
import sys

OPTIONAL = ("numpy", "ai_edge_litert", "grpc", "google", "httpx", "httpcore", "tensorflow")

class _BaseInstall:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in OPTIONAL:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked by the test)", name=name)
        return None

sys.meta_path.insert(0, _BaseInstall())
"""

ON_A_BASE_INSTALL = """
import json
from shixin_client import AsyncShixinClient, MissingDependencyError, ShixinClient, ShixinError

out = {"rest": ShixinClient("http://127.0.0.1:1").endpoint}
for name, build in {
    "local": lambda: ShixinClient.local(),
    "async_local": lambda: AsyncShixinClient.local(),
    "grpc": lambda: ShixinClient("grpc://127.0.0.1:1"),
    "async_rest": lambda: AsyncShixinClient("http://127.0.0.1:1"),
}.items():
    try:
        build()
    except MissingDependencyError as exc:
        out[name] = [type(exc).__mro__[1].__name__, isinstance(exc, ImportError), exc.extra, str(exc)]
    except BaseException as exc:
        out[name] = ["not a MissingDependencyError", repr(exc)]
print(json.dumps(out))
"""


def test_a_base_install_gets_the_pip_command_for_each_extra() -> None:
    """``ShixinClient.local()`` and the other optional paths on the base install alone."""
    result = subprocess.run(
        [sys.executable, "-c", BLOCK_EXTRAS + ON_A_BASE_INSTALL],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    assert answer.pop("rest") == "http://127.0.0.1:1"
    extras = {"local": "local", "async_local": "local", "grpc": "grpc", "async_rest": "async"}
    for name, extra in extras.items():
        base, is_import_error, named, message = answer[name]
        assert (base, is_import_error, named) == ("ShixinError", True, extra), answer[name]
        assert f'pip install "shixin-client[{extra}]"' in message, message


@pytest.fixture(scope="module")
def served_model() -> Iterator[list[str]]:
    """The committed model on the in-repo server, in its own process (which may use numpy)."""
    if importlib.util.find_spec("tensorflow") is None or importlib.util.find_spec("grpc") is None:
        pytest.skip("the local server needs the [server] extra")
    if not (REPO / "models" / "shixin").is_dir():
        pytest.skip("no committed export under models/shixin")
    script = (
        "import json, sys\n"
        "from shixin_client.server.testing import running_server\n"
        "with running_server('models/shixin', 'shixin') as server:\n"
        "    print(json.dumps([server.rest_url, 'grpc://' + server.grpc_target]), flush=True)\n"
        "    sys.stdin.read()\n"
    )
    server = subprocess.Popen(
        [sys.executable, "-c", script],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=REPO,
    )
    try:
        assert server.stdout is not None
        line = server.stdout.readline()
        if not line:
            pytest.fail("the local server did not start")
        yield json.loads(line)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.mark.slow
def test_recognize_against_the_local_server_without_numpy(
    served_model: list[str], real_samples: list[tuple[Path, str]]
) -> None:
    paths = [str(path) for path, _ in real_samples]
    expected = {}
    for url in served_model:
        with ShixinClient(url) as client:
            expected[url] = client.recognize_many(paths)
    code = (
        "from shixin_client import ShixinClient, AsyncShixinClient\nimport asyncio\n"
        "for url in given['urls']:\n"
        "    with ShixinClient(url) as client:\n"
        "        out[url] = [client.recognize(given['paths'][0]), *client.recognize_many(given['paths'])]\n"
        "async def main():\n"
        "    async with AsyncShixinClient(given['urls'][0]) as client:\n"
        "        return await client.recognize_many(given['paths'])\n"
        "if given['async']:\n"
        "    out['async'] = asyncio.run(main())\n"
    )
    has_httpx = importlib.util.find_spec("httpx") is not None
    answer = without_numpy(code, {"urls": served_model, "paths": paths, "async": has_httpx})
    for url in served_model:
        assert answer[url] == [expected[url][0], *expected[url]], url
    if has_httpx:
        assert answer["async"] == expected[served_model[0]]


# The Pillow preprocessing against the numpy formulas it stands for.


def reference_gray(rgba: np.ndarray) -> tuple[np.ndarray, float]:
    """uint8 RGBA -> the reference uint8 gray and colour spread, elementwise in float32."""
    values = rgba.astype(np.float32)
    alpha = values[..., 3:4] / 255.0
    rgb = values[..., :3] * alpha + 255.0 * (1.0 - alpha)
    gray = rgb[..., 0] * WEIGHTS[0] + rgb[..., 1] * WEIGHTS[1] + rgb[..., 2] * WEIGHTS[2]
    return gray.astype(np.uint8), float(rgb.max() - rgb.min())


def pillow_gray(picture: Image.Image) -> np.ndarray:
    gray, _ = _gray(picture)
    return np.asarray(gray)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["RGB", "RGBA"])
def test_gray_is_the_elementwise_float32_formula_on_every_rgb_colour(mode: str) -> None:
    """All 2**24 colours as one 4096 x 4096 picture (about 2 s), opaque RGBA as the generator writes."""
    index = np.arange(1 << 24, dtype=np.uint32)
    rgb = np.stack([index >> 16, (index >> 8) & 255, index & 255], axis=-1).astype(np.uint8)
    rgb = rgb.reshape(4096, 4096, 3)
    values = rgb.astype(np.float32)
    expected = (
        values[..., 0] * WEIGHTS[0] + values[..., 1] * WEIGHTS[1] + values[..., 2] * WEIGHTS[2]
    ).astype(np.uint8)
    del values
    pixels = rgb if mode == "RGB" else np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)])
    gray, spread = _gray(Image.fromarray(pixels, mode))
    assert int((np.asarray(gray) != expected).sum()) == 0
    assert math.isinf(spread)  # grays 2 or more apart: certainly not blank, no exact spread needed
    nearly_flat = pixels[:70, :160].copy()
    nearly_flat[..., :3] = np.random.default_rng(4).integers(200, 202, size=(70, 160, 3), dtype=np.uint8)
    assert _gray(Image.fromarray(nearly_flat, mode))[1] == 1.0
    assert _gray(Image.fromarray(np.full_like(nearly_flat, 255), mode))[1] == 0.0


def test_compositing_on_white_matches_numpy_for_every_colour_and_alpha() -> None:
    """Every (channel value, alpha) pair, each channel a different colour, then a random sample."""
    c, a = (v.astype(np.uint8) for v in np.meshgrid(np.arange(256), np.arange(256), indexing="ij"))
    every = np.stack([c, 255 - c, (c.astype(np.int32) * 7 % 256).astype(np.uint8), a], axis=-1)
    rng = np.random.default_rng(3)
    sample = rng.integers(0, 256, size=(1000, 1000, 4), dtype=np.uint8)
    sample[:200, :, 3] = 255  # opaque rows next to see-through ones
    # Nearly flat: the gray alone cannot tell, so the exact spread is computed (about 1.2 here).
    nearly_flat = np.concatenate(
        [
            rng.integers(200, 202, size=(70, 160, 3), dtype=np.uint8),
            rng.integers(254, 256, (70, 160, 1), np.uint8),
        ],
        axis=2,
    )
    flat = np.full((70, 160, 4), (9, 9, 9, 0), np.uint8)
    for rgba in (every, sample, nearly_flat, flat):
        expected, spread = reference_gray(rgba)
        gray, pillow_spread = _gray(Image.fromarray(rgba, "RGBA"))
        assert int((np.asarray(gray) != expected).sum()) == 0
        # The exact spread, or infinity where the gray alone shows the picture is not blank.
        assert pillow_spread == spread or (math.isinf(pillow_spread) and spread >= 1.0)
    assert 1.0 <= _gray(Image.fromarray(nearly_flat, "RGBA"))[1] < 2.0
    assert _gray(Image.fromarray(flat, "RGBA"))[1] == 0.0


def test_gray_and_gray_alpha_pictures_match_numpy() -> None:
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    rgba = np.stack([levels, levels, levels, np.full_like(levels, 255)], axis=-1)
    assert np.array_equal(pillow_gray(Image.fromarray(levels, "L")), reference_gray(rgba)[0])
    la = np.random.default_rng(4).integers(0, 256, size=(300, 300, 2), dtype=np.uint8)
    rgba = np.stack([la[..., 0], la[..., 0], la[..., 0], la[..., 1]], axis=-1)
    assert np.array_equal(pillow_gray(Image.fromarray(la, "LA")), reference_gray(rgba)[0])


def reference_wide(wide: np.ndarray, sixteen_bit: bool) -> tuple[np.ndarray, float]:
    """numpy's reading of 16-bit, "I" and "F" pictures: one gray channel scaled to 0..255 in float64."""
    values = wide.astype(np.float64)
    peak = 65535.0 if sixteen_bit or values.max() > 255 else 255.0
    level = np.clip(values * (255.0 / peak), 0, 255).astype(np.float32)
    gray = level * WEIGHTS[0] + level * WEIGHTS[1] + level * WEIGHTS[2]
    return gray.astype(np.uint8), float(level.max() - level.min())


@pytest.mark.parametrize(
    ("mode", "values"),
    [
        ("I;16", np.arange(65536, dtype=np.uint16).reshape(256, 256)),
        ("I", np.arange(-512, 65536 + 512, dtype=np.int32).reshape(-1, 256)),
        ("I", np.random.default_rng(5).integers(-5, 256, size=(100, 100), dtype=np.int32)),
        ("F", (np.random.default_rng(6).random((100, 100)) * 255).astype(np.float32)),
        ("F", (np.random.default_rng(7).random((100, 100)) * 70000 - 100).astype(np.float32)),
    ],
)
def test_wide_pictures_match_numpy(mode: str, values: np.ndarray) -> None:
    picture = Image.fromarray(values)
    assert picture.mode == mode
    expected, spread = reference_wide(values, mode.startswith("I;16"))
    gray, pillow_spread = _gray(picture)
    assert int((np.asarray(gray) != expected).sum()) == 0
    assert pillow_spread == spread


def test_preprocess_thresholds_above_the_histogram_mean() -> None:
    rng = np.random.default_rng(8)
    for _ in range(20):
        rgba = rng.integers(0, 256, size=(70, 160, 4), dtype=np.uint8)
        gray, _ = reference_gray(rgba)
        expected = (gray > gray.mean()).astype(np.float32)[:, :, None]
        assert np.array_equal(preprocess(Image.fromarray(rgba, "RGBA")), expected)


# Greedy decoding: the plain Python path gives what the numpy path gives.


def _softmaxes() -> Iterator[np.ndarray]:
    rng = np.random.default_rng(9)
    for batch, steps, classes in [(1, 40, 37), (5, 40, 37), (3, 7, 4), (2, 1, 3)]:
        yield rng.random((batch, steps, classes)).astype(np.float32)
        # Few distinct values: ties inside frames, and runs of equal argmax.
        yield (rng.integers(0, 3, size=(batch, steps, classes)) / 2).astype(np.float32)
        with_nan = rng.random((batch, steps, classes)).astype(np.float32)
        with_nan[rng.random(with_nan.shape) < 0.02] = np.nan
        yield with_nan
        signed = rng.choice(np.array([-0.0, 0.0, 0.5, np.inf, -np.inf], np.float32), (batch, steps, classes))
        yield signed


def _same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@pytest.mark.parametrize("index", range(16))
def test_python_greedy_decoding_equals_numpy(index: int) -> None:
    array = list(_softmaxes())[index]
    classes = array.shape[2]
    spec = CaptchaSpec(
        charset="abcdefghijklmnopqrstuvwxyz0123456789"[: classes - 1],
        blank_index=classes - 1,
        label_length=4,
        height=70,
        width=160,
        time_steps=array.shape[1],
    )
    tensor = Tensor("float32", array.shape, array.reshape(-1).tolist())
    for blank in (0, classes - 1):
        assert greedy_decode(tensor, blank) == greedy_decode(array, blank)
    for ours, theirs in zip(decode_softmax(tensor, spec), decode_softmax(array, spec), strict=True):
        assert ours.text == theirs.text
        assert _same(ours.confidence, theirs.confidence)
        assert len(ours.char_probabilities) == len(theirs.char_probabilities)
        assert all(
            _same(x, y) for x, y in zip(ours.char_probabilities, theirs.char_probabilities, strict=True)
        )


def test_rest_answers_decode_the_same_with_and_without_numpy() -> None:
    softmax = np.random.default_rng(10).random((3, 40, 37)).astype(np.float32)
    body = json.dumps({"predictions": softmax.tolist()}).encode()
    tensor = _rest_codec.parse_predict(body, OUTPUT_SOFTMAX)[OUTPUT_SOFTMAX]
    assert isinstance(tensor, Tensor) and np.array_equal(np.asarray(tensor), softmax)
    assert decode_softmax(tensor, DEFAULT_SPEC) == decode_softmax(softmax, DEFAULT_SPEC)


def test_missing_numpy_features_are_typed_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process too: with numpy gone, each numpy feature names itself and the extra."""

    def model(request: MockRequest) -> Any:
        raise AssertionError(f"nothing may be sent before the numpy check, got {request}")

    client = ShixinClient(transport=MockTransport(model))
    monkeypatch.setitem(sys.modules, "numpy", None)
    for options, feature in [
        ({"payload": "tensor"}, "float tensors"),
        ({"beam_width": 3}, "beam search"),
    ]:
        with pytest.raises(MissingDependencyError, match=rf'{feature}.*pip install "shixin-client\[numpy\]"'):
            client.with_options(**options).recognize(encoded(captcha(), "PNG"))
    with pytest.raises(MissingDependencyError, match="with_softmax"):
        client.predict(encoded(captcha(), "PNG"), with_softmax=True)
    with pytest.raises(MissingDependencyError, match=r"shixin-client\[numpy\]"):
        preprocess(encoded(captcha(), "PNG"))
    # What sends no image needs no numpy, whatever the payload.
    up = ModelStatus("shixin", (VersionStatus(1, "AVAILABLE"),))
    tensor_client = ShixinClient(transport=MockTransport(lambda request: up), payload="tensor")
    assert tensor_client.status() == up and tensor_client.ready()


@pytest.mark.parametrize("size", [(160, 70), (157, 33), (9, 8)])
def test_wire_png_reads_back_as_the_preprocessed_picture(size: tuple[int, int]) -> None:
    """wire_bytes writes its 1-bit PNG itself; Pillow reads back exactly the thresholded pixels."""
    width, height = size
    spec = CaptchaSpec(
        charset=DEFAULT_SPEC.charset,
        blank_index=DEFAULT_SPEC.blank_index,
        label_length=4,
        height=height,
        width=width,
        time_steps=DEFAULT_SPEC.time_steps,
    )
    data = encoded(captcha(seed=width), "PNG")
    sent = Image.open(io.BytesIO(wire_bytes(data, spec)))
    sent.load()  # checks every chunk's CRC
    assert (sent.format, sent.mode, sent.size) == ("PNG", "1", size)
    assert np.array_equal(np.asarray(sent, dtype=np.float32)[:, :, None], preprocess(data, spec))
