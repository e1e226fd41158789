"""shixin_client: captcha images in, plain strings out, from TensorFlow Serving or in-process.

Importing this package never imports TensorFlow, gRPC, numpy or any optional extra: the
REST and gRPC client (files, bytes or PIL images in, text out) needs only Pillow,
urllib3 and, for gRPC, the [grpc] extra. numpy (the [numpy] extra) is needed for float
tensors, numpy-array inputs, beam search and softmax arrays.
"""

import logging

from ._client import AsyncShixinClient, ShixinClient
from ._config import Headers, ModelRef, RetryPolicy, Timeout, TLSConfig, server_from_env
from ._decode import to_predictions as decode_softmax
from ._exceptions import (
    BadResponseError,
    InvalidInputError,
    MissingDependencyError,
    ModelNotFoundError,
    RequestRejectedError,
    ServerError,
    ServerUnavailableError,
    ShixinConnectionError,
    ShixinError,
    ShixinTimeoutError,
)
from ._images import IMAGE_SUFFIXES, ImageLimits, preprocess
from ._models import ModelMetadata, ModelStatus, Prediction, SignatureInfo, TensorInfo, VersionStatus
from ._spec import (
    DEFAULT_GRPC_PORT,
    DEFAULT_MODEL_NAME,
    DEFAULT_REST_PORT,
    DEFAULT_SPEC,
    SITE_ALPHABET,
    CaptchaSpec,
)
from ._transports.mock import AsyncMockTransport, MockRequest, MockTransport
from ._types import NOT_GIVEN, NotGiven
from ._version import __version__

__all__ = [
    "NOT_GIVEN",
    "AsyncMockTransport",
    "AsyncShixinClient",
    "BadResponseError",
    "CaptchaSpec",
    "DEFAULT_GRPC_PORT",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_REST_PORT",
    "DEFAULT_SPEC",
    "Headers",
    "IMAGE_SUFFIXES",
    "ImageLimits",
    "InvalidInputError",
    "MissingDependencyError",
    "MockRequest",
    "MockTransport",
    "ModelMetadata",
    "ModelNotFoundError",
    "ModelRef",
    "ModelStatus",
    "NotGiven",
    "Prediction",
    "RequestRejectedError",
    "RetryPolicy",
    "SITE_ALPHABET",
    "ServerError",
    "ServerUnavailableError",
    "ShixinClient",
    "ShixinConnectionError",
    "ShixinError",
    "ShixinTimeoutError",
    "SignatureInfo",
    "TLSConfig",
    "TensorInfo",
    "Timeout",
    "VersionStatus",
    "decode_softmax",
    "preprocess",
    "__version__",
    "server_from_env",
]

# Users and tracebacks see shixin_client.ShixinClient, never a private module path.
for _name in __all__:
    _value = globals()[_name]
    if isinstance(_value, type) or callable(_value):
        try:
            _value.__module__ = __name__
        except (AttributeError, TypeError):
            pass
del _name, _value

# The library logs to "shixin_client" and configures nothing; the CLI adds handlers.
logging.getLogger(__name__).addHandler(logging.NullHandler())
