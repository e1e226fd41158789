"""A trained Keras model -> a versioned SavedModel that TF Serving (or shixin_client.server) serves.

Three signatures, every name from :mod:`shixin_client._spec`:

- ``serving_default``: ``the_input`` float32 [-1, H, W, 1] -> ``out_dense`` softmax
  [-1, T, C]. The reference client (``{"instances": [float image]}``, then a CTC decode
  of ``predictions``) works unchanged.
- ``serving_bytes``: ``image_bytes`` string [-1] of encoded files -> the same softmax,
  preprocessed in-graph (:mod:`export.tf_preprocess`). About 4 KB per image on the wire
  instead of about 113 KB of float JSON.
- ``describe``: ``batch`` int32 [-1] -> ``charset``, ``blank_index``, ``label_length``,
  ``height``, ``width``, ``time_steps``, one row per input element, so a client learns
  the alphabet and sizes from the model instead of hard-coding them. Every output has
  dim 0 = len(batch), as TF Serving's row format requires (docs/tf-serving-compat.md §1.5),
  and ``charset`` is a plain string output because its alias does not end in ``_bytes``
  (§1.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

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

from . import samples as sample_images
from .tf_preprocess import decode_and_preprocess
from .versions import prune, write_version
from .warmup import write_warmup

#: Generated captchas replayed as warm-up requests when no samples are given.
WARMUP_BATCH = 4


def inference_model(model: keras.Model) -> keras.Model:
    """The model cut at its softmax layer, the one output every signature serves.

    A model without that layer (say, the logits model that training fits) is refused:
    its output has the softmax's shape, so nothing later would notice the difference.
    """
    try:
        softmax = model.get_layer(OUTPUT_SOFTMAX)
    except ValueError as exc:
        raise ValueError(
            f"model {model.name!r} has no layer named {OUTPUT_SOFTMAX!r}; export the softmax model "
            "that training.model.build_model returns"
        ) from exc
    if model.outputs[0] is softmax.output:
        return model
    return keras.Model(model.inputs[0], softmax.output, name=model.name)


def check_model_matches(model: keras.Model, spec: CaptchaSpec) -> None:
    """Refuse a model whose input or output shape disagrees with the spec it will describe."""
    expected_in = (None, spec.height, spec.width, 1)
    expected_out = (None, spec.time_steps, spec.num_classes)
    got_in, got_out = tuple(model.inputs[0].shape), tuple(model.outputs[0].shape)
    if got_in != expected_in:
        raise ValueError(f"model input shape {got_in} does not match the spec's {expected_in}")
    if got_out != expected_out:
        raise ValueError(
            f"model output shape {got_out} does not match the spec's {expected_out} "
            f"({len(spec.charset)} characters + blank)"
        )


def spec_for_model(model: keras.Model, base: CaptchaSpec = DEFAULT_SPEC) -> CaptchaSpec:
    """``base``'s charset, blank and label length with the sizes the model itself has."""
    _, height, width, _ = model.inputs[0].shape
    _, time_steps, _ = model.outputs[0].shape
    return CaptchaSpec(
        charset=base.charset,
        blank_index=base.blank_index,
        label_length=base.label_length,
        height=int(height),
        width=int(width),
        time_steps=int(time_steps),
    )


def serving_module(
    model: keras.Model, spec: CaptchaSpec
) -> tuple[tf.Module, dict[str, tf.types.experimental.ConcreteFunction]]:
    """The object to save, and its three signatures, wired so TF Serving's loader fills the weights.

    The module tracks the model's backing ``tf.Variable`` objects themselves, the very
    ones the traced functions capture, so the SaverDef's restore op writes the variables
    the graph reads. Tracking the Keras 3 model as an attribute instead saves a second
    set of variables: Python's ``tf.saved_model.load`` still works, but TensorFlow's C++
    loader (what TF Serving runs) fails every signature that reads a weight with ``Could
    not find variable`` (docs/tf-serving-compat.md §3.3). The functions reach the model
    through closures, which the module does not track.
    """
    module = tf.Module(name="shixin_serving")
    module.model_variables = [variable.value for variable in model.variables]

    def serve_float(the_input: tf.Tensor) -> dict[str, tf.Tensor]:
        return {OUTPUT_SOFTMAX: model(the_input, training=False)}

    def serve_bytes(image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
        return {OUTPUT_SOFTMAX: model(decode_and_preprocess(image_bytes, spec), training=False)}

    def describe(batch: tf.Tensor) -> dict[str, tf.Tensor]:
        rows = tf.shape(batch)[:1]
        return {name: tf.fill(rows, tf.constant(getattr(spec, name))) for name in DESCRIBE_OUTPUTS}

    inputs = {
        SIGNATURE_FLOAT: (
            serve_float,
            tf.TensorSpec([None, spec.height, spec.width, 1], tf.float32, INPUT_FLOAT),
        ),
        SIGNATURE_BYTES: (serve_bytes, tf.TensorSpec([None], tf.string, INPUT_BYTES)),
        SIGNATURE_DESCRIBE: (describe, tf.TensorSpec([None], tf.int32, INPUT_DESCRIBE)),
    }
    signatures = {}
    for name, (function, input_spec) in inputs.items():
        traced = tf.function(function, input_signature=[input_spec])
        setattr(module, function.__name__, traced)
        signatures[name] = traced.get_concrete_function()
    return module, signatures


def save_signatures(
    model: keras.Model,
    directory: Path,
    *,
    model_name: str,
    spec: CaptchaSpec = DEFAULT_SPEC,
    warmup_samples: Sequence[bytes] | None = None,
) -> None:
    """Write the SavedModel and its warm-up file into an existing, empty ``directory``."""
    model = inference_model(model)
    check_model_matches(model, spec)
    module, signatures = serving_module(model, spec)
    tf.saved_model.save(module, str(directory), signatures=signatures)
    if warmup_samples is None:
        warmup_samples = sample_images.generated(WARMUP_BATCH)
    write_warmup(directory, warmup_samples, model_name, spec)


def export_model(
    model: keras.Model,
    base_path: str | Path,
    name: str,
    *,
    version: int | None = None,
    force: bool = False,
    keep: int | None = None,
    spec: CaptchaSpec = DEFAULT_SPEC,
    warmup_samples: Sequence[bytes] | None = None,
) -> Path:
    """Export ``model`` as ``<base_path>/<name>/<version>/`` and return that directory.

    ``version=None`` takes the next integer after the newest one (1 for a new model). An
    existing version is replaced only with ``force``. The directory appears in one
    rename, complete with its warm-up requests. ``keep`` then deletes all but the newest
    ``keep`` versions.
    """
    if not name or "/" in name or name.startswith("."):
        raise ValueError(f"model name {name!r} must be a plain directory name")
    if keep is not None and keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    model_dir = Path(base_path) / name
    final = write_version(
        model_dir,
        lambda staging: save_signatures(
            model, staging, model_name=name, spec=spec, warmup_samples=warmup_samples
        ),
        version=version,
        force=force,
    )
    if keep is not None:
        prune(model_dir, keep, protect=int(final.name))
    return final
