"""Tiny SavedModels (built once per session) and one shared server for the server tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from shixin_client.server.server import model_config
from shixin_client.server.testing import RunningServer, running_server

PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


def _save_half_plus(path: Path, offset: float) -> None:
    """half_plus_two's shape: y = 0.5 * x + offset, plus a second signature for routing tests."""
    import tensorflow as tf

    class HalfPlus(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": 0.5 * x + offset}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def times_ten(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": 10.0 * x}

    module = HalfPlus()
    tf.saved_model.save(
        module, str(path), signatures={"serving_default": module.predict, "times_ten": module.times_ten}
    )


def _save_toolbox(path: Path) -> None:
    """Signatures that exercise the JSON corners: several outputs, several inputs, strings, rank 0."""
    import tensorflow as tf

    class Toolbox(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.calls = tf.Variable(0, dtype=tf.int64)

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def two_outputs(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"sum": tf.reduce_sum(x, axis=1), "scaled": 2.0 * x}

        @tf.function(input_signature=[tf.TensorSpec([None, 2], tf.float32, name="x")])
        def total(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"total": tf.reduce_sum(x)}

        @tf.function(
            input_signature=[
                tf.TensorSpec([None], tf.float32, name="a"),
                tf.TensorSpec([None], tf.int32, name="b"),
            ]
        )
        def two_inputs(self, a: tf.Tensor, b: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"a_plus_b": a + tf.cast(b, tf.float32)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="s")])
        def strings(self, s: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"echo": s, "echo_bytes": s, "length": tf.strings.length(s)}

        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def counter(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            # Each TensorFlow call gets its own number, so merged requests share one.
            call = self.calls.assign_add(1)
            return {"call": tf.fill(tf.shape(x), call), "x": x}

    module = Toolbox()
    signatures = {
        "serving_default": module.two_outputs,
        "total": module.total,
        "two_inputs": module.two_inputs,
        "strings": module.strings,
        "counter": module.counter,
    }
    tf.saved_model.save(module, str(path), signatures=signatures)


def _save_png_model(path: Path) -> None:
    """Decodes PNG files in-graph, like the export's serving_bytes signature."""
    import tensorflow as tf

    class Png(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="image_bytes")])
        def mean(self, image_bytes: tf.Tensor) -> dict[str, tf.Tensor]:
            def one(data: tf.Tensor) -> tf.Tensor:
                pixels = tf.io.decode_png(data, channels=1)
                return tf.reduce_mean(tf.cast(pixels, tf.float32))

            return {"mean": tf.map_fn(one, image_bytes, fn_output_signature=tf.float32)}

    module = Png()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.mean})


@pytest.fixture(scope="session")
def model_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("server_models")
    _save_half_plus(root / "half" / "1", 2.0)
    _save_half_plus(root / "half" / "2", 3.0)
    (root / "half" / "tmp-3").mkdir()  # not an integer: ignored
    (root / "half" / "7").mkdir()  # no saved_model.pb (half written): ignored
    _save_toolbox(root / "toolbox" / "1")
    _save_png_model(root / "png" / "1")
    return root


@pytest.fixture()
def half_copy(model_root: Path, tmp_path: Path) -> Path:
    """A private copy of the half model that a test may add versions to."""
    base = tmp_path / "half"
    base.mkdir()
    shutil.copytree(model_root / "half" / "1", base / "1")
    return base


def serving_configs(model_root: Path) -> list:
    half = model_config("half", str(model_root / "half"))
    half.model_version_policy.all.SetInParent()
    half.version_labels["stable"] = 1
    half.version_labels["canary"] = 2
    return [
        half,
        model_config("toolbox", str(model_root / "toolbox")),
        model_config("png", str(model_root / "png")),
    ]


@pytest.fixture(scope="session")
def server(model_root: Path) -> Iterator[RunningServer]:
    with running_server(
        models=serving_configs(model_root),
        prometheus_path=PROMETHEUS_PATH,
        max_request_bytes=256 * 1024,
        file_system_poll_wait_seconds=0,
        # The config labels versions, which TF Serving accepts at startup only with this (§3.3).
        allow_version_labels_for_unavailable_models=True,
    ) as running:
        yield running
