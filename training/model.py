"""The CRNN+CTC recogniser, in two presets that share one builder.

``seed`` is the reference project's network layer for layer (6,739,877 parameters);
``default`` is the compact preset we ship. Both end in a linear ``logits`` layer and a
softmax named :data:`SOFTMAX_LAYER` (the reference's ``out_dense``): training feeds the
logits to the CTC loss, export cuts the model at the softmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from shixin_client._spec import DEFAULT_SPEC, INPUT_FLOAT, OUTPUT_SOFTMAX, CaptchaSpec

SOFTMAX_LAYER = OUTPUT_SOFTMAX
LOGITS_LAYER = "logits"


@dataclass(frozen=True)
class Preset:
    conv_filters: tuple[int, int, int]
    gru_units: int
    projection: int | None  # Dense width before the GRUs; None feeds the CNN features directly
    dropout: float


PRESETS: dict[str, Preset] = {
    "seed": Preset(conv_filters=(16, 16, 16), gru_units=512, projection=None, dropout=0.0),
    "default": Preset(conv_filters=(16, 32, 32), gru_units=128, projection=128, dropout=0.2),
}
#: The CNN's pools, (height, width): width shrinks by 4 to give spec.time_steps steps.
POOLS = ((2, 2), (2, 2), (2, 1))


def build_model(preset: str | Preset = "default", spec: CaptchaSpec = DEFAULT_SPEC) -> keras.Model:
    """Image [N, H, W, 1] in [0, 1] -> softmax [N, W/4, classes], blank last."""
    p = PRESETS[preset] if isinstance(preset, str) else preset
    if spec.width // 4 != spec.time_steps:
        raise ValueError(
            f"width {spec.width} pooled by 4 gives {spec.width // 4} steps, spec says {spec.time_steps}"
        )
    image = keras.Input(shape=(spec.height, spec.width, 1), name=INPUT_FLOAT)
    x = image
    for i, (filters, pool) in enumerate(zip(p.conv_filters, POOLS, strict=True), start=1):
        x = layers.Conv2D(filters, 3, padding="same", name=f"conv{i}")(x)
        x = layers.BatchNormalization(name=f"bn{i}")(x)
        x = layers.ReLU(name=f"relu{i}")(x)
        x = layers.MaxPooling2D(pool, name=f"pool{i}")(x)
    x = layers.Permute((2, 1, 3), name="width_as_time")(x)  # [N, steps, h, c]
    x = layers.TimeDistributed(layers.Flatten(), name="flatten")(x)
    if p.projection:
        x = layers.Dense(p.projection, activation="relu", name="projection")(x)
    if p.dropout:
        x = layers.Dropout(p.dropout, name="dropout")(x)
    for i in (1, 2):
        x = layers.Bidirectional(layers.GRU(p.gru_units, return_sequences=True), name=f"bigru{i}")(x)
    logits = layers.Dense(spec.num_classes, name=LOGITS_LAYER)(x)
    softmax = layers.Softmax(name=SOFTMAX_LAYER)(logits)
    return keras.Model(image, softmax, name=f"shixin_{preset if isinstance(preset, str) else 'custom'}")


def logits_model(model: keras.Model) -> keras.Model:
    """The same network ending at the logits, sharing weights; what the CTC loss trains."""
    return keras.Model(model.input, model.get_layer(LOGITS_LAYER).output)
