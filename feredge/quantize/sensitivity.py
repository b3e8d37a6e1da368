"""Accuracy budget (``--max-drop``, ``--min-agreement``): keep the most sensitive layers in float until INT8
is close enough.

The metric is accuracy on labelled validation faces; for ``--min-agreement`` the labels are FP32's
own top-1 predictions, so "accuracy" is top-1 agreement with FP32 (1.0 for FP32 itself) and the
budget is ``100 − min_agreement`` points.

One-at-a-time sensitivity: with every layer quantized the accuracy drop is measured; if it is over
budget, each layer is in turn left in float (all others quantized) and the accuracy it recovers is
measured; layers are then returned to float in order of recovery, re-measuring the combination
each time, until the drop is within budget. That costs one evaluation per layer plus one per
layer kept, with ``evaluate`` supplied by the caller (ModelOpt toggles quantizers in torch, which
is cheap; ORT and NNCF re-quantize). Greedy rather than optimal, but it is what TensorRT's and
NNCF's own accuracy-aware tools do, and it reports exactly what it tried.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from feredge.errors import FeredgeError

#: ``evaluate(excluded_layers) -> accuracy in [0, 1]`` on labelled validation data
Evaluate = Callable[[frozenset[str]], float]


@dataclass
class BudgetResult:
    fp32_accuracy: float
    int8_accuracy: float  # all layers quantized
    final_accuracy: float
    max_drop_points: float
    excluded: list[str]
    met: bool
    recovery_points: dict[str, float] = field(default_factory=dict)  # per layer, one at a time
    evaluations: int = 0
    latency: dict[str, Any] = field(default_factory=dict)  # filled by the caller: what keeping them costs

    @property
    def drop_points(self) -> float:
        return 100.0 * (self.fp32_accuracy - self.final_accuracy)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drop_points": round(self.drop_points, 3),
                "int8_drop_points": round(100.0 * (self.fp32_accuracy - self.int8_accuracy), 3)}


def fit_budget(layers: Sequence[str], evaluate: Evaluate, fp32_accuracy: float, max_drop_points: float,
               *, log: Callable[[str], None] = lambda _m: None, metric: str = "accuracy") -> BudgetResult:
    if max_drop_points < 0:
        raise FeredgeError(f"the INT8 budget must be ≥ 0 points, got {max_drop_points}")
    evaluations = 1
    int8 = evaluate(frozenset())

    def within(accuracy: float) -> bool:
        return 100.0 * (fp32_accuracy - accuracy) <= max_drop_points + 1e-9

    if within(int8):
        return BudgetResult(fp32_accuracy, int8, int8, max_drop_points, [], True, evaluations=evaluations)
    log(f"INT8 {metric} drops {100 * (fp32_accuracy - int8):.2f} points (budget {max_drop_points}); "
        f"measuring {len(layers)} layers one at a time")
    recovery: dict[str, float] = {}
    for layer in layers:
        recovery[layer] = 100.0 * (evaluate(frozenset([layer])) - int8)
        evaluations += 1
    order = sorted(layers, key=lambda name: (-recovery[name], list(layers).index(name)))
    excluded: list[str] = []
    accuracy = int8
    for layer in order:
        excluded.append(layer)
        accuracy = evaluate(frozenset(excluded))
        evaluations += 1
        log(f"  float: {layer} (+{recovery[layer]:.2f} alone) → drop {100 * (fp32_accuracy - accuracy):.2f}")
        if within(accuracy):
            break
    return BudgetResult(fp32_accuracy, int8, accuracy, max_drop_points, excluded, within(accuracy),
                        {k: round(v, 3) for k, v in recovery.items()}, evaluations)
