"""The REST API on aiohttp, mirroring TF Serving's http_rest_api_handler (docs/tf-serving-compat.md §1)."""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote_to_bytes

from aiohttp import web
from google.protobuf import json_format
from tensorflow_serving.apis import model_pb2

from shixin_client._spec import SIGNATURE_FLOAT

from ._core import ServingCore, status_response
from ._inference import check_inputs, find_signature
from ._json_tensor import error_body, fill_inputs, predict_response, read_predict_document
from ._status import ServingError, invalid_argument

logger = logging.getLogger("shixin_client.server")

# §1.2, from http_rest_api_util.cc; matched case-insensitively against the whole raw path.
_V1_PATH = re.compile(r"/v1/.*", re.IGNORECASE | re.DOTALL)
_POST_PATH = re.compile(
    r"/v1/models/([^/:]+)(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?:(classify|regress|predict)",
    re.IGNORECASE,
)
_GET_PATH = re.compile(
    r"/v1/models(?:/([^/:]+))?(?:(?:/versions/(\d+))|(?:/labels/([^/:]+)))?(?:\/(metadata))?", re.IGNORECASE
)
_INT64_MAX = 2**63 - 1
# §1.1: --rest_api_enable_cors_support.
_CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "POST, GET",
    "Access-Control-Allow-Headers": "Content-Type",
}
_CORS_ORIGIN = re.compile(r"https?://")
_JSON = "application/json"
# §1.6: what a classify/regress call expects of the signature it names.
_METHOD_NAMES = {
    "classify": ("classification", "tensorflow/serving/classify"),
    "regress": ("regression", "tensorflow/serving/regress"),
}
#: Our own limit (--max_request_bytes); TF Serving has none, so this status is not in §1.8.
PAYLOAD_TOO_LARGE = 413


class _BodyTooLarge(Exception):
    pass


