"""REST behaviour checked against docs/tf-serving-compat.md, section by section."""

from __future__ import annotations

import base64
import gzip
import io
import json
import random

import numpy as np
import pytest
import requests
from PIL import Image

from shixin_client.server.testing import RunningServer

from .conftest import PROMETHEUS_PATH


def get(server: RunningServer, path: str) -> requests.Response:
    return requests.get(server.rest_url + path, timeout=30)


def post(
    server: RunningServer, path: str, body: object = None, *, data: bytes | None = None
) -> requests.Response:
    if data is None:
        data = json.dumps(body).encode()
    return requests.post(server.rest_url + path, data=data, timeout=30)


def error_of(response: requests.Response) -> str:
    assert response.headers["Content-Type"] == "application/json"  # §1.1, errors included
    return response.json()["error"]


# §1.1 transport ------------------------------------------------------------------------


def test_non_v1_paths_get_a_plain_404(server: RunningServer) -> None:
    response = get(server, "/models/half")
    assert response.status_code == 404
    assert "application/json" not in response.headers["Content-Type"]


def test_v1_prefix_is_case_insensitive(server: RunningServer) -> None:
    # §1.2: both regexes are (?i).
    assert get(server, "/V1/MODELS/half").status_code == 200


def test_gzip_request_body_is_accepted(server: RunningServer) -> None:
    # §1.1: Content-Encoding: gzip bodies are gunzipped.
    body = gzip.compress(json.dumps({"instances": [2.0]}).encode())
    response = requests.post(
        server.rest_url + "/v1/models/half:predict",
        data=body,
        headers={"Content-Encoding": "gzip"},
        timeout=30,
    )
    assert response.json() == {"predictions": [4.0]}


# §1.2 URLs and methods -----------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/v1/models/half/",
        "/v1/models/half/version/1",
        "/v1/models/half/versions/abc",
        "/v1/models/half/versions/1/labels/x",
        "/v1/models/half:predict",
    ],
)
def test_malformed_get_paths(server: RunningServer, path: str) -> None:
    response = get(server, path)
    assert response.status_code == 400
    assert error_of(response) == f"Malformed request: GET {path}"


def test_post_metadata_and_other_methods_are_malformed(server: RunningServer) -> None:
    response = post(server, "/v1/models/half/metadata", {})
    assert error_of(response) == "Malformed request: POST /v1/models/half/metadata"
    response = requests.put(server.rest_url + "/v1/models/half", timeout=30)
    assert response.status_code == 400
    assert error_of(response) == "Malformed request: PUT /v1/models/half"


def test_verb_is_case_sensitive(server: RunningServer) -> None:
    response = post(server, "/v1/models/half:PREDICT", {"instances": [1.0]})
    assert response.status_code == 400
    assert error_of(response) == "Malformed request: POST /v1/models/half:PREDICT"


def test_missing_model_name_and_huge_version(server: RunningServer) -> None:
    assert error_of(get(server, "/v1/models")) == "Missing model name in request."
    big = "99999999999999999999"
    response = get(server, f"/v1/models/half/versions/{big}")
    assert response.status_code == 400
    assert error_of(response) == f"Failed to convert version: {big} to numeric."


def test_model_name_is_percent_decoded(server: RunningServer) -> None:
    # §1.2: %68 is "h"; the decoded name must reach the model lookup.
    assert get(server, "/v1/models/%68alf").status_code == 200
    response = get(server, "/v1/models/a%2Bb")
    assert error_of(response) == "Could not find any versions of model a+b"


# §1.7 status and metadata --------------------------------------------------------------


