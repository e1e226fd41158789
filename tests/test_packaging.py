"""What ``pip install shixin-client`` gets: the wheel and sdist built as a release would be.

Both are built by ``python -m build`` (the sdist first, the wheel from it, so a file missing
from the sdist fails here too) from a copy of the checkout's files that git tracks or would
track: stale build artefacts in a working tree never reach a release. Installing the wheel
must add ``shixin_client`` alone to site-packages (no ``export``, ``training`` or ``tests``
that could shadow a user's own modules), with the embedded model, ``py.typed`` and the
``shixin`` command, and ask only for what the SDK itself needs.
"""

from __future__ import annotations

import configparser
import email.message
import email.parser
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

import pytest

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PACKAGE = "shixin_client"
#: Extras-only dependencies that must never be pulled by the base install.
HEAVY = {"tensorflow", "tensorflow-serving-api", "numpy", "grpcio", "ai-edge-litert", "aiohttp", "httpx"}


def _release_sources(dest: Path) -> Path:
    """Copy what git tracks or would track (ignored files left out) to ``dest``."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = REPO / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    return dest


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    sources = _release_sources(tmp_path_factory.mktemp("src"))
    out = tmp_path_factory.mktemp("dist")
    built = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(sources)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def _name(requirement: str) -> str:
    """The project name a requirement line starts with, lowercase."""
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower()


def _wheel_names(wheel: Path) -> list[str]:
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return email.parser.Parser().parsestr(archive.read(name).decode())


def test_the_wheel_installs_shixin_client_alone_at_the_top_level(dists: dict[str, Path]) -> None:
    tops = {PurePosixPath(name).parts[0] for name in _wheel_names(dists["wheel"])}
    assert {t for t in tops if not t.endswith(".dist-info")} == {PACKAGE}
    with zipfile.ZipFile(dists["wheel"]) as archive:
        (top_level,) = [n for n in archive.namelist() if n.endswith("top_level.txt")]
        assert archive.read(top_level).decode().split() == [PACKAGE]


def test_the_wheel_carries_the_embedded_model_the_server_and_py_typed(dists: dict[str, Path]) -> None:
    names = set(_wheel_names(dists["wheel"]))
    assets = sorted(p.relative_to(REPO).as_posix() for p in (REPO / PACKAGE / "_assets").iterdir())
    assert any(a.endswith(".tflite") for a in assets) and f"{PACKAGE}/_assets/spec.json" in assets
    assert set(assets) <= names
    assert {f"{PACKAGE}/py.typed", f"{PACKAGE}/server/__init__.py", f"{PACKAGE}/cli.py"} <= names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]


def test_the_base_install_asks_only_for_what_the_sdk_needs(dists: dict[str, Path]) -> None:
    metadata = _metadata(dists["wheel"])
    base = [r for r in metadata.get_all("Requires-Dist", []) if "extra ==" not in r]
    names = {_name(r) for r in base}
    setup = configparser.ConfigParser()
    setup.read(REPO / "setup.cfg")
    declared = setup["options"]["install_requires"].split()
    assert names == {_name(r) for r in declared}
    assert not names & HEAVY


def test_the_shixin_command_is_installed(dists: dict[str, Path]) -> None:
    with zipfile.ZipFile(dists["wheel"]) as archive:
        (points,) = [n for n in archive.namelist() if n.endswith(".dist-info/entry_points.txt")]
        entry_points = configparser.ConfigParser()
        entry_points.read_string(archive.read(points).decode())
    assert entry_points["console_scripts"]["shixin"] == f"{PACKAGE}.cli:main"


def test_the_sdist_holds_the_package_and_its_metadata_only(dists: dict[str, Path]) -> None:
    with tarfile.open(dists["sdist"]) as archive:
        names = archive.getnames()
    root = PurePosixPath(names[0]).parts[0]
    tops = {PurePosixPath(n).parts[1] for n in names if len(PurePosixPath(n).parts) > 1}
    metadata_files = {"PKG-INFO", "README.md", "LICENSE", "MANIFEST.in", "pyproject.toml", "setup.cfg"}
    assert tops <= metadata_files | {PACKAGE, f"{PACKAGE}.egg-info"}
    assert {f"{root}/LICENSE", f"{root}/{PACKAGE}/py.typed", f"{root}/{PACKAGE}/_assets/spec.json"} <= set(
        names
    )


def test_the_metadata_renders_on_the_package_index(dists: dict[str, Path]) -> None:
    checked = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dists["wheel"]), str(dists["sdist"])],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
