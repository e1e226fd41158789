"""The CRNN+CTC recogniser, in two presets that share one builder.

``seed`` is the reference project's network layer for layer (6,739,877 parameters);
``default`` is the compact preset we ship. Each is a CNN that turns the image into one
feature vector per time step, then a sequence head over the steps: two BiGRUs, or a stack
of dilated 1-D convolutions (``temporal_convs``), which see a fixed window of steps but run
as a handful of ops instead of a loop over the steps. Both end in a linear ``logits`` layer
and a softmax named :data:`SOFTMAX_LAYER` (the reference's ``out_dense``): training feeds the
logits to the CTC loss, export cuts the model at the softmax.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
from keras import layers

from shixin_client._spec import DEFAULT_SPEC, INPUT_FLOAT, OUTPUT_SOFTMAX, CaptchaSpec

SOFTMAX_LAYER = OUTPUT_SOFTMAX
LOGITS_LAYER = "logits"
#: The CNN's last layer when the preset has a projection: one feature vector per step.
FEATURES_LAYER = "projection"


@dataclass(frozen=True)
class Preset:
    conv_filters: tuple[int, int, int]
    projection: int | None  # Dense width before the head; None feeds the CNN features directly
    dropout: float
    gru_units: int = 0  # two BiGRUs of this width read the steps...
    temporal_convs: tuple[tuple[int, int, int], ...] = ()  # ...or (filters, kernel, dilation) Conv1Ds

    def __post_init__(self) -> None:
        if bool(self.gru_units) == bool(self.temporal_convs):
            raise ValueError("a preset has either gru_units or temporal_convs, not both or neither")


PRESETS: dict[str, Preset] = {
    "seed": Preset(conv_filters=(16, 16, 16), gru_units=512, projection=None, dropout=0.0),
    # Dilated 1-D convolutions over the 40 steps (receptive field 29 steps): no recurrent
    # loop, so the embedded runtime reads one image in a few ops.
    "default": Preset(
        conv_filters=(16, 32, 32),
        projection=128,
        dropout=0.2,
        temporal_convs=((256, 5, 1), (256, 5, 2), (256, 5, 4)),
    ),
    # The same CNN with two BiGRU(128): the default until phase 8 (models/README.md).
    "gru": Preset(conv_filters=(16, 32, 32), gru_units=128, projection=128, dropout=0.2),
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
        x = layers.Dense(p.projection, activation="relu", name=FEATURES_LAYER)(x)
    softmax = layers.Softmax(name=SOFTMAX_LAYER)(sequence_head(x, p, spec))
    return keras.Model(image, softmax, name=f"shixin_{preset if isinstance(preset, str) else 'custom'}")


def sequence_head(x, p: Preset, spec: CaptchaSpec = DEFAULT_SPEC):  # type: ignore[no-untyped-def]
    """Per-step features [N, steps, F] -> logits [N, steps, classes]; layer names are stable."""
    if p.dropout:
        x = layers.Dropout(p.dropout, name="dropout")(x)
    for i in (1, 2) if p.gru_units else ():
        x = layers.Bidirectional(layers.GRU(p.gru_units, return_sequences=True), name=f"bigru{i}")(x)
    for i, (filters, kernel, dilation) in enumerate(p.temporal_convs, start=1):
        x = layers.Conv1D(
            filters, kernel, padding="same", dilation_rate=dilation, activation="relu", name=f"tconv{i}"
        )(x)
    return layers.Dense(spec.num_classes, name=LOGITS_LAYER)(x)


def logits_model(model: keras.Model) -> keras.Model:
    """The same network ending at the logits, sharing weights; what the CTC loss trains."""
    return keras.Model(model.input, model.get_layer(LOGITS_LAYER).output)
