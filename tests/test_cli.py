"""The ``shixin`` command, called in-process through ``main([...])`` against a loopback TF Serving double.

What only a whole process shows (the installed console script, a closed stdout pipe, a
missing extra, what the model runtime prints on stderr) runs in a subprocess.
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
from PIL import Image

from shixin_client import IMAGE_SUFFIXES, __version__
from shixin_client._config import DEFAULT_MIN_CONFIDENCE
from shixin_client.cli import EXIT_BROKEN_PIPE, main


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
    assert [{k: r[k] for k in ("path", "text")} for r in records] == [
        {"path": str(p), "text": t} for p, t in zip(files, TEXTS, strict=True)
    ]
    assert all(0.9 < r["confidence"] <= 1 for r in records)
    assert main(["recognize", *map(str, files), "--server", serving.url, "--format", "csv"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == ["path", "text", "confidence", "rejected"]
    assert [row[:2] for row in rows[1:]] == [[str(p), t] for p, t in zip(files, TEXTS, strict=True)]
    assert all(0.9 < float(row[2]) <= 1 and row[3] == "0" for row in rows[1:])


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
        "--model-version",
        "2",
    ]
    assert main(["recognize", str(files[0]), *args, "--timeout", "5", "-v"]) == 0
    assert main(["recognize", str(files[0]), *args, "--signature", "nope"]) == 1
    assert main(["recognize", str(files[0]), *args, "--payload", "tensor"]) == 0
    assert (
        main(["status", "--server", serving.url, "--header", f"Authorization={SECRET}", "--model", "other"])
        == 2
    )
    out, err = capsys.readouterr()
    image, tensor = [line for line in out.splitlines() if line.startswith(str(files[0]))]
    # The double answers serving_default (the float tensor) with a reading of its own.
    assert image.endswith("\tab12") and tensor.endswith("\tflt0")
    assert "cli-s3cret" not in out + err
    assert {headers.get("Authorization") for _, _, headers in serving.requests} == {SECRET}
    assert serving.requests[0][1] == "/v1/models/shixin/versions/2:predict"
    assert 'Serving signature name: "nope"' in err and "Could not find any versions of model other" in err


def test_bad_header_syntax_is_a_usage_error(serving: FakeServing, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["status", "--server", serving.url, "--header", "Authorization:s3cret"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--header: needs KEY=VALUE" in err and "s3cret" not in err


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


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        (["--batch-size", "0"], "batch_size"),
        (["--timeout", "-1"], "seconds"),
        (["--server", "ftp://127.0.0.1"], "unsupported URL"),
        (["--model-version", "-3"], "version"),
    ],
)
def test_bad_option_values_are_one_line_and_exit_2(
    files: list[Path], option: list[str], problem: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["recognize", str(files[0]), "--server", "http://127.0.0.1:1", *option]
    assert main(args) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("shixin: cannot use the model: ")
    assert problem in err


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


def _names_the_extra(message: str, extra: str) -> bool:
    """Whether ``message`` gives the pip command that installs ``extra``, however it is quoted."""
    return (
        f"pip install 'shixin-client[{extra}]'" in message
        or f'pip install "shixin-client[{extra}]"' in message
    )


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
    assert err.count("\n") == 1 and _names_the_extra(err, "server")


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
    site = ["recognize", str(files[0]), "--server", serving.url, "--alphabet", "site"]
    assert main([*site, "--min-confidence", "0"]) == 0
    assert capsys.readouterr().out == f"{files[0]}\tab22\n"  # no '1' on the site: read as '2'
    assert main(["recognize", str(files[0]), "--server", serving.url, "--alphabet", "ab?"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and "alphabet has '?'" in err and "Traceback" not in err


def test_readings_under_min_confidence_are_rejected_with_their_confidence(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    # Read with the site's alphabet, '1' has almost no probability left: ab12 reads ab22.
    args = ["recognize", str(files[0]), str(files[1]), "--server", serving.url, "--alphabet", "site"]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert out == f"{files[1]}\t{TEXTS[1]}\n"
    reason = f"rejected: read 'ab22' at confidence 0.000, under min_confidence {DEFAULT_MIN_CONFIDENCE:g}"
    assert err == f"shixin: {files[0]}: {reason}\n"
    assert main([*args, "--format", "json"]) == 1
    rejected, accepted = json.loads(capsys.readouterr().out)
    assert rejected["type"] == "LowConfidenceError" and rejected["text"] == "ab22"
    assert rejected["confidence"] < 0.01 and rejected["path"] == str(files[0])
    assert accepted["text"] == TEXTS[1] and accepted["confidence"] > 0.9
    assert main([*args, "--format", "csv"]) == 1
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert [(row[1], row[3]) for row in rows[1:]] == [("ab22", "1"), (TEXTS[1], "0")]
    score = ["score", str(files[0]), str(files[1]), "--server", serving.url, "--alphabet", "site"]
    assert main([*score, "--format", "json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["scored"], record["rejected"], record["accepted_error"]) == (2, 1, 0.0)
    assert record["min_confidence"] == DEFAULT_MIN_CONFIDENCE


@pytest.mark.parametrize("value", ["1.5", "-0.1", "high"])
def test_min_confidence_outside_0_to_1_is_a_usage_error(
    value: str, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["recognize", str(files[0]), "--min-confidence", value])
    assert exit_info.value.code == 2
    assert f"needs a number from 0 (off) to 1, got {value!r}" in capsys.readouterr().err


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
        f"under min_confidence {DEFAULT_MIN_CONFIDENCE:g}: 0 rejected; error among the 4 accepted: 25.00%",
    ]
    assert err == ""


def test_score_json_and_min_accuracy_exit_status(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    wrong = _relabelled(files[2], "ef57")  # reads ef56: one character of four wrong
    args = ["score", *map(str, files), str(wrong), "--server", serving.url, "--format", "json"]
    assert main([*args, "--min-accuracy", "75"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["scored"], record["exact"], record["exact_match"]) == (4, 3, 0.75)
    assert (record["characters"], record["characters_right"]) == (16, 15)
    assert record["misreads"] == [{"path": str(wrong), "label": "ef57", "read": TEXTS[2]}]
    assert record["confusions"] == [{"true": "7", "read": "6", "count": 1}]
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
    short = tmp_path / "big_x.png"  # a three-character label for a model that reads four
    shutil.copy(files[0], short)
    broken = tmp_path / "zz99_broken.png"
    broken.write_bytes(b"not an image")
    named = [files[0], unlabelled, odd, short, broken]
    args = ["score", *map(str, named), "--server", serving.url]
    assert main(args) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "exact match: 100.00% (1 of 1)",
        "per character: 100.00% (4 of 4)",
        f"under min_confidence {DEFAULT_MIN_CONFIDENCE:g}: 0 rejected; error among the 1 accepted: 0.00%",
        "not scored: 4 file(s), unlabelled or unreadable (see stderr)",
    ]
    lines = err.splitlines()
    no_label = "file name carries no label (expected <label>_<anything>, e.g. 347H_9ac6e7.png)"
    assert lines[0] == f"shixin: {unlabelled}: {no_label}"
    assert lines[1] == f"shixin: {odd}: label 'a-b' before '_' is not letters and digits"
    assert lines[2] == f"shixin: {short}: label 'big' has 3 characters; the model reads 4"
    assert lines[3].startswith(f"shixin: {broken}: ")
    assert len(lines) == 4
    assert main([*args, "--format", "json"]) == 1
    record = json.loads(capsys.readouterr().out)
    assert [(r["path"], r["type"]) for r in record["not_scored"]] == [
        (str(path), "InvalidInputError") for path in named[1:]
    ]
    assert record["misreads"] == [] and record["scored"] == 1
    not_scored = record["not_scored"]
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


EXAMPLE_CAPTCHAS = Path(__file__).resolve().parents[1] / "examples" / "captchas"
#: Seconds one subprocess may take; each finishes in about one.
PROCESS_TIMEOUT_S = 60


def _shixin_process(*args: str, blocked: tuple[str, ...] = ()) -> list[str]:
    """The command line of a ``shixin`` process in which importing each of ``blocked`` fails,
    as it does where that package is not installed."""
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "from shixin_client.cli import main\n"
        "sys.exit(main())\n"
    )
    return [sys.executable, "-c", code, *args]


def _env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "SHIXIN_SERVER"}


def _completed(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=PROCESS_TIMEOUT_S, env=_env())


@pytest.mark.parametrize(
    "command",
    [["recognize", "{folder}"], ["metadata"], ["score", "{folder}", "--format", "json"]],
    ids=["recognize", "metadata", "score-json"],
)
def test_a_closed_stdout_pipe_ends_the_command_quietly(
    serving: FakeServing, files: list[Path], command: list[str]
) -> None:
    """``shixin ... | head -1``: the reader is gone before anything is written, as ``cat`` sees it."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    argv = [arg.format(folder=files[0].parent) for arg in command]
    try:
        result = subprocess.run(
            _shixin_process(*argv, "--server", serving.url),
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=PROCESS_TIMEOUT_S,
            env=_env(),
        )
    finally:
        os.close(write_end)
    assert (result.returncode, result.stderr) == (EXIT_BROKEN_PIPE, "")


