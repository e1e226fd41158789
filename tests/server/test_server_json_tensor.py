"""The JSON codec's number, string and dtype rules (docs/tf-serving-compat.md §1.4-§1.5); no server."""

from __future__ import annotations

import json

import numpy as np
import pytest

from shixin_client.server._json_tensor import (
    DT_BOOL,
    DT_FLOAT,
    DT_INT64,
    fill_inputs,
    json_to_array,
    parse_json,
    predict_response,
)
from shixin_client.server._status import ServingError

DT_HALF = 19


def outputs_text(outputs: dict[str, np.ndarray], row_format: bool = False) -> str:
    return predict_response(outputs, row_format).decode("utf-8", "surrogateescape")


def compact(text: str) -> str:
    return text.replace(" ", "").replace("\n", "")


@pytest.mark.parametrize(
    ("value", "text"),
    [(3, "3.0"), (9000000, "9e+06"), (0.00003, "3e-05"), (555557.5, "555557.5"), (0.1, "0.1"), (-2, "-2.0")],
)
def test_float_output_uses_g_then_full_precision(value: float, text: str) -> None:
    # §1.4 WriteDecimal [test: SixDigitPrecision].
    assert compact(outputs_text({"y": np.array(value, np.float32)})) == '{"outputs":' + text + "}"


def test_float_output_falls_back_to_nine_digits() -> None:
    value = np.float32(1.2345678)
    text = compact(outputs_text({"y": np.array(value)}))
    assert text == '{"outputs":1.23456776}'
    assert np.float32(json.loads(text)["outputs"]) == value


def one_value_text(value: float, kind: type) -> str:
    """§1.4 WriteDecimal for one value, written out plainly: the oracle for the vectorised writer."""
    if np.isnan(value):
        return "NaN"
    if np.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    text = f"{value:g}"
    if kind(float(text)) != kind(value):
        text = f"{value:{'.9g' if kind is np.float32 else '.17g'}}"
    if "." not in text and "e" not in text:
        text += ".0"
    return text


@pytest.mark.parametrize("kind", [np.float32, np.float64])
def test_float_outputs_match_the_one_value_rule(kind: type) -> None:
    rng = np.random.default_rng(7)
    softmax = rng.random((3, 40, 37)) ** 8
    softmax /= softmax.sum(-1, keepdims=True)
    special = [0.0, -0.0, 1.0, 3.0, 1e6, 123456.0, 16777217.0, 1e-45, 5e-324, 3.4028235e38, 0.1, 1 / 3]
    special += [np.nan, np.inf, -np.inf, 555557.5, 2.5e-7, -1.2345678]
    integral = np.round(rng.normal(0, 50, 200))
    mixed = np.concatenate([softmax.ravel(), rng.normal(0, 1e4, 500), integral, special])
    values = mixed.astype(kind)
    with np.errstate(over="ignore"):
        expected = "[" + ", ".join(one_value_text(v, kind) for v in values.tolist()) + "]"
    assert outputs_text({"y": values}) == '{\n    "outputs": ' + expected + "\n}"
    rows = softmax.astype(kind).tolist()

    def frame_text(frame: list[float]) -> str:
        return "[" + ",".join(one_value_text(v, kind) for v in frame) + "]"

    expected_rows = ",".join("[" + ",".join(frame_text(frame) for frame in row) + "]" for row in rows)
    written = compact(outputs_text({"y": softmax.astype(kind)}, True))
    assert written == '{"predictions":[' + expected_rows + "]}"


@pytest.mark.parametrize("shape", [(), (0,), (2, 0), (2, 0, 3), (1, 1), (2, 3, 1)])
def test_output_nesting_follows_the_shape(shape: tuple[int, ...]) -> None:
    values = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape) + 0.5
    assert json.loads(outputs_text({"y": values})) == {"outputs": values.tolist()}


def test_non_finite_outputs_are_bare_tokens() -> None:
    text = compact(outputs_text({"y": np.array([np.nan, np.inf, -np.inf], np.float32)}))
    assert text == '{"outputs":[NaN,Infinity,-Infinity]}'


def test_int64_outputs_are_bare_integers_and_bools_are_words() -> None:
    # §5.3: predict int64 outputs are numbers, not strings.
    text = compact(outputs_text({"i": np.array([2**40], np.int64), "b": np.array([True, False])}))
    assert json.loads(text) == {"outputs": {"i": [2**40], "b": [True, False]}}


