"""A decoded path of the wrong length, refitted to the captcha's known label length.

Every captcha has exactly ``spec.label_length`` characters, so a non-empty decoded path
of any other length is certainly wrong (the reference model sometimes emitted an extra
trailing character; ours sometimes merges two). Such a row is decoded again as the most
probable frame-by-frame alignment that has exactly ``label_length`` characters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Optional

from .._spec import CaptchaSpec
from .._tensor import Tensor
from .softmax import Softmax


def fit_length(
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
