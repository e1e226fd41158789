"""The half of ``export check`` that runs in a fresh process: load, describe, run.

A fresh interpreter holds no Keras objects and no traced functions, so whatever works
here works for TF Serving: the SavedModel alone must carry the graph, the weights and
the in-graph preprocessing. It prints the signatures as ``saved_model_cli show --all``
does, runs every signature on the sample files and writes the outputs to an ``.npz``
that the parent compares with the Keras model.

Usage: ``python -m export._check_worker <version dir> <samples dir> <out.npz>``
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

from shixin_client._images import preprocess
from shixin_client._spec import (
    DESCRIBE_OUTPUTS,
    INPUT_BYTES,
    INPUT_DESCRIBE,
    INPUT_FLOAT,
    OUTPUT_SOFTMAX,
    SIGNATURE_BYTES,
    SIGNATURE_DESCRIBE,
    SIGNATURE_FLOAT,
    CaptchaSpec,
)

from .warmup import read_warmup


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


def main(argv: list[str]) -> int:
    version_dir, samples_dir, out_path = (Path(arg) for arg in argv)
    print(show_all(version_dir), flush=True)
    loaded = tf.saved_model.load(str(version_dir))
    described = loaded.signatures[SIGNATURE_DESCRIBE](**{INPUT_DESCRIBE: tf.constant([0, 1], tf.int32)})
    facts = {name: described[name].numpy()[0] for name in DESCRIBE_OUTPUTS}
    spec = CaptchaSpec(
        charset=facts["charset"].decode("utf-8"),
        **{name: int(value) for name, value in facts.items() if name != "charset"},
    )
    files = [path.read_bytes() for path in sorted(samples_dir.iterdir())]
    floats = np.stack([preprocess(data, spec) for data in files])
    outputs = {
        "floats": floats,
        SIGNATURE_FLOAT: loaded.signatures[SIGNATURE_FLOAT](**{INPUT_FLOAT: tf.constant(floats)})[
            OUTPUT_SOFTMAX
        ],
        SIGNATURE_BYTES: loaded.signatures[SIGNATURE_BYTES](**{INPUT_BYTES: tf.constant(files)})[
            OUTPUT_SOFTMAX
        ],
    }
    warmup = []
    for log in read_warmup(version_dir):
        request = log.predict_log.request
        signature = request.model_spec.signature_name
        loaded.signatures[signature](
            **{key: tf.constant(tf.make_ndarray(proto)) for key, proto in request.inputs.items()}
        )
        warmup.append({"signature": signature, "inputs": sorted(request.inputs)})
    report = {
        "signatures": sorted(loaded.signatures.keys()),
        "spec": {name: getattr(spec, name) for name in DESCRIBE_OUTPUTS},
        "describe_rows": int(described["charset"].shape[0]),
        "warmup": warmup,
    }
    arrays: dict[str, Any] = {key: np.asarray(value) for key, value in outputs.items()}
    np.savez(out_path, report=np.array(json.dumps(report)), **arrays)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
