"""numpy CTC decoding against Keras and TensorFlow, and the Prediction rules on top of it.

Greedy is compared with ``keras.ops.ctc_decode(strategy="greedy", mask_index=blank)``
(Keras' default mask_index is 0, not our blank). Beam search is compared with the top
path of ``tf.nn.ctc_beam_search_decoder``, which reads its input as logits with the blank
last; it is given float64 log-probabilities, the log of the same softmax we decode.
"""

from __future__ import annotations

import itertools
import re
from array import array
from pathlib import Path

import numpy as np
import pytest

from shixin_client import InvalidInputError, Tensor, decode_softmax
from shixin_client._decode.beam import beam_search_decode
from shixin_client._decode.greedy import greedy_confidences, greedy_decode
from shixin_client._exceptions import BadResponseError
from shixin_client._spec import BLANK_INDEX, DEFAULT_SPEC, SITE_ALPHABET, SITE_CHARS, CaptchaSpec

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

REPO = Path(__file__).resolve().parents[1]


def _softmax(logits: np.ndarray) -> np.ndarray:
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True)


def _random(seed: int, batch: int, scale: float, steps: int = 40, classes: int = 37) -> np.ndarray:
    """scale 1: nearly flat rows (hard for beam search); scale 8: peaked like a trained model."""
    logits = np.random.default_rng(seed).normal(size=(batch, steps, classes)) * scale
    return _softmax(logits).astype(np.float32)


def _keras_greedy(softmax: np.ndarray, blank: int) -> list[list[int]]:
    lengths = np.full(len(softmax), softmax.shape[1], np.int32)
    dense = keras.ops.convert_to_numpy(
        keras.ops.ctc_decode(softmax, lengths, strategy="greedy", mask_index=blank)[0][0]
    )
    return [[int(v) for v in row if v >= 0] for row in dense]


def _tf_beam(softmax: np.ndarray, beam_width: int) -> list[list[int]]:
    with np.errstate(divide="ignore"):
        log_probs = np.log(softmax.astype(np.float64))
    decoded, _ = tf.nn.ctc_beam_search_decoder(
        np.transpose(log_probs, (1, 0, 2)),
        np.full(len(softmax), softmax.shape[1], np.int32),
        beam_width=beam_width,
    )
    dense = tf.sparse.to_dense(decoded[0], default_value=-1).numpy()
    return [[int(v) for v in row if v >= 0] for row in dense]


def _real_softmax() -> np.ndarray:
    """Softmax of the model architecture on the real sample captchas: the trained model
    when it has been saved, else an untrained one with its logits sharpened x20."""
    model_module = pytest.importorskip("training.model")
    from shixin_client._images import preprocess

    images = np.stack([preprocess(path) for path in sorted((REPO / "datasets" / "real").rglob("*.jpg"))])
    trained = REPO / "models" / "shixin.keras"
    if trained.is_file():
        return np.asarray(keras.saving.load_model(trained, compile=False).predict(images, verbose=0))
    keras.utils.set_random_seed(7)
    model = model_module.build_model("default", DEFAULT_SPEC)
    logits = model_module.logits_model(model).predict(images, verbose=0)
    return np.concatenate([_softmax(logits), _softmax(logits * 20)]).astype(np.float32)


INPUTS = {
    "flat": _random(0, 24, 1.0),
    "random": _random(1, 24, 3.0),
    "peaked": _random(2, 24, 8.0),
}


@pytest.mark.parametrize("name", INPUTS)
def test_greedy_matches_keras(name):
    assert greedy_decode(INPUTS[name], BLANK_INDEX) == _keras_greedy(INPUTS[name], BLANK_INDEX)


def test_greedy_matches_keras_with_the_blank_first():
    softmax = INPUTS["random"]
    assert greedy_decode(softmax, 0) == _keras_greedy(softmax, 0)


@pytest.mark.parametrize("beam_width", [1, 4, 16])
@pytest.mark.parametrize("name", INPUTS)
def test_beam_search_top_path_matches_tensorflow(name, beam_width):
    softmax = INPUTS[name][:12]
    assert beam_search_decode(softmax, BLANK_INDEX, beam_width) == _tf_beam(softmax, beam_width)


def test_both_match_on_real_model_outputs():
    softmax = _real_softmax()
    assert greedy_decode(softmax, BLANK_INDEX) == _keras_greedy(softmax, BLANK_INDEX)
    assert beam_search_decode(softmax, BLANK_INDEX, 16) == _tf_beam(softmax, 16)


def _path_softmax(frames: str, spec: CaptchaSpec = DEFAULT_SPEC, sure: float = 0.9) -> np.ndarray:
    """One row whose every frame is ``sure`` of one class; '-' is the blank."""
    classes = [spec.blank_index if ch == "-" else spec.char_to_class(ch) for ch in frames]
    row = np.full((len(classes), spec.num_classes), (1 - sure) / (spec.num_classes - 1))
    row[np.arange(len(classes)), classes] = sure
    return row[None].astype(np.float32)


