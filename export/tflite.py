"""The embedded model: a LiteRT flatbuffer of the softmax model, builtin ops only.

The SDK's local transport runs it with ``ai-edge-litert`` (no TensorFlow). A Keras GRU
converts to a TensorFlow ``While`` loop that needs Flex (select TF) ops; with the GRUs
unrolled over the fixed number of time steps it converts to builtin ops alone. So the
same architecture is rebuilt from its config with ``unroll=True`` in every recurrent
layer and given the trained weights: the same function, a different graph. Likewise each
``TimeDistributed(Flatten())`` becomes one ``Reshape`` (:func:`lowered_copy`): the converter
would unroll the wrapper into a slice, a reshape and shape arithmetic per time step, about
200 ops for 40 steps that XNNPACK does not take, splitting its graph into 11 pieces.

The batch dimension stays dynamic: the interpreter starts at batch 1 and callers
``resize_tensor_input`` for larger batches. A recurrent model also gets a batch-1 companion
(:func:`write_single_image_tflite`): with every shape static the converter lowers each GRU
to a builtin ``WHILE`` loop, which LiteRT runs about twice as fast as the 2,976 unrolled
ops for one image, the SDK's most common call. The default preset has no recurrent layer
and needs no companion.

On request a model also gets an int8 companion (:func:`write_int8_tflite`): the same
graph with its weights stored as int8 (dynamic-range quantization; activations stay
float). XNNPACK runs it about twice as fast on some CPUs and no faster on others (an
AVX2-only AMD EPYC); it is an approximation, so the SDK keeps its answers only where they are
confident and lets the float model read the rest.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import keras
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from shixin_client._spec import (
    DEFAULT_SPEC,
    DESCRIBE_OUTPUTS,
    SPEC_FILE,
    CaptchaSpec,
    int8_path,
    single_image_path,
)

from .saved_model import check_model_matches, inference_model

_RECURRENT = frozenset({"GRU", "LSTM", "SimpleRNN"})


def _unrolled_config(config: Any) -> Any:
    """A deep copy of a Keras config with ``unroll=True`` set on every recurrent layer."""
    if isinstance(config, dict):
        copied = {key: _unrolled_config(value) for key, value in config.items()}
        if copied.get("class_name") in _RECURRENT and isinstance(copied.get("config"), dict):
            copied["config"]["unroll"] = True
        return copied
    if isinstance(config, list):
        return [_unrolled_config(item) for item in config]
    return config


def unrolled_copy(model: keras.Model) -> keras.Model:
    """The same architecture and weights with unrolled recurrent layers."""
    copy = model.__class__.from_config(_unrolled_config(model.get_config()))
    copy.set_weights(model.get_weights())
    return copy


def _is_flatten_per_step(layer: keras.layers.Layer) -> bool:
    return isinstance(layer, keras.layers.TimeDistributed) and isinstance(layer.layer, keras.layers.Flatten)


def _call_lowered(layer: keras.layers.Layer, *args: Any, **kwargs: Any) -> Any:
    if not _is_flatten_per_step(layer):
        return layer(*args, **kwargs)
    _, steps, *features = layer.input.shape
    return keras.layers.Reshape((steps, math.prod(features)), name=layer.name)(args[0])


def reshaped_copy(model: keras.Model) -> keras.Model:
    """The model with each per-step flatten as one reshape; the other layers are the model's
    own (shared weights)."""
    return keras.models.clone_model(model, clone_function=lambda layer: layer, call_function=_call_lowered)


def lowered_copy(model: keras.Model) -> keras.Model:
    """The graph LiteRT runs at any batch size: unrolled recurrent layers, no per-step flatten."""
    return reshaped_copy(unrolled_copy(model))


def _convert(model: keras.Model, batch: int | None, path: str | Path, int8_weights: bool = False) -> Path:
    _, height, width, channels = model.inputs[0].shape
    signature = tf.TensorSpec([batch, height, width, channels], tf.float32)
    function = tf.function(lambda image: model(image, training=False), input_signature=[signature])
    # Keras 3 variables reach the converter as resource handles that the interpreter
    # cannot read (READ_VARIABLE fails): fold them into constants first.
    frozen = convert_variables_to_constants_v2(function.get_concrete_function())
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if int8_weights:
        # No representative dataset: weights only. Full int8 (activations too) measured no
        # faster here and lost 0.5 points of accuracy.
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    flatbuffer = converter.convert()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(flatbuffer)
    return path


def write_tflite(model: keras.Model, path: str | Path) -> Path:
    """Convert the softmax model to LiteRT (float input [N, H, W, 1]) and write it to ``path``."""
    return _convert(lowered_copy(inference_model(model)), None, path)


def write_int8_tflite(model: keras.Model, path: str | Path) -> Path:
    """The same model as :func:`write_tflite` with int8 weights (dynamic-range quantization)."""
    return _convert(lowered_copy(inference_model(model)), None, path, int8_weights=True)


def write_single_image_tflite(model: keras.Model, path: str | Path) -> Path:
    """The same model for exactly one image ([1, H, W, 1]), its recurrent layers kept as loops."""
    return _convert(reshaped_copy(inference_model(model)), 1, path)


def write_spec_json(spec: CaptchaSpec, path: str | Path) -> Path:
    """``spec.json`` beside the embedded model: the same facts the ``describe`` signature gives."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    facts = {name: getattr(spec, name) for name in DESCRIBE_OUTPUTS}
    path.write_text(json.dumps(facts, indent=2) + "\n", encoding="utf-8")
    return path


def has_recurrent_layers(model: keras.Model) -> bool:
    return any(isinstance(layer, (keras.layers.RNN, keras.layers.Bidirectional)) for layer in model.layers)


def write_embedded(
    model: keras.Model, tflite_path: str | Path, spec: CaptchaSpec = DEFAULT_SPEC, *, int8: bool = False
) -> Path:
    """The SDK's embedded assets: ``<tflite_path>``, ``spec.json``, for a recurrent model its
    batch-1 companion, and with ``int8`` its int8 companion, side by side.

    A model without recurrent layers converts to the same few ops at any batch size, so it
    gets no batch-1 companion. A companion this call does not write is removed if an
    earlier model left one: the local transport would otherwise run the old model.
    """
    check_model_matches(inference_model(model), spec)
    path = write_tflite(model, tflite_path)
    single = single_image_path(path)
    if has_recurrent_layers(model):
        write_single_image_tflite(model, single)
    else:
        single.unlink(missing_ok=True)
    if int8:
        write_int8_tflite(model, int8_path(path))
    else:
        int8_path(path).unlink(missing_ok=True)
    write_spec_json(spec, path.with_name(SPEC_FILE))
    return path
