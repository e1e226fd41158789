"""The ``shixin`` command, called in-process through ``main([...])`` against a loopback TF Serving double.

One test runs the installed console script in a subprocess.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from shixin_client.cli import main


def _rest_double() -> types.ModuleType:
    """The TF Serving double of test_rest_transport.py (tests run with --import-mode=importlib)."""
    spec = importlib.util.spec_from_file_location(
        "_shixin_rest_double", Path(__file__).with_name("test_rest_transport.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_double = _rest_double()
FakeServing, IMAGES, TEXTS, dead_url = _double.FakeServing, _double.IMAGES, _double.TEXTS, _double.dead_url

SECRET = "Bearer cli-s3cret"


@pytest.fixture
def serving() -> Iterator[FakeServing]:
    server = FakeServing()
    yield server
    server.stop()


@pytest.fixture
def files(tmp_path: Path) -> list[Path]:
    paths = []
    for i, data in enumerate(IMAGES):
        path = tmp_path / "imgs" / f"{TEXTS[i]}_{i}.png"
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(data)
        paths.append(path)
    return paths


@pytest.fixture(autouse=True)
def no_env_server(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHIXIN_SERVER", raising=False)


def test_tsv_output_in_argument_order(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["recognize", str(files[2]), str(files[0]), "--server", serving.url]
    assert main(args) == 0
    out, err = capsys.readouterr()
    assert out == f"{files[2]}\t{TEXTS[2]}\n{files[0]}\t{TEXTS[0]}\n" and err == ""


def test_json_and_csv_formats(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recognize", *map(str, files), "--server", serving.url, "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert records == [{"path": str(p), "text": t} for p, t in zip(files, TEXTS, strict=True)]
    assert main(["recognize", *map(str, files), "--server", serving.url, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["path", "text"] and rows[1:] == [
        [str(p), t] for p, t in zip(files, TEXTS, strict=True)
    ]


def test_bad_files_fail_alone(
    serving: FakeServing, files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    missing = tmp_path / "missing.png"
    args = ["recognize", str(files[0]), str(broken), str(missing), str(files[1]), "--server", serving.url]
    assert main([*args, "--format", "json"]) == 1
    out, err = capsys.readouterr()
    records = json.loads(out)
    assert [r.get("text") for r in records] == [TEXTS[0], None, None, TEXTS[1]]
    assert records[2]["type"] == "InvalidInputError" and "no such file" in records[2]["error"]
    lines = err.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"shixin: {broken}: ") and lines[1] == f"shixin: {missing}: no such file"
    assert main(args) == 1
    assert capsys.readouterr().out == f"{files[0]}\t{TEXTS[0]}\n{files[1]}\t{TEXTS[1]}\n"


def test_folders_and_globs_expand_sorted(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = files[0].parent
    (folder / "notes.txt").write_text("not an image")
    assert main(["recognize", str(folder), "--server", serving.url]) == 0
    assert capsys.readouterr().out.splitlines() == [f"{p}\t{t}" for p, t in zip(files, TEXTS, strict=True)]
    assert main(["recognize", str(folder / "cd*.png"), str(folder / "zz*.png"), "--server", serving.url]) == 1
    out, err = capsys.readouterr()
    assert out == f"{files[1]}\t{TEXTS[1]}\n" and "no files match" in err


def test_many_files_in_batches(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Enough files for the progress bar (stderr only, and off when stderr is not a terminal)."""
    many = [str(files[i % 3]) for i in range(25)]
    assert main(["recognize", *many, "--server", serving.url, "--batch-size", "4"]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [f"{path}\t{TEXTS[i % 3]}" for i, path in enumerate(many)] and err == ""
    batches = [path for method, path, _ in serving.requests if method == "POST"]
    assert len(batches) == 1 + 7  # describe, then ceil(25 / 4) predict requests


class FakeStdin:
    def __init__(self, data: bytes) -> None:
        self.buffer = io.BytesIO(data)


def test_stdin_is_a_path_list_or_one_image(
    serving: FakeServing,
    files: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(sys, "stdin", FakeStdin(f"{files[1]}\n\n{files[2]}\n".encode()))
    assert main(["recognize", "-", "--server", serving.url]) == 0
    assert capsys.readouterr().out == f"{files[1]}\t{TEXTS[1]}\n{files[2]}\t{TEXTS[2]}\n"
    monkeypatch.setattr(sys, "stdin", FakeStdin(IMAGES[0]))
    assert main(["recognize", "-", "--server", serving.url]) == 0
    assert capsys.readouterr().out == f"-\t{TEXTS[0]}\n"


def test_options_reach_the_server_and_headers_are_never_printed(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    args = [
        "--server",
        serving.url,
        "--header",
        f"Authorization={SECRET}",
        "--model",
        "shixin",
        "--version",
        "2",
    ]
    assert main(["recognize", str(files[0]), *args, "--timeout", "5", "-v"]) == 0
    assert main(["recognize", str(files[0]), *args, "--signature", "nope"]) == 1
    assert (
        main(["status", "--server", serving.url, "--header", f"Authorization={SECRET}", "--model", "other"])
        == 2
    )
    out, err = capsys.readouterr()
    assert "cli-s3cret" not in out + err
    assert {headers.get("Authorization") for _, _, headers in serving.requests} == {SECRET}
    assert serving.requests[0][1] == "/v1/models/shixin/versions/2:predict"
    assert 'Serving signature name: "nope"' in err and "Could not find any versions of model other" in err


def test_bad_header_syntax_is_a_usage_error(serving: FakeServing, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--server", serving.url, "--header", "Authorization"]) == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_server_from_environment_and_json_status_metadata(
    serving: FakeServing, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SHIXIN_SERVER", serving.url)
    assert main(["status"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["name"] == "shixin" and [v["version"] for v in status["versions"]] == [1, 2]
    assert main(["metadata"]) == 0
    metadata = json.loads(capsys.readouterr().out)
    assert metadata["version"] == 2 and metadata["signatures"][0]["name"] == "serving_bytes"


def test_unreachable_server_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--server", dead_url(), "--timeout", "1"]) == 2
    assert capsys.readouterr().err.startswith("shixin: cannot reach")


def test_no_server_and_no_embedded_model_exits_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr("shixin_client._transports.local.DEFAULT_MODEL_PATH", tmp_path / "none.tflite")
    assert main(["recognize", str(files[0])]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no embedded model file" in err


def test_serve_forwards_argv_or_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    seen: list[list[str]] = []
    fake = types.ModuleType("shixin_client.server.cli")
    fake.main = lambda argv: seen.append(argv) or 0  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "shixin_client.server.cli", fake)
    assert main(["serve", "--port=0", "--model_name=shixin"]) == 0
    assert seen == [["--port=0", "--model_name=shixin"]]
    monkeypatch.setitem(sys.modules, "shixin_client.server.cli", None)
    assert main(["serve", "--port=0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "pip install 'shixin-client[server]'" in err


def test_installed_console_script(serving: FakeServing, files: list[Path]) -> None:
    script = shutil.which("shixin")
    assert script, "the shixin console script is not on PATH: run `pip install -e . --no-deps`"
    result = subprocess.run(
        [script, "recognize", str(files[0]), str(files[0].parent / "nope.png"), "--server", serving.url],
        capture_output=True,
        text=True,
        timeout=60,
        env={key: value for key, value in os.environ.items() if key != "SHIXIN_SERVER"},
    )
    assert result.returncode == 1
    assert result.stdout == f"{files[0]}\t{TEXTS[0]}\n"
    assert "nope.png: no such file" in result.stderr


def test_alphabet_site_or_characters(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["recognize", str(files[0]), "--server", serving.url, "--alphabet", "site"]) == 0
    assert capsys.readouterr().out == f"{files[0]}\tab22\n"  # no '1' on the site: read as '2'
    assert main(["recognize", str(files[0]), "--server", serving.url, "--alphabet", "ab?"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "alphabet has '?'" in err and "Traceback" not in err


def _relabelled(path: Path, label: str) -> Path:
    """A copy of ``path`` whose name carries ``label``: the image no longer reads as its name says."""
    copy = path.with_name(f"{label}_copy.png")
    shutil.copy(path, copy)
    return copy


def test_score_reports_exact_and_per_character_accuracy_with_each_misread(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = _relabelled(files[1], "CD35")  # reads cd34: one character of four wrong
    assert main(["score", str(files[0].parent), "--server", serving.url]) == 0
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        f"{wrong}\tcd35 -> cd34",
        "exact match: 75.00% (3 of 4)",
        "per character: 93.75% (15 of 16)",
    ]
    assert err == ""


def test_score_json_and_min_accuracy_exit_status(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = _relabelled(files[2], "xy")  # a two-character label: no character counted right
    args = ["score", *map(str, files), str(wrong), "--server", serving.url, "--format", "json"]
    assert main([*args, "--min-accuracy", "75"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["scored"], record["exact"], record["exact_match"]) == (4, 3, 0.75)
    assert (record["characters"], record["characters_right"]) == (14, 12)
    assert record["misreads"] == [{"path": str(wrong), "label": "xy", "read": TEXTS[2]}]
    assert record["confusions"] == [{"true": "xy", "read": TEXTS[2], "count": 1}]
    assert record["not_scored"] == []
    assert main([*args, "--min-accuracy", "100"]) == 1
    assert "below --min-accuracy 100%" in capsys.readouterr().err


def test_score_names_unlabelled_and_unreadable_files_and_scores_the_rest(
    serving: FakeServing, files: list[Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unlabelled = tmp_path / "captcha.png"
    shutil.copy(files[0], unlabelled)
    odd = tmp_path / "a-b_1.png"
    shutil.copy(files[0], odd)
    broken = tmp_path / "zz99_broken.png"
    broken.write_bytes(b"not an image")
    args = ["score", str(files[0]), str(unlabelled), str(odd), str(broken), "--server", serving.url]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "exact match: 100.00% (1 of 1)",
        "per character: 100.00% (4 of 4)",
        "not scored: 3 file(s) could not be read (see stderr)",
    ]
    lines = err.splitlines()
    no_label = "file name carries no label (expected <label>_<anything>, e.g. 347H_9ac6e7.png)"
    assert lines[0] == f"shixin: {unlabelled}: {no_label}"
    assert lines[1] == f"shixin: {odd}: label 'a-b' before '_' is not letters and digits"
    assert lines[2].startswith(f"shixin: {broken}: ")
    assert len(lines) == 3
    assert main([*args, "--format", "json"]) == 1
    not_scored = json.loads(capsys.readouterr().out)["not_scored"]
    assert [(r["path"], r["type"]) for r in not_scored] == [
        (str(unlabelled), "InvalidInputError"),
        (str(odd), "InvalidInputError"),
        (str(broken), "InvalidInputError"),
    ]
    assert not_scored[0]["error"] == no_label


def test_score_refuses_stdin_images_and_bad_percentages(
    serving: FakeServing,
    files: list[Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["score", str(files[0]), "--min-accuracy", "101", "--server", serving.url])
    assert exit_info.value.code == 2
    assert "needs a percentage from 0 to 100, got '101'" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", FakeStdin(IMAGES[0]))
    assert main(["score", "-", "--server", serving.url]) == 1
    out, err = capsys.readouterr()
    assert "exact match: 0.00% (0 of 0)" in out
    assert err.strip() == "shixin: -: image data from stdin carries no label; give labelled files"


def test_score_on_the_embedded_model_reads_every_shared_real_sample(
    real_samples: list[tuple[Path, str]], capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ai_edge_litert")
    paths = [str(path) for path, _ in real_samples]
    assert main(["score", *paths, "--min-accuracy", "100"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == f"exact match: 100.00% ({len(paths)} of {len(paths)})"