def test_status_lists_versions_as_strings(server: RunningServer) -> None:
    body = get(server, "/v1/models/half").json()
    assert body == {
        "model_version_status": [
            {"version": "2", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
            {"version": "1", "state": "AVAILABLE", "status": {"error_code": "OK", "error_message": ""}},
        ]
    }
    one = get(server, "/v1/models/half/versions/1").json()
    assert [row["version"] for row in one["model_version_status"]] == ["1"]


def test_status_by_label_ignores_the_label(server: RunningServer) -> None:
    # §1.2 "Surprise": even an unknown label returns every version.
    body = get(server, "/v1/models/half/labels/nonexistent").json()
    assert [row["version"] for row in body["model_version_status"]] == ["2", "1"]


def test_status_errors(server: RunningServer) -> None:
    # §1.8 table.
    response = get(server, "/v1/models/nope")
    assert (response.status_code, error_of(response)) == (404, "Could not find any versions of model nope")
    response = get(server, "/v1/models/half/versions/50")
    assert (response.status_code, error_of(response)) == (404, "Could not find version 50 of model half")


def test_metadata_nests_signature_def_twice(server: RunningServer) -> None:
    body = get(server, "/v1/models/half/versions/1/metadata").json()
    assert body["model_spec"] == {"name": "half", "signature_name": "", "version": "1"}
    signature = body["metadata"]["signature_def"]["signature_def"]["serving_default"]
    x = signature["inputs"]["x"]
    assert x["dtype"] == "DT_FLOAT"
    assert x["tensor_shape"] == {"dim": [{"size": "-1", "name": ""}], "unknown_rank": False}
    assert signature["outputs"]["y"]["dtype"] == "DT_FLOAT"
    assert signature["method_name"] == "tensorflow/serving/predict"
    assert "times_ten" in body["metadata"]["signature_def"]["signature_def"]


def test_metadata_resolves_labels_and_latest(server: RunningServer) -> None:
    assert get(server, "/v1/models/half/metadata").json()["model_spec"]["version"] == "2"
    assert get(server, "/v1/models/half/labels/stable/metadata").json()["model_spec"]["version"] == "1"
    response = get(server, "/v1/models/half/labels/beta/metadata")
    assert (response.status_code, error_of(response)) == (400, "Unrecognized servable version label: beta")


# §1.3-§1.5 predict ---------------------------------------------------------------------


def test_reference_client_flow(server: RunningServer) -> None:
    x = np.array([1.0, 2.0, 5.0], dtype=np.float32)
    response = requests.post(
        f"{server.rest_url}/v1/models/half:predict", json={"instances": x.tolist()}, timeout=30
    )
    assert response.status_code == 200
    assert response.json()["predictions"] == [3.5, 4.0, 5.5]  # latest version: 0.5 x + 3


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/models/half/versions/1:predict", [2.5]),
        ("/v1/models/half/versions/2:predict", [3.5]),
        ("/v1/models/half/labels/stable:predict", [2.5]),
        ("/v1/models/half/labels/canary:predict", [3.5]),
    ],
)
def test_version_and_label_routing(server: RunningServer, path: str, expected: list[float]) -> None:
    assert post(server, path, {"instances": [1]}).json() == {"predictions": expected}


def test_routing_errors(server: RunningServer) -> None:
    # §1.8 table; §5.2: unknown label is 400, unknown model or version 404.
    response = post(server, "/v1/models/nope:predict", {"instances": [1.0]})
    assert (response.status_code, error_of(response)) == (404, "Servable not found for request: Latest(nope)")
    response = post(server, "/v1/models/half/versions/50:predict", {"instances": [1.0]})
    assert (response.status_code, error_of(response)) == (
        404,
        "Servable not found for request: Specific(half, 50)",
    )
    response = post(server, "/v1/models/half/labels/beta:predict", {"instances": [1.0]})
    assert (response.status_code, error_of(response)) == (400, "Unrecognized servable version label: beta")


def test_signature_selection(server: RunningServer) -> None:
    body = {"signature_name": "times_ten", "instances": [1.5]}
    assert post(server, "/v1/models/half:predict", body).json() == {"predictions": [15.0]}
    response = post(server, "/v1/models/half:predict", {"signature_name": "nope", "instances": [1.0]})
    assert response.status_code == 400
    assert error_of(response) == 'Serving signature name: "nope" not found in signature def'


