"""Both gRPC transports over real loopback sockets against a TF Serving double.

The double is built on tensorflow-serving-api's own servicer base classes, so it speaks
exactly the service and method names of docs/tf-serving-compat.md §2. Model names pick the
double's behaviour: "missing" -> NOT_FOUND, "bad" -> INVALID_ARGUMENT, "busy" ->
RESOURCE_EXHAUSTED, "down" -> UNAVAILABLE, "slow" -> answers after the deadline.
"""

from __future__ import annotations

import asyncio
import inspect
import socket
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass, field

import numpy as np
import pytest

pytest.importorskip("tensorflow_serving")
trustme = pytest.importorskip("trustme")

import grpc  # noqa: E402
import tensorflow as tf  # noqa: E402
from google.protobuf import any_pb2  # noqa: E402
from tensorflow.core.framework import types_pb2  # noqa: E402
from tensorflow_serving.apis import (  # noqa: E402
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from shixin_client._config import Headers, ModelRef, Timeout, TLSConfig  # noqa: E402
from shixin_client._exceptions import (  # noqa: E402
    ModelNotFoundError,
    RequestRejectedError,
    ServerUnavailableError,
    ShixinConnectionError,
    ShixinTimeoutError,
)
from shixin_client._retry import is_retryable  # noqa: E402
from shixin_client._spec import INPUT_FLOAT, OUTPUT_SOFTMAX, SIGNATURE_FLOAT  # noqa: E402
from shixin_client._transports.base import AsyncTransport, PredictCall, SyncTransport  # noqa: E402
from shixin_client._transports.grpc import AsyncGrpcTransport, GrpcTransport, channel_options  # noqa: E402

SECRET = "Bearer s3cret-token"
HEADERS = Headers((("Authorization", SECRET), ("X-Tenant", "t1")))
FAST = Timeout(2.0, 3.0)
SHORT = Timeout(0.1, 0.2)
ERRORS = {
    "missing": (grpc.StatusCode.NOT_FOUND, "Servable not found for request: Latest(missing)"),
    "bad": (grpc.StatusCode.INVALID_ARGUMENT, "input tensor alias not found in signature: nope"),
    "busy": (grpc.StatusCode.RESOURCE_EXHAUSTED, "queue full"),
    "down": (grpc.StatusCode.UNAVAILABLE, "model is reloading"),
    "dropped": (grpc.StatusCode.CANCELLED, "server shutting down"),
}


@dataclass
class Double:
    """What the double saw, and the switch that lets a slow handler finish early."""

    metadata: list[dict[str, str]] = field(default_factory=list)
    requests: list[predict_pb2.PredictRequest] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)

    def enter(self, context: grpc.ServicerContext, name: str) -> None:
        self.metadata.append(dict(context.invocation_metadata()))
        if name == "slow":
            self.release.wait(5)
        if name in ERRORS:
            context.abort(*ERRORS[name])


class Prediction(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, double: Double) -> None:
        self.double = double

    def Predict(self, request, context):  # noqa: N802 (TF Serving's method name)
        self.double.enter(context, request.model_spec.name)
        self.double.requests.append(request)
        images = tf.make_ndarray(request.inputs[INPUT_FLOAT])
        softmax = np.full((len(images), 40, 37), 1 / 37, np.float32) * images.mean()
        response = predict_pb2.PredictResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 2
        response.model_spec.signature_name = request.model_spec.signature_name or SIGNATURE_FLOAT
        # TF Serving's default form: float_val, not tensor_content (§2).
        tensor = response.outputs[OUTPUT_SOFTMAX]
        tensor.dtype = types_pb2.DT_FLOAT
        for size in softmax.shape:
            tensor.tensor_shape.dim.add(size=size)
        tensor.float_val.extend(softmax.reshape(-1).tolist())
        return response

    def GetModelMetadata(self, request, context):  # noqa: N802
        self.double.enter(context, request.model_spec.name)
        if list(request.metadata_field) != ["signature_def"]:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "GetModelMetadataRequest must specify ...")
        signature_map = get_model_metadata_pb2.SignatureDefMap()
        output = signature_map.signature_def[SIGNATURE_FLOAT].outputs[OUTPUT_SOFTMAX]
        output.dtype = types_pb2.DT_FLOAT
        for size in (-1, 40, 37):
            output.tensor_shape.dim.add(size=size)
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = request.model_spec.name
        response.model_spec.version.value = 2
        packed = any_pb2.Any()
        packed.Pack(signature_map)
        response.metadata["signature_def"].CopyFrom(packed)
        return response


