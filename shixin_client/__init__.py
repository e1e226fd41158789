"""shixin_client: captcha images in, plain strings out, from TensorFlow Serving or in-process.

Importing this package never imports TensorFlow, gRPC or any optional extra.
"""

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
from ._spec import DEFAULT_SPEC, CaptchaSpec
from ._version import __version__

__all__ = [
    "BadResponseError",
    "CaptchaSpec",
    "DEFAULT_SPEC",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "RequestRejectedError",
    "ServerError",
    "ServerUnavailableError",
    "ShixinConnectionError",
    "ShixinError",
    "ShixinTimeoutError",
    "__version__",
]