@pytest.mark.parametrize(
    ("blocked", "extra"),
    [(("ai_edge_litert",), "local"), (("numpy",), "local")],
    ids=["no-litert", "no-numpy"],
)
def test_a_missing_extra_for_the_embedded_model_is_one_line_naming_it(
    files: list[Path], blocked: tuple[str, ...], extra: str
) -> None:
    result = _completed(_shixin_process("recognize", str(files[0]), blocked=blocked))
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("shixin: cannot use the model: ")
    assert _names_the_extra(result.stderr, extra)


def test_serve_without_the_server_extra_is_one_line_naming_it(tmp_path: Path) -> None:
    serve = ["serve", "--model_name=shixin", f"--model_base_path={tmp_path}"]
    result = _completed(_shixin_process(*serve, blocked=("tensorflow_serving",)))
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("shixin: shixin serve needs the [server] extra")
    assert (
        _names_the_extra(result.stderr, "server") and "no module named 'tensorflow_serving" in result.stderr
    )


def test_the_embedded_runtime_prints_nothing_on_stderr_unless_verbose() -> None:
    """LiteRT announces its XNNPACK delegate on file descriptor 2; a folder runs both
    interpreters (single images and batches)."""
    pytest.importorskip("ai_edge_litert")
    run = [sys.executable, "-m", "shixin_client", "recognize", str(EXAMPLE_CAPTCHAS)]
    quiet = _completed(run)
    assert (quiet.returncode, quiet.stderr) == (0, "")
    assert len(quiet.stdout.splitlines()) == len(list(EXAMPLE_CAPTCHAS.iterdir()))
    verbose = _completed([*run, "-v"])
    assert verbose.returncode == 0 and "XNNPACK" in verbose.stderr
    assert verbose.stdout == quiet.stdout


