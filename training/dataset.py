"""Captchas as model-ready arrays: generated ones (a pre-rendered pool, a fresh stream) and epochs
that mix them with labelled ones.

Images go through ``shixin_client._images.preprocess`` (the one preprocessing), so the
model trains on exactly what users' clients will send it. Every function draws the
captchas of a :class:`~training.style.CaptchaStyle` (default: the site's) and labels them
for that style's spec unless given another.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from shixin_client._images import preprocess
from shixin_client._spec import DEFAULT_SPEC, CaptchaSpec

from .augment import augment as perturb_randomly
from .generator import captcha_at
from .labelled import LabelledSet
from .style import CaptchaStyle, site_style


@dataclass
class Batch:
    images: np.ndarray  # uint8 [N, H, W, 1] in {0, 1}
    labels: np.ndarray  # int32 [N, label_length] class ids
    texts: list[str]  # lowercase labels
    styles: list[str]  # the filter family that drew each image (the report's "by style")
    wide: list[bool]  # which images wide mode drew (the rest use the style's own ranges)


def encode_label(text: str, spec: CaptchaSpec = DEFAULT_SPEC) -> list[int]:
    if len(text) != spec.label_length:
        raise ValueError(f"label {text!r} has {len(text)} characters, the model reads {spec.label_length}")
    return [spec.char_to_class(ch) for ch in text.lower()]


#: Third key of an image's augmentation stream, so it never shares draws with the generator's.
AUGMENT_STREAM = 1


def render(
    seed: int,
    start: int,
    count: int,
    spec: CaptchaSpec | None = None,
    augment: bool = False,
    wide: bool | None = None,
    style: CaptchaStyle | None = None,
) -> Batch:
    """Images ``start .. start+count`` of ``seed``; ``augment`` perturbs some (training only).

    ``wide`` forces one generator mode (``None``: the style's own draw); ``spec`` defaults
    to the style's.
    """
    style = style or site_style()
    spec = spec or style.spec
    images = np.empty((count, spec.height, spec.width, 1), dtype=np.uint8)
    labels = np.empty((count, spec.label_length), dtype=np.int32)
    texts: list[str] = []
    styles: list[str] = []
    drawn_wide: list[bool] = []
    for i in range(count):
        captcha = captcha_at(seed, start + i, wide=wide, style=style)
        picture = captcha.image
        if augment:
            picture = perturb_randomly(picture, np.random.default_rng([seed, start + i, AUGMENT_STREAM]))
        images[i] = preprocess(picture, spec).astype(np.uint8)
        labels[i] = encode_label(captcha.label, spec)
        texts.append(captcha.label)
        styles.append(captcha.family)
        drawn_wide.append(captcha.wide)
    return Batch(images, labels, texts, styles, drawn_wide)


def _render_chunk(args: tuple[int, int, int, bool, bool | None, CaptchaStyle | None]) -> Batch:
    seed, start, count, augment, wide, style = args
    return render(seed, start, count, augment=augment, wide=wide, style=style)


def render_parallel(
    seed: int,
    count: int,
    workers: int = 2,
    chunk: int = 2000,
    start: int = 0,
    augment: bool = False,
    wide: bool | None = None,
    style: CaptchaStyle | None = None,
) -> Batch:
    """Render ``count`` images in worker processes; the result is identical to :func:`render`."""
    jobs = [
        (seed, s, min(chunk, start + count - s), augment, wide, style)
        for s in range(start, start + count, chunk)
    ]
    if workers <= 1:
        parts = [_render_chunk(job) for job in jobs]
    else:
        with ProcessPoolExecutor(workers) as pool:
            parts = list(pool.map(_render_chunk, jobs))
    return Batch(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.labels for p in parts]),
        [t for p in parts for t in p.texts],
        [s for p in parts for s in p.styles],
        [w for p in parts for w in p.wide],
    )


def fresh_examples(
    seed: int,
    spec: CaptchaSpec | None = None,
    start: int = 0,
    augment: bool = False,
    style: CaptchaStyle | None = None,
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """An endless stream of never-repeated (image float32, label ids) pairs for ``seed``."""
    index = start
    while True:
        batch = render(seed, index, 1, spec, augment, style=style)
        yield batch.images[0].astype(np.float32), batch.labels[0]
        index += 1


def stream_dataset(  # type: ignore[no-untyped-def]
    seed: int,
    batch_size: int,
    spec: CaptchaSpec | None = None,
    start: int = 0,
    augment: bool = False,
    style: CaptchaStyle | None = None,
):
    """A ``tf.data`` pipeline that renders fresh captchas while the model trains."""
    import tensorflow as tf

    spec = spec or (style or site_style()).spec
    signature = (
        tf.TensorSpec((spec.height, spec.width, 1), tf.float32),
        tf.TensorSpec((spec.label_length,), tf.int32),
    )
    dataset = tf.data.Dataset.from_generator(
        lambda: fresh_examples(seed, spec, start, augment, style), output_signature=signature
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def pool_epochs(batch: Batch, batch_size: int, seed: int):  # type: ignore[no-untyped-def]
    """Epoch number -> a ``tf.data`` pipeline over a pre-rendered pool in that epoch's order.

    Each epoch's order is a permutation drawn from ``(seed, epoch)`` alone, not from a
    shuffle whose state advances with every iterator Keras happens to open, so a resumed run
    sees exactly the epochs an uninterrupted one would. The pool stays uint8 in one tensor
    shared by every epoch; batches are gathered and cast as they are drawn.
    """
    import tensorflow as tf

    images, labels = tf.constant(batch.images), tf.constant(batch.labels)

    def epoch_dataset(epoch: int):  # type: ignore[no-untyped-def]
        order = np.random.default_rng([seed, epoch]).permutation(len(batch.images))
        dataset = tf.data.Dataset.from_tensor_slices(order).batch(batch_size)
        dataset = dataset.map(lambda i: (tf.cast(tf.gather(images, i), tf.float32), tf.gather(labels, i)))
        return dataset.prefetch(tf.data.AUTOTUNE)

    return epoch_dataset


def labelled_batch(labelled: LabelledSet, spec: CaptchaSpec = DEFAULT_SPEC) -> Batch:
    """Labelled captchas as drawn, as a Batch (validation, reports); their family reads "labelled"."""
    labels = np.asarray([encode_label(text, spec) for text in labelled.texts], dtype=np.int32)
    count = len(labelled)
    return Batch(
        labelled.images,
        labels.reshape(count, spec.label_length),
        list(labelled.texts),
        ["labelled"] * count,
        [False] * count,
    )


def mixed_epochs(  # type: ignore[no-untyped-def]
    labelled: LabelledSet,
    generated: Callable[[int], Batch] | None,
    batch_size: int,
    seed: int,
    spec: CaptchaSpec,
    augment: bool = False,
):
    """Epoch number -> a ``tf.data`` pipeline over labelled captchas and, if given, generated ones.

    Every epoch holds each labelled captcha once (perturbed afresh per epoch with
    ``augment``) and ``generated(epoch)``'s captchas, in an order drawn from ``(seed,
    epoch)`` alone, so a resumed run sees the epochs an uninterrupted one would.
    """
    import tensorflow as tf

    labels = labelled_batch(labelled, spec).labels

    def epoch_dataset(epoch: int):  # type: ignore[no-untyped-def]
        images = [labelled.epoch_images(seed, epoch, spec, augment)]
        targets = [labels]
        if generated is not None:
            batch = generated(epoch)
            images.append(batch.images)
            targets.append(batch.labels)
        all_images, all_labels = np.concatenate(images), np.concatenate(targets)
        order = np.random.default_rng([seed, epoch]).permutation(len(all_images))
        dataset = tf.data.Dataset.from_tensor_slices((all_images[order], all_labels[order])).batch(batch_size)
        dataset = dataset.map(lambda x, y: (tf.cast(x, tf.float32), y))
        return dataset.prefetch(tf.data.AUTOTUNE)

    return epoch_dataset
