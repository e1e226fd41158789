"""Versioned SavedModels on disk -> loaded, routable servables (TF Serving's ServerCore in small).

Each model has a base path holding ``<int version>/saved_model.pb`` directories. A
poll compares the directories with the model's version policy (latest N by default,
``all``, or ``specific``), loads what is aspired and missing, and unloads what is no
longer aspired once something else is available (TF Serving's availability-preserving
policy). Requests resolve a name plus an optional version or label to one loaded
version under a lock; a request keeps its version alive even if a poll unloads it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.config import model_server_config_pb2

from ._status import ServingError, invalid_argument, not_found

logger = logging.getLogger("shixin_client.server")

#: (version, state name, TF error code name, error message) as GetModelStatus reports it.
StatusRow = tuple[int, str, str, str]
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
SERVE_TAG = "serve"


@dataclass
class LoadedVersion:
    """One loaded SavedModel version: callable signatures plus their SignatureDefs for metadata."""

    name: str
    version: int
    path: Path
    signature_defs: get_model_metadata_pb2.SignatureDefMap
    functions: dict[str, Any]
    #: The object returned by tf.saved_model.load; the functions need it alive.
    module: Any = field(repr=False)


@dataclass
class _VersionState:
    state: str
    error_code: str = "OK"
    error_message: str = ""


def load_saved_model(name: str, version: int, path: Path) -> LoadedVersion:
    import tensorflow as tf
    from tensorflow.core.protobuf import saved_model_pb2

    saved_model = saved_model_pb2.SavedModel()
    pb_path = path / SAVED_MODEL_FILES[0]
    if pb_path.exists():
        saved_model.ParseFromString(pb_path.read_bytes())
    else:
        from google.protobuf import text_format

        text_format.Parse((path / SAVED_MODEL_FILES[1]).read_text(encoding="utf-8"), saved_model)
    graphs = [graph for graph in saved_model.meta_graphs if SERVE_TAG in graph.meta_info_def.tags]
    if not graphs:
        raise ValueError(f"SavedModel {path} has no MetaGraph tagged {SERVE_TAG!r}")
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in graphs[0].signature_def.items():
        signature_defs.signature_def[key].CopyFrom(signature)
    module = tf.saved_model.load(str(path), tags=[SERVE_TAG])
    functions = dict(module.signatures.items())
    return LoadedVersion(name, version, path, signature_defs, functions, module)


def version_dirs(base_path: Path) -> dict[int, Path]:
    """Non-negative integer directories holding a SavedModel; anything else (temp dirs) is ignored."""
    found: dict[int, Path] = {}
    try:
        entries = list(base_path.iterdir())
    except OSError:
        return found
    for entry in entries:
        if not entry.name.isdigit() or not entry.is_dir():
            continue
        if any((entry / name).is_file() for name in SAVED_MODEL_FILES):
            found[int(entry.name)] = entry
    return found


def aspired_versions(config: model_server_config_pb2.ModelConfig, on_disk: Iterable[int]) -> set[int]:
    """§3.2: latest N (default 1), all, or specific versions."""
    versions = sorted(on_disk)
    policy = config.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return set(versions)
    if choice == "specific":
        return set(versions) & set(policy.specific.versions)
    count = policy.latest.num_versions if choice == "latest" and policy.latest.num_versions > 0 else 1
    return set(versions[-count:])


def _check_configs(configs: list[model_server_config_pb2.ModelConfig]) -> None:
    names = [config.name for config in configs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ValueError(f"model names must be unique in the config; repeated: {', '.join(duplicates)}")
    for config in configs:
        if not config.name or not config.base_path:
            raise ValueError(f"every model config needs a name and a base_path; got {config!r}")


class _Model:
    def __init__(self, config: model_server_config_pb2.ModelConfig) -> None:
        self.config = config
        self.loaded: dict[int, LoadedVersion] = {}
        self.states: dict[int, _VersionState] = {}
        self.failed: set[int] = set()


class ModelRepository:
    """All configured models; ``poll()`` runs on a worker thread, lookups on the event loop."""

    def __init__(
        self,
        configs: list[model_server_config_pb2.ModelConfig],
        on_load: Callable[[LoadedVersion], None] | None = None,
    ) -> None:
        """``on_load`` runs on each freshly loaded version (warm-up); if it raises, the load fails."""
        _check_configs(configs)
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._models = {config.name: _Model(config) for config in configs}
        self._on_load = on_load

    def replace_configs(self, configs: list[model_server_config_pb2.ModelConfig]) -> None:
        """Serve exactly these models from now on (§2 HandleReloadConfigRequest): models left
        out are unloaded, kept ones keep their loaded versions, and a poll runs at once."""
        _check_configs(configs)
        with self._poll_lock:
            with self._lock:
                models = {}
                for config in configs:
                    model = self._models.get(config.name)
                    if model is None or model.config.base_path != config.base_path:
                        model = _Model(config)
                    model.config = config
                    models[config.name] = model
                removed = sorted(set(self._models) - set(models))
                self._models = models
            for name in removed:
                logger.info("Unloaded all versions of model %s: it is no longer in the config", name)
            for model in list(models.values()):
                self._poll_model(model)

    def poll(self) -> None:
        """Bring every model's loaded versions in line with its directory and policy."""
        with self._poll_lock:
            for model in list(self._models.values()):
                self._poll_model(model)

    def _poll_model(self, model: _Model) -> None:
        name = model.config.name
        on_disk = version_dirs(Path(model.config.base_path))
        if not on_disk and not model.loaded:
            logger.warning(
                "No versions of servable %s found under base path %s", name, model.config.base_path
            )
        aspired = aspired_versions(model.config, on_disk)
        for version in sorted(aspired - set(model.loaded) - model.failed):
            self._set_state(model, version, _VersionState("LOADING"))
            try:
                loaded = load_saved_model(name, version, on_disk[version])
                if self._on_load is not None:
                    self._on_load(loaded)
            except Exception as exc:  # a broken SavedModel must not take the server down
                logger.error("Loading servable: {name: %s version: %d} failed: %s", name, version, exc)
                model.failed.add(version)
                self._set_state(
                    model, version, _VersionState("END", "UNKNOWN", f"{type(exc).__name__}: {exc}")
                )
                continue
            with self._lock:
                model.loaded[version] = loaded
                model.states[version] = _VersionState("AVAILABLE")
            logger.info("Successfully loaded servable version {name: %s version: %d}", name, version)
        model.failed &= set(on_disk)
        if not aspired & set(model.loaded):
            return
        for version in sorted(set(model.loaded) - aspired):
            with self._lock:
                del model.loaded[version]
                model.states[version] = _VersionState("END")
            logger.info("Unloaded servable version {name: %s version: %d}", name, version)

    def _set_state(self, model: _Model, version: int, state: _VersionState) -> None:
        with self._lock:
            model.states[version] = state

    def check_labels(self, allow_unavailable: bool = False) -> None:
        """§3.2: a label may only point at an AVAILABLE version (unless explicitly allowed)."""
        if allow_unavailable:
            return
        with self._lock:
            for model in self._models.values():
                for version in model.config.version_labels.values():
                    if version not in model.loaded:
                        raise ServingError(
                            "FAILED_PRECONDITION",
                            f"Request to assign label to version {version} of model {model.config.name}, "
                            "which is not currently available for inference",
                        )

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> LoadedVersion:
        """The servable a request names, with TF Serving's errors (§1.8)."""
        with self._lock:
            model = self._models.get(name)
            if label is not None:
                labels = model.config.version_labels if model is not None else {}
                if label not in labels:
                    raise invalid_argument(f"Unrecognized servable version label: {label}")
                version = labels[label]
            if version is not None:
                loaded = model.loaded.get(version) if model is not None else None
                if loaded is None:
                    raise not_found(f"Servable not found for request: Specific({name}, {version})")
                return loaded
            if model is None or not model.loaded:
                raise not_found(f"Servable not found for request: Latest({name})")
            return model.loaded[max(model.loaded)]

    def status(self, name: str, version: int | None = None) -> list[StatusRow]:
        """(version, state, error code, error message) rows, newest first (§1.7)."""
        with self._lock:
            model = self._models.get(name)
            states = dict(model.states) if model is not None else {}
        if not states:
            raise not_found(f"Could not find any versions of model {name}")
        if version is not None:
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name}")
            states = {version: states[version]}
        return [
            (number, state.state, state.error_code, state.error_message)
            for number, state in sorted(states.items(), reverse=True)
        ]
