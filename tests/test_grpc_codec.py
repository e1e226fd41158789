"""The gRPC codec without a socket: numpy <-> TensorProto, request building, response parsing.

No tensorflow here: these tests pin the codec's own rules (which form each dtype is
written in, how short *_val fields fill, which answers are BadResponseError).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("grpc")

from google.protobuf import any_pb2  # noqa: E402

from shixin_client._config import ModelRef, Timeout  # noqa: E402
from shixin_client._exceptions import BadResponseError, InvalidInputError, MissingDependencyError  # noqa: E402
from shixin_client._proto import get_model_metadata_pb2, get_model_status_pb2, predict_pb2, tensor_pb2  # noqa: E402
from shixin_client._spec import INPUT_DESCRIBE, INPUT_FLOAT, OUTPUT_SOFTMAX, SIGNATURE_DESCRIBE  # noqa: E402
from shixin_client._transports import _grpc_codec as codec  # noqa: E402
from shixin_client._transports.base import PredictCall  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DT = tensor_pb2.DataType

ROUND_TRIP = [
    np.random.default_rng(0).random((3, 40, 37), dtype=np.float32),
    np.zeros((0, 70, 160, 1), np.float32),
    np.arange(6, dtype=np.float64).reshape(2, 3),
    np.array([0], np.int32),
    np.array([[1, -2]], np.int64),
    np.array([-8, 7], np.int8),
    np.array([-300, 300], np.int16),
    np.array([0, 200], np.uint8),
    np.array([4_000_000_000], np.uint32),
    np.array([2**64 - 1], np.uint64),
    np.array([True, False]),
    np.array([1.5, -0.25], np.float16),
    np.array(3.25, np.float32),
    np.array([b"\x00png", b"jpeg"], dtype=object),
    np.array([[b"a"], [b"bc"]], dtype="S2"),
]


@pytest.mark.parametrize("array", ROUND_TRIP, ids=lambda a: f"{a.dtype}{list(a.shape)}")
def test_round_trip_keeps_dtype_shape_and_values(array):
    proto = codec.ndarray_to_tensor_proto(array, "x")
    wire = tensor_pb2.TensorProto.FromString(proto.SerializeToString())
    back = np.asarray(codec.tensor_proto_to_tensor(wire, "x"))
    assert back.shape == array.shape
    if array.dtype.kind == "S":
        assert back.tolist() == [[b"a"], [b"bc"]]
    else:
        assert back.dtype == array.dtype
        assert back.tolist() == array.tolist()


def test_numbers_travel_as_tensor_content_and_strings_as_string_val():
    floats = codec.ndarray_to_tensor_proto(np.ones((2, 2), np.float32), "x")
    assert floats.dtype == DT.DT_FLOAT and len(floats.tensor_content) == 16 and not floats.float_val
    strings = codec.ndarray_to_tensor_proto(np.array(["é", b"b"], dtype=object), "x")
    assert strings.dtype == DT.DT_STRING and list(strings.string_val) == ["é".encode(), b"b"]


def test_big_endian_input_is_written_little_endian():
    proto = codec.ndarray_to_tensor_proto(np.array([1.0], dtype=">f4"), "x")
    assert proto.tensor_content == np.array([1.0], "<f4").tobytes()


@pytest.mark.parametrize(
    ("array", "problem"),
    [
        (np.array([1 + 2j]), "complex128"),
        (np.array([b"ok", None], dtype=object), "NoneType"),
    ],
)
def test_inputs_without_a_tensorflow_dtype_are_named(array, problem):
    with pytest.raises(InvalidInputError, match=rf"input 'the_input'.*{problem}"):
        codec.ndarray_to_tensor_proto(array, "the_input")


def _val_tensor(dtype: int, shape: list[int], **fields) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **fields)
    proto.tensor_shape.dim.extend(tensor_pb2.TensorShapeProto.Dim(size=s) for s in shape)
    return proto


@pytest.mark.parametrize(
    ("proto", "expected"),
    [
        (
            _val_tensor(DT.DT_FLOAT, [2, 2], float_val=[0.5, 1, 2, 3]),
            np.array([[0.5, 1], [2, 3]], np.float32),
        ),
        (_val_tensor(DT.DT_DOUBLE, [1], double_val=[0.1]), np.array([0.1])),
        (_val_tensor(DT.DT_INT32, [3], int_val=[1, -2, 3]), np.array([1, -2, 3], np.int32)),
        (_val_tensor(DT.DT_INT16, [1], int_val=[-7]), np.array([-7], np.int16)),
        (_val_tensor(DT.DT_INT8, [1], int_val=[-7]), np.array([-7], np.int8)),
        (_val_tensor(DT.DT_UINT8, [2], int_val=[0, 255]), np.array([0, 255], np.uint8)),
        (_val_tensor(DT.DT_INT64, [1], int64_val=[2**40]), np.array([2**40], np.int64)),
        (_val_tensor(DT.DT_BOOL, [2], bool_val=[True, False]), np.array([True, False])),
        (_val_tensor(DT.DT_HALF, [1], half_val=[0x3C00]), np.array([1.0], np.float16)),
        (_val_tensor(DT.DT_UINT32, [1], uint32_val=[2**32 - 1]), np.array([2**32 - 1], np.uint32)),
        (_val_tensor(DT.DT_UINT64, [1], uint64_val=[2**64 - 1]), np.array([2**64 - 1], np.uint64)),
        (_val_tensor(DT.DT_STRING, [2], string_val=[b"a", b"b"]), np.array([b"a", b"b"], dtype=object)),
        (_val_tensor(DT.DT_INT32, [], int_val=[5]), np.array(5, np.int32)),
    ],
    ids=lambda v: getattr(v, "dtype", None) and str(v.dtype),
)
def test_val_fields_decode(proto, expected):
    result = np.asarray(codec.tensor_proto_to_tensor(proto, "out"))
    assert result.dtype == expected.dtype and result.shape == expected.shape
    assert result.tolist() == expected.tolist()


def test_short_val_fields_repeat_their_last_value_as_tensorflow_does():
    proto = _val_tensor(DT.DT_FLOAT, [2, 3], float_val=[1.0, 2.0])
    assert np.asarray(codec.tensor_proto_to_tensor(proto, "out")).tolist() == [[1, 2, 2], [2, 2, 2]]


@pytest.mark.parametrize(
    ("proto", "message"),
    [
        (_val_tensor(DT.DT_FLOAT, [3], float_val=[1, 2, 3, 4]), "4 values for shape"),
        (_val_tensor(DT.DT_FLOAT, [3]), "no values"),
        (_val_tensor(DT.DT_FLOAT, [3], tensor_content=b"\x00" * 8), "8 bytes"),
        (_val_tensor(DT.DT_FLOAT, [-1], float_val=[1]), "unknown dimension"),
        (_val_tensor(14, [1], int_val=[1]), r"DT_<14>"),
        (_val_tensor(DT.DT_STRING, [1], tensor_content=b"x"), "tensor_content"),
        (tensor_pb2.TensorProto(dtype=DT.DT_FLOAT, tensor_shape={"unknown_rank": True}), "unknown rank"),
    ],
)
def test_malformed_outputs_are_bad_responses_naming_the_output(proto, message):
    with pytest.raises(BadResponseError, match=rf"output 'out_dense'.*{message}|{message}"):
        np.asarray(codec.tensor_proto_to_tensor(proto, "out_dense"))


def test_predict_request_sends_only_what_is_set():
    image = np.zeros((1, 70, 160, 1), np.float32)
    request = codec.predict_request(PredictCall(ModelRef("shixin"), {INPUT_FLOAT: image}, Timeout()))
    assert request.model_spec.name == "shixin"
    assert request.model_spec.WhichOneof("version_choice") is None
    assert request.model_spec.signature_name == ""
    assert list(request.output_filter) == []
    assert list(request.inputs) == [INPUT_FLOAT]

    pinned = codec.predict_request(
        PredictCall(
            ModelRef("shixin", version=0, signature=SIGNATURE_DESCRIBE),
            {INPUT_DESCRIBE: np.array([0], np.int32)},
            Timeout(),
            output_filter=("charset",),
        )
    )
    assert pinned.model_spec.HasField("version") and pinned.model_spec.version.value == 0
    assert pinned.model_spec.signature_name == SIGNATURE_DESCRIBE
    assert list(pinned.output_filter) == ["charset"]
    assert pinned.inputs[INPUT_DESCRIBE].dtype == DT.DT_INT32


def test_predict_response_parsing_checks_outputs():
    response = predict_pb2.PredictResponse()
    with pytest.raises(BadResponseError, match="no outputs"):
        codec.parse_predict_response(response)
    response.outputs[OUTPUT_SOFTMAX].CopyFrom(
        codec.ndarray_to_tensor_proto(np.ones((1, 40, 37), np.float32), "x")
    )
    assert codec.parse_predict_response(response)[OUTPUT_SOFTMAX].shape == (1, 40, 37)
    with pytest.raises(BadResponseError, match=r"lacks requested outputs \['charset'\]"):
        codec.parse_predict_response(response, ("charset",))


def _metadata_response(type_url: str, value: bytes) -> get_model_metadata_pb2.GetModelMetadataResponse:
    response = get_model_metadata_pb2.GetModelMetadataResponse()
    response.metadata["signature_def"].CopyFrom(any_pb2.Any(type_url=type_url, value=value))
    return response


def test_metadata_falls_back_to_the_asked_model_when_the_spec_is_empty():
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    signature_map.signature_def["serving_default"].inputs["the_input"].dtype = DT.DT_FLOAT
    response = _metadata_response(
        "type.googleapis.com/tensorflow.serving.SignatureDefMap", signature_map.SerializeToString()
    )
    metadata = codec.parse_metadata_response(response, ModelRef("shixin", version=4))
    assert (metadata.name, metadata.version) == ("shixin", 4)
    (info,) = metadata.signatures[0].inputs
    assert (info.name, info.dtype, info.shape) == ("the_input", "DT_FLOAT", ())


@pytest.mark.parametrize(
    ("response", "message"),
    [
        (get_model_metadata_pb2.GetModelMetadataResponse(), "no 'signature_def' entry"),
        (_metadata_response("type.googleapis.com/tensorflow.serving.Other", b""), "not a SignatureDefMap"),
        (_metadata_response("type.googleapis.com/x.NotSignatureDefMap", b""), "not a SignatureDefMap"),
        (
            _metadata_response("type.googleapis.com/tensorflow.serving.SignatureDefMap", b"\xff\xff"),
            "does not parse",
        ),
    ],
)
def test_bad_metadata_is_a_bad_response(response, message):
    with pytest.raises(BadResponseError, match=message):
        codec.parse_metadata_response(response, ModelRef())


def test_metadata_and_status_requests_carry_no_signature():
    model = ModelRef("shixin", label="canary", signature="serving_bytes")
    metadata = codec.metadata_request(model)
    assert metadata.model_spec.signature_name == "" and metadata.model_spec.version_label == "canary"
    assert list(metadata.metadata_field) == ["signature_def"]
    assert codec.status_request(model).model_spec.signature_name == ""


def test_status_keeps_unknown_enum_numbers_visible():
    response = get_model_status_pb2.GetModelStatusResponse()
    entry = response.model_version_status.add(version=9, state=35)
    entry.status.error_code = 99
    (version,) = codec.parse_status_response(response, ModelRef("m")).versions
    assert (version.version, version.state, version.error_code) == (9, "35", "99")


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)


def test_importing_the_sdk_imports_neither_grpc_nor_protobuf():
    result = _run(
        "import sys, shixin_client, shixin_client._decode;"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('grpc', 'google', 'tensorflow')))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_missing_grpc_is_a_missing_dependency_error():
    result = _run(
        "import sys; sys.modules['grpc'] = None\n"
        "try:\n    import shixin_client._transports.grpc\n"
        "except ImportError as exc:\n    print(type(exc).__name__, exc)"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(MissingDependencyError.__name__)
    assert 'pip install "shixin-client[grpc]"' in result.stdout
