"""Fine-tuning a trained model on a labelled folder: the split, the before/after report, refusals."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest

from shixin_client._spec import CaptchaSpec
from training import finetune
from training.generator import file_name, generate, png_bytes
from training.model import Preset, build_model

TINY = Preset(conv_filters=(4, 4, 4), projection=16, dropout=0.0, temporal_convs=((16, 3, 1),))


def write_folder(folder: Path, count: int, seed: int) -> None:
    folder.mkdir(parents=True)
    for captcha in generate(seed, count):
        data = png_bytes(captcha)
        (folder / file_name(captcha, data)).write_bytes(data)


@pytest.fixture(scope="module")
def tiny_keras(tmp_path_factory: pytest.TempPathFactory) -> Path:
    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("tiny") / "tiny.keras"
    build_model(TINY).save(path)
    return path


def test_finetune_holds_out_a_share_and_reports_before_and_after(tiny_keras: Path, tmp_path: Path) -> None:
    write_folder(tmp_path / "labelled", 16, seed=3)
    (tmp_path / "labelled" / "readme.txt").write_text("not a captcha")
    out = tmp_path / "run"
    argv = [str(tmp_path / "labelled"), "--out", str(out), "--model", str(tiny_keras), "--epochs", "2",
            "--holdout", "0.25", "--lr", "1e-2", "--batch-size", "4", "--generated-ratio", "0.5"]  # fmt: skip
    assert finetune.main(argv) == 0
    result = json.loads((out / "finetune.json").read_text())
    assert result["before"]["count"] == result["after"]["count"] == 4
    assert result["trained_on"] == "12 labelled + 6 generated captchas"
    after_wrong = {m["file"] for m in result["after"]["misreads"]}
    before_wrong = {m["file"] for m in result["before"]["misreads"]}
    assert (
        set(result["fixed"]) == before_wrong - after_wrong
        and set(result["broken"]) == after_wrong - before_wrong
    )
    report = (out / "finetune.md").read_text()
    assert "| exact match |" in report and "| per character |" in report
    log = (out / "train.log").read_text()
    assert "skipped" in log and "readme.txt" in log and "labelled captchas: 16 of 17 files used" in log
    assert "export it: python -m export --model" in log
    tuned = keras.models.load_model(out / "finetuned.keras")
    original = keras.models.load_model(tiny_keras)
    changed = [
        not np.array_equal(a, b) for a, b in zip(tuned.get_weights(), original.get_weights(), strict=True)
    ]
    assert any(changed)


def test_an_eval_folder_replaces_the_holdout_and_everything_else_is_trained_on(
    tiny_keras: Path, tmp_path: Path
) -> None:
    write_folder(tmp_path / "train", 6, seed=4)
    write_folder(tmp_path / "eval", 3, seed=5)
    out = tmp_path / "run"
    argv = [str(tmp_path / "train"), "--eval", str(tmp_path / "eval"), "--out", str(out),
            "--model", str(tiny_keras), "--epochs", "1", "--batch-size", "4", "--no-augment"]  # fmt: skip
    assert finetune.main(argv) == 0
    result = json.loads((out / "finetune.json").read_text())
    assert result["after"]["count"] == 3 and result["trained_on"] == "6 labelled + 0 generated captchas"
    files = {m["file"] for m in result["before"]["misreads"]}
    assert all(Path(f).parent == tmp_path / "eval" for f in files)


def test_a_model_of_another_spec_is_refused_by_name(tmp_path: Path) -> None:
    other = tmp_path / "other.keras"
    build_model(TINY, CaptchaSpec(charset="abc", label_length=4, height=70, width=160, time_steps=40)).save(
        other
    )
    write_folder(tmp_path / "labelled", 4, seed=3)
    with pytest.raises(SystemExit, match="does not fit style 'site'.*output shape"):
        finetune.main([str(tmp_path / "labelled"), "--out", str(tmp_path / "run"), "--model", str(other)])


def test_arguments_that_leave_no_report_are_refused(tiny_keras: Path, tmp_path: Path) -> None:
    base = [str(tmp_path), "--out", str(tmp_path / "run"), "--model", str(tiny_keras)]
    with pytest.raises(SystemExit) as exit_info:
        finetune.parse_args([*base, "--holdout", "0"])
    assert exit_info.value.code == 2
    with pytest.raises(SystemExit):
        finetune.parse_args(
            [str(tmp_path), "--out", str(tmp_path / "run"), "--model", str(tmp_path / "no.keras")]
        )
    assert finetune.main([*base, "--style", str(tmp_path / "none.json")]) == 2
