"""Any image input -> a decoded picture, wire bytes, or the reference float tensor.

This is the project's one preprocessing (reference-model-and-data.md, "The reference
preprocessing"): alpha composited on white, gray with weights (0.299, 0.587, 0.114)
truncated to uint8, threshold at the image mean (pixel > mean -> 1, else 0), as a
float32 [height, width, 1] tensor in [0, 1]. Training, export's parity checks, the
embedded runtime and the client's float path all call :func:`preprocess`; export's
in-graph TensorFlow version is the only second implementation and a test holds it here.

Every problem with an input is an :class:`InvalidInputError` naming the input, found
before anything is sent: the format is sniffed from the bytes (never the file name),
the pixel count is checked before decoding (decompression bombs), and blank or
degenerate pictures are refused rather than turned into a wrong string.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ._exceptions import InvalidInputError
from ._spec import DEFAULT_SPEC, CaptchaSpec

ImageInput = Union[str, "os.PathLike[str]", bytes, bytearray, memoryview, IO[bytes], Image.Image, np.ndarray]

GRAY_WEIGHTS = np.array([0.299, 0.587, 0.114], dtype=np.float32)


@dataclass(frozen=True)
class ImageLimits:
    """Bounds that protect the client from hostile or absurd images."""

    max_pixels: int = 16_000_000
    max_bytes: int = 20 * 1024 * 1024
    min_width: int = 16
    min_height: int = 8

    def __post_init__(self) -> None:
        if self.max_pixels <= 0 or self.max_bytes <= 0:
            raise ValueError("ImageLimits.max_pixels and max_bytes must be positive")


DEFAULT_LIMITS = ImageLimits()


def input_name(image: object, index: int | None = None) -> str:
    """A short, safe name for an input, used in every error about it."""
    prefix = f"item {index} " if index is not None else ""
    if isinstance(image, (str, os.PathLike)):
        return f"{prefix}{os.fspath(image)!r}".strip()
    if isinstance(image, (bytes, bytearray, memoryview)):
        return f"{prefix}bytes[{len(image)}]".strip()
    if isinstance(image, np.ndarray):
        return f"{prefix}array{tuple(image.shape)}:{image.dtype}".strip()
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
    if isinstance(image, (Image.Image, np.ndarray)):
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
    if isinstance(image, np.ndarray):
        picture = _array_to_image(image, name)
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


def to_rgb_on_white(picture: Image.Image) -> np.ndarray:
    """Float32 [H, W, 3] in 0..255 with any transparency composited on white."""
    if picture.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        wide = np.asarray(picture, dtype=np.float64)
        peak = 65535.0 if picture.mode.startswith("I;16") or wide.max() > 255 else 255.0
        gray = np.clip(wide * (255.0 / peak), 0, 255).astype(np.float32)
        return np.repeat(gray[:, :, None], 3, axis=2)
    rgba = np.asarray(picture.convert("RGBA"), dtype=np.float32)
    alpha = rgba[:, :, 3:4] / 255.0
    return rgba[:, :, :3] * alpha + 255.0 * (1.0 - alpha)


def binarize(rgb: np.ndarray) -> np.ndarray:
    """The reference threshold: uint8 gray, then 1 where gray > mean, else 0 (float32 [H, W])."""
    gray = (rgb @ GRAY_WEIGHTS).astype(np.uint8)
    return (gray > gray.mean()).astype(np.float32)


def preprocess(
    image: ImageInput,
    spec: CaptchaSpec = DEFAULT_SPEC,
    *,
    name: str | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> np.ndarray:
    """The model input for one image: float32 [spec.height, spec.width, 1] in {0, 1}."""
    name = name or input_name(image)
    picture = open_image(image, name, limits)
    if picture.size != (spec.width, spec.height):
        picture = picture.convert("RGBA").resize((spec.width, spec.height), Image.Resampling.BILINEAR)
    rgb = to_rgb_on_white(picture)
    if float(rgb.max() - rgb.min()) < 1.0:
        raise InvalidInputError(name, "image is blank (a single flat colour after compositing on white)")
    return binarize(rgb)[:, :, None]


def wire_bytes(
    image: ImageInput,
    spec: CaptchaSpec = DEFAULT_SPEC,
    *,
    name: str | None = None,
    limits: ImageLimits = DEFAULT_LIMITS,
) -> bytes:
    """The file to send to the image-bytes signature: the preprocessed picture as a 1-bit PNG.

    The model only ever sees the thresholded picture, so that is all we send: about 500
    bytes for a 160x70 captcha against 4-7 KB for the site's RGBA file. Thresholding a
    black-and-white picture again at its mean returns the same pixels, so the in-graph
    preprocessing reads exactly what :func:`preprocess` made (tests/export hold this), and
    every odd input (16-bit, CMYK, EXIF rotation, arrays) is settled here, once.
    """
    binary = preprocess(image, spec, name=name, limits=limits)[:, :, 0]
    out = io.BytesIO()
    Image.fromarray((binary * 255).astype(np.uint8), "L").convert("1").save(out, format="PNG", optimize=True)
    return out.getvalue()
