"""Shared fixtures: the two real site captchas kept in the repository (``datasets/real``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shixin_client._scoring import label_of

REPO = Path(__file__).resolve().parents[1]
REAL_SAMPLES = REPO / "datasets" / "real"


@pytest.fixture(scope="session")
def real_samples() -> list[tuple[Path, str]]:
    """(path, lowercase label) of the real captchas, raw (``origin/``) and binarized (``binary/``)."""
    files = sorted(p for p in REAL_SAMPLES.rglob("*") if p.is_file())
    assert files, f"the real samples are missing under {REAL_SAMPLES}"
    return [(p, label_of(str(p))) for p in files]
