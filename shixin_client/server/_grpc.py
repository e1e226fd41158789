"""gRPC on tensorflow-serving-api's official servicer classes (docs/tf-serving-compat.md §2).

Predict, GetModelMetadata, GetModelStatus and HandleReloadConfigRequest are served;
the servicer base classes answer the other RPCs (Classify, Regress, MultiInference)
with UNIMPLEMENTED. Outputs use the ``*_val`` fields, as TF Serving does by default.
"""

from __future__ import annotations

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2
from tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_management_pb2,
    model_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
)

from ._core import ServingCore, status_response
from ._inference import read_predict_request
from ._repository import LoadedVersion
from ._status import ServingError, invalid_argument

SIGNATURE_DEF_FIELD = "signature_def"
#: §2: TF Serving's send and receive limit.
MAX_MESSAGE_BYTES = 2**31 - 1
# TensorProto's *_val field for each dtype that has one (tensor.proto).
_VAL_FIELDS = {
    tf.float32: "float_val",
    tf.float64: "double_val",
    tf.int32: "int_val",
    tf.int16: "int_val",
    tf.int8: "int_val",
    tf.uint8: "int_val",
    tf.int64: "int64_val",
    tf.bool: "bool_val",
    tf.string: "string_val",
    tf.uint32: "uint32_val",
    tf.uint64: "uint64_val",
}


def tensor_to_proto(array: np.ndarray) -> tensor_pb2.TensorProto:
    """``Tensor::AsProtoField``: the ``*_val`` form TF Serving writes by default (§2)."""
    dtype = tf.as_dtype(array.dtype)
    field = _VAL_FIELDS.get(dtype)
    if field is None:
        return tf.make_tensor_proto(array)
    proto = tensor_pb2.TensorProto(dtype=dtype.as_datatype_enum)
    for size in array.shape:
        proto.tensor_shape.dim.add(size=size)
    getattr(proto, field).extend(array.ravel().tolist())
    return proto


def _resolve(core: ServingCore, spec: model_pb2.ModelSpec) -> LoadedVersion:
    choice = spec.WhichOneof("version_choice")
    version = spec.version.value if choice == "version" else None
    label = spec.version_label if choice == "version_label" else None
    return core.repository.resolve(spec.name, version, label)


async def _abort(context: grpc.aio.ServicerContext, exc: ServingError) -> None:
    await context.abort(exc.grpc_code, exc.grpc_details())


def _deadline(context: grpc.aio.ServicerContext) -> float | None:
    return context.time_remaining()


class PredictionService(prediction_service_pb2_grpc.PredictionServiceServicer):
    def __init__(self, core: ServingCore) -> None:
        self._core = core

    async def Predict(  # noqa: N802 - the servicer's method name
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        with self._core.in_flight():
            try:
                async with self._core.measured(request.model_spec.name, "Predict", "GRPC"):
                    return await self._predict(request, context)
            except ServingError as exc:
                await _abort(context, exc)
                raise AssertionError("context.abort returned") from exc

    async def _predict(
        self, request: predict_pb2.PredictRequest, context: grpc.aio.ServicerContext
    ) -> predict_pb2.PredictResponse:
        loaded = _resolve(self._core, request.model_spec)
        signature, inputs = read_predict_request(loaded, request)
        outputs = await self._core.run(signature, inputs, _deadline(context))
        wanted = set(request.output_filter) or set(outputs)
        response = predict_pb2.PredictResponse()
        response.model_spec.name = loaded.name
        response.model_spec.version.value = loaded.version
        response.model_spec.signature_name = signature.name
        for alias in sorted(wanted):
            response.outputs[alias].CopyFrom(tensor_to_proto(outputs[alias]))
        return response

    async def GetModelMetadata(  # noqa: N802
        self, request: get_model_metadata_pb2.GetModelMetadataRequest, context: grpc.aio.ServicerContext
    ) -> get_model_metadata_pb2.GetModelMetadataResponse:
        try:
            async with self._core.measured(request.model_spec.name, "GetModelMetadata", "GRPC"):
                if not request.metadata_field:
                    raise invalid_argument("GetModelMetadataRequest must specify at least one metadata_field")
                for field in request.metadata_field:
                    if field != SIGNATURE_DEF_FIELD:
                        raise invalid_argument(f"Metadata field {field} is not supported")
                loaded = _resolve(self._core, request.model_spec)
        except ServingError as exc:
            await _abort(context, exc)
            raise AssertionError("context.abort returned") from exc
        response = get_model_metadata_pb2.GetModelMetadataResponse()
        response.model_spec.name = loaded.name
        response.model_spec.version.value = loaded.version
        response.metadata[SIGNATURE_DEF_FIELD].Pack(loaded.signature_defs)
        return response


class ModelService(model_service_pb2_grpc.ModelServiceServicer):
    def __init__(self, core: ServingCore) -> None:
        self._core = core

    async def GetModelStatus(  # noqa: N802
        self, request: get_model_status_pb2.GetModelStatusRequest, context: grpc.aio.ServicerContext
    ) -> get_model_status_pb2.GetModelStatusResponse:
        spec = request.model_spec
        version = spec.version.value if spec.WhichOneof("version_choice") == "version" else None
        try:
            async with self._core.measured(spec.name, "GetModelStatus", "GRPC"):
                rows = self._core.repository.status(spec.name, version)
        except ServingError as exc:
            await _abort(context, exc)
            raise AssertionError("context.abort returned") from exc
        return status_response(rows)

    async def HandleReloadConfigRequest(  # noqa: N802
        self, request: model_management_pb2.ReloadConfigRequest, context: grpc.aio.ServicerContext
    ) -> model_management_pb2.ReloadConfigResponse:
        try:
            if request.config.WhichOneof("config") != "model_config_list":
                raise invalid_argument(
                    "ServerModelConfig type not supported by HandleReloadConfigRequest. "
                    "Only ModelConfigList is currently supported"
                )
            await self._core.reload(list(request.config.model_config_list.config))
        except ServingError as exc:
            await _abort(context, exc)
            raise AssertionError("context.abort returned") from exc
        response = model_management_pb2.ReloadConfigResponse()
        response.status.error_code = 0  # OK
        return response


def add_services(server: grpc.aio.Server, core: ServingCore) -> None:
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(core), server)
    model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(core), server)
