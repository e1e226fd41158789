"""The project's one preprocessing, re-done in TensorFlow ops for the ``serving_bytes`` signature.

This is the only second implementation of :func:`shixin_client._images.preprocess`, and
``tests/export/test_export_parity.py`` holds it to the first. Each step copies what
Pillow and numpy do, down to the integer rounding, so that both paths give the same
tensor for any PNG, JPEG, GIF or BMP file a client sends as it is (the SDK itself
sends the already-thresholded picture as a 1-bit PNG, :func:`shixin_client._images.wire_bytes`):

1. decode: ``tf.io.decode_image`` (first GIF frame); JPEG with libjpeg's accurate integer
   DCT and fancy upsampling, which is what Pillow uses; any channel count to RGBA;
2. resize, only when the size differs: Pillow's BILINEAR resampling of an RGBA image
   (premultiply alpha, two separable passes with 22-bit fixed-point weights, each rounded
   to uint8, un-premultiply), in float64 where every intermediate value is an exact integer;
3. composite on white, gray ``r*0.299 + g*0.587 + b*0.114`` elementwise in float32, in
   that order (not a matmul, whose BLAS rounding differs on some colours), truncated to uint8;
4. 1 where gray > the image mean (float64, as numpy's ``mean`` of uint8), else 0.
"""

from __future__ import annotations

import tensorflow as tf

from shixin_client._images import DEFAULT_LIMITS, GRAY_WEIGHTS
from shixin_client._spec import DEFAULT_SPEC, CaptchaSpec

#: Pillow's fixed-point precision for 8-bit resampling (libImaging/Resample.c).
_PRECISION_BITS = 32 - 8 - 2


