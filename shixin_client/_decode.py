"""CTC decoding: the model's softmax [N, T, C] to class paths and Predictions.

The server returns the raw softmax; decoding runs here so that clients need neither
TensorFlow nor a decoder in the graph, and so that training measures accuracy with the
code users run. Both decoders take the blank index as an argument (Keras and TensorFlow
assume the last class) and give the same paths as ``keras.ops.ctc_decode`` (greedy) and
the top path of ``tf.nn.ctc_beam_search_decoder``.

Greedy decoding has two implementations that give identical Predictions (a property
test holds them together, ties and NaN included): numpy for numpy arrays (training, the
embedded model, big batches), and plain Python for the numpy-free :class:`Tensor` the
REST and gRPC transports return, where each frame's argmax is ``max`` then ``index``
in C (the first maximum wins, as in ``numpy.argmax``). Beam search and softmax arrays
need numpy.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional, Union

from ._exceptions import BadResponseError, require_numpy
from ._models import Prediction
from ._spec import CaptchaSpec
from ._transports.base import Tensor

if TYPE_CHECKING:
    import numpy as np

DEFAULT_BEAM_WIDTH = 16

#: A softmax: a numpy array (or anything numpy reads) or a numpy-free Tensor.
Softmax = Union["np.ndarray", Tensor]


def _check_shape(shape: tuple[int, ...], blank_index: int) -> None:
    if len(shape) != 3 or 0 in shape:
        raise ValueError(f"softmax must be a non-empty [batch, time, classes] array, got shape {shape}")
    if not 0 <= blank_index < shape[2]:
        raise ValueError(f"blank_index {blank_index} is outside the {shape[2]} classes")


def _check_softmax(softmax: Softmax, blank_index: int) -> np.ndarray:
    import numpy as np

    array = np.asarray(softmax)
    if array.ndim != 3 or 0 in array.shape:
        raise ValueError(f"softmax must be a non-empty [batch, time, classes] array, got shape {array.shape}")
    if not 0 <= blank_index < array.shape[2]:
        raise ValueError(f"blank_index {blank_index} is outside the {array.shape[2]} classes")
    return array


def _greedy_best(softmax: np.ndarray, blank_index: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame argmax and a mask of the frames that start a new non-blank run."""
    import numpy as np

    best = softmax.argmax(axis=2)
    starts = np.ones_like(best, dtype=bool)
    starts[:, 1:] = best[:, 1:] != best[:, :-1]
    return best, starts & (best != blank_index)


def greedy_decode(softmax: Softmax, blank_index: int) -> list[list[int]]:
    """Best class per frame, repeats merged, blanks dropped: ``a a - a`` gives ``a a``."""
    if isinstance(softmax, Tensor):
        _check_shape(softmax.shape, blank_index)
        return [path for path, _ in _greedy_python(softmax, blank_index)]
    require_numpy("greedy decoding of a numpy array")
    best, keep = _greedy_best(_check_softmax(softmax, blank_index), blank_index)
    return _rows(best, keep)


def _greedy_python(softmax: Tensor, blank: int) -> list[tuple[list[int], list[float]]]:
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


def _rows(best: np.ndarray, keep: np.ndarray) -> list[list[int]]:
    """The kept classes of each row, as lists: one flat conversion, then slices."""
    import numpy as np

    values = best[keep].tolist()
    ends = np.cumsum(keep.sum(axis=1)).tolist()
    return [values[start:end] for start, end in zip([0, *ends[:-1]], ends, strict=True)]


def beam_search_decode(
    softmax: Softmax, blank_index: int, beam_width: int = DEFAULT_BEAM_WIDTH
) -> list[list[int]]:
    """The most probable label sequence of a CTC prefix beam search, per batch row.

    The search follows TensorFlow's CTCBeamSearchDecoder step for step, including its
    pruning order, so both return the same top path (see :func:`_beam_search_row`).
    """
    numpy = require_numpy("beam search (beam_width)")
    array = _check_softmax(softmax, blank_index)
    if isinstance(beam_width, bool) or not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width must be a positive int, got {beam_width!r}")
    with numpy.errstate(divide="ignore"):
        log_probs = numpy.log(array.astype(numpy.float64))
    return [_beam_search_row(row, blank_index, beam_width) for row in log_probs]


