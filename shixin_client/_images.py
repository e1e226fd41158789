"""Any image input -> a decoded picture, wire bytes, or the reference float tensor.

This is the project's one preprocessing (reference-model-and-data.md, "The reference
preprocessing"): alpha composited on white, gray ``r*0.299 + g*0.587 + b*0.114``
truncated to uint8, threshold at the image mean (pixel > mean -> 1, else 0), as a
float32 [height, width, 1] tensor in [0, 1]. Training, export's parity checks, the
embedded runtime and the client's float path all call :func:`preprocess`; export's
in-graph TensorFlow version is the only second implementation and a test holds it here.

It runs on Pillow alone, so the plain client needs no numpy: every step is float32
arithmetic done elementwise in a fixed order (IEEE, the same on every CPU; numpy's
``rgb @ weights`` goes through BLAS and rounds differently on some colours), in one
matrix conversion for opaque pictures and ImageMath for see-through ones, then
integer work on the histogram. numpy is imported only to hand callers the float tensor
(:func:`preprocess`) and to read numpy-array inputs. tests/test_numpy_free.py holds
the Pillow steps to the numpy formulas on every RGB colour and every (colour, alpha).

Every problem with an input is an :class:`InvalidInputError` naming the input, found
before anything is sent: the format is sniffed from the bytes (never the file name),
the pixel count is checked before decoding (decompression bombs), and blank or
degenerate pictures are refused rather than turned into a wrong string.
"""

from __future__ import annotations

import io
import math
import operator
import os
import struct
import sys
import warnings
import zlib
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Union

from PIL import Image, ImageMath, ImageOps, UnidentifiedImageError

from ._config import DEFAULT_LIMITS, ImageLimits
from ._exceptions import InvalidInputError, require_numpy
from ._spec import DEFAULT_SPEC, CaptchaSpec

if TYPE_CHECKING:
    import numpy as np

ImageInput = Union[
    str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Image.Image, "np.ndarray"
]

#: File name endings a folder scan takes as images (``shixin recognize DIR``, the examples),
#: case-insensitive: the raster formats Pillow decodes with the libraries its wheels bundle.
#: Only the scan reads it; every input's format is still sniffed from its bytes.
IMAGE_SUFFIXES = frozenset(
    {".png", ".apng", ".jpg", ".jpeg", ".jpe", ".jfif", ".gif", ".bmp", ".dib", ".webp", ".tif", ".tiff"}
    | {".pbm", ".pgm", ".ppm", ".pnm", ".tga"}
)

#: The reference gray weights, applied elementwise in float32: ``(r*w0 + g*w1) + b*w2``.
GRAY_WEIGHTS = (0.299, 0.587, 0.114)

#: Pillow's RGB -> L matrix conversion, one C pass: it weighs the bands in float32 and rounds
#: (adds 0.5, then truncates). An offset of -0.5 cancels the rounding, and the result is the
#: reference's truncated gray for every one of the 2**24 colours (tests/test_numpy_free.py
#: checks them all, so a Pillow that computed it otherwise would fail there, not here).
_GRAY_MATRIX = (*GRAY_WEIGHTS, -0.5)

#: Modes read as one wide gray channel (16-bit, 32-bit integer, float) rather than RGBA.
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")


def is_ndarray(value: object) -> bool:
    """Whether ``value`` is a numpy array, without importing numpy (no numpy, no arrays)."""
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, numpy.ndarray)


def input_name(image: object, index: int | None = None) -> str:
    """A short, safe name for an input, used in every error about it."""
    prefix = f"item {index} " if index is not None else ""
    if isinstance(image, (str, os.PathLike)):
        return f"{prefix}{os.fspath(image)!r}".strip()
    if isinstance(image, (bytes, bytearray, memoryview)):
        return f"{prefix}bytes[{len(image)}]".strip()
    if is_ndarray(image):
        return f"{prefix}array{tuple(image.shape)}:{image.dtype}".strip()  # type: ignore[attr-defined]
    if isinstance(image, Image.Image):
        return f"{prefix}PIL.Image({image.mode} {image.width}x{image.height})".strip()
    name = getattr(image, "name", None)
    if isinstance(name, str):
        return f"{prefix}{name!r}".strip()
    return f"{prefix}{type(image).__name__}".strip()


