"""TF Serving's REST dialect, parsed and built without sockets.

Each fixture body is shaped like the real server's output, as described in
docs/tf-serving-compat.md; the § in each test names the section.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from shixin_client import (
    BadResponseError,
    ModelNotFoundError,
    ModelRef,
    RequestRejectedError,
    ServerError,
    ServerUnavailableError,
    ShixinTimeoutError,
    Tensor,
)
from shixin_client._transports import _rest_codec as codec


def test_urls_percent_encode_name_and_label_with_no_safe_characters() -> None:
    """§1.2: the server percent-decodes the model name and label."""
    base = "http://h:8501"
    assert codec.predict_url(base, ModelRef("shixin")) == "http://h:8501/v1/models/shixin:predict"
    assert (
        codec.status_url(base, ModelRef("a/b c", version=0)) == "http://h:8501/v1/models/a%2Fb%20c/versions/0"
    )
    assert (
        codec.metadata_url(base, ModelRef("m", label="can:ary/1"))
        == "http://h:8501/v1/models/m/labels/can%3Aary%2F1/metadata"
    )


def test_predict_body_is_row_format_with_b64_strings() -> None:
    """§1.3 and §1.4: one input gives bare instances; DT_STRING goes as {"b64": ...}."""
    images = np.array([b"\x89PNG one", b"\xff\xd8 two"], dtype=object)
    body = json.loads(codec.predict_body(ModelRef(signature="serving_bytes"), {"image_bytes": images}))
    assert body == {
        "signature_name": "serving_bytes",
        "instances": [
            {"b64": base64.b64encode(b"\x89PNG one").decode()},
            {"b64": base64.b64encode(b"\xff\xd8 two").decode()},
        ],
    }
    floats = np.zeros((2, 2, 1), dtype=np.float32)
    body = json.loads(codec.predict_body(ModelRef(), {"the_input": floats}))
    assert body == {"signature_name": "serving_default", "instances": [[[0.0], [0.0]], [[0.0], [0.0]]]}


def test_predict_body_with_several_inputs_names_each_per_row() -> None:
    """§1.3: several inputs make each row an object keyed by exactly the input names."""
    inputs = {"a": np.array([1, 2], dtype=np.int32), "b": np.array([b"x", b"y"], dtype=object)}
    body = json.loads(codec.predict_body(ModelRef(signature="s"), inputs))
    assert body["instances"] == [{"a": 1, "b": {"b64": "eA=="}}, {"a": 2, "b": {"b64": "eQ=="}}]
    with pytest.raises(ValueError, match="batch dimension"):
        codec.predict_body(ModelRef(), {"a": np.zeros(2), "b": np.zeros(3)})


SOFTMAX = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4) / 24


def parse(body: bytes, single_output: str) -> dict[str, np.ndarray]:
    """parse_predict's Tensors as the numpy arrays they stand for."""
    return {name: np.asarray(tensor) for name, tensor in codec.parse_predict(body, single_output).items()}


def test_answers_are_numpy_free_tensors_read_as_numpy_would() -> None:
    """Floats become float32 (TF Serving's %.9g is exact in float32), ints int64, b64 bytes."""
    body = json.dumps({"outputs": {"p": [[0.1, 1], [2, 0.5]], "n": [[1, 2]], "s": [{"b64": "AAE="}]}})
    out = codec.parse_predict(body.encode(), "unused")
    assert all(isinstance(tensor, Tensor) for tensor in out.values())
    assert (out["p"].dtype, out["p"].shape, out["n"].dtype, out["s"].dtype) == (
        "float32",
        (2, 2),
        "int64",
        "object",
    )
    assert out["p"].tolist() == np.array([[0.1, 1], [2, 0.5]], np.float32).tolist()
    assert out["s"].tolist() == [b"\x00\x01"] and out["n"].tolist() == [[1, 2]]
    for bad in (b'{"outputs": [[1, [2]]]}', b'{"outputs": [[[1], [2, 3]]]}', b'{"outputs": [{"x": 1}]}'):
        with pytest.raises(BadResponseError):
            codec.parse_predict(bad, "y")


