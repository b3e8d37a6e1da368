"""Dataset samples → uint8 face crops prepared by the model's own PreprocessSpec.

Training must see faces cropped, resized and colour-converted exactly as the deployed pipeline
prepares them, so crops come from :func:`feredge.preprocess.transform.crop_faces` (the one
implementation), and normalisation from :func:`feredge.preprocess.transform.normalise`.
Crops are made once and kept in memory as uint8 (7,000 64×64 gray faces are 29 MB): FER sets are
small and decoding JPEGs every epoch would dominate a 2-core machine. Unreadable samples are
skipped and counted, never given a wrong label.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from feredge.data.records import FerDataset
from feredge.errors import FeredgeError
from feredge.preprocess.detect import Box
from feredge.preprocess.image_io import to_bgr_u8
from feredge.preprocess.spec import PreprocessSpec
from feredge.preprocess.transform import crop_faces


@dataclass
class CropSet:
    crops: np.ndarray  # (N, H, W) gray or (N, H, W, 3) in the spec's channel order, uint8
    labels: np.ndarray  # (N,) int64
    soft: np.ndarray  # (N, K) float32 label distributions (one-hot where none was given)
    label_names: tuple[str, ...]
    sources: list[str]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.labels)


def make_crops(dataset: FerDataset, spec: PreprocessSpec, *, progress: bool = False) -> CropSet:
    """Crop every labelled sample of ``dataset`` with ``spec``; samples carry their face box or are crops."""
    from feredge.progress import bar

    crops, labels, soft, sources = [], [], [], []
    skipped = list(dataset.skipped)
    k = len(dataset.labels)
    for i in bar(range(len(dataset)), desc=f"cropping {dataset.split}", unit="face", enabled=progress):
        sample = dataset[i]
        if sample.label is None:
            skipped.append((sample.source, "no label"))
            continue
        try:
            image = to_bgr_u8(dataset.load_image(i), sample.source)
        except FeredgeError as exc:
            skipped.append((sample.source, str(exc)))
            continue
        if sample.box is not None:
            box, margin_spec = Box(*sample.box), spec
        else:  # already a face crop: the whole image, no extra margin
            box, margin_spec = Box(0, 0, image.shape[1], image.shape[0]), spec.replace(crop_margin=0.0)
        crops.append(crop_faces(image, [box], margin_spec)[0])
        labels.append(sample.label)
        dist = np.zeros(k, np.float32)
        if sample.soft is not None:
            dist[:] = sample.soft
        else:
            dist[sample.label] = 1.0
        soft.append(dist)
        sources.append(sample.source)
    if not crops:
        raise FeredgeError(f"no usable labelled samples in split '{dataset.split}' ({len(skipped)} skipped)")
    return CropSet(np.stack(crops), np.asarray(labels, np.int64), np.stack(soft), dataset.labels, sources, skipped)
