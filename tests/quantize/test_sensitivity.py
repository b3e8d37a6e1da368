"""--max-drop: the layers kept in float are the ones that cost the accuracy, and only as many as needed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from feredge.errors import FeredgeError
from feredge.quantize.sensitivity import fit_budget


def test_the_shortest_ranked_prefix_that_meets_the_budget_is_found_in_few_evaluations() -> None:
    costs = {f"l{i}": 0.0 for i in range(32)}
    costs.update({"l5": 0.30, "l9": 0.05, "l20": 0.02})  # three layers cost accuracy, the rest nothing
    calls: list[frozenset[str]] = []

    def evaluate(excluded: frozenset[str]) -> float:
        calls.append(excluded)
        return 0.9 - sum(v for k, v in costs.items() if k not in excluded)

    ranking = {name: cost + 1e-3 * (32 - int(name[1:])) / 32 for name, cost in costs.items()}  # ties broken
    result = fit_budget(list(costs), evaluate, 0.9, max_drop_points=1.5, ranking=ranking)
    assert result.met and result.excluded == ["l5", "l9", "l20"]  # the fewest: a prefix of the ranking
    assert result.evaluations == len(calls) == len(result.tried) <= 6  # doubling then bisecting, not 32
    assert result.final_accuracy == pytest.approx(0.9) and result.int8_accuracy == pytest.approx(0.53)
    report = result.to_dict()
    assert report["final_accuracy"] == pytest.approx(0.9) and report["drop_points"] == pytest.approx(0.0)
    agreement = fit_budget(list(costs), evaluate, 0.9, 1.5, ranking=ranking, metric="agreement").to_dict()
    assert {"fp32_agreement", "int8_agreement", "final_agreement"} <= set(agreement)  # named as what it is
    assert not {"fp32_accuracy", "int8_accuracy", "final_accuracy"} & set(agreement)

    never = fit_budget(list(costs), evaluate, 0.9, max_drop_points=40.0, ranking=lambda: pytest.fail("measured"))
    assert never.excluded == [] and never.met and never.evaluations == 1  # ranked only when INT8 misses
    with pytest.raises(FeredgeError):
        fit_budget(list(costs), evaluate, 0.9, max_drop_points=-1, ranking=ranking)
    with pytest.raises(FeredgeError, match="no sensitivity score for l31"):
        fit_budget(list(costs), evaluate, 0.9, max_drop_points=1.5, ranking={k: 1.0 for k in list(costs)[:-1]})


def test_a_budget_no_prefix_meets_fails_with_every_layer_tried() -> None:
    def evaluate(excluded: frozenset[str]) -> float:
        return 0.5  # nothing helps

    result = fit_budget(["a", "b", "c"], evaluate, 0.9, max_drop_points=1.0, ranking={"a": 3, "b": 2, "c": 1})
    assert not result.met and result.excluded == ["a", "b", "c"] and sorted(result.tried) == [0, 1, 2, 3]


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
    from feredge.quantize.layer_noise import torch_sensitivity
    from feredge.quantize.ptq import Int8Request

    model = Outlier().eval()
    x = np.random.default_rng(0).normal(size=(64, 1, 12, 12)).astype(np.float32)
    with torch.no_grad():
        labels = model(torch.from_numpy(x)).argmax(1).numpy()
    request = Int8Request(model, (1, 12, 12), tmp_path / "unused.onnx", x, tmp_path, overflow_fix=False)
    layers, evaluate, measure_noise = torch_sensitivity(request, False, x, labels)
    noise = measure_noise()
    assert evaluate(frozenset()) < 0.6  # all-INT8 is far off: no calibration setting fixes it
    # ranked by the output noise each layer adds alone: the culprit first, no one-at-a-time pass
    assert set(noise) == set(layers) and max(noise, key=noise.__getitem__) == "conv2"
    ranked = fit_budget(layers, evaluate, 1.0, max_drop_points=1.0, ranking=noise)
    assert ranked.met and ranked.excluded == ["conv2"] and ranked.evaluations == 2
    assert ranked.ranked_by == "output noise" and ranked.ranking["conv2"] == pytest.approx(noise["conv2"], rel=1e-3)


def test_qat_min_agreement_keeps_the_culprit_in_float_before_fine_tuning() -> None:
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


def test_each_try_of_the_search_advances_one_progress_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    import feredge.progress

    made: list[dict] = []

    class Bar:
        def __init__(self, **kwargs: object) -> None:
            made.append({"kwargs": kwargs, "steps": 0, "postfix": None})

        def __enter__(self) -> Bar:
            return self

        def __exit__(self, *exc: object) -> None:
            made[-1]["closed"] = True

        def update(self, n: int) -> None:
            made[-1]["steps"] += n

        def set_postfix(self, refresh: bool = True, **values: object) -> None:
            made[-1]["postfix"] = values

    monkeypatch.setattr(feredge.progress, "bar", lambda **kwargs: Bar(**kwargs))
    costs = {f"l{i}": 0.0 for i in range(16)} | {"l3": 0.2}
    result = fit_budget(list(costs), lambda ex: 0.9 - sum(v for k, v in costs.items() if k not in ex), 0.9,
                        max_drop_points=1.0, ranking=costs)
    assert len(made) == 1 and made[0]["closed"] and "budget" in made[0]["kwargs"]["desc"]
    assert made[0]["steps"] == result.evaluations == len(result.tried)  # one step per re-quantization
    assert made[0]["postfix"] == {"kept": 1, "drop": "0.00"}  # the last try: l3 kept in float