class Status(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, double: Double, port_tag: int) -> None:
        self.double = double
        self.port_tag = port_tag

    def GetModelStatus(self, request, context):  # noqa: N802
        self.double.enter(context, request.model_spec.name)
        response = get_model_status_pb2.GetModelStatusResponse()
        # The version number says which server answered (for the round-robin test).
        response.model_version_status.add(
            version=self.port_tag, state=get_model_status_pb2.ModelVersionStatus.AVAILABLE
        )
        return response


@dataclass
class Server:
    port: int
    double: Double
    server: grpc.Server

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"


def _start(credentials: grpc.ServerCredentials | None = None, tag: int = 1) -> Server:
    double = Double()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Prediction(double), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(Status(double, tag), server)
    address = "127.0.0.1:0"
    port = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    server.start()
    return Server(port, double, server)


def _stop(server: Server) -> None:
    server.double.release.set()
    server.server.stop(grace=None).wait(5)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = _start()
    yield running
    _stop(running)


@pytest.fixture
def transport(server: Server) -> Iterator[GrpcTransport]:
    client = GrpcTransport(server.target, headers=HEADERS)
    yield client
    client.close()


def _call(model: str = "shixin", batch: int = 2) -> PredictCall:
    images = np.ones((batch, 70, 160, 1), np.float32)
    return PredictCall(
        ModelRef(model, signature=SIGNATURE_FLOAT), {INPUT_FLOAT: images}, FAST, (OUTPUT_SOFTMAX,)
    )


def test_predict_status_and_metadata(transport: GrpcTransport, server: Server):
    outputs = transport.predict(_call(batch=3))
    assert outputs[OUTPUT_SOFTMAX].shape == (3, 40, 37)
    np.testing.assert_allclose(outputs[OUTPUT_SOFTMAX], 1 / 37, rtol=1e-6)
    sent = server.double.requests[-1]
    assert sent.model_spec.signature_name == SIGNATURE_FLOAT and list(sent.output_filter) == [OUTPUT_SOFTMAX]

    status = transport.status(ModelRef("shixin"), FAST)
    assert status.ready and status.versions[0].state == "AVAILABLE"

    metadata = transport.metadata(ModelRef("shixin"), FAST)
    assert metadata.version == 2
    signature = metadata.signature(SIGNATURE_FLOAT)
    assert signature is not None and signature.outputs[0].shape == (-1, 40, 37)


def test_a_batch_over_grpcs_default_4_mib_limit_goes_through(transport: GrpcTransport):
    # 64 float images are ~11 MB each way with float_val outputs of 64x40x37.
    assert transport.predict(_call(batch=64))[OUTPUT_SOFTMAX].shape == (64, 40, 37)


def test_headers_arrive_as_metadata_and_never_show(transport: GrpcTransport, server: Server):
    transport.status(ModelRef("shixin"), FAST)
    seen = server.double.metadata[-1]
    assert seen["authorization"] == SECRET and seen["x-tenant"] == "t1"
    assert SECRET not in repr(transport)
    with pytest.raises(ModelNotFoundError) as caught:
        transport.status(ModelRef("missing"), FAST)
    assert SECRET not in str(caught.value) and SECRET not in repr(caught.value)


@pytest.mark.parametrize(
    ("model", "error"),
    [
        ("missing", ModelNotFoundError),
        ("bad", RequestRejectedError),
        ("busy", ServerUnavailableError),
        ("down", ServerUnavailableError),
    ],
)
def test_server_statuses_map_to_the_error_tree(transport: GrpcTransport, server: Server, model, error):
    code, details = ERRORS[model]
    with pytest.raises(error) as caught:
        transport.predict(_call(model))
    assert type(caught.value) is error
    assert (caught.value.code, caught.value.grpc_code) == (code.name, code.name)
    assert caught.value.message == details
    assert caught.value.endpoint == f"grpc://{server.target}"
    assert isinstance(caught.value.__cause__, grpc.RpcError)


def test_a_call_the_server_cancels_is_a_retryable_connection_error(transport: GrpcTransport):
    """A server shutting down cancels calls in flight; like a REST connection cut mid-call."""
    with pytest.raises(ShixinConnectionError, match="dropped Predict .*CANCELLED: server shutting") as caught:
        transport.predict(_call("dropped"))
    assert not isinstance(caught.value, ShixinTimeoutError) and is_retryable(caught.value)


