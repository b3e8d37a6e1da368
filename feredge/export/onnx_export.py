"""torch → ONNX with dynamic batch, checked structurally and numerically before anyone uses it.

torch 2.14's default (dynamo) exporter has produced numerically wrong CNN graphs (pytorch#166797,
#174042), so no export is trusted until onnxruntime reproduces PyTorch's logits on real faces.
:data:`EXPORTERS` lists the ways to export in order of preference; the first whose output passes
the check wins and is recorded in the manifest, the failures' reasons are kept for the report.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from feredge.errors import FeredgeError
from feredge.export.context import DEFAULT_OPSET
from feredge.parity import ParityResult, compare_logits

INPUT_NAME = "input"
OUTPUT_NAME = "logits"


def _example(input_shape: tuple[int, ...]) -> torch.Tensor:
    # batch >= 2: with batch 1 the dynamo exporter silently fixes the batch axis (pytorch#157621)
    return torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))


def _export_dynamo(module: nn.Module, input_shape: tuple[int, ...], max_batch: int, opset: int,
                   optimize: bool) -> bytes:
    batch = torch.export.Dim("batch", min=1, max=max_batch)
    program = torch.onnx.export(
        module, (_example(input_shape),), None, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_shapes=({0: batch},), opset_version=opset, dynamo=True, optimize=optimize,
        external_data=False, verbose=False,
    )
    assert program is not None
    return program.model_proto.SerializeToString()


def _export_torchscript(module: nn.Module, input_shape: tuple[int, ...], max_batch: int, opset: int) -> bytes:
    buffer = io.BytesIO()
    torch.onnx.export(
        module, (_example(input_shape),), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
        dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=opset, dynamo=False,
    )
    return buffer.getvalue()


Exporter = Callable[[nn.Module, tuple[int, ...], int, int], bytes]
EXPORTERS: dict[str, Exporter] = {
    "dynamo": lambda m, s, b, o: _export_dynamo(m, s, b, o, optimize=True),
    "dynamo-unoptimized": lambda m, s, b, o: _export_dynamo(m, s, b, o, optimize=False),
    "torchscript": _export_torchscript,
}


@dataclass
class OnnxExportReport:
    exporter: str
    opset: int
    parity: ParityResult
    rejected: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"exporter": self.exporter, "opset": self.opset, "parity": self.parity.to_dict(),
                "rejected_exporters": self.rejected}


def onnxruntime_logits(path: Path, batch: np.ndarray) -> np.ndarray:
    """The ONNX file's logits through the ONNX Runtime runner: the checks see what a device runs."""
    from feredge.runtimes.onnxruntime_runner import OnnxRuntimeRunner

    with OnnxRuntimeRunner(path) as runner:
        return runner.infer_all(batch)


def torch_logits(module: nn.Module, batch: np.ndarray, chunk: int = 16) -> np.ndarray:
    """PyTorch's logits for ``batch`` in chunks; no_grad, not inference_mode, so fake-quant modules that
    update buffers in place (ModelOpt) run too."""
    with torch.no_grad():
        return torch.cat([module(torch.from_numpy(np.ascontiguousarray(batch[i : i + chunk])))
                          for i in range(0, len(batch), chunk)]).numpy()


def export_onnx(module: nn.Module, input_shape: tuple[int, ...], path: Path, reference: np.ndarray, *,
                max_batch: int = 64, opset: int = DEFAULT_OPSET,
                exporters: tuple[str, ...] = tuple(EXPORTERS)) -> OnnxExportReport:
    """Export ``module`` (a deploy graph in eval mode) and verify it against PyTorch on ``reference``."""
    import onnx

    expected = torch_logits(module, reference)
    rejected: dict[str, str] = {}
    for name in exporters:
        try:
            data = EXPORTERS[name](module, input_shape, max_batch, opset)
            proto = onnx.load_from_string(data)
            onnx.checker.check_model(proto, full_check=True)
            _check_dynamic_batch(proto)
            path.write_bytes(data)  # the candidate, checked where it will live (the next one replaces it)
            parity = compare_logits(expected, onnxruntime_logits(path, reference), runtime="onnxruntime")
        except Exception as exc:  # an exporter failing for any reason is a reason to try the next one
            rejected[name] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:300] if str(exc) else ''}"
            continue
        if parity.passed:
            return OnnxExportReport(name, opset, parity, rejected)
        rejected[name] = f"numerical check failed: {parity.reason}"
    details = "; ".join(f"{k}: {v}" for k, v in rejected.items())
    path.unlink(missing_ok=True)  # no unverified file left behind
    raise FeredgeError(f"ONNX export failed verification with every exporter ({details})")


def _check_dynamic_batch(proto: Any) -> None:
    dim = proto.graph.input[0].type.tensor_type.shape.dim[0]
    if dim.HasField("dim_value"):
        raise ValueError(f"batch axis was fixed to {dim.dim_value} instead of staying dynamic")
