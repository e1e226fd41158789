"""gRPC behaviour against docs/tf-serving-compat.md §2, with tensorflow-serving-api's own stubs."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from shixin_client.server.testing import RunningServer

Stub = prediction_service_pb2_grpc.PredictionServiceStub


@pytest.fixture(scope="module")
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_target) as opened:
        yield opened


@pytest.fixture(scope="module")
def prediction(channel: grpc.Channel) -> Stub:
    return prediction_service_pb2_grpc.PredictionServiceStub(channel)


def predict_request(model: str, inputs: dict[str, np.ndarray], **spec: object) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = model
    for key, value in spec.items():
        if key == "version":
            request.model_spec.version.value = int(value)
        else:
            setattr(request.model_spec, key, value)
    for alias, array in inputs.items():
        request.inputs[alias].CopyFrom(tf.make_tensor_proto(array))
    return request


def rpc_error(call: Callable[..., object], *args: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        call(*args)
    return info.value


def test_predict_writes_val_fields_and_echoes_the_spec(prediction: Stub) -> None:
    # §2: tensor_content inputs are read; outputs use *_val; model_spec echoes the resolved version.
    response = prediction.Predict(predict_request("half", {"x": np.array([1.0, 2.0], np.float32)}))
    output = response.outputs["y"]
    assert list(output.float_val) == [3.5, 4.0]
    assert not output.tensor_content
    assert [dim.size for dim in output.tensor_shape.dim] == [2]
    assert response.model_spec.name == "half"
    assert response.model_spec.version.value == 2
    assert response.model_spec.signature_name == "serving_default"


def test_predict_reads_val_field_inputs_and_labels(prediction: Stub) -> None:
    request = predict_pb2.PredictRequest()
    request.model_spec.name = "half"
    request.model_spec.version_label = "stable"
    tensor = request.inputs["x"]
    tensor.dtype = tf.float32.as_datatype_enum
    tensor.tensor_shape.dim.add(size=1)
    tensor.float_val.append(4.0)
    response = prediction.Predict(request)
    assert list(response.outputs["y"].float_val) == [4.0]
    assert response.model_spec.version.value == 1


def test_predict_strings_and_output_filter(prediction: Stub) -> None:
    request = predict_request(
        "toolbox", {"s": np.array([b"ab", b"\xff"], dtype=object)}, signature_name="strings"
    )
    request.output_filter.append("length")
    response = prediction.Predict(request)
    assert set(response.outputs) == {"length"}
    assert list(response.outputs["length"].int_val) == [2, 1]
    full = prediction.Predict(
        predict_request("toolbox", {"s": np.array([b"\xff"], dtype=object)}, signature_name="strings")
    )
    assert list(full.outputs["echo"].string_val) == [b"\xff"]


@pytest.mark.parametrize(
    ("request_args", "code", "message"),
    [
        (
            ("nope", {"x": np.ones(1, np.float32)}),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Latest(nope)",
        ),
        (
            ("half", {"x": np.ones(1, np.float32)}, {"version": 50}),
            grpc.StatusCode.NOT_FOUND,
            "Servable not found for request: Specific(half, 50)",
        ),
        (
            ("half", {"x": np.ones(1, np.float32)}, {"version_label": "beta"}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Unrecognized servable version label: beta",
        ),
        (
            ("half", {"x": np.ones(1, np.float32)}, {"signature_name": "nope"}),
            grpc.StatusCode.FAILED_PRECONDITION,
            'Serving signature key "nope" not found.',
        ),
        (
            ("toolbox", {"a": np.ones(1, np.float32)}, {"signature_name": "two_inputs"}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "input size does not match signature: 1!=2 len({a}) != len({a,b}). Sent extra: {}. "
            "Missing but required: {b}.",
        ),
        (
            ("half", {"z": np.ones(1, np.float32)}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "input tensor alias not found in signature: z. Inputs expected to be in the set {x}.",
        ),
        (
            ("half", {"x": np.ones(1, np.int32)}),
            grpc.StatusCode.INVALID_ARGUMENT,
            "Expects arg[0] to be float but int32 is provided",
        ),
    ],
)
def test_predict_status_codes(
    prediction: Stub, request_args: tuple, code: grpc.StatusCode, message: str
) -> None:
    # §1.8 table (gRPC rows) and §2: the TF code is the gRPC code.
    model, inputs, *spec = request_args
    error = rpc_error(prediction.Predict, predict_request(model, inputs, **(spec[0] if spec else {})))
    assert error.code() == code
    assert error.details() == message


def test_unknown_output_filter(prediction: Stub) -> None:
    request = predict_request("half", {"x": np.ones(1, np.float32)})
    request.output_filter.append("nope")
    error = rpc_error(prediction.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("output tensor alias not found in signature: nope")


def test_metadata_requires_signature_def_field(prediction: Stub) -> None:
    request = get_model_metadata_pb2.GetModelMetadataRequest()
    request.model_spec.name = "half"
    error = rpc_error(prediction.GetModelMetadata, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details() == "GetModelMetadataRequest must specify at least one metadata_field"
    request.metadata_field.append("signature_def")
    response = prediction.GetModelMetadata(request)
    assert response.model_spec.version.value == 2
    signature_defs = get_model_metadata_pb2.SignatureDefMap()
    assert response.metadata["signature_def"].Unpack(signature_defs)
    assert signature_defs.signature_def["serving_default"].inputs["x"].dtype == tf.float32.as_datatype_enum


def test_model_status(channel: grpc.Channel) -> None:
    stub = model_service_pb2_grpc.ModelServiceStub(channel)
    request = get_model_status_pb2.GetModelStatusRequest()
    request.model_spec.name = "half"
    response = stub.GetModelStatus(request)
    assert [(s.version, s.state) for s in response.model_version_status] == [
        (2, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
        (1, get_model_status_pb2.ModelVersionStatus.AVAILABLE),
    ]
    request.model_spec.name = "nope"
    error = rpc_error(stub.GetModelStatus, request)
    assert (error.code(), error.details()) == (
        grpc.StatusCode.NOT_FOUND,
        "Could not find any versions of model nope",
    )


def test_corrupt_png_is_invalid_argument(prediction: Stub) -> None:
    request = predict_request("png", {"image_bytes": np.array([b"not a png"], dtype=object)})
    error = rpc_error(prediction.Predict, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_unimplemented_rpcs_answer_unimplemented(prediction: Stub) -> None:
    from tensorflow_serving.apis import classification_pb2

    error = rpc_error(prediction.Classify, classification_pb2.ClassificationRequest())
    assert error.code() == grpc.StatusCode.UNIMPLEMENTED


def test_fuzzed_requests_get_error_codes_and_the_server_survives(
    channel: grpc.Channel, prediction: Stub
) -> None:
    rng = np.random.default_rng(7)
    raw = channel.unary_unary("/tensorflow.serving.PredictionService/Predict")
    for _ in range(30):
        with pytest.raises(grpc.RpcError):
            raw(b"\xff" + rng.bytes(int(rng.integers(1, 64))), timeout=10)  # not a PredictRequest
    dtypes = [tf.float32, tf.int64, tf.string, tf.bool, tf.float16]
    for _ in range(60):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = str(rng.choice(["half", "toolbox", "png"]))
        request.model_spec.signature_name = str(rng.choice(["", "strings", "two_inputs", "total", "counter"]))
        for alias in rng.choice(
            ["x", "a", "b", "s", "image_bytes"], size=int(rng.integers(0, 3)), replace=False
        ):
            tensor = request.inputs[str(alias)]
            tensor.dtype = dtypes[int(rng.integers(len(dtypes)))].as_datatype_enum
            for size in rng.integers(0, 4, size=int(rng.integers(0, 3))):
                tensor.tensor_shape.dim.add(size=int(size))
            tensor.tensor_content = rng.bytes(int(rng.integers(0, 16)))
        try:
            prediction.Predict(request, timeout=10)
        except grpc.RpcError as error:
            assert error.code() in {
                grpc.StatusCode.INVALID_ARGUMENT,
                grpc.StatusCode.FAILED_PRECONDITION,
                grpc.StatusCode.NOT_FOUND,
            }, error.details()
    assert list(
        prediction.Predict(predict_request("half", {"x": np.zeros(1, np.float32)})).outputs["y"].float_val
    ) == [3.0]
