"""TF Serving's gRPC messages to and from Tensors and _models objects; no I/O.

Kept apart from grpc.py so the wire format can be tested without a socket, and so the
transport module holds only channel handling and error mapping. Only the sync and
async gRPC transports import this module (it needs protobuf, the [grpc] extra).
Answers decode to numpy-free :class:`~shixin_client.Tensor` objects (``tensor_content`` is
read with ``array.array``); numpy arrays are encoded when a caller sends them.
"""

from __future__ import annotations

import struct
import sys
from array import array
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional

from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.message import DecodeError

from .._config import ModelRef
from .._exceptions import BadResponseError, InvalidInputError, require_numpy
from .._models import ModelMetadata, ModelStatus, SignatureInfo, TensorInfo, VersionStatus
from .._proto import get_model_metadata_pb2, get_model_status_pb2, model_pb2, predict_pb2, tensor_pb2
from .._tensor import Tensor, TensorLike
from .base import PredictCall

if TYPE_CHECKING:
    import numpy as np

DataType = tensor_pb2.DataType


def _typecode(kind: str, size: int) -> str:
    """The ``array`` typecode of a ``kind`` ("i" signed, "u" unsigned) integer of ``size`` bytes."""
    codes = "bhilq" if kind == "i" else "BHILQ"
    return next(code for code in codes if array(code).itemsize == size)


#: Each dtype the codec reads: its numpy name, the ``array`` typecode holding it (None for
#: bool and half, read with struct), and its size; tensor_content holds it little-endian.
_KINDS: dict[DataType, tuple[str, Optional[str], int]] = {
    DataType.DT_FLOAT: ("float32", "f", 4),
    DataType.DT_DOUBLE: ("float64", "d", 8),
    DataType.DT_INT32: ("int32", _typecode("i", 4), 4),
    DataType.DT_UINT8: ("uint8", "B", 1),
    DataType.DT_INT16: ("int16", _typecode("i", 2), 2),
    DataType.DT_INT8: ("int8", "b", 1),
    DataType.DT_INT64: ("int64", _typecode("i", 8), 8),
    DataType.DT_BOOL: ("bool", None, 1),
    DataType.DT_HALF: ("float16", None, 2),
    DataType.DT_UINT32: ("uint32", _typecode("u", 4), 4),
    DataType.DT_UINT64: ("uint64", _typecode("u", 8), 8),
}
_DTYPE_BY_NAME: dict[str, DataType] = {name: dtype for dtype, (name, _, _) in _KINDS.items()}
_BIG_ENDIAN = sys.byteorder == "big"

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

#: GetModelMetadata must name at least one field over gRPC (docs/tf-serving-compat.md §2).
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


def ndarray_to_tensor_proto(array: TensorLike, name: str) -> tensor_pb2.TensorProto:
    """Encode numbers as raw tensor_content (one memcpy) and strings as string_val.

    ``array`` is a :class:`Tensor` or anything numpy reads as an array. ``name`` is the
    input alias, used only to say which input is wrong.
    """
    if isinstance(array, Tensor):
        return _tensor_to_proto(array, name)
    numpy = require_numpy("sending numpy arrays")
    values: np.ndarray = numpy.asarray(array)
    proto = tensor_pb2.TensorProto()
    proto.tensor_shape.dim.extend(tensor_pb2.TensorShapeProto.Dim(size=size) for size in values.shape)
    if values.dtype.kind in "OSU":
        proto.dtype = DataType.DT_STRING
        proto.string_val.extend(_as_bytes(item, name) for item in values.reshape(-1))
        return proto
    dtype = _DTYPE_BY_NAME.get(values.dtype.name) if values.dtype.kind in "biuf" else None
    if dtype is None:
        raise InvalidInputError(f"input {name!r}", f"numpy dtype {values.dtype} has no TensorFlow dtype here")
    proto.dtype = dtype
    proto.tensor_content = numpy.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<")).tobytes()
    return proto