def test_columnar_single_output_is_the_whole_tensor(server: RunningServer) -> None:
    assert post(server, "/v1/models/half:predict", {"inputs": [1.0, 3.0]}).json() == {"outputs": [3.5, 4.5]}
    assert post(server, "/v1/models/half:predict", {"inputs": {"x": [1.0]}}).json() == {"outputs": [3.5]}


def test_several_outputs_row_and_columnar(server: RunningServer) -> None:
    rows = post(server, "/v1/models/toolbox:predict", {"instances": [[1, 2], [3, 4]]}).json()
    assert rows == {"predictions": [{"sum": 3.0, "scaled": [2.0, 4.0]}, {"sum": 7.0, "scaled": [6.0, 8.0]}]}
    columns = post(server, "/v1/models/toolbox:predict", {"inputs": [[1, 2], [3, 4]]}).json()
    assert columns == {"outputs": {"sum": [3.0, 7.0], "scaled": [[2.0, 4.0], [6.0, 8.0]]}}


def test_rank0_output_in_row_format_fails_after_running(server: RunningServer) -> None:
    # §1.5: row format needs rank >= 1 outputs; columnar writes a bare scalar.
    response = post(server, "/v1/models/toolbox:predict", {"signature_name": "total", "instances": [[1, 2]]})
    assert (response.status_code, error_of(response)) == (400, "Tensor name: total has no shape information ")
    body = {"signature_name": "total", "inputs": [[1, 2], [3, 4]]}
    assert post(server, "/v1/models/toolbox:predict", body).json() == {"outputs": 10.0}


def test_several_inputs_row_format_needs_exact_keys(server: RunningServer) -> None:
    ok = {"signature_name": "two_inputs", "instances": [{"a": 1.5, "b": 2}, {"a": 0, "b": -1}]}
    assert post(server, "/v1/models/toolbox:predict", ok).json() == {"predictions": [3.5, -1.0]}
    missing = {"signature_name": "two_inputs", "instances": [{"a": 1.5}]}
    assert error_of(post(server, "/v1/models/toolbox:predict", missing)) == (
        "Failed to process element: 0 of 'instances' list. "
        'JSON object: {"a":1.5} keys must be equal to: a,b'
    )
    plain = {"signature_name": "two_inputs", "instances": [1.0]}
    assert error_of(post(server, "/v1/models/toolbox:predict", plain)).startswith(
        "instances is a plain list, but expecting list of objects"
    )


def test_columnar_several_inputs(server: RunningServer) -> None:
    # §1.3: every input must be present; extra keys are ignored.
    body = {"signature_name": "two_inputs", "inputs": {"a": [1.0], "b": [2], "zzz": 1}}
    assert post(server, "/v1/models/toolbox:predict", body).json() == {"outputs": [3.0]}
    body = {"signature_name": "two_inputs", "inputs": {"a": [1.0]}}
    assert (
        error_of(post(server, "/v1/models/toolbox:predict", body))
        == "Missing named input: b in 'inputs' object."
    )


def test_int_inputs_reject_floats(server: RunningServer) -> None:
    # §1.4: DT_INT32 rejects 1.0; DT_FLOAT accepts integers.
    body = {"signature_name": "two_inputs", "inputs": {"a": [1], "b": [1.0]}}
    response = post(server, "/v1/models/toolbox:predict", body)
    assert error_of(response) == "JSON Value: 1.0 Type: Number is not of expected type: int32"


