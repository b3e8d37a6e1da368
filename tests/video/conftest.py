"""Fixtures for the video tests: a tiny bundle (no torch export: seconds, not a minute) and generated videos."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from feredge.data.synth.video import VideoSpec, corrupt_mjpeg_frame, write_video
from feredge.labels import FER2013_7
from feredge.preprocess.spec import DetectorSpec, PreprocessSpec
from tests.preprocess.opencv_guard import opencv_guard  # noqa: F401 - the OpenCV path guard fixture


def _tiny_onnx(path: Path) -> None:
    """A linear classifier over 64×64 gray pixels (one 64×64 conv): labels depend on the face, runs in µs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = np.random.default_rng(0).normal(0, 0.02, (7, 1, 64, 64)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Conv", ["input", "w"], ["c"]), helper.make_node("Flatten", ["c"], ["logits"])],
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 1, 64, 64])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 7])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def make_bundle(root: Path, detector: str = "haar", max_batch: int = 4) -> Path:
    from feredge.bundle import file_entry, write_manifest

    root.mkdir(parents=True, exist_ok=True)
    _tiny_onnx(root / "model.onnx")
    spec = PreprocessSpec(crop_margin=0.1, detector=DetectorSpec(name=detector))
    write_manifest(root, {
        "model": {"name": "tiny_linear", "kwargs": {}, "origin": "test"},
        "labels": list(FER2013_7), "spec": spec.to_dict(), "precision": "fp32", "target": "openvino",
        "files": {"model.onnx": file_entry(root / "model.onnx", "onnx")},
        "input": {"name": "input", "shape": [None, 1, 64, 64], "dtype": "float32", "max_batch": max_batch},
    })
    json.loads((root / "manifest.json").read_text())
    return root


@pytest.fixture(scope="session")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("tiny") / "bundle", detector="mtcnn", max_batch=2)


SMALL = VideoSpec(frames=48, width=480, height=200, faces=3, face_size=96, segment=16, seed=3)


@pytest.fixture(scope="session")
def small_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("videos") / "three_faces.avi", SMALL)


@pytest.fixture(scope="session")
def corrupt_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = write_video(tmp_path_factory.mktemp("videos") / "corrupt.avi", SMALL)
    corrupt_mjpeg_frame(path, 20)
    return path
