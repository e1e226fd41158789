"""Versioned SavedModels on disk -> loaded, routable servables (TF Serving's ServerCore in small).

Each model has a base path holding ``<int version>/saved_model.pb`` directories. A
poll compares the directories with the model's version policy (latest N by default,
``all``, or ``specific``), loads what is aspired and missing, and unloads what is no
longer aspired once something else is available (TF Serving's availability-preserving
policy). Requests resolve a name plus an optional version or label to one loaded
version under a lock; a request keeps its version alive even if a poll unloads it.

A version loads the way TF Serving loads it (docs/tf-serving-compat.md §3.3): TensorFlow's
session loader restores the SaverDef's variables into a TF1 graph session, and requests
run ``Session.run`` on the signature's tensor names. A SavedModel that only Python's
object-graph loader can run fails here as it fails in TF Serving. A failed load is
retried ``max_num_load_retries`` times, ``load_retry_interval_s`` apart, then the version
ends with the error. Version labels live in their own map, changed only through
:meth:`ModelRepository.apply_labels` with TF Serving's rules.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tensorflow_serving.apis import get_model_metadata_pb2
from tensorflow_serving.config import model_server_config_pb2

from ._defaults import DEFAULT_LOAD_RETRY_INTERVAL_S, DEFAULT_MAX_NUM_LOAD_RETRIES
from ._status import ServingError, invalid_argument, not_found, tf_error_code_name

logger = logging.getLogger("shixin_client.server")

#: (version, state name, TF error code name, error message) as GetModelStatus reports it.
StatusRow = tuple[int, str, str, str]
SAVED_MODEL_FILES = ("saved_model.pb", "saved_model.pbtxt")
SERVE_TAG = "serve"


@dataclass
class LoadedVersion:
    """One loaded SavedModel version: its TF1 session plus the SignatureDefs that name its tensors."""

    name: str
    version: int
    path: Path
    signature_defs: get_model_metadata_pb2.SignatureDefMap
    #: The ``tf.compat.v1.Session`` the SavedModel was restored into; requests run in it.
    session: Any = field(repr=False)


@dataclass
class _VersionState:
    state: str
    error_code: str = "OK"
    error_message: str = ""


def load_saved_model(name: str, version: int, path: Path) -> LoadedVersion:
    """TF Serving's load: the C++ SavedModel loader into a fresh graph session (restore op, init op)."""
    import tensorflow as tf

    graph = tf.Graph()
    session = tf.compat.v1.Session(graph=graph)
    try:
        with graph.as_default():
            meta_graph = tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(path))
    except BaseException:
        session.close()
        raise
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    for key, signature in meta_graph.signature_def.items():
        if not key.startswith("__"):  # __saved_model_init_op is the loader's, not a signature
            signature_defs.signature_def[key].CopyFrom(signature)
    return LoadedVersion(name, version, path, signature_defs, session)


def load_error_status(exc: BaseException) -> tuple[str, str]:
    """(TF error code name, message) a failed load reports in GetModelStatus."""
    if isinstance(exc, ServingError):
        return exc.code, exc.message
    code = tf_error_code_name(exc)
    if code is not None:
        return code, str(getattr(exc, "message", exc))
    return "UNKNOWN", f"{type(exc).__name__}: {exc}"


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


@dataclass
class _Attempts:
    """A version whose load failed: how often, when the next try is due, and the last error."""

    failures: int
    next_try: float
    error: tuple[str, str]


class _Model:
    def __init__(self, config: model_server_config_pb2.ModelConfig) -> None:
        self.config = config
        self.loaded: dict[int, LoadedVersion] = {}
        self.states: dict[int, _VersionState] = {}
        self.attempts: dict[int, _Attempts] = {}
        #: Versions whose load failed max_num_load_retries + 1 times: END with the error.
        self.failed: set[int] = set()
        self.no_versions_logged = False