def test_b64_inputs_and_bytes_outputs(server: RunningServer) -> None:
    # §1.4: {"b64"} in, "_bytes" outputs wrapped, other strings raw (even invalid UTF-8).
    body = {"signature_name": "strings", "instances": ["a\n", {"b64": base64.b64encode(b"\xff").decode()}]}
    response = post(server, "/v1/models/toolbox:predict", body)
    assert response.status_code == 200
    assert b'"echo": "\xff"' in response.content
    decoded = json.loads(response.content.decode("utf-8", "surrogateescape"))
    assert decoded["predictions"][0] == {"echo": "a\n", "echo_bytes": {"b64": "YQo="}, "length": 2}
    assert decoded["predictions"][1]["echo_bytes"] == {"b64": "/w=="}
    bad = {"signature_name": "strings", "instances": [{"b64": "!!!"}]}
    assert "Unable to base64 decode" in error_of(post(server, "/v1/models/toolbox:predict", bad))


def test_png_model_decodes_in_graph_and_rejects_corrupt_files(server: RunningServer) -> None:
    buffer = io.BytesIO()
    Image.new("L", (4, 3), color=200).save(buffer, format="PNG")
    good = {"b64": base64.b64encode(buffer.getvalue()).decode()}
    assert post(server, "/v1/models/png:predict", {"instances": [good]}).json() == {"predictions": [200.0]}
    named = {"instances": [{"image_bytes": good}]}  # §1.3: one input may be keyed by its name
    assert post(server, "/v1/models/png:predict", named).json() == {"predictions": [200.0]}
    corrupt = {"b64": base64.b64encode(b"not an image").decode()}
    response = post(server, "/v1/models/png:predict", {"instances": [good, corrupt]})
    assert response.status_code == 400  # tf.errors.InvalidArgumentError -> INVALID_ARGUMENT
    assert "image" in error_of(response).lower()
    assert post(server, "/v1/models/png:predict", {"instances": [good]}).status_code == 200


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "JSON Parse error: The document is empty"),
        (b"   ", "JSON Parse error: The document is empty"),
        (b"{bad", "JSON Parse error: Missing a name for object member. at offset: 1"),
        (b"nope", "JSON Parse error: Invalid value. at offset: 0"),
        (b"[1]", "JSON Value: [1] Is not object"),
        (b"{}", "Missing 'inputs' or 'instances' key"),
        (
            b'{"inputs": [1], "instances": [1]}',
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist",
        ),
        (b'{"instances": []}', "No values in 'instances' array"),
        (b'{"instances": 3}', "Expecting 'instances' to be an list/array"),
        (
            b'{"signature_name": 1, "instances": [1]}',
            'JSON Value: {"signature_name":1,"instances":[1]} not formatted correctly. '
            "'signature_name' key must be a string value.",
        ),
        (
            b'{"instances": ["x"]}',
            "Failed to process element: 0 of 'instances' list. Error: INVALID_ARGUMENT: "
            'JSON Value: "x" Type: String is not of expected type: float',
        ),
        (
            b'{"instances": [[1], [1, 2]]}',
            "Failed to process element: 1 of 'instances' list. Error: INVALID_ARGUMENT: "
            "Expecting tensor size: 1 but got: 2",
        ),
        (b'{"inputs": [[1], [1, 2]]}', "Encountered list at unexpected size: 2 at level: 1 expected size: 1"),
    ],
)
def test_malformed_json_bodies(server: RunningServer, data: bytes, message: str) -> None:
    # §1.3 and §1.8: every one is 400 with TF Serving's text.
    response = post(server, "/v1/models/half:predict", data=data)
    assert (response.status_code, error_of(response)) == (400, message)


def test_malformed_json_beats_unknown_model(server: RunningServer) -> None:
    # §1.3 / §5.2: parsing comes first, so 400 rather than 404.
    assert post(server, "/v1/models/nope:predict", data=b"{").status_code == 400


