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
from typing import Any

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
        short = min(gray.shape[:2])
        limit = self.spec.detect_short_side
        scale = limit / short if limit and short > limit else 1.0
        if scale != 1.0:
            gray = cv2.resize(gray, (round(gray.shape[1] * scale), round(gray.shape[0] * scale)),
                              interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        # the minimum face in detection pixels: the spec's pixels (of the original frame) or its fraction
        smallest = max(self.spec.min_size * scale, self.spec.min_face_fraction * min(gray.shape[:2]))
        side = round(smallest)  # below the cascade window (24 px) OpenCV searches from the window
        found = self.cascade.detectMultiScale(gray, scaleFactor=self.spec.scale_factor,
                                              minNeighbors=self.spec.min_neighbors, minSize=(side, side))
        boxes = [Box(round(x / scale), round(y / scale), round(w / scale), round(h / scale))
                 for x, y, w, h in found]
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


def _blazeface_network(bundle: Any, network: Any, spec: DetectorSpec, runtime: str, **options: Any) -> Detector | None:
    from feredge.preprocess.blazeface import blazeface_from_network

    return blazeface_from_network(bundle, network, spec, runtime, **options)


#: a bundle network's ``kind`` → how a detector is built on it (None: it cannot serve that detector name)
NETWORK_DETECTORS: dict[str, Callable[..., Detector | None]] = {
    "blazeface": _blazeface_network,
}


def detector_for_bundle(bundle: Any, spec: DetectorSpec, runtime: str, **runner_options: Any) -> Detector:
    """``spec``'s detector on ``bundle``'s own detector network when it has one that serves ``spec.name``
    (verified and hashed with the bundle, run by ``runtime`` like the classifier), else the packaged one.

    An old bundle (schema 1, no detector network), a bundle whose detector is another model, and
    detectors that are no network (Haar, ``none``) all get :func:`create_detector`.
    """
    network = bundle.networks.get("detector")
    factory = NETWORK_DETECTORS.get(network.kind) if network is not None else None
    if factory is not None:
        detector = factory(bundle, network, spec, runtime, **runner_options)
        if detector is not None:
            return detector
    return create_detector(spec)


def create_detector(spec: DetectorSpec) -> Detector:
    try:
        factory = DETECTORS[spec.name]
    except KeyError:
        raise FeredgeError(f"unknown detector {spec.name!r}; known: {', '.join(sorted(DETECTORS))}") from None
    return factory(spec)


__all__ = ["DETECTORS", "NETWORK_DETECTORS", "Box", "Detector", "HaarDetector", "WholeImageDetector",
           "create_detector", "detector_for_bundle"]
