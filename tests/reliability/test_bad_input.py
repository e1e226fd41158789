"""The bad-input corpus: every kind is refused as InvalidInputError or read right.

Each kind's name states the decision. Refused kinds must raise InvalidInputError whose
``input`` names the item and whose ``problem`` says what is wrong, before anything is
sent. Odd but valid images (palette, CMYK, LA, 16-bit, animated GIF, EXIF-rotated,
a PNG named .jpg) must give the text of the plain PNG of the same picture, and that
text must be what the model reads from that picture alone. The corpus runs through
a MockTransport playing the model and over REST and gRPC to the local server.
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image, ImageFile, ImageOps

from shixin_client import InvalidInputError, MockTransport, ShixinClient
from shixin_client._images import ImageLimits, preprocess
from shixin_client._spec import INPUT_DESCRIBE
from shixin_client.cli import main

TRANSPORTS = ["mock", "rest", "grpc"]


@dataclass(frozen=True)
class Refused:
    input: Any
    names: str  # what err.input must contain
    problem: str  # what err.problem must contain


@dataclass(frozen=True)
class Valid:
    input: Any
    plain_png: bytes  # the same picture as an ordinary 8-bit PNG


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def blank_png(width: int, height: int, bit_depth: int) -> bytes:
    """A valid grayscale PNG of any size, compressed as the zeros it holds (a bomb when large)."""
    row = b"\0" * (1 + (width * bit_depth + 7) // 8)
    packer = zlib.compressobj(9)
    rows_per_chunk = 256
    body = b"".join(packer.compress(row * rows_per_chunk) for _ in range(height // rows_per_chunk))
    body += packer.compress(row * (height % rows_per_chunk)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, bit_depth, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", body)
        + _png_chunk(b"IEND", b"")
    )


def encode(picture: Image.Image, fmt: str = "PNG", **params: Any) -> bytes:
    out = io.BytesIO()
    picture.save(out, format=fmt, **params)
    return out.getvalue()


def plain(data: bytes) -> bytes:
    """What a user would get by opening the file in an image viewer and saving it as PNG."""
    picture = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    return encode(picture.convert("RGBA" if "A" in picture.mode else "RGB"))


def build_corpus(folder: Path, captchas: list[bytes]) -> dict[str, Refused | Valid]:
    rgb = Image.open(io.BytesIO(captchas[0])).convert("RGB")
    other = Image.open(io.BytesIO(captchas[1])).convert("RGB")
    jpeg = encode(rgb, "JPEG", quality=90)
    png = captchas[0]

    def file(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        return path

    empty = file("empty.png", b"")
    text = file("notes.png", b"the captcha is 3a3b\n")
    html = file("page.png", b"<!DOCTYPE html><html><body><img src='x.png'></body></html>\n")
    pdf = file("scan.png", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n")
    binary = file("blob.png", np.random.default_rng(5).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    named_jpg = file("really_png.jpg", png)
    text_mode = open(file("binary_opened_as_text.png", png), encoding="latin-1")  # noqa: SIM115

    gray = np.asarray(rgb.convert("L"))
    sixteen = Image.fromarray(gray.astype(np.uint16) * 257)
    la = rgb.convert("LA")
    alpha = np.full(gray.shape, 255, np.uint8)
    alpha[:, rgb.width // 2 :] = 160
    la.putalpha(Image.fromarray(alpha))
    rotated = rgb.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display": undoes the ROTATE_90 above
    gif = io.BytesIO()
    rgb.save(gif, format="GIF", save_all=True, append_images=[other], duration=100, loop=0)

    def valid(data: bytes, source: Any = None) -> Valid:
        return Valid(data if source is None else source, plain(data))

    clear = Image.new("RGBA", rgb.size, (0, 0, 0, 0))
    cases: dict[str, Refused | Valid] = {
        "empty_file-refused": Refused(empty, str(empty), "empty (0 bytes)"),
        "zero_bytes-refused": Refused(b"", "bytes[0]", "empty (0 bytes)"),
        "truncated_png-refused": Refused(png[: len(png) // 2], "bytes[", "truncated or corrupt"),
        "truncated_jpeg-refused": Refused(jpeg[: len(jpeg) // 2], "bytes[", "truncated or corrupt"),
        "text_file-refused": Refused(text, str(text), "not a recognised image"),
        "html_file-refused": Refused(html, str(html), "not a recognised image"),
        "pdf-refused": Refused(pdf, str(pdf), "not a recognised image"),
        "directory_path-refused": Refused(folder, str(folder), "is a directory"),
        "missing_path-refused": Refused(folder / "nope.png", "nope.png", "no such file"),
        "non_image_binary-refused": Refused(binary, str(binary), "not a recognised image"),
        "text_mode_file_object-refused": Refused(text_mode, "binary_opened_as_text", "binary mode"),
        "over_byte_limit-refused": Refused(b"\x89PNG" + bytes(21 * 1024 * 1024), "bytes[", "byte limit"),
        "one_by_one-refused_too_small": Refused(encode(Image.new("RGB", (1, 1))), "bytes[", "smaller than"),
        "10000x10000-refused_over_pixel_limit": Refused(blank_png(10000, 10000, 8), "bytes[", "pixel limit"),
        "decompression_bomb-refused_before_decoding": Refused(
            blank_png(40000, 40000, 1), "bytes[", "pixel limit"
        ),
        "fully_transparent-refused_blank": Refused(encode(clear), "bytes[", "blank"),
        "nan_array-refused": Refused(np.full((70, 160), np.nan, np.float32), "array(70, 160)", "NaN"),
        "inf_array-refused": Refused(np.full((70, 160), np.inf, np.float64), "array(70, 160)", "infinite"),
        "negative_array-refused": Refused(-np.ones((70, 160), np.float32), "array(70, 160)", "[0, 1]"),
        "negative_int_array-refused": Refused(-np.ones((70, 160), np.int16), "int16", "0..255"),
        "rank_1_array-refused": Refused(np.zeros(11200, np.float32), "array(11200,)", "shape"),
        "rank_5_array-refused": Refused(np.zeros((1, 1, 70, 160, 1), np.float32), "array(", "shape"),
        "complex_dtype_array-refused": Refused(np.zeros((70, 160), np.complex64), "complex64", "dtype"),
        "string_dtype_array-refused": Refused(np.full((70, 160), "x"), "<U1", "dtype"),
        "batch_array_to_recognize-refused": Refused(
            np.zeros((2, 70, 160, 1), np.float32), "array(2", "2 images"
        ),
        "none-refused": Refused(None, "None", "None"),
        "empty_list_to_recognize-refused": Refused([], "list", "unsupported input type"),
        "png_named_jpg-read_as_png": Valid(named_jpg, png),
        "palette_png-read_as_rgb": valid(encode(rgb.convert("P", palette=Image.Palette.ADAPTIVE))),
        "cmyk_jpeg-read_as_rgb": valid(encode(rgb.convert("CMYK"), "JPEG", quality=95)),
        "la_png-alpha_composited_on_white": valid(encode(la)),
        "16bit_png-scaled_to_8bit": Valid(encode(sixteen), encode(rgb.convert("L"))),
        "animated_gif-first_frame": valid(gif.getvalue()),
        "exif_rotated_jpeg-turned_upright": valid(encode(rotated, "JPEG", quality=95, exif=exif)),
    }
    return cases


@pytest.fixture(scope="module")
def corpus(
    tmp_path_factory: pytest.TempPathFactory, captchas: list[bytes]
) -> Iterator[dict[str, Refused | Valid]]:
    cases = build_corpus(tmp_path_factory.mktemp("corpus"), captchas)
    yield cases
    cases["text_mode_file_object-refused"].input.close()


KINDS = [
    "empty_file-refused",
    "zero_bytes-refused",
    "truncated_png-refused",
    "truncated_jpeg-refused",
    "text_file-refused",
    "html_file-refused",
    "pdf-refused",
    "directory_path-refused",
    "missing_path-refused",
    "non_image_binary-refused",
    "text_mode_file_object-refused",
    "over_byte_limit-refused",
    "one_by_one-refused_too_small",
    "10000x10000-refused_over_pixel_limit",
    "decompression_bomb-refused_before_decoding",
    "fully_transparent-refused_blank",
    "nan_array-refused",
    "inf_array-refused",
    "negative_array-refused",
    "negative_int_array-refused",
    "rank_1_array-refused",
    "rank_5_array-refused",
    "complex_dtype_array-refused",
    "string_dtype_array-refused",
    "batch_array_to_recognize-refused",
    "none-refused",
    "empty_list_to_recognize-refused",
    "png_named_jpg-read_as_png",
    "palette_png-read_as_rgb",
    "cmyk_jpeg-read_as_rgb",
    "la_png-alpha_composited_on_white",
    "16bit_png-scaled_to_8bit",
    "animated_gif-first_frame",
    "exif_rotated_jpeg-turned_upright",
]


class Counting:
    """Wraps the mock model to count the predict calls that carried images."""

    def __init__(self, answer: Callable[[Any], Any]) -> None:
        self.answer = answer
        self.image_calls = 0

    def __call__(self, request: Any) -> Any:
        if request.kind == "predict" and request.inputs and INPUT_DESCRIBE not in request.inputs:
            self.image_calls += 1
        return self.answer(request)


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def client(transport: str, oracle: Any, request: pytest.FixtureRequest) -> Iterator[tuple[ShixinClient, Any]]:
    """A client that reads every answer: the re-encoded captchas are the preprocessing's test, and
    the untrained oracle is unsure of some of them (min_confidence=0)."""
    if transport == "mock":
        counter = Counting(oracle.answer)
        with ShixinClient(transport=MockTransport(counter), min_confidence=0) as mock:
            yield mock, counter
        return
    urls = request.getfixturevalue("server_urls")
    with ShixinClient(urls[transport], timeout=30, min_confidence=0) as remote:
        yield remote, None


def test_corpus_has_every_kind_the_issue_lists(corpus: dict[str, Refused | Valid]) -> None:
    assert sorted(corpus) == sorted(KINDS) and len(KINDS) >= 25


@pytest.mark.parametrize("kind", KINDS)
def test_bad_input(
    kind: str, corpus: dict[str, Refused | Valid], client: tuple[ShixinClient, Any], oracle: Any
) -> None:
    shixin, counter = client
    case = corpus[kind]
    if isinstance(case, Refused):
        if hasattr(case.input, "seek"):
            case.input.seek(0)
        with pytest.raises(InvalidInputError) as caught:
            shixin.recognize(case.input)
        assert case.names in caught.value.input, caught.value
        assert case.problem in caught.value.problem, caught.value
        assert str(caught.value).startswith(caught.value.input)
        if counter is not None:
            assert counter.image_calls == 0, "a refused input must not be sent"
        return
    text = shixin.recognize(case.input)
    assert text == oracle.text(case.plain_png)
    assert text == shixin.recognize(case.plain_png)
    for payload in ("image", "tensor"):  # both signatures read the picture the same way
        assert shixin.recognize(case.input, payload=payload) == text


def test_empty_list_to_recognize_many_is_no_request(client: tuple[ShixinClient, Any]) -> None:
    shixin, counter = client
    assert shixin.recognize_many([]) == []
    if counter is not None:
        assert counter.image_calls == 0


def test_decompression_bomb_is_refused_from_the_header_alone(
    corpus: dict[str, Refused | Valid], monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = corpus["decompression_bomb-refused_before_decoding"]
    assert isinstance(bomb, Refused) and len(bomb.input) < 300_000  # 1.6 G pixels in a small file

    def no_decoding(self: Any) -> Any:
        raise AssertionError("the bomb's pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    with pytest.raises(InvalidInputError, match="1600000000 pixels|40000x40000"):
        preprocess(bomb.input)


def test_image_limits_are_configurable(captchas: list[bytes], oracle: Any) -> None:
    assert preprocess(captchas[0]).shape == (70, 160, 1)
    strict = ShixinClient(transport=MockTransport(oracle.answer), image_limits=ImageLimits(max_pixels=10_000))
    with pytest.raises(InvalidInputError, match="over the 10000-pixel limit"):
        strict.recognize(captchas[0])
    with pytest.raises(InvalidInputError, match="over the 10000-pixel limit"):
        strict.recognize(captchas[0], payload="tensor")
    relaxed = strict.with_options(image_limits=ImageLimits())
    assert relaxed.recognize(captchas[0]) == oracle.text(captchas[0])
    with pytest.raises(InvalidInputError, match="over the 10000-pixel limit"):
        preprocess(captchas[0], limits=ImageLimits(max_pixels=10_000))
    with pytest.raises(InvalidInputError, match="over the 1000-byte limit"):
        preprocess(captchas[0], limits=ImageLimits(max_bytes=1000))
    with pytest.raises(InvalidInputError, match="smaller than 200x100"):
        preprocess(captchas[0], limits=ImageLimits(min_width=200, min_height=100))


def _mixed(corpus: dict[str, Refused | Valid], captchas: list[bytes]) -> tuple[list[Any], list[int]]:
    """Good captchas with bad items between them; returns the items and the bad positions."""
    bad = [
        "empty_file-refused",
        "missing_path-refused",
        "truncated_png-refused",
        "nan_array-refused",
        "none-refused",
    ]
    items: list[Any] = []
    bad_at: list[int] = []
    for position, image in enumerate(captchas[:6]):
        items.append(image)
        if position < len(bad):
            bad_at.append(len(items))
            items.append(corpus[bad[position]].input)
    return items, bad_at


def test_one_bad_item_fails_alone_in_recognize_many(
    corpus: dict[str, Refused | Valid], captchas: list[bytes], client: tuple[ShixinClient, Any], oracle: Any
) -> None:
    shixin, _ = client
    items, bad_at = _mixed(corpus, captchas)
    results = shixin.recognize_many(items, return_exceptions=True, batch_size=2)
    assert len(results) == len(items)
    for index, (item, result) in enumerate(zip(items, results, strict=True)):
        if index in bad_at:
            assert isinstance(result, InvalidInputError) and result.input.startswith(f"item {index} ")
        else:
            assert result == oracle.text(item)
    with pytest.raises(InvalidInputError, match="^item 1 "):
        shixin.recognize_many(items)


def test_one_bad_file_fails_alone_in_the_cli(
    tmp_path: Path,
    captchas: list[bytes],
    corpus: dict[str, Refused | Valid],
    server_urls: dict[str, str],
    oracle: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths: list[str] = []
    for index, data in enumerate(captchas[:4]):
        path = tmp_path / f"good{index}.png"
        path.write_bytes(data)
        paths.append(str(path))
    bad = [str(corpus[kind].input) for kind in ("empty_file-refused", "text_file-refused", "pdf-refused")]
    argv = [paths[0], bad[0], paths[1], bad[1], paths[2], bad[2], paths[3]]
    for url in server_urls.values():
        assert main(["recognize", *argv, "--server", url, "--format", "json", "--batch-size", "2"]) == 1
        out, err = capsys.readouterr()
        records = json.loads(out)
        assert [r["path"] for r in records] == argv
        for record, path in zip(records, argv, strict=True):
            if path in bad:
                assert record["type"] == "InvalidInputError" and "text" not in record
            else:
                assert record["text"] == oracle.text(Path(path))
        assert [line.split(": ")[1] for line in err.strip().splitlines()] == bad
