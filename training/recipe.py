"""CLI: run a training recipe (one JSON file of stages) in order, resumable after any interruption.

    python -m training.recipe training/recipes/shixin.json --out runs/recipe
    python -m training.recipe training/recipes/shixin.json --out runs/recipe --dry-run
    python -m training.recipe training/recipes/shixin.json --out runs/recipe --until phase6

A recipe names the data (``data.style``, a style file; the site's is
``training/styles/site.json``), the file the final model is copied to under ``--out``
(``model``) and its ``stages``, run in order by the existing tools, in this process:

- ``train``: ``training.train`` in the run folder ``<out>/<run>`` with ``preset`` and ``args``
  (train.py's options by their long names, ``train_size`` for ``--train-size``; ``true`` for a
  switch; numbers pass as written, so ``1e-4`` stays ``--lr 1e-4``). Without ``from`` it
  continues its run folder in place; ``"from": STAGE`` first starts a new run folder from that
  stage's result: a train or transplant stage's checkpoints are copied (``last.keras``,
  ``best.keras``, ``state.json``, ``history.json``), an average's model becomes ``last.keras`` at
  its inputs' epoch with no best yet (``best`` -1, as training.transplant leaves its run).
  ``stopped_after_epoch`` replays a step that ended before its ``--epochs`` (by hand, or on
  its time budget): the command gets ``--epochs N`` appended, and every ``--time-budget`` is
  overridden with ``--time-budget 0``, so a replay ends at the recorded epoch on any machine. A
  step recorded as stopping before its first epoch is listed and not run.
- ``average``: ``training.average`` over ``checkpoint`` (``last.keras`` or ``best.keras``) of
  each of ``runs``; it writes ``<out>/<name>.keras``.
- ``transplant``: ``training.transplant`` of ``from``'s model (an average's file, or a run's
  ``last.keras``) onto ``preset``, into ``<out>/<run>``.

``note`` (any stage) says what the step was. ``log`` (top level) documents how the stages map
to a training log (``file``; ``presets``: the preset names the log used -> today's;
``paths``: a path in the log -> the stage whose model it was then); the runner does not read it.

Resuming: ``<out>/recipe-state.json`` records each stage as running (with the epoch its run
stood at when it began) or done. Rerunning the command skips done stages; a train stage
interrupted after some of its epochs continues through ``training.train --resume`` without
``--reset-lr`` (weights, optimizer, schedule and epoch order come back, so it ends where an
uninterrupted run would), one interrupted before its first epoch starts again; an interrupted
average or transplant runs again from its start. Nothing here depends on the device: the
same command runs on CPU over several sittings or on a GPU where TensorFlow finds one.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import shlex
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from . import average, train, transplant
from .model import PRESETS
from .style import SITE_STYLE

KINDS = ("train", "average", "transplant")
TOOLS: dict[str, ModuleType] = {"train": train, "average": average, "transplant": transplant}
#: Keys each kind of stage must have, and those it may have besides.
REQUIRED = {
    "train": ("name", "kind", "run", "preset", "args"),
    "average": ("name", "kind", "runs", "checkpoint"),
    "transplant": ("name", "kind", "run", "preset", "from", "args"),
}
OPTIONAL = {
    "train": ("from", "stopped_after_epoch", "note"),
    "average": ("args", "note"),
    "transplant": ("note",),
}
TOP_LEVEL = {"data", "model", "stages", "about", "log"}
#: Set by the stage or the recipe, never in ``args``.
RESERVED_ARGS = {"out", "preset", "style", "checkpoints", "source"}
#: What a new run folder takes from a train or transplant stage's run.
RUN_FILES = ("last.keras", "best.keras", "state.json", "history.json", train.TRAINING_STATE_FILE)
CHECKPOINTS = ("last.keras", "best.keras")
STATE_FILE = "recipe-state.json"


class RecipeError(ValueError):
    """A recipe file that cannot be run: the message names the file, the stage and the problem."""


@dataclass(frozen=True)
class Stage:
    name: str
    kind: str
    run: str = ""
    preset: str = ""
    parent: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    stopped_after_epoch: int | None = None
    runs: tuple[str, ...] = ()
    checkpoint: str = ""
    note: str = ""


@dataclass(frozen=True)
class Recipe:
    path: Path
    style: Path
    model: str
    stages: tuple[Stage, ...]
    #: Train stages: (the epoch the run stands at when the stage begins, the epoch it ends at).
    epochs: dict[str, tuple[int, int]]

    def stage(self, name: str) -> Stage:
        return next(stage for stage in self.stages if stage.name == name)


def flags(args: dict[str, Any]) -> list[str]:
    """``{"train_size": 100000, "augment": true}`` -> ``--train-size 100000 --augment``."""
    out: list[str] = []
    for key, value in args.items():
        flag = "--" + key.replace("_", "-")
        if value is True:
            out.append(flag)
        elif isinstance(value, list):
            out += [flag, *map(str, value)]
        else:
            out += [flag, str(value)]
    return out


def style_flags(recipe: Recipe) -> list[str]:
    """``--style FILE`` unless the recipe's data is the site's style, train.py's default."""
    return [] if recipe.style.resolve() == SITE_STYLE.resolve() else ["--style", str(recipe.style)]