def test_row_and_columnar_single_output() -> None:
    """§1.5: one output comes unnamed, as `predictions` (row) or `outputs` (columnar)."""
    rows = json.dumps({"predictions": SOFTMAX.tolist()}).encode()
    columns = json.dumps({"outputs": SOFTMAX.tolist()}).encode()
    for body in (rows, columns):
        out = parse(body, "out_dense")
        assert list(out) == ["out_dense"]
        np.testing.assert_allclose(out["out_dense"], SOFTMAX)
        assert out["out_dense"].dtype == np.float32


def test_row_and_columnar_several_outputs() -> None:
    """§1.5: several outputs are objects per row (row) or one object (columnar)."""
    rows = {"predictions": [{"charset": "abc", "blank_index": 3}, {"charset": "abc", "blank_index": 3}]}
    out = parse(json.dumps(rows).encode(), "unused")
    assert list(out["charset"]) == ["abc", "abc"] and out["blank_index"].tolist() == [3, 3]
    columns = {"outputs": {"charset": ["abc"], "blank_index": [3]}}
    out = parse(json.dumps(columns).encode(), "unused")
    assert out["charset"].dtype == object and out["blank_index"].tolist() == [3]


def test_pretty_printed_nan_infinity_and_b64_outputs() -> None:
    """§1.4 and §1.5: bare NaN/Infinity tokens, `_bytes` outputs in b64, 4-space pretty printing."""
    body = b'{\n    "predictions": [[NaN, Infinity, -Infinity, 0.5]\n    ]\n}'
    out = parse(body, "y")["y"]
    assert np.isnan(out[0, 0]) and out[0, 1] == np.inf and out[0, 2] == -np.inf
    body = b'{"predictions": [{"b64": "AAE="}, {"b64": "/w=="}]}'
    assert list(parse(body, "img_bytes")["img_bytes"]) == [b"\x00\x01", b"\xff"]


def test_empty_predictions_and_ragged_lists() -> None:
    """§1.5: dim-0 of 0 gives []; a ragged list is no tensor."""
    assert parse(b'{"predictions": []}', "y")["y"].shape == (0,)
    with pytest.raises(BadResponseError, match="ragged"):
        parse(b'{"predictions": [[1, 2], [3]]}', "y")


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"<html>502 Bad Gateway</html>",
        b'{"predictions": [[0.1, 0.2]',
        b"[1, 2]",
        b'{"result": []}',
        b"\xff\xfe",
    ],
)
def test_non_json_truncated_or_unexpected_bodies_are_bad_responses(body: bytes) -> None:
    with pytest.raises(BadResponseError):
        parse(body, "y")


def test_status_versions_are_strings_in_json() -> None:
    """§1.7: int64 version as a JSON string, 1-space indent, status object."""
    body = b"""{
 "model_version_status": [
  {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
  {"version": "1", "state": "END", "status": {"error_code": "OK", "error_message": ""}}
 ]
}"""
    status = codec.parse_status(body, "shixin")
    assert status.name == "shixin" and status.ready
    assert [(v.version, v.state) for v in status.versions] == [(2, "AVAILABLE"), (1, "END")]
    with pytest.raises(BadResponseError, match="version"):
        codec.parse_status(b'{"model_version_status": [{"version": "two"}]}', "m")


def test_metadata_signature_def_is_nested_twice() -> None:
    """§1.7: metadata.signature_def.signature_def, string dim sizes, unknown rank."""
    body = {
        "model_spec": {"name": "shixin", "signature_name": "", "version": "3"},
        "metadata": {
            "signature_def": {
                "signature_def": {
                    "serving_default": {
                        "inputs": {
                            "the_input": {
                                "dtype": "DT_FLOAT",
                                "tensor_shape": {
                                    "dim": [{"size": "-1", "name": ""}, {"size": "70", "name": ""}],
                                    "unknown_rank": False,
                                },
                                "name": "serving_default_the_input:0",
                            }
                        },
                        "outputs": {
                            "out_dense": {
                                "dtype": "DT_FLOAT",
                                "tensor_shape": {"dim": [], "unknown_rank": True},
                                "name": "StatefulPartitionedCall:0",
                            }
                        },
                        "method_name": "tensorflow/serving/predict",
                        "defaults": {},
                    }
                }
            }
        },
    }
    meta = codec.parse_metadata(json.dumps(body).encode())
    assert meta.name == "shixin" and meta.version == 3
    signature = meta.signature("serving_default")
    assert signature is not None
    assert (
        signature.inputs[0].shape == (-1, 70)
        and signature.inputs[0].tensor_name == "serving_default_the_input:0"
    )
    assert signature.outputs[0].shape is None
    with pytest.raises(BadResponseError):
        codec.parse_metadata(b'{"model_spec": {}, "metadata": {}}')