def decode_rgba(image_bytes: tf.Tensor) -> tf.Tensor:
    """One encoded PNG/JPEG/GIF/BMP file -> uint8 [H, W, 4], as Pillow's ``convert("RGBA")``."""
    pixels = tf.cond(
        tf.io.is_jpeg(image_bytes),
        lambda: tf.io.decode_jpeg(image_bytes, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(image_bytes, expand_animations=False, dtype=tf.uint8),
    )
    pixels.set_shape([None, None, None])
    channels = tf.shape(pixels)[2]
    opaque = tf.fill(tf.shape(pixels[:, :, :1]), tf.constant(255, tf.uint8))

    def expand(gray: tf.Tensor, alpha: tf.Tensor) -> tf.Tensor:
        return tf.concat([gray, gray, gray, alpha], axis=2)

    return tf.switch_case(
        channels - 1,
        [
            lambda: expand(pixels[:, :, :1], opaque),
            lambda: expand(pixels[:, :, :1], pixels[:, :, 1:2]),
            lambda: tf.concat([pixels[:, :, :3], opaque], axis=2),
            lambda: pixels[:, :, :4],
        ],
    )


def _bilinear_weights(in_size: tf.Tensor, out_size: int) -> tf.Tensor:
    """Pillow's fixed-point BILINEAR coefficients as a float64 [out_size, in_size] matrix."""
    in_f = tf.cast(in_size, tf.float64)
    scale = in_f / out_size
    filterscale = tf.maximum(scale, 1.0)
    support = filterscale  # the triangle filter's support is 1
    center = (tf.range(out_size, dtype=tf.float64) + 0.5) * scale
    xmin = tf.maximum(tf.cast(center - support + 0.5, tf.int32), 0)
    xmax = tf.minimum(tf.cast(center + support + 0.5, tf.int32), in_size)
    source = tf.range(in_size)
    inside = (source[None, :] >= xmin[:, None]) & (source[None, :] < xmax[:, None])
    distance = (tf.cast(source, tf.float64)[None, :] - center[:, None] + 0.5) * (1.0 / filterscale)
    weights = tf.where(inside, tf.maximum(1.0 - tf.abs(distance), 0.0), 0.0)
    total = tf.reduce_sum(weights, axis=1, keepdims=True)
    weights = tf.math.divide_no_nan(weights, total)
    return tf.floor(weights * (1 << _PRECISION_BITS) + 0.5)


def _resample_rows(pixels: tf.Tensor, weights: tf.Tensor) -> tf.Tensor:
    """One Pillow pass over axis 1 of float64 [A, B, C] pixels; rounds to 0..255 like clip8."""
    total = tf.einsum("ob,abc->aoc", weights, pixels) + (1 << (_PRECISION_BITS - 1))
    return tf.clip_by_value(tf.floor(total / (1 << _PRECISION_BITS)), 0.0, 255.0)


def resize_rgba(rgba: tf.Tensor, height: int, width: int) -> tf.Tensor:
    """uint8 RGBA [H, W, 4] -> [height, width, 4] exactly as Pillow's ``resize(..., BILINEAR)``."""
    ints = tf.cast(rgba, tf.int32)
    alpha = ints[:, :, 3:]
    mixed = ints[:, :, :3] * alpha + 128
    shift = tf.bitwise.right_shift
    premultiplied = tf.concat([shift(shift(mixed, 8) + mixed, 8), alpha], axis=2)
    pixels = tf.cast(premultiplied, tf.float64)
    in_height, in_width = tf.shape(rgba)[0], tf.shape(rgba)[1]

    def horizontal(image: tf.Tensor) -> tf.Tensor:
        return _resample_rows(image, _bilinear_weights(in_width, width))

    def vertical(image: tf.Tensor) -> tf.Tensor:
        turned = tf.transpose(image, [1, 0, 2])
        return tf.transpose(_resample_rows(turned, _bilinear_weights(in_height, height)), [1, 0, 2])

    # Each pass rounds to uint8, so the order matters. Pillow 13 runs the vertical pass
    # first exactly when the height shrinks by more than twice what the width shrinks by
    # (measured on several hundred sizes, boundaries included; Pillow's Resample.c of 2024
    # always went horizontal first). tests/export/test_export_parity.py holds it.
    vertical_first = (in_height > height) & (2 * (in_width - width) < in_height - height)
    pixels = tf.cond(
        vertical_first, lambda: horizontal(vertical(pixels)), lambda: vertical(horizontal(pixels))
    )
    out = tf.cast(pixels, tf.int32)
    alpha = out[:, :, 3:]
    divided = tf.minimum((255 * out[:, :, :3]) // tf.maximum(alpha, 1), 255)
    keep = (alpha == 0) | (alpha == 255)
    colour = tf.where(keep, out[:, :, :3], divided)
    return tf.cast(tf.concat([colour, alpha], axis=2), tf.uint8)


def gray_rgba(rgba: tf.Tensor) -> tf.Tensor:
    """uint8 RGBA [H, W, 4] -> uint8 gray [H, W]: composited on white, weighted in float32, truncated."""
    values = tf.cast(rgba, tf.float32)
    alpha = values[:, :, 3:] / 255.0
    rgb = values[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
    w0, w1, w2 = (tf.constant(weight, tf.float32) for weight in GRAY_WEIGHTS)
    return tf.cast(rgb[:, :, 0] * w0 + rgb[:, :, 1] * w1 + rgb[:, :, 2] * w2, tf.uint8)


def binarize_rgba(rgba: tf.Tensor) -> tf.Tensor:
    """uint8 RGBA [H, W, 4] -> float32 [H, W, 1] in {0, 1}: white composite, gray, mean threshold."""
    gray = tf.cast(gray_rgba(rgba), tf.float64)
    mean = tf.reduce_sum(gray) / tf.cast(tf.size(gray), tf.float64)
    return tf.cast(gray > mean, tf.float32)[:, :, None]


def _unsigned(data: tf.Tensor, position: int, size: int, *, big_endian: bool) -> tf.Tensor:
    """The unsigned integer stored in ``size`` bytes at ``position`` of a scalar string, as int64."""
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(data, position, size), tf.uint8), tf.int64)
    weights = tf.constant(
        [256**i for i in (range(size - 1, -1, -1) if big_endian else range(size))], tf.int64
    )
    return tf.reduce_sum(raw * weights)


def _header_pixels(image_bytes: tf.Tensor) -> tf.Tensor:
    """Width x height as the file's header claims it, read before anything is decoded.

    A few hundred bytes of PNG can claim 60000 x 60000 pixels; decoding them would take
    gigabytes. Formats not listed here are measured after decoding.
    """
    # Padded, so a file shorter than its header reads zeros here and then fails to decode.
    data = tf.strings.join([image_bytes, tf.constant(b"\0" * 32)])
    magic = tf.strings.substr(data, 0, 4)

    def signed(value: tf.Tensor) -> tf.Tensor:
        return tf.abs(tf.where(value >= 2**31, value - 2**32, value))

    png = _unsigned(data, 16, 4, big_endian=True) * _unsigned(data, 20, 4, big_endian=True)
    gif = _unsigned(data, 6, 2, big_endian=False) * _unsigned(data, 8, 2, big_endian=False)
    bmp = signed(_unsigned(data, 18, 4, big_endian=False)) * signed(_unsigned(data, 22, 4, big_endian=False))
    return tf.case(
        [
            (
                tf.io.is_jpeg(image_bytes),
                lambda: tf.reduce_prod(tf.image.extract_jpeg_shape(image_bytes, tf.int64)[:2]),
            ),
            (tf.equal(magic, b"\x89PNG"), lambda: png),
            (tf.equal(tf.strings.substr(magic, 0, 3), b"GIF"), lambda: gif),
            (tf.equal(tf.strings.substr(magic, 0, 2), b"BM"), lambda: bmp),
        ],
        default=lambda: tf.constant(0, tf.int64),
    )


def _within_pixel_limit(pixels: tf.Tensor) -> tf.Operation:
    return tf.debugging.assert_less_equal(
        pixels,
        tf.constant(DEFAULT_LIMITS.max_pixels, tf.int64),
        message=f"image is over the {DEFAULT_LIMITS.max_pixels}-pixel limit (width x height) of the client",
    )


def preprocess_one(image_bytes: tf.Tensor, spec: CaptchaSpec = DEFAULT_SPEC) -> tf.Tensor:
    """A scalar string tensor (one encoded file) -> the model input float32 [height, width, 1].

    Pictures over the client's pixel limit are refused (InvalidArgumentError), by their
    header before decoding and by their decoded size before the float64 resize.
    """
    with tf.control_dependencies([_within_pixel_limit(_header_pixels(image_bytes))]):
        rgba = decode_rgba(tf.identity(image_bytes))
    shape = tf.shape(rgba)
    with tf.control_dependencies(
        [_within_pixel_limit(tf.cast(shape[0], tf.int64) * tf.cast(shape[1], tf.int64))]
    ):
        rgba = tf.identity(rgba)
    same_size = (shape[0] == spec.height) & (shape[1] == spec.width)
    rgba = tf.cond(same_size, lambda: rgba, lambda: resize_rgba(rgba, spec.height, spec.width))
    rgba = tf.ensure_shape(rgba, [spec.height, spec.width, 4])
    return binarize_rgba(rgba)


def decode_and_preprocess(image_bytes: tf.Tensor, spec: CaptchaSpec = DEFAULT_SPEC) -> tf.Tensor:
    """String [N] of encoded files -> float32 [N, height, width, 1], the ``serving_default`` input.

    A file that is not a decodable image raises InvalidArgumentError, which TF Serving
    returns as 400 / INVALID_ARGUMENT for the whole request.
    """
    return tf.map_fn(
        lambda data: preprocess_one(data, spec),
        image_bytes,
        fn_output_signature=tf.TensorSpec([spec.height, spec.width, 1], tf.float32),
    )
