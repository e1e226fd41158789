"""The one preprocessing (reference-model-and-data.md, "The reference preprocessing")."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from shixin_client import InvalidInputError
from shixin_client._images import preprocess, wire_bytes
from shixin_client._spec import DEFAULT_SPEC


def test_raw_and_binarized_real_captchas_reach_the_model_as_the_same_tensor(real_samples):
    by_label: dict[str, list[np.ndarray]] = {}
    for path, label in real_samples:
        by_label.setdefault(label, []).append(preprocess(path))
    assert len(by_label) == 2
    for label, (raw, binary) in by_label.items():
        assert raw.shape == (DEFAULT_SPEC.height, DEFAULT_SPEC.width, 1) and raw.dtype == np.float32
        assert set(np.unique(raw)) <= {0.0, 1.0}
        # The binarized JPEG carries ringing; after re-thresholding at most a few pixels differ.
        assert (raw != binary).sum() <= 5, label


def test_threshold_is_pixel_above_mean_after_compositing_on_white():
    rgba = np.zeros((70, 160, 4), dtype=np.uint8)
    rgba[:, :80] = (0, 0, 0, 255)  # opaque black half
    rgba[:, 80:] = (0, 0, 0, 0)  # fully transparent half -> white
    out = preprocess(Image.fromarray(rgba, "RGBA"))[:, :, 0]
    assert (out[:, :80] == 0).all() and (out[:, 80:] == 1).all()


def test_gray_uses_reference_weights_and_truncates():
    rgb = np.full((70, 160, 3), 255, dtype=np.uint8)
    rgb[10:20, 10:20] = (100, 150, 200)  # 0.299*100+0.587*150+0.114*200 = 140.75 -> 140
    out = preprocess(rgb)[:, :, 0]
    assert out[15, 15] == 0 and out[0, 0] == 1


def test_other_sizes_are_resized_not_rejected():
    picture = Image.new("RGB", (320, 140), "white")
    picture.paste((0, 0, 0), (40, 40, 200, 100))
    out = preprocess(picture)
    assert out.shape == (70, 160, 1)
    assert out[35, 60, 0] == 0 and out[5, 5, 0] == 1


def test_blank_image_is_refused_rather_than_read_as_a_wrong_string():
    with pytest.raises(InvalidInputError, match="blank"):
        preprocess(Image.new("RGBA", (160, 70), (0, 0, 0, 0)))


def test_png_named_jpg_is_sniffed_from_bytes(tmp_path, real_samples):
    raw_path = next(p for p, _ in real_samples if p.parent.name == "origin")
    assert Image.open(raw_path).format == "PNG"  # the site's ".jpg" files are PNG
    assert np.array_equal(preprocess(raw_path), preprocess(raw_path.read_bytes()))


def test_wire_bytes_are_the_preprocessed_picture_as_a_small_1bit_png(real_samples):
    cmyk = Image.new("CMYK", (320, 140), (0, 0, 0, 0))
    cmyk.paste((0, 0, 0, 255), (20, 20, 60, 50))
    buffer = io.BytesIO()
    cmyk.save(buffer, format="JPEG")
    for source in [buffer.getvalue(), *(path for path, _ in real_samples)]:
        sent = wire_bytes(source)
        picture = Image.open(io.BytesIO(sent))
        assert (picture.format, picture.mode, picture.size) == ("PNG", "1", (160, 70))
        # Thresholding the black-and-white picture again gives back exactly the same tensor.
        assert np.array_equal(preprocess(sent), preprocess(source))
    raw_path = next(p for p, _ in real_samples if p.parent.name == "origin")
    assert len(wire_bytes(raw_path)) * 5 < raw_path.stat().st_size