def test_version_is_the_program_version_everywhere(
    serving: FakeServing, files: list[Path], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0 and capsys.readouterr().out == f"shixin {__version__}\n"
    assert main(["serve", "--version"]) == 0
    assert f" {__version__} " in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:  # the model version is --model-version
        main(["recognize", str(files[0]), "--server", serving.url, "--version", "2"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --version 2" in capsys.readouterr().err


def test_empty_input_is_an_error(
    serving: FakeServing,
    files: list[Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for stdin in (b"", b"\n  \n"):
        monkeypatch.setattr(sys, "stdin", FakeStdin(stdin))
        assert main(["recognize", "-", "--server", serving.url]) == 1
        out, err = capsys.readouterr()
        assert out == "" and err == "shixin: -: stdin is empty: give image data or paths, one per line\n"
    empty = tmp_path / "empty"
    (empty / "sub").mkdir(parents=True)
    (empty / "notes.txt").write_text("not an image")
    assert main(["recognize", str(empty), "--server", serving.url]) == 1
    assert capsys.readouterr().err == f"shixin: {empty}: folder holds no image files\n"
    assert main(["recognize", str(empty / "s*"), "--server", serving.url]) == 1  # matches a folder only
    assert capsys.readouterr().err == f"shixin: {empty / 's*'}: no files match this pattern\n"


def test_a_folder_scan_takes_every_format_a_path_takes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ai_edge_litert")
    captcha = EXAMPLE_CAPTCHAS / "bbx2_2a18b75a512771fd9e9bee8173063268.png"
    picture = Image.open(captcha).convert("RGB")
    for suffix in IMAGE_SUFFIXES:
        picture.save(tmp_path / f"bbx2{suffix.upper() if suffix == '.png' else suffix}", lossless=True)
    (tmp_path / "model.h5").write_bytes(b"not an image, and not picked up")
    assert main(["recognize", str(tmp_path), "--format", "json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert sorted(Path(r["path"]).suffix.lower() for r in records) == sorted(IMAGE_SUFFIXES)
    assert {r["text"] for r in records} == {"bbx2"}
    paths = [str(tmp_path / f"bbx2{suffix}") for suffix in (".webp", ".tif")]
    assert main(["recognize", *paths]) == 0  # the same files by name
    assert capsys.readouterr().out == "".join(f"{path}\tbbx2\n" for path in paths)


def test_only_the_reading_commands_take_signature_and_every_command_shows_examples(
    capsys: pytest.CaptureFixture[str],
) -> None:
    for command in ("recognize", "score", "status", "metadata"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        help_text = capsys.readouterr().out
        assert exit_info.value.code == 0
        assert ("--signature" in help_text) == (command in ("recognize", "score")), command
        examples = help_text.partition("\nexamples:\n")[2].splitlines()
        assert examples and all(line.lstrip().startswith(("shixin ", "ls ")) for line in examples), command
        assert any(f"shixin {command} " in line for line in examples), command
    with pytest.raises(SystemExit) as exit_info:
        main(["status", "--signature", "serving_bytes"])
    assert exit_info.value.code == 2 and "unrecognized arguments: --signature" in capsys.readouterr().err
