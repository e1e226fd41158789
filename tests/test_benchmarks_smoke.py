"""The benchmark harness end to end, every item with tiny counts (``--quick``); the full run is not CI's.

ddddocr is not a dev dependency: where a row calls it, a stand-in module (reads nothing,
instantly) takes its place, so the harness's code runs here and the figures mean nothing.
"""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from benchmarks._children import run_fresh
from benchmarks._embedded_timing import time_in_child
from benchmarks._finetuning import curve_summary
from benchmarks._limits import LIMITS
from benchmarks._report import README_END, README_START, readme_block, table, write_readme
from benchmarks._results import INFO, MISS, OURS, PASS, SKIP, VERDICTS, Target, measured, not_measured
from benchmarks._serving import InsideServer, check_same_model, predict_latency_totals
from benchmarks.cli import ITEMS, README, RESULTS, main
from training.finetune_curve import CURVE_RESULTS

REPO = Path(__file__).resolve().parents[1]
STAND_IN_DDDDOCR = (
    "class DdddOcr:\n"
    "    def __init__(self, show_ad=True):\n"
    "        pass\n\n"
    "    def classification(self, data):\n"
    "        return ''\n"
)
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
        ["--quick", "--rows", "2,3,7,10", "--results", str(out / "results.json"), "--docs", str(docs)]
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
    assert [row["id"] for row in rows] == ["2", "3a", "3b", "7a", "7b", "10"]
    for row in rows:
        assert ROW_KEYS <= set(row), row["id"]
        assert row["verdict"] in VERDICTS
        assert row["compares"], f"row {row['id']} does not say what it compares"


def _judged(rows: list[dict]) -> None:
    """Every PASS or MISS row: its ratio is ours / baseline, and its verdict is its target's."""
    for row in rows:
        if row["verdict"] not in (PASS, MISS):
            continue
        target = Target(**row["target"])
        if row["baseline"] is not None:
            assert row["baseline"] >= 0 and row["ours"] >= 0
            expected = row["ours"] / row["baseline"] if row["baseline"] else math.inf
            assert math.isclose(row["ratio"], expected), row["id"]
        else:
            assert row["ratio"] is None and target.of == OURS, row["id"]
        assert (row["verdict"] == PASS) == target.met(row["ratio"], row["ours"]), row["id"]


def test_measured_rows_are_ratios_judged_against_their_targets(run: tuple[int, dict, Path]) -> None:
    _judged(run[1]["rows"])


def test_greedy_decode_has_no_speed_ratio_target_only_faster_and_identical(
    run: tuple[int, dict, Path],
) -> None:
    greedy = next(row for row in run[1]["rows"] if row["id"] == "7a")
    assert greedy["target"] == {
        "op": "<",
        "value": 1.0,
        "text": "identical paths, faster than Keras",
        "of": "ratio",
    }
    assert greedy["extra"]["identical"] is True


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


def test_a_target_on_ours_judges_the_figure_not_the_ratio() -> None:
    accuracy = Target(">=", 99.9, "ours at least 99.9%", of=OURS)
    assert measured("12a", 12, "Acc", "x", "%", 99.5, 88.7, accuracy).verdict == MISS
    assert measured("12a", 12, "Acc", "x", "%", 99.95, 100.0, accuracy).verdict == PASS
    rejected = measured("13b", 13, "Rejected", "x", "%", 1.5, None, Target("<=", 2.0, "2%", of=OURS))
    assert rejected.verdict == PASS and rejected.ratio is None
    assert measured("x", 1, "t", "c", "s", 1.0, None, Target("<=", 2.0, "on the ratio")).verdict == MISS


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="Target.op"):
        Target("==", 1.0, "x")
    with pytest.raises(ValueError, match="Target.of"):
        Target("<=", 1.0, "x", of="baseline")
    with pytest.raises(ValueError, match="SKIP, PENDING or ERROR"):
        not_measured("1", 1, "t", "c", "s", None, PASS, "n")
    with pytest.raises(SystemExit):
        main(["--rows", str(max(item.number for item in ITEMS) + 1)])