def _tensor_to_proto(tensor: Tensor, name: str) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto()
    proto.tensor_shape.dim.extend(tensor_pb2.TensorShapeProto.Dim(size=size) for size in tensor.shape)
    if tensor.dtype == "object":
        proto.dtype = DataType.DT_STRING
        proto.string_val.extend(_as_bytes(item, name) for item in tensor.values)
        return proto
    dtype = _DTYPE_BY_NAME.get(tensor.dtype)
    if dtype is None:
        raise InvalidInputError(f"input {name!r}", f"dtype {tensor.dtype} has no TensorFlow dtype here")
    proto.dtype = dtype
    typecode = _KINDS[dtype][1]
    if typecode is None:
        fmt = "?" if dtype == DataType.DT_BOOL else "e"
        proto.tensor_content = struct.pack(f"<{len(tensor.values)}{fmt}", *tensor.values)
        return proto
    values = array(typecode, tensor.values)
    if _BIG_ENDIAN:
        values.byteswap()
    proto.tensor_content = values.tobytes()
    return proto


def _as_bytes(item: object, name: str) -> bytes:
    if isinstance(item, bytes):
        return item
    if isinstance(item, str):
        return item.encode("utf-8")
    raise InvalidInputError(f"input {name!r}", f"string tensors hold bytes or str, got {type(item).__name__}")


def tensor_proto_to_tensor(proto: tensor_pb2.TensorProto, name: str) -> Tensor:
    """Decode either form TF Serving writes: tensor_content, or the ``*_val`` fields.

    As in TensorFlow's MakeNdarray, fewer ``*_val`` values than elements means the last
    value repeats (TensorFlow compresses constant tails that way).
    """
    if proto.tensor_shape.unknown_rank:
        raise BadResponseError(f"output {name!r} has an unknown rank")
    shape = tuple(dim.size for dim in proto.tensor_shape.dim)
    if any(size < 0 for size in shape):
        raise BadResponseError(f"output {name!r} has an unknown dimension in shape {list(shape)}")
    count = 1
    for size in shape:
        count *= size
    if proto.dtype == DataType.DT_STRING:
        if proto.tensor_content:
            raise BadResponseError(f"output {name!r} is DT_STRING but uses tensor_content")
        return _fill("object", list(proto.string_val), shape, count, name)
    kind = _KINDS.get(proto.dtype)
    if kind is None:
        raise BadResponseError(f"output {name!r} has dtype {dtype_name(proto.dtype)}, which is not supported")
    dtype, typecode, itemsize = kind
    content = proto.tensor_content
    if content:
        if len(content) != count * itemsize:
            raise BadResponseError(
                f"output {name!r}: tensor_content has {len(content)} bytes, "
                f"shape {list(shape)} of {dtype_name(proto.dtype)} needs {count * itemsize}"
            )
        if typecode is None:
            fmt = "?" if proto.dtype == DataType.DT_BOOL else "e"
            return Tensor(dtype, shape, list(struct.unpack(f"<{count}{fmt}", content)))
        values = array(typecode)
        values.frombytes(content)
        if _BIG_ENDIAN:
            values.byteswap()
        return Tensor(dtype, shape, values)
    field = getattr(proto, _VAL_FIELD[proto.dtype])
    try:
        if proto.dtype == DataType.DT_HALF:
            bits = array("H", field)
            read: Any = list(struct.unpack(f"={len(bits)}e", bits.tobytes()))
        elif proto.dtype == DataType.DT_BOOL:
            read = [bool(value) for value in field]
        else:
            assert typecode is not None
            read = array(typecode, field)
    except (OverflowError, TypeError) as exc:
        raise BadResponseError(
            f"output {name!r} holds a value out of {dtype_name(proto.dtype)}'s range"
        ) from exc
    return _fill(dtype, read, shape, count, name)


def _fill(dtype: str, values: Any, shape: tuple[int, ...], count: int, name: str) -> Tensor:
    if len(values) > count:
        raise BadResponseError(f"output {name!r} has {len(values)} values for shape {list(shape)}")
    if not values:
        if count:
            raise BadResponseError(f"output {name!r} has no values for shape {list(shape)}")
        return Tensor(dtype, shape, values)
    if len(values) < count:
        values.extend([values[-1]] * (count - len(values)))
    return Tensor(dtype, shape, values)


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
    for alias, tensor in call.inputs.items():
        request.inputs[alias].CopyFrom(ndarray_to_tensor_proto(tensor, alias))
    request.output_filter.extend(call.output_filter)
    return request


def parse_predict_response(
    response: predict_pb2.PredictResponse, output_filter: tuple[str, ...] = ()
) -> dict[str, Tensor]:
    outputs = {alias: tensor_proto_to_tensor(tensor, alias) for alias, tensor in response.outputs.items()}
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
