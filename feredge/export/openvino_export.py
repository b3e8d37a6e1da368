"""ONNX → OpenVINO IR (``model.xml`` + ``model.bin``), verified against PyTorch with f32 forced."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from feredge.parity import ParityResult, compare_logits


def convert_to_openvino(onnx_path: Path, xml_path: Path, *, compress_to_fp16: bool) -> None:
    import openvino as ov

    model = ov.convert_model(str(onnx_path))
    ov.save_model(model, str(xml_path), compress_to_fp16=compress_to_fp16)


def openvino_parity(xml_path: Path, reference: np.ndarray, expected: np.ndarray, precision: str) -> ParityResult:
    from feredge.runtimes.openvino_runner import OpenVINORunner

    with OpenVINORunner(xml_path, precision=precision) as runner:
        actual = runner.infer_all(reference)
        ran = runner.settings["inference_precision"]
    result = compare_logits(expected, actual, runtime=f"openvino ({ran})", precision=precision)
    return result