def test_row_8_times_both_sides_in_a_process_without_tensorflow(tmp_path: Path) -> None:
    """The timing child of row 8, with a stand-in ddddocr (not a dev dependency) first on the path."""
    pytest.importorskip("ai_edge_litert")
    (tmp_path / "ddddocr.py").write_text(STAND_IN_DDDDOCR)
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
    from shixin_client.server._config_files import DEFAULT_PROMETHEUS_PATH
    from shixin_client.server.testing import running_server

    with running_server(
        REPO / "models" / "shixin", "shixin", prometheus_path=DEFAULT_PROMETHEUS_PATH
    ) as server:
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
    rows = {row["id"]: row for row in results["rows"]}
    assert list(rows) == ["5a", "5b", "5c", "5d", "5e", "5f"]
    for row in rows.values():
        assert row["verdict"] in (PASS, MISS, INFO) and row["ours"] > 0 and row["baseline"] > 0
        assert f"the server at {server.rest_url} and grpc://{server.grpc_target}" in row["compares"]
    assert "tensorflow-serving-api" in rows["5a"]["title"] and rows["5a"]["target"]["value"] == 0.75
    assert "reference REST flow" in rows["5b"]["title"] and rows["5b"]["target"]["value"] == 0.4
    assert rows["5e"]["verdict"] == INFO and "in-process limit" in rows["5e"]["title"]
    inside = rows["5a"]["extra"]["inside_server"]
    assert set(inside) == {"ours gRPC", "tensorflow-serving-api"}
    for side in inside.values():
        assert 0 < side["share"] < 1 and side["requests"] == side["calls"]
    _judged(results["rows"])
    docs = (tmp_path / "benchmarks.md").read_text(encoding="utf-8")
    assert f"- Rows 5 and 6 served by: {server.rest_url} and grpc://{server.grpc_target}" in docs
    assert "## Time inside the server" in docs and "| 5b | reference REST flow |" in docs


