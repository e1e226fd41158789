"""Row 7: our numpy CTC decoders against Keras' and TensorFlow's, on one softmax batch.

The softmax is synthetic and seeded: peaked frames over random labels, blanks and
repeats, so paths have merges and dropped blanks everywhere (a trained model's output
is easier: nearly one-hot). Outputs must be identical path for path.
"""

from __future__ import annotations

import numpy as np

from shixin_client._config import DEFAULT_BEAM_WIDTH
from shixin_client._decode.beam import beam_search_decode
from shixin_client._decode.greedy import greedy_decode
from shixin_client._spec import DEFAULT_SPEC

from ._context import Context
from ._results import Row, Target, measured
from ._timing import per_call

SOFTMAX_SEED = 7
#: Calls per timing round of the greedy decoders: one call takes about a millisecond.
GREEDY_CALLS = 20


def synthetic_softmax(batch: int, seed: int = SOFTMAX_SEED) -> np.ndarray:
    """A [batch, time_steps, classes] float32 softmax; each frame favours one class, blank often."""
    spec = DEFAULT_SPEC
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 1.0, size=(batch, spec.time_steps, spec.num_classes))
    favoured = np.where(
        rng.random((batch, spec.time_steps)) < 0.5,
        spec.blank_index,
        rng.integers(0, spec.num_classes, size=(batch, spec.time_steps)),
    )
    np.put_along_axis(
        logits, favoured[..., None], rng.uniform(1.0, 6.0, size=(batch, spec.time_steps, 1)), axis=2
    )
    exp = np.exp(logits - logits.max(axis=2, keepdims=True))
    return (exp / exp.sum(axis=2, keepdims=True)).astype(np.float32)


def _dense_paths(dense: np.ndarray) -> list[list[int]]:
    return [[int(c) for c in row if c >= 0] for row in dense]


def keras_greedy(softmax: np.ndarray) -> np.ndarray:
    import keras

    lengths = np.full(len(softmax), softmax.shape[1], dtype=np.int32)
    decoded, _ = keras.ops.ctc_decode(
        softmax, lengths, strategy="greedy", mask_index=DEFAULT_SPEC.blank_index
    )
    return np.asarray(decoded)[0]


def tf_beam_top_paths(softmax: np.ndarray, beam_width: int) -> list[list[int]]:
    """TensorFlow's CTC beam search (blank last), top path per row."""
    import tensorflow as tf

    inputs = tf.math.log(tf.transpose(tf.constant(softmax), (1, 0, 2)))
    lengths = tf.fill([len(softmax)], softmax.shape[1])
    decoded, _ = tf.nn.ctc_beam_search_decoder(inputs, lengths, beam_width=beam_width, top_paths=1)
    dense = tf.sparse.to_dense(decoded[0], default_value=-1).numpy()
    paths = _dense_paths(dense)
    return paths + [[] for _ in range(len(softmax) - len(paths))]


def decoding_rows(ctx: Context) -> list[Row]:
    counts = ctx.counts
    blank = DEFAULT_SPEC.blank_index
    softmax = synthetic_softmax(counts.decode_batch)
    ours = greedy_decode(softmax, blank)
    same_greedy = ours == _dense_paths(keras_greedy(softmax))
    greedy = per_call(
        {"ours": lambda: greedy_decode(softmax, blank), "keras": lambda: keras_greedy(softmax)},
        GREEDY_CALLS,
        counts.decode_rounds,
    )
    beam_input = softmax[: counts.beam_rows]
    beam_ours = beam_search_decode(beam_input, blank, DEFAULT_BEAM_WIDTH)
    beam_tf = tf_beam_top_paths(beam_input, DEFAULT_BEAM_WIDTH)
    differing = sum(a != b for a, b in zip(beam_ours, beam_tf, strict=True))
    beam = per_call(
        {
            "ours": lambda: beam_search_decode(beam_input, blank, DEFAULT_BEAM_WIDTH),
            "tf": lambda: tf_beam_top_paths(beam_input, DEFAULT_BEAM_WIDTH),
        },
        1,
        max(1, counts.decode_rounds // 2),
    )
    shape = f"[{counts.decode_batch}, {softmax.shape[1]}, {softmax.shape[2]}]"
    return [
        measured(
            "7a",
            7,
            "Greedy CTC decode",
            f"`shixin_client._decode.greedy.greedy_decode` vs `keras.ops.ctc_decode(strategy='greedy', "
            f"mask_index={blank})` (to numpy) on one seeded synthetic softmax {shape}; wall time per call, "
            f"{GREEDY_CALLS} calls x {counts.decode_rounds} alternating rounds, median; the paths must be "
            "identical",
            "ms",
            greedy["ours"] * 1e3,
            greedy["keras"] * 1e3,
            Target("<", 1.0, "identical paths, faster than Keras"),
            required=(same_greedy, "paths differ from Keras"),
            extra={"identical": same_greedy},
        ),
        measured(
            "7b",
            7,
            "Beam search CTC decode",
            f"`beam_search_decode(beam_width={DEFAULT_BEAM_WIDTH})` vs the top path of "
            f"`tf.nn.ctc_beam_search_decoder` on the log of the first {len(beam_input)} rows of the same "
            "softmax; top paths must be identical (time is reported, no target)",
            "ms",
            beam["ours"] * 1e3,
            beam["tf"] * 1e3,
            Target("any", 0.0, "identical top paths"),
            required=(differing == 0, f"{differing} of {len(beam_input)} top paths differ from TensorFlow's"),
            note="" if differing else f"all {len(beam_input)} top paths identical",
            extra={"rows": len(beam_input), "differing": differing},
        ),
    ]
