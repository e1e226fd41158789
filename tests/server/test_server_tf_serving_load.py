"""Loading a version the way TF Serving loads it (docs/tf-serving-compat.md §3.3).

Each test names the TF Serving source it follows: ``saved_model_bundle_factory.cc`` and
TensorFlow's ``cc/saved_model/loader.cc`` (session loader), ``saved_model_warmup.cc``
(warm-up replay), ``aspired_versions_manager.cc`` (load retries), ``server_core.cc``
(labels before models; a moved label needs an AVAILABLE version; "Some models did not
become available") and ``file_system_storage_path_source.cc`` (a missing base path).
"""

from __future__ import annotations

import logging
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import requests

from shixin_client.server._status import ServingError, tf_error_code_name
from shixin_client.server.cli import main as serve_main
from shixin_client.server.server import model_config
from shixin_client.server.testing import running_server

from .test_server_lifecycle import free_port

LABEL_ERROR = (
    "Request to assign label to version {v} of model half, which is not currently available for inference"
)


def _save_keras_in_module(path: Path, warmup: bool) -> None:
    """The Keras 3 trap: a tf.Module holding the model as an attribute, saved by tf.saved_model.save.

    Python's loader runs it; in a TF1 session the restore op fills another set of variables
    than the functions read, so every call fails with FAILED_PRECONDITION.
    """
    import keras
    import tensorflow as tf

    inputs = keras.Input((3,), name="x")
    model = keras.Model(inputs, keras.layers.Dense(2, name="dense")(inputs))

    class Holder(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        @tf.function(input_signature=[tf.TensorSpec([None, 3], tf.float32, name="x")])
        def serve(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": self.model(x)}

    holder = Holder()
    tf.saved_model.save(holder, str(path), signatures={"serving_default": holder.serve})
    assert tf.saved_model.load(str(path)).signatures["serving_default"](x=tf.ones([1, 3]))["y"].shape == (
        1,
        2,
    )
    if warmup:
        _write_warmup(path, "x", np.ones((1, 3), np.float32))


def _write_warmup(version_dir: Path, alias: str, value: np.ndarray) -> None:
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_log_pb2

    request = predict_pb2.PredictRequest()
    request.inputs[alias].CopyFrom(tf.make_tensor_proto(value))
    log = prediction_log_pb2.PredictionLog(predict_log=prediction_log_pb2.PredictLog(request=request))
    path = version_dir / "assets.extra" / "tf_serving_warmup_requests"
    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        writer.write(log.SerializeToString())


def _status(server: object, model: str) -> dict[str, dict]:
    url = f"{server.rest_url}/v1/models/{model}"  # type: ignore[attr-defined]
    rows = requests.get(url, timeout=10).json().get("model_version_status", [])
    return {row["version"]: row for row in rows}


def _wait_for(condition: object, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


# The session loader ---------------------------------------------------------------------------


def test_a_keras3_module_loads_but_every_call_fails_as_in_tf_serving(tmp_path: Path) -> None:
    # loader.cc restores the SaverDef's variables; Session::Run then finds the functions' own
    # variables missing. Without warm-up the version is AVAILABLE and each request fails.
    _save_keras_in_module(tmp_path / "m" / "1", warmup=False)
    with running_server(tmp_path / "m", "m", file_system_poll_wait_seconds=0) as server:
        assert _status(server, "m")["1"]["state"] == "AVAILABLE"
        response = requests.post(
            f"{server.rest_url}/v1/models/m:predict", json={"instances": [[1.0, 2.0, 3.0]]}, timeout=10
        )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("Could not find variable dense/")
    assert "Graph execution error" not in error


def test_a_keras3_module_with_warmup_never_becomes_available(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # saved_model_warmup.cc: one failing record fails the load; aspired_versions_manager.cc
    # retries it max_num_load_retries times; server_core.cc then gives up at startup.
    _save_keras_in_module(tmp_path / "m" / "1", warmup=True)
    with caplog.at_level(logging.ERROR, logger="shixin_client.server"):
        with pytest.raises(ServingError) as info:
            with running_server(tmp_path / "m", "m", file_system_poll_wait_seconds=0, max_num_load_retries=2):
                pass
    assert info.value.code == "UNKNOWN"
    assert info.value.message == "Some models did not become available: {{name: m version: 1}, }"
    attempts = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Loading servable")]
    assert len(attempts) == 3, attempts
    assert "Retrying (2 of 2)" in attempts[1]
    assert "FAILED_PRECONDITION: Warm-up record 0" in attempts[2]
    assert "Could not find variable dense/" in attempts[2]


def test_a_failed_later_version_is_retried_then_ends_while_the_old_one_serves(
    half_copy: Path, tmp_path: Path
) -> None:
    config = model_config("half", str(half_copy))
    config.model_version_policy.all.SetInParent()
    with running_server(
        models=[config], file_system_poll_wait_seconds=0.05, max_num_load_retries=3, load_retry_interval_s=0.3
    ) as server:
        _save_keras_in_module(tmp_path / "staging", warmup=True)
        shutil.copytree(tmp_path / "staging", half_copy / "2")
        _wait_for(lambda: "2" in _status(server, "half"))
        assert _status(server, "half")["2"]["state"] == "LOADING"  # between retries
        _wait_for(lambda: _status(server, "half")["2"]["state"] == "END")
        row = _status(server, "half")["2"]
        assert row["status"]["error_code"] == "FAILED_PRECONDITION"
        assert "Could not find variable dense/" in row["status"]["error_message"]
        assert _status(server, "half")["1"]["state"] == "AVAILABLE"
        response = requests.post(f"{server.rest_url}/v1/models/half:predict", json={"instances": [2.0]})
        assert response.json() == {"predictions": [3.0]}


def test_warmup_records_are_replayed_and_a_bad_one_fails_that_version(
    half_copy: Path, model_root: Path
) -> None:
    _write_warmup(half_copy / "1", "x", np.ones(2, np.float32))
    config = model_config("half", str(half_copy))
    config.model_version_policy.all.SetInParent()
    with running_server(models=[config], file_system_poll_wait_seconds=0.05) as server:
        shutil.copytree(model_root / "half" / "2", half_copy / ".staging")
        _write_warmup(half_copy / ".staging", "not_x", np.ones(2, np.float32))
        (half_copy / ".staging").rename(half_copy / "2")
        _wait_for(lambda: _status(server, "half").get("2", {}).get("state") == "END")
        rows = _status(server, "half")
    assert rows["1"]["state"] == "AVAILABLE"
    assert rows["2"]["status"]["error_code"] == "INVALID_ARGUMENT"
    assert "input tensor alias not found in signature: not_x" in rows["2"]["status"]["error_message"]


def test_tf_error_classes_keep_their_status_code() -> None:
    import tensorflow as tf

    assert tf_error_code_name(tf.errors.FailedPreconditionError(None, None, "x")) == "FAILED_PRECONDITION"
    assert tf_error_code_name(tf.errors.InvalidArgumentError(None, None, "x")) == "INVALID_ARGUMENT"
    assert tf_error_code_name(tf.errors.ResourceExhaustedError(None, None, "x")) == "RESOURCE_EXHAUSTED"
    assert tf_error_code_name(ValueError("x")) is None


# Labels ---------------------------------------------------------------------------------------


def test_startup_labels_need_the_flag(model_root: Path, caplog: pytest.LogCaptureFixture) -> None:
    # server_core.cc applies the label map before the first load, when nothing is AVAILABLE.
    config = model_config("half", str(model_root / "half"))
    config.model_version_policy.all.SetInParent()
    config.version_labels["stable"] = 1
    with pytest.raises(ServingError) as info:
        with running_server(models=[config], file_system_poll_wait_seconds=0):
            pass
    assert (info.value.code, info.value.message) == ("FAILED_PRECONDITION", LABEL_ERROR.format(v=1))
    with running_server(
        models=[config], file_system_poll_wait_seconds=0, allow_version_labels_for_unavailable_models=True
    ) as server:
        response = requests.post(
            f"{server.rest_url}/v1/models/half/labels/stable:predict", json={"instances": [2.0]}, timeout=10
        )
        assert response.json() == {"predictions": [3.0]}


def test_serve_exits_on_startup_labels_without_the_flag(
    model_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config_file = tmp_path / "models.config"
    config_file.write_text(
        f"model_config_list {{ config {{ name: 'half' base_path: '{model_root / 'half'}' "
        "model_platform: 'tensorflow' version_labels { key: 'stable' value: 1 } } }\n"
    )
    with caplog.at_level(logging.ERROR, logger="shixin_client.server"):
        code = serve_main(
            [
                f"--model_config_file={config_file}",
                f"--port={free_port()}",
                "--file_system_poll_wait_seconds=0",
            ]
        )
    assert code == 1
    assert LABEL_ERROR.format(v=1) in caplog.text


def _labelled_config(base: Path, versions: list[int], canary: int) -> str:
    listed = " ".join(f"versions: {v}" for v in versions)
    return (
        f"model_config_list {{ config {{ name: 'half' base_path: '{base}' model_platform: 'tensorflow' "
        f"model_version_policy {{ specific {{ {listed} }} }} "
        "version_labels { key: 'stable' value: 1 } "
        f"version_labels {{ key: 'canary' value: {canary} }} }} }}\n"
    )


def test_a_label_moves_only_onto_an_available_version(
    half_copy: Path, model_root: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # server_core.cc: even with the flag, an existing label moves only onto an AVAILABLE
    # version, and the label map is applied before the new config's versions load, so the
    # one-edit canary fails on every poll and version 2 never loads.
    from shixin_client.server._config_files import read_model_server_config

    shutil.copytree(model_root / "half" / "2", half_copy / "2")
    config_file = tmp_path / "models.config"
    config_file.write_text(_labelled_config(half_copy, [1], canary=1))
    with running_server(
        models=read_model_server_config(str(config_file)),
        model_config_file=str(config_file),
        model_config_file_poll_wait_seconds=0.05,
        file_system_poll_wait_seconds=0,
        allow_version_labels_for_unavailable_models=True,
    ) as server:
        with caplog.at_level(logging.ERROR, logger="shixin_client.server"):
            config_file.write_text(_labelled_config(half_copy, [1, 2], canary=2))
            _wait_for(lambda: caplog.text.count(LABEL_ERROR.format(v=2)) >= 3)
        assert set(_status(server, "half")) == {"1"}
        # Two edits: list version 2, wait until it is AVAILABLE, then move the label.
        config_file.write_text(_labelled_config(half_copy, [1, 2], canary=1))
        _wait_for(lambda: _status(server, "half").get("2", {}).get("state") == "AVAILABLE")
        config_file.write_text(_labelled_config(half_copy, [1, 2], canary=2))
        url = f"{server.rest_url}/v1/models/half/labels/canary/metadata"
        _wait_for(lambda: requests.get(url, timeout=10).json()["model_spec"]["version"] == "2")


# Base paths -----------------------------------------------------------------------------------


def test_a_missing_base_path_stops_the_start_unless_asked_to_wait(model_root: Path, tmp_path: Path) -> None:
    missing = tmp_path / "not-there"
    with pytest.raises(ServingError) as info:
        with running_server(missing, "m", file_system_poll_wait_seconds=0):
            pass
    assert f"Could not find base path {missing} for servable m" in info.value.message
    with running_server(missing, "m", file_system_poll_wait_seconds=0.05, wait_for_models=True) as server:
        assert requests.get(f"{server.rest_url}/v1/models/m", timeout=10).status_code == 404
        shutil.copytree(model_root / "half" / "1", tmp_path / "staging" / "1")
        (tmp_path / "staging").rename(missing)
        _wait_for(lambda: _status(server, "m").get("1", {}).get("state") == "AVAILABLE")


def test_serve_help_shows_examples(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main(["--help"]) == 0
    examples = capsys.readouterr().out.partition("\nexamples:\n")[2].splitlines()
    assert examples and all(line.lstrip().startswith("shixin serve ") for line in examples)
