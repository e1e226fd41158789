"""The recipe: the committed model's file replays models/train.log, and a recipe resumes exactly."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

from training import recipe, train
from training.model import build_model

REPO = Path(__file__).resolve().parents[2]
SHIXIN = REPO / "training" / "recipes" / "shixin.json"
LOG = REPO / "models" / "train.log"


def log_steps() -> list[dict[str, Any]]:
    """Each ``command:`` of train.log: its tool, its arguments and the epochs it began and ended at."""
    steps: list[dict[str, Any]] = []
    for line in LOG.read_text().splitlines():
        found = re.match(r"\S+ command: \S+/training/(\w+)\.py (.*)", line)
        if found:
            steps.append({"tool": found[1], "argv": shlex.split(found[2]), "start": 0, "end": None})
        elif steps and (resumed := re.match(r"\S+ resumed at epoch (\d+)", line)):
            steps[-1]["start"] = int(resumed[1])
        elif steps and (epoch := re.match(r"\S+ epoch (\d+)/", line)):
            steps[-1]["end"] = int(epoch[1])
    for step in steps:
        step["end"] = step["start"] if step["end"] is None else step["end"]
    return steps


def as_logged(raw: dict[str, Any], argv: list[str]) -> list[str]:
    """A log command's arguments in the recipe's terms: today's preset names, models by stage."""
    presets, paths = raw["log"]["presets"], raw["log"]["paths"]
    out: list[str] = []
    for i, arg in enumerate(argv):
        if i and argv[i - 1] == "--preset":
            out.append(presets[arg])
        elif arg in paths:
            out.append(str(Path("runs") / f"{paths[arg]}.keras"))
        else:
            out.append(arg)
    return out


def test_the_shixin_recipe_runs_the_commands_of_train_log_over_the_same_epochs() -> None:
    """The committed model comes from the recipe: every logged command, in order, with its epochs."""
    loaded = recipe.load(SHIXIN)
    raw = json.loads(SHIXIN.read_text())
    stages = [stage for stage in loaded.stages if stage.kind != "average"]  # the log holds no averages
    steps = log_steps()
    assert len(steps) == len(stages) == 24
    for stage, step in zip(stages, steps, strict=True):
        assert stage.kind == step["tool"], stage.name
        recorded = [*recipe.flags(stage.args)]
        head = ["--preset", stage.preset, "--out", f"runs/{stage.run}"]
        if stage.kind == "transplant":
            head = [str(recipe.model_path(loaded, loaded.stage(stage.parent), Path("runs"))), *head]
        assert [*head, *recorded] == as_logged(raw, step["argv"]), stage.name
        if stage.kind == "train":
            assert loaded.epochs[stage.name] == (step["start"], step["end"]), stage.name
    assert loaded.stages[-1].kind == "average" and loaded.model == "shixin.keras"


def test_the_log_presets_map_to_todays_presets_of_the_logged_size() -> None:
    """train.log names presets as they were then; each maps to today's one of the same parameter count."""
    presets = json.loads(SHIXIN.read_text())["log"]["presets"]
    logged = dict(re.findall(r"preset (\w+): (\d+) parameters", LOG.read_text()))
    assert set(logged) == set(presets)
    for then, now in presets.items():
        assert build_model(now).count_params() == int(logged[then]), then


