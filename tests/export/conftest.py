"""One tiny untrained model and one export of it, shared by every export test.

Saving a SavedModel costs seconds, so the export is session-scoped; tests that change
files on disk make their own copies or their own exports.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import keras
import pytest
import tensorflow as tf

from export.saved_model import export_model
from training.generator import generate, png_bytes
from training.model import Preset, build_model

#: Small enough to save and convert in seconds; the same layer kinds as the real presets.
TINY = Preset(conv_filters=(4, 4, 4), gru_units=8, projection=16, dropout=0.0)
MODEL_NAME = "shixin"


def generated_pngs(count: int, seed: int = 7) -> list[bytes]:
    return [png_bytes(captcha) for captcha in generate(seed, count)]


@pytest.fixture(scope="session")
def tiny_preset() -> Preset:
    return TINY


@pytest.fixture(scope="session")
def make_pngs() -> Callable[..., list[bytes]]:
    """``make_pngs(count, seed=7)``: generated captchas as PNG files."""
    return generated_pngs


@pytest.fixture(scope="session")
def tiny_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    return build_model(TINY)


@pytest.fixture(scope="session")
def real_files(real_samples: list[tuple[Path, str]]) -> list[bytes]:
    return [path.read_bytes() for path, _ in real_samples]


@pytest.fixture(scope="session")
def exported(
    tiny_model: keras.Model, real_files: list[bytes], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """``<base>/shixin/1``: the tiny model exported with real captchas as warm-up samples."""
    base = tmp_path_factory.mktemp("export-base")
    return export_model(tiny_model, base, MODEL_NAME, warmup_samples=real_files[:2])


@pytest.fixture(scope="session")
def loaded(exported: Path) -> Any:
    return tf.saved_model.load(str(exported))
