"""Five-point face alignment: a similarity transform that puts the landmarks on a fixed template.

Why: an expression model sees the same face rotated by 15° as a different pattern; mapping eyes,
nose and mouth corners onto fixed positions removes in-plane rotation, scale and shift before
the crop, so the model's capacity goes to the expression. The template is the standard ArcFace
112×112 one (InsightFace), scaled into the output crop; ``crop_margin`` shrinks it toward the
centre the same way it widens an unaligned crop, so a spec means the same framing either way.
The transform is a similarity (rotation + uniform scale + shift, 4 degrees of freedom) fitted by
``cv2.estimateAffinePartial2D`` — it cannot shear a face into a different expression.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

#: ArcFace's 5-point template in a 112×112 crop: left eye, right eye, nose, left/right mouth corner.
ARCFACE_112 = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    dtype=np.float32,
)

# warpAffine has no area filter; linear is its closest (area only differs when shrinking a lot)
_WARP_INTERPOLATION = {
    "area": cv2.INTER_LINEAR,
    "linear": cv2.INTER_LINEAR,
    "cubic": cv2.INTER_CUBIC,
    "nearest": cv2.INTER_NEAREST,
}


def template(size: tuple[int, int], margin: float = 0.0) -> np.ndarray:
    """The template's five points in an output crop of ``(height, width)``, shrunk by ``1 + 2·margin``."""
    height, width = size
    unit = (ARCFACE_112 / 112.0 - 0.5) / (1.0 + 2.0 * margin) + 0.5
    return (unit * np.array([width, height], np.float32)).astype(np.float32)


def similarity(landmarks: Sequence[Sequence[float]], size: tuple[int, int], margin: float = 0.0) -> np.ndarray:
    """2×3 matrix mapping image coordinates onto the template (least squares over the five points)."""
    src = np.asarray(landmarks, dtype=np.float32).reshape(-1, 2)
    if src.shape != (5, 2):
        raise ValueError(f"five-point alignment needs 5 landmarks, got {src.shape[0]}")
    matrix, _ = cv2.estimateAffinePartial2D(src, template(size, margin), method=cv2.LMEDS)
    if matrix is None:  # degenerate points (all equal): fall back to a plain scale about the centroid
        matrix = cv2.estimateAffinePartial2D(src, template(size, margin))[0]
    if matrix is None:
        raise ValueError("landmarks are degenerate; cannot fit a similarity transform")
    return matrix


def aligned_crop(image: np.ndarray, landmarks: Sequence[Sequence[float]], size: tuple[int, int],
                 margin: float = 0.0, interpolation: str = "linear") -> np.ndarray:
    """The face warped so its landmarks land on the template; edges replicated like the plain crop."""
    height, width = size
    matrix = similarity(landmarks, size, margin)
    return cv2.warpAffine(image, matrix, (width, height), flags=_WARP_INTERPOLATION[interpolation],
                          borderMode=cv2.BORDER_REPLICATE)
