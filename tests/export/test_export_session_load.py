"""Exports load in TensorFlow's session loader, the one TF Serving runs (docs/tf-serving-compat.md §3.3).

``tf.saved_model.load`` restores variables through the object graph and so hides the
Keras 3 trap; these tests load with ``tf.compat.v1.saved_model.loader.load`` in a TF1
graph session (and ``saved_model_cli run``) and call ``Session.run`` on the signature's
tensor names, as ``saved_model_bundle_factory.cc`` and ``saved_model_warmup.cc`` do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import tensorflow as tf

from export.check import run_check
from export.saved_model import inference_model
from export.warmup import read_warmup, write_warmup
from shixin_client import preprocess
from shixin_client._spec import (
    DEFAULT_SPEC,
    INPUT_FLOAT,
    OUTPUT_SOFTMAX,
    SIGNATURE_BYTES,
    SIGNATURE_FLOAT,
)

REPO = Path(__file__).resolve().parents[2]
COMMITTED_MODEL = REPO / "models" / "shixin.keras"
COMMITTED_EXPORT = REPO / "models" / "shixin" / "1"


def _session_outputs(version_dir: Path, signature_name: str, value: np.ndarray) -> np.ndarray:
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(version_dir))
        signature = meta_graph.signature_def[signature_name]
        (input_info,) = signature.inputs.values()
        return session.run(signature.outputs[OUTPUT_SOFTMAX].name, {input_info.name: value})


def _save_defective(model: keras.Model, directory: Path, samples: list[bytes]) -> None:
    """An export with the Keras 3 trap: the model is an attribute of the saved tf.Module."""
    spec = DEFAULT_SPEC
    image = tf.TensorSpec([None, spec.height, spec.width, 1], tf.float32, INPUT_FLOAT)

    class Holder(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=[image])
        def serve_float(self, the_input: tf.Tensor) -> dict[str, tf.Tensor]:
            return {OUTPUT_SOFTMAX: self.model(the_input, training=False)}

    holder = Holder()
    tf.saved_model.save(holder, str(directory), signatures={SIGNATURE_FLOAT: holder.serve_float})
    write_warmup(directory, samples, "shixin", spec)


def test_the_export_runs_in_a_tf1_session_like_keras(
    exported: Path, tiny_model: Any, real_files: list[bytes]
) -> None:
    floats = np.stack([preprocess(data) for data in real_files])
    want = np.asarray(inference_model(tiny_model)(floats, training=False))
    got = _session_outputs(exported, SIGNATURE_FLOAT, floats)
    assert float(np.abs(got - want).max()) <= 1e-5
    got_bytes = _session_outputs(exported, SIGNATURE_BYTES, np.array(real_files, dtype=object))
    assert float(np.abs(got_bytes - want).max()) <= 1e-5
    assert [log.predict_log.request.model_spec.signature_name for log in read_warmup(exported)]


def test_check_catches_the_keras3_module_trap(
    tiny_model: Any, real_files: list[bytes], tmp_path: Path
) -> None:
    defective = tmp_path / "shixin" / "1"
    _save_defective(inference_model(tiny_model), defective, real_files[:2])
    # Python's object-graph loader hides the defect...
    python_loaded = tf.saved_model.load(str(defective)).signatures[SIGNATURE_FLOAT]
    assert python_loaded(**{INPUT_FLOAT: tf.zeros([1, 70, 160, 1])})[OUTPUT_SOFTMAX].shape == (1, 40, 37)
    # ...TF Serving's session loader does not, and neither does the check.
    report = run_check(defective, tiny_model, real_files[:2])
    assert not report.ok
    failing = [p for p in report.problems if "Could not find variable" in p]
    assert any(p.startswith(f"{SIGNATURE_FLOAT}: FailedPreconditionError") for p in failing), report.problems
    assert any(p.startswith("warm-up record 0 (serving_default)") for p in failing), report.problems
    assert f"missing signatures: describe, {SIGNATURE_BYTES}" in report.problems


@pytest.mark.slow
def test_the_committed_export_passes_the_check() -> None:
    model = keras.models.load_model(COMMITTED_MODEL, compile=False)
    samples = [path.read_bytes() for path in sorted((REPO / "datasets" / "real" / "origin").iterdir())]
    report = run_check(COMMITTED_EXPORT, model, samples)
    assert report.ok, report.problems
    assert any("session loader" in note for note in report.notes)


@pytest.mark.slow
def test_saved_model_cli_runs_the_committed_export(tmp_path: Path) -> None:
    samples = sorted((REPO / "datasets" / "real" / "origin").iterdir())[:2]
    floats = np.stack([preprocess(path.read_bytes()) for path in samples])
    np.save(tmp_path / "x.npy", floats)
    cli = Path(sys.executable).with_name("saved_model_cli")
    done = subprocess.run(
        [
            str(cli),
            "run",
            "--dir",
            str(COMMITTED_EXPORT),
            "--tag_set",
            "serve",
            "--signature_def",
            SIGNATURE_FLOAT,
            "--inputs",
            f"{INPUT_FLOAT}=x.npy",
            "--outdir",
            str(tmp_path / "out"),
        ],  # fmt: skip
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    got = np.load(tmp_path / "out" / f"{OUTPUT_SOFTMAX}.npy")
    want = np.asarray(keras.models.load_model(COMMITTED_MODEL, compile=False)(floats, training=False))
    assert float(np.abs(got - want).max()) <= 1e-5
