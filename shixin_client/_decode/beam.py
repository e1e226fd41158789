"""CTC prefix beam search, step for step TensorFlow's, and the alignment it implies.

Needs numpy. The search follows TensorFlow's CTCBeamSearchDecoder including its pruning
order, so both return the same top path (see :func:`_beam_search_row`).
"""

from __future__ import annotations

import heapq
import math
from typing import TYPE_CHECKING

from .._config import DEFAULT_BEAM_WIDTH, positive_int
from .._exceptions import require_numpy
from .softmax import Softmax, check_softmax

if TYPE_CHECKING:
    import numpy as np


def beam_search_decode(
    softmax: Softmax, blank_index: int, beam_width: int = DEFAULT_BEAM_WIDTH
) -> list[list[int]]:
    """The most probable label sequence of a CTC prefix beam search, per batch row."""
    numpy = require_numpy("beam search (beam_width)")
    array = numpy.asarray(softmax)
    check_softmax(array, blank_index)
    positive_int("beam_width", beam_width)
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


def aligned_char_probabilities(softmax: np.ndarray, path: list[int], blank: int) -> np.ndarray:
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
