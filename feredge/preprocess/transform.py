"""The one implementation of :class:`PreprocessSpec`: face boxes in a BGR image → NCHW float32.

Training, calibration, evaluation and every runtime call :func:`preprocess_faces`, so there is no
second copy of the arithmetic to drift. Order: colour conversion on the whole image (the Haar
detector already needs gray) → square crop around the box, expanded by ``crop_margin`` and padded
by edge replication where it leaves the image → resize → ``x * scale`` → ``(x - mean) / std``.
With ``alignment="five_point"`` a box that carries landmarks is instead warped onto the 5-point
template (:mod:`feredge.preprocess.align`); boxes without landmarks keep the square crop.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from feredge.preprocess.align import aligned_crop
from feredge.preprocess.detect import Box
from feredge.preprocess.spec import PreprocessSpec

_INTERPOLATION = {
    "area": cv2.INTER_AREA,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}
_COLOUR = {"gray": cv2.COLOR_BGR2GRAY, "rgb": cv2.COLOR_BGR2RGB, "bgr": None}


def convert_colour(image_bgr: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    code = _COLOUR[spec.channels]
    return image_bgr if code is None else cv2.cvtColor(image_bgr, code)


def square_crop(image: np.ndarray, box: Box, margin: float) -> np.ndarray:
    """A square around the box centre, side = longer box side × (1 + 2·margin), edge-padded."""
    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
    x0, y0 = round(cx - side / 2.0), round(cy - side / 2.0)
    x1, y1 = x0 + max(1, round(side)), y0 + max(1, round(side))
    h, w = image.shape[:2]
    pad = max(0, -x0, -y0, x1 - w, y1 - h)
    if pad:
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
        x0, y0, x1, y1 = x0 + pad, y0 + pad, x1 + pad, y1 + pad
    return image[y0:y1, x0:x1]


def normalise(crops: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """(N, H, W[, C]) uint8 crops in the spec's channel order → (N, C, H, W) float32."""
    x = crops.astype(np.float32)
    if x.ndim == 3:
        x = x[..., None]
    x *= np.float32(spec.scale)
    x -= np.asarray(spec.mean, dtype=np.float32)
    x /= np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def crop_faces(image_bgr: np.ndarray, boxes: Sequence[Box], spec: PreprocessSpec) -> np.ndarray:
    """Resized uint8 face crops (N, H, W[, C]) in the spec's channel order."""
    converted = convert_colour(image_bgr, spec)
    height, width = spec.input_size
    interpolation = _INTERPOLATION[spec.interpolation]
    if spec.alignment == "five_point":
        crops = [_aligned(converted, box, spec) for box in boxes]
    else:
        crops = [
            cv2.resize(square_crop(converted, box, spec.crop_margin), (width, height), interpolation=interpolation)
            for box in boxes
        ]
    if not crops:
        shape = (0, height, width) if spec.num_channels == 1 else (0, height, width, 3)
        return np.zeros(shape, np.uint8)
    return np.stack(crops)


def _aligned(converted: np.ndarray, box: Box, spec: PreprocessSpec) -> np.ndarray:
    """Five-point alignment when the detector gave landmarks; the plain square crop otherwise."""
    height, width = spec.input_size
    if box.landmarks is None:
        crop = square_crop(converted, box, spec.crop_margin)
        return cv2.resize(crop, (width, height), interpolation=_INTERPOLATION[spec.interpolation])
    return aligned_crop(converted, box.landmarks, spec.input_size, spec.crop_margin, spec.interpolation)


def preprocess_faces(image_bgr: np.ndarray, boxes: Sequence[Box], spec: PreprocessSpec) -> np.ndarray:
    """All faces of one image as one model batch (N, C, H, W) float32."""
    return normalise(crop_faces(image_bgr, boxes, spec), spec)