def model_path(recipe: Recipe, stage: Stage, out: Path) -> Path:
    """The model a stage leaves: an average's file, a train run's best, a transplant's last."""
    if stage.kind == "average":
        return out / f"{stage.name}.keras"
    return out / stage.run / ("best.keras" if stage.kind == "train" else "last.keras")


def command(recipe: Recipe, stage: Stage, out: Path) -> list[str]:
    """The arguments the stage's tool is called with (the replay overrides included)."""
    if stage.kind == "average":
        inputs = [str(out / run / stage.checkpoint) for run in stage.runs]
        return [*inputs, "--out", str(model_path(recipe, stage, out)), *flags(stage.args)]
    head = ["--preset", stage.preset, "--out", str(out / stage.run), *flags(stage.args)]
    if stage.kind == "transplant":
        return [str(model_path(recipe, recipe.stage(stage.parent), out)), *head]
    argv = [*head, *style_flags(recipe)]
    if stage.stopped_after_epoch is not None and stage.stopped_after_epoch != _parsed(stage).epochs:
        argv += ["--epochs", str(stage.stopped_after_epoch)]
    if "time_budget" in stage.args:
        argv += ["--time-budget", "0"]
    return argv


def shell_line(stage: Stage, argv: list[str]) -> str:
    return shlex.join(["python", "-m", f"training.{stage.kind}", *argv])


def _parsed(stage: Stage) -> argparse.Namespace:
    placeholder = ["--preset", stage.preset, "--out", "out"] if stage.kind == "train" else []
    return train.parse_args([*placeholder, *flags(stage.args)])


def _check_args(path: Path, stage: Stage) -> argparse.Namespace:
    """The stage's arguments as its tool's own parser reads them; its complaint, as a RecipeError."""
    if stage.kind == "average":
        argv = ["in.keras", "--out", "out.keras", *flags(stage.args)]
    else:
        argv = ([] if stage.kind == "train" else ["in.keras"]) + ["--preset", stage.preset, "--out", "out"]
        argv += flags(stage.args)
    parse: Callable[[list[str]], argparse.Namespace] = TOOLS[stage.kind].parse_args
    errors = io.StringIO()
    try:
        with contextlib.redirect_stderr(errors):
            return parse(argv)
    except SystemExit:
        problem = errors.getvalue().strip().splitlines()[-1] if errors.getvalue().strip() else "bad args"
        raise RecipeError(f"{path}: stage {stage.name!r}: args: {problem}") from None


