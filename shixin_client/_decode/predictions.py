"""Softmax rows to :class:`~shixin_client.Prediction` objects: the decoding users run."""

from __future__ import annotations

import math
from typing import Any, Optional

from .._exceptions import require_numpy
from .._models import Prediction
from .._spec import CaptchaSpec
from .._tensor import Tensor
from .alphabet import restrict_array, restrict_tensor
from .beam import aligned_char_probabilities, beam_search_decode
from .greedy import greedy_best, greedy_char_probabilities, greedy_python, greedy_rows
from .length import fit_length
from .softmax import Softmax, as_softmax, check_softmax


def decode_softmax(
    softmax: Softmax,
    spec: CaptchaSpec,
    *,
    beam_width: Optional[int] = None,
    keep_softmax: bool = False,
    alphabet: Optional[str] = None,
) -> list[Prediction]:
    """Softmax rows [batch, time, classes] to Predictions, as the client decodes them.

    Greedy by default, beam search when ``beam_width`` is set. ``alphabet`` limits what
    may be read to those characters (``SITE_ALPHABET`` for the site's own captchas,
    which never show ``0``, ``1``, ``j`` or ``o``); ``keep_softmax`` still returns each
    row's softmax as the model gave it.

    Every captcha has exactly ``spec.label_length`` characters, so a non-empty decoded
    path of any other length is decoded again as the most probable frame-by-frame
    alignment with exactly ``label_length`` characters; a path that already has the
    right length is kept. Only when no such alignment exists (too few frames, or NaN in
    the row) does a longer path lose its least probable characters, and a shorter one
    stay as it is, never padded. ``confidence`` is the product of the kept characters'
    probabilities (0.0 when nothing was recognised).

    ``softmax`` is a numpy array (or anything numpy reads) or the numpy-free Tensor the
    REST and gRPC transports return, decoded greedily without numpy; beam search and
    ``keep_softmax`` need numpy. A softmax that is not the float [batch, time,
    spec.num_classes] the spec promises is a BadResponseError.
    """
    return predictions(softmax, spec, beam_width=beam_width, keep_softmax=keep_softmax, alphabet=alphabet)


def predictions(
    softmax: Softmax,
    spec: CaptchaSpec,
    *,
    beam_width: Optional[int],
    keep_softmax: bool,
    alphabet: Optional[str],
    rows: Optional[int] = None,
) -> list[Prediction]:
    """:func:`decode_softmax`, and for the client also a check that it has ``rows`` rows."""
    softmax = as_softmax(softmax, "decoding a numpy softmax")
    check_softmax(softmax, spec.blank_index, classes=spec.num_classes, rows=rows)
    if isinstance(softmax, Tensor):
        if beam_width is None and not keep_softmax:
            read = restrict_tensor(softmax, spec, alphabet) if alphabet is not None else softmax
            return [
                _prediction(spec, *fit_length(spec, path, probabilities, read, row), None)
                for row, (path, probabilities) in enumerate(greedy_python(read, spec.blank_index))
            ]
        feature = (
            "beam search (beam_width)" if beam_width is not None else "softmax arrays (with_softmax=True)"
        )
        softmax = require_numpy(feature).asarray(softmax)
    array: Any = softmax
    allowed = restrict_array(array, spec, alphabet) if alphabet is not None else array
    if beam_width is None:
        best, keep = greedy_best(allowed, spec.blank_index)
        paths = greedy_rows(best, keep)
        char_probabilities = [p.tolist() for p in greedy_char_probabilities(allowed, best, keep)]
    else:
        paths = beam_search_decode(allowed, spec.blank_index, beam_width)
        char_probabilities = [
            aligned_char_probabilities(row, path, spec.blank_index).tolist()
            for row, path in zip(allowed, paths, strict=True)
        ]
    return [
        _prediction(
            spec,
            *fit_length(spec, path, probabilities, allowed, index),
            array[index].copy() if keep_softmax else None,
        )
        for index, (path, probabilities) in enumerate(zip(paths, char_probabilities, strict=True))
    ]


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
