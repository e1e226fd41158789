"""shixin_client: captcha images in, plain strings out, from TensorFlow Serving or in-process.

Importing this package never imports TensorFlow, gRPC, numpy or any optional extra: the
REST and gRPC client (files, bytes or PIL images in, text out) needs only Pillow,
urllib3 and, for gRPC, the [grpc] extra. numpy (the [numpy] extra) is needed for float
tensors, numpy-array inputs, beam search and softmax arrays; a missing extra is a
:class:`MissingDependencyError` that gives the pip command.

Everything users need is exported here under its own name. ``shixin_client.protocol``
holds TF Serving's wire tables that the local server (``shixin_client.server``) shares;
the project's training, export and server code also share ``shixin_client._spec``
(model facts) and ``shixin_client._images`` (the one preprocessing), and nothing else
that is private.
"""

import logging

from ._client import AsyncShixinClient, CallOptions, ClientOptions, ShixinClient
from ._config import Headers, ImageLimits, ModelRef, RetryPolicy, Timeout, TLSConfig, server_from_env
from ._decode.predictions import decode_softmax
from ._exceptions import (
    BadResponseError,
    InvalidInputError,
    LowConfidenceError,
    MissingDependencyError,
    ModelNotFoundError,
    RequestRejectedError,
    ServerError,
    ServerUnavailableError,
    ShixinConnectionError,
    ShixinError,
    ShixinTimeoutError,
    UsageError,
)
from ._images import IMAGE_SUFFIXES, preprocess
from ._models import ModelMetadata, ModelStatus, Prediction, SignatureInfo, TensorInfo, VersionStatus
from ._spec import (
    DEFAULT_GRPC_PORT,
    DEFAULT_MODEL_NAME,
    DEFAULT_REST_PORT,
    DEFAULT_SPEC,
    SITE_ALPHABET,
    CaptchaSpec,
)
from ._tensor import Tensor
from ._transports.base import AsyncTransport, PredictCall, SyncTransport, ThreadedAsyncTransport
from ._transports.mock import AsyncMockTransport, MockRequest, MockTransport, softmax_for
from ._types import Payload
from ._version import __version__

__all__ = [
    "AsyncMockTransport",
    "AsyncShixinClient",
    "AsyncTransport",
    "BadResponseError",
    "CallOptions",
    "CaptchaSpec",
    "ClientOptions",
    "DEFAULT_GRPC_PORT",
    "DEFAULT_MODEL_NAME",
    "DEFAULT_REST_PORT",
    "DEFAULT_SPEC",
    "Headers",
    "IMAGE_SUFFIXES",
    "ImageLimits",
    "InvalidInputError",
    "LowConfidenceError",
    "MissingDependencyError",
    "MockRequest",
    "MockTransport",
    "ModelMetadata",
    "ModelNotFoundError",
    "ModelRef",
    "ModelStatus",
    "Payload",
    "PredictCall",
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
    "SyncTransport",
    "TLSConfig",
    "Tensor",
    "TensorInfo",
    "ThreadedAsyncTransport",
    "Timeout",
    "UsageError",
    "VersionStatus",
    "decode_softmax",
    "preprocess",
    "__version__",
    "server_from_env",
    "softmax_for",
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
