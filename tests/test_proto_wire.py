"""Our compiled .proto subset against tensorflow-serving-api's messages, byte for byte.

docs/tf-serving-compat.md §2 lists the field numbers, the method paths and the two tensor
encodings (tensor_content and the *_val fields); these tests prove that what our
messages write, TF Serving's parse, and the reverse, in one process beside tensorflow.
"""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow_serving")

import tensorflow as tf  # noqa: E402
from google.protobuf import any_pb2, descriptor  # noqa: E402
from tensorflow.core.framework import tensor_pb2 as tf_tensor_pb2  # noqa: E402
from tensorflow.core.framework import tensor_shape_pb2, types_pb2  # noqa: E402
from tensorflow.core.protobuf import meta_graph_pb2  # noqa: E402
from tensorflow_serving.apis import get_model_metadata_pb2 as tfs_metadata  # noqa: E402
from tensorflow_serving.apis import get_model_status_pb2 as tfs_status  # noqa: E402
from tensorflow_serving.apis import model_pb2 as tfs_model  # noqa: E402
from tensorflow_serving.apis import model_service_pb2, prediction_service_pb2  # noqa: E402
from tensorflow_serving.apis import predict_pb2 as tfs_predict  # noqa: E402
from tensorflow_serving.apis import status_pb2 as tfs_status_proto  # noqa: E402

from shixin_client._config import ModelRef, Timeout  # noqa: E402
from shixin_client._proto import (  # noqa: E402
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
    tensor_pb2,
)
from shixin_client._spec import INPUT_BYTES, INPUT_FLOAT, OUTPUT_SOFTMAX, SIGNATURE_FLOAT  # noqa: E402
from shixin_client._transports import _grpc_codec as codec  # noqa: E402
from shixin_client._transports.base import PredictCall  # noqa: E402
from shixin_client._transports.grpc import (  # noqa: E402
    GET_MODEL_METADATA_METHOD,
    GET_MODEL_STATUS_METHOD,
    PREDICT_METHOD,
)

REPO = Path(__file__).resolve().parents[1]
TF_ERROR_CODE = tfs_status_proto.StatusProto.DESCRIPTOR.fields_by_name["error_code"].enum_type

# Our message -> TF's message with the same wire layout.
PAIRS = [
    (tensor_pb2.TensorShapeProto, tensor_shape_pb2.TensorShapeProto),
    (tensor_pb2.TensorProto, tf_tensor_pb2.TensorProto),
    (model_pb2.ModelSpec, tfs_model.ModelSpec),
    (predict_pb2.PredictRequest, tfs_predict.PredictRequest),
    (predict_pb2.PredictResponse, tfs_predict.PredictResponse),
    (get_model_metadata_pb2.GetModelMetadataRequest, tfs_metadata.GetModelMetadataRequest),
    (get_model_metadata_pb2.GetModelMetadataResponse, tfs_metadata.GetModelMetadataResponse),
    (get_model_metadata_pb2.SignatureDefMap, tfs_metadata.SignatureDefMap),
    (get_model_metadata_pb2.SignatureDef, meta_graph_pb2.SignatureDef),
    (get_model_metadata_pb2.TensorInfo, meta_graph_pb2.TensorInfo),
    (get_model_status_pb2.GetModelStatusRequest, tfs_status.GetModelStatusRequest),
    (get_model_status_pb2.GetModelStatusResponse, tfs_status.GetModelStatusResponse),
    (get_model_status_pb2.ModelVersionStatus, tfs_status.ModelVersionStatus),
    (get_model_status_pb2.StatusProto, tfs_status_proto.StatusProto),
]


def _field_shape(field: descriptor.FieldDescriptor) -> tuple[object, ...]:
    """What decides a field's bytes on the wire: number, type, repeated-ness, packing."""
    return (field.number, field.type, field.is_repeated, field.is_packed)


@pytest.mark.parametrize(("ours", "theirs"), PAIRS, ids=[p[0].DESCRIPTOR.name for p in PAIRS])
def test_every_field_has_tf_servings_number_and_type(ours, theirs):
    their_fields = {f.name: f for f in theirs.DESCRIPTOR.fields}
    for field in ours.DESCRIPTOR.fields:
        assert field.name in their_fields, f"{ours.DESCRIPTOR.name}.{field.name} is not a TF Serving field"
        assert _field_shape(field) == _field_shape(their_fields[field.name]), field.full_name
        if field.message_type is not None:
            # Same message on both sides, compared by short name (the packages differ).
            assert field.message_type.name == their_fields[field.name].message_type.name


