"""--max-drop: the layers kept in float are the ones that cost the accuracy, and only as many as needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from feredge.errors import FeredgeError
from feredge.quantize.sensitivity import fit_budget


def test_greedy_picks_the_sensitive_layers_only() -> None:
    costs = {"a": 0.0, "b": 0.30, "c": 0.05, "d": 0.0}

    def evaluate(excluded: frozenset[str]) -> float:
        return 0.9 - sum(v for k, v in costs.items() if k not in excluded)

    result = fit_budget(list(costs), evaluate, 0.9, max_drop_points=4.0)
    assert result.met and result.excluded == ["b", "c"]
    assert result.recovery_points["b"] == pytest.approx(30.0)
    assert fit_budget(list(costs), evaluate, 0.9, max_drop_points=40.0).excluded == []
    with pytest.raises(FeredgeError):
        fit_budget(list(costs), evaluate, 0.9, max_drop_points=-1)
    # a caller's ranking replaces the one-at-a-time pass: one evaluation per layer kept, in its order
    ranked = fit_budget(list(costs), evaluate, 0.9, max_drop_points=4.0, ranking={"a": 3, "b": 2, "c": 1, "d": 0})
    assert ranked.excluded == ["a", "b", "c"] and ranked.evaluations == 4 and ranked.met
    never = fit_budget(list(costs), evaluate, 0.9, max_drop_points=40.0, ranking=lambda: pytest.fail("measured"))
    assert never.excluded == [] and never.met  # a ranking function runs only when INT8 misses the budget
    with pytest.raises(FeredgeError, match="no sensitivity score for d"):
        fit_budget(list(costs), evaluate, 0.9, max_drop_points=4.0, ranking={"a": 3, "b": 2, "c": 1})


class Outlier(nn.Module):
    """conv1's channel 0 is 10⁴× larger than the rest but conv2 ignores it: with one per-tensor scale
    on conv2's input, INT8 zeroes the channels that matter. Only conv2's quantization is to blame."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(1, 8, 3)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(8, 7, 1, bias=False)
        self.pool = nn.AdaptiveAvgPool2d(1)
        with torch.no_grad():
            self.conv1.weight[0] *= 1e4
            self.conv1.bias[0] = 1e4
            self.conv2.weight[:, 0] = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.conv2(self.relu(self.conv1(x)))).flatten(1)


def test_impossible_budget_is_met_by_keeping_the_culprit(tmp_path: Path) -> None:
    pytest.importorskip("modelopt.torch.quantization")
    from feredge.quantize.int8 import _torch_evaluator
    from feredge.quantize.ptq import Int8Request

    model = Outlier().eval()
    x = np.random.default_rng(0).normal(size=(64, 1, 12, 12)).astype(np.float32)
    with torch.no_grad():
        labels = model(torch.from_numpy(x)).argmax(1).numpy()
    request = Int8Request(model, (1, 12, 12), tmp_path / "unused.onnx", x, tmp_path, overflow_fix=False)
    layers, evaluate, measure_noise = _torch_evaluator(request, False, x, labels)
    noise = measure_noise()
    assert evaluate(frozenset()) < 0.6  # all-INT8 is far off: no calibration setting fixes it
    result = fit_budget(layers, evaluate, 1.0, max_drop_points=1.0)
    assert result.met and result.excluded == ["conv2"] and result.ranked_by == "recovery"
    # ranked by the output noise each layer adds alone: the culprit first, no one-at-a-time pass
    assert set(noise) == set(layers) and max(noise, key=noise.__getitem__) == "conv2"
    ranked = fit_budget(layers, evaluate, 1.0, max_drop_points=1.0, ranking=noise)
    assert ranked.met and ranked.excluded == ["conv2"] and ranked.evaluations == 2 and not ranked.recovery_points
    assert ranked.ranked_by == "output noise" and ranked.ranking["conv2"] == pytest.approx(noise["conv2"], rel=1e-3)


def test_qat_min_agreement_keeps_the_culprit_in_float_before_fine_tuning() -> None:
    pytest.importorskip("modelopt.torch.quantization")
    from feredge.quantize.modelopt_qat import quantize_model, quantizers
    from feredge.quantize.qat import _agreement_budget

    model = Outlier().eval()
    x = np.random.default_rng(1).normal(size=(64, 1, 12, 12)).astype(np.float32)
    with torch.no_grad():
        fp32 = model(torch.from_numpy(x)).numpy()
    quantized = quantize_model(model, x, overflow_fix=False)
    logs: list[str] = []
    result = _agreement_budget(quantized, x, fp32, x, lambda: fp32, 99.0, logs.append)
    assert result.int8_accuracy < 0.6 and result.met and result.excluded == ["conv2"]
    assert result.ranked_by == "output noise" and any("by output noise" in line for line in logs)
    enabled = {name for name, q in quantizers(quantized).items() if q.is_enabled}
    assert not any(name.startswith("conv2.") for name in enabled)  # the model is left as chosen
    assert "conv1.weight_quantizer" in enabled and "conv1.input_quantizer" in enabled
