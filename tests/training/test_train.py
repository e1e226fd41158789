"""A tiny training run: the CTC loss on logits with 40 steps falls, and resume works."""

from __future__ import annotations

import json

from training import train
from training.augment import KINDS


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
    # Resume continues from the saved epoch instead of starting again.
    assert train.main([*args[:-4], "--epochs", "3", "--resume", "--lr", "3e-3"]) == 0
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1, 2, 3]