def test_a_passed_deadline_is_a_timeout(transport: GrpcTransport):
    with pytest.raises(ShixinTimeoutError, match="no answer to GetModelStatus"):
        transport.status(ModelRef("slow"), SHORT)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_connection_refused_is_a_connection_error():
    client = GrpcTransport(f"127.0.0.1:{_closed_port()}")
    try:
        with pytest.raises(ShixinConnectionError) as caught:
            client.status(ModelRef(), FAST)
        assert not isinstance(caught.value, ShixinTimeoutError)
        assert isinstance(caught.value.__cause__, grpc.RpcError)
    finally:
        client.close()


def test_round_robin_spreads_calls_over_every_address():
    first, second = _start(tag=1), _start(tag=2)
    client = GrpcTransport(f"ipv4:127.0.0.1:{first.port},127.0.0.1:{second.port}")
    try:
        answered = {client.status(ModelRef("shixin"), FAST).versions[0].version for _ in range(8)}
        assert answered == {1, 2}
    finally:
        client.close()
        _stop(first)
        _stop(second)


def test_dns_targets_resolve_and_use_round_robin(server: Server):
    target = f"dns:///localhost:{server.port}"
    assert ("grpc.lb_policy_name", "round_robin") in channel_options(target, 1, None)
    assert ("grpc.lb_policy_name", "round_robin") not in channel_options(server.target, 1, None)
    client = GrpcTransport(target)
    try:
        assert client.status(ModelRef("shixin"), FAST).ready
    finally:
        client.close()


def test_message_limits_are_raised_both_ways():
    options = dict(channel_options("h:1", 123, None))
    assert options["grpc.max_send_message_length"] == options["grpc.max_receive_message_length"] == 123


def test_reconnect_backoff_is_capped_so_a_restarted_server_is_found_within_a_second():
    options = dict(channel_options("h:1", 123, None))
    assert options["grpc.max_reconnect_backoff_ms"] <= 1000
    assert options["grpc.initial_reconnect_backoff_ms"] <= options["grpc.max_reconnect_backoff_ms"]


def test_one_channel_serves_many_threads(transport: GrpcTransport):
    with futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: transport.status(ModelRef("shixin"), FAST).ready, range(32)))
    assert all(results)


def test_closed_transport_says_so(server: Server):
    client = GrpcTransport(server.target)
    client.close()
    with pytest.raises(RuntimeError, match="is closed"):
        client.status(ModelRef(), FAST)


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        ("", Headers()),
        ("grpc://h:1", Headers()),
        ("h:1", Headers((("grpc-status", "x"),))),
        ("h:1", Headers((("bad key", "v"),))),
    ],
)
def test_bad_settings_are_value_errors(target, headers):
    with pytest.raises(ValueError):
        GrpcTransport(target, headers=headers)