def read_source(image: ImageInput, name: str, limits: ImageLimits = DEFAULT_LIMITS) -> bytes | None:
    """The encoded file bytes behind a path, bytes or file input; None for decoded inputs."""
    if image is None:
        raise InvalidInputError(name, "no image given (None)")
    if isinstance(image, Image.Image) or is_ndarray(image):
        return None
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if not path.exists():
            raise InvalidInputError(name, "no such file")
        if path.is_dir():
            raise InvalidInputError(name, "is a directory, not an image file")
        size = path.stat().st_size
        if size > limits.max_bytes:
            raise InvalidInputError(name, f"file is {size} bytes, over the {limits.max_bytes}-byte limit")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(name, f"cannot be read: {exc.strerror or exc}") from exc
    elif isinstance(image, (bytes, bytearray, memoryview)):
        data = bytes(image)
    elif hasattr(image, "read"):
        try:
            data = image.read(limits.max_bytes + 1)
        except (OSError, ValueError) as exc:
            raise InvalidInputError(name, f"file object cannot be read: {exc}") from exc
        if not isinstance(data, bytes):
            raise InvalidInputError(name, "file object must be opened in binary mode")
    else:
        raise InvalidInputError(
            name, "unsupported input type; give a path, bytes, a binary file, a PIL image or a numpy array"
        )
    if not data:
        raise InvalidInputError(name, "is empty (0 bytes)")
    if len(data) > limits.max_bytes:
        raise InvalidInputError(name, f"is {len(data)} bytes, over the {limits.max_bytes}-byte limit")
    return data


def _array_to_image(array: np.ndarray, name: str) -> Image.Image:
    import numpy as np  # an array was given, so numpy is there

    if array.size == 0:
        raise InvalidInputError(name, "array is empty")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise InvalidInputError(
            name, f"array shape {array.shape} is not HxW, HxWx1, HxWx3 or HxWx4 (use a 4-D array for a batch)"
        )
    if array.dtype == np.bool_:
        pixels = array.astype(np.uint8) * 255
    elif np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            raise InvalidInputError(name, "array holds NaN or infinite values")
        if array.min() < 0.0 or array.max() > 1.0:
            raise InvalidInputError(name, "float array values must lie in [0, 1]")
        pixels = np.round(array * 255.0).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise InvalidInputError(name, "integer array values must lie in 0..255")
        pixels = array.astype(np.uint8)
    else:
        raise InvalidInputError(name, f"array dtype {array.dtype} is not an image dtype")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2] if pixels.ndim == 3 else 2]
    return Image.fromarray(np.ascontiguousarray(pixels), mode=mode)


def _decode(data: bytes, name: str, limits: ImageLimits) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data))
            width, height = picture.size
            if width * height > limits.max_pixels:
                raise InvalidInputError(
                    name, f"image is {width}x{height} pixels, over the {limits.max_pixels}-pixel limit"
                )
            picture.seek(0)
            picture.load()
    except InvalidInputError:
        raise
    except UnidentifiedImageError as exc:
        raise InvalidInputError(name, "is not a recognised image file") from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow refuses from the header alone, before our own size check runs.
        limit = min(limits.max_pixels, Image.MAX_IMAGE_PIXELS or limits.max_pixels)
        raise InvalidInputError(
            name, f"refused before decoding: over the {limit}-pixel limit ({exc})"
        ) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidInputError(name, f"image data is truncated or corrupt ({exc})") from exc
    return picture


def open_image(
    image: ImageInput, name: str | None = None, limits: ImageLimits = DEFAULT_LIMITS
) -> Image.Image:
    """Decode any accepted input into a checked, upright PIL image (first frame only)."""
    name = name or input_name(image)
    data = read_source(image, name, limits)
    if is_ndarray(image):
        picture = _array_to_image(image, name)  # type: ignore[arg-type]
    elif isinstance(image, Image.Image):
        picture = image
    else:
        assert data is not None
        picture = _decode(data, name, limits)
        picture = ImageOps.exif_transpose(picture) or picture
    width, height = picture.size
    if width < limits.min_width or height < limits.min_height:
        raise InvalidInputError(
            name, f"image is {width}x{height}, smaller than {limits.min_width}x{limits.min_height}"
        )
    if width * height > limits.max_pixels:
        raise InvalidInputError(
            name, f"image is {width}x{height} pixels, over the {limits.max_pixels}-pixel limit"
        )
    return picture


