"""Face detectors behind one small interface (:mod:`feredge.preprocess.boxes`), found by name in :data:`DETECTORS`.

The embedded default is OpenCV's frontal-face Haar cascade: it ships inside every OpenCV 4.x wheel
and JetPack's OpenCV, so detection needs no download. ``none`` treats the whole image as one face
(for datasets and streams that are already face crops). A better detector plugs in by adding a
class with ``detect(image) -> list[Box]`` to the registry. ``mtcnn`` (:mod:`feredge.preprocess.mtcnn`)
is the better one: shipped ONNX weights on onnxruntime, and five landmarks per face for alignment.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from feredge.errors import FeredgeError
from feredge.preprocess.boxes import Box, Detector
from feredge.preprocess.image_io import OpenCVName
from feredge.preprocess.spec import DetectorSpec


class HaarDetector:
    """OpenCV's ``haarcascade_frontalface_default.xml``; boxes sorted largest first."""

    def __init__(self, spec: DetectorSpec) -> None:
        cascade_dir = getattr(getattr(cv2, "data", None), "haarcascades", None)
        if not hasattr(cv2, "CascadeClassifier") or cascade_dir is None:
            raise FeredgeError(
                f"OpenCV {cv2.__version__} has no Haar cascades (removed in OpenCV 5); "
                "install opencv-python-headless<5 or use --detector none"
            )
        path = Path(cascade_dir) / "haarcascade_frontalface_default.xml"
        with OpenCVName(path) as name:  # an install path that is not UTF-8 must not reach OpenCV
            self.cascade = cv2.CascadeClassifier(name.name)
        if self.cascade.empty():
            raise FeredgeError(f"cannot load Haar cascade {path}")
        self.spec = spec

    def detect(self, image: np.ndarray) -> list[Box]:
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        gray = cv2.equalizeHist(gray)
        found = self.cascade.detectMultiScale(
            gray,
            scaleFactor=self.spec.scale_factor,
            minNeighbors=self.spec.min_neighbors,
            minSize=(self.spec.min_size, self.spec.min_size),
        )
        boxes = [Box(int(x), int(y), int(w), int(h)) for x, y, w, h in found]
        return sorted(boxes, key=lambda b: b.w * b.h, reverse=True)


class WholeImageDetector:
    """The image is already a face crop: one box covering all of it."""

    def __init__(self, spec: DetectorSpec) -> None:
        self.spec = spec

    def detect(self, image: np.ndarray) -> list[Box]:
        h, w = image.shape[:2]
        return [Box(0, 0, w, h)]


def _mtcnn(spec: DetectorSpec) -> Detector:
    from feredge.preprocess.mtcnn import MTCNNDetector  # imported on use: loads three ONNX sessions

    return MTCNNDetector(spec)


def _blazeface(spec: DetectorSpec) -> Detector:
    from feredge.preprocess.blazeface import create_blazeface  # imported on use: loads an ONNX session

    return create_blazeface(spec)


DETECTORS: dict[str, Callable[[DetectorSpec], Detector]] = {
    "haar": HaarDetector,
    "none": WholeImageDetector,
    "mtcnn": _mtcnn,
    "blazeface": _blazeface,  # MediaPipe short range (128²); feredge.preprocess.blazeface
    "blazeface_full": _blazeface,  # MediaPipe full range (192²)
    "blazeface_tiled": _blazeface,  # full range on the frame and on tiles of it (small faces)
    "blazeface_short_tiled": _blazeface,  # short range on the frame and on finer tiles
}


def create_detector(spec: DetectorSpec) -> Detector:
    try:
        factory = DETECTORS[spec.name]
    except KeyError:
        raise FeredgeError(f"unknown detector {spec.name!r}; known: {', '.join(sorted(DETECTORS))}") from None
    return factory(spec)


__all__ = ["DETECTORS", "Box", "Detector", "HaarDetector", "WholeImageDetector", "create_detector"]
