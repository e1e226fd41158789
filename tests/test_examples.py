"""Every script in examples/ runs, as a user would run it: on the embedded model or the local server.

Each example runs in its own interpreter: ``recognize_local.py`` on the embedded model, the
others against shixin_client.server serving the committed model (``models/shixin``), which
reads every example captcha right and over the default min_confidence.
Its output must be one ``file<TAB>text`` line per captcha, in file order, with the texts
the SDK itself reads from the same model; a broken file among good ones costs only its
own line; the web app must answer uploads with that text as JSON and shut down cleanly
on Ctrl+C.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from shixin_client import IMAGE_SUFFIXES, ShixinClient

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CAPTCHAS = EXAMPLES / "captchas"
CAPTCHA_FILES = sorted(p for p in CAPTCHAS.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
#: The example that needs no server.
LOCAL_EXAMPLE = "recognize_local.py"
#: (script, transport): the examples that print one line per captcha from a server.
CONSOLE_EXAMPLES = [
    ("rest_requests.py", "rest"),
    ("recognize_rest.py", "rest"),
    ("recognize_grpc.py", "grpc"),
    ("async_batch.py", "rest"),
    ("async_batch.py", "grpc"),
]
WEB_APP = "web_app.py"
#: Seconds one example may take; they finish in about one.
RUN_TIMEOUT_S = 60


@dataclass(frozen=True)
class Served:
    rest_url: str
    grpc_url: str
    texts: list[str]  # what the SDK reads from each captcha file (serving_bytes)
    float_texts: list[str]  # the same through the float signature, as the reference flow sends

    def url(self, transport: str) -> str:
        return self.grpc_url if transport == "grpc" else self.rest_url


@pytest.fixture(scope="module")
def served() -> Iterator[Served]:
    pytest.importorskip("tensorflow")
    from shixin_client.server.testing import running_server

    # Every captcha has its own label, so a line printed against the wrong file shows.
    with running_server(EXAMPLES.parent / "models" / "shixin", "shixin") as server:
        with ShixinClient(server.rest_url) as client:
            texts = client.recognize_many(CAPTCHA_FILES)
            float_texts = client.recognize_many(CAPTCHA_FILES, payload="tensor")
        assert len(set(texts)) > 1, f"the test model reads every captcha alike ({texts}); pick another seed"
        yield Served(server.rest_url, f"grpc://{server.grpc_target}", texts, float_texts)


def run_example(
    script: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        env=env,
    )


def lines(files: list[Path], texts: list[str]) -> list[str]:
    return [f"{path.name}\t{text}" for path, text in zip(files, texts, strict=True)]


@pytest.mark.parametrize(("script", "transport"), CONSOLE_EXAMPLES)
def test_console_example_prints_one_line_per_captcha(served: Served, script: str, transport: str) -> None:
    result = run_example(script, "--server", served.url(transport))
    assert result.returncode == 0, result.stderr
    texts = served.float_texts if script == "rest_requests.py" else served.texts
    assert result.stdout.splitlines() == lines(CAPTCHA_FILES, texts)


@pytest.fixture
def refused_port() -> Iterator[int]:
    """A loopback port that is bound but not listening, so every connection is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@pytest.mark.parametrize(("script", "transport"), dict(CONSOLE_EXAMPLES).items())
def test_console_example_reports_an_unreachable_server_in_one_line(
    refused_port: int, script: str, transport: str
) -> None:
    scheme = "grpc" if transport == "grpc" else "http"
    result = run_example(script, "--server", f"{scheme}://127.0.0.1:{refused_port}")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]  # after any lines the gRPC runtime logs itself
    assert last.startswith("error: ") and f"127.0.0.1:{refused_port}" in last