class ModelRepository:
    """All configured models; ``poll()`` runs on a worker thread, lookups on the event loop."""

    def __init__(
        self,
        configs: list[model_server_config_pb2.ModelConfig],
        on_load: Callable[[LoadedVersion], None] | None = None,
        *,
        max_num_load_retries: int = DEFAULT_MAX_NUM_LOAD_RETRIES,
        load_retry_interval_s: float = DEFAULT_LOAD_RETRY_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``on_load`` runs on each freshly loaded version (warm-up); if it raises, the load fails."""
        _check_configs(configs)
        if max_num_load_retries < 0 or load_retry_interval_s < 0:
            raise ValueError("max_num_load_retries and load_retry_interval_s must not be negative")
        self._lock = threading.Lock()
        self._poll_lock = threading.Lock()
        self._models = {config.name: _Model(config) for config in configs}
        self._labels: dict[str, dict[str, int]] = {}
        self._on_load = on_load
        self._max_retries = max_num_load_retries
        self._retry_interval_s = load_retry_interval_s
        self._clock = clock

    def missing_base_paths(self) -> list[str]:
        """TF Serving's text for every configured base path that does not exist."""
        return [
            f"Could not find base path {model.config.base_path} for servable {name}"
            for name, model in self._models.items()
            if not Path(model.config.base_path).is_dir()
        ]

    def apply_labels(
        self, configs: list[model_server_config_pb2.ModelConfig], allow_unavailable: bool = False
    ) -> None:
        """Install the configs' version labels with ServerCore's rules (docs/tf-serving-compat.md §3.3).

        A label may point only at an AVAILABLE version. ``allow_unavailable``
        (--allow_version_labels_for_unavailable_models) lifts that for a label that is new
        or keeps its version; a label that moves still needs an AVAILABLE version. On
        failure nothing changes and the FAILED_PRECONDITION is raised.
        """
        with self._lock:
            labels: dict[str, dict[str, int]] = {}
            for config in configs:
                model = self._models.get(config.name)
                available = set(model.loaded) if model is not None else set()
                current = self._labels.get(config.name, {})
                for label, version in config.version_labels.items():
                    moves = label in current and current[label] != version
                    if version not in available and not (allow_unavailable and not moves):
                        raise ServingError(
                            "FAILED_PRECONDITION",
                            f"Request to assign label to version {version} of model {config.name}, "
                            "which is not currently available for inference",
                        )
                labels[config.name] = dict(config.version_labels)
            self._labels = labels

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

    def next_retry_in(self) -> float | None:
        """Seconds until the next failed load is due for a retry; None when none is pending."""
        with self._lock:
            due = [
                a.next_try for m in self._models.values() for v, a in m.attempts.items() if v not in m.failed
            ]
        return max(0.0, min(due) - self._clock()) if due else None

    def unavailable_models(self) -> list[str]:
        """``{name: M version: N}`` for each version whose load failed for good (startup exits on them)."""
        with self._lock:
            return [
                f"{{name: {name} version: {version}}}"
                for name, model in sorted(self._models.items())
                for version in sorted(model.failed)
            ]

    def _poll_model(self, model: _Model) -> None:
        name = model.config.name
        on_disk = version_dirs(Path(model.config.base_path))
        if not on_disk and not model.loaded:
            if not model.no_versions_logged:
                logger.warning(
                    "No versions of servable %s found under base path %s", name, model.config.base_path
                )
            model.no_versions_logged = True
        else:
            model.no_versions_logged = False
        aspired = aspired_versions(model.config, on_disk)
        for version in sorted(aspired - set(model.loaded) - model.failed):
            attempts = model.attempts.get(version)
            if attempts is not None and self._clock() < attempts.next_try:
                continue
            self._load(model, version, on_disk[version])
        for gone in set(model.attempts) - set(on_disk):
            del model.attempts[gone]
        model.failed &= set(on_disk)
        if not aspired & set(model.loaded):
            return
        for version in sorted(set(model.loaded) - aspired):
            with self._lock:
                del model.loaded[version]
                model.states[version] = _VersionState("END")
            logger.info("Unloaded servable version {name: %s version: %d}", name, version)

    def _load(self, model: _Model, version: int, path: Path) -> None:
        name = model.config.name
        self._set_state(model, version, _VersionState("LOADING"))
        try:
            loaded = load_saved_model(name, version, path)
            if self._on_load is not None:
                self._on_load(loaded)
        except Exception as exc:  # a broken SavedModel must not take the server down
            code, message = load_error_status(exc)
            previous = model.attempts.get(version)
            failures = previous.failures + 1 if previous is not None else 1
            model.attempts[version] = _Attempts(
                failures, self._clock() + self._retry_interval_s, (code, message)
            )
            if failures <= self._max_retries:
                logger.error(
                    "Loading servable: {name: %s version: %d} failed: %s: %s. Retrying (%d of %d)",
                    name,
                    version,
                    code,
                    message,
                    failures,
                    self._max_retries,
                )
                return
            logger.error(
                "Loading servable: {name: %s version: %d} failed: %s: %s", name, version, code, message
            )
            model.failed.add(version)
            self._set_state(model, version, _VersionState("END", code, message))
            return
        with self._lock:
            model.attempts.pop(version, None)
            model.loaded[version] = loaded
            model.states[version] = _VersionState("AVAILABLE")
        logger.info("Successfully loaded servable version {name: %s version: %d}", name, version)

    def _set_state(self, model: _Model, version: int, state: _VersionState) -> None:
        with self._lock:
            model.states[version] = state

    def resolve(self, name: str, version: int | None = None, label: str | None = None) -> LoadedVersion:
        """The servable a request names, with TF Serving's errors (§1.8)."""
        with self._lock:
            model = self._models.get(name)
            if label is not None:
                labels = self._labels.get(name, {})
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
