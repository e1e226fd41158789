"""The embedded LiteRT models: builtin ops only, dynamic batch (and a batch-1 companion), Keras' outputs."""

from __future__ import annotations

import contextlib
import io
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from ai_edge_litert.interpreter import Interpreter

from export.tflite import has_recurrent_layers, lowered_copy, unrolled_copy, write_embedded
from shixin_client._images import preprocess
from shixin_client._transports.local import int8_path, single_image_path
from training.model import Preset, build_model

from .conftest import TINY


def _op_counts(flatbuffer: bytes) -> Counter[str]:
    report = io.StringIO()
    with contextlib.redirect_stdout(report):
        tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer)
    return Counter(re.findall(r"Op#\d+ (\w+)", report.getvalue()))


def _ops(flatbuffer: bytes) -> set[str]:
    return set(_op_counts(flatbuffer))


def test_only_builtin_ops(cli_export: Any) -> None:
    ops = _ops(cli_export.tflite_path.read_bytes())
    assert {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"} <= ops
    assert not {op for op in ops if op.startswith("Flex") or op in {"CUSTOM", "WHILE", "READ_VARIABLE"}}


def test_outputs_match_keras_at_batch_one_and_batched(
    cli_export: Any, make_pngs: Callable[..., list[bytes]], real_files: list[bytes]
) -> None:
    spec = cli_export.spec
    images = np.stack([preprocess(data, spec) for data in make_pngs(3) + real_files[:2]])
    want = cli_export.model(images).numpy()
    interpreter = Interpreter(model_path=str(cli_export.tflite_path))
    (image_input,) = interpreter.get_input_details()
    (softmax_output,) = interpreter.get_output_details()
    assert image_input["shape_signature"].tolist() == [-1, spec.height, spec.width, 1]
    interpreter.allocate_tensors()
    interpreter.set_tensor(image_input["index"], images[:1])
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(softmax_output["index"]), want[:1], atol=1e-5)
    interpreter.resize_tensor_input(image_input["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(image_input["index"], images)
    interpreter.invoke()
    np.testing.assert_allclose(interpreter.get_tensor(softmax_output["index"]), want, atol=1e-5)


def test_unrolled_copy_has_the_same_weights_and_function(tiny_model: Any, real_files: list[bytes]) -> None:
    copy = unrolled_copy(tiny_model)
    recurrent = [layer for layer in copy.layers if hasattr(layer, "forward_layer")]
    assert recurrent and all(
        layer.forward_layer.unroll and layer.backward_layer.unroll for layer in recurrent
    )
    for mine, theirs in zip(copy.get_weights(), tiny_model.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)
    images = np.stack([preprocess(data) for data in real_files])
    np.testing.assert_allclose(copy(images).numpy(), tiny_model(images).numpy(), atol=1e-6)


def test_the_single_image_companion_keeps_its_loops_and_matches_keras(
    cli_export: Any, real_files: list[bytes]
) -> None:
    single = single_image_path(cli_export.tflite_path)
    ops = _ops(single.read_bytes())
    assert "WHILE" in ops  # the GRUs stay loops: far fewer ops than the unrolled model
    assert not {op for op in ops if op.startswith("Flex") or op in {"CUSTOM", "READ_VARIABLE"}}
    spec = cli_export.spec
    image = preprocess(real_files[0], spec)[None]
    interpreter = Interpreter(model_path=str(single))
    (image_input,) = interpreter.get_input_details()
    (softmax_output,) = interpreter.get_output_details()
    assert image_input["shape_signature"].tolist() == [1, spec.height, spec.width, 1]
    interpreter.allocate_tensors()
    interpreter.set_tensor(image_input["index"], image)
    interpreter.invoke()
    np.testing.assert_allclose(
        interpreter.get_tensor(softmax_output["index"]), cli_export.model(image).numpy(), atol=1e-5
    )


def test_a_recurrent_free_model_gets_no_companion_and_loses_a_stale_one(
    tmp_path: Path, real_files: list[bytes]
) -> None:
    conv = build_model(
        Preset(conv_filters=(4, 4, 4), projection=16, dropout=0.0, temporal_convs=((8, 3, 1), (8, 3, 2)))
    )
    assert has_recurrent_layers(build_model(TINY)) and not has_recurrent_layers(conv)
    path = tmp_path / "shixin.tflite"
    stale = single_image_path(path)
    stale.write_bytes(b"an earlier model's companion")
    write_embedded(conv, path)
    assert not stale.exists() and (tmp_path / "spec.json").is_file()
    ops = _ops(path.read_bytes())
    assert "CONV_2D" in ops and not {op for op in ops if op.startswith("Flex") or op in {"CUSTOM", "WHILE"}}
    images = np.stack([preprocess(data) for data in real_files])
    interpreter = Interpreter(model_path=str(path))
    (image_input,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(image_input["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(image_input["index"], images)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, conv(images).numpy(), atol=1e-5)


def _weight_types(path: Path) -> set[str]:
    interpreter = Interpreter(model_path=str(path))
    return {np.dtype(t["dtype"]).name for t in interpreter.get_tensor_details()}


def test_int8_companion_has_int8_weights_and_a_later_float_export_removes_it(
    tmp_path: Path, real_files: list[bytes]
) -> None:
    conv = build_model(
        Preset(conv_filters=(8, 8, 8), projection=32, dropout=0.0, temporal_convs=((32, 3, 1), (32, 3, 2)))
    )
    path = tmp_path / "shixin.tflite"
    write_embedded(conv, path, int8=True)
    companion = int8_path(path)
    assert companion.is_file() and companion.stat().st_size < path.stat().st_size
    assert "int8" in _weight_types(companion) and "int8" not in _weight_types(path)
    images = np.stack([preprocess(data) for data in real_files])
    interpreter = Interpreter(model_path=str(companion))
    (image_input,) = interpreter.get_input_details()
    assert image_input["dtype"] == np.float32  # activations stay float: the same calls as the float model
    interpreter.resize_tensor_input(image_input["index"], images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(image_input["index"], images)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    want = conv(images).numpy()
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=0.05)  # an approximation, not the same numbers
    write_embedded(conv, path)
    assert not companion.exists()


def test_the_per_step_flatten_becomes_one_reshape(tmp_path: Path, real_files: list[bytes]) -> None:
    conv = build_model(
        Preset(conv_filters=(4, 4, 4), projection=16, dropout=0.0, temporal_convs=((8, 3, 1),))
    )
    assert any(type(layer).__name__ == "TimeDistributed" for layer in conv.layers)
    lowered = lowered_copy(conv)
    assert not any(type(layer).__name__ == "TimeDistributed" for layer in lowered.layers)
    images = np.stack([preprocess(data) for data in real_files])
    np.testing.assert_array_equal(lowered(images).numpy(), conv(images).numpy())
    path = write_embedded(conv, tmp_path / "shixin.tflite")
    ops = _op_counts(path.read_bytes())
    steps = conv.output.shape[1]
    # Unlowered, the wrapper converts to a strided slice and a reshape for each of the 40 steps.
    assert ops["STRIDED_SLICE"] + ops["RESHAPE"] < steps / 2, ops