def test_server_url_comes_from_the_environment(served: Served) -> None:
    env = {**os.environ, "SHIXIN_SERVER": served.rest_url}
    result = run_example("recognize_rest.py", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == lines(CAPTCHA_FILES, served.texts)


def _folder_with_a_broken_file(folder: Path) -> Path:
    """Two captchas, a broken image sorted between them, and a text file that is not picked up."""
    for path in CAPTCHA_FILES[:2]:
        (folder / path.name).write_bytes(path.read_bytes())
    (folder / f"{CAPTCHA_FILES[0].stem}_broken.png").write_bytes(b"not a png")
    (folder / "notes.txt").write_text("not an image, and not picked up\n")
    return folder


def _only_the_broken_file_is_lost(result: subprocess.CompletedProcess[str], texts: list[str]) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == lines(CAPTCHA_FILES[:2], texts[:2])
    failures = [line for line in result.stderr.splitlines() if "_broken.png" in line]
    assert len(failures) == 1 and "not a recognised image" in failures[0]
    assert "notes.txt" not in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize(("script", "transport"), CONSOLE_EXAMPLES)
def test_a_broken_file_in_a_folder_costs_only_its_own_line(
    served: Served, tmp_path: Path, script: str, transport: str
) -> None:
    result = run_example(script, "--server", served.url(transport), str(_folder_with_a_broken_file(tmp_path)))
    _only_the_broken_file_is_lost(
        result, served.float_texts if script == "rest_requests.py" else served.texts
    )


@pytest.fixture(scope="module")
def local_texts() -> list[str]:
    """What the embedded model reads from each captcha file."""
    pytest.importorskip("ai_edge_litert")
    with ShixinClient.local() as client:
        return client.recognize_many(CAPTCHA_FILES)


def test_local_example_needs_no_server(local_texts: list[str], tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if key != "SHIXIN_SERVER"}
    result = run_example(LOCAL_EXAMPLE, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == lines(CAPTCHA_FILES, local_texts)
    _only_the_broken_file_is_lost(
        run_example(LOCAL_EXAMPLE, str(_folder_with_a_broken_file(tmp_path)), env=env), local_texts
    )


@pytest.mark.parametrize(
    ("script", "args", "problem"),
    [
        ("recognize_grpc.py", ["--server", "http://127.0.0.1:1"], "must be a grpc:// or grpcs:// URL"),
        ("rest_requests.py", ["--server", "grpc://127.0.0.1:1"], "must be an http:// or https:// URL"),
        ("async_batch.py", ["--server", "http://127.0.0.1:1", "no/such/folder"], "is not a folder"),
        ("async_batch.py", ["--server", "http://127.0.0.1:1", "--concurrency", "0"], "at least 1"),
    ],
)
def test_usage_errors_are_named_before_anything_is_sent(script: str, args: list[str], problem: str) -> None:
    result = run_example(script, *args)
    assert result.returncode == 2
    assert problem in result.stderr


def _ignoring_sigint() -> None:
    """What a process started in the background by a non-interactive shell inherits."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_web_app_answers_uploads_with_json(served: Served, stop_signal: signal.Signals) -> None:
    """It stops on either signal even when started with SIGINT ignored (CI jobs, ``cmd &``)."""
    app = subprocess.Popen(
        [sys.executable, str(EXAMPLES / WEB_APP), "--server", served.rest_url, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignoring_sigint,
    )
    try:
        url = app.stdout.readline().strip()  # type: ignore[union-attr]
        assert url.startswith("http://127.0.0.1:"), f"the web app printed {url!r}, not its URL"
        image = CAPTCHA_FILES[0].read_bytes()
        expected = {"text": served.texts[0]}

        uploaded = requests.post(url, files={"image": ("captcha.png", image, "image/png")}, timeout=30)
        assert (uploaded.status_code, uploaded.json()) == (200, expected)
        raw = requests.post(url, data=image, headers={"Content-Type": "image/png"}, timeout=30)
        assert (raw.status_code, raw.json()) == (200, expected)
        other = requests.post(url, data=CAPTCHA_FILES[1].read_bytes(), timeout=30)
        assert other.json() == {"text": served.texts[1]}

        garbage = requests.post(url, data=b"not an image", timeout=30)
        assert garbage.status_code == 400 and "not a recognised image" in garbage.json()["error"]
        wrong_field = requests.post(url, files={"file": ("captcha.png", image, "image/png")}, timeout=30)
        assert wrong_field.status_code == 400 and "'image'" in wrong_field.json()["error"]
    finally:
        app.send_signal(stop_signal)  # the app closes its client and exits 0
        _, stderr = app.communicate(timeout=RUN_TIMEOUT_S)
        sys.stderr.write(stderr)  # pytest shows it when the test fails
    assert app.returncode == 0


def test_every_example_is_run_here_and_listed_in_the_readme() -> None:
    scripts = {p.name for p in EXAMPLES.glob("*.py")}
    assert scripts == {script for script, _ in CONSOLE_EXAMPLES} | {LOCAL_EXAMPLE, WEB_APP}
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"`{script}`" in readme for script in scripts)