# --- TLS and mTLS, certificates made by trustme -------------------------------------


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def pki(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("pki")
    server_cert = ca.issue_cert("shixin.test")
    client_cert = ca.issue_cert("client@shixin.test")
    paths = {
        "ca": folder / "ca.pem",
        "client_cert": folder / "client.pem",
        "client_key": folder / "client.key",
    }
    ca.cert_pem.write_to_path(str(paths["ca"]))
    client_cert.cert_chain_pems[0].write_to_path(str(paths["client_cert"]))
    client_cert.private_key_pem.write_to_path(str(paths["client_key"]))
    result = {name: str(path) for name, path in paths.items()}
    result["server_key"] = server_cert.private_key_pem.bytes().decode()
    result["server_chain"] = "".join(pem.bytes().decode() for pem in server_cert.cert_chain_pems)
    result["ca_pem"] = ca.cert_pem.bytes().decode()
    return result


def _tls_server(pki: dict[str, str], *, mutual: bool) -> Server:
    credentials = grpc.ssl_server_credentials(
        [(pki["server_key"].encode(), pki["server_chain"].encode())],
        root_certificates=pki["ca_pem"].encode() if mutual else None,
        require_client_auth=mutual,
    )
    return _start(credentials)


def test_tls_with_a_private_ca_and_a_name_override(pki):
    server = _tls_server(pki, mutual=False)
    client = GrpcTransport(server.target, tls=TLSConfig(ca_file=pki["ca"], server_name="shixin.test"))
    try:
        assert client.endpoint.startswith("grpcs://")
        assert client.status(ModelRef("shixin"), FAST).ready
    finally:
        client.close()
        _stop(server)


def test_plain_text_client_to_a_tls_server_is_a_connection_error(pki):
    server = _tls_server(pki, mutual=False)
    client = GrpcTransport(server.target)
    try:
        with pytest.raises(ShixinConnectionError):
            client.status(ModelRef("shixin"), FAST)
    finally:
        client.close()
        _stop(server)


def test_mutual_tls_needs_the_client_certificate(pki):
    server = _tls_server(pki, mutual=True)
    with_cert = GrpcTransport(
        server.target,
        tls=TLSConfig(
            ca_file=pki["ca"],
            cert_file=pki["client_cert"],
            key_file=pki["client_key"],
            server_name="shixin.test",
        ),
    )
    without_cert = GrpcTransport(server.target, tls=TLSConfig(ca_file=pki["ca"], server_name="shixin.test"))
    try:
        assert with_cert.status(ModelRef("shixin"), FAST).ready
        with pytest.raises(ShixinConnectionError):
            without_cert.status(ModelRef("shixin"), FAST)
    finally:
        with_cert.close()
        without_cert.close()
        _stop(server)


# --- the async twin ---------------------------------------------------------------


def test_the_twins_implement_their_own_contract_only():
    assert issubclass(GrpcTransport, SyncTransport) and not issubclass(GrpcTransport, AsyncTransport)
    assert issubclass(AsyncGrpcTransport, AsyncTransport) and not issubclass(
        AsyncGrpcTransport, SyncTransport
    )
    for name in ("predict", "status", "metadata"):
        assert inspect.iscoroutinefunction(getattr(AsyncGrpcTransport, name)), name
        assert not inspect.iscoroutinefunction(getattr(GrpcTransport, name)), name
    assert inspect.iscoroutinefunction(AsyncGrpcTransport.aclose) and not hasattr(AsyncGrpcTransport, "close")
    assert not inspect.iscoroutinefunction(GrpcTransport.close)


async def test_async_predict_status_metadata_and_headers(server: Server):
    client = AsyncGrpcTransport(server.target, headers=HEADERS)
    try:
        outputs, status, metadata = await asyncio.gather(
            client.predict(_call()),
            client.status(ModelRef("shixin"), FAST),
            client.metadata(ModelRef("shixin"), FAST),
        )
        assert outputs[OUTPUT_SOFTMAX].shape == (2, 40, 37)
        assert status.ready and metadata.signature(SIGNATURE_FLOAT) is not None
        assert server.double.metadata[-1]["authorization"] == SECRET
        assert SECRET not in repr(client)
    finally:
        await client.aclose()


async def test_async_errors_map_like_the_sync_ones(server: Server):
    client = AsyncGrpcTransport(server.target)
    try:
        with pytest.raises(ModelNotFoundError) as caught:
            await client.predict(_call("missing"))
        assert caught.value.grpc_code == "NOT_FOUND"
        with pytest.raises(ServerUnavailableError):
            await client.status(ModelRef("busy"), FAST)
        with pytest.raises(ShixinTimeoutError):
            await client.status(ModelRef("slow"), SHORT)
    finally:
        await client.aclose()


async def test_async_connection_refused_and_tls(pki):
    refused = AsyncGrpcTransport(f"127.0.0.1:{_closed_port()}")
    server = _tls_server(pki, mutual=True)
    secure = AsyncGrpcTransport(
        server.target,
        tls=TLSConfig(
            ca_file=pki["ca"],
            cert_file=pki["client_cert"],
            key_file=pki["client_key"],
            server_name="shixin.test",
        ),
    )
    try:
        with pytest.raises(ShixinConnectionError):
            await refused.status(ModelRef(), FAST)
        assert (await secure.status(ModelRef("shixin"), FAST)).ready
    finally:
        await refused.aclose()
        await secure.aclose()
        _stop(server)


def test_async_transport_refuses_a_second_event_loop(server: Server):
    client = AsyncGrpcTransport(server.target)

    async def status() -> bool:
        return (await client.status(ModelRef("shixin"), FAST)).ready

    async def close() -> None:
        await client.aclose()

    loop = asyncio.new_event_loop()
    try:
        assert loop.run_until_complete(status())
        with pytest.raises(RuntimeError, match="another event loop"):
            asyncio.run(status())
        loop.run_until_complete(close())
    finally:
        loop.close()