def test_the_dry_run_prints_every_command_and_the_replays_end_at_the_recorded_epoch(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert recipe.main([str(SHIXIN), "--out", "runs", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    commands = [line for line in lines if line.startswith("python -m training.")]
    assert len(commands) == 26  # 24 logged steps less one never run, plus three averages
    assert commands[0].endswith("--time-budget 85 --epochs 4 --time-budget 0")
    assert any(line.startswith("# not run") and "--seed 16" in line for line in lines)
    assert lines[-1] == "# then runs/phase9.keras is copied to runs/shixin.keras"


def tiny_args(**extra: Any) -> dict[str, Any]:
    args: dict[str, Any] = {"train_size": 64, "val_size": 8, "test_size": 8, "batch_size": 32, "workers": 1}
    return {**args, **extra}


def tiny_recipe(tmp_path: Path) -> Path:
    branch = {"resume": True, "reset_lr": True, "lr": 1e-3, "decay_every": 1, "lr_factor": 0.5}
    raw = {
        "data": {"style": str(REPO / "training" / "styles" / "site.json")},
        "model": "tiny.keras",
        "stages": [
            {"name": "base", "kind": "train", "run": "base", "preset": "default",
             "args": tiny_args(seed=1, epochs=1)},
            {"name": "a", "kind": "train", "run": "a", "preset": "default", "from": "base",
             "args": tiny_args(seed=2, epochs=3, **branch)},
            {"name": "b", "kind": "train", "run": "b", "preset": "default", "from": "base",
             "args": tiny_args(seed=3, epochs=2, **branch)},
            {"name": "b2", "kind": "train", "run": "b", "preset": "default",
             "args": tiny_args(seed=4, epochs=3, **branch)},
            {"name": "soup", "kind": "average", "runs": ["a", "b"], "checkpoint": "last.keras",
             "args": {"count": 8, "workers": 1}},
        ],
    }  # fmt: skip
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(raw))
    return path


def weights(path: Path) -> list[np.ndarray]:
    return keras.models.load_model(path).get_weights()


@pytest.mark.slow
def test_a_recipe_interrupted_mid_stage_and_rerun_ends_with_the_uninterrupted_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tiny = recipe.load(tiny_recipe(tmp_path))
    whole = recipe.run(tiny, tmp_path / "whole", say=lambda _: None)
    assert whole == tmp_path / "whole" / "tiny.keras"

    # Interrupt stage "a" during its second epoch (after one of its two epochs was saved).
    real, calls = train.exact_match, []

    def interrupt(*args: Any, **kwargs: Any) -> float:
        calls.append(1)
        if len(calls) == 3:  # base's epoch, a's first, then a's second
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(train, "exact_match", interrupt)
    cut = tmp_path / "cut"
    with pytest.raises(KeyboardInterrupt):
        recipe.run(tiny, cut, say=lambda _: None)
    state = json.loads((cut / recipe.STATE_FILE).read_text())["stages"]
    assert state["base"]["status"] == "done" and state["a"] == {"status": "running", "start_epoch": 1}
    assert recipe.run_epoch(cut / "a") == 2
    monkeypatch.setattr(train, "exact_match", real)

    said: list[str] = []
    assert recipe.run(tiny, cut, say=said.append) == cut / "tiny.keras"
    assert said[0] == "base: done already"
    resumed = next(line for line in said if "--out " + str(cut / "a") in line)
    assert "--resume" in resumed and "--reset-lr" not in resumed
    for ours, theirs in zip(weights(cut / "tiny.keras"), weights(whole), strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-6)
    assert recipe.run(tiny, cut, say=said.append) == cut / "tiny.keras"  # all done: nothing reruns
    assert said[-2:] == ["soup: done already", f"model: {cut / 'tiny.keras'}"]


def good(tmp_path: Path) -> dict[str, Any]:
    return json.loads(tiny_recipe(tmp_path).read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda r: r["stages"][0].update(kind="bake"), "unknown stage kind 'bake'"),
        (lambda r: r["stages"][0].update(preset="huge"), "stage 'base': unknown preset 'huge'"),
        (
            lambda r: r["stages"][1].update({"from": "later"}),
            "'from' names 'later', which is not an earlier",
        ),
        (lambda r: r["stages"][0]["args"].update(epochs="many"), "stage 'base': args: "),
        (lambda r: r["stages"][0]["args"].update(out="x"), "out belong to the stage or the recipe"),
        (lambda r: r["stages"][3]["args"].update(epochs=1), "stage 'b2': ends at epoch 1, outside 2..1"),
        (
            lambda r: r["stages"][4].update(runs=["a", "nowhere"]),
            "'runs' must list runs of earlier train",
        ),
        (lambda r: r["stages"][1]["args"].pop("resume"), "stands at epoch 1; without resume it starts over"),
        (lambda r: r.update(model="tiny.h5"), "'model' must be a file name ending in .keras"),
        (lambda r: r.update(extra=1), "unknown key 'extra'"),
    ],
)
def test_a_bad_recipe_names_the_file_the_stage_and_the_problem(
    tmp_path: Path, change: Any, message: str
) -> None:
    raw = good(tmp_path)
    change(raw)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(recipe.RecipeError) as error:
        recipe.load(path)
    assert str(error.value).startswith(str(path)) and message in str(error.value)


def test_the_cli_reports_a_bad_recipe_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert recipe.main([str(tmp_path / "none.json"), "--out", str(tmp_path), "--dry-run"]) == 2
    assert capsys.readouterr().err.startswith("training.recipe: ")
