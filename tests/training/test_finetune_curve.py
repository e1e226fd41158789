"""The fine-tuning curve: its epoch rule, its table, its refusals, a tiny run, and the committed figures."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest

from training import finetune_curve
from training.finetune_curve import CURVE_RESULTS, MAX_EPOCHS, MIN_EPOCHS, epochs_for, reached, table
from training.model import Preset, build_model

TINY = Preset(conv_filters=(4, 4, 4), projection=16, dropout=0.0, temporal_convs=((16, 3, 1),))


def _run(labelled: int, after: float) -> dict[str, float]:
    return {
        "labelled": labelled,
        "epochs": 6,
        "before_exact_match": 0.6,
        "after_exact_match": after,
        "before_char_accuracy": 0.8,
        "after_char_accuracy": 0.9,
        "train_seconds": 10.0,
        "wall_minutes": 1.0,
        "seconds_per_1000_per_epoch": 25.0,
    }


def test_epochs_give_every_size_about_the_same_draws_within_bounds() -> None:
    assert epochs_for(1000, 10000) == 10
    assert epochs_for(999, 10000) == 11  # rounded up: at least the draws asked for
    assert epochs_for(10, 10000) == MAX_EPOCHS
    assert epochs_for(100000, 10000) == MIN_EPOCHS
    with pytest.raises(ValueError, match="size=0"):
        epochs_for(0, 10000)


def test_reached_is_the_fewest_captchas_at_the_target_or_none() -> None:
    runs = [_run(100, 0.7), _run(500, 0.991), _run(200, 0.995)]
    assert reached(runs, 0.99) == 200
    assert reached(runs, 0.999) is None


def test_table_says_whether_the_target_was_reached() -> None:
    results = {
        "style": "changed",
        "style_file": "training/styles/changed.json",
        "held_out": 1000,
        "threads": 1,
        "machine": {"cpus": 2, "platform": "Linux"},
        "command": "python -m training.finetune_curve --work w",
        "target": 0.99,
        "runs": [_run(100, 0.7), _run(200, 0.995)],
        "reached": 200,
    }
    text = table(results)
    assert "| 200 | 6 | 60.0% | 99.5% | 90.0% | 1.0 | 25.0 |" in text
    assert "99% exact match reached with 200 labelled captchas." in text
    results.update(runs=[_run(100, 0.7)], reached=None)
    assert "99% exact match not reached with up to 100 labelled captchas." in table(results)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--sizes", "100,many"], "--sizes must be comma-separated whole numbers"),
        (["--sizes", "0,100"], "--sizes must be positive"),
        (["--threads", "0"], "--threads must be positive"),
        (["--target", "1.5"], "--target must be above 0 and at most 1"),
        (["--model", "missing.keras"], "--model missing.keras is not a file"),
    ],
)
def test_bad_arguments_are_refused_by_name(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit):
        finetune_curve.parse_args(["--work", str(tmp_path), *argv])
    assert message in capsys.readouterr().err


def test_an_unknown_style_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert finetune_curve.main(["--work", str(tmp_path), "--style", "no-such-style"]) == 2
    assert "no-such-style" in capsys.readouterr().err


@pytest.mark.slow
def test_a_tiny_curve_fine_tunes_each_size_on_the_same_held_out_set(tmp_path: Path) -> None:
    keras.utils.set_random_seed(0)
    model = tmp_path / "tiny.keras"
    build_model(TINY).save(model)
    results = tmp_path / "curve.json"
    argv = ["--work", str(tmp_path / "work"), "--model", str(model), "--sizes", "8,4", "--eval-count", "6",
            "--draws", "4", "--target", "1", "--results", str(results)]  # fmt: skip
    assert finetune_curve.main(argv) == 0
    curve = json.loads(results.read_text())
    assert [run["labelled"] for run in curve["runs"]] == [4, 8]
    assert all(run["epochs"] == MIN_EPOCHS for run in curve["runs"])
    assert curve["runs"][0]["before_exact_match"] == curve["runs"][1]["before_exact_match"]
    assert curve["held_out"] == 6 and curve["reached"] is None and curve["threads"] == 1
    assert results.with_suffix(".md").read_text() == table(curve)
    # The larger set holds the smaller one: the first captchas of one stream.
    small = {p.name for p in (tmp_path / "work" / "train" / "4").glob("*.png")}
    assert small <= {p.name for p in (tmp_path / "work" / "train" / "8").glob("*.png")}


def test_the_committed_curve_is_its_table_and_reached_the_runs_say() -> None:
    curve = json.loads(CURVE_RESULTS.read_text())
    assert curve["reached"] == reached(curve["runs"], curve["target"])
    assert CURVE_RESULTS.with_suffix(".md").read_text() == table(curve)
    assert [run["labelled"] for run in curve["runs"]] == sorted(run["labelled"] for run in curve["runs"])
