"""``python -m export`` end to end, and ``export check`` telling a good export from a tampered one."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tensorflow as tf

from export.check import run_check
from export.cli import main
from export.warmup import WARMUP_DIR, WARMUP_FILE
from shixin_client._spec import DESCRIBE_OUTPUTS, SIGNATURE_BYTES, SIGNATURE_FLOAT


def test_cli_exports_checks_and_writes_the_embedded_model(cli_export: Any) -> None:
    assert cli_export.exit_code == 0, cli_export.stderr
    assert sorted(p.name for p in cli_export.version_dir.parent.iterdir()) == ["1"]
    assert (cli_export.version_dir / WARMUP_DIR / WARMUP_FILE).is_file()
    out = cli_export.stdout
    assert f"exported {cli_export.version_dir}" in out
    # The signatures, printed from the fresh process in saved_model_cli's layout.
    assert "MetaGraphDef with tag-set: 'serve' contains the following SignatureDefs:" in out
    assert "        shape: (-1, 32, 64, 1)" in out and "        shape: (-1, 16, 11)" in out
    assert f"{SIGNATURE_FLOAT}: max abs diff" in out and f"{SIGNATURE_BYTES}: max abs diff" in out
    assert f"export check passed: {cli_export.version_dir}" in out
    assert cli_export.tflite_path.is_file()
    spec_json = json.loads(cli_export.tflite_path.with_name("spec.json").read_text())
    assert spec_json == {name: getattr(cli_export.spec, name) for name in DESCRIBE_OUTPUTS}


def _tamper(version_dir: Path) -> None:
    """Rewrite the checkpoint with every kernel nudged: a valid SavedModel, another function."""
    prefix = str(version_dir / "variables" / "variables")
    reader = tf.train.load_checkpoint(prefix)
    names = sorted(reader.get_variable_to_shape_map())
    tensors = [reader.get_tensor(name) for name in names]
    tensors = [t + np.float32(0.5) if isinstance(t, np.ndarray) and t.ndim >= 2 else t for t in tensors]
    for path in (version_dir / "variables").iterdir():
        path.unlink()
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names), tensors=tensors)


def test_check_fails_on_a_tampered_export(
    cli_export: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tampered = tmp_path / "five" / "1"
    shutil.copytree(cli_export.version_dir, tampered)
    _tamper(tampered)
    code = main(["check", str(tampered), "--model", str(cli_export.model_path), "--count", "4"])
    captured = capsys.readouterr()
    assert code == 1
    assert f"export check FAILED: {SIGNATURE_FLOAT}: max abs diff" in captured.err
    assert "from the Keras model exceeds 1e-05" in captured.err


def test_check_reports_a_directory_without_a_saved_model(tiny_model: Any, tmp_path: Path) -> None:
    report = run_check(tmp_path, tiny_model, [b"unused"])
    assert not report.ok
    assert report.problems == [f"{tmp_path} holds no saved_model.pb"]
    (tmp_path / "3").mkdir()
    report = run_check(tmp_path, tiny_model, [b"unused"])
    assert report.problems == [
        f"{tmp_path} holds no saved_model.pb; give a version directory such as {tmp_path / '3'}"
    ]


def test_cli_needs_a_target(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", "model.keras"])
    assert exit_info.value.code == 2
    assert "give --base-path (SavedModel), --tflite (embedded model) or both" in capsys.readouterr().err


def test_cli_int8_needs_the_embedded_model(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", "model.keras", "--base-path", "models", "--int8"])
    assert exit_info.value.code == 2
    assert "--int8 needs --tflite" in capsys.readouterr().err


def test_cli_reports_a_missing_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.keras"
    assert main(["--model", str(missing), "--base-path", str(tmp_path)]) == 1
    assert capsys.readouterr().err.strip() == f"export: model file {missing} does not exist"
    assert list(tmp_path.iterdir()) == []


def test_cli_refuses_to_overwrite_a_version(
    cli_export: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "five" / "1").mkdir(parents=True)
    code = main(
        [
            "--model",
            str(cli_export.model_path),
            "--base-path",
            str(tmp_path),
            "--name",
            "five",
            "--version",
            "1",
        ]
    )
    assert code == 1
    assert "five/1 already exists; pass force=True (--force) to replace it" in capsys.readouterr().err
    assert list((tmp_path / "five" / "1").iterdir()) == []
