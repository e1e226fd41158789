"""The half of ``export check`` that runs in a fresh process: load the export as TF Serving does.

TF Serving never runs Python's ``tf.saved_model.load``: it restores a SavedModel with
TensorFlow's C++ loader into a graph session (the SaverDef's restore op, then the init
op) and serves each request with ``Session::Run`` on the signature's tensor names
(docs/tf-serving-compat.md §3.3). This worker does exactly that through
``tf.compat.v1.saved_model.loader.load``, runs every signature and every warm-up record,
and writes the outputs to an ``.npz`` that the parent compares with the Keras model.

It imports nothing from this repository, only numpy, TensorFlow and the TF Serving protos,
so any Python with another TensorFlow (say, the version inside the pinned serving image)
can run it by path: ``export check --python /path/to/venv/bin/python``.

Usage: ``python _check_worker.py <version dir> <inputs.npz> <samples dir> <out.npz>``
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.core.protobuf import meta_graph_pb2, saved_model_pb2
from tensorflow_serving.apis import prediction_log_pb2

SERVE_TAG = "serve"
WARMUP_FILE = Path("assets.extra") / "tf_serving_warmup_requests"
#: The signatures the check feeds itself, by the dtype of their one input.
FEEDS = {types_pb2.DT_FLOAT: "floats", types_pb2.DT_STRING: "files", types_pb2.DT_INT32: "rows"}


def _shape(info: meta_graph_pb2.TensorInfo) -> str:
    if info.tensor_shape.unknown_rank:
        return "unknown_rank"
    dims = [str(dim.size) for dim in info.tensor_shape.dim]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def show_all(version_dir: Path) -> str:
    """The SignatureDefs in ``saved_model_cli show --all`` layout, read from saved_model.pb."""
    saved = saved_model_pb2.SavedModel.FromString((version_dir / "saved_model.pb").read_bytes())
    lines = []
    for meta_graph in saved.meta_graphs:
        tags = ", ".join(f"'{tag}'" for tag in meta_graph.meta_info_def.tags)
        lines += [f"MetaGraphDef with tag-set: {tags} contains the following SignatureDefs:", ""]
        for name in sorted(meta_graph.signature_def):
            signature = meta_graph.signature_def[name]
            lines.append(f"signature_def['{name}']:")
            for kind, tensors in (("input", signature.inputs), ("output", signature.outputs)):
                lines.append(f"  The given SavedModel SignatureDef contains the following {kind}(s):")
                for key in sorted(tensors):
                    info = tensors[key]
                    lines += [
                        f"    {kind}s['{key}'] tensor_info:",
                        f"        dtype: {types_pb2.DataType.Name(info.dtype)}",
                        f"        shape: {_shape(info)}",
                        f"        name: {info.name}",
                    ]
            lines += [f"  Method name is: {signature.method_name}", ""]
    return "\n".join(lines)


def _status(exc: BaseException) -> str:
    """``FailedPreconditionError: Could not find variable ...``: the error class and its first line."""
    lines = [line for line in str(getattr(exc, "message", exc)).splitlines() if line.strip()]
    if lines and lines[0].startswith("Graph execution error"):  # Python's preamble, not TF's status
        lines = lines[1:]
    return f"{type(exc).__name__}: {lines[0].strip() if lines else ''}"


def _run(session: Any, signature: Any, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
    fetches = {alias: info.name for alias, info in signature.outputs.items()}
    return session.run(fetches, {signature.inputs[alias].name: value for alias, value in feeds.items()})


def main(argv: list[str]) -> int:
    version_dir, inputs_path, samples_dir, out_path = (Path(arg) for arg in argv)
    print(show_all(version_dir), flush=True)
    with np.load(inputs_path) as npz:
        fed: dict[str, Any] = {"floats": npz["floats"], "rows": np.arange(2, dtype=np.int32)}
    fed["files"] = np.array([path.read_bytes() for path in sorted(samples_dir.iterdir())], dtype=object)
    report: dict[str, Any] = {"tensorflow": tf.__version__, "errors": [], "warmup": [], "describe": {}}
    outputs: dict[str, np.ndarray] = {}
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, [SERVE_TAG], str(version_dir))
        signatures = {k: v for k, v in meta_graph.signature_def.items() if not k.startswith("__")}
        report["signatures"] = sorted(signatures)
        for name, signature in sorted(signatures.items()):
            dtypes = [info.dtype for info in signature.inputs.values()]
            if len(dtypes) != 1 or dtypes[0] not in FEEDS:
                report["errors"].append(f"{name}: no sample input for inputs {sorted(signature.inputs)}")
                continue
            (alias,) = signature.inputs
            try:
                result = _run(session, signature, {alias: fed[FEEDS[dtypes[0]]]})
            except tf.errors.OpError as exc:
                report["errors"].append(f"{name}: {_status(exc)}")
                continue
            if dtypes[0] == types_pb2.DT_INT32:
                report["describe"] = {
                    key: (value[0].decode("utf-8") if value.dtype == object else int(value[0]))
                    for key, value in result.items()
                }
                report["describe_rows"] = {key: int(value.shape[0]) for key, value in result.items()}
            else:
                outputs.update({f"{name}/{key}": np.asarray(value) for key, value in result.items()})
        warmup_path = version_dir / WARMUP_FILE
        records = tf.compat.v1.io.tf_record_iterator(str(warmup_path)) if warmup_path.is_file() else []
        for index, record in enumerate(records):
            request = prediction_log_pb2.PredictionLog.FromString(record).predict_log.request
            name = request.model_spec.signature_name or "serving_default"
            report["warmup"].append(name)
            if name not in signatures:
                report["errors"].append(f"warm-up record {index}: no signature {name!r}")
                continue
            feeds = {alias: tf.make_ndarray(proto) for alias, proto in request.inputs.items()}
            try:
                _run(session, signatures[name], feeds)
            except (tf.errors.OpError, KeyError, ValueError) as exc:
                report["errors"].append(f"warm-up record {index} ({name}): {_status(exc)}")
    arrays: dict[str, Any] = {"report": np.array(json.dumps(report)), **outputs}
    np.savez(out_path, **arrays)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
