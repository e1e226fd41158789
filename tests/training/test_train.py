"""A tiny training run: the CTC loss on logits with 40 steps falls, and resume works."""

from __future__ import annotations

import json

import keras
import numpy as np

from training import train
from training.augment import KINDS
from training.dataset import pool_epochs, render


def test_tiny_run_loss_falls_and_writes_its_artifacts(tmp_path):
    out = tmp_path / "run"
    args = ["--out", str(out), "--train-size", "128", "--val-size", "32", "--test-size", "32",
            "--augment", "--epochs", "2", "--batch-size", "32", "--workers", "1", "--lr", "3e-3"]  # fmt: skip
    assert train.main(args) == 0
    history = json.loads((out / "history.json").read_text())
    assert len(history) == 2
    assert history[-1]["loss"] < history[0]["loss"]
    for name in ("best.keras", "last.keras", "training_curve.png", "report.json", "report.md", "train.log"):
        assert (out / name).exists(), name
    report = json.loads((out / "report.json").read_text())
    assert set(report["by_style"]) <= {"curves", "diffuse", "marble", "wobble", "double_ripple"}
    assert len(report["real_samples"]) == 4
    assert set(report["real_perturbed"]) == set(KINDS)
    assert set(report["by_mode"]) <= {"faithful", "wide"} and report["by_mode"]
    assert all(0.0 <= v <= 1.0 for v in report["real_perturbed"].values())
    assert "| rotate |" in (out / "report.md").read_text()
    # Resume continues from the saved epoch instead of starting again; a run saved before the
    # training state was kept still resumes, with a fresh optimizer, and says so.
    (out / train.TRAINING_STATE_FILE).unlink()
    assert train.main([*args[:-4], "--epochs", "3", "--resume", "--lr", "3e-3"]) == 0
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2, 3]
    assert "the optimizer starts afresh" in (out / "train.log").read_text()


def test_an_interrupted_run_resumed_ends_where_the_uninterrupted_run_does(tmp_path):
    """Weights, optimizer, dropout streams, the decay schedule and the pool's epoch order all carry over."""
    common = ["--train-size", "64", "--val-size", "8", "--test-size", "8", "--batch-size", "32",
              "--workers", "1", "--lr", "3e-3", "--decay-every", "1", "--lr-factor", "0.5"]  # fmt: skip
    assert train.main(["--out", str(tmp_path / "whole"), *common, "--epochs", "3"]) == 0
    assert train.main(["--out", str(tmp_path / "cut"), *common, "--epochs", "1"]) == 0
    assert train.main(["--out", str(tmp_path / "cut"), *common, "--epochs", "3", "--resume"]) == 0
    whole, cut = (json.loads((tmp_path / run / "history.json").read_text()) for run in ("whole", "cut"))
    assert [h["lr"] for h in cut] == [h["lr"] for h in whole] == [3e-3, 1.5e-3, 7.5e-4]
    for epoch_whole, epoch_cut in zip(whole, cut, strict=True):
        assert np.isclose(epoch_cut["loss"], epoch_whole["loss"], rtol=1e-6), (epoch_cut, epoch_whole)
    models = [keras.models.load_model(tmp_path / run / "last.keras") for run in ("whole", "cut")]
    for a, b in zip(*(model.get_weights() for model in models), strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)


def test_each_epoch_of_a_pool_has_its_own_order_drawn_from_the_seed_alone():
    pool = render(5, 0, 24)
    first = pool_epochs(pool, 8, seed=3)
    again = pool_epochs(pool, 8, seed=3)

    def labels(dataset):  # type: ignore[no-untyped-def]
        return np.concatenate([y.numpy() for _, y in dataset])

    assert (labels(first(1)) == labels(again(1))).all()  # however many iterators came before
    assert (labels(first(1)) == labels(first(1))).all()
    assert not (labels(first(0)) == labels(first(1))).all()
    assert sorted(map(tuple, labels(first(1)))) == sorted(map(tuple, pool.labels))