def test_rapidjson_leniencies(server: RunningServer) -> None:
    # §1.3: NaN/Infinity tokens, trailing bytes, first duplicate key wins, extra keys ignored.
    body = b'{"instances": [NaN, Infinity], "instances": [1], "extra": 1} trailing'
    response = post(server, "/v1/models/half:predict", data=body)
    assert response.status_code == 200
    assert response.text.replace(" ", "").replace("\n", "") == '{"predictions":[NaN,Infinity]}'


def test_shape_mismatch_is_a_clear_400(server: RunningServer) -> None:
    response = post(server, "/v1/models/toolbox:predict", {"instances": [[1, 2, 3]]})
    assert response.status_code == 400
    assert "shape [1,3]" in error_of(response)


def test_classify_against_a_predict_signature(server: RunningServer) -> None:
    # §1.6: the method-name check.
    response = post(server, "/v1/models/half:classify", {"examples": [{"x": 1.0}]})
    assert response.status_code == 400
    assert error_of(response) == (
        "Expected classification signature method_name to be tensorflow/serving/classify. "
        "Was: tensorflow/serving/predict"
    )


# §3.2 prometheus, body limit, robustness -----------------------------------------------


def test_prometheus_counts_requests_per_model(server: RunningServer) -> None:
    post(server, "/v1/models/half:predict", {"instances": [1.0]})
    post(server, "/v1/models/nope:predict", {"instances": [1.0]})
    response = get(server, PROMETHEUS_PATH)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = response.text
    assert ':tensorflow:serving:request_count{model_name="half",status="OK"}' in text
    assert ':tensorflow:serving:request_count{model_name="nope",status="NOT_FOUND"}' in text
    assert "# TYPE :tensorflow:serving:request_latency histogram" in text
    assert (
        ':tensorflow:serving:request_latency_count{model_name="half",API="Predict",entrypoint="REST"}' in text
    )


def test_body_over_the_limit_gets_413_json(server: RunningServer) -> None:
    response = post(server, "/v1/models/half:predict", data=b"[" + b"1," * 200_000 + b"1]")
    assert response.status_code == 413
    assert "limit" in error_of(response)
    assert post(server, "/v1/models/half:predict", {"instances": [1.0]}).status_code == 200


def _random_json(rng: random.Random, depth: int = 0) -> object:
    choice = rng.randrange(9 if depth < 4 else 5)
    if choice == 0:
        return rng.choice([None, True, False])
    if choice == 1:
        return rng.choice([0, -1, 2**40, 2**70, 1.5, -1e300])
    if choice == 2:
        return rng.choice(["", "x", "\u00e9", "\x00"])
    if choice == 3:
        return {"b64": rng.choice(["AA==", "!!", ""])}
    if choice == 4:
        return rng.choice(["instances", "inputs", "signature_name"])
    if choice < 7:
        return [_random_json(rng, depth + 1) for _ in range(rng.randrange(4))]
    keys = ["instances", "inputs", "signature_name", "x", "a", "b", "s"]
    return {rng.choice(keys): _random_json(rng, depth + 1) for _ in range(rng.randrange(4))}


def test_fuzz_bodies_only_get_4xx(server: RunningServer) -> None:
    rng = random.Random(1234)
    paths = ["/v1/models/half:predict", "/v1/models/toolbox:predict", "/v1/models/png:predict"]
    with requests.Session() as session:
        for index in range(200):
            if index % 4 == 0:
                data = bytes(rng.randrange(256) for _ in range(rng.randrange(40)))
            else:
                document = _random_json(rng)
                if isinstance(document, dict) and rng.random() < 0.5:
                    document["signature_name"] = rng.choice(
                        ["two_inputs", "strings", "total", "serving_default"]
                    )
                data = json.dumps(document).encode()
            response = session.post(server.rest_url + rng.choice(paths), data=data, timeout=30)
            assert response.status_code < 500 or response.status_code == 501, (data, response.text)
            if response.status_code != 200:
                assert "error" in response.json()
    assert post(server, "/v1/models/half:predict", {"instances": [1.0]}).status_code == 200
