"""What the rows share: counts, the images, and the model in every form the rows call it in.

The trained model (``models/shixin.keras``, the embedded ``shixin_client/_assets/shixin.tflite``)
is used when present. Until then an untrained ``build_model("default")`` stands in: the
timings do not depend on the weights, and the accuracy rows say "pending model". Each
artefact is made on first use, so a run of a few light rows never imports TensorFlow.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from shixin_client._scoring import label_of
from shixin_client._spec import DEFAULT_MODEL_NAME
from shixin_client._transports.local import DEFAULT_MODEL_PATH

ROOT = Path(__file__).resolve().parent.parent
TRAINED_KERAS = ROOT / "models" / "shixin.keras"
#: The presets trained from scratch on the same data (models/README.md, "Default vs seed"):
#: ``default`` and ``seed`` by one command (same epochs), ``default-equal-time`` for the
#: epochs that fit in ``seed``'s training minutes. Accuracy is only comparable between runs
#: with a stated equal budget.
PRESET_RUNS = ROOT / "runs" / "presets"
#: The two real site captchas kept in the repository, raw and binarized (datasets/README.md).
REAL_SAMPLES = ROOT / "datasets" / "real"
#: 1,000 captchas drawn by the real Java Patchca library, with families.csv (datasets/README.md).
JAVA_EVAL = ROOT / "datasets" / "patchca-java-eval"
#: Quiet TensorFlow's C++ start-up chatter in this process and in every child.
QUIET_TF = {"TF_CPP_MIN_LOG_LEVEL": "3"}


@dataclass(frozen=True)
class Counts:
    """How much each row measures; ``--quick`` takes the small set."""

    import_repeats: int
    generated_images: int
    cpu_calls: int
    cpu_rounds: int
    latency_calls: int
    latency_rounds: int
    callers: int
    images_per_caller: int
    decode_batch: int
    decode_rounds: int
    beam_rows: int
    embedded_rounds: int
    model_batch: int
    model_rounds: int
    accuracy_images: int
    preset_accuracy_images: int
    generator_images: int
    process_runs: int
    #: The first this many captchas of the real-library set; None: all of them.
    java_eval_images: int | None
    training_steps: int
    #: Labelled captchas in row 15's timed fine-tuning epoch.
    finetune_captchas: int


FULL = Counts(
    import_repeats=5,
    generated_images=64,
    cpu_calls=20,
    cpu_rounds=5,
    latency_calls=40,
    latency_rounds=5,
    callers=8,
    images_per_caller=40,
    decode_batch=256,
    decode_rounds=7,
    beam_rows=256,
    embedded_rounds=9,
    model_batch=32,
    model_rounds=5,
    accuracy_images=1000,
    # Presets 1 point apart need 10,000 (one standard error is 0.35 points, 1.1 at 1,000): the
    # same 10,000 test captchas models/README.md reports for them.
    preset_accuracy_images=10_000,
    generator_images=500,
    process_runs=5,
    java_eval_images=None,
    training_steps=40,
    finetune_captchas=256,
)
QUICK = Counts(
    import_repeats=3,
    generated_images=8,
    cpu_calls=5,
    cpu_rounds=3,
    latency_calls=10,
    latency_rounds=3,
    callers=8,
    images_per_caller=5,
    decode_batch=256,
    decode_rounds=3,
    beam_rows=16,
    embedded_rounds=1,
    model_batch=8,
    model_rounds=2,
    accuracy_images=16,
    preset_accuracy_images=16,
    generator_images=10,
    process_runs=1,
    java_eval_images=20,
    training_steps=2,
    finetune_captchas=16,
)


@dataclass(frozen=True)
class Sample:
    name: str
    data: bytes
    label: str


def real_samples(folder: Path = REAL_SAMPLES) -> list[Sample]:
    """Every real captcha under ``folder``, labelled by its file name (the reference naming)."""
    if not folder.is_dir():
        return []
    return [
        Sample(f"{path.parent.name}/{path.name}", path.read_bytes(), label_of(str(path)))
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    ]


def generated_samples(count: int, mode: str = "mixed") -> list[Sample]:
    """Captchas from the training code's test seed, which no model is trained on.

    ``mode`` is one of ``training.evaluate.MODES``: ``mixed`` (the generator's own draw of
    faithful and wide captchas), ``faithful`` (Patchca's own ranges, as the site draws) or ``wide``.
    """
    from training.evaluate import MODES
    from training.generator import captcha_at, png_bytes
    from training.train import TEST_SEED

    wide = MODES[mode]
    samples = []
    for index in range(count):
        captcha = captcha_at(TEST_SEED, index) if wide is None else captcha_at(TEST_SEED, index, wide=wide)
        samples.append(Sample(f"seed {TEST_SEED} #{index} ({mode})", png_bytes(captcha), captcha.label))
    return samples


@dataclass(frozen=True)
class Server:
    """A server started outside the harness (TF Serving by ``serving/run.sh``) for rows 5 and 6."""

    grpc: str  # host:port
    rest: str  # http://host:port


class Context:
    """Counts, images and model artefacts for one run; ``close()`` removes the temporary exports.

    ``server``, when given, is what rows 5 and 6 call instead of starting shixin_client.server.
    """

    def __init__(self, counts: Counts, quick: bool, server: Server | None = None) -> None:
        self.counts = counts
        self.quick = quick
        self.server = server
        self._preset_runs: dict[str, tuple[Any, Path] | None] = {}
        self._tmp = tempfile.TemporaryDirectory(prefix="shixin-bench-")
        self.tmp = Path(self._tmp.name)

    def close(self) -> None:
        self._tmp.cleanup()

    @cached_property
    def real(self) -> list[Sample]:
        return real_samples()

    @cached_property
    def generated(self) -> list[Sample]:
        return generated_samples(self.counts.generated_images)

    @cached_property
    def accuracy_set(self) -> list[Sample]:
        """The generated images accuracy is measured on (a superset of ``generated``)."""
        return generated_samples(max(self.counts.accuracy_images, self.counts.generated_images))

    @cached_property
    def faithful_set(self) -> list[Sample]:
        """Faithful generated test captchas, as many as the presets' set (rows 13c and 13d)."""
        return generated_samples(self.counts.preset_accuracy_images, "faithful")

    @cached_property
    def preset_accuracy_set(self) -> list[Sample]:
        """The generated images the presets' accuracy is measured on (rows 9b-9e)."""
        return generated_samples(self.counts.preset_accuracy_images)

    @property
    def trained(self) -> bool:
        return TRAINED_KERAS.is_file()

    @property
    def embedded_trained(self) -> bool:
        return DEFAULT_MODEL_PATH.is_file()

    @property
    def model_source(self) -> str:
        if self.trained:
            return f"trained {TRAINED_KERAS.relative_to(ROOT)}"
        return 'untrained build_model("default") (no models/shixin.keras yet)'

    @cached_property
    def keras_model(self) -> Any:
        """The default preset as Keras: trained if it exists, else freshly initialised."""
        import keras

        if self.trained:
            return keras.models.load_model(TRAINED_KERAS, compile=False)
        from training.model import build_model

        keras.utils.set_random_seed(0)
        return build_model("default")

    @cached_property
    def seed_preset(self) -> tuple[Any, Path | None]:
        """The reference-sized ``seed`` preset and the file its weights came from (None: untrained)."""
        import keras

        trained = self.preset_run("seed")
        if trained is not None:
            return trained
        from training.model import build_model

        keras.utils.set_random_seed(0)
        return build_model("seed"), None

    def preset_run(self, run: str) -> tuple[Any, Path] | None:
        """The best model of ``runs/presets/<run>`` and its path, if that run exists (loaded once)."""
        if run not in self._preset_runs:
            self._preset_runs[run] = _preset_run(run)
        return self._preset_runs[run]

    @cached_property
    def model_dir(self) -> Path:
        """The model's base path as TF Serving takes it (``--model_base_path``), holding version ``1``."""
        from export.saved_model import export_model

        return export_model(self.keras_model, self.tmp / "models", DEFAULT_MODEL_NAME, version=1).parent

    @cached_property
    def signatures(self) -> Any:
        """The exported SavedModel loaded in this process (the in-process baseline of rows 5 and 6)."""
        import tensorflow as tf

        loaded = tf.saved_model.load(str(self.model_dir / "1"))
        self._loaded = loaded  # the signatures need their SavedModel object alive
        return loaded.signatures

    @cached_property
    def tflite(self) -> Path:
        """The embedded model: the shipped asset when it exists, else the stand-in converted here."""
        if self.embedded_trained:
            return DEFAULT_MODEL_PATH
        from export.tflite import write_embedded

        return write_embedded(self.keras_model, self.tmp / "embedded" / "shixin.tflite")


def _preset_run(preset: str) -> tuple[Any, Path] | None:
    """The best model of ``runs/presets/<preset>`` and its path, if that run exists."""
    import keras

    path = PRESET_RUNS / preset / "best.keras"
    return (keras.models.load_model(path, compile=False), path) if path.is_file() else None
