"""The in-graph preprocessing (export/tf_preprocess.py) against the one in shixin_client/_images.py.

What a client sends is ``wire_bytes(image)``; the server's bytes signature must then see
exactly the tensor that ``preprocess(image)`` gives the float signature.
"""

from __future__ import annotations

import io
import struct
import zlib
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from export.tf_preprocess import decode_and_preprocess
from shixin_client import decode_softmax
from shixin_client._images import DEFAULT_LIMITS, preprocess, wire_bytes
from shixin_client._spec import (
    DEFAULT_SPEC,
    INPUT_BYTES,
    INPUT_FLOAT,
    OUTPUT_SOFTMAX,
    SIGNATURE_BYTES,
    SIGNATURE_FLOAT,
)

in_graph = tf.function(lambda files: decode_and_preprocess(files, DEFAULT_SPEC))


def _encode(picture: Image.Image, fmt: str, **options: Any) -> bytes:
    out = io.BytesIO()
    picture.save(out, format=fmt, **options)
    return out.getvalue()


def _variants(picture: Image.Image) -> dict[str, bytes]:
    """One captcha in every format and mode a client may send."""
    palette = picture.convert("P")
    see_through = picture.copy()
    see_through.putalpha(Image.linear_gradient("L").resize(picture.size))
    animated = io.BytesIO()
    picture.convert("RGB").save(
        animated, format="GIF", save_all=True, append_images=[Image.new("RGB", picture.size, "red")]
    )
    return {
        "png-rgba": _encode(picture, "PNG"),
        "png-alpha-gradient": _encode(see_through, "PNG"),
        "png-rgb": _encode(picture.convert("RGB"), "PNG"),
        "png-l": _encode(picture.convert("L"), "PNG"),
        "png-la": _encode(see_through.convert("LA"), "PNG"),
        "png-p": _encode(palette, "PNG"),
        "png-p-transparent": _encode(palette, "PNG", transparency=0),
        "png-1": _encode(picture.convert("1"), "PNG"),
        "jpeg-rgb": _encode(picture.convert("RGB"), "JPEG"),
        "jpeg-l": _encode(picture.convert("L"), "JPEG", quality=60),
        "gif": _encode(picture.convert("RGB"), "GIF"),
        "gif-transparent": _encode(palette, "GIF", transparency=0),
        "gif-animated": animated.getvalue(),
        "bmp-rgb": _encode(picture.convert("RGB"), "BMP"),
        "bmp-l": _encode(picture.convert("L"), "BMP"),
        "bmp-p": _encode(palette, "BMP"),
        "bmp-rgba": _encode(see_through, "BMP"),
    }


def _assert_same_tensors(files: list[bytes]) -> None:
    want = np.stack([preprocess(data) for data in files])
    got = in_graph(tf.constant([wire_bytes(data) for data in files])).numpy()
    assert got.shape == want.shape
    differing = [i for i in range(len(files)) if not np.array_equal(got[i], want[i])]
    assert differing == [], f"in-graph preprocessing differs on images {differing}"


def test_same_tensor_for_every_format_and_mode(make_pngs: Callable[..., list[bytes]]) -> None:
    pictures = [Image.open(io.BytesIO(data)) for data in make_pngs(3, seed=11)]
    for picture in pictures:
        variants = _variants(picture)
        want = np.stack([preprocess(data) for data in variants.values()])
        got = in_graph(tf.constant([wire_bytes(data) for data in variants.values()])).numpy()
        for index, name in enumerate(variants):
            assert np.array_equal(got[index], want[index]), f"{name}: in-graph tensor differs"


def test_same_tensor_on_generated_and_real_captchas(
    make_pngs: Callable[..., list[bytes]], real_files: list[bytes]
) -> None:
    _assert_same_tensors(make_pngs(100) + real_files)


# (width, height): both passes shrinking, growing, one pass only, and the sizes where
# Pillow runs the vertical pass first (height shrinks by over twice the width's shrink).
@pytest.mark.parametrize(
    "size", [(200, 88), (120, 52), (320, 140), (161, 70), (150, 200), (170, 150), (90, 300)]
)
def test_other_sizes_are_resized_like_pillow(
    make_pngs: Callable[..., list[bytes]], size: tuple[int, int]
) -> None:
    files = [_encode(Image.open(io.BytesIO(data)).resize(size), "PNG") for data in make_pngs(8, seed=5)]
    _assert_same_tensors(files)