def _beam_search_row(log_probs: np.ndarray, blank: int, beam_width: int) -> list[int]:
    """One row of TensorFlow's beam search (tensorflow/core/util/ctc/ctc_beam_search.h).

    Each step first advances the prefixes in the beam, then visits them in descending
    order of their previous probability and offers every one-label extension to a beam
    of ``beam_width`` that evicts its lowest entry. Two details of that order change
    results and are kept: a beam prefix evicted before its parent is visited loses its
    own extensions for that step, and a prefix is only extended when its previous
    probability times the frame's best class probability beats the beam's lowest entry.
    """
    import numpy as np

    labels = np.delete(np.arange(log_probs.shape[1]), blank)
    prefixes: list[tuple[int, ...]] = [()]
    p_blank = np.array([0.0])  # log P(prefix, the path so far ends in a blank)
    p_label = np.array([-np.inf])  # log P(prefix, the path so far ends in its last label)
    for frame in log_probs:
        p_total = np.logaddexp(p_blank, p_label)
        index = {prefix: i for i, prefix in enumerate(prefixes)}
        last = np.array([prefix[-1] if prefix else blank for prefix in prefixes])
        # children[parent] maps a label to the beam prefix that is parent + label.
        children: dict[int, dict[int, int]] = {}
        from_parent = np.full(len(prefixes), -np.inf)
        for i, prefix in enumerate(prefixes):
            parent = index.get(prefix[:-1]) if prefix else None
            if parent is not None:
                children.setdefault(parent, {})[prefix[-1]] = i
                from_parent[i] = p_blank[parent] if last[parent] == prefix[-1] else p_total[parent]
        # Prefixes in the beam stay on a blank or on their last label, or are reached
        # again from their parent; new prefixes extend one (a repeat needs a blank).
        new_blank = p_total + frame[blank]
        new_label = np.logaddexp(p_label, from_parent) + np.where(last == blank, -np.inf, frame[last])
        extend = np.where(last[:, None] == labels, p_blank[:, None], p_total[:, None]) + frame[labels]
        beam = _Beam(beam_width)
        for i, score in enumerate(np.logaddexp(new_blank, new_label).tolist()):
            beam.push(score, i)
        best = frame.max()
        extended: list[tuple[tuple[int, ...], float]] = []
        wiped: set[int] = set()
        for i, prefix in enumerate(prefixes):
            if i in wiped or not beam.admits(p_total[i] + best):
                continue
            known = children.get(i, {})
            # The floor only rises, so extensions under it now are rejected later too;
            # of those, only the beam's own prefixes still matter (they may be wiped).
            hopeful = np.flatnonzero(extend[i] > beam.floor()).tolist()
            if not known:
                # No beam prefix to wipe: inserting one by one keeps the same top entries.
                beam.merge(
                    [(float(extend[i, j]), len(prefixes) + len(extended) + n) for n, j in enumerate(hopeful)]
                )
                extended.extend((prefix + (int(labels[j]),), float(extend[i, j])) for j in hopeful)
                continue
            for j in sorted(set(hopeful).union(np.searchsorted(labels, list(known)).tolist())):
                label = int(labels[j])
                child = known.get(label)
                if child is not None and beam.holds(child):
                    continue
                score = float(extend[i, j])
                if beam.admits(score):
                    beam.push(score, len(prefixes) + len(extended))
                    extended.append((prefix + (label,), score))
                elif child is not None:
                    wiped.add(child)
        kept = beam.ranked()
        old = len(prefixes)
        prefixes = [prefixes[k] if k < old else extended[k - old][0] for k in kept]
        p_blank = np.array([new_blank[k] if k < old else -np.inf for k in kept])
        p_label = np.array([new_label[k] if k < old else extended[k - old][1] for k in kept])
    return list(prefixes[0])


