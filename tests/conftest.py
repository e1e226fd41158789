"""Shared fixtures: where the read-only real samples live (../shared beside the checkout)."""

from __future__ import annotations

from pathlib import Path

import pytest

from shixin_client._scoring import label_of

REPO = Path(__file__).resolve().parents[1]
SHARED_REAL = REPO.parent / "shared" / "data" / "real"


@pytest.fixture(scope="session")
def real_samples() -> list[tuple[Path, str]]:
    """(path, lowercase label) of the shared real captchas, raw and binarized."""
    files = sorted(p for p in SHARED_REAL.rglob("*") if p.is_file())
    assert files, f"the shared real samples are missing under {SHARED_REAL}"
    return [(p, label_of(str(p))) for p in files]