def _stage(path: Path, index: int, raw: Any, earlier: dict[str, Stage]) -> Stage:
    where = f"{path}: stage {index + 1}"
    if not isinstance(raw, dict):
        raise RecipeError(f"{where}: a stage is a JSON object, not {type(raw).__name__}")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise RecipeError(f"{where}: unknown stage kind {kind!r} (known: {', '.join(KINDS)})")
    name = raw.get("name")
    where = f"{path}: stage {name!r}" if isinstance(name, str) else where
    missing = [key for key in REQUIRED[kind] if key not in raw]
    if missing:
        raise RecipeError(f"{where}: missing key {', '.join(map(repr, missing))} for a {kind} stage")
    unknown = sorted(set(raw) - set(REQUIRED[kind]) - set(OPTIONAL[kind]))
    if unknown:
        raise RecipeError(f"{where}: unknown key {', '.join(map(repr, unknown))} for a {kind} stage")
    if not isinstance(name, str) or not name or name in earlier:
        raise RecipeError(f"{where}: 'name' must be a new non-empty string")
    args = raw.get("args", {})
    if not isinstance(args, dict):
        raise RecipeError(f"{where}: 'args' must be an object of option -> value")
    reserved = sorted(RESERVED_ARGS & set(args))
    if reserved:
        raise RecipeError(f"{where}: {', '.join(reserved)} belong to the stage or the recipe, not to 'args'")
    if any(value is False or value is None for value in args.values()):
        raise RecipeError(f"{where}: leave a switch out instead of setting it false or null")
    preset = raw.get("preset", "")
    if kind != "average" and preset not in PRESETS:
        raise RecipeError(f"{where}: unknown preset {preset!r} (known: {', '.join(sorted(PRESETS))})")
    parent = raw.get("from", "")
    if parent and parent not in earlier:
        raise RecipeError(f"{where}: 'from' names {parent!r}, which is not an earlier stage")
    runs = raw.get("runs", [])
    trained = {stage.run for stage in earlier.values() if stage.kind == "train"}
    if kind == "average" and (not isinstance(runs, list) or len(runs) < 1 or set(runs) - trained):
        raise RecipeError(f"{where}: 'runs' must list runs of earlier train stages (have: {sorted(trained)})")
    checkpoint = raw.get("checkpoint", "")
    if kind == "average" and checkpoint not in CHECKPOINTS:
        raise RecipeError(f"{where}: 'checkpoint' must be one of {', '.join(CHECKPOINTS)}")
    stopped = raw.get("stopped_after_epoch")
    if stopped is not None and (not isinstance(stopped, int) or stopped < 0):
        raise RecipeError(f"{where}: 'stopped_after_epoch' must be a whole number of epochs")
    stage = Stage(
        name=name, kind=kind, run=str(raw.get("run", "")), preset=preset, parent=parent, args=args,
        stopped_after_epoch=stopped, runs=tuple(runs), checkpoint=checkpoint, note=str(raw.get("note", "")),
    )  # fmt: skip
    if kind != "average" and (not stage.run or Path(stage.run).name != stage.run):
        raise RecipeError(f"{where}: 'run' must be a folder name")
    _check_args(path, stage)
    return stage


def _plan(path: Path, stages: tuple[Stage, ...]) -> dict[str, tuple[int, int]]:
    """Each train stage's (start, end) epoch, walking the stages as the runner will."""
    run_epoch: dict[str, int] = {}
    ends: dict[str, int] = {}
    plan: dict[str, tuple[int, int]] = {}
    by_name = {stage.name: stage for stage in stages}
    for stage in stages:
        where = f"{path}: stage {stage.name!r}"
        if stage.kind == "average":
            epochs = {run_epoch[run] for run in stage.runs}
            if len(epochs) != 1:
                raise RecipeError(f"{where}: its runs end at different epochs ({sorted(epochs)})")
            ends[stage.name] = epochs.pop()
            continue
        if stage.kind == "transplant":
            run_epoch[stage.run] = ends[stage.name] = 0
            continue
        if stage.parent:
            if stage.run in run_epoch:
                raise RecipeError(
                    f"{where}: run {stage.run!r} already exists; a branch ('from') starts a new run"
                )
            parent = by_name[stage.parent]
            run_epoch[stage.run] = ends[parent.name] if parent.kind == "average" else run_epoch[parent.run]
        start = run_epoch.get(stage.run, 0)
        args = _parsed(stage)
        end = args.epochs if stage.stopped_after_epoch is None else stage.stopped_after_epoch
        if end > args.epochs or end < start:
            raise RecipeError(f"{where}: ends at epoch {end}, outside {start}..{args.epochs}")
        if start and not args.resume:
            raise RecipeError(
                f"{where}: run {stage.run!r} stands at epoch {start}; without resume it starts over"
            )
        plan[stage.name] = (start, end)
        run_epoch[stage.run] = ends[stage.name] = end
    return plan