# §1.8: the real error texts and the HTTP status each one comes with.
@pytest.mark.parametrize(
    ("status", "message", "cls", "code"),
    [
        (404, "Servable not found for request: Latest(half)", ModelNotFoundError, "NOT_FOUND"),
        (404, "Servable not found for request: Specific(foo, 50)", ModelNotFoundError, "NOT_FOUND"),
        (400, "Unrecognized servable version label: canary", ModelNotFoundError, "INVALID_ARGUMENT"),
        (404, "Could not find any versions of model shixin", ModelNotFoundError, "NOT_FOUND"),
        (
            400,
            'Serving signature name: "nope" not found in signature def',
            RequestRejectedError,
            "INVALID_ARGUMENT",
        ),
        (400, "JSON Parse error: Invalid value. at offset: 0", RequestRejectedError, "INVALID_ARGUMENT"),
        (400, "JSON Parse error: The document is empty", RequestRejectedError, "INVALID_ARGUMENT"),
        (503, "Servable not available", ServerUnavailableError, "UNAVAILABLE"),
        (429, "Too many requests queued", ServerUnavailableError, "RESOURCE_EXHAUSTED"),
        (500, "Internal error", ServerError, "INTERNAL"),
    ],
)
def test_error_bodies_map_onto_the_tree(status: int, message: str, cls: type, code: str) -> None:
    body = json.dumps({"error": message}, indent=4).encode()
    error = codec.error_from_response(status, body, "http://h:8501", retry_after=2.0)
    assert type(error) is cls
    assert isinstance(error, ServerError)
    assert error.code == code and error.http_status == status and error.message == message
    assert error.endpoint == "http://h:8501" and error.retry_after == 2.0
    assert message in str(error) and f"HTTP {status}" in str(error)


def test_deadline_exceeded_is_a_timeout() -> None:
    error = codec.error_from_response(504, b'{"error": "Deadline Exceeded"}', "http://h")
    assert isinstance(error, ShixinTimeoutError) and isinstance(error, TimeoutError)


def test_non_json_error_bodies() -> None:
    """§1.1: paths outside /v1 get an HTML 404; proxies answer overloads in HTML too."""
    html = b"<html><title>404 Not Found</title></html>"
    assert isinstance(codec.error_from_response(404, html, "http://h"), BadResponseError)
    overloaded = codec.error_from_response(503, b"<html>busy</html>", "http://h", retry_after=1.0)
    assert isinstance(overloaded, ServerUnavailableError) and overloaded.retry_after == 1.0


@pytest.mark.parametrize(
    "body",
    [
        b'{\n    "predictions": [[[1.07867766e-16, 7.11475323e-08, 0.99998796, 2.5e-06]\n    ]\n    ]\n}',
        b'{"outputs": {"softmax": [[0.5, 0.25]], "charset": ["\\u4e2d\\u6587 abc"]}}',
        b'{"predictions": [18446744073709551615, -9223372036854775808, 0]}',  # uint64 and int64 ends
        b'{"predictions": [[NaN, -Infinity, 1e-45, 3.4028235e+38]]}',
        '{"predictions": ["中文"]}'.encode("utf-16"),
    ],
)
def test_responses_read_as_pythons_json_reads_them(body: bytes) -> None:
    """The fast parser with Python's json behind it: every body gives json.loads' values."""
    got, want = codec._load(body, "response"), json.loads(body)
    assert json.dumps(got) == json.dumps(want)


def test_a_body_neither_parser_reads_is_a_bad_response() -> None:
    with pytest.raises(BadResponseError, match="response is not valid JSON"):
        codec._load(b'{"predictions": [0.5,', "response")
    with pytest.raises(BadResponseError, match="not valid JSON"):
        codec._load(b'{"predictions": ["\xff"]}', "response")
