"""Version directories under ``<base>/<name>/``, published so TF Serving never sees half a model.

TF Serving polls the base path (``--file_system_poll_wait_seconds``, default 1 s) and
loads any directory whose name is an integer. A version is therefore written aside in a
dot-prefixed directory in the same parent (same filesystem, and TF Serving ignores
names that are not integers) and appears with one ``os.rename``. Old versions leave the
same way in reverse: renamed aside first, then deleted.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class VersionExistsError(FileExistsError):
    """The version directory is already there and ``force`` was not given."""


def list_versions(model_dir: Path) -> list[int]:
    """The published versions (integer-named directories), oldest first."""
    if not model_dir.is_dir():
        return []
    return sorted(int(entry.name) for entry in model_dir.iterdir() if entry.name.isdigit() and entry.is_dir())


def next_version(model_dir: Path) -> int:
    versions = list_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def _move_aside(path: Path) -> Path:
    aside = Path(tempfile.mkdtemp(prefix=f".removing-{path.name}-", dir=path.parent))
    os.rename(path, aside / path.name)
    return aside


@contextmanager
def staging_dir(model_dir: Path, version: int) -> Iterator[Path]:
    """A hidden empty directory beside the final one; removed if the block fails."""
    model_dir.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 mode would follow the rename and lock out a TF
    # Serving that runs as another user. mkdir gives the usual umask-based mode.
    staging = model_dir / f".writing-{version}-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, final: Path, *, force: bool = False) -> None:
    """Rename a fully written version into place; an existing one is replaced only with ``force``.

    With ``force`` the old directory is renamed aside first and deleted after the new one
    is in place, so the name points at a complete version at every moment except the
    instant between two renames.
    """
    aside = None
    if final.exists():
        if not force:
            raise VersionExistsError(f"{final} already exists; pass force=True (--force) to replace it")
        aside = _move_aside(final)
    try:
        os.rename(staging, final)
    except OSError as exc:
        raise VersionExistsError(f"cannot publish {final}: {exc.strerror or exc}") from exc
    finally:
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)


def prune(model_dir: Path, keep: int, *, protect: int | None = None) -> list[int]:
    """Delete all but the newest ``keep`` versions (never ``protect``); returns the removed ones."""
    if keep < 1:
        raise ValueError(f"keep must be at least 1, got {keep}")
    removed = [v for v in list_versions(model_dir)[:-keep] if v != protect]
    for version in removed:
        shutil.rmtree(_move_aside(model_dir / str(version)), ignore_errors=True)
    return removed


def write_version(
    model_dir: Path,
    writer: Callable[[Path], None],
    *,
    version: int | None = None,
    force: bool = False,
) -> Path:
    """Run ``writer(directory)`` on a staging directory, then publish it as ``model_dir/<version>``."""
    if version is None:
        version = next_version(model_dir)
    if version < 1:
        raise ValueError(f"version must be a positive integer, got {version}")
    final = model_dir / str(version)
    if final.exists() and not force:
        raise VersionExistsError(f"{final} already exists; pass force=True (--force) to replace it")
    with staging_dir(model_dir, version) as staging:
        writer(staging)
        publish(staging, final, force=force)
    return final
