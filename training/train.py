"""CLI: train a preset from scratch on generated captchas, labelled ones, or both, with a fixed seed.

    python -m training.train --preset default --out runs/default --seed 1
    python -m training.train --labelled data/origin --generated-ratio 1 --augment --out runs/mine
    python -m training.train --style my-site.json --out runs/my-site

``--style`` says which captchas to generate and the model's spec (default: the site's,
training/styles/site.json). ``--labelled DIR...`` trains on folders of ``<label>_<anything>.<ext>``
captchas (training/labelled.py says which files are used); each epoch then holds every
labelled captcha once and ``--generated-ratio`` generated ones per labelled one, through the
same preprocessing and ``--augment``. A share ``--holdout`` of the labelled files is held
out: validation reads it instead of generated captchas, and the end of the run reports it.

CTC loss on the logits with the true input length (all 40 steps; the reference passed
38), validation on fresh captchas every epoch (a seed never used for training),
best-checkpoint on validation exact match, learning-rate decay on plateau, early
stopping, resume (``--resume``), progress on the terminal and in ``<out>/train.log``.
At the end it writes the training curve and the evaluation report (training.evaluate).

``--resume`` continues an interrupted run where it stopped: weights, optimizer state,
learning-rate schedule and the order of the training pool's epochs, so it ends where the
uninterrupted run would. ``--resume --reset-lr`` starts a new phase (fine-tuning) from
the saved weights instead, with a fresh optimizer at ``--lr``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from shixin_client._spec import DEFAULT_SPEC, CaptchaSpec

from . import evaluate
from .dataset import Batch, labelled_batch, mixed_epochs, pool_epochs, render, render_parallel, stream_dataset
from .labelled import LabelledSet, load_labelled, read, reading_report, split
from .model import PRESETS, build_model, logits_model
from .style import CaptchaStyle, StyleError, load_style, site_style

log = logging.getLogger("training")

#: Seeds for the data streams; a model is never trained on the validation or test seed.
TRAIN_SEED_OFFSET = 0
VALIDATION_SEED = 900_001
TEST_SEED = 900_002
#: The optimizer's variables and the random streams after the last epoch, beside last.keras.
TRAINING_STATE_FILE = "training_state.npz"


def ctc_loss(spec: CaptchaSpec):  # type: ignore[no-untyped-def]
    """CTC on logits; every captcha has spec.label_length characters and spec.time_steps steps."""
    import tensorflow as tf

    def loss(labels, logits):  # type: ignore[no-untyped-def]
        batch = tf.shape(logits)[0]
        return tf.nn.ctc_loss(
            labels=tf.cast(labels, tf.int32),
            logits=logits,
            label_length=tf.fill([batch], spec.label_length),
            logit_length=tf.fill([batch], tf.shape(logits)[1]),
            logits_time_major=False,
            blank_index=spec.blank_index,
        )

    return loss


def start_run(out: Path, seed: int) -> None:
    """Seed every generator, log to the terminal and ``<out>/train.log``, and record the command."""
    import keras

    keras.utils.set_random_seed(seed)
    out.mkdir(parents=True, exist_ok=True)
    fmt = logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S")
    for handler in (logging.StreamHandler(sys.stdout), logging.FileHandler(out / "train.log")):
        handler.setFormatter(fmt)
        log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.info("command: %s", " ".join(sys.argv))


def exact_match(model, batch: Batch, spec: CaptchaSpec = DEFAULT_SPEC) -> float:  # type: ignore[no-untyped-def]
    softmax = model.predict(batch.images.astype(np.float32), batch_size=256, verbose=0)
    texts = evaluate.decode(softmax, spec)
    return float(np.mean([t == y for t, y in zip(texts, batch.texts, strict=True)]))


def _training_variables(trainer):  # type: ignore[no-untyped-def]
    """What last.keras lacks for an exact resume, by name: the optimizer's variables and the
    dropout layers' random streams (Keras keeps SeedGenerator state out of saved models)."""
    random_states = [v for v in trainer.variables if v.path.endswith("seed_generator_state")]
    return {
        **{f"optimizer_{i}": v for i, v in enumerate(trainer.optimizer.variables)},
        **{f"random_{i}": v for i, v in enumerate(random_states)},
    }