def _softmax_parity(loaded: Any, files: list[bytes]) -> None:
    floats = np.stack([preprocess(data) for data in files])
    by_float = loaded.signatures[SIGNATURE_FLOAT](**{INPUT_FLOAT: tf.constant(floats)})[
        OUTPUT_SOFTMAX
    ].numpy()
    wire = tf.constant([wire_bytes(data) for data in files])
    by_bytes = loaded.signatures[SIGNATURE_BYTES](**{INPUT_BYTES: wire})[OUTPUT_SOFTMAX].numpy()
    assert np.abs(by_bytes - by_float).max() <= 1e-4
    assert [p.text for p in decode_softmax(by_bytes, DEFAULT_SPEC)] == [
        p.text for p in decode_softmax(by_float, DEFAULT_SPEC)
    ]


def test_bytes_signature_answers_like_the_float_signature(
    loaded: Any, make_pngs: Callable[..., list[bytes]], real_files: list[bytes]
) -> None:
    _softmax_parity(loaded, make_pngs(100) + real_files)


@pytest.mark.slow
def test_bytes_signature_answers_like_the_float_signature_on_1000_captchas(
    loaded: Any, make_pngs: Callable[..., list[bytes]], real_files: list[bytes]
) -> None:
    files = make_pngs(1000, seed=1234)
    for start in range(0, len(files), 250):
        _softmax_parity(loaded, files[start : start + 250])
    _softmax_parity(loaded, real_files)


@pytest.mark.parametrize(
    "bad",
    [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, b"GIF89a\x10\x00"],
    ids=["empty", "text", "png-header-only", "gif-header-only"],
)
def test_undecodable_bytes_are_an_invalid_argument_error(
    loaded: Any, real_files: list[bytes], bad: bytes
) -> None:
    """TF Serving maps InvalidArgumentError to 400 / INVALID_ARGUMENT; the process survives."""
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures[SIGNATURE_BYTES](**{INPUT_BYTES: tf.constant([real_files[0], bad])})
    ok = loaded.signatures[SIGNATURE_BYTES](**{INPUT_BYTES: tf.constant(real_files[:1])})
    assert ok[OUTPUT_SOFTMAX].shape == (1, DEFAULT_SPEC.time_steps, DEFAULT_SPEC.num_classes)


def test_truncated_png_is_an_invalid_argument_error(
    loaded: Any, make_pngs: Callable[..., list[bytes]]
) -> None:
    (data,) = make_pngs(1)
    with pytest.raises(tf.errors.InvalidArgumentError):
        loaded.signatures[SIGNATURE_BYTES](**{INPUT_BYTES: tf.constant([data[: len(data) // 2]])})


def _png_bomb(width: int, height: int) -> bytes:
    """A valid all-black 1-bit PNG: a few KB that decode to width x height pixels."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    rows = (b"\0" + b"\0" * ((width + 7) // 8)) * height
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )


def _claiming(data: bytes, offset: int, size: bytes) -> bytes:
    return data[:offset] + size + data[offset + len(size) :]


def test_pictures_over_the_pixel_limit_are_refused(loaded: Any, real_files: list[bytes]) -> None:
    limit = DEFAULT_LIMITS.max_pixels
    picture = Image.open(io.BytesIO(real_files[0]))
    over = {
        "png-bomb": _png_bomb(40_000, 40_000),
        "png-decoded": _encode(Image.new("1", (5000, limit // 5000 + 1), 1), "PNG"),
        "gif-header": _claiming(_encode(picture.convert("RGB"), "GIF"), 6, struct.pack("<HH", 65535, 65535)),
        "bmp-header": _claiming(
            _encode(picture.convert("RGB"), "BMP"), 18, struct.pack("<ii", 30000, -30000)
        ),
        "jpeg": _encode(Image.new("L", (5000, limit // 5000 + 1), 200), "JPEG", quality=10),
    }
    for data in over.values():  # the bomb and the forged headers are refused before decoding
        with pytest.raises(tf.errors.InvalidArgumentError, match=f"over the {limit}-pixel limit"):
            loaded.signatures[SIGNATURE_BYTES](**{INPUT_BYTES: tf.constant([data])})
