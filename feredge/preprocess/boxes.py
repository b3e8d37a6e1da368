"""What a face detector returns and the interface every detector has: :class:`Box` and :class:`Detector`.

Apart from :mod:`feredge.preprocess.detect` (the registry of detectors) so that a detector module
such as :mod:`feredge.preprocess.mtcnn` can build boxes without importing the registry that
imports it. ``feredge.preprocess.detect`` re-exports both names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Box:
    """A face box in pixel coordinates of the image it was found in.

    ``landmarks``: five (x, y) points — left eye, right eye, nose, left and right mouth corner, as
    seen in the image — from detectors that find them (MTCNN), else None. They drive five-point
    alignment; :meth:`as_list` stays the box only.
    """

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0
    landmarks: tuple[tuple[float, float], ...] | None = None

    def scaled(self, factor: float) -> Box:
        landmarks = None
        if self.landmarks is not None:
            landmarks = tuple((x * factor, y * factor) for x, y in self.landmarks)
        return Box(
            round(self.x * factor), round(self.y * factor), round(self.w * factor), round(self.h * factor),
            self.score, landmarks,
        )

    def as_list(self) -> list[int]:
        return [self.x, self.y, self.w, self.h]


class Detector(Protocol):
    def detect(self, image: np.ndarray) -> list[Box]: ...
