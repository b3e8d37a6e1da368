"""MTCNN from the shipped ONNX weights: finds faces and landmarks without torch, matches facenet-pytorch."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from feredge.data.synth.video import SyntheticVideo, VideoSpec
from feredge.preprocess.detect import DETECTORS, Box, create_detector
from feredge.preprocess.image_io import read_image
from feredge.preprocess.mtcnn import MTCNNDetector, nms, weights_dir
from feredge.preprocess.spec import DetectorSpec
from feredge.video.tracker import iou

# facenet-pytorch 2.6.0 MTCNN(min_face_size=24).detect() on the shipped astronaut photo (x0, y0, x1, y1)
REFERENCE_BOX = (178.80, 59.86, 267.83, 175.59)
REFERENCE_LANDMARKS = ((204.23, 100.74), (247.11, 103.76), (225.32, 128.98), (202.86, 140.08), (245.82, 142.28))


@pytest.fixture(scope="module")
def mtcnn() -> MTCNNDetector:
    return MTCNNDetector(DetectorSpec(name="mtcnn"))


def test_weights_and_licence_ship_with_the_package():
    for name in ("pnet.onnx", "rnet.onnx", "onet.onnx", "LICENSE"):
        assert (weights_dir() / name).is_file()
    assert "MIT License" in (weights_dir() / "LICENSE").read_text()
    assert "mtcnn" in DETECTORS


def test_astronaut_face_and_landmarks_match_facenet_pytorch(mtcnn, astronaut_path):
    boxes = mtcnn.detect(read_image(astronaut_path).image)
    assert len(boxes) == 1
    box = boxes[0]
    x0, y0, x1, y1 = REFERENCE_BOX
    assert abs(box.x - x0) < 4 and abs(box.y - y0) < 4
    assert abs(box.x + box.w - x1) < 4 and abs(box.y + box.h - y1) < 4
    assert box.score > 0.99
    np.testing.assert_allclose(np.array(box.landmarks), np.array(REFERENCE_LANDMARKS), atol=2.0)
    (lx, ly), (rx, _), (nx, ny), (_, mly), _ = box.landmarks
    assert lx < nx < rx and ly < ny < mly  # eyes, then nose, then mouth, left to right as seen


def test_finds_every_face_of_a_generated_frame(mtcnn):
    video = SyntheticVideo(VideoSpec(width=480, height=200, face_size=96))
    found = mtcnn.detect(video.frame(5))
    truth = [Box(*t.box) for t in video.truth(5)]
    assert len(found) == 3
    assert all(max(iou(b, t) for b in found) > 0.3 for t in truth)
    assert all(b.landmarks is not None and len(b.landmarks) == 5 for b in found)


def test_blank_image_has_no_face(mtcnn):
    assert mtcnn.detect(np.full((120, 160, 3), 127, np.uint8)) == []


def test_registry_builds_it_and_detection_imports_no_torch():
    code = ("import sys, numpy as np; from feredge.preprocess.detect import create_detector;"
            "from feredge.preprocess.spec import DetectorSpec;"
            "create_detector(DetectorSpec(name='mtcnn')).detect(np.zeros((64, 64, 3), np.uint8));"
            "assert 'torch' not in sys.modules, 'torch imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert type(create_detector(DetectorSpec(name="mtcnn"))).__name__ == "MTCNNDetector"


def test_nms_and_box_landmarks_are_compatible():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    assert nms(boxes, np.array([0.9, 0.8, 0.7]), 0.5).tolist() == [0, 2]
    box = Box(10, 20, 30, 40, 0.9, landmarks=((12.0, 24.0),) * 5)
    assert box.as_list() == [10, 20, 30, 40]
    assert box.scaled(0.5).landmarks == ((6.0, 12.0),) * 5
    assert Box(1, 2, 3, 4).landmarks is None