def save_training_state(trainer, path: Path) -> None:  # type: ignore[no-untyped-def]
    import keras

    variables = _training_variables(trainer)
    np.savez(path, **{name: keras.ops.convert_to_numpy(v) for name, v in variables.items()})


def restore_training_state(trainer, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Build the trainer's optimizer and load what ``save_training_state`` wrote."""
    trainer.optimizer.build(trainer.trainable_variables)
    targets = _training_variables(trainer)
    with np.load(path) as saved:
        values = {name: saved[name] for name in saved.files}
    if set(values) != set(targets) or any(tuple(targets[n].shape) != values[n].shape for n in targets):
        raise ValueError(f"{path} holds the state of another model's training; resume with --reset-lr")
    for name, variable in targets.items():
        variable.assign(values[name])


def labelled_data(args: argparse.Namespace, spec: CaptchaSpec) -> tuple[LabelledSet, LabelledSet]:
    """The ``--labelled`` folders' captchas, split into (training, held out) by ``--holdout``."""
    found = load_labelled(args.labelled, spec, say=log.info)
    if len(found) < 2:
        raise SystemExit(f"need at least 2 usable labelled captchas in {', '.join(map(str, args.labelled))}")
    return split(found, args.holdout, args.seed)


def epoch_source(  # type: ignore[no-untyped-def]
    args: argparse.Namespace, style: CaptchaStyle, labelled: LabelledSet | None
):
    """(epoch -> dataset, steps per epoch or None): the training data the arguments ask for."""
    spec = style.spec
    train_seed = args.seed + TRAIN_SEED_OFFSET
    if labelled is not None:
        count = round(args.generated_ratio * len(labelled))
        log.info("each epoch: %d labelled and %d generated captchas", len(labelled), count)
        generated = None
        if count and args.source == "pool":
            pool = render_parallel(train_seed, count, workers=args.workers, augment=args.augment, style=style)
            generated = lambda epoch: pool  # noqa: E731
        elif count:
            generated = lambda epoch: render_parallel(  # noqa: E731
                train_seed,
                count,
                workers=args.workers,
                start=epoch * count,
                augment=args.augment,
                style=style,
            )
        return mixed_epochs(labelled, generated, args.batch_size, args.seed, spec, args.augment), None
    if args.source == "pool":
        t0 = time.time()
        pool = render_parallel(
            train_seed, args.train_size, workers=args.workers, augment=args.augment, style=style
        )
        log.info("rendered %d training captchas in %.0f s", args.train_size, time.time() - t0)
        return pool_epochs(pool, args.batch_size, args.seed), None

    def epoch_data(epoch: int):  # type: ignore[no-untyped-def]
        """Epoch ``epoch``'s own fresh captchas: the stream never repeats, and resumes in place."""
        start = epoch * args.train_size
        return stream_dataset(
            train_seed, args.batch_size, spec, start=start, augment=args.augment, style=style
        )

    return epoch_data, args.train_size // args.batch_size


def write_style_report(report: dict[str, Any], out: Path, name: str, title: str, command: str) -> None:
    """``<name>.json`` and ``<name>.md``: exact match, per character and the misreads of one set."""
    (out / f"{name}.json").write_text(json.dumps(report, indent=1))
    lines = [
        f"# {title}",
        "",
        f"Made with `{command}`.",
        "",
        f"- captchas: {report['count']}",
        f"- exact match: {report['exact_match']:.2%}",
        f"- per character: {report['char_accuracy']:.2%}",
        "",
        "| file | label | read |",
        "|---|---|---|",
        *(f"| {m['file']} | {m['label']} | {m['read'] or '(none)'} |" for m in report["misreads"][:50]),
    ]
    (out / f"{name}.md").write_text("\n".join(lines) + "\n")


def train(args: argparse.Namespace) -> Path:
    import keras

    style = load_style(args.style)
    spec = style.spec
    out: Path = args.out
    start_run(out, args.seed)
    log.info("style %s (%s): %s", style.name, style.source, spec)
    labelled, holdout = labelled_data(args, spec) if args.labelled else (None, None)
    state_path = out / "state.json"
    history_path = out / "history.json"
    last_path, best_path = out / "last.keras", out / "best.keras"
    history: list[dict[str, float]] = []
    start_epoch, best, lr, stale = 0, -1.0, args.lr, 0
    state: dict[str, Any] = {}
    model = build_model(args.preset, spec)
    continuing = args.resume and last_path.exists() and not args.reset_lr
    if args.resume and last_path.exists():
        model = keras.models.load_model(last_path)
        state = json.loads(state_path.read_text())
        start_epoch, best, lr, stale = state["epoch"], state["best"], state["lr"], state["stale"]
        history = json.loads(history_path.read_text())
        if args.reset_lr:
            lr, stale = args.lr, 0
        log.info("resumed at epoch %d (best %.4f, lr %.2e)", start_epoch, best, lr)
    # The epoch this phase began at: the decay schedule counts from it.
    phase_start = state.get("phase_start", start_epoch) if continuing else start_epoch
    log.info("preset %s: %d parameters", args.preset, model.count_params())
    trainer = logits_model(model)
    optimizer = keras.optimizers.Adam(learning_rate=lr, amsgrad=True, clipnorm=5.0)
    trainer.compile(optimizer=optimizer, loss=ctc_loss(spec))
    if continuing:
        if (out / TRAINING_STATE_FILE).exists():
            restore_training_state(trainer, out / TRAINING_STATE_FILE)
        else:
            log.info("no %s in %s: the optimizer starts afresh", TRAINING_STATE_FILE, out)

    epoch_data, steps = epoch_source(args, style, labelled)
    held_out = labelled_batch(holdout, spec) if holdout is not None and len(holdout) else None
    if held_out is not None:
        log.info("validation: the %d held-out labelled captchas", len(held_out.texts))

    started = time.time()
    verbose = 2 if args.verbose else 0
    for epoch in range(start_epoch, args.epochs):
        t0 = time.time()
        fit = trainer.fit(epoch_data(epoch), epochs=1, steps_per_epoch=steps, verbose=verbose)
        loss = float(fit.history["loss"][-1])
        if held_out is None:
            val = render(VALIDATION_SEED, epoch * args.val_size, args.val_size, spec, style=style)
        else:
            val = held_out
        accuracy = exact_match(model, val, spec)
        history.append({"epoch": epoch + 1, "loss": loss, "val_accuracy": accuracy, "lr": lr})
        improved = accuracy > best
        if improved:
            best, stale = accuracy, 0
            model.save(best_path)
        else:
            stale += 1
        log.info(
            "epoch %d/%d loss %.4f val_exact %.4f best %.4f lr %.2e %.0fs%s",
            epoch + 1, args.epochs, loss, accuracy, best, lr, time.time() - t0, " *" if improved else "",
        )  # fmt: skip
        if args.decay_every and (epoch + 1 - phase_start) % args.decay_every == 0:
            lr = max(lr * args.lr_factor, args.min_lr)
            trainer.optimizer.learning_rate.assign(lr)
            log.info("scheduled decay: learning rate -> %.2e", lr)
        elif stale and stale % args.lr_patience == 0:
            lr = max(lr * args.lr_factor, args.min_lr)
            trainer.optimizer.learning_rate.assign(lr)
            log.info("learning rate -> %.2e", lr)
        model.save(last_path)
        save_training_state(trainer, out / TRAINING_STATE_FILE)
        state = {"epoch": epoch + 1, "best": best, "lr": lr, "stale": stale, "phase_start": phase_start}
        state_path.write_text(json.dumps(state))
        history_path.write_text(json.dumps(history, indent=1))
        if stale >= args.patience:
            log.info("early stop: no improvement for %d epochs", stale)
            break
        if args.time_budget and time.time() - started > args.time_budget * 60:
            log.info("stopping: the %d-minute time budget is spent", args.time_budget)
            break

    evaluate.plot_curve(history, out / "training_curve.png")
    best_model = keras.models.load_model(best_path)
    command = " ".join(["python -m training.train", *sys.argv[1:]])
    if style == site_style():
        report = evaluate.evaluate(best_model, TEST_SEED, args.test_size, spec, workers=args.workers)
        evaluate.write_report(report, out, command=command)
    else:
        test = render_parallel(TEST_SEED, args.test_size, workers=args.workers, style=style)
        names = [f"{TEST_SEED}:{i}" for i in range(args.test_size)]
        report = reading_report(names, test.texts, read(best_model, test.images, spec))
        write_style_report(
            report, out, "report", f"Generated {style.name} captchas (seed {TEST_SEED})", command
        )
    log.info(
        "test exact match %.4f on %d captchas (seed %d)", report["exact_match"], args.test_size, TEST_SEED
    )
    if holdout is not None and len(holdout):
        files = [str(path) for path in holdout.files]
        held = reading_report(files, holdout.texts, read(best_model, holdout.images, spec))
        write_style_report(held, out, "holdout", "Held-out labelled captchas", command)
        log.info("held-out labelled exact match %.4f on %d captchas", held["exact_match"], held["count"])
    return best_path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="default", choices=sorted(PRESETS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--style", help="style file or name to generate (default: the site's)")
    parser.add_argument(
        "--labelled", type=Path, nargs="+", help="folders of <label>_<anything>.<ext> captchas to train on"
    )
    parser.add_argument(
        "--generated-ratio",
        type=float,
        default=0.0,
        help="with --labelled: generated captchas per labelled one in each epoch (default 0: labelled only)",
    )
    parser.add_argument(
        "--holdout",
        type=float,
        default=0.1,
        help="with --labelled: share held out for validation and the final report (default %(default)s)",
    )
    parser.add_argument(
        "--source",
        choices=["pool", "stream"],
        default="pool",
        help="pool: render --train-size captchas once (fast); stream: fresh ones every step",
    )
    parser.add_argument(
        "--train-size", type=int, default=100_000, help="generated captchas per epoch without --labelled"
    )
    parser.add_argument("--val-size", type=int, default=2_000)
    parser.add_argument("--test-size", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--lr-factor", type=float, default=0.3)
    parser.add_argument("--lr-patience", type=int, default=2)
    parser.add_argument("--min-lr", type=float, default=1e-5)
    parser.add_argument(
        "--decay-every", type=int, default=0, help="also multiply the rate by --lr-factor every N epochs"
    )
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--augment",
        action="store_true",
        help="perturb half the training images (training/augment.py)",
    )
    parser.add_argument(
        "--time-budget", type=int, default=0, help="minutes; stop after the epoch that passes it"
    )
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--reset-lr", action="store_true", help="with --resume: restart at --lr (fine-tune)")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.generated_ratio < 0:
        parser.error("--generated-ratio must be 0 or more")
    if not 0 <= args.holdout < 1:
        parser.error("--holdout must be at least 0 and below 1")
    return args


def run_tool(prog: str, work: Callable[[], object]) -> int:
    """A training tool's exit status: a bad style file or labelled folder is one line on stderr
    and status 2, since those are the user's input, not a fault worth a traceback."""
    try:
        work()
    except (StyleError, NotADirectoryError) as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_tool("training.train", lambda: train(parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
