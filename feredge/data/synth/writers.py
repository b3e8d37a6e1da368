"""The synthetic set on disk in the real formats: class folders (+ soft labels) and a FER2013 CSV."""

from __future__ import annotations

import csv
from collections.abc import Mapping
from pathlib import Path

import cv2

from feredge.data.synth.config import SynthConfig
from feredge.data.synth.expressions import SYNTH_LABELS
from feredge.data.synth.render import render_all
from feredge.data.synth.splits import DEFAULT_SPLITS, FER2013_USAGE, SPLIT_STREAMS, split_counts, split_indices
from feredge.errors import FeredgeError


def write_folder(
    root: str | Path,
    n_per_class: int,
    size: int = 64,
    seed: int = 0,
    splits: Mapping[str, float | int] | None = None,
    config: SynthConfig | None = None,
    workers: int = 1,
) -> dict[str, int]:
    """Write ``root/<split>/<label>/<idx>.png`` plus ``root/soft_labels.csv`` for the blends.

    ``splits`` maps split names to fractions of ``n_per_class`` (floats) or per-class counts
    (ints); each split uses its own random stream. The result loads with
    ``load_dataset("folder", root, split)``, soft labels included. Returns images written per split.
    """
    config = config or SynthConfig()
    root = Path(root)
    counts = split_counts(n_per_class, splits or DEFAULT_SPLITS)
    written: dict[str, int] = {}
    soft_rows: list[list[str]] = []
    for split, per_class in counts.items():
        stream = SPLIT_STREAMS[split]
        for name in SYNTH_LABELS:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        indices = split_indices(per_class)
        rendered = render_all(indices, seed, size, config, stream, workers)
        for i, (image, soft) in zip(indices, rendered, strict=True):
            rel = f"{split}/{SYNTH_LABELS[i % len(SYNTH_LABELS)]}/{i:06d}.png"
            ok, encoded = cv2.imencode(".png", image)  # no path reaches OpenCV (non-UTF-8 names crash it)
            if not ok:
                raise FeredgeError(f"cannot encode {root / rel}")
            (root / rel).write_bytes(encoded.tobytes())
            if soft is not None:
                soft_rows.append([split, rel, *(f"{v:.6f}" for v in soft)])
        written[split] = len(indices)
    with open(root / "soft_labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "path", *SYNTH_LABELS])
        writer.writerows(soft_rows)
    return written


def write_fer2013_csv(
    path: str | Path,
    n_per_class: int,
    seed: int = 0,
    splits: Mapping[str, float | int] | None = None,
    config: SynthConfig | None = None,
    workers: int = 1,
) -> dict[str, int]:
    """Write the set as a FER2013 CSV (``emotion,pixels,Usage``; 48x48 gray; FER2013_7 indices).

    Soft labels cannot be expressed in this format; blended images keep their primary label.
    """
    config = config or SynthConfig()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = split_counts(n_per_class, splits or DEFAULT_SPLITS)
    written: dict[str, int] = {}
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for split, per_class in counts.items():
            if split not in FER2013_USAGE:
                raise FeredgeError(f"split '{split}' has no FER2013 Usage value")
            stream = SPLIT_STREAMS[split]
            indices = split_indices(per_class)
            rendered = render_all(indices, seed, 48, config, stream, workers)
            for i, (image, _) in zip(indices, rendered, strict=True):
                gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                label = i % len(SYNTH_LABELS)  # SYNTH_LABELS is FER2013_7: the index is the code
                writer.writerow([label, " ".join(map(str, gray.ravel().tolist())), FER2013_USAGE[split]])
            written[split] = len(indices)
    return written