def test_repeats_separated_by_a_blank_survive_and_others_merge():
    softmax = _path_softmax("-aa-a--ff-e---")
    expected = [[DEFAULT_SPEC.char_to_class(c) for c in "aafe"]]
    assert greedy_decode(softmax, BLANK_INDEX) == expected
    assert beam_search_decode(softmax, BLANK_INDEX) == expected
    assert [p.text for p in decode_softmax(softmax, DEFAULT_SPEC)] == ["aafe"]
    assert [p.text for p in decode_softmax(softmax, DEFAULT_SPEC, beam_width=8)] == ["aafe"]


def test_confidence_is_the_product_of_the_characters_probabilities():
    softmax = _path_softmax("-a-b-c-d-")
    softmax[0, 3, DEFAULT_SPEC.char_to_class("b")] = 0.6  # one unsure frame (rows need not sum to 1 here)
    for beam_width in (None, 4):
        (prediction,) = decode_softmax(softmax, DEFAULT_SPEC, beam_width=beam_width)
        assert prediction.text == "abcd"
        assert prediction.char_probabilities == pytest.approx((0.9, 0.6, 0.9, 0.9))
        assert prediction.confidence == pytest.approx(0.9 * 0.6 * 0.9 * 0.9)
        assert prediction.softmax is None


def test_a_character_takes_its_best_frame():
    softmax = _path_softmax("-aaa-b-c-d-")
    softmax[0, 2, DEFAULT_SPEC.char_to_class("a")] = 0.99
    for beam_width in (None, 4):
        assert decode_softmax(softmax, DEFAULT_SPEC, beam_width=beam_width)[
            0
        ].char_probabilities == pytest.approx((0.99, 0.9, 0.9, 0.9))


def test_a_path_longer_than_the_label_drops_its_least_probable_characters():
    softmax = _path_softmax("-a-b-c-d-e-")
    softmax[0, 5, DEFAULT_SPEC.char_to_class("c")] = 0.3  # the model's stray extra character
    for beam_width in (None, 4):
        (prediction,) = decode_softmax(softmax, DEFAULT_SPEC, beam_width=beam_width)
        assert prediction.text == "abde"
        assert len(prediction.char_probabilities) == DEFAULT_SPEC.label_length
        assert prediction.confidence == pytest.approx(0.9**4)


def test_a_merged_double_letter_is_split_by_its_least_sure_frame():
    # Greedy reads "abc": the model ran the two a's together. The best alignment with
    # four characters puts a blank on the frame least sure of "a".
    softmax = _path_softmax("-aaaa-b-c-")
    softmax[0, 3, BLANK_INDEX] = 0.3
    assert greedy_decode(softmax, BLANK_INDEX) == [[DEFAULT_SPEC.char_to_class(c) for c in "abc"]]
    for beam_width in (None, 4):
        (prediction,) = decode_softmax(softmax, DEFAULT_SPEC, beam_width=beam_width)
        assert prediction.text == "aabc"
        assert prediction.char_probabilities == pytest.approx((0.9, 0.9, 0.9, 0.9))


@pytest.mark.parametrize("seed", range(40))
def test_the_exact_length_alignment_is_the_best_one_by_brute_force(seed: int) -> None:
    spec = CaptchaSpec(charset="abc", blank_index=1, label_length=3)
    softmax = _random(seed, 1, scale=2.0, steps=6, classes=4)
    best: dict[tuple[int, ...], float] = {}
    for alignment in itertools.product(range(4), repeat=6):
        collapsed = [c for i, c in enumerate(alignment) if c != 1 and (i == 0 or alignment[i - 1] != c)]
        if len(collapsed) == 3:
            score = float(np.prod(softmax[0, np.arange(6), alignment]))
            best[tuple(collapsed)] = max(best.get(tuple(collapsed), 0.0), score)
    want = max(best, key=best.__getitem__)
    (prediction,) = decode_softmax(softmax, spec)
    assert prediction.text == "".join(spec.class_to_char(c) for c in want)
    assert len(prediction.char_probabilities) == 3


def test_rows_that_cannot_hold_the_label_or_hold_nothing_are_not_padded():
    short, empty = decode_softmax(np.concatenate([_path_softmax("x-y"), _path_softmax("---")]), DEFAULT_SPEC)
    assert (short.text, len(short.char_probabilities)) == ("xy", 2)
    assert (empty.text, empty.confidence, empty.char_probabilities) == ("", 0.0, ())
    nan = _path_softmax("-x-y-z-")
    nan[0, 1, DEFAULT_SPEC.char_to_class("x")] = np.nan
    assert decode_softmax(nan, DEFAULT_SPEC)[0].text == "xyz"


