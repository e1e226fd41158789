"""JSON <-> tensors for the REST API, as TF Serving does it (docs/tf-serving-compat.md §1.3-§1.5).

TF Serving parses with rapidjson and writes with its own number formatting; this module
reproduces the parts a client can observe: which documents are accepted, the error
texts, the response keys, ``%g`` float text, bare ``NaN``/``Infinity`` tokens, raw
(unvalidated) strings and ``{"b64": ...}`` for ``_bytes`` outputs.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from shixin_client.protocol import json_shape

from ._status import ServingError, invalid_argument

# TF's DataType enum values (tensorflow/core/framework/types.proto) and DataTypeString names.
DT_FLOAT, DT_DOUBLE, DT_INT32, DT_UINT8, DT_INT16, DT_INT8, DT_STRING = 1, 2, 3, 4, 5, 6, 7
DT_INT64, DT_BOOL, DT_UINT32, DT_UINT64 = 9, 10, 22, 23
DTYPE_NAMES: dict[int, str] = {
    1: "float",
    2: "double",
    3: "int32",
    4: "uint8",
    5: "int16",
    6: "int8",
    7: "string",
    8: "complex64",
    9: "int64",
    10: "bool",
    14: "bfloat16",
    17: "uint16",
    18: "complex128",
    19: "half",
    22: "uint32",
    23: "uint64",
}
NUMPY_BY_DTYPE: dict[int, Any] = {
    DT_FLOAT: np.float32,
    DT_DOUBLE: np.float64,
    DT_INT32: np.int32,
    DT_UINT8: np.uint8,
    DT_INT16: np.int16,
    DT_INT8: np.int8,
    DT_STRING: object,
    DT_INT64: np.int64,
    DT_BOOL: np.bool_,
    DT_UINT32: np.uint32,
    DT_UINT64: np.uint64,
}
_INT_RANGES: dict[int, tuple[int, int]] = {
    # §1.4 accepts any int32 for the small types and lets TF wrap; here out of range is an error.
    DT_INT32: (-(2**31), 2**31 - 1),
    DT_INT16: (-(2**15), 2**15 - 1),
    DT_INT8: (-(2**7), 2**7 - 1),
    DT_UINT8: (0, 2**8 - 1),
    DT_INT64: (-(2**63), 2**63 - 1),
    DT_UINT32: (0, 2**32 - 1),
    DT_UINT64: (0, 2**64 - 1),
}
_JSON_DEBUG_LIMIT = 256  # §1.8: echoed documents are cut to 256 bytes.
_BYTES_SUFFIX = "_bytes"  # §1.4: DT_STRING outputs named like this are base64-wrapped.

# Python's json messages -> rapidjson's GetParseError_En texts (§1.8).
_PARSE_MESSAGES = (
    ("Expecting value", "Invalid value."),
    ("Expecting property name", "Missing a name for object member."),
    ("Expecting ':' delimiter", "Missing a colon after a name of object member."),
    ("Unterminated string", "Missing a closing quotation mark in string."),
    ("Invalid \\", "Invalid escape character in string."),
    ("Invalid control character", "Invalid encoding in string."),
)


def dtype_name(dtype: int) -> str:
    return DTYPE_NAMES.get(dtype, f"DT_{dtype}")


def parse_json(body: bytes) -> Any:
    """Parse like TF Serving's rapidjson flags: NaN/Infinity allowed, trailing bytes ignored,
    first of duplicate keys wins (§1.3)."""
    text = body.decode("utf-8", "surrogateescape")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    if start == len(text):
        raise invalid_argument("JSON Parse error: The document is empty")
    decoder = json.JSONDecoder(object_pairs_hook=_first_key_wins)
    try:
        value, _ = decoder.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        offset = len(text[: exc.pos].encode("utf-8", "surrogateescape"))
        raise invalid_argument(
            f"JSON Parse error: {_rapidjson_message(exc, text)} at offset: {offset}"
        ) from None
    except RecursionError:
        raise invalid_argument("JSON Parse error: the document nests too deeply for this server") from None
    return value


def _first_key_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


def _rapidjson_message(exc: json.JSONDecodeError, text: str) -> str:
    if exc.msg.startswith("Expecting ',' delimiter"):
        if _innermost_bracket(text[: exc.pos]) == "{":
            return "Missing a comma or '}' after an object member."
        return "Missing a comma or ']' after an array element."
    for prefix, message in _PARSE_MESSAGES:
        if exc.msg.startswith(prefix):
            return message
    return "Invalid value."


def _innermost_bracket(prefix: str) -> str:
    stack: list[str] = []
    in_string = escaped = False
    for char in prefix:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            stack.append(char)
        elif char in "]}" and stack:
            stack.pop()
    return stack[-1] if stack else ""


def json_debug_string(value: Any) -> str:
    """rapidjson's compact rendering of a value, as error messages echo it."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=True)
    return text[:_JSON_DEBUG_LIMIT]


