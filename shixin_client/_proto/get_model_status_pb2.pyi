from . import model_pb2 as _model_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ErrorCode(_message.Message):
    __slots__ = ()
    class Code(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        OK: _ClassVar[ErrorCode.Code]
        CANCELLED: _ClassVar[ErrorCode.Code]
        UNKNOWN: _ClassVar[ErrorCode.Code]
        INVALID_ARGUMENT: _ClassVar[ErrorCode.Code]
        DEADLINE_EXCEEDED: _ClassVar[ErrorCode.Code]
        NOT_FOUND: _ClassVar[ErrorCode.Code]
        ALREADY_EXISTS: _ClassVar[ErrorCode.Code]
        PERMISSION_DENIED: _ClassVar[ErrorCode.Code]
        UNAUTHENTICATED: _ClassVar[ErrorCode.Code]
        RESOURCE_EXHAUSTED: _ClassVar[ErrorCode.Code]
        FAILED_PRECONDITION: _ClassVar[ErrorCode.Code]
        ABORTED: _ClassVar[ErrorCode.Code]
        OUT_OF_RANGE: _ClassVar[ErrorCode.Code]
        UNIMPLEMENTED: _ClassVar[ErrorCode.Code]
        INTERNAL: _ClassVar[ErrorCode.Code]
        UNAVAILABLE: _ClassVar[ErrorCode.Code]
        DATA_LOSS: _ClassVar[ErrorCode.Code]
    OK: ErrorCode.Code
    CANCELLED: ErrorCode.Code
    UNKNOWN: ErrorCode.Code
    INVALID_ARGUMENT: ErrorCode.Code
    DEADLINE_EXCEEDED: ErrorCode.Code
    NOT_FOUND: ErrorCode.Code
    ALREADY_EXISTS: ErrorCode.Code
    PERMISSION_DENIED: ErrorCode.Code
    UNAUTHENTICATED: ErrorCode.Code
    RESOURCE_EXHAUSTED: ErrorCode.Code
    FAILED_PRECONDITION: ErrorCode.Code
    ABORTED: ErrorCode.Code
    OUT_OF_RANGE: ErrorCode.Code
    UNIMPLEMENTED: ErrorCode.Code
    INTERNAL: ErrorCode.Code
    UNAVAILABLE: ErrorCode.Code
    DATA_LOSS: ErrorCode.Code
    def __init__(self) -> None: ...

class StatusProto(_message.Message):
    __slots__ = ("error_code", "error_message")
    ERROR_CODE_FIELD_NUMBER: _ClassVar[int]
    ERROR_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    error_code: ErrorCode.Code
    error_message: str
    def __init__(self, error_code: _Optional[_Union[ErrorCode.Code, str]] = ..., error_message: _Optional[str] = ...) -> None: ...

class GetModelStatusRequest(_message.Message):
    __slots__ = ("model_spec",)
    MODEL_SPEC_FIELD_NUMBER: _ClassVar[int]
    model_spec: _model_pb2.ModelSpec
    def __init__(self, model_spec: _Optional[_Union[_model_pb2.ModelSpec, _Mapping]] = ...) -> None: ...

class ModelVersionStatus(_message.Message):
    __slots__ = ("version", "state", "status")
    class State(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        UNKNOWN: _ClassVar[ModelVersionStatus.State]
        START: _ClassVar[ModelVersionStatus.State]
        LOADING: _ClassVar[ModelVersionStatus.State]
        AVAILABLE: _ClassVar[ModelVersionStatus.State]
        UNLOADING: _ClassVar[ModelVersionStatus.State]
        END: _ClassVar[ModelVersionStatus.State]
    UNKNOWN: ModelVersionStatus.State
    START: ModelVersionStatus.State
    LOADING: ModelVersionStatus.State
    AVAILABLE: ModelVersionStatus.State
    UNLOADING: ModelVersionStatus.State
    END: ModelVersionStatus.State
    VERSION_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    version: int
    state: ModelVersionStatus.State
    status: StatusProto
    def __init__(self, version: _Optional[int] = ..., state: _Optional[_Union[ModelVersionStatus.State, str]] = ..., status: _Optional[_Union[StatusProto, _Mapping]] = ...) -> None: ...

class GetModelStatusResponse(_message.Message):
    __slots__ = ("model_version_status",)
    MODEL_VERSION_STATUS_FIELD_NUMBER: _ClassVar[int]
    model_version_status: _containers.RepeatedCompositeFieldContainer[ModelVersionStatus]
    def __init__(self, model_version_status: _Optional[_Iterable[_Union[ModelVersionStatus, _Mapping]]] = ...) -> None: ...
