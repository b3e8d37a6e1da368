"""Rank quantized layers by the output noise each adds on its own (torch, ModelOpt quantizers).

The order in which :func:`feredge.quantize.sensitivity.fit_budget` keeps layers in float. Why not
count top-1 flips per layer: on a few hundred faces one layer alone flips zero, one or two near-ties,
so such a ranking is mostly chance — for lfer_ldl, 18 layers chosen that way reached 99.6 %
agreement on the validation faces and 97.9 % on the test faces. The normalized mean squared error
of the logits against FP32 (``MSE(ref, int8) / MSE(ref, 0)``) with only that layer quantized is
continuous, needs no labels and is measured on the calibration faces, so the faces that gate the
result play no part in the ranking (the same lfer_ldl: its 12 noisiest layers in float gave 99.6 %
on validation and 99.3 % on test). NNCF's accuracy-control ranker scores quantizer groups by the
same normalized MSE when it has no per-item metric. One forward pass over the calibration faces
per layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from torch import nn

if TYPE_CHECKING:
    from feredge.quantize.ptq import Int8Request


def layer_noise(model: nn.Module, batch: np.ndarray, reference: np.ndarray,
                toggle: tuple[list[str], Callable[[Iterable[str]], None]] | None = None) -> dict[str, float]:
    """Normalized mean squared logit error against ``reference`` (FP32 logits on ``batch``) with only
    each layer quantized, per quantized layer of the ModelOpt ``model``. The model is left with all
    its layers quantized. ``toggle``: the caller's :func:`~feredge.quantize.modelopt_qat.float_toggle`
    of ``model`` (default: a new one, made with every layer quantized)."""
    from feredge.quantize.evaluate import torch_logits
    from feredge.quantize.modelopt_qat import float_toggle

    layers, keep_float = toggle or float_toggle(model)
    noise: dict[str, float] = {}
    power = max(float(np.mean(reference.astype(np.float64) ** 2)), 1e-12)
    try:
        for layer in layers:
            keep_float([name for name in layers if name != layer])
            noise[layer] = float(np.mean((torch_logits(model, batch) - reference) ** 2)) / power
    finally:
        keep_float([])
    return noise


@dataclass
class TorchSensitivity:
    """What :func:`feredge.quantize.sensitivity.fit_budget` needs, for a ModelOpt ``model`` in torch:
    its quantized ``layers``, ``evaluate`` (accuracy on ``batch``/``labels`` with the given layers in
    float, by toggling quantizers: no re-calibration, no re-export) and ``ranking`` (each layer's
    output noise on the ``calib`` faces; ``calib_reference()``: FP32's logits there, computed only
    when a ranking is asked for). ``keep_float`` leaves the model with the chosen layers in float."""

    model: nn.Module
    batch: np.ndarray
    labels: np.ndarray
    calib: np.ndarray
    calib_reference: Callable[[], np.ndarray]
    layers: list[str] = field(init=False)
    keep_float: Callable[[Iterable[str]], None] = field(init=False)

    def __post_init__(self) -> None:
        from feredge.quantize.modelopt_qat import float_toggle

        self.layers, self.keep_float = float_toggle(self.model)

    def evaluate(self, excluded: frozenset[str]) -> float:
        from feredge.quantize.evaluate import accuracy, torch_logits

        self.keep_float(excluded)
        return accuracy(torch_logits(self.model, self.batch), self.labels)

    def ranking(self) -> dict[str, float]:
        return layer_noise(self.model, self.calib, self.calib_reference(), (self.layers, self.keep_float))


def torch_sensitivity(request: Int8Request, is_qat: bool, batch: np.ndarray,
                      labels: np.ndarray) -> tuple[list[str], Any, Any]:
    """Sensitivity by toggling ModelOpt quantizers in torch (:class:`~feredge.quantize.layer_noise.
    TorchSensitivity`): layers, ``evaluate`` and the output-noise ``ranking`` on the calibration faces."""
    import copy

    from feredge.models import deploy_graph
    from feredge.quantize.evaluate import torch_logits
    from feredge.quantize.modelopt_qat import quantize_model

    model = (copy.deepcopy(request.module) if is_qat
             else quantize_model(request.module, request.calib, overflow_fix=request.overflow_fix))
    found = TorchSensitivity(model, batch, labels, request.calib,
                             lambda: torch_logits(deploy_graph(copy.deepcopy(request.module)), request.calib))
    return found.layers, found.evaluate, found.ranking
