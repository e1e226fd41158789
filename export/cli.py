"""``python -m export``: export a trained model, or check an export.

::

    python -m export --model models/shixin.keras --base-path models --name shixin \\
        [--version N] [--force] [--keep K] [--tflite shixin_client/_assets/shixin.tflite [--int8]]
    python -m export check models/shixin/1 --model models/shixin.keras [--samples DIR]

Exit status 0 on success, 1 when the export or the check fails (one line on stderr
says why), 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from shixin_client._spec import CHARSET, DEFAULT_MODEL_NAME, LABEL_LENGTH, CaptchaSpec

from .samples import from_folder, generated

if TYPE_CHECKING:
    import keras

CHECK_SAMPLES = 32


def _export_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description="Export a trained Keras model as a versioned SavedModel for TF Serving "
        "(and optionally the SDK's embedded LiteRT model). "
        "'python -m export check VERSION_DIR --model M' checks an export.",
    )
    parser.add_argument("--model", required=True, type=Path, help="trained .keras file")
    parser.add_argument(
        "--base-path", type=Path, help="model base path; writes <base-path>/<name>/<version>/"
    )
    parser.add_argument("--name", default=DEFAULT_MODEL_NAME, help="model name (default: %(default)s)")
    parser.add_argument("--version", type=int, help="version number (default: newest + 1)")
    parser.add_argument("--force", action="store_true", help="replace an existing version")
    parser.add_argument("--keep", type=int, help="afterwards keep only the newest K versions")
    parser.add_argument(
        "--tflite", type=Path, help="also write the LiteRT model here, with spec.json beside it"
    )
    parser.add_argument(
        "--int8",
        action="store_true",
        help="with --tflite: also write <name>-int8.tflite, the model with int8 weights, which the SDK "
        "runs first (up to 2x faster, CPU-dependent) and backs with the float model where it is unsure",
    )
    parser.add_argument("--charset", default=CHARSET, help="the model's classes in order (default: 0-9a-z)")
    parser.add_argument("--blank-index", type=int, help="CTC blank class (default: last)")
    parser.add_argument("--label-length", type=int, default=LABEL_LENGTH, help="characters per captcha")
    parser.add_argument(
        "--samples", type=Path, help="folder of images for the warm-up requests (default: generated)"
    )
    parser.add_argument(
        "--check", action="store_true", help="check the new version on generated captchas and the --samples"
    )
    return parser


def _check_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m export check",
        description="Load an exported version in a fresh process the way TF Serving does (TensorFlow's "
        "session loader), print its signatures, run them and every warm-up record on sample images and "
        "compare with the Keras model.",
    )
    parser.add_argument("version_dir", type=Path, help="e.g. models/shixin/1")
    parser.add_argument("--model", required=True, type=Path, help="the .keras file it was exported from")
    parser.add_argument("--samples", type=Path, help="folder of sample images (default: generated captchas)")
    parser.add_argument(
        "--count", type=int, default=CHECK_SAMPLES, help="generated samples (default: %(default)s)"
    )
    parser.add_argument(
        "--tolerance", type=float, default=None, help="max abs softmax difference (default: 1e-5)"
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="interpreter that loads the export, e.g. a venv with the serving image's TensorFlow "
        "(needs numpy, tensorflow and tensorflow-serving-api; default: this one)",
    )
    return parser


def _load(path: Path) -> keras.Model:
    import keras

    if not path.is_file():
        raise FileNotFoundError(f"model file {path} does not exist")
    return keras.models.load_model(path, compile=False)


def _check(
    version_dir: Path,
    model: keras.Model,
    samples: list[bytes],
    tolerance: float | None,
    python: str = sys.executable,
) -> int:
    from .check import DEFAULT_TOLERANCE, run_check

    report = run_check(
        version_dir,
        model,
        samples,
        tolerance=DEFAULT_TOLERANCE if tolerance is None else tolerance,
        python=python,
    )
    for note in report.notes:
        print(note)
    if not report.ok:
        for problem in report.problems:
            print(f"export check FAILED: {problem}", file=sys.stderr)
        return 1
    print(f"export check passed: {report.version_dir}")
    return 0


def run_check_command(args: argparse.Namespace) -> int:
    samples = from_folder(args.samples) if args.samples is not None else generated(args.count)
    return _check(args.version_dir, _load(args.model), samples, args.tolerance, args.python)


def run_export_command(args: argparse.Namespace) -> int:
    from .saved_model import export_model, inference_model, spec_for_model
    from .tflite import write_embedded

    base = CaptchaSpec(
        charset=args.charset,
        blank_index=len(args.charset) if args.blank_index is None else args.blank_index,
        label_length=args.label_length,
    )
    model = inference_model(_load(args.model))
    spec = spec_for_model(model, base)
    folder_samples = from_folder(args.samples) if args.samples is not None else None
    if args.base_path is not None:
        final = export_model(
            model,
            args.base_path,
            args.name,
            version=args.version,
            force=args.force,
            keep=args.keep,
            spec=spec,
            warmup_samples=folder_samples,
        )
        print(f"exported {final}")
        if args.check and _check(final, model, generated(CHECK_SAMPLES) + (folder_samples or []), None):
            return 1
    if args.tflite is not None:
        path = write_embedded(model, args.tflite, spec, int8=args.int8)
        print(f"wrote {path}{' and its int8 companion' if args.int8 else ''} and spec.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    checking = bool(argv) and argv[0] == "check"
    args = _check_parser().parse_args(argv[1:]) if checking else _export_parser().parse_args(argv)
    if not checking and args.base_path is None and args.tflite is None:
        _export_parser().error("give --base-path (SavedModel), --tflite (embedded model) or both")
    if not checking and args.int8 and args.tflite is None:
        _export_parser().error("--int8 needs --tflite (it writes a companion of the embedded model)")
    try:
        return run_check_command(args) if checking else run_export_command(args)
    except (OSError, ValueError) as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
