"""The shared face-preprocessing pipeline (numpy + OpenCV only; no torch)."""

from feredge.preprocess.detect import DETECTORS, Box, create_detector
from feredge.preprocess.image_io import DecodedImage, ImageError, read_image
from feredge.preprocess.spec import DetectorSpec, PreprocessSpec
from feredge.preprocess.transform import crop_faces, preprocess_faces

__all__ = [
    "DETECTORS",
    "Box",
    "DecodedImage",
    "DetectorSpec",
    "ImageError",
    "PreprocessSpec",
    "create_detector",
    "crop_faces",
    "preprocess_faces",
    "read_image",
]
