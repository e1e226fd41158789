"""Version numbering, refusal to overwrite, pruning, and that no half-written version is ever visible."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from export import saved_model
from export.versions import VersionExistsError, list_versions, next_version, prune, write_version

MARKER = "saved_model.pb"


def _untraced(model: Any, spec: Any) -> tuple[Any, dict[str, Any]]:
    """Stands in for serving_module where only the directory handling is under test."""
    return SimpleNamespace(model=model), {}


@pytest.fixture
def untraced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(saved_model, "serving_module", _untraced)


def _slow_writer(files: int = 20, delay: float = 0.002) -> Any:
    """Writes files one by one and the marker last, like tf.saved_model.save plus warm-up."""

    def write(directory: Path) -> None:
        for index in range(files):
            (directory / f"part-{index}").write_bytes(b"x" * 1000)
            time.sleep(delay)
        (directory / MARKER).write_bytes(b"done")

    return write


def test_versions_count_up_from_one_and_ignore_other_entries(tmp_path: Path) -> None:
    model_dir = tmp_path / "shixin"
    assert list_versions(model_dir) == [] and next_version(model_dir) == 1
    assert write_version(model_dir, _slow_writer(1)) == model_dir / "1"
    assert write_version(model_dir, _slow_writer(1)) == model_dir / "2"
    assert write_version(model_dir, _slow_writer(1), version=10) == model_dir / "10"
    (model_dir / ".writing-11-abc").mkdir()
    (model_dir / "notes").mkdir()
    (model_dir / "12").write_text("a file, not a version")
    assert list_versions(model_dir) == [1, 2, 10]
    assert write_version(model_dir, _slow_writer(1)) == model_dir / "11"


def test_existing_version_is_refused_without_force_and_replaced_with_it(tmp_path: Path) -> None:
    model_dir = tmp_path / "shixin"
    write_version(model_dir, lambda d: (d / "old").write_text("1"), version=3)
    written: list[Path] = []
    with pytest.raises(VersionExistsError, match=r"shixin/3 already exists; pass force=True \(--force\)"):
        write_version(model_dir, written.append, version=3)
    assert written == [], "the writer must not even start"
    assert sorted(p.name for p in (model_dir / "3").iterdir()) == ["old"]
    write_version(model_dir, lambda d: (d / "new").write_text("2"), version=3, force=True)
    assert sorted(p.name for p in (model_dir / "3").iterdir()) == ["new"]
    assert sorted(p.name for p in model_dir.iterdir()) == ["3"], "no staging or old copies left behind"


@pytest.mark.parametrize("version", [0, -2])
def test_version_must_be_positive(tmp_path: Path, version: int) -> None:
    with pytest.raises(ValueError, match="positive integer"):
        write_version(tmp_path / "m", _slow_writer(1), version=version)


def test_keep_prunes_the_oldest_versions(tmp_path: Path) -> None:
    model_dir = tmp_path / "shixin"
    for version in (1, 2, 5, 7):
        write_version(model_dir, _slow_writer(1), version=version)
    assert prune(model_dir, 2) == [1, 2]
    assert list_versions(model_dir) == [5, 7]
    assert sorted(p.name for p in model_dir.iterdir()) == ["5", "7"]
    with pytest.raises(ValueError, match="at least 1"):
        prune(model_dir, 0)


def test_keep_never_removes_the_version_just_written(tmp_path: Path) -> None:
    model_dir = tmp_path / "shixin"
    for version in (4, 9):
        write_version(model_dir, _slow_writer(1), version=version)
    assert prune(model_dir, 1, protect=4) == []
    assert list_versions(model_dir) == [4, 9]


def test_a_failing_writer_leaves_nothing_behind(tmp_path: Path) -> None:
    model_dir = tmp_path / "shixin"

    def half_then_crash(directory: Path) -> None:
        (directory / "variables").mkdir()
        (directory / "variables" / "variables.index").write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_version(model_dir, half_then_crash)
    assert list(model_dir.iterdir()) == []


def _still_published(entry: Path, fd: int) -> bool:
    """Whether the directory held open is still the one under its version name."""
    try:
        return os.stat(entry).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def test_a_watcher_never_sees_an_incomplete_version(tmp_path: Path) -> None:
    """What TF Serving's poller sees: every integer-named directory is already complete."""
    model_dir = tmp_path / "shixin"
    model_dir.mkdir()
    seen: set[str] = set()
    incomplete: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            for entry in model_dir.iterdir():
                if not entry.name.isdigit():
                    continue
                try:  # hold the directory itself: it may be renamed aside while we look
                    fd = os.open(entry, os.O_RDONLY | os.O_DIRECTORY)
                except FileNotFoundError:
                    continue
                try:
                    seen.add(entry.name)
                    os.stat(MARKER, dir_fd=fd)
                except FileNotFoundError:
                    if _still_published(entry, fd):  # not a replaced version being deleted
                        incomplete.append(entry.name)
                finally:
                    os.close(fd)

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        for _ in range(3):
            write_version(model_dir, _slow_writer())
        write_version(model_dir, _slow_writer(), version=2, force=True)
        prune(model_dir, 1)
    finally:
        stop.set()
        watcher.join()
    assert seen == {"1", "2", "3"}
    assert incomplete == []
    assert list_versions(model_dir) == [3]