def load(path: str | Path) -> Recipe:
    """Read and check a recipe: every stage's arguments go through its tool's own parser."""
    path = Path(path)
    try:
        # Floats keep their text: the commands show numbers as the recipe writes them.
        raw = json.loads(path.read_text(), parse_float=str)
    except OSError as exc:
        raise RecipeError(f"{path}: cannot read: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise RecipeError(f"{path}: not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise RecipeError(f"{path}: a recipe is a JSON object")
    missing = sorted({"data", "model", "stages"} - set(raw))
    if missing:
        raise RecipeError(f"{path}: missing key {', '.join(map(repr, missing))}")
    unknown = sorted(set(raw) - TOP_LEVEL)
    if unknown:
        raise RecipeError(f"{path}: unknown key {', '.join(map(repr, unknown))}")
    data = raw["data"]
    if not isinstance(data, dict) or not isinstance(data.get("style"), str):
        raise RecipeError(f"{path}: 'data' must be an object with 'style', a style file")
    style = Path(data["style"])
    if not style.is_file():
        raise RecipeError(f"{path}: data.style {style} is not a file")
    model = raw["model"]
    if not isinstance(model, str) or not model.endswith(".keras") or Path(model).name != model:
        raise RecipeError(f"{path}: 'model' must be a file name ending in .keras")
    if not isinstance(raw["stages"], list) or not raw["stages"]:
        raise RecipeError(f"{path}: 'stages' must be a non-empty list")
    stages: dict[str, Stage] = {}
    for index, item in enumerate(raw["stages"]):
        stage = _stage(path, index, item, stages)
        stages[stage.name] = stage
    if style.resolve() != SITE_STYLE.resolve() and any(s.kind != "train" for s in stages.values()):
        raise RecipeError(f"{path}: average and transplant stages draw the site's captchas only, not {style}")
    ordered = tuple(stages.values())
    return Recipe(path=path, style=style, model=model, stages=ordered, epochs=_plan(path, ordered))


def dry_run(recipe: Recipe, out: Path, until: str | None = None) -> list[str]:
    """The stages as comment lines and the commands they run, in order."""
    lines = [f"# recipe {recipe.path}: {len(recipe.stages)} stages into {out}"]
    for stage in _stages(recipe, until):
        what = f"# {stage.name}: {stage.kind}"
        if stage.kind != "average":
            what += f" into {out / stage.run}"
        if stage.parent:
            what += f", from {stage.parent}"
        lines.append(what + (f" ({stage.note})" if stage.note else ""))
        line = shell_line(stage, command(recipe, stage, out))
        start, end = recipe.epochs.get(stage.name, (0, 1))
        lines.append(line if end > start else f"# not run, it stopped before its first epoch: {line}")
    if until is None:
        final = model_path(recipe, recipe.stages[-1], out)
        lines.append(f"# then {final} is copied to {out / recipe.model}")
    return lines


def _stages(recipe: Recipe, until: str | None) -> tuple[Stage, ...]:
    if until is None:
        return recipe.stages
    names = [stage.name for stage in recipe.stages]
    if until not in names:
        raise RecipeError(f"{recipe.path}: --until {until!r} is not a stage (stages: {', '.join(names)})")
    return recipe.stages[: names.index(until) + 1]


def run_epoch(run: Path) -> int:
    """The epoch a run folder stands at (train.py's state.json), 0 for a new one."""
    state = run / "state.json"
    return int(json.loads(state.read_text())["epoch"]) if state.exists() else 0


def _branch(recipe: Recipe, stage: Stage, out: Path) -> None:
    """Start ``<out>/<run>`` from the stage's parent, for train.py --resume --reset-lr."""
    parent = recipe.stage(stage.parent)
    target = out / stage.run
    target.mkdir(parents=True, exist_ok=True)
    if parent.kind != "average":
        for name in RUN_FILES:
            if (out / parent.run / name).exists():
                shutil.copyfile(out / parent.run / name, target / name)
        return
    state = json.loads((out / parent.runs[0] / "state.json").read_text())
    shutil.copyfile(model_path(recipe, parent, out), target / "last.keras")
    (target / "state.json").write_text(json.dumps({**state, "best": -1.0, "stale": 0}))
    (target / "history.json").write_text("[]")
    (target / train.TRAINING_STATE_FILE).unlink(missing_ok=True)


def _call(tool: ModuleType, argv: list[str]) -> int:
    """``tool.main(argv)`` as ``python -m`` would run it: its own argv in its log, its log handlers
    removed afterwards (train.start_run adds two per call), Keras' global state cleared."""
    import keras

    logger = logging.getLogger("training")
    handlers = list(logger.handlers)
    saved = sys.argv
    sys.argv = [str(tool.__file__), *argv]
    try:
        return int(tool.main(argv))
    finally:
        sys.argv = saved
        for handler in [h for h in logger.handlers if h not in handlers]:
            logger.removeHandler(handler)
            handler.close()
        keras.backend.clear_session()


class _State:
    """``<out>/recipe-state.json``: each stage's status, written after every change."""

    def __init__(self, recipe: Recipe, out: Path) -> None:
        self.path = out / STATE_FILE
        self.stages: dict[str, dict[str, Any]] = {}
        if self.path.exists():
            self.stages = json.loads(self.path.read_text())["stages"]
        strangers = sorted(set(self.stages) - {stage.name for stage in recipe.stages})
        if strangers:
            raise RecipeError(f"{recipe.path}: {self.path} records stages it lacks ({', '.join(strangers)})")
        self.recipe = str(recipe.path)

    def set(self, name: str, **values: Any) -> None:
        self.stages[name] = {**self.stages.get(name, {}), **values}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"recipe": self.recipe, "stages": self.stages}, indent=1))