class RestApi:
    def __init__(
        self,
        core: ServingCore,
        *,
        timeout_s: float | None,
        max_request_bytes: int,
        prometheus_path: str | None,
        cors: bool = False,
    ) -> None:
        self._core = core
        self._timeout_s = timeout_s
        self._max_request_bytes = max_request_bytes
        self._prometheus_path = prometheus_path
        self._cors = cors
        self._headers = {"Content-Type": _JSON, **(_CORS_HEADERS if cors else {})}

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self._max_request_bytes)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        if self._prometheus_path is not None and path == self._prometheus_path and request.method == "GET":
            text = self._core.metrics.render(self._core.runner.calls)
            return web.Response(text=text, content_type="text/plain")
        if not _V1_PATH.fullmatch(path):
            raise web.HTTPNotFound()  # §1.1: libevent's plain 404 page, not JSON
        if request.method == "OPTIONS" and self._cors:
            if _CORS_ORIGIN.match(request.headers.get("Origin", "")):
                return web.Response(status=200, headers=self._headers)
            body = error_body("Origin header is missing in CORS preflight")
            return web.Response(status=400, body=body, headers=self._headers)
        with self._core.in_flight():
            try:
                body = await self._read_body(request)
                status, payload = await self._dispatch(request.method, path, request.raw_path, body)
            except ServingError as exc:
                status, payload = exc.http_status, error_body(exc.message)
            except _BodyTooLarge:
                message = (
                    f"Request body is larger than this server's limit of {self._max_request_bytes} bytes "
                    "(--max_request_bytes)"
                )
                status, payload = PAYLOAD_TOO_LARGE, error_body(message)
            except Exception:  # a bug must cost one request, never the server
                logger.exception("Unexpected error handling %s %s", request.method, request.raw_path)
                status, payload = 500, error_body("Internal error in the development server; see its log")
        return web.Response(status=status, body=payload, headers=self._headers)

    async def _read_body(self, request: web.Request) -> bytes:
        if request.content_length is not None and request.content_length > self._max_request_bytes:
            raise _BodyTooLarge
        try:
            return await request.read()
        except web.HTTPRequestEntityTooLarge:
            raise _BodyTooLarge from None

    async def _dispatch(self, method: str, path: str, uri: str, body: bytes) -> tuple[int, bytes]:
        malformed = invalid_argument(f"Malformed request: {method} {uri}")
        if method == "POST":
            match = _POST_PATH.fullmatch(path)
            if match is None or match.group(4) not in ("predict", "classify", "regress"):
                raise malformed
            name, version, label = _route(match)
            return 200, await self._predict(name, version, label, match.group(4), body)
        if method == "GET":
            match = _GET_PATH.fullmatch(path)
            if match is None:
                raise malformed
            if match.group(1) is None:
                raise invalid_argument("Missing model name in request.")
            name, version, label = _route(match)
            if match.group(4):
                return 200, await self._metadata(name, version, label)
            return 200, await self._status(name, version)
        raise malformed

    async def _status(self, name: str, version: int | None) -> bytes:
        # §1.2: a label on a status request is ignored; every version is reported.
        async with self._core.measured(name, "GetModelStatus", "REST"):
            rows = self._core.repository.status(name, version)
        return _proto_json(status_response(rows)).encode()

    async def _metadata(self, name: str, version: int | None, label: str | None) -> bytes:
        async with self._core.measured(name, "GetModelMetadata", "REST"):
            loaded = self._core.repository.resolve(name, version, label)
        spec = model_pb2.ModelSpec(name=name)
        spec.version.value = loaded.version
        # §1.7: hand-concatenated, so signature_def appears twice on the way down.
        text = (
            '{\n"model_spec":'
            + _proto_json(spec)
            + ',\n"metadata": {"signature_def": '
            + _proto_json(loaded.signature_defs)
            + "\n}\n}"
        )
        return text.encode()

    async def _predict(
        self, name: str, version: int | None, label: str | None, verb: str, body: bytes
    ) -> bytes:
        async with self._core.measured(name, verb.capitalize(), "REST"):
            document = read_predict_document(body, SIGNATURE_FLOAT)
            loaded = self._core.repository.resolve(name, version, label)
            signature_name = document.signature_name
            definitions = loaded.signature_defs.signature_def
            if verb != "predict":
                if signature_name not in definitions:
                    raise invalid_argument(f"No signature was found with the name: {signature_name}")
                method_name = definitions[signature_name].method_name
                kind, expected = _METHOD_NAMES[verb]
                if method_name != expected:
                    raise invalid_argument(
                        f"Expected {kind} signature method_name to be {expected}. Was: {method_name}"
                    )
                raise ServingError(
                    "UNIMPLEMENTED",
                    f"{verb} is not supported by this development server; use TensorFlow Serving",
                )
            signature = find_signature(loaded, signature_name)
            if signature is None:
                raise invalid_argument(
                    f'Serving signature name: "{signature_name}" not found in signature def'
                )
            inputs, row_format = fill_inputs(document.document, signature.input_dtypes)
            check_inputs(signature, inputs, signature.input_dtypes)
            outputs = await self._core.run(signature, inputs, self._timeout_s)
            return predict_response(outputs, row_format)


def _route(match: re.Match[str]) -> tuple[str, int | None, str | None]:
    """§1.2: percent-decoded name and label (``+`` stays), version as int64."""
    name = _unescape(match.group(1))
    label = _unescape(match.group(3)) if match.group(3) is not None else None
    version = None
    if match.group(2) is not None:
        version = int(match.group(2))
        if version > _INT64_MAX:
            raise invalid_argument(f"Failed to convert version: {match.group(2)} to numeric.")
    return name, version, label


def _unescape(text: str) -> str:
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape")


def _proto_json(message: object) -> str:
    return json_format.MessageToJson(
        message,  # type: ignore[arg-type]
        preserving_proto_field_name=True,
        indent=1,
        always_print_fields_with_no_presence=True,
    )