def _json_type_name(value: Any) -> str:
    if value is None:
        return "Null"
    if value is True:
        return "True"
    if value is False:
        return "False"
    if isinstance(value, dict):
        return "Object"
    if isinstance(value, list):
        return "Array"
    if isinstance(value, str):
        return "String"
    return "Number"


def _is_b64(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("b64"), str)


@dataclass(frozen=True)
class PredictDocument:
    """A parsed predict body, before the model is known (§1.3 checks these first)."""

    document: dict[str, Any]
    signature_name: str


def read_predict_document(body: bytes, default_signature: str) -> PredictDocument:
    document = parse_json(body)
    if not isinstance(document, dict):
        raise invalid_argument(f"JSON Value: {json_debug_string(document)} Is not object")
    signature_name = document.get("signature_name", default_signature)
    if not isinstance(signature_name, str):
        raise invalid_argument(
            f"JSON Value: {json_debug_string(document)} not formatted correctly. "
            "'signature_name' key must be a string value."
        )
    return PredictDocument(document, signature_name)


def fill_inputs(
    document: Mapping[str, Any], input_dtypes: Mapping[str, int]
) -> tuple[dict[str, np.ndarray], bool]:
    """Turn ``instances`` or ``inputs`` into tensors; the flag says whether it was row format."""
    has_instances = "instances" in document
    has_inputs = "inputs" in document
    if has_instances and has_inputs:
        raise invalid_argument(
            "Not formatted correctly expecting only one of 'inputs' or 'instances' keys to exist"
        )
    if has_instances:
        return _fill_from_instances(document["instances"], input_dtypes), True
    if has_inputs:
        return _fill_from_inputs(document["inputs"], input_dtypes), False
    raise invalid_argument("Missing 'inputs' or 'instances' key")


