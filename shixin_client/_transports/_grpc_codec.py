"""TF Serving's gRPC messages to and from numpy and _models objects; no I/O.

Kept apart from grpc.py so the wire format can be tested without a socket, and so the
transport module holds only channel handling and error mapping. Only the sync and
async gRPC transports import this module (it needs protobuf, the [grpc] extra).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import DecodeError

from .._config import ModelRef
from .._exceptions import BadResponseError, InvalidInputError
from .._models import ModelMetadata, ModelStatus, SignatureInfo, TensorInfo, VersionStatus
from .._proto import get_model_metadata_pb2, get_model_status_pb2, model_pb2, predict_pb2, tensor_pb2
from .base import PredictCall

DataType = tensor_pb2.DataType

#: The numpy type of every dtype the codec reads; tensor_content holds these little-endian.
_NUMPY_BY_DTYPE: dict[DataType, np.dtype] = {
    DataType.DT_FLOAT: np.dtype("<f4"),
    DataType.DT_DOUBLE: np.dtype("<f8"),
    DataType.DT_INT32: np.dtype("<i4"),
    DataType.DT_UINT8: np.dtype("u1"),
    DataType.DT_INT16: np.dtype("<i2"),
    DataType.DT_INT8: np.dtype("i1"),
    DataType.DT_INT64: np.dtype("<i8"),
    DataType.DT_BOOL: np.dtype("?"),
    DataType.DT_HALF: np.dtype("<f2"),
    DataType.DT_UINT32: np.dtype("<u4"),
    DataType.DT_UINT64: np.dtype("<u8"),
}
_DTYPE_BY_NUMPY: dict[np.dtype, DataType] = {
    np_dtype.newbyteorder("="): dtype for dtype, np_dtype in _NUMPY_BY_DTYPE.items()
}

#: Which repeated field carries each dtype when tensor_content is empty (tensor.proto).
_VAL_FIELD: dict[int, str] = {
    DataType.DT_FLOAT: "float_val",
    DataType.DT_DOUBLE: "double_val",
    DataType.DT_INT32: "int_val",
    DataType.DT_UINT8: "int_val",
    DataType.DT_INT16: "int_val",
    DataType.DT_INT8: "int_val",
    DataType.DT_INT64: "int64_val",
    DataType.DT_BOOL: "bool_val",
    DataType.DT_HALF: "half_val",
    DataType.DT_UINT32: "uint32_val",
    DataType.DT_UINT64: "uint64_val",
    DataType.DT_STRING: "string_val",
}

#: GetModelMetadata must name at least one field over gRPC (tf-serving-protocol.md §2).
SIGNATURE_DEF_FIELD = "signature_def"
#: The Any in the metadata response packs tensorflow.serving.SignatureDefMap; our message
#: has the same fields under another package, so the type is checked by its short name.
_SIGNATURE_DEF_MAP_TYPE = "SignatureDefMap"


def dtype_name(dtype: int) -> str:
    """``DT_FLOAT`` for 1; dtypes outside our subset keep their number visible."""
    try:
        return DataType.Name(dtype)
    except ValueError:
        return f"DT_<{dtype}>"


def ndarray_to_tensor_proto(array: np.ndarray, name: str) -> tensor_pb2.TensorProto:
    """Encode numbers as raw tensor_content (one memcpy) and strings as string_val.

    ``name`` is the input alias, used only to say which input is wrong.
    """
    array = np.asarray(array)
    proto = tensor_pb2.TensorProto()
    proto.tensor_shape.dim.extend(tensor_pb2.TensorShapeProto.Dim(size=size) for size in array.shape)
    if array.dtype.kind in "OSU":
        proto.dtype = DataType.DT_STRING
        proto.string_val.extend(_as_bytes(item, name) for item in array.reshape(-1))
        return proto
    dtype = _DTYPE_BY_NUMPY.get(array.dtype.newbyteorder("="))
    if dtype is None:
        raise InvalidInputError(f"input {name!r}", f"numpy dtype {array.dtype} has no TensorFlow dtype here")
    proto.dtype = dtype
    proto.tensor_content = np.ascontiguousarray(array, dtype=_NUMPY_BY_DTYPE[dtype]).tobytes()
    return proto


def _as_bytes(item: object, name: str) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    raise InvalidInputError(f"input {name!r}", f"string tensors hold bytes or str, got {type(item).__name__}")


def tensor_proto_to_ndarray(proto: tensor_pb2.TensorProto, name: str) -> np.ndarray:
    """Decode either form TF Serving writes: tensor_content, or the ``*_val`` fields.

    As in TensorFlow's MakeNdarray, fewer ``*_val`` values than elements means the last
    value repeats (TensorFlow compresses constant tails that way).
    """
    if proto.tensor_shape.unknown_rank:
        raise BadResponseError(f"output {name!r} has an unknown rank")
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise BadResponseError(f"output {name!r} has an unknown dimension in shape {list(shape)}")
    count = int(np.prod(shape, dtype=np.int64))
    if proto.dtype == DataType.DT_STRING:
        if proto.tensor_content:
            raise BadResponseError(f"output {name!r} is DT_STRING but uses tensor_content")
        values = np.empty(len(proto.string_val), dtype=object)
        values[:] = list(proto.string_val)
        return _fill(values, shape, count, name)
    np_dtype = _NUMPY_BY_DTYPE.get(proto.dtype)
    if np_dtype is None:
        raise BadResponseError(f"output {name!r} has dtype {dtype_name(proto.dtype)}, which is not supported")
    if proto.tensor_content:
        if len(proto.tensor_content) != count * np_dtype.itemsize:
            raise BadResponseError(
                f"output {name!r}: tensor_content has {len(proto.tensor_content)} bytes, "
                f"shape {list(shape)} of {dtype_name(proto.dtype)} needs {count * np_dtype.itemsize}"
            )
        return (
            np.frombuffer(proto.tensor_content, dtype=np_dtype)
            .astype(np_dtype.newbyteorder("="))
            .reshape(shape)
        )
    field = getattr(proto, _VAL_FIELD[proto.dtype])
    if proto.dtype == DataType.DT_HALF:
        values = np.asarray(field, dtype=np.uint16).view(np.float16)
    else:
        values = np.asarray(field, dtype=np_dtype.newbyteorder("="))
    return _fill(values, shape, count, name)


def _fill(values: np.ndarray, shape: tuple[int, ...], count: int, name: str) -> np.ndarray:
    if values.size > count:
        raise BadResponseError(f"output {name!r} has {values.size} values for shape {list(shape)}")
    if values.size == 0:
        if count:
            raise BadResponseError(f"output {name!r} has no values for shape {list(shape)}")
        return values.reshape(shape)
    if values.size < count:
        values = np.concatenate([values, np.repeat(values[-1:], count - values.size)])
    return values.reshape(shape)


def model_spec(model: ModelRef, *, signature: bool = True) -> model_pb2.ModelSpec:
    """Version and label are written only when set: version 0 is a real version (§2)."""
    spec = model_pb2.ModelSpec(name=model.name)
    if model.version is not None:
        spec.version.value = int(model.version)
    if model.label is not None:
        spec.version_label = model.label
    if signature and model.signature:
        spec.signature_name = model.signature
    return spec


def predict_request(call: PredictCall) -> predict_pb2.PredictRequest:
    request = predict_pb2.PredictRequest(model_spec=model_spec(call.model))
    for alias, array in call.inputs.items():
        request.inputs[alias].CopyFrom(ndarray_to_tensor_proto(array, alias))
    request.output_filter.extend(call.output_filter)
    return request


def parse_predict_response(
    response: predict_pb2.PredictResponse, output_filter: tuple[str, ...] = ()
) -> dict[str, np.ndarray]:
    outputs = {alias: tensor_proto_to_ndarray(tensor, alias) for alias, tensor in response.outputs.items()}
    if not outputs:
        raise BadResponseError("the PredictResponse has no outputs")
    missing = [alias for alias in output_filter if alias not in outputs]
    if missing:
        raise BadResponseError(
            f"the PredictResponse lacks requested outputs {missing}; it has {sorted(outputs)}"
        )
    return outputs


def metadata_request(model: ModelRef) -> get_model_metadata_pb2.GetModelMetadataRequest:
    return get_model_metadata_pb2.GetModelMetadataRequest(
        model_spec=model_spec(model, signature=False), metadata_field=[SIGNATURE_DEF_FIELD]
    )


def parse_metadata_response(
    response: get_model_metadata_pb2.GetModelMetadataResponse, model: ModelRef
) -> ModelMetadata:
    if SIGNATURE_DEF_FIELD not in response.metadata:
        raise BadResponseError(f"model metadata has no {SIGNATURE_DEF_FIELD!r} entry")
    packed = response.metadata[SIGNATURE_DEF_FIELD]
    if packed.type_url.rsplit("/", 1)[-1].rsplit(".", 1)[-1] != _SIGNATURE_DEF_MAP_TYPE:
        raise BadResponseError(
            f"model metadata {SIGNATURE_DEF_FIELD!r} packs {packed.type_url!r}, not a SignatureDefMap"
        )
    signature_map = get_model_metadata_pb2.SignatureDefMap()
    try:
        signature_map.ParseFromString(packed.value)
    except DecodeError as exc:
        raise BadResponseError(f"model metadata {SIGNATURE_DEF_FIELD!r} does not parse: {exc}") from exc
    spec = response.model_spec
    return ModelMetadata(
        name=spec.name or model.name,
        version=spec.version.value if spec.HasField("version") else model.version,
        signatures=tuple(
            _signature_info(name, signature_map.signature_def[name])
            for name in sorted(signature_map.signature_def)
        ),
    )


def _signature_info(name: str, signature: get_model_metadata_pb2.SignatureDef) -> SignatureInfo:
    return SignatureInfo(
        name=name,
        inputs=_tensor_infos(signature.inputs),
        outputs=_tensor_infos(signature.outputs),
        method_name=signature.method_name,
    )


def _tensor_infos(infos: Mapping[str, get_model_metadata_pb2.TensorInfo]) -> tuple[TensorInfo, ...]:
    return tuple(
        TensorInfo(
            name=alias,
            dtype=dtype_name(info.dtype),
            shape=None if info.tensor_shape.unknown_rank else tuple(d.size for d in info.tensor_shape.dim),
            tensor_name=info.name,
        )
        for alias, info in sorted(infos.items())
    )


def status_request(model: ModelRef) -> get_model_status_pb2.GetModelStatusRequest:
    return get_model_status_pb2.GetModelStatusRequest(model_spec=model_spec(model, signature=False))


def parse_status_response(
    response: get_model_status_pb2.GetModelStatusResponse, model: ModelRef
) -> ModelStatus:
    return ModelStatus(
        name=model.name,
        versions=tuple(
            VersionStatus(
                version=int(entry.version),
                state=_enum_name(get_model_status_pb2.ModelVersionStatus.State, entry.state),
                error_code=_enum_name(get_model_status_pb2.ErrorCode.Code, entry.status.error_code),
                error_message=entry.status.error_message,
            )
            for entry in response.model_version_status
        ),
    )


def _enum_name(enum: EnumTypeWrapper, number: int) -> str:
    """Proto3 enums are open: a number newer than our subset stays visible, not an error."""
    try:
        return enum.Name(number)
    except ValueError:
        return str(number)
