"""Logits of an INT8 artifact in the runtime that will run it, and accuracy/agreement figures."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from torch import nn


def runtime_logits(path: Path, batch: np.ndarray, runtime: str, chunk: int = 16) -> np.ndarray:
    """Logits of the artifact at ``path`` in ``runtime``'s runner (INT8 precision for OpenVINO)."""
    from feredge.runtimes.registry import runner_class

    options = {"precision": "int8"} if runtime == "openvino" else {}
    with runner_class(runtime)(path, **options) as runner:
        return runner.infer_all(batch, chunk)


def torch_logits(model: nn.Module, batch: np.ndarray, chunk: int = 64) -> np.ndarray:
    """The model's logits in eval mode, in chunks; no_grad, not inference_mode, so fake-quant modules
    that update buffers in place (ModelOpt) run too."""
    import torch

    model.eval()
    with torch.no_grad():
        return torch.cat([model(torch.from_numpy(np.ascontiguousarray(batch[i : i + chunk])))
                          for i in range(0, len(batch), chunk)]).numpy()


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((logits.argmax(1) == labels).mean())


def agreement(reference: np.ndarray, logits: np.ndarray) -> float:
    return float((reference.argmax(1) == logits.argmax(1)).mean())
