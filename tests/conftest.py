"""Shared fixtures: real faces (scikit-image's LFW subset, the shipped photo) and one exported bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from feredge.calibration.reference import demo_image_path, lfw_faces


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    return demo_image_path()


@pytest.fixture(scope="session")
def lfw() -> np.ndarray:
    faces = lfw_faces()
    assert faces is not None, "scikit-image (a dev dependency) provides lfw_subset.npy"
    return faces


@pytest.fixture(scope="session")
def default_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped default model exported once per session to an ONNX + OpenVINO bundle."""
    from feredge.export.exporter import ExportOptions, export

    out = tmp_path_factory.mktemp("bundles") / "default"
    export(ExportOptions(target="openvino", output=out))
    return out
