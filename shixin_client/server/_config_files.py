"""tensorflow_model_server's text-proto config files (docs/tf-serving-compat.md §3.2).

ModelServerConfig comes from tensorflow-serving-api. BatchingParameters,
MonitoringConfig and SSLConfig are not in that wheel, so their messages are declared here with TF
Serving's field names and numbers, in a private descriptor pool so they can never
clash with a package that ships the real ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory, text_format, wrappers_pb2
from tensorflow_serving.config import model_server_config_pb2

#: §3.2: the Prometheus path when the monitoring config names none.
DEFAULT_PROMETHEUS_PATH = "/monitoring/prometheus/metrics"


class ConfigFileError(ValueError):
    """A config file is missing or is not valid text proto for its message."""


def _declare_messages() -> dict[str, Any]:
    file_proto = descriptor_pb2.FileDescriptorProto(
        name="shixin_client/server/tf_serving_configs.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )

    def add(message: str, fields: list[tuple[str, int, int, int, str]]) -> None:
        proto = file_proto.message_type.add(name=message)
        for name, number, kind, label, type_name in fields:
            field = proto.field.add(name=name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name

    f = descriptor_pb2.FieldDescriptorProto
    one, many = f.LABEL_OPTIONAL, f.LABEL_REPEATED
    int64_value, string_value, bool_value = (
        ".google.protobuf.Int64Value",
        ".google.protobuf.StringValue",
        ".google.protobuf.BoolValue",
    )
    add(
        "BatchingParameters",
        [
            ("max_batch_size", 1, f.TYPE_MESSAGE, one, int64_value),
            ("batch_timeout_micros", 2, f.TYPE_MESSAGE, one, int64_value),
            ("max_enqueued_batches", 3, f.TYPE_MESSAGE, one, int64_value),
            ("num_batch_threads", 4, f.TYPE_MESSAGE, one, int64_value),
            ("thread_pool_name", 5, f.TYPE_MESSAGE, one, string_value),
            ("allowed_batch_sizes", 6, f.TYPE_INT64, many, ""),
            ("pad_variable_length_inputs", 7, f.TYPE_BOOL, one, ""),
            ("enable_large_batch_splitting", 8, f.TYPE_MESSAGE, one, bool_value),
            ("max_execution_batch_size", 9, f.TYPE_MESSAGE, one, int64_value),
        ],
    )
    add(
        "SSLConfig",
        [
            ("server_key", 1, f.TYPE_STRING, one, ""),
            ("server_cert", 2, f.TYPE_STRING, one, ""),
            ("custom_ca", 3, f.TYPE_STRING, one, ""),
            ("client_verify", 4, f.TYPE_BOOL, one, ""),
        ],
    )
    add("PrometheusConfig", [("enable", 1, f.TYPE_BOOL, one, ""), ("path", 2, f.TYPE_STRING, one, "")])
    add(
        "MonitoringConfig",
        [("prometheus_config", 1, f.TYPE_MESSAGE, one, ".tensorflow.serving.PrometheusConfig")],
    )
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(wrappers_pb2.DESCRIPTOR.serialized_pb)
    pool.Add(file_proto)
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"tensorflow.serving.{name}"))
        for name in ("BatchingParameters", "MonitoringConfig", "SSLConfig")
    }


_MESSAGES = _declare_messages()


def _parse(path: str, message: Any, what: str) -> Any:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigFileError(f"cannot read {what} {path!r}: {exc.strerror}") from exc
    try:
        return text_format.Parse(text, message)
    except text_format.ParseError as exc:
        raise ConfigFileError(
            f"{what} {path!r} is not a valid {message.DESCRIPTOR.name} text proto: {exc}"
        ) from exc


def read_model_server_config(path: str) -> list[model_server_config_pb2.ModelConfig]:
    """The models of a ``--model_config_file``; only ``model_config_list`` is supported, as in §2."""
    config = _parse(path, model_server_config_pb2.ModelServerConfig(), "model config file")
    if config.WhichOneof("config") != "model_config_list":
        raise ConfigFileError(f"model config file {path!r} must contain a model_config_list")
    return list(config.model_config_list.config)


@dataclass(frozen=True)
class BatchingOptions:
    """The BatchingParameters this server honours, with TF Serving's defaults."""

    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    num_batch_threads: int = 4

    def __post_init__(self) -> None:
        if self.max_batch_size <= 0:
            raise ConfigFileError(f"max_batch_size must be positive, got {self.max_batch_size}")
        if self.batch_timeout_micros < 0:
            raise ConfigFileError(
                f"batch_timeout_micros must not be negative, got {self.batch_timeout_micros}"
            )
        if self.num_batch_threads <= 0:
            raise ConfigFileError(f"num_batch_threads must be positive, got {self.num_batch_threads}")


def read_batching_parameters(path: str) -> BatchingOptions:
    params = _parse(path, _MESSAGES["BatchingParameters"](), "batching parameters file")
    defaults = BatchingOptions()
    return BatchingOptions(
        max_batch_size=(
            params.max_batch_size.value if params.HasField("max_batch_size") else defaults.max_batch_size
        ),
        batch_timeout_micros=(
            params.batch_timeout_micros.value
            if params.HasField("batch_timeout_micros")
            else defaults.batch_timeout_micros
        ),
        num_batch_threads=(
            params.num_batch_threads.value
            if params.HasField("num_batch_threads")
            else defaults.num_batch_threads
        ),
    )


def read_prometheus_path(path: str) -> str | None:
    """The Prometheus path of a ``--monitoring_config_file``, or None when it is not enabled."""
    config = _parse(path, _MESSAGES["MonitoringConfig"](), "monitoring config file")
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    return prometheus.path or DEFAULT_PROMETHEUS_PATH


@dataclass(frozen=True)
class GrpcTls:
    """§3.2 SSLConfig: PEM contents (not paths) for the gRPC port; REST stays plain HTTP (§1.1)."""

    server_key: str
    server_cert: str
    custom_ca: str = ""
    client_verify: bool = False

    def __post_init__(self) -> None:
        if not self.server_key or not self.server_cert:
            raise ConfigFileError("an SSL config needs both server_key and server_cert (PEM contents)")
        if self.client_verify and not self.custom_ca:
            raise ConfigFileError(
                "client_verify needs custom_ca, the PEM of the CA that signs client certificates"
            )

    def __repr__(self) -> str:
        return f"GrpcTls(custom_ca={bool(self.custom_ca)}, client_verify={self.client_verify})"


def read_ssl_config(path: str) -> GrpcTls:
    config = _parse(path, _MESSAGES["SSLConfig"](), "SSL config file")
    return GrpcTls(config.server_key, config.server_cert, config.custom_ca, config.client_verify)
