"""The exported signatures: names, dtypes and shapes as TF Serving will see them, and describe."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import saved_model_pb2

from export._check_worker import show_all
from export.saved_model import export_model, inference_model
from shixin_client._images import preprocess
from shixin_client._spec import (
    DEFAULT_SPEC,
    DESCRIBE_OUTPUTS,
    INPUT_BYTES,
    INPUT_DESCRIBE,
    INPUT_FLOAT,
    OUTPUT_SOFTMAX,
    SIGNATURE_BYTES,
    SIGNATURE_DESCRIBE,
    SIGNATURE_FLOAT,
    CaptchaSpec,
)
from training.model import logits_model


def _signature_defs(version_dir: Path) -> dict[str, Any]:
    saved = saved_model_pb2.SavedModel.FromString((version_dir / "saved_model.pb").read_bytes())
    (meta_graph,) = saved.meta_graphs
    assert list(meta_graph.meta_info_def.tags) == ["serve"]
    return dict(meta_graph.signature_def)


def _io(tensors: Any) -> dict[str, tuple[str, list[int]]]:
    return {
        key: (types_pb2.DataType.Name(info.dtype), [dim.size for dim in info.tensor_shape.dim])
        for key, info in tensors.items()
    }


def test_signature_names_dtypes_and_shapes(exported: Path) -> None:
    defs = _signature_defs(exported)
    # TF itself adds __saved_model_init_op (no inputs); TF Serving skips it.
    assert set(defs) - {"__saved_model_init_op"} == {SIGNATURE_FLOAT, SIGNATURE_BYTES, SIGNATURE_DESCRIBE}
    del defs["__saved_model_init_op"]
    softmax = {OUTPUT_SOFTMAX: ("DT_FLOAT", [-1, DEFAULT_SPEC.time_steps, DEFAULT_SPEC.num_classes])}
    assert _io(defs[SIGNATURE_FLOAT].inputs) == {
        INPUT_FLOAT: ("DT_FLOAT", [-1, DEFAULT_SPEC.height, DEFAULT_SPEC.width, 1])
    }
    assert _io(defs[SIGNATURE_FLOAT].outputs) == softmax
    # docs/tf-serving-compat.md §1.4: REST clients send {"b64": ...} for a DT_STRING input.
    assert _io(defs[SIGNATURE_BYTES].inputs) == {INPUT_BYTES: ("DT_STRING", [-1])}
    assert _io(defs[SIGNATURE_BYTES].outputs) == softmax
    assert _io(defs[SIGNATURE_DESCRIBE].inputs) == {INPUT_DESCRIBE: ("DT_INT32", [-1])}
    # §1.5: row format needs every output to have the same dim 0; §1.4: no output alias
    # ends in "_bytes", so the charset comes back as a plain JSON string.
    assert _io(defs[SIGNATURE_DESCRIBE].outputs) == {
        name: ("DT_STRING" if name == "charset" else "DT_INT32", [-1]) for name in DESCRIBE_OUTPUTS
    }
    assert not any(name.endswith("_bytes") for d in defs.values() for name in d.outputs)
    assert {d.method_name for d in defs.values()} == {"tensorflow/serving/predict"}


def test_show_all_prints_like_saved_model_cli(exported: Path) -> None:
    text = show_all(exported)
    assert text.startswith("MetaGraphDef with tag-set: 'serve' contains the following SignatureDefs:")
    assert f"signature_def['{SIGNATURE_BYTES}']:" in text
    assert (
        f"    inputs['{INPUT_FLOAT}'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 70, 160, 1)"
        in text
    )
    assert f"    inputs['{INPUT_BYTES}'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1,)" in text


def test_describe_gives_one_row_per_input_element(loaded: Any) -> None:
    rows = loaded.signatures[SIGNATURE_DESCRIBE](**{INPUT_DESCRIBE: tf.constant([0, 5, -3], tf.int32)})
    assert {name: rows[name].shape[0] for name in DESCRIBE_OUTPUTS} == dict.fromkeys(DESCRIBE_OUTPUTS, 3)
    assert rows["charset"].numpy()[2].decode() == DEFAULT_SPEC.charset
    for name in DESCRIBE_OUTPUTS[1:]:
        assert rows[name].numpy().tolist() == [getattr(DEFAULT_SPEC, name)] * 3


def test_float_signature_is_the_keras_model(loaded: Any, tiny_model: Any, real_files: list[bytes]) -> None:
    images = np.stack([preprocess(data) for data in real_files])
    got = loaded.signatures[SIGNATURE_FLOAT](**{INPUT_FLOAT: tf.constant(images)})[OUTPUT_SOFTMAX].numpy()
    np.testing.assert_allclose(got, tiny_model(images).numpy(), atol=1e-6)


def _png_at(data: bytes, spec: CaptchaSpec) -> bytes:
    out = io.BytesIO()
    Image.open(io.BytesIO(data)).resize((spec.width, spec.height)).save(out, format="PNG")
    return out.getvalue()


def test_any_spec_is_described_and_served(cli_export: Any, make_pngs: Any) -> None:
    """A 5-character model over another alphabet and size: clients need no hard-coded facts."""
    spec = cli_export.spec
    loaded = tf.saved_model.load(str(cli_export.version_dir))
    rows = loaded.signatures[SIGNATURE_DESCRIBE](**{INPUT_DESCRIBE: tf.constant([0], tf.int32)})
    described = {name: rows[name].numpy()[0] for name in DESCRIBE_OUTPUTS}
    assert (
        CaptchaSpec(charset=described.pop("charset").decode(), **{k: int(v) for k, v in described.items()})
        == spec
    )
    files = [_png_at(data, spec) for data in make_pngs(3)] + make_pngs(2)
    floats = np.stack([preprocess(data, spec) for data in files])
    by_bytes = loaded.signatures[SIGNATURE_BYTES](**{INPUT_BYTES: tf.constant(files)})[OUTPUT_SOFTMAX]
    assert by_bytes.shape == (5, spec.time_steps, spec.num_classes)
    np.testing.assert_allclose(by_bytes.numpy(), cli_export.model(floats).numpy(), atol=1e-6)


def test_export_refuses_a_model_that_disagrees_with_the_spec(tiny_model: Any, tmp_path: Path) -> None:
    spec = CaptchaSpec(charset="abc", blank_index=3)
    with pytest.raises(
        ValueError, match=r"output shape \(None, 40, 37\) does not match the spec's \(None, 40, 4\)"
    ):
        export_model(tiny_model, tmp_path, "shixin", spec=spec)
    assert not (tmp_path / "shixin" / "1").exists()


def test_export_cuts_at_the_softmax_and_refuses_a_logits_model(tiny_model: Any) -> None:
    longer = keras.Model(tiny_model.inputs[0], keras.layers.Activation("linear")(tiny_model.outputs[0]))
    assert inference_model(longer).outputs[0] is tiny_model.get_layer(OUTPUT_SOFTMAX).output
    assert inference_model(tiny_model) is tiny_model
    with pytest.raises(ValueError, match=f"has no layer named '{OUTPUT_SOFTMAX}'"):
        inference_model(logits_model(tiny_model))
