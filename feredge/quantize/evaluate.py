"""Logits of an INT8 artifact in the runtime that will run it, and accuracy/agreement figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn

#: export target → runtime used to measure its INT8 artifact here (TensorRT cannot run here:
#: its Q/DQ ONNX is measured in ONNX Runtime, which reads the same Q/DQ semantics)
TARGET_RUNTIME = {"openvino": "openvino", "onnx": "onnxruntime", "tensorrt": "onnxruntime"}


def runtime_logits(path: Path, batch: np.ndarray, runtime: str, chunk: int = 16) -> np.ndarray:
    if runtime == "onnxruntime":
        from feredge.export.onnx_export import onnxruntime_logits

        return onnxruntime_logits(path, batch)
    from feredge.runtimes.openvino_runner import OpenVINORunner

    with OpenVINORunner(path, precision="int8") as runner:
        return runner.infer_all(batch, chunk)


def torch_logits(model: nn.Module, batch: np.ndarray, chunk: int = 64) -> np.ndarray:
    """The model's logits in eval mode (the export's chunked helper; this sets eval first)."""
    from feredge.export.onnx_export import torch_logits as chunked

    return chunked(model.eval(), batch, chunk)


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


def agreement(reference: np.ndarray, logits: np.ndarray) -> float:
    return float((reference.argmax(1) == logits.argmax(1)).mean())
