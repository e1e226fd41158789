"""The real-library evaluation set: its table holds, and readers are scored per family."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from shixin_client import InvalidInputError
from training import java_eval

REPO = Path(__file__).resolve().parents[2]
JAVA_EVAL = REPO / "datasets" / "patchca-java-eval"


def test_the_set_lists_every_captcha_once_with_its_word_and_one_of_five_families() -> None:
    labelled = java_eval.load_set(JAVA_EVAL)
    assert len(labelled.files) == len(set(labelled.files)) == 1000
    assert sorted(p.name for p in labelled.files) == sorted(p.name for p in JAVA_EVAL.glob("*.png"))
    assert set(labelled.families) == {"curves", "diffuse", "double", "marble", "wobble"}
    assert all(len(label) == 4 for label in labelled.labels)


def _small_set(tmp_path: Path, rows: list[str]) -> Path:
    for name in ("UMwg_0.png", "qPQf_1.png", "2uZU_2.png"):
        shutil.copy(JAVA_EVAL / name, tmp_path / name)
    (tmp_path / "families.csv").write_text("file,family,word\n" + "".join(f"{r}\n" for r in rows))
    return tmp_path


def test_readers_are_scored_overall_and_per_family_ignoring_case(tmp_path: Path) -> None:
    rows = ["UMwg_0.png,curves,UMwg", "qPQf_1.png,double,qPQf", "2uZU_2.png,double,2uZU"]
    labelled = java_eval.load_set(_small_set(tmp_path, rows))

    def lowercase_truth(files: Sequence[Path]) -> list[str]:
        return [f.name.split("_")[0].lower() for f in files]

    def wrong_on_curves(files: Sequence[Path]) -> list[str]:
        return ["UMxx" if f.name == "UMwg_0.png" else f.name.split("_")[0] for f in files]

    section = java_eval.evaluate_set(labelled, {"right": lowercase_truth, "curvy": wrong_on_curves})
    assert section["family_counts"] == {"curves": 1, "double": 2}
    right, curvy = section["readers"]["right"], section["readers"]["curvy"]
    assert (right["exact_match"], right["by_family"], right["misreads"]) == (
        1.0,
        {"curves": 1.0, "double": 1.0},
        [],
    )
    assert curvy["exact_match"] == pytest.approx(2 / 3)
    assert curvy["by_family"] == {"curves": 0.0, "double": 1.0}
    assert curvy["misreads"] == [{"file": "UMwg_0.png", "read": "UMxx"}]
    table = "\n".join(java_eval.markdown(section))
    assert "| reader | exact match | per character | curves (1) | double (2) |" in table
    assert "| curvy | **66.67%** | 83.33% | 0.00% | 100.00% |" in table


@pytest.mark.parametrize(
    ("rows", "problem"),
    [
        (["gone_9.png,curves,gone"], "'gone_9.png', which is not in"),
        (["UMwg_0.png,curves,UMwx"], "'UMwg_0.png' is listed with word 'UMwx'"),
        ([], "lists no captchas"),
    ],
)
def test_a_damaged_table_is_refused_before_any_reader_runs(
    tmp_path: Path, rows: list[str], problem: str
) -> None:
    with pytest.raises(InvalidInputError, match=problem):
        java_eval.load_set(_small_set(tmp_path, rows))


def test_a_folder_without_the_table_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="no families.csv"):
        java_eval.load_set(tmp_path)


@pytest.mark.slow
def test_the_embedded_default_reads_at_least_99_percent_of_the_real_library_set() -> None:
    pytest.importorskip("ai_edge_litert")
    labelled = java_eval.load_set(JAVA_EVAL)
    section = java_eval.evaluate_set(labelled, {"embedded": java_eval.embedded_reader()})
    embedded = section["readers"]["embedded"]
    assert embedded["exact_match"] >= 0.99
    assert min(embedded["by_family"].values()) >= 0.97