def test_our_package_is_our_own_so_both_load_in_one_process():
    assert predict_pb2.PredictRequest.DESCRIPTOR.full_name == "shixin.tfs.PredictRequest"
    assert tfs_predict.PredictRequest.DESCRIPTOR.full_name == "tensorflow.serving.PredictRequest"


def test_tensorflow_serving_api_imported_after_ours_in_a_fresh_process():
    code = (
        "import shixin_client._transports.grpc, shixin_client._proto.predict_pb2;"
        "from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc, model_service_pb2;"
        "print('ok')"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize(
    ("enum", "theirs"),
    [
        (tensor_pb2.DataType, types_pb2.DataType.DESCRIPTOR),
        (get_model_status_pb2.ErrorCode.Code, TF_ERROR_CODE),
        (get_model_status_pb2.ModelVersionStatus.State, tfs_status.ModelVersionStatus.State.DESCRIPTOR),
    ],
    ids=["DataType", "error.Code", "State"],
)
def test_enum_numbers_match_tensorflow(enum, theirs):
    for name, number in enum.items():
        assert theirs.values_by_name[name].number == number, name


def test_method_paths_are_tf_servings():
    def path(module, service: str, method: str) -> str:
        found = module.DESCRIPTOR.services_by_name[service].methods_by_name[method]
        return f"/{found.containing_service.full_name}/{found.name}"

    assert PREDICT_METHOD == path(prediction_service_pb2, "PredictionService", "Predict")
    assert GET_MODEL_METADATA_METHOD == path(prediction_service_pb2, "PredictionService", "GetModelMetadata")
    assert GET_MODEL_STATUS_METHOD == path(model_service_pb2, "ModelService", "GetModelStatus")


def test_predict_request_parses_with_tf_serving_field_by_field():
    image = np.random.default_rng(0).integers(0, 2, (2, 70, 160, 1)).astype(np.float32)
    call = PredictCall(
        model=ModelRef("shixin", version=0, signature=SIGNATURE_FLOAT),
        inputs={INPUT_FLOAT: image, INPUT_BYTES: np.array([b"\x89PNG", b"GIF8"], dtype=object)},
        timeout=Timeout(),
        output_filter=(OUTPUT_SOFTMAX,),
    )
    theirs = tfs_predict.PredictRequest.FromString(codec.predict_request(call).SerializeToString())
    assert theirs.model_spec.name == "shixin"
    assert theirs.model_spec.HasField("version") and theirs.model_spec.version.value == 0
    assert theirs.model_spec.WhichOneof("version_choice") == "version"
    assert theirs.model_spec.signature_name == SIGNATURE_FLOAT
    assert list(theirs.output_filter) == [OUTPUT_SOFTMAX]
    floats = theirs.inputs[INPUT_FLOAT]
    assert floats.dtype == types_pb2.DT_FLOAT and floats.tensor_content
    np.testing.assert_array_equal(tf.make_ndarray(floats), image)
    strings = theirs.inputs[INPUT_BYTES]
    assert strings.dtype == types_pb2.DT_STRING and list(strings.string_val) == [b"\x89PNG", b"GIF8"]
    assert [d.size for d in strings.tensor_shape.dim] == [2]


def test_version_label_and_unset_version_reach_tf_serving_as_such():
    labelled = codec.predict_request(
        PredictCall(ModelRef("m", label="stable"), {"x": np.zeros(1, np.float32)}, Timeout())
    )
    theirs = tfs_predict.PredictRequest.FromString(labelled.SerializeToString())
    assert theirs.model_spec.WhichOneof("version_choice") == "version_label"
    assert theirs.model_spec.version_label == "stable"
    assert theirs.model_spec.signature_name == ""
    latest = codec.status_request(ModelRef("m"))
    theirs_status = tfs_status.GetModelStatusRequest.FromString(latest.SerializeToString())
    assert theirs_status.model_spec.WhichOneof("version_choice") is None


def test_tf_serving_predict_request_parses_with_ours():
    theirs = tfs_predict.PredictRequest(output_filter=["out_dense"])
    theirs.model_spec.name = "shixin"
    theirs.model_spec.version.value = 7
    theirs.inputs["the_input"].CopyFrom(tf.make_tensor_proto(np.ones((1, 3), np.float32)))
    ours = predict_pb2.PredictRequest.FromString(theirs.SerializeToString())
    assert ours.model_spec.name == "shixin" and ours.model_spec.version.value == 7
    assert list(ours.output_filter) == ["out_dense"]
    np.testing.assert_array_equal(
        np.asarray(codec.tensor_proto_to_tensor(ours.inputs["the_input"], "x")), np.ones((1, 3))
    )


# Outputs as TF Serving writes them: *_val by default, tensor_content with
# --enable_serialization_as_tensor_content (docs/tf-serving-compat.md §2).
OUTPUTS = {
    "float": np.random.default_rng(1).random((2, 4, 3), dtype=np.float32),
    "double": np.linspace(-1, 1, 6).reshape(2, 3),
    "int32": np.arange(-3, 3, dtype=np.int32).reshape(3, 2),
    "int16": np.array([-300, 7], np.int16),
    "int8": np.array([-5, 5], np.int8),
    "uint8": np.array([0, 255], np.uint8),
    "int64": np.array([2**40, -1], np.int64),
    "uint32": np.array([2**31 + 5], np.uint32),
    "uint64": np.array([2**63 + 9], np.uint64),
    "bool": np.array([True, False, True]),
    "half": np.array([0.5, -2.25, 1000.0], np.float16),
    "string": np.array([b"0123456789abcdefghijklmnopqrstuvwxyz", b""], dtype=object),
}


def _their_tensor(array: np.ndarray, *, as_content: bool) -> tf_tensor_pb2.TensorProto:
    proto = tf.make_tensor_proto(array)
    if as_content or array.dtype == object:
        return proto
    # make_tensor_proto writes tensor_content for numbers; rewrite it the way the server's
    # AsProtoField does, into the dtype's *_val field.
    val = tf_tensor_pb2.TensorProto(dtype=proto.dtype, tensor_shape=proto.tensor_shape)
    flat = array.reshape(-1)
    field = codec._VAL_FIELD[proto.dtype]
    getattr(val, field).extend(flat.view(np.uint16).tolist() if array.dtype == np.float16 else flat.tolist())
    assert not val.tensor_content
    return val


@pytest.mark.parametrize("as_content", [False, True], ids=["val_fields", "tensor_content"])
def test_tf_serving_predict_response_decodes_in_both_forms(as_content):
    theirs = tfs_predict.PredictResponse()
    theirs.model_spec.name = "shixin"
    for alias, array in OUTPUTS.items():
        theirs.outputs[alias].CopyFrom(_their_tensor(array, as_content=as_content))
    ours = predict_pb2.PredictResponse.FromString(theirs.SerializeToString())
    decoded = codec.parse_predict_response(ours)
    assert set(decoded) == set(OUTPUTS)
    for alias, array in OUTPUTS.items():
        assert decoded[alias].dtype == array.dtype, alias
        assert decoded[alias].shape == array.shape, alias
        assert decoded[alias].tolist() == array.tolist(), alias


def test_our_encoded_tensors_are_what_tensorflow_reads():
    for alias, array in OUTPUTS.items():
        theirs = tf_tensor_pb2.TensorProto.FromString(
            codec.ndarray_to_tensor_proto(array, alias).SerializeToString()
        )
        back = tf.make_ndarray(theirs)
        assert back.shape == array.shape, alias
        assert back.tolist() == array.tolist(), alias


def _their_signature_map() -> tfs_metadata.SignatureDefMap:
    signature_map = tfs_metadata.SignatureDefMap()
    signature = signature_map.signature_def[SIGNATURE_FLOAT]
    signature.method_name = "tensorflow/serving/predict"
    tensor_in = signature.inputs[INPUT_FLOAT]
    tensor_in.name, tensor_in.dtype = "serving_default_the_input:0", types_pb2.DT_FLOAT
    for size in (-1, 70, 160, 1):
        tensor_in.tensor_shape.dim.add(size=size)
    tensor_out = signature.outputs[OUTPUT_SOFTMAX]
    tensor_out.name, tensor_out.dtype = "StatefulPartitionedCall:0", types_pb2.DT_FLOAT
    for size in (-1, 40, 37):
        tensor_out.tensor_shape.dim.add(size=size)
    unknown = signature_map.signature_def["describe"].inputs["batch"]
    unknown.dtype = types_pb2.DT_INT32
    unknown.tensor_shape.unknown_rank = True
    return signature_map


def test_metadata_request_and_response_cross_the_wire():
    request = tfs_metadata.GetModelMetadataRequest.FromString(
        codec.metadata_request(ModelRef("shixin", version=3)).SerializeToString()
    )
    assert list(request.metadata_field) == ["signature_def"]
    assert request.model_spec.name == "shixin" and request.model_spec.version.value == 3

    theirs = tfs_metadata.GetModelMetadataResponse()
    theirs.model_spec.name = "shixin"
    theirs.model_spec.version.value = 3
    packed = any_pb2.Any()
    packed.Pack(_their_signature_map())
    assert packed.type_url.endswith("/tensorflow.serving.SignatureDefMap")
    theirs.metadata["signature_def"].CopyFrom(packed)
    ours = get_model_metadata_pb2.GetModelMetadataResponse.FromString(theirs.SerializeToString())
    metadata = codec.parse_metadata_response(ours, ModelRef("shixin"))
    assert metadata.name == "shixin" and metadata.version == 3
    assert [s.name for s in metadata.signatures] == ["describe", SIGNATURE_FLOAT]
    default = metadata.signature(SIGNATURE_FLOAT)
    assert default is not None and default.method_name == "tensorflow/serving/predict"
    (tensor_in,) = default.inputs
    assert (tensor_in.name, tensor_in.dtype, tensor_in.shape) == (INPUT_FLOAT, "DT_FLOAT", (-1, 70, 160, 1))
    assert tensor_in.tensor_name == "serving_default_the_input:0"
    assert default.outputs[0].shape == (-1, 40, 37)
    describe = metadata.signature("describe")
    assert (
        describe is not None and describe.inputs[0].shape is None and describe.inputs[0].dtype == "DT_INT32"
    )


def test_status_request_and_response_cross_the_wire():
    request = tfs_status.GetModelStatusRequest.FromString(
        codec.status_request(ModelRef("shixin")).SerializeToString()
    )
    assert request.model_spec.name == "shixin"

    theirs = tfs_status.GetModelStatusResponse()
    ok = theirs.model_version_status.add(version=2, state=tfs_status.ModelVersionStatus.AVAILABLE)
    ok.status.error_code = 0
    failed = theirs.model_version_status.add(version=1, state=tfs_status.ModelVersionStatus.END)
    failed.status.error_code = TF_ERROR_CODE.values_by_name["NOT_FOUND"].number
    failed.status.error_message = "gone"
    ours = get_model_status_pb2.GetModelStatusResponse.FromString(theirs.SerializeToString())
    status = codec.parse_status_response(ours, ModelRef("shixin"))
    assert status.ready
    assert [(v.version, v.state, v.error_code, v.error_message) for v in status.versions] == [
        (2, "AVAILABLE", "OK", ""),
        (1, "END", "NOT_FOUND", "gone"),
    ]

    back = tfs_status.GetModelStatusResponse.FromString(ours.SerializeToString())
    assert back == theirs


def test_committed_generated_code_matches_the_proto_sources(tmp_path):
    pytest.importorskip("grpc_tools")
    (tmp_path / "scripts").mkdir()
    shutil.copy(REPO / "scripts" / "gen_protos.sh", tmp_path / "scripts")
    proto_dir = tmp_path / "shixin_client" / "_proto"
    proto_dir.mkdir(parents=True)
    for source in (REPO / "shixin_client" / "_proto").glob("*.proto"):
        shutil.copy(source, proto_dir)
    subprocess.run(["bash", str(tmp_path / "scripts" / "gen_protos.sh")], check=True, timeout=120)
    generated = sorted(p.name for p in proto_dir.glob("*_pb2.py*"))
    assert generated == sorted(p.name for p in (REPO / "shixin_client" / "_proto").glob("*_pb2.py*"))
    _, mismatch, errors = filecmp.cmpfiles(
        proto_dir, REPO / "shixin_client" / "_proto", generated, shallow=False
    )
    assert not mismatch and not errors, f"regenerate with scripts/gen_protos.sh: {mismatch or errors}"