def test_export_model_failing_midway_publishes_nothing(
    tiny_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, untraced: None
) -> None:
    def crash_after_saving(directory: Path, *args: Any, **kwargs: Any) -> None:
        (directory / MARKER).write_bytes(b"graph without its warm-up")
        raise RuntimeError("interrupted while writing warm-up requests")

    monkeypatch.setattr(saved_model, "write_warmup", crash_after_saving)
    monkeypatch.setattr(saved_model.tf.saved_model, "save", lambda *a, **k: None)
    with pytest.raises(RuntimeError, match="interrupted"):
        saved_model.export_model(tiny_model, tmp_path, "shixin", warmup_samples=[b"unused"])
    assert list((tmp_path / "shixin").iterdir()) == []


def test_export_model_checks_its_arguments(tiny_model: Any, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="plain directory name"):
        saved_model.export_model(tiny_model, tmp_path, "../escape")
    with pytest.raises(ValueError, match="keep must be at least 1"):
        saved_model.export_model(tiny_model, tmp_path, "shixin", keep=0)
    assert not (tmp_path / "shixin").exists()


def test_a_version_directory_gets_the_usual_permissions(tmp_path: Path) -> None:
    """Readable by a TF Serving running as another user, like any directory made here."""
    final = write_version(tmp_path / "shixin", _slow_writer(1))
    usual = tmp_path / "usual"
    usual.mkdir()
    assert final.stat().st_mode == usual.stat().st_mode


def test_export_model_numbers_replaces_and_prunes(
    tiny_model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, untraced: None
) -> None:
    """export_model's own wiring of version, force and keep (tracing and saving stubbed out)."""
    saves: list[str] = []

    def fake_save(module: Any, directory: str, signatures: dict[str, Any]) -> None:
        assert module.model is tiny_model
        saves.append(directory)
        (Path(directory) / MARKER).write_bytes(b"ok")

    monkeypatch.setattr(saved_model.tf.saved_model, "save", fake_save)
    monkeypatch.setattr(saved_model, "write_warmup", lambda *args, **kwargs: None)
    export = saved_model.export_model
    assert export(tiny_model, tmp_path, "shixin", warmup_samples=[b"x"]).name == "1"
    assert export(tiny_model, tmp_path, "shixin", warmup_samples=[b"x"]).name == "2"
    with pytest.raises(VersionExistsError):
        export(tiny_model, tmp_path, "shixin", version=2, warmup_samples=[b"x"])
    assert export(tiny_model, tmp_path, "shixin", version=2, force=True, warmup_samples=[b"x"]).name == "2"
    assert export(tiny_model, tmp_path, "shixin", keep=2, warmup_samples=[b"x"]).name == "3"
    assert list_versions(tmp_path / "shixin") == [2, 3]
    assert len(saves) == 4 and all(Path(d).parent == tmp_path / "shixin" for d in saves)
    assert all(Path(d).name.startswith(".writing-") for d in saves)