def _float32(value: float) -> float:
    """``value`` rounded to the nearest float32, as numpy's ``.astype(np.float32)``."""
    rounded: float = struct.unpack("f", struct.pack("f", value))[0]
    return rounded


def _math(expression: Callable[[dict[str, Any]], Any], **images: Image.Image) -> Image.Image:
    """One float32 ImageMath expression over mode "F" images (elementwise, in C)."""
    result = ImageMath.lambda_eval(expression, **images)
    assert isinstance(result, Image.Image)
    return result


def _weighted_gray(r: Any, g: Any, b: Any) -> Any:
    """The reference gray ``(r*0.299 + g*0.587) + b*0.114`` of ImageMath float32 operands."""
    w0, w1, w2 = GRAY_WEIGHTS
    return r * w0 + g * w1 + b * w2


def _on_white(colour: Any, opacity: Any) -> Any:
    """One ImageMath float32 band composited on white: ``c*opacity + 255*(1 - opacity)``."""
    return colour * opacity + 255.0 * (1.0 - opacity)


def _gray_f(r: Image.Image, g: Image.Image, b: Image.Image) -> Image.Image:
    """The reference gray of three "F" bands, in float32."""
    return _math(lambda e: _weighted_gray(e["r"], e["g"], e["b"]), r=r, g=g, b=b)


@lru_cache(maxsize=1)
def _gray_of_level() -> list[int]:
    """The reference gray of the colour (v, v, v) for each v in 0..255, as a point() table."""
    levels = Image.frombytes("L", (256, 1), bytes(range(256))).convert("F")
    return list(_gray_f(levels, levels, levels).convert("L").tobytes())


def _spread(*bands: Image.Image) -> float:
    """max - min over all bands, as numpy's float32 ``rgb.max() - rgb.min()``."""
    return _spread_of([band.getextrema() for band in bands])


def _spread_of(extrema: Any) -> float:
    """max - min over (low, high) pairs, one per band."""
    high = max(float(e[1]) for e in extrema)
    low = min(float(e[0]) for e in extrema)
    return _float32(high - low)


def _composite_gray(e: dict[str, Any]) -> Any:
    """ImageMath: the gray of "F" bands r, g, b, a composited on white, as one expression."""
    opacity = e["a"] / 255.0
    return _weighted_gray(*(_on_white(e[name], opacity) for name in "rgb"))


def _composite(band: Image.Image, alpha: Image.Image) -> Image.Image:
    """One "F" band composited on white."""
    return _math(lambda e: _on_white(e["c"], e["a"] / 255.0), c=band, a=alpha)


def _gray(picture: Image.Image) -> tuple[Image.Image, float]:
    """The uint8 gray ("L") of a picture, and the spread of its colour values composited on white.

    Per pixel, in float32: alpha = a/255, colour c*alpha + 255*(1-alpha), then
    ``c0*0.299 + c1*0.587 + c2*0.114``, truncated toward zero (Pillow's F -> L). Wide
    modes (16-bit, "I", "F") are one gray channel scaled to 0..255 (by 1/257 when the
    picture is 16-bit or holds values over 255) and clipped.
    """
    if picture.mode in _WIDE_MODES:
        wide = picture.convert("F")
        high = wide.getextrema()[1]
        if picture.mode.startswith("I;16") or float(high) > 255:  # type: ignore[arg-type]
            wide = _math(lambda e: e["v"] / 257.0, v=wide)
        level = _math(lambda e: e["min"](e["max"](e["v"], 0.0), 255.0), v=wide)
        return _gray_f(level, level, level).convert("L"), _spread(level)
    if picture.mode == "L":
        return picture.point(_gray_of_level()), _spread(picture)
    rgba = picture if picture.mode in ("RGB", "RGBA") else picture.convert("RGBA")
    if rgba.mode == "RGB" or rgba.getchannel("A").getextrema() == (255, 255):
        # c*1.0 + 255*0.0 == c, so opaque pictures skip the compositing exactly.
        rgb = rgba if rgba.mode == "RGB" else rgba.convert("RGB")
        gray = rgb.convert("L", matrix=_GRAY_MATRIX)
        return gray, _spread_if_flat(gray, lambda: _spread_of(rgb.getextrema()))
    r, g, b, alpha = rgba.split()
    bands = {"r": r.convert("F"), "g": g.convert("F"), "b": b.convert("F"), "a": alpha.convert("F")}
    gray = _math(_composite_gray, **bands).convert("L")
    return gray, _spread_if_flat(
        gray, lambda: _spread(*(_composite(bands[name], bands["a"]) for name in "rgb"))
    )


