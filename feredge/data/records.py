"""In-memory description of a labelled FER dataset, independent of the file format it came from.

Why a small container of our own instead of a torch ``Dataset``: the loaders must run (and be
tested) without torch, the label list has to travel with the samples (FER2013, RAF-DB and AffectNet
number the same expressions differently), and every row a loader refused has to stay visible with
its reason instead of vanishing. Torch appears only inside :meth:`FerDataset.to_torch`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from feredge.errors import FeredgeError
from feredge.preprocess.image_io import ImageError, decode_image, display_path

# Spellings used by the dataset files for the same expression; matching is by canonical name.
LABEL_ALIASES = {
    "anger": "angry",
    "happiness": "happy",
    "happy": "happy",
    "sadness": "sad",
    "surprised": "surprise",
    "disgusted": "disgust",
    "fearful": "fear",
    "scared": "fear",
    "neutrality": "neutral",
    "contemptuous": "contempt",
}


def canonical_label(name: str) -> str:
    """Lower-case, trimmed expression name with dataset-specific spellings folded (anger -> angry)."""
    key = name.strip().lower()
    return LABEL_ALIASES.get(key, key)


@dataclass
class Sample:
    """One face image with its label.

    The pixels live either on disk (``path``) or in memory (``image``; FER2013 rows are decoded
    at load time). ``label`` indexes the owning dataset's label tuple; ``soft`` is an optional
    distribution over the same labels (FER+ votes, synthetic blends); ``box`` is (x, y, w, h) of the
    face inside the image when the format gives one (AffectNet); ``source`` names the row or file
    so that errors and skip reports point at something a person can find.
    """

    source: str
    label: int | None
    path: Path | None = None
    image: np.ndarray | None = None
    soft: np.ndarray | None = None
    box: tuple[int, int, int, int] | None = None


FaceRecord = Sample


def load_image_file(path: Path, source: str = "") -> np.ndarray:
    """Decode an image as BGR or gray uint8; 16-bit and alpha inputs are reduced, failures raise.

    Goes through the one checked decoder (:func:`feredge.preprocess.image_io.decode_image`): the
    file is read by Python (any file name), the pixel and decoded-bytes limits and truncation are
    checked before OpenCV decodes anything. Gray stays 2-D (FER sets are gray; a third of the memory).
    """
    data = decode_image(path, source=source or None)
    if data.dtype == np.uint16:
        data = np.right_shift(data, 8, out=data).astype(np.uint8)
    elif data.dtype != np.uint8:
        raise ImageError(f"{source or display_path(path)}: unsupported pixel type {data.dtype}",
                         reason=f"unsupported pixel type {data.dtype}")
    if data.ndim == 3 and data.shape[2] == 4:
        data = cv2.cvtColor(data, cv2.COLOR_BGRA2BGR)
    elif data.ndim == 3 and data.shape[2] == 1:
        data = data[:, :, 0]
    return data


@dataclass
class FerDataset:
    """A list of samples, the label names their indices refer to, and what was skipped and why."""

    labels: tuple[str, ...]
    samples: list[Sample]
    split: str = "all"
    skipped: list[tuple[str, str]] = field(default_factory=list)
    name: str = ""

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> Sample:
        return self.samples[i]

    @property
    def targets(self) -> np.ndarray:
        """Hard labels as an int array (-1 for unlabelled samples), e.g. for balanced sampling."""
        return np.array([-1 if s.label is None else s.label for s in self.samples], dtype=np.int64)

    def load_image(self, i: int) -> np.ndarray:
        """Pixels of sample ``i`` as BGR (HxWx3) or gray (HxW) uint8, the full image (see load_face)."""
        sample = self.samples[i]
        if sample.image is not None:
            return sample.image
        if sample.path is None:
            raise FeredgeError(f"{sample.source}: sample has neither pixels nor a path")
        return load_image_file(sample.path, sample.source)

    def load_face(self, i: int, margin: float = 0.0) -> np.ndarray:
        """The face crop of sample ``i`` when the format gives a box, else the whole image."""
        image = self.load_image(i)
        box = self.samples[i].box
        if box is None:
            return image
        x, y, w, h = box
        mx, my = round(w * margin), round(h * margin)
        height, width = image.shape[:2]
        x0, y0 = max(0, x - mx), max(0, y - my)
        x1, y1 = min(width, x + w + mx), min(height, y + h + my)
        if x1 <= x0 or y1 <= y0:
            raise FeredgeError(f"{self.samples[i].source}: face box {box} lies outside the image")
        return image[y0:y1, x0:x1]

    def class_counts(self) -> dict[str, int]:
        """Number of samples per label name, in label order (zeros included)."""
        counts = Counter(s.label for s in self.samples if s.label is not None)
        return {name: counts.get(k, 0) for k, name in enumerate(self.labels)}

    def skipped_summary(self) -> dict[str, int]:
        """How many items were skipped for each reason (reasons are generic, sources are not)."""
        return dict(Counter(reason for _, reason in self.skipped))

    def subset(self, indices: Sequence[int], split: str | None = None) -> FerDataset:
        """A dataset over some of the samples; labels and skip report are kept."""
        return replace(
            self,
            samples=[self.samples[i] for i in indices],
            split=self.split if split is None else split,
            skipped=list(self.skipped),
        )

    def remap(self, target_labels: Sequence[str], drop_missing: bool = False) -> FerDataset:
        """The same samples with labels re-indexed into ``target_labels``, matching by NAME.

        Label orders differ between datasets (RAF-DB index 0 is surprise, FER2013 index 0 is angry),
        so indices are never carried over. A source class that the target lacks raises, because
        silently relabelling or losing a class is worse than an error; with ``drop_missing`` its
        samples are dropped and recorded in ``skipped``, and soft-label mass on it is removed and
        the rest renormalised.
        """
        target = tuple(target_labels)
        target_index = {canonical_label(n): k for k, n in enumerate(target)}
        if len(target_index) != len(target):
            raise FeredgeError(f"target labels {target} contain a duplicate name")
        mapping = [target_index.get(canonical_label(n)) for n in self.labels]
        missing = [n for n, m in zip(self.labels, mapping, strict=True) if m is None]
        if missing and not drop_missing:
            raise FeredgeError(
                f"labels {missing} of {self.name or 'dataset'} have no match in target labels "
                f"{list(target)} (pass drop_missing=True to drop those samples)"
            )
        keep_src = np.array([m is not None for m in mapping])
        dst_cols = np.array([m for m in mapping if m is not None], dtype=np.int64)
        samples: list[Sample] = []
        skipped = list(self.skipped)
        for s in self.samples:
            new_label = None if s.label is None else mapping[s.label]
            if s.label is not None and new_label is None:
                skipped.append((s.source, f"label '{self.labels[s.label]}' not in target labels"))
                continue
            soft = None
            if s.soft is not None:
                soft = np.zeros(len(target), dtype=np.float32)
                soft[dst_cols] = s.soft[keep_src]
                total = float(soft.sum())
                if total <= 0:
                    skipped.append((s.source, "soft label has no mass on target labels"))
                    continue
                soft /= total
            samples.append(replace(s, label=new_label, soft=soft))
        return replace(self, labels=target, samples=samples, skipped=skipped)

    def to_torch(
        self,
        transform: Callable[[np.ndarray], np.ndarray] | None = None,
        with_soft: bool = False,
        gray: bool = False,
        size: int | None = None,
    ) -> Any:
        """A thin ``torch.utils.data.Dataset`` view: float CHW tensor in [0, 1] and label index.

        Torch is imported here, not at module import, so the data layer works without it. The
        numpy ``transform`` (e.g. an :class:`feredge.data.augment.Augmenter`) runs before the tensor
        conversion. Images are cropped to their face box when the format gives one and resized to
        ``size`` x ``size`` when given (needed for batching variable-size crops). With
        ``with_soft`` the item is (x, y, soft) where soft falls back to one-hot.
        """
        import torch
        from torch.utils.data import Dataset

        owner = self

        class _TorchView(Dataset):
            def __len__(self) -> int:
                return len(owner)

            def __getitem__(self, i: int):
                image = owner.load_face(i)
                if gray and image.ndim == 3:
                    image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                elif not gray and image.ndim == 2:
                    image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
                if size is not None and image.shape[:2] != (size, size):
                    image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
                if transform is not None:
                    image = transform(image)
                array = np.ascontiguousarray(image, dtype=np.float32) / 255.0
                x = torch.from_numpy(array[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy())
                sample = owner.samples[i]
                y = -1 if sample.label is None else sample.label
                if not with_soft:
                    return x, y
                if sample.soft is not None:
                    soft = torch.from_numpy(np.asarray(sample.soft, dtype=np.float32))
                else:
                    soft = torch.zeros(len(owner.labels))
                    if y >= 0:
                        soft[y] = 1.0
                return x, y, soft

        return _TorchView()
