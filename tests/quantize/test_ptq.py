"""Every registered PTQ backend produces its artifact and that artifact runs and mostly agrees."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from feredge.errors import FeredgeError
from feredge.models import get_entry
from feredge.quantize.evaluate import agreement, runtime_logits, torch_logits
from feredge.quantize.ptq import OPENVINO_IR, PTQ_BACKENDS, QDQ_ONNX, Int8Request, resolve_backend

#: backend → (artifact kind, runtime that checks it); the meta-test keeps this complete
CASES = {"modelopt": (QDQ_ONNX, "onnxruntime"), "ort": (QDQ_ONNX, "onnxruntime"), "nncf": (OPENVINO_IR, "openvino")}


def test_every_backend_has_a_test_case() -> None:
    assert set(CASES) == set(PTQ_BACKENDS)


@pytest.fixture(scope="module")
def float_onnx(float_model, real_faces: np.ndarray, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from feredge.export.onnx_export import export_onnx

    path = tmp_path_factory.mktemp("ptq") / "model.onnx"
    export_onnx(float_model, get_entry("mini_xception").spec.input_shape, path, real_faces[:8],
                exporters=("torchscript",))
    return path


@pytest.mark.parametrize("name", sorted(CASES))
def test_backend(name: str, float_model, float_onnx: Path, real_faces: np.ndarray, tmp_path: Path) -> None:
    kind, runtime = CASES[name]
    request = Int8Request(float_model, get_entry("mini_xception").spec.input_shape, float_onnx, real_faces[::4],
                          tmp_path, overflow_fix=True)
    artifact = PTQ_BACKENDS[name].quantize(request)
    assert artifact.kind == kind and artifact.path.is_file()
    logits = runtime_logits(artifact.path, real_faces, runtime)
    assert agreement(torch_logits(float_model, real_faces), logits) >= 0.85


def test_auto_choice_and_target_check() -> None:
    from feredge.backends import resolve_target

    def resolve(name: str, target: str):  # what the export does: the target's row says what auto means
        row = resolve_target(target)
        return resolve_backend(name, target, auto=row.auto_ptq, kinds=row.int8_kinds)

    assert resolve("auto", "openvino").name == "nncf"
    assert resolve("auto", "onnx").name == "ort"
    assert resolve("auto", "tensorrt").name == "modelopt"
    with pytest.raises(FeredgeError, match="needs a Q/DQ ONNX"):
        resolve("nncf", "tensorrt")