def test_the_spec_decides_blank_charset_and_length():
    spec = CaptchaSpec(charset="abc", blank_index=0, label_length=2)
    softmax = _path_softmax("-c-a-b-", spec)
    softmax[0, 5, spec.char_to_class("b")] = 0.5
    assert greedy_decode(softmax, 0) == [[3, 1, 2]]
    (prediction,) = decode_softmax(softmax, spec, keep_softmax=True)
    assert prediction.text == "ca"
    assert prediction.softmax is not None and prediction.softmax.shape == (7, 4)


def test_wrong_shapes_are_bad_responses_and_bad_arguments_invalid_inputs():
    with pytest.raises(BadResponseError, match=r"\[batch, time, 37\]"):
        decode_softmax(np.zeros((1, 40, 36), np.float32), DEFAULT_SPEC)
    for bad in (
        np.zeros((40, 37), np.float32),
        np.zeros((0, 40, 37), np.float32),
        np.zeros((1, 40, 37), np.int32),
    ):
        with pytest.raises(BadResponseError, match="non-empty float"):
            decode_softmax(bad, DEFAULT_SPEC)
    tensor = Tensor("int64", (1, 2, 37), array("q", [0] * 74))
    with pytest.raises(BadResponseError, match="int64"):
        decode_softmax(tensor, DEFAULT_SPEC)
    with pytest.raises(InvalidInputError, match="blank_index: 37"):
        greedy_decode(INPUTS["flat"], 37)
    with pytest.raises(InvalidInputError, match="beam_width"):
        beam_search_decode(INPUTS["flat"], BLANK_INDEX, 0)


def test_an_alphabet_reads_only_its_characters_and_keeps_the_softmax():
    # The site never draws 0, 1, j or o: a frame that is most sure of one of them reads
    # as its best allowed class instead (the numpy and numpy-free paths agree).
    softmax = _path_softmax("-0-a-j-z-")
    for frame, second in ((1, "d"), (5, "i")):
        softmax[0, frame, DEFAULT_SPEC.char_to_class(second)] = 0.05
    assert [p.text for p in decode_softmax(softmax, DEFAULT_SPEC)] == ["0ajz"]
    tensor = Tensor("float32", softmax.shape, array("f", softmax.ravel().tolist()))
    for source in (softmax, tensor):
        (site,) = decode_softmax(source, DEFAULT_SPEC, alphabet=SITE_ALPHABET)
        assert site.text == "daiz"
        assert site.char_probabilities == pytest.approx((0.05, 0.9, 0.05, 0.9))
    (beam,) = decode_softmax(softmax, DEFAULT_SPEC, beam_width=8, alphabet=SITE_ALPHABET)
    assert beam.text == "daiz"
    (kept,) = decode_softmax(softmax, DEFAULT_SPEC, keep_softmax=True, alphabet=SITE_ALPHABET.upper())
    assert kept.text == "daiz"
    np.testing.assert_array_equal(kept.softmax, softmax[0])


@pytest.mark.parametrize(("alphabet", "message"), [("", "non-empty"), ("ab-?", "'-?'")])
def test_an_alphabet_the_model_cannot_read_is_refused(alphabet: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(message)):
        decode_softmax(_path_softmax("-a-b-c-d-"), DEFAULT_SPEC, alphabet=alphabet)


def test_the_site_alphabet_is_the_generators_characters_case_folded():
    assert SITE_ALPHABET == "23456789abcdefghiklmnpqrstuvwxyz"
    assert set(SITE_ALPHABET) == {char.lower() for char in SITE_CHARS}


def test_greedy_confidences_are_decode_softmax_confidences_where_greedy_has_the_label_length():
    softmax = np.concatenate([_real_softmax(), INPUTS["peaked"], INPUTS["flat"]])
    spec = DEFAULT_SPEC
    confidences = greedy_confidences(softmax, spec)
    paths = greedy_decode(softmax, spec.blank_index)
    predictions = decode_softmax(softmax, spec)
    assert any(len(path) == spec.label_length for path in paths)
    assert any(len(path) != spec.label_length for path in paths)
    for confidence, path, prediction in zip(confidences, paths, predictions, strict=True):
        if len(path) == spec.label_length:
            assert confidence == prediction.confidence
        else:
            assert confidence == 0.0  # decoding searched alignments: greedy's figure means nothing


def test_a_nan_row_has_no_greedy_confidence_to_trust():
    softmax = _real_softmax()[:2].copy()
    softmax[1, 3, :] = np.nan
    confidences = greedy_confidences(softmax, DEFAULT_SPEC)
    assert confidences[0] > 0.5
    assert not confidences[1] > 0.0  # NaN or a broken path: no threshold admits it