def _run_train(recipe: Recipe, stage: Stage, out: Path, state: _State, say: Callable[[str], None]) -> None:
    run = out / stage.run
    if "start_epoch" not in state.stages.get(stage.name, {}):
        if stage.parent:
            _branch(recipe, stage, out)
        state.set(stage.name, status="running", start_epoch=run_epoch(run))
    start = int(state.stages[stage.name]["start_epoch"])
    end = recipe.epochs[stage.name][1]
    argv = command(recipe, stage, out)
    if end <= start:
        say(f"{stage.name}: not run, it stopped before its first epoch")
        return
    if run_epoch(run) > start:
        # Interrupted after some of its epochs: continue that run exactly, not a new phase.
        argv = [arg for arg in argv if arg != "--reset-lr"] + ([] if "--resume" in argv else ["--resume"])
    say(shell_line(stage, argv))
    if _call(train, argv):
        raise RecipeError(f"{recipe.path}: stage {stage.name!r}: training.train failed")


def run(
    recipe: Recipe, out: Path, until: str | None = None, say: Callable[[str], None] = print
) -> Path | None:
    """Run every stage not yet done (up to ``until``); the final model's path once all are done."""
    state = _State(recipe, out)
    for stage in _stages(recipe, until):
        if state.stages.get(stage.name, {}).get("status") == "done":
            say(f"{stage.name}: done already")
            continue
        if stage.kind == "train":
            _run_train(recipe, stage, out, state, say)
        else:
            state.set(stage.name, status="running")
            argv = command(recipe, stage, out)
            say(shell_line(stage, argv))
            if _call(TOOLS[stage.kind], argv):
                raise RecipeError(f"{recipe.path}: stage {stage.name!r}: training.{stage.kind} failed")
        state.set(stage.name, status="done")
    if until is not None and until != recipe.stages[-1].name:
        return None
    final = out / recipe.model
    shutil.copyfile(model_path(recipe, recipe.stages[-1], out), final)
    say(f"model: {final}")
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.recipe", description=__doc__.splitlines()[0])
    parser.add_argument("recipe", type=Path, help="recipe file, e.g. training/recipes/shixin.json")
    parser.add_argument("--out", type=Path, required=True, help="folder of the runs and recipe-state.json")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--until", metavar="STAGE", help="stop after this stage")
    args = parser.parse_args(argv)
    try:
        recipe = load(args.recipe)
        if args.dry_run:
            print("\n".join(dry_run(recipe, args.out, args.until)))
        else:
            run(recipe, args.out, args.until)
    except RecipeError as exc:
        print(f"training.recipe: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
