"""Train / val / test splits: per-class counts, and one random stream per split (no image in two)."""

from __future__ import annotations

from collections.abc import Mapping

from feredge.data.synth.expressions import SYNTH_LABELS
from feredge.errors import FeredgeError

DEFAULT_SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}
# Each split draws from its own stream so no image appears in two splits.
SPLIT_STREAMS = {"train": 1, "val": 2, "test": 3, "all": 0}
FER2013_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


def split_counts(n_per_class: int, splits: Mapping[str, float | int]) -> dict[str, int]:
    """Per-class image count for each split: floats are fractions of n_per_class, ints are counts."""
    counts: dict[str, int] = {}
    for name, value in splits.items():
        if name not in SPLIT_STREAMS:
            raise FeredgeError(f"unknown split '{name}' (use train, val, test)")
        if isinstance(value, float):
            if not 0.0 <= value <= 1.0:
                raise FeredgeError(f"split fraction for '{name}' must be in [0, 1], got {value}")
            counts[name] = round(value * n_per_class)
        else:
            counts[name] = int(value)
    if isinstance(next(iter(splits.values()), 0.0), float) and sum(splits.values()) > 1.0 + 1e-9:
        raise FeredgeError(f"split fractions {dict(splits)} add up to more than 1")
    return counts


def split_indices(count_per_class: int) -> list[int]:
    """Image indices of a split with ``count_per_class`` images per label (labels cycle with the index)."""
    return list(range(count_per_class * len(SYNTH_LABELS)))
