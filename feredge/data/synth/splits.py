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


def nonempty_split_counts(n_per_class: int,
                          splits: Mapping[str, float] = DEFAULT_SPLITS) -> tuple[dict[str, int], bool]:
    """:func:`split_counts` with at least one image per class in every split, the largest taking the rest.

    Why: with the default fractions ``--per-class 5`` rounds val and test to 0 images, and a set
    without a validation split cannot be trained on (``feredge train`` validates every epoch) or
    evaluated. Returns the counts and whether they differ from the plain rounding (the caller says so).
    """
    counts = split_counts(n_per_class, splits)
    if n_per_class < len(counts):
        raise FeredgeError(f"{n_per_class} image(s) per class cannot fill the {len(counts)} splits "
                           f"({', '.join(counts)}); use at least {len(counts)}")
    if all(counts.values()):
        return counts, False
    adjusted = {name: max(count, 1) for name, count in counts.items()}
    largest = max(adjusted, key=lambda k: adjusted[k])
    adjusted[largest] = n_per_class - sum(v for k, v in adjusted.items() if k != largest)  # every image used
    return adjusted, True
