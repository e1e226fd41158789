"""Split many images into as few requests as the batch size allows, and put answers back in order.

No I/O here: the client encodes each item, this module groups the good ones into
batches, and every answer (or error) lands in the slot of the item it belongs to, so
a result is never paired with the wrong input and one bad file never loses the rest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar, Union, cast

from ._config import positive_int
from ._exceptions import InvalidInputError, ShixinError
from ._images import ImageInput, input_name, is_ndarray

if TYPE_CHECKING:
    import numpy as np

T = TypeVar("T")


@dataclass(frozen=True)
class Item:
    """One image of a ``*_many`` call; ``index`` is its place in the answer."""

    index: int
    name: str
    image: ImageInput


def expand(images: Iterable[ImageInput]) -> list[Item]:
    """One item per image; a 4-D numpy array is a batch and gives one item per row."""
    if isinstance(images, (str, bytes, bytearray, memoryview)) or hasattr(images, "read"):
        raise InvalidInputError(
            input_name(images), "the *_many methods take a list of images; pass a single image to recognize()"
        )
    items: list[Item] = []
    for position, image in enumerate(images):
        if is_ndarray(image) and cast("np.ndarray", image).ndim == 4:
            batch = cast("np.ndarray", image)
            for row in range(batch.shape[0]):
                items.append(Item(len(items), f"item {position} row {row}", batch[row]))
        else:
            items.append(Item(len(items), input_name(image, position), image))
    return items


@dataclass(frozen=True)
class Batch:
    """The items sent together in one request: their slots and their encoded forms."""

    indices: tuple[int, ...]
    encoded: tuple[Any, ...]


class BatchPlan(Generic[T]):
    """Slots for every item, filled by encode errors, answers or per-batch failures."""

    def __init__(
        self,
        items: Sequence[Item],
        encode: Callable[[Item], Any],
        batch_size: int,
        *,
        return_exceptions: bool,
    ) -> None:
        positive_int("batch_size", batch_size)
        #: Each item's name, in slot order, for errors about its answer.
        self.names = tuple(item.name for item in items)
        self._slots: list[Union[T, ShixinError, None]] = [None] * len(items)
        self._return_exceptions = return_exceptions
        ready: list[tuple[int, Any]] = []
        for item in items:
            try:
                ready.append((item.index, encode(item)))
            except InvalidInputError as exc:
                if not return_exceptions:
                    raise
                self._slots[item.index] = exc
        self.batches = [
            Batch(tuple(index for index, _ in chunk), tuple(encoded for _, encoded in chunk))
            for chunk in (ready[start : start + batch_size] for start in range(0, len(ready), batch_size))
        ]

    def fill(self, batch: Batch, results: Sequence[T]) -> None:
        for index, result in zip(batch.indices, results, strict=True):
            self._slots[index] = result

    def fail(self, batch: Batch, error: ShixinError) -> None:
        """Record a failed request in each of its items' slots, or raise it if errors are not returned."""
        if not self._return_exceptions:
            raise error
        for index in batch.indices:
            self._slots[index] = error

    def results(self) -> list[Union[T, ShixinError]]:
        missing = [index for index, slot in enumerate(self._slots) if slot is None]
        if missing:
            raise RuntimeError(f"items {missing} got no answer; every batch must be filled or failed")
        return [slot for slot in self._slots if slot is not None]