def _spread_if_flat(gray: Image.Image, exact: Callable[[], float]) -> float:
    """The colour spread where it matters, else ``math.inf``.

    Colours within 1.0 of each other give grays within 1.0 (the weights sum to 1), so a
    gray spread of 2 or more means the picture is not blank; only nearly flat pictures
    need the exact spread, which costs more than the gray itself.
    """
    low, high = gray.getextrema()  # type: ignore[misc]
    return math.inf if high - low >= 2 else exact()  # type: ignore[operator]


def _threshold(gray: Image.Image) -> Image.Image:
    """Mode "1": set where gray > the mean gray (float64, exactly numpy's uint8 ``mean``)."""
    total = sum(map(operator.mul, range(256), gray.histogram()))
    return gray.point(_table_above(math.floor(total / (gray.width * gray.height))), "1")


@lru_cache(maxsize=256)
def _table_above(level: int) -> list[int]:
    """The point() table that sets every gray above ``level`` (gray > mean, for mean in [level, level+1))."""
    return [255 if value > level else 0 for value in range(256)]


def binary_picture(
    image: ImageInput,
    spec: CaptchaSpec = DEFAULT_SPEC,
    *,
    name: str | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> Image.Image:
    """The preprocessed picture, mode "1" [spec.height x spec.width]; no numpy needed."""
    name = name or input_name(image)
    picture = open_image(image, name, limits)
    if picture.size != (spec.width, spec.height):
        picture = picture.convert("RGBA").resize((spec.width, spec.height), Image.Resampling.BILINEAR)
    gray, spread = _gray(picture)
    if spread < 1.0:
        raise InvalidInputError(name, "image is blank (a single flat colour after compositing on white)")
    return _threshold(gray)


def preprocess(
    image: ImageInput,
    spec: CaptchaSpec = DEFAULT_SPEC,
    *,
    name: str | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> np.ndarray:
    """The model input for one image: float32 [spec.height, spec.width, 1] in {0, 1} (needs numpy)."""
    numpy = require_numpy('float tensors (preprocess, payload="tensor")')
    binary = binary_picture(image, spec, name=name, limits=limits)
    tensor: np.ndarray = numpy.asarray(binary).astype(numpy.float32)[:, :, None]
    return tensor


def wire_bytes(
    image: ImageInput,
    spec: CaptchaSpec = DEFAULT_SPEC,
    *,
    name: str | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> bytes:
    """The file to send to the image-bytes signature: the preprocessed picture as a 1-bit PNG.

    The model only ever sees the thresholded picture, so that is all we send: about 450
    bytes for a 160x70 captcha against 4-7 KB for the site's RGBA file. Thresholding a
    black-and-white picture again at its mean returns the same pixels, so the in-graph
    preprocessing reads exactly what :func:`preprocess` made (tests/export hold this), and
    every odd input (16-bit, CMYK, EXIF rotation, arrays) is settled here, once.
    """
    return _png_1bit(binary_picture(image, spec, name=name, limits=limits))


def _png_1bit(picture: Image.Image) -> bytes:
    """A mode "1" picture as a minimal 1-bit grayscale PNG: IHDR, one IDAT, IEND.

    Written directly because Pillow's PNG writer spends about 150 us of Python on these
    500 bytes; every decoder (Pillow, TensorFlow's decode_png) reads back the same pixels.
    """
    width, height = picture.size
    packed = picture.tobytes()  # rows of 1-bit pixels, most significant bit first, byte-padded
    stride = (width + 7) // 8
    rows = b"".join(b"\x00" + packed[start : start + stride] for start in range(0, len(packed), stride))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)  # bit depth 1, grayscale
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows, 9))
        + chunk(b"IEND", b"")
    )