def test_rows_6_through_the_server_the_harness_starts(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    status = main(
        ["--quick", "--rows", "6", "--results", str(tmp_path / "r.json"), "--docs", str(tmp_path / "b.md")]
    )
    rows = {row["id"]: row for row in json.loads((tmp_path / "r.json").read_text())["rows"]}
    assert status == 0 and list(rows) == ["6a", "6b", "6c", "6d"]
    assert rows["6a"]["target"]["value"] == 1.3 and rows["6b"]["target"]["value"] == 2.5
    assert "shixin_client.server in another process" in rows["6b"]["compares"]
    for row in rows.values():
        assert row["ours"] > 0 and row["baseline"] > 0
    assert rows["6b"]["extra"]["inside_server"]["reference REST flow"]["share"] > 0


def test_prometheus_text_gives_the_predict_time_of_the_model() -> None:
    from shixin_client.server._metrics import Metrics

    metrics = Metrics()
    metrics.record("shixin", "Predict", "GRPC", "OK", 0.004)
    metrics.record("shixin", "Predict", "REST", "OK", 0.006)
    metrics.record("shixin", "GetModelStatus", "REST", "OK", 1.0)
    metrics.record("other", "Predict", "REST", "OK", 1.0)
    seconds, count = predict_latency_totals(metrics.render(model_calls=2)) or (0.0, 0)
    assert math.isclose(seconds, 0.010) and count == 2
    assert predict_latency_totals("# no metrics here\n") is None


def test_time_inside_the_server_is_a_share_of_the_calls_or_unmeasured() -> None:
    inside = InsideServer()
    inside.add((1.0, 10), (1.3, 20), 0.5, 10)
    assert math.isclose(inside.share or 0, 0.6) and "60% (30 ms per request)" in inside.words("ours")
    inside.add(None, (2.0, 30), 0.5, 10)
    assert inside.share is None and "not measured" in inside.words("ours")


@pytest.fixture()
def stand_in_ddddocr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ddddocr replaced, in this process and in the children, by a reader that reads nothing."""
    folder = tmp_path / "stand_in"
    folder.mkdir()
    (folder / "ddddocr.py").write_text(STAND_IN_DDDDOCR)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "ddddocr", raising=False)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(folder), str(REPO)]))


def _quick(rows: str, tmp_path: Path) -> dict[str, dict]:
    out = tmp_path / "out"
    status = main(["--quick", "--rows", rows, "--results", str(out / "r.json"), "--docs", str(out / "b.md")])
    results = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert status == 0, results["rows"]
    _judged(results["rows"])
    return {row["id"]: row for row in results["rows"]}


@pytest.mark.usefixtures("stand_in_ddddocr")
def test_row_11_times_whole_processes_and_their_peak_memory(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert")
    rows = _quick("11", tmp_path)
    assert list(rows) == ["11a", "11b"]
    memory, start = rows["11a"], rows["11b"]
    assert memory["unit"] == "MB" and 10 < memory["ours"] < 500 and memory["baseline"] > 5
    assert start["unit"] == "s" and 0 < start["ours"] < 60 and start["baseline"] > 0
    assert memory["target"]["value"] == pytest.approx(1 / 3) and start["target"]["value"] == pytest.approx(
        1 / 3
    )
    assert "`shixin recognize one.png`" in start["compares"]


def test_a_fresh_process_reports_its_own_peak_not_the_harness_one() -> None:
    """A child of a big process inherits its peak RSS on Linux; run_fresh's launcher avoids it."""
    ballast = bytearray(300 * 2**20)  # the harness grown by 300 MB
    ballast[::4096] = b"x" * len(ballast[::4096])
    small = run_fresh([sys.executable, "-c", "print('hi')"])
    assert small.stdout.strip() == "hi" and small.peak_mb < 200 and small.seconds > 0
    with pytest.raises(RuntimeError, match="exited with 3"):
        run_fresh([sys.executable, "-c", "raise SystemExit(3)"])
    del ballast


@pytest.mark.usefixtures("stand_in_ddddocr")
def test_rows_12_and_13_accuracy_per_family_and_the_reject_option(tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert")
    rows = _quick("12,13", tmp_path)
    families = [row_id for row_id in rows if row_id.startswith("12") and row_id != "12a"]
    assert rows["12a"]["target"] == {"op": ">=", "value": 99.9, "text": "ours at least 99.9%", "of": OURS}
    assert len(families) == 5 and all(rows[f]["target"]["value"] == 99.7 for f in families)
    assert (
        rows["12a"]["extra"]["images"] == 20 and rows["12a"]["baseline"] == 0.0
    )  # the stand-in reads nothing
    assert [row_id for row_id in rows if row_id.startswith("13")] == ["13a", "13b", "13c", "13d"]
    for error, rejected in (("13a", "13b"), ("13c", "13d")):
        counts = rows[error]["extra"]
        assert counts["accepted"] + counts["rejected"] == counts["images"]
        assert rows[error]["ours"] <= rows[error]["baseline"] or counts["accepted_wrong"] > 0
        assert rows[rejected]["baseline"] is None and rows[rejected]["target"]["value"] == 2.0
    assert rows["13a"]["extra"]["images"] == 20 and rows["13c"]["extra"]["images"] == 16


def test_row_14_times_training_steps_with_the_generator(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    rows = _quick("14", tmp_path)
    training = rows["14"]
    assert training["verdict"] == INFO and training["unit"] == "captchas/s" and training["ours"] > 0
    assert training["extra"]["captchas"] == 2 * 64 and "--source stream" in training["compares"]


def test_row_15_times_a_finetuning_epoch_and_reads_the_committed_curve(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    finetuning = _quick("15", tmp_path)["15"]
    assert finetuning["verdict"] == INFO and finetuning["ours"] > 0 and finetuning["baseline"] is None
    assert finetuning["extra"]["captchas"] == 16 and "`changed`" in finetuning["compares"]
    curve = json.loads(CURVE_RESULTS.read_text(encoding="utf-8"))
    assert finetuning["extra"]["curve"]["reached"] == curve["reached"]
    assert "docs/finetune_curve.json" in finetuning["note"]


def test_the_finetuning_note_says_what_the_curve_reached_or_that_there_is_none(tmp_path: Path) -> None:
    runs = [{"labelled": 200, "after_exact_match": 0.9}, {"labelled": 500, "after_exact_match": 0.992}]
    curve = {"style": "changed", "target": 0.99, "held_out": 1000, "reached": 500, "runs": runs}
    path = tmp_path / "curve.json"
    path.write_text(json.dumps(curve), encoding="utf-8")
    said, figures = curve_summary(path)
    assert said.startswith(
        "500 labelled captchas of the unseen style `changed` reached 99% exact match on 1000"
    )
    assert figures is not None and figures["runs"][1] == {"labelled": 500, "exact_match": 0.992}
    path.write_text(json.dumps({**curve, "reached": None}), encoding="utf-8")
    assert curve_summary(path)[0].startswith("no set of up to 500 labelled captchas")
    said, figures = curve_summary(tmp_path / "missing.json")
    assert figures is None and "python -m training.finetune_curve" in said


def test_readme_figures_are_the_committed_results() -> None:
    """README's benchmark table is generated from benchmarks/results.json; they must agree."""
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    text = README.read_text(encoding="utf-8")
    start, end = text.index(README_START), text.index(README_END) + len(README_END)
    assert text[start:end] == readme_block(results), (
        "README's benchmark table is stale: run python -m benchmarks"
    )


def test_every_missed_target_in_the_committed_results_says_what_limits_it() -> None:
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    missed = [row["id"] for row in results["rows"] if row["verdict"] == MISS]
    assert not [row_id for row_id in missed if row_id not in LIMITS]
    docs = (REPO / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    for row_id in missed:
        assert LIMITS[row_id] in docs


def test_the_readme_block_is_replaced_and_a_readme_without_it_refused(tmp_path: Path) -> None:
    results = json.loads(RESULTS.read_text(encoding="utf-8"))
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{README_START}\nold\n{README_END}\n\nafter\n", encoding="utf-8")
    write_readme(readme, results)
    text = readme.read_text(encoding="utf-8")
    assert text.startswith("# x\n\n" + readme_block(results)) and text.endswith("\n\nafter\n")
    readme.write_text("# no block\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no .* block"):
        write_readme(readme, results)