def _fill_from_instances(instances: Any, input_dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    if not isinstance(instances, list):
        raise invalid_argument("Expecting 'instances' to be an list/array")
    if not instances:
        raise invalid_argument("No values in 'instances' array")
    names = sorted(input_dtypes)
    named = isinstance(instances[0], dict) and not _is_b64(instances[0])
    if not named and len(names) > 1:
        raise invalid_argument(
            "instances is a plain list, but expecting list of objects as multiple input tensors "
            "required as per tensorinfo_map"
        )
    collected: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for index, element in enumerate(instances):
        is_object = isinstance(element, dict) and not _is_b64(element)
        if named and not is_object:
            raise invalid_argument(f"Expecting object but got list at item {index} of input list")
        if not named and is_object:
            raise invalid_argument(f"Expecting value/list but got object at item {index} of input list")
        if named:
            if sorted(element) != names:
                raise invalid_argument(
                    f"Failed to process element: {index} of 'instances' list. JSON object: "
                    f"{json_debug_string(element)} keys must be equal to: {','.join(names)}"
                )
            for name in names:
                where = f"{index} key: {name}"
                collected[name].append(
                    _instance_item(element[name], input_dtypes[name], collected[name], where)
                )
        else:
            name = names[0]
            collected[name].append(_instance_item(element, input_dtypes[name], collected[name], str(index)))
    return {name: np.stack(items) for name, items in collected.items()}


def _instance_item(value: Any, dtype: int, previous: list[np.ndarray], where: str) -> np.ndarray:
    try:
        item = json_to_array(value, dtype)
        if previous:
            expected = previous[0]
            if item.size != expected.size:
                raise invalid_argument(f"Expecting tensor size: {expected.size} but got: {item.size}")
            if item.shape != expected.shape:
                raise invalid_argument(
                    f"Expecting shape {_shape_text(expected.shape)} but got: {_shape_text(item.shape)}"
                )
    except ServingError as exc:
        raise invalid_argument(
            f"Failed to process element: {where} of 'instances' list. Error: {exc.to_string()}"
        ) from None
    return item


def _fill_from_inputs(inputs: Any, input_dtypes: Mapping[str, int]) -> dict[str, np.ndarray]:
    if isinstance(inputs, dict) and not _is_b64(inputs):
        result = {}
        for name in sorted(input_dtypes):
            if name not in inputs:
                raise invalid_argument(f"Missing named input: {name} in 'inputs' object.")
            result[name] = json_to_array(inputs[name], input_dtypes[name])
        return result
    if len(input_dtypes) != 1:
        raise invalid_argument(
            "inputs is a plain value/list, but expecting an object as multiple input tensors "
            "required as per tensorinfo_map"
        )
    ((name, dtype),) = input_dtypes.items()
    return {name: json_to_array(inputs, dtype)}


def _shape_text(shape: tuple[int, ...]) -> str:
    return "[" + ",".join(str(dim) for dim in shape) + "]"


def json_to_array(value: Any, dtype: int) -> np.ndarray:
    """One JSON value (scalar, nested list or b64 object) as a tensor whose shape is its nesting."""
    if dtype not in NUMPY_BY_DTYPE:
        raise ServingError(
            "UNIMPLEMENTED",
            f"Conversion of JSON Value: {json_debug_string(value)} to type: {dtype_name(dtype)}",
        )
    shape = json_shape(value)
    flat: list[Any] = []
    _flatten(value, shape, 0, dtype, flat)
    array = np.array(flat, dtype=NUMPY_BY_DTYPE[dtype])
    return array.reshape(shape)


def _flatten(value: Any, shape: list[int], level: int, dtype: int, out: list[Any]) -> None:
    if isinstance(value, list):
        if level >= len(shape):
            raise invalid_argument(f"Encountered list at unexpected level: {level} expected < {len(shape)}")
        if len(value) != shape[level]:
            raise invalid_argument(
                f"Encountered list at unexpected size: {len(value)} at level: {level} "
                f"expected size: {shape[level]}"
            )
        for item in value:
            _flatten(item, shape, level + 1, dtype, out)
        return
    if level != len(shape):
        raise invalid_argument(
            f"JSON Value: {json_debug_string(value)} found at incorrect level: {level + 1} in the JSON DOM. "
            f"Expected at level: {len(shape)}"
        )
    out.append(_scalar(value, dtype))


def _type_error(value: Any, dtype: int) -> ServingError:
    return invalid_argument(
        f"JSON Value: {json_debug_string(value)} Type: {_json_type_name(value)} "
        f"is not of expected type: {dtype_name(dtype)}"
    )


def _scalar(value: Any, dtype: int) -> Any:
    if dtype == DT_STRING:
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if _is_b64(value):
            return _b64decode(value["b64"])
        raise _type_error(value, dtype)
    if dtype == DT_BOOL:
        if isinstance(value, bool):
            return value
        raise _type_error(value, dtype)
    if dtype in (DT_FLOAT, DT_DOUBLE):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _type_error(value, dtype)
        if isinstance(value, int) and abs(value) > 2**1023:
            return math.copysign(math.inf, value)
        return float(value)
    low, high = _INT_RANGES[dtype]
    if type(value) is not int or not low <= value <= high:
        raise _type_error(value, dtype)
    return value


def _b64decode(text: str) -> bytes:
    padded = text + "=" * (-len(text) % 4)
    try:
        return base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument("Unable to base64 decode") from None


# ---- responses (§1.5) -------------------------------------------------------------------


def predict_response(outputs: Mapping[str, np.ndarray], row_format: bool) -> bytes:
    if not outputs:
        raise invalid_argument("Cannot convert empty tensor map to JSON")
    names = sorted(outputs)
    if row_format:
        batch = None
        for name in names:
            tensor = outputs[name]
            if tensor.ndim == 0:
                raise invalid_argument(f"Tensor name: {name} has no shape information ")
            if batch is None:
                batch = tensor.shape[0]
            elif tensor.shape[0] != batch:
                raise invalid_argument(
                    f"Tensor name: {name} has inconsistent batch size: {tensor.shape[0]} expecting: {batch}"
                )
        if len(names) == 1:
            (name,) = names
            rows = [_tensor_text(row, name) for row in outputs[name]]
        else:
            rows = [
                "{"
                + ", ".join(f"{_string_text(n.encode())}: {_tensor_text(outputs[n][i], n)}" for n in names)
                + "}"
                for i in range(batch or 0)
            ]
        body = '{\n    "predictions": [' + ", ".join(rows) + "]\n}"
    else:
        if len(names) == 1:
            content = _tensor_text(outputs[names[0]], names[0])
        else:
            content = (
                "{"
                + ", ".join(f"{_string_text(n.encode())}: {_tensor_text(outputs[n], n)}" for n in names)
                + "}"
            )
        body = '{\n    "outputs": ' + content + "\n}"
    return body.encode("utf-8", "surrogateescape")


def _tensor_text(value: Any, name: str) -> str:
    tensor = np.asarray(value)
    if tensor.dtype == np.float32:
        texts = _decimal_texts(tensor.ravel(), ".9g", np.float32)
    elif tensor.dtype == np.float64:
        texts = _decimal_texts(tensor.ravel(), ".17g", np.float64)
    else:
        writer = _scalar_writer(tensor.dtype, name)
        texts = [str(writer(item)) for item in tensor.ravel().tolist()]
    return _nested_text(texts, tensor.shape)


def _nested_text(texts: list[str], shape: tuple[int, ...]) -> str:
    """Flat element texts into rapidjson's nested lists, innermost axis first."""
    for axis in range(len(shape) - 1, -1, -1):
        size, groups = shape[axis], math.prod(shape[:axis])
        texts = ["[" + ", ".join(texts[g * size : (g + 1) * size]) + "]" for g in range(groups)]
    (text,) = texts
    return text


_UNSUPPORTED_OUTPUTS = {
    "float16": "half",
    "bfloat16": "bfloat16",
    "complex64": "complex64",
    "complex128": "complex128",
    "uint16": "uint16",
}


def _scalar_writer(dtype: np.dtype, name: str) -> Any:
    if dtype == np.bool_:
        return lambda v: "true" if v else "false"
    if dtype.kind in "iu" and dtype.name not in _UNSUPPORTED_OUTPUTS:
        return str
    if dtype.kind in "OSa":
        if name.endswith(_BYTES_SUFFIX):
            return lambda v: '{"b64": "' + base64.b64encode(_as_bytes(v)).decode("ascii") + '"}'
        return lambda v: _string_text(_as_bytes(v))
    raise invalid_argument(
        f"Failed to write JSON value for tensor type: {_UNSUPPORTED_OUTPUTS.get(dtype.name, dtype.name)}"
    )


def _as_bytes(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode("utf-8")


def _decimal_texts(values: np.ndarray, precise: str, kind: Any) -> list[str]:
    """absl::StrCat's 6 digits where they round-trip, else full precision; '.0' on integral values.

    The same text as formatting each value on its own, but the round-trip check is one
    numpy comparison: a softmax row of 1,480 floats is written in a fraction of the time.
    """
    doubles = values.astype(np.float64).tolist()
    texts = (("%g\0" * len(doubles)) % tuple(doubles)).split("\0")[:-1]
    with np.errstate(invalid="ignore", over="ignore"):
        parsed = np.array(texts, dtype=np.float64).astype(kind)
    redo = np.flatnonzero(parsed != values).tolist()
    if redo:
        precise_texts = ((f"%{precise}\0" * len(redo)) % tuple([doubles[i] for i in redo])).split("\0")
        for i, text in zip(redo, precise_texts, strict=False):
            texts[i] = text
    finite = np.isfinite(values)
    for i in np.flatnonzero(~finite).tolist():
        value = doubles[i]
        texts[i] = "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    with np.errstate(invalid="ignore"):
        integral = finite & (values == np.trunc(values))
    for i in np.flatnonzero(integral).tolist():
        if "." not in texts[i] and "e" not in texts[i]:
            texts[i] += ".0"
    return texts


_SHORT_ESCAPES = {0x08: "\\b", 0x09: "\\t", 0x0A: "\\n", 0x0C: "\\f", 0x0D: "\\r", 0x22: '\\"', 0x5C: "\\\\"}


def _string_text(raw: bytes) -> str:
    """rapidjson's string writer: escapes quotes, backslashes and controls, copies other bytes raw."""
    parts = ['"']
    for char in raw.decode("utf-8", "surrogateescape"):
        code = ord(char)
        if code in _SHORT_ESCAPES:
            parts.append(_SHORT_ESCAPES[code])
        elif code < 0x20:
            parts.append(f"\\u{code:04X}")
        else:
            parts.append(char)
    parts.append('"')
    return "".join(parts)


def error_body(message: str) -> bytes:
    """``{"error": ...}`` as TF Serving's MakeJsonFromStatus writes it (§1.8)."""
    return ('{ "error": ' + _string_text(message.encode("utf-8", "surrogateescape")) + " }").encode(
        "utf-8", "surrogateescape"
    )
