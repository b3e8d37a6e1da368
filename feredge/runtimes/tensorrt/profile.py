"""The dynamic-batch optimization profile: how many faces per frame the engine is tuned for.

TensorRT tunes kernels for the ``opt`` shape and accepts anything between ``min`` and ``max``;
a frame usually holds one to a few faces, hence the defaults 1 / 4 / the bundle's max batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feredge.errors import FeredgeError

DEFAULT_OPT_BATCH = 4


@dataclass(frozen=True)
class BatchProfile:
    min: int
    opt: int
    max: int

    def __post_init__(self) -> None:
        if not 1 <= self.min <= self.opt <= self.max:
            raise FeredgeError(f"TensorRT batch profile must satisfy 1 <= min <= opt <= max, got "
                               f"min={self.min} opt={self.opt} max={self.max}")

    def shapes(self, input_shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) full NCHW shapes for an input of per-sample shape ``input_shape``."""
        return ((self.min, *input_shape), (self.opt, *input_shape), (self.max, *input_shape))

    def to_dict(self) -> dict[str, int]:
        return {"min": self.min, "opt": self.opt, "max": self.max}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchProfile:
        return cls(int(data["min"]), int(data["opt"]), int(data["max"]))


def batch_profile(max_batch: int, min_batch: int | None = None, opt_batch: int | None = None) -> BatchProfile:
    """The profile for a bundle of ``max_batch``; ``opt`` defaults to 4 clamped into [min, max]."""
    low = 1 if min_batch is None else min_batch
    opt = min(max(DEFAULT_OPT_BATCH, low), max_batch) if opt_batch is None else opt_batch
    return BatchProfile(low, opt, max_batch)
