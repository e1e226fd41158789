"""Results and server descriptions as plain frozen dataclasses, shared by every transport."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Prediction:
    """One recognised captcha.

    ``confidence`` is the product of the per-character probabilities (greedy path);
    ``softmax`` is the raw [time_steps, classes] output as a numpy array, kept only when
    asked for (``with_softmax=True``, which needs numpy).
    """

    text: str
    confidence: float
    char_probabilities: tuple[float, ...]
    softmax: Optional[np.ndarray] = field(default=None, compare=False, repr=False)

    def accepted(self, min_confidence: float) -> bool:
        """Whether ``recognize`` returns this reading under ``min_confidence`` rather than
        raising LowConfidenceError: 0 accepts every reading, and a NaN confidence no other."""
        return min_confidence <= 0 or self.confidence >= min_confidence


@dataclass(frozen=True)
class VersionStatus:
    """One entry of TF Serving's ``model_version_status`` (docs/tf-serving-compat.md §1.7)."""

    version: int
    state: str  # UNKNOWN, START, LOADING, AVAILABLE, UNLOADING, END
    error_code: str = "OK"
    error_message: str = ""

    @property
    def available(self) -> bool:
        return self.state == "AVAILABLE"


@dataclass(frozen=True)
class ModelStatus:
    name: str
    versions: tuple[VersionStatus, ...]

    @property
    def ready(self) -> bool:
        return any(v.available for v in self.versions)


@dataclass(frozen=True)
class TensorInfo:
    """A signature input or output: alias, dtype name (``DT_FLOAT``), shape (-1 unknown)."""

    name: str
    dtype: str
    shape: Optional[tuple[int, ...]]  # None for unknown rank
    tensor_name: str = ""


@dataclass(frozen=True)
class SignatureInfo:
    name: str
    inputs: tuple[TensorInfo, ...]
    outputs: tuple[TensorInfo, ...]
    method_name: str = "tensorflow/serving/predict"


@dataclass(frozen=True)
class ModelMetadata:
    name: str
    version: Optional[int]
    signatures: tuple[SignatureInfo, ...]

    def signature(self, name: str) -> Optional[SignatureInfo]:
        return next((s for s in self.signatures if s.name == name), None)
