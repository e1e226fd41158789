"""Row 14: how fast the default preset trains on this CPU, the captcha generator included.

A short run of ``training.train``'s step: the preset, batch size and learning rate are
``python -m training.train``'s defaults (read from its argument parser), the loss its CTC
loss, and the data its ``--source stream`` pipeline, which renders fresh captchas with the
generator while the model trains, in the same process. After a few untimed steps (tracing,
the pipeline filling), ``training_steps`` steps are timed; the figure is captchas per
CPU-second of the whole process (all its threads: the generator, tf.data and the model),
which is captchas per second per core when every core is busy.
"""

from __future__ import annotations

import time

from shixin_client._spec import DEFAULT_SPEC

from ._context import Context
from ._results import INFO, Row

WARM_STEPS = 2
#: A seed of its own: these captchas are never any model's training data.
SEED = 31


def training_rows(ctx: Context) -> list[Row]:
    import keras

    from training.dataset import stream_dataset
    from training.model import build_model, logits_model
    from training.train import ctc_loss, parse_args

    defaults = parse_args(["--out", str(ctx.tmp / "training")])
    keras.utils.set_random_seed(SEED)
    trainer = logits_model(build_model(defaults.preset))
    trainer.compile(  # the optimizer training.train compiles with
        optimizer=keras.optimizers.Adam(learning_rate=defaults.lr, amsgrad=True, clipnorm=5.0),
        loss=ctc_loss(DEFAULT_SPEC),
    )
    steps = ctx.counts.training_steps
    warm = stream_dataset(SEED, defaults.batch_size)
    trainer.fit(warm, epochs=1, steps_per_epoch=WARM_STEPS, shuffle=False, verbose=0)
    data = stream_dataset(SEED, defaults.batch_size, start=WARM_STEPS * defaults.batch_size)
    cpu, wall = time.process_time(), time.perf_counter()
    trainer.fit(data, epochs=1, steps_per_epoch=steps, shuffle=False, verbose=0)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    captchas = steps * defaults.batch_size
    return [
        Row(
            "14",
            14,
            "Training throughput",
            f"captchas per CPU-second (per core) of training the `{defaults.preset}` preset as "
            f"`python -m training.train --source stream` does (batch {defaults.batch_size}, fresh captchas "
            f"rendered by the generator in the same process): {steps} steps timed after {WARM_STEPS} "
            "untimed ones",
            "captchas/s",
            captchas / cpu,
            None,
            None,
            None,
            INFO,
            "no baseline: a figure for planning a training run on this CPU",
            {"wall_captchas_per_s": captchas / wall, "cpu_s": cpu, "wall_s": wall, "captchas": captchas},
        )
    ]
