"""Training augmentations on numpy images, driven by parameters and seeded, plus balanced sampling.

Why numpy/OpenCV instead of torchvision: the same code runs in the data layer without torch, and
seeding by (seed, epoch, index) makes an augmented image reproducible regardless of the number of
data-loader workers. The set is what the seed papers use: horizontal flip (all), random resized
crop / shift, random erasing (S2, EAC: the erased image and its flip form the training pair),
brightness / contrast / saturation jitter, and class-balanced sampling (S3 on AffectNet).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from feredge.errors import FeredgeError


@dataclass(frozen=True)
class AugmentConfig:
    """Probabilities and ranges; a zero probability or range disables that step."""

    hflip: float = 0.5
    crop_p: float = 0.5  # random resized crop
    crop_scale: tuple[float, float] = (0.8, 1.0)  # area fraction
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    shift: float = 0.0  # max translation, fraction of the side (with border replication)
    erase_p: float = 0.0  # random erasing (EAC uses 1.0 on its erased branch)
    erase_area: tuple[float, float] = (0.02, 0.25)
    erase_ratio: tuple[float, float] = (0.3, 3.3)
    brightness: float = 0.2  # multiplicative factor in [1 - b, 1 + b]
    contrast: float = 0.2
    saturation: float = 0.2


def hflip(image: np.ndarray) -> np.ndarray:
    """Mirror left-right (expressions are left-right symmetric in label)."""
    return np.ascontiguousarray(image[:, ::-1])


def random_resized_crop(
    image: np.ndarray,
    rng: np.random.Generator,
    scale: tuple[float, float] = (0.8, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
) -> np.ndarray:
    """Crop a random area fraction / aspect ratio and resize back to the input size."""
    h, w = image.shape[:2]
    for _ in range(10):
        area = h * w * rng.uniform(*scale)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        cw, ch = round(math.sqrt(area * aspect)), round(math.sqrt(area / aspect))
        if 0 < cw <= w and 0 < ch <= h:
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            crop = image[y : y + ch, x : x + cw]
            return cv2.resize(crop, (w, h), interpolation=cv2.INTER_LINEAR)
    return image.copy()


def random_shift(image: np.ndarray, rng: np.random.Generator, max_shift: float) -> np.ndarray:
    """Translate by up to ``max_shift`` of the side, replicating the border."""
    h, w = image.shape[:2]
    dx, dy = rng.uniform(-max_shift, max_shift, 2) * (w, h)
    m = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
    return cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REPLICATE)


def random_erasing(
    image: np.ndarray,
    rng: np.random.Generator,
    area: tuple[float, float] = (0.02, 0.25),
    ratio: tuple[float, float] = (0.3, 3.3),
    value: int | str = "random",
) -> np.ndarray:
    """Replace one random rectangle with noise (or a constant): the occlusion cue EAC learns from."""
    out = image.copy()
    h, w = image.shape[:2]
    for _ in range(10):
        a = h * w * rng.uniform(*area)
        aspect = math.exp(rng.uniform(math.log(ratio[0]), math.log(ratio[1])))
        eh, ew = round(math.sqrt(a * aspect)), round(math.sqrt(a / aspect))
        if 0 < eh < h and 0 < ew < w:
            y, x = int(rng.integers(0, h - eh + 1)), int(rng.integers(0, w - ew + 1))
            shape = (eh, ew, *image.shape[2:])
            if value == "random":
                out[y : y + eh, x : x + ew] = rng.integers(0, 256, shape, dtype=np.uint8)
            else:
                out[y : y + eh, x : x + ew] = int(value)
            return out
    return out


def color_jitter(
    image: np.ndarray,
    rng: np.random.Generator,
    brightness: float = 0.2,
    contrast: float = 0.2,
    saturation: float = 0.2,
) -> np.ndarray:
    """Brightness, contrast and (colour images only) saturation factors, in random order."""
    out = image.astype(np.float32)
    steps = rng.permutation(3)
    for step in steps:
        if step == 0 and brightness > 0:
            out *= rng.uniform(1 - brightness, 1 + brightness)
        elif step == 1 and contrast > 0:
            mean = float(out.mean())
            out = (out - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
        elif step == 2 and saturation > 0 and out.ndim == 3 and out.shape[2] == 3:
            gray = cv2.cvtColor(np.clip(out, 0, 255), cv2.COLOR_BGR2GRAY)[:, :, None]
            out = (out - gray) * rng.uniform(1 - saturation, 1 + saturation) + gray
    return np.clip(out + 0.5, 0, 255).astype(np.uint8)


class Augmenter:
    """Applies an :class:`AugmentConfig`; ``aug(image, index, epoch)`` is reproducible.

    Called with only an image it draws from its own generator (fine for a single process); with
    ``index`` and ``epoch`` the generator is ``default_rng([seed, epoch, index])`` so the result
    does not depend on worker count or order.
    """

    def __init__(self, config: AugmentConfig | None = None, seed: int = 0):
        self.config = config or AugmentConfig()
        self.seed = seed
        self._rng = np.random.default_rng(seed)

    def rng_for(self, index: int | None = None, epoch: int = 0) -> np.random.Generator:
        return self._rng if index is None else np.random.default_rng([self.seed, epoch, index])

    def __call__(
        self,
        image: np.ndarray,
        index: int | None = None,
        epoch: int = 0,
        rng: np.random.Generator | None = None,
    ) -> np.ndarray:
        if image.dtype != np.uint8:
            raise FeredgeError(f"augmentations expect uint8 images, got {image.dtype}")
        cfg = self.config
        rng = rng or self.rng_for(index, epoch)
        out = image
        if cfg.crop_p > 0 and rng.random() < cfg.crop_p:
            out = random_resized_crop(out, rng, cfg.crop_scale, cfg.crop_ratio)
        if cfg.shift > 0:
            out = random_shift(out, rng, cfg.shift)
        if cfg.hflip > 0 and rng.random() < cfg.hflip:
            out = hflip(out)
        if cfg.brightness > 0 or cfg.contrast > 0 or cfg.saturation > 0:
            out = color_jitter(out, rng, cfg.brightness, cfg.contrast, cfg.saturation)
        if cfg.erase_p > 0 and rng.random() < cfg.erase_p:
            out = random_erasing(out, rng, cfg.erase_area, cfg.erase_ratio)
        return out if out is not image else image.copy()

    def eac_pair(
        self, image: np.ndarray, index: int | None = None, epoch: int = 0
    ) -> tuple[np.ndarray, np.ndarray]:
        """S2 (EAC) training pair: the augmented, randomly erased image and its horizontal flip."""
        cfg = self.config
        rng = self.rng_for(index, epoch)
        out = self(image, rng=rng)
        if cfg.erase_p <= 0:  # EAC always erases: use the configured ranges even if erase_p is 0
            out = random_erasing(out, rng, cfg.erase_area, cfg.erase_ratio)
        return out, hflip(out)


def class_counts(labels: Sequence[int] | np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Count per class index; negative labels (unlabelled) are ignored."""
    y = np.asarray(labels, dtype=np.int64)
    valid = y[y >= 0]
    size = num_classes if num_classes is not None else (int(valid.max()) + 1 if valid.size else 0)
    if valid.size and valid.max() >= size:
        raise FeredgeError(f"label {int(valid.max())} out of range for {size} classes")
    return np.bincount(valid, minlength=size)


def balanced_sample_weights(labels: Sequence[int] | np.ndarray, num_classes: int | None = None) -> np.ndarray:
    """Per-sample weights (summing to 1) so every present class is drawn equally often.

    Weight = 1 / (count of the sample's class * number of present classes); pass to a weighted
    sampler (e.g. torch ``WeightedRandomSampler``). Unlabelled samples (label < 0) get weight 0.
    """
    y = np.asarray(labels, dtype=np.int64)
    counts = class_counts(y, num_classes)
    present = int((counts > 0).sum())
    weights = np.zeros(y.shape[0], dtype=np.float64)
    if present == 0:
        raise FeredgeError("no labelled samples to balance")
    valid = y >= 0
    weights[valid] = 1.0 / (counts[y[valid]] * present)
    return weights


def class_loss_weights(labels: Sequence[int] | np.ndarray, num_classes: int) -> np.ndarray:
    """Inverse-frequency class weights for a weighted cross-entropy (S4), mean 1 over present classes."""
    counts = class_counts(labels, num_classes).astype(np.float64)
    weights = np.zeros(num_classes)
    present = counts > 0
    weights[present] = counts[present].sum() / (present.sum() * counts[present])
    return weights