def test_unsupported_output_dtype() -> None:
    with pytest.raises(ServingError) as info:
        predict_response({"c": np.array([1j], np.complex64)}, False)
    assert info.value.message == "Failed to write JSON value for tensor type: complex64"


def test_inconsistent_batch_in_row_format() -> None:
    # §1.5: row format needs the same dim 0 everywhere; a 0-row batch is an empty list.
    with pytest.raises(ServingError) as info:
        predict_response({"a": np.zeros(2), "b": np.zeros(1)}, True)
    assert info.value.message == "Tensor name: b has inconsistent batch size: 1 expecting: 2"
    assert compact(outputs_text({"a": np.zeros((0, 3), np.float32)}, True)) == '{"predictions":[]}'


def test_float_input_accepts_integers_and_loses_precision() -> None:
    # §1.4 "Floating Point Precision": 1435774380 becomes 1435774336.
    array = json_to_array([1435774380, 1], DT_FLOAT)
    assert array.dtype == np.float32
    assert int(array[0]) == 1435774336


@pytest.mark.parametrize(
    ("value", "dtype", "message"),
    [
        (1.0, DT_INT64, "JSON Value: 1.0 Type: Number is not of expected type: int64"),
        (2**63, DT_INT64, f"JSON Value: {2**63} Type: Number is not of expected type: int64"),
        (1, DT_BOOL, "JSON Value: 1 Type: Number is not of expected type: bool"),
        (None, DT_FLOAT, "JSON Value: null Type: Null is not of expected type: float"),
        ({"b64": "AA=="}, DT_FLOAT, 'JSON Value: {"b64":"AA=="} Type: Object is not of expected type: float'),
    ],
)
def test_dtype_rules(value: object, dtype: int, message: str) -> None:
    with pytest.raises(ServingError) as info:
        json_to_array(value, dtype)
    assert (info.value.code, info.value.message) == ("INVALID_ARGUMENT", message)


def test_half_inputs_are_501_columnar_and_400_row() -> None:
    # §1.4 last row / §5.8.
    with pytest.raises(ServingError) as columnar:
        fill_inputs({"inputs": [1.0]}, {"h": DT_HALF})
    assert columnar.value.http_status == 501
    with pytest.raises(ServingError) as row:
        fill_inputs({"instances": [1.0]}, {"h": DT_HALF})
    assert row.value.http_status == 400
    assert "UNIMPLEMENTED: Conversion of JSON Value: 1.0 to type: half" in row.value.message


def test_ragged_and_misplaced_values() -> None:
    # §1.3: shape inference follows element 0 at each level.
    with pytest.raises(ServingError) as info:
        json_to_array([[1], 2], DT_FLOAT)
    assert "found at incorrect level: 2" in info.value.message
    with pytest.raises(ServingError) as info:
        json_to_array([1, [2]], DT_FLOAT)
    assert info.value.message.startswith("Encountered list at unexpected level: 1")


def test_row_format_mixing_objects_and_values() -> None:
    with pytest.raises(ServingError) as info:
        fill_inputs({"instances": [{"x": 1.0}, 2.0]}, {"x": DT_FLOAT})
    assert info.value.message == "Expecting object but got list at item 1 of input list"
    with pytest.raises(ServingError) as info:
        fill_inputs({"instances": [1.0, {"x": 2.0}]}, {"x": DT_FLOAT})
    assert info.value.message == "Expecting value/list but got object at item 1 of input list"


def test_columnar_shape_is_the_nesting() -> None:
    # §1.3 [test: SingleUnnamedTensorColumnarFormat gives shape [1,3,2]].
    inputs, row_format = fill_inputs({"inputs": [[[1, 2], [3, 4], [5, 6]]]}, {"x": DT_FLOAT})
    assert not row_format
    assert inputs["x"].shape == (1, 3, 2)


def test_parse_errors_give_rapidjson_offsets() -> None:
    with pytest.raises(ServingError) as info:
        parse_json(b'{"a": [1 2]}')
    assert (
        info.value.message == "JSON Parse error: Missing a comma or ']' after an array element. at offset: 9"
    )
    with pytest.raises(ServingError) as info:
        parse_json(b'{"a": 1 "b": 2}')
    assert (
        info.value.message == "JSON Parse error: Missing a comma or '}' after an object member. at offset: 8"
    )


def test_deep_nesting_is_an_error_not_a_crash() -> None:
    with pytest.raises(ServingError) as info:
        parse_json(b"[" * 100_000 + b"]" * 100_000)
    assert info.value.code == "INVALID_ARGUMENT"
