"""Shared, session-scoped INT8 fixtures: ModelOpt is slow to import and calibrate, so do it once."""

from __future__ import annotations

from pathlib import Path

# a declared dependency (the int8 extra): missing, the suite fails here instead of skipping INT8
import modelopt.torch.quantization  # noqa: F401
import numpy as np
import pytest


@pytest.fixture(scope="session")
def real_faces() -> np.ndarray:
    from feredge.calibration.reference import reference_faces
    from feredge.models import get_entry

    return reference_faces(get_entry("mini_xception").spec).batch[::2]  # 16 photo variants + 50 LFW faces


@pytest.fixture(scope="session")
def float_model():
    import torch

    from feredge.models import create_model

    torch.set_num_threads(2)
    return create_model("mini_xception", pretrained=True).eval()


@pytest.fixture(scope="session")
def quantized(float_model, real_faces: np.ndarray):
    from feredge.quantize.modelopt_qat import quantize_model

    return quantize_model(float_model, real_faces[::3], overflow_fix=False)


@pytest.fixture(scope="session")
def qdq_path(quantized, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from feredge.models import get_entry
    from feredge.quantize.qdq_export import export_qdq_onnx

    path = tmp_path_factory.mktemp("qdq") / "model.qdq.onnx"
    export_qdq_onnx(quantized, get_entry("mini_xception").spec.input_shape, path)
    return path