class _Beam:
    """A bounded min-heap of (score, key) that evicts its lowest entry when full."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.heap: list[tuple[float, int]] = []
        self.scores: dict[int, float] = {}

    def floor(self) -> float:
        """The score an entry must beat to get in."""
        return self.heap[0][0] if len(self.heap) == self.width else -math.inf

    def admits(self, score: float) -> bool:
        return score > self.floor() and score > -math.inf

    def holds(self, key: int) -> bool:
        return key in self.scores

    def push(self, score: float, key: int) -> None:
        if len(self.heap) == self.width:
            del self.scores[heapq.heappop(self.heap)[1]]
        heapq.heappush(self.heap, (score, key))
        self.scores[key] = score

    def merge(self, entries: list[tuple[float, int]]) -> None:
        """Push many at once; the same survivors as pushing them one by one."""
        if not entries:
            return
        ranked = sorted(self.heap + [e for e in entries if e[0] > -math.inf], key=lambda e: -e[0])
        self.heap = ranked[: self.width]
        heapq.heapify(self.heap)
        self.scores = {key: score for score, key in self.heap}

    def ranked(self) -> list[int]:
        return [key for _, key in sorted(self.heap, key=lambda entry: -entry[0])]


def _greedy_char_probabilities(softmax: np.ndarray, best: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
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


def greedy_confidences(softmax: np.ndarray, spec: CaptchaSpec) -> np.ndarray:
    """Per row, the confidence :func:`to_predictions` gives its greedy reading, or 0.0 when
    that reading does not have exactly ``spec.label_length`` characters (decoding then
    searches alignments, so greedy's figure says nothing). NaN stays NaN.

    Cheap enough to run on every batch: the embedded runtime uses it to decide which rows
    of its int8 model's output to trust.
    """
    import numpy as np

    array = _check_softmax(softmax, spec.blank_index)
    best, keep = _greedy_best(array, spec.blank_index)
    probabilities = _greedy_char_probabilities(array, best, keep)
    return np.array(
        [math.prod(row.tolist()) if len(row) == spec.label_length else 0.0 for row in probabilities],
        dtype=np.float64,
    )


def _aligned_char_probabilities(softmax: np.ndarray, path: list[int], blank: int) -> np.ndarray:
    """Per character of ``path``, its highest probability over the frames that the most
    probable CTC alignment of ``path`` gives it (beam search keeps no alignment)."""
    import numpy as np

    if not path:
        return np.zeros(0)
    states = np.full(2 * len(path) + 1, blank)
    states[1::2] = path
    # A label state may skip the blank before it unless it repeats the previous label.
    can_skip = np.zeros(len(states), dtype=bool)
    can_skip[3::2] = states[3::2] != states[1:-2:2]
    with np.errstate(divide="ignore"):
        emit = np.log(softmax[:, states])
    score = np.full(len(states), -np.inf)
    score[:2] = emit[0, :2]
    moves = np.zeros((len(softmax), len(states)), dtype=np.int64)
    for t in range(1, len(softmax)):
        from_prev = np.concatenate([[-np.inf], score[:-1]])
        from_skip = np.where(can_skip, np.concatenate([[-np.inf, -np.inf], score[:-2]]), -np.inf)
        options = np.stack([score, from_prev, from_skip])
        moves[t] = options.argmax(axis=0)
        score = options.max(axis=0) + emit[t]
    state = len(states) - 1 if score[-1] >= score[-2] else len(states) - 2
    best = np.zeros(len(path))
    for t in range(len(softmax) - 1, -1, -1):
        if state % 2:
            best[state // 2] = max(best[state // 2], softmax[t, states[state]])
        state -= moves[t, state]
    return best


def alphabet_classes(spec: CaptchaSpec, alphabet: str) -> list[int]:
    """The classes of ``alphabet``'s characters (case folded); one the model cannot read is an error."""
    if not isinstance(alphabet, str) or not alphabet:
        raise ValueError(f"alphabet must be a non-empty string of characters, got {alphabet!r}")
    unknown = "".join(sorted({char for char in alphabet.lower() if char not in spec.charset}))
    if unknown:
        raise ValueError(f"alphabet has {unknown!r}, which the model cannot read (charset {spec.charset!r})")
    return sorted({spec.char_to_class(char) for char in alphabet.lower()})


def _banned(spec: CaptchaSpec, alphabet: str) -> list[int]:
    allowed = set(alphabet_classes(spec, alphabet)) | {spec.blank_index}
    return [c for c in range(spec.num_classes) if c not in allowed]


def _restrict_tensor(softmax: Tensor, spec: CaptchaSpec, alphabet: str) -> Tensor:
    """A copy in which every class outside ``alphabet`` (the blank stays) has probability 0.

    Decoding then never reads those characters: a frame's best class is the best allowed
    one, and the exact-length pass cannot route a label through them either.
    """
    banned = _banned(spec, alphabet)
    values = list(softmax.values)
    for offset in range(0, len(values), softmax.shape[2]):
        for c in banned:
            values[offset + c] = 0.0
    return Tensor(softmax.dtype, softmax.shape, values)


def _restrict_array(softmax: np.ndarray, spec: CaptchaSpec, alphabet: str) -> np.ndarray:
    """:func:`_restrict_tensor` for a numpy softmax."""
    array = softmax.copy()
    array[..., _banned(spec, alphabet)] = 0.0
    return array


def to_predictions(
    softmax: Softmax,
    spec: CaptchaSpec,
    *,
    beam_width: Optional[int] = None,
    keep_softmax: bool = False,
    alphabet: Optional[str] = None,
) -> list[Prediction]:
    """Softmax rows to Predictions: greedy by default, beam search when ``beam_width`` is set.

    ``alphabet`` limits what may be read to those characters (``SITE_ALPHABET`` for the
    site's own captchas, which never show ``0``, ``1``, ``j`` or ``o``); ``keep_softmax``
    still returns the softmax as the model gave it.

    Every captcha has exactly ``spec.label_length`` characters, so a non-empty decoded
    path of any other length is certainly wrong (the reference model sometimes emitted an extra
    trailing character; ours sometimes merges two). Such a row is decoded again as the
    most probable frame-by-frame alignment that has exactly ``label_length`` characters
    (:func:`_exact_length_alignment`); a path that already has the right length is kept,
    and greedy's path is then that alignment anyway. Only when no such alignment exists
    (too few frames, or NaN in the row) does a longer path lose its least probable
    characters, and a shorter one stay as it is, never padded. ``confidence`` is the
    product of the kept characters' probabilities (0.0 when nothing was recognised).
    A :class:`Tensor` is decoded greedily without numpy; beam search and
    ``keep_softmax`` need numpy.
    """
    if isinstance(softmax, Tensor):
        _check_promised(softmax.shape, spec)
        if beam_width is None and not keep_softmax:
            read = _restrict_tensor(softmax, spec, alphabet) if alphabet is not None else softmax
            return [
                _prediction(spec, *_fit_length(spec, path, probabilities, read, row), None)
                for row, (path, probabilities) in enumerate(_greedy_python(read, spec.blank_index))
            ]
        feature = (
            "beam search (beam_width)" if beam_width is not None else "softmax arrays (with_softmax=True)"
        )
        softmax = require_numpy(feature).asarray(softmax)
    array = require_numpy("decoding a numpy softmax").asarray(softmax)
    _check_promised(array.shape, spec)
    allowed = _restrict_array(array, spec, alphabet) if alphabet is not None else array
    if beam_width is None:
        best, keep = _greedy_best(allowed, spec.blank_index)
        paths = _rows(best, keep)
        char_probabilities = [p.tolist() for p in _greedy_char_probabilities(allowed, best, keep)]
    else:
        paths = beam_search_decode(allowed, spec.blank_index, beam_width)
        char_probabilities = [
            _aligned_char_probabilities(row, path, spec.blank_index).tolist()
            for row, path in zip(allowed, paths, strict=True)
        ]
    return [
        _prediction(
            spec,
            *_fit_length(spec, path, probabilities, allowed, index),
            array[index].copy() if keep_softmax else None,
        )
        for index, (path, probabilities) in enumerate(zip(paths, char_probabilities, strict=True))
    ]


def _fit_length(
    spec: CaptchaSpec, path: list[int], probabilities: list[float], softmax: Softmax, row: int
) -> tuple[list[int], list[float]]:
    """``path`` when it has ``label_length`` characters, else the best alignment that has.

    An empty path stays empty: a row with no character at all is not a misread captcha,
    and four guessed characters would hide that.
    """
    if len(path) in (0, spec.label_length):
        return path, probabilities
    if isinstance(softmax, Tensor):
        steps, classes = softmax.shape[1], softmax.shape[2]
        start = row * steps * classes
        frames = [softmax.values[start + t * classes : start + (t + 1) * classes] for t in range(steps)]
    else:
        frames = softmax[row].tolist()
    fitted = _exact_length_alignment(frames, spec.blank_index, spec.label_length)
    return fitted if fitted is not None else (path, probabilities)


def _exact_length_alignment(
    frames: Sequence[Sequence[float]], blank: int, length: int
) -> Optional[tuple[list[int], list[float]]]:
    """The most probable single alignment (one class per frame) whose collapsed path has
    exactly ``length`` labels, as (path, each label's best probability over its frames).

    Greedy decoding is the most probable alignment of any length, so this is the same
    criterion with the length known. A Viterbi pass over (labels so far, class of the
    last frame): a frame repeats the last class (same label), is blank, or starts the
    next label with a different class. ``None`` when no alignment fits or a frame has NaN.
    """
    classes = len(frames[0])
    # score[k][c]: best log-probability so far with k labels, the last frame being class c.
    score = [[-math.inf] * classes for _ in range(length + 1)]
    score[0][blank] = 0.0
    steps: list[list[list[tuple[int, int]]]] = []
    for frame in frames:
        if any(math.isnan(p) for p in frame):
            return None
        log_p = [math.log(p) if p > 0 else -math.inf for p in frame]
        new = [[-math.inf] * classes for _ in range(length + 1)]
        came_from = [[(0, 0)] * classes for _ in range(length + 1)]
        for k, row in enumerate(score):
            top = max(range(classes), key=row.__getitem__)
            new[k][blank], came_from[k][blank] = row[top] + log_p[blank], (k, top)
            # The best previous class for a new label is the best one that differs from it.
            ranked = sorted(range(classes), key=score[k - 1].__getitem__, reverse=True)[:2] if k else []
            for c in range(classes):
                if c == blank:
                    continue
                best, source = row[c], (k, c)
                if ranked:
                    before = ranked[0] if ranked[0] != c else ranked[1]
                    if score[k - 1][before] > best:
                        best, source = score[k - 1][before], (k - 1, before)
                new[k][c], came_from[k][c] = best + log_p[c], source
        score = new
        steps.append(came_from)
    last = max(range(classes), key=score[length].__getitem__)
    if score[length][last] == -math.inf:
        return None
    alignment = []
    k, c = length, last
    for came_from in reversed(steps):
        alignment.append(c)
        k, c = came_from[k][c]
    path: list[int] = []
    probabilities: list[float] = []
    previous = blank
    for frame, c in zip(frames, reversed(alignment), strict=True):
        if c != blank and c != previous:
            path.append(c)
            probabilities.append(frame[c])
        elif c != blank:
            probabilities[-1] = max(probabilities[-1], frame[c])
        previous = c
    return path, probabilities


def _check_promised(shape: tuple[int, ...], spec: CaptchaSpec) -> None:
    if len(shape) != 3 or 0 in shape or shape[2] != spec.num_classes:
        raise BadResponseError(
            f"softmax has shape {list(shape)}; the model promised [batch, time, {spec.num_classes}]"
        )


def _prediction(spec: CaptchaSpec, path: list[int], probabilities: list[float], softmax: Any) -> Prediction:
    """Keep the ``label_length`` most probable characters (ties: the earlier one; NaN last)."""
    order = sorted(range(len(path)), key=lambda k: (math.isnan(probabilities[k]), -probabilities[k]))
    kept = sorted(order[: spec.label_length])
    kept_probabilities = tuple(float(probabilities[k]) for k in kept)
    return Prediction(
        text="".join(spec.class_to_char(path[k]) for k in kept),
        confidence=math.prod(kept_probabilities) if kept_probabilities else 0.0,
        char_probabilities=kept_probabilities,
        softmax=softmax,
    )
