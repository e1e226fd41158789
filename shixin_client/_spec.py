"""Model facts: the one place that says what the captcha model reads and emits.

Training, export, the local server and the client all import these names, so the
alphabet, blank index, label length, image size, wire names and file names can never
drift apart: with ``_images`` (the one preprocessing) this is one of the two SDK modules
shared on purpose with the project's other packages, besides the public API.
A served model may describe itself differently (see the ``describe`` signature);
:class:`CaptchaSpec` is the shape that description takes, and :data:`DEFAULT_SPEC`
is the reference model's, used when a model says nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ._exceptions import InvalidInputError

#: Classes 0..35 of the reference model, in output order. Labels are case-insensitive.
CHARSET = "0123456789abcdefghijklmnopqrstuvwxyz"
#: The CTC blank is the last class, as in the reference model (index 36).
BLANK_INDEX = len(CHARSET)
NUM_CLASSES = len(CHARSET) + 1
#: The characters the site draws, as Patchca's charset gives them (patchca-facts.md §1, duplicates
#: removed): no ``0``, ``1``, ``j``, ``o`` or lowercase ``l``.
SITE_CHARS = "23456789abcdefghikmnpqrstuvwxyzABCDEFGHIKLMNPQRSTUVWXYZ"
#: The labels those characters read as (case folded), in class order: pass it as a client's
#: ``alphabet`` when every image comes from the site, so no other character is ever read.
SITE_ALPHABET = "".join(char for char in CHARSET if char in SITE_CHARS.lower())
#: Every captcha on the site has exactly four characters.
LABEL_LENGTH = 4
IMAGE_HEIGHT = 70
IMAGE_WIDTH = 160
IMAGE_CHANNELS = 1
#: The reference CNN pools the width by 4: 160 / 4 = 40 CTC time steps.
TIME_STEPS = 40

# TensorFlow Serving's ports (docs/tf-serving-compat.md §2 and §4).
DEFAULT_GRPC_PORT = 8500
DEFAULT_REST_PORT = 8501
DEFAULT_MODEL_NAME = "shixin"

# The exported SavedModel's signatures and tensor aliases (export/ writes them, the
# client and the local server read them).
SIGNATURE_FLOAT = "serving_default"
SIGNATURE_BYTES = "serving_bytes"
SIGNATURE_DESCRIBE = "describe"
INPUT_FLOAT = "the_input"
INPUT_BYTES = "image_bytes"
INPUT_DESCRIBE = "batch"
OUTPUT_SOFTMAX = "out_dense"
DESCRIBE_OUTPUTS = ("charset", "blank_index", "label_length", "height", "width", "time_steps")

# The embedded model's files (export/ writes them, the embedded transport reads them): the
# LiteRT model, its companions beside it, and the spec that describe would give.
SPEC_FILE = "spec.json"


def single_image_path(model_path: Path) -> Path:
    """Where the batch-1 companion of a model file sits (``shixin.tflite`` -> ``shixin-single.tflite``).

    Its recurrent layers stay loops instead of being unrolled over the time steps, which
    LiteRT runs about twice as fast for one image, but its batch size is fixed at 1.
    """
    return model_path.with_name(f"{model_path.stem}-single{model_path.suffix}")


def int8_path(model_path: Path) -> Path:
    """Where the int8-weights companion of a model file sits (``shixin.tflite`` -> ``shixin-int8.tflite``).

    The same model with its weights stored as int8 (dynamic-range quantization): LiteRT runs
    it about twice as fast, and it reads a few captchas in 10,000 differently, so the
    embedded transport keeps its answers only when it is sure of them.
    """
    return model_path.with_name(f"{model_path.stem}-int8{model_path.suffix}")


@dataclass(frozen=True)
class CaptchaSpec:
    """What a recognition model expects and emits; everything decoding needs to know."""

    charset: str = CHARSET
    #: -1 means "after the last character", the reference model's layout.
    blank_index: int = -1
    label_length: int = LABEL_LENGTH
    height: int = IMAGE_HEIGHT
    width: int = IMAGE_WIDTH
    time_steps: int = TIME_STEPS

    def __post_init__(self) -> None:
        if not self.charset:
            raise InvalidInputError("CaptchaSpec.charset", "must not be empty")
        if len(set(self.charset)) != len(self.charset):
            raise InvalidInputError("CaptchaSpec.charset", f"has repeated characters: {self.charset!r}")
        if self.blank_index == -1:
            object.__setattr__(self, "blank_index", len(self.charset))
        if not 0 <= self.blank_index <= len(self.charset):
            raise InvalidInputError(
                "CaptchaSpec.blank_index", f"{self.blank_index} is outside 0..{len(self.charset)}"
            )
        for name in ("label_length", "height", "width", "time_steps"):
            if getattr(self, name) <= 0:
                raise InvalidInputError(f"CaptchaSpec.{name}", "must be positive")

    @property
    def num_classes(self) -> int:
        return len(self.charset) + 1

    def class_to_char(self, index: int) -> str:
        """Map a non-blank class index to its character (the blank may sit anywhere)."""
        return self.charset[index if index < self.blank_index else index - 1]

    def char_to_class(self, char: str) -> int:
        position = self.charset.index(char)
        return position if position < self.blank_index else position + 1


DEFAULT_SPEC = CaptchaSpec()
