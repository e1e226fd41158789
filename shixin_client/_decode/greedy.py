"""Greedy CTC decoding: the best class per frame, repeats merged, blanks dropped.

Two implementations give identical answers (a property test holds them together, ties
and NaN included): numpy for numpy arrays (training, the embedded model, big batches),
and plain Python for the numpy-free Tensor the REST and gRPC transports return, where
each frame's argmax is ``max`` then ``index`` in C (the first maximum wins, as in
``numpy.argmax``). Both give the same paths as ``keras.ops.ctc_decode(strategy="greedy")``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from .._exceptions import require_numpy
from .._spec import CaptchaSpec
from .._tensor import Tensor
from .softmax import Softmax, as_softmax, check_softmax

if TYPE_CHECKING:
    import numpy as np


def greedy_decode(softmax: Softmax, blank_index: int) -> list[list[int]]:
    """Best class per frame, repeats merged, blanks dropped: ``a a - a`` gives ``a a``."""
    softmax = as_softmax(softmax, "greedy decoding of a numpy array")
    check_softmax(softmax, blank_index)
    if isinstance(softmax, Tensor):
        return [path for path, _ in greedy_python(softmax, blank_index)]
    best, keep = greedy_best(softmax, blank_index)
    return greedy_rows(best, keep)


def greedy_best(softmax: np.ndarray, blank_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame argmax and a mask of the frames that start a new non-blank run."""
    import numpy as np

    best = softmax.argmax(axis=2)
    starts = np.ones_like(best, dtype=bool)
    starts[:, 1:] = best[:, 1:] != best[:, :-1]
    return best, starts & (best != blank_index)


def greedy_rows(best: np.ndarray, keep: np.ndarray) -> list[list[int]]:
    """The kept classes of each row, as lists: one flat conversion, then slices."""
    import numpy as np

    values = best[keep].tolist()
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    return [values[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


def greedy_char_probabilities(softmax: np.ndarray, best: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
    """Per emitted character, its highest probability over the frames of its run."""
    import numpy as np

    top = softmax.max(axis=2)
    run_starts = np.ones_like(best, dtype=bool)
    run_starts[:, 1:] = best[:, 1:] != best[:, :-1]
    result = []
    for row_top, row_starts, row_keep in zip(top, run_starts, keep, strict=True):
        starts = np.flatnonzero(row_starts)
        result.append(np.maximum.reduceat(row_top, starts)[row_keep[starts]])
    return result


def greedy_python(softmax: Tensor, blank: int) -> list[tuple[list[int], list[float]]]:
    """Per row, the greedy path and each kept character's best probability over its run.

    The same answer as the numpy version on every input: a frame's class is its first
    maximum, or its first NaN (``numpy.argmax``), and a run's probability is the NaN-
    propagating maximum of its frames' top values (``numpy.maximum.reduceat``).
    """
    batch, steps, classes = softmax.shape
    values = softmax.values
    rows = []
    for row in range(batch):
        start = row * steps * classes
        stop = start + steps * classes
        # One sum in C per row finds NaN (a NaN frame's max and index need care).
        careful = math.isnan(sum(values[start:stop]))
        path: list[int] = []
        probabilities: list[float] = []
        previous = -1
        for offset in range(start, stop, classes):
            frame = values[offset : offset + classes]
            top = max(frame)
            if careful and any(math.isnan(value) for value in frame):
                best = next(index for index, value in enumerate(frame) if math.isnan(value))
                top = math.nan
            else:
                best = frame.index(top)
            if best != previous:
                if best != blank:
                    path.append(best)
                    probabilities.append(top)
                previous = best
            elif (
                best != blank
                and not math.isnan(probabilities[-1])
                and (top > probabilities[-1] or top != top)
            ):
                probabilities[-1] = top
        rows.append((path, probabilities))
    return rows


def greedy_confidences(softmax: np.ndarray, spec: CaptchaSpec) -> np.ndarray:
    """Per row, the confidence :func:`~.predictions.decode_softmax` gives its greedy reading,
    or 0.0 when that reading does not have exactly ``spec.label_length`` characters
    (decoding then searches alignments, so greedy's figure says nothing). NaN stays NaN.

    Cheap enough to run on every batch: the embedded runtime uses it to decide which rows
    of its int8 model's output to trust.
    """
    numpy = require_numpy("greedy confidences")
    array = numpy.asarray(softmax)
    check_softmax(array, spec.blank_index, classes=spec.num_classes)
    best, keep = greedy_best(array, spec.blank_index)
    probabilities = greedy_char_probabilities(array, best, keep)
    return numpy.array(
        [math.prod(row.tolist()) if len(row) == spec.label_length else 0.0 for row in probabilities],
        dtype=numpy.float64,
    )
