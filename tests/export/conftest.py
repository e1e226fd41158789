"""Tiny untrained models and their exports, shared by every export test.

Saving a SavedModel costs seconds, so exports are session-scoped: ``exported`` is the
reference-shaped tiny model written by :func:`export_model`; ``cli_export`` is a
5-character model over another alphabet and image size, exported, checked and converted
to LiteRT by one ``python -m export`` run. Tests that change files on disk copy them.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import pytest
import tensorflow as tf

from export.cli import main
from export.saved_model import export_model
from shixin_client._spec import DEFAULT_MODEL_NAME, CaptchaSpec
from training.generator import generate, png_bytes
from training.model import Preset, build_model

#: Small enough to save and convert in seconds; the same layer kinds as the real presets.
TINY = Preset(conv_filters=(4, 4, 4), gru_units=8, projection=16, dropout=0.0)
MODEL_NAME = DEFAULT_MODEL_NAME
#: A model no reference fact fits: 5 characters, 10 classes + blank, 64x32 input.
FIVE_CHAR_SPEC = CaptchaSpec(
    charset="abcdef0123", blank_index=10, label_length=5, height=32, width=64, time_steps=16
)


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


@dataclass(frozen=True)
class CliExport:
    """What one ``python -m export ... --check --tflite`` run produced."""

    spec: CaptchaSpec
    model: keras.Model
    model_path: Path
    version_dir: Path
    tflite_path: Path
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture(scope="session")
def cli_export(tmp_path_factory: pytest.TempPathFactory, real_samples: list[tuple[Path, str]]) -> CliExport:
    spec = FIVE_CHAR_SPEC
    model = build_model(TINY, spec)
    work = tmp_path_factory.mktemp("cli-export")
    model_path = work / "five.keras"
    model.save(model_path)
    tflite_path = work / "assets" / "five.tflite"
    argv = [
        "--model", str(model_path), "--base-path", str(work / "models"), "--name", "five",
        "--charset", spec.charset, "--label-length", str(spec.label_length),
        "--samples", str(real_samples[0][0].parent), "--check", "--tflite", str(tflite_path),
    ]  # fmt: skip
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return CliExport(
        spec,
        model,
        model_path,
        work / "models" / "five" / "1",
        tflite_path,
        code,
        out.getvalue(),
        err.getvalue(),
    )
