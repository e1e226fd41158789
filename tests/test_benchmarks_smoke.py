"""The benchmark harness end to end on its light rows with tiny counts; the benchmarks are not run in CI."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np
import pytest

from benchmarks._embedded_timing import time_in_child
from benchmarks._report import table
from benchmarks._results import INFO, MISS, PASS, SKIP, VERDICTS, Target, measured, not_measured
from benchmarks._serving import check_same_model
from benchmarks.cli import main

REPO = Path(__file__).resolve().parents[1]
ROW_KEYS = {
    "id",
    "item",
    "title",
    "compares",
    "unit",
    "ours",
    "baseline",
    "ratio",
    "target",
    "verdict",
    "note",
}


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    docs = out / "docs" / "benchmarks.md"
    status = main(
        ["--quick", "--rows", "2,3,10", "--results", str(out / "results.json"), "--docs", str(docs)]
    )
    return status, json.loads((out / "results.json").read_text(encoding="utf-8")), docs


def test_quick_run_succeeds_and_records_the_run(run: tuple[int, dict, Path]) -> None:
    status, results, _ = run
    assert status == 0
    assert results["quick"] is True
    assert results["command"].startswith("python -m benchmarks --quick")
    assert {"cpus", "platform", "python"} <= set(results["machine"])
    assert {"source", "trained", "embedded"} <= set(results["model"])
    assert sum(results["verdicts"].values()) == len(results["rows"])


def test_every_row_has_ours_baseline_ratio_target_verdict(run: tuple[int, dict, Path]) -> None:
    rows = run[1]["rows"]
    assert [row["id"] for row in rows] == ["2", "3a", "3b", "10"]
    for row in rows:
        assert ROW_KEYS <= set(row), row["id"]
        assert row["verdict"] in VERDICTS
        assert row["compares"], f"row {row['id']} does not say what it compares"


def test_measured_rows_are_ratios_judged_against_their_targets(run: tuple[int, dict, Path]) -> None:
    for row in run[1]["rows"]:
        if row["verdict"] not in (PASS, MISS):
            continue
        assert row["ours"] > 0 and row["baseline"] > 0
        assert math.isclose(row["ratio"], row["ours"] / row["baseline"])
        target = Target(**row["target"])
        assert (row["verdict"] == PASS) == target.met(row["ratio"])


def test_quick_skips_the_install_footprint_and_says_so(run: tuple[int, dict, Path]) -> None:
    footprint = next(row for row in run[1]["rows"] if row["id"] == "2")
    assert footprint["verdict"] == SKIP
    assert footprint["ours"] is None and footprint["ratio"] is None
    assert "--quick" in footprint["note"]


def test_a_row_without_baseline_is_info_not_a_verdict(run: tuple[int, dict, Path]) -> None:
    generator = next(row for row in run[1]["rows"] if row["id"] == "10")
    assert generator["verdict"] == INFO
    assert generator["ours"] > 0 and generator["baseline"] is None


def test_docs_hold_the_table_the_chart_and_what_each_row_compares(run: tuple[int, dict, Path]) -> None:
    _, results, docs = run
    text = docs.read_text(encoding="utf-8")
    chart = docs.with_suffix(".png")
    assert chart.read_bytes().startswith(b"\x89PNG")
    assert f"]({chart.name})" in text
    for row in results["rows"]:
        assert f"| {row['id']} | {row['title']} |" in text
        assert f"**{row['id']} {row['title']}**" in text


def test_a_failed_requirement_is_a_miss_whatever_the_ratio() -> None:
    row = measured(
        "7a", 7, "Greedy", "x", "ms", 1.0, 100.0, Target("<=", 0.1, "fast"), required=(False, "paths differ")
    )
    assert row.verdict == MISS and "paths differ" in row.note
    assert measured("7a", 7, "Greedy", "x", "ms", 1.0, 100.0, Target("<=", 0.1, "fast")).verdict == PASS
    assert measured("6a", 6, "Rate", "x", "images/s", 70.0, 100.0, Target(">=", 0.8, "0.8x")).verdict == MISS


def test_table_shows_misses_plainly() -> None:
    rows = [
        measured("1a", 1, "Import time", "x", "s", 2.0, 4.0, Target("<=", 0.1, "at most 1/10")),
        not_measured("2", 2, "Install", "x", "MB", None, SKIP, "skipped by --quick"),
    ]
    text = table(rows)
    assert "MISS" in text and "SKIP" in text and "0.5" in text


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="Target.op"):
        Target("<", 1.0, "x")
    with pytest.raises(ValueError, match="SKIP, PENDING or ERROR"):
        not_measured("1", 1, "t", "c", "s", None, PASS, "n")
    with pytest.raises(SystemExit):
        main(["--rows", "11"])


def test_row_8_times_both_sides_in_a_process_without_tensorflow(tmp_path: Path) -> None:
    """The timing child of row 8, with a stand-in ddddocr (not a dev dependency) first on the path."""
    pytest.importorskip("ai_edge_litert")
    (tmp_path / "ddddocr.py").write_text(
        "class DdddOcr:\n"
        "    def __init__(self, show_ad=True):\n"
        "        pass\n\n"
        "    def classification(self, data):\n"
        "        return ''\n"
    )
    images = [path.read_bytes() for path in sorted((REPO / "examples" / "captchas").glob("*.png"))[:2]]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO)])}
    times = time_in_child(images, None, 1, env)  # raises if the child failed, or loaded TensorFlow
    assert set(times) == {"ours_one", "ours_many", "ddddocr"}
    assert all(seconds > 0 for seconds in times.values())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--server-grpc", "localhost:8500"], "go together"),
        (["--server-rest", "http://localhost:8501"], "go together"),
        (["--server-grpc", "grpc://localhost:8500", "--server-rest", "http://h:1"], "without a scheme"),
        (["--server-grpc", "localhost:8500", "--server-rest", "localhost:8501"], "http(s):// URL"),
    ],
)
def test_an_outside_server_needs_both_addresses_in_their_forms(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--rows", "5", *args])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


def test_an_outside_server_with_another_model_is_refused() -> None:
    softmax = np.full((2, 40, 37), 1 / 37, dtype=np.float32)
    check_same_model(softmax, softmax + 5e-5, "the server")  # float noise passes
    with pytest.raises(RuntimeError, match="does not serve the model this run compares with"):
        check_same_model(softmax, softmax + 1e-3, "the server")
    with pytest.raises(RuntimeError, match="does not serve"):
        check_same_model(softmax, np.full_like(softmax, np.nan), "the server")
    with pytest.raises(RuntimeError, match=r"answers with shape \(2, 40, 36\)"):
        check_same_model(softmax, softmax[:, :, :36], "the server")


def test_rows_5_time_a_server_started_outside_the_harness(tmp_path: Path) -> None:
    """What an owner with Docker runs against TF Serving; here the local server stands in for it."""
    pytest.importorskip("tensorflow")
    from shixin_client.server.testing import running_server

    with running_server(REPO / "models" / "shixin", "shixin") as server:
        status = main(
            [
                "--quick",
                "--rows",
                "5",
                "--server-grpc",
                server.grpc_target,
                "--server-rest",
                server.rest_url,
                "--results",
                str(tmp_path / "results.json"),
                "--docs",
                str(tmp_path / "benchmarks.md"),
            ]
        )
    results = json.loads((tmp_path / "results.json").read_text(encoding="utf-8"))
    assert status == 0
    assert results["server"] == {"grpc": server.grpc_target, "rest": server.rest_url}
    rows = results["rows"]
    assert [row["id"] for row in rows] == ["5a", "5b", "5c", "5d"]
    for row in rows:
        assert row["verdict"] in (PASS, MISS, INFO) and row["ours"] > 0 and row["baseline"] > 0
        assert f"the server at {server.rest_url} and grpc://{server.grpc_target}" in row["compares"]
    docs = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert f"- Rows 5 and 6 served by: {server.rest_url} and grpc://{server.grpc_target}" in docs
