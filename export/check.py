"""``export check``: prove an exported version serves in TF Serving exactly like its Keras model.

The SavedModel is loaded in a fresh process (:mod:`export._check_worker`) the way TF
Serving loads it: TensorFlow's C++ loader into a TF1 graph session, then ``Session.run``
on each signature's tensors and on every warm-up record (docs/tf-serving-compat.md §3.3).
This process runs the Keras model on the same inputs and compares. The export passes
only if every signature is there with the promised names and runs, ``describe`` agrees
with the model's shapes, every warm-up record replays, both prediction signatures stay
within ``tolerance`` of Keras and every decoded string is the same.

``python`` picks the interpreter of the worker, so the same check runs on another
TensorFlow, such as the one inside the pinned serving image
(``scripts/check_serving_tensorflow.sh``).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np

from shixin_client import decode_softmax, preprocess
from shixin_client._spec import (
    OUTPUT_SOFTMAX,
    SIGNATURE_BYTES,
    SIGNATURE_DESCRIBE,
    SIGNATURE_FLOAT,
    CaptchaSpec,
)

from .saved_model import inference_model, spec_for_model
from .versions import list_versions

DEFAULT_TOLERANCE = 1e-5
SIGNATURES = (SIGNATURE_FLOAT, SIGNATURE_BYTES, SIGNATURE_DESCRIBE)


@dataclass
class CheckReport:
    """What the check found; ``problems`` empty means the export is good."""

    version_dir: Path
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


WORKER = Path(__file__).with_name("_check_worker.py")


def _run_worker(
    version_dir: Path, floats: np.ndarray, samples: Sequence[bytes], workdir: Path, python: str
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    samples_dir = workdir / "samples"
    samples_dir.mkdir()
    for index, data in enumerate(samples):
        (samples_dir / f"{index:05d}.img").write_bytes(data)
    inputs_path, out_path = workdir / "inputs.npz", workdir / "outputs.npz"
    np.savez(inputs_path, floats=floats)
    command = [python, str(WORKER), str(version_dir), str(inputs_path), str(samples_dir), str(out_path)]
    done = subprocess.run(command, capture_output=True, text=True)
    print(done.stdout, end="")
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"loading {version_dir} with TensorFlow's session loader failed:\n{tail}")
    with np.load(out_path) as npz:
        arrays = {key: npz[key] for key in npz.files}
    return json.loads(str(arrays.pop("report"))), arrays


def _compare(
    report: CheckReport, name: str, got: np.ndarray, want: np.ndarray, spec: CaptchaSpec, tolerance: float
) -> None:
    if got.shape != want.shape:
        report.problems.append(f"{name}: output shape {got.shape}, Keras gives {want.shape}")
        return
    diff = float(np.abs(got - want).max())
    texts_got = [p.text for p in decode_softmax(got, spec)]
    texts_want = [p.text for p in decode_softmax(want, spec)]
    differing = [i for i, (a, b) in enumerate(zip(texts_got, texts_want, strict=True)) if a != b]
    report.notes.append(
        f"{name}: max abs diff {diff:.3g} on {len(got)} images; {len(differing)} strings differ"
    )
    if not diff <= tolerance:
        report.problems.append(f"{name}: max abs diff {diff:.3g} from the Keras model exceeds {tolerance:g}")
    if differing:
        shown = ", ".join(f"#{i} {texts_got[i]!r} vs {texts_want[i]!r}" for i in differing[:5])
        report.problems.append(f"{name}: {len(differing)} decoded strings differ from Keras ({shown})")


def run_check(
    version_dir: str | Path,
    model: keras.Model,
    samples: Sequence[bytes],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    python: str = sys.executable,
) -> CheckReport:
    """Check ``version_dir`` against ``model`` on the encoded ``samples``; never raises for a bad export."""
    version_dir = Path(version_dir)
    report = CheckReport(version_dir)
    if not (version_dir / "saved_model.pb").is_file():
        versions = list_versions(version_dir)
        hint = f"; give a version directory such as {version_dir / str(versions[-1])}" if versions else ""
        report.problems.append(f"{version_dir} holds no saved_model.pb{hint}")
        return report
    if not samples:
        raise ValueError("export check needs at least one sample image")
    model = inference_model(model)
    floats = np.stack([preprocess(data, spec_for_model(model)) for data in samples])
    with tempfile.TemporaryDirectory(prefix="shixin-check-") as workdir:
        try:
            facts, outputs = _run_worker(version_dir, floats, samples, Path(workdir), python)
        except RuntimeError as exc:
            report.problems.append(str(exc))
            return report
    report.notes.append(
        f"loaded with TensorFlow {facts['tensorflow']}'s session loader, as TF Serving loads it"
    )
    report.problems += facts["errors"]
    missing = sorted(set(SIGNATURES) - set(facts["signatures"]))
    if missing:
        report.problems.append(f"missing signatures: {', '.join(missing)}")
    warmed = set(facts["warmup"])
    if not warmed >= set(SIGNATURES):
        report.problems.append(f"warm-up requests miss {', '.join(sorted(set(SIGNATURES) - warmed))}")
    if not facts["describe"]:
        return report
    spec = CaptchaSpec(**facts["describe"])
    _, height, width, _ = model.inputs[0].shape
    _, steps, classes = model.outputs[0].shape
    promised = (spec.height, spec.width, spec.time_steps, spec.num_classes)
    if promised != (height, width, steps, classes):
        report.problems.append(
            f"describe says height, width, time steps, classes = {promised}, "
            f"the Keras model has {(height, width, steps, classes)}"
        )
        return report
    if set(facts["describe_rows"].values()) != {2}:
        report.problems.append(f"describe returned {facts['describe_rows']} rows for 2 inputs")
    want = np.asarray(model(floats, training=False))
    for name in (SIGNATURE_FLOAT, SIGNATURE_BYTES):
        got = outputs.get(f"{name}/{OUTPUT_SOFTMAX}")
        if got is not None:
            _compare(report, name, got, want, spec, tolerance)
    report.notes.append(f"describe: {facts['describe']}")
    return report
