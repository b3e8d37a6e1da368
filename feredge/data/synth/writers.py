"""The synthetic set on disk in the real formats: class folders (+ soft labels) and a FER2013 CSV."""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

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
    progress: bool = False,
) -> dict[str, int]:
    """Write ``root/<split>/<label>/<idx>.png`` plus ``root/soft_labels.csv`` for the blends.

    ``splits`` maps split names to fractions of ``n_per_class`` (floats) or per-class counts
    (ints); each split uses its own random stream. The result loads with
    ``load_dataset("folder", root, split)``, soft labels included. Returns images written per split.
    ``progress``: a bar over the images (rendered in chunks; a sample depends only on its index).
    """
    config = config or SynthConfig()
    root = Path(root)
    counts = split_counts(n_per_class, splits or DEFAULT_SPLITS)
    written: dict[str, int] = {}
    soft_rows: list[list[str]] = []
    images = _bar(counts, progress)
    for split, per_class in counts.items():
        stream = SPLIT_STREAMS[split]
        for name in SYNTH_LABELS:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        indices = split_indices(per_class)
        for i, (image, soft) in _rendered(indices, seed, size, config, stream, workers, images):
            rel = f"{split}/{SYNTH_LABELS[i % len(SYNTH_LABELS)]}/{i:06d}.png"
            ok, encoded = cv2.imencode(".png", image)  # no path reaches OpenCV (non-UTF-8 names crash it)
            if not ok:
                raise FeredgeError(f"cannot encode {root / rel}")
            (root / rel).write_bytes(encoded.tobytes())
            if soft is not None:
                soft_rows.append([split, rel, *(f"{v:.6f}" for v in soft)])
        written[split] = len(indices)
    images.close()
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
    progress: bool = False,
) -> dict[str, int]:
    """Write the set as a FER2013 CSV (``emotion,pixels,Usage``; 48x48 gray; FER2013_7 indices).

    Soft labels cannot be expressed in this format; blended images keep their primary label.
    """
    config = config or SynthConfig()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = split_counts(n_per_class, splits or DEFAULT_SPLITS)
    written: dict[str, int] = {}
    images = _bar(counts, progress)
    with images, open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for split, per_class in counts.items():
            if split not in FER2013_USAGE:
                raise FeredgeError(f"split '{split}' has no FER2013 Usage value")
            stream = SPLIT_STREAMS[split]
            indices = split_indices(per_class)
            for i, (image, _) in _rendered(indices, seed, 48, config, stream, workers, images):
                gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                label = i % len(SYNTH_LABELS)  # SYNTH_LABELS is FER2013_7: the index is the code
                writer.writerow([label, " ".join(map(str, gray.ravel().tolist())), FER2013_USAGE[split]])
            written[split] = len(indices)
    return written


#: images rendered per call when a bar is shown (a bar step per chunk; pools start per chunk)
CHUNK = 256


def _bar(counts: Mapping[str, int], enabled: bool) -> Any:
    from feredge.progress import bar

    return bar(total=sum(counts.values()) * len(SYNTH_LABELS), desc="rendering", unit="img", enabled=enabled)


def _rendered(indices: list[int], seed: int, size: int, config: SynthConfig, stream: int, workers: int,
              images: Any) -> Iterator[tuple[int, tuple[Any, Any]]]:
    """(index, rendered sample) in index order, chunk by chunk, advancing ``images``."""
    for start in range(0, len(indices), CHUNK):
        chunk = indices[start : start + CHUNK]
        yield from zip(chunk, render_all(chunk, seed, size, config, stream, workers), strict=True)
        images.update(len(chunk))
