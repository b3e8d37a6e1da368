"""Accuracy budget (``--max-drop``, ``--min-agreement``): keep the most sensitive layers in float until INT8
is close enough.

The metric is accuracy on labelled validation faces; for ``--min-agreement`` the labels are FP32's
own top-1 predictions, so "accuracy" is top-1 agreement with FP32 (1.0 for FP32 itself) and the
budget is ``100 − min_agreement`` points.

With every layer quantized the accuracy drop is measured; if it is over budget, layers are
returned to float in order of sensitivity, re-measuring the combination each time, until the drop
is within budget. The order is either a ``ranking`` the caller supplies (in torch:
:func:`feredge.quantize.layer_noise.layer_noise`, the logit error each layer adds alone on the
calibration faces) or, without one, one-at-a-time recovery: each layer in turn left in float (all
others quantized) and the accuracy it recovers measured — one evaluation per layer, with
``evaluate`` supplied by the caller (ORT and NNCF re-quantize). Recovery counts top-1 flips, and
on a few hundred faces one layer flips zero, one or two near-ties, so that order is partly chance;
a continuous ranking is preferred where one can be measured. Greedy rather than optimal, but it is
what TensorRT's and NNCF's own accuracy-aware tools do, and it reports exactly what it tried.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from feredge.errors import FeredgeError

#: ``evaluate(excluded_layers) -> accuracy in [0, 1]`` on labelled validation data
Evaluate = Callable[[frozenset[str]], float]
#: sensitivity score per layer, or a function measuring them
Ranking = Mapping[str, float] | Callable[[], Mapping[str, float]]


@dataclass
class BudgetResult:
    fp32_accuracy: float
    int8_accuracy: float  # all layers quantized
    final_accuracy: float
    max_drop_points: float
    excluded: list[str]
    met: bool
    recovery_points: dict[str, float] = field(default_factory=dict)  # per layer, one at a time
    ranking: dict[str, float] = field(default_factory=dict)  # the caller's sensitivity scores, if it gave them
    ranked_by: str = "recovery"
    evaluations: int = 0
    latency: dict[str, Any] = field(default_factory=dict)  # filled by the caller: what keeping them costs

    @property
    def drop_points(self) -> float:
        return 100.0 * (self.fp32_accuracy - self.final_accuracy)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "drop_points": round(self.drop_points, 3),
                "int8_drop_points": round(100.0 * (self.fp32_accuracy - self.int8_accuracy), 3)}


def fit_budget(layers: Sequence[str], evaluate: Evaluate, fp32_accuracy: float, max_drop_points: float,
               *, log: Callable[[str], None] = lambda _m: None, metric: str = "accuracy",
               ranking: Ranking | None = None, ranked_by: str = "output noise") -> BudgetResult:
    """``ranking``: a sensitivity score per layer (higher: keep in float first) instead of measuring
    one-at-a-time recovery, or a function that measures them (called only when INT8 misses the
    budget); ``ranked_by`` names it in the result."""
    if max_drop_points < 0:
        raise FeredgeError(f"the INT8 budget must be ≥ 0 points, got {max_drop_points}")
    evaluations = 1
    int8 = evaluate(frozenset())

    def within(accuracy: float) -> bool:
        return 100.0 * (fp32_accuracy - accuracy) <= max_drop_points + 1e-9

    if within(int8):
        return BudgetResult(fp32_accuracy, int8, int8, max_drop_points, [], True, evaluations=evaluations)
    recovery: dict[str, float] = {}
    if ranking is not None:
        ranking = ranking() if callable(ranking) else ranking
        missing = [name for name in layers if name not in ranking]
        if missing:
            raise FeredgeError(f"no sensitivity score for {', '.join(missing[:3])}")
        log(f"INT8 {metric} drops {100 * (fp32_accuracy - int8):.2f} points (budget {max_drop_points}); "
            f"keeping layers in float by {ranked_by}")
        scores = {name: float(ranking[name]) for name in layers}
    else:
        log(f"INT8 {metric} drops {100 * (fp32_accuracy - int8):.2f} points (budget {max_drop_points}); "
            f"measuring {len(layers)} layers one at a time")
        for layer in layers:
            recovery[layer] = 100.0 * (evaluate(frozenset([layer])) - int8)
            evaluations += 1
        scores = recovery
    order = sorted(layers, key=lambda name: (-scores[name], list(layers).index(name)))
    excluded: list[str] = []
    accuracy = int8
    for layer in order:
        excluded.append(layer)
        accuracy = evaluate(frozenset(excluded))
        evaluations += 1
        alone = f"+{recovery[layer]:.2f} alone" if ranking is None else f"{ranked_by} {scores[layer]:.3g}"
        log(f"  float: {layer} ({alone}) → drop {100 * (fp32_accuracy - accuracy):.2f}")
        if within(accuracy):
            break
    return BudgetResult(fp32_accuracy, int8, accuracy, max_drop_points, excluded, within(accuracy),
                        {k: round(v, 3) for k, v in recovery.items()},
                        {k: float(f"{v:.4g}") for k, v in scores.items()} if ranking is not None else {},
                        ranked_by if ranking is not None else "recovery", evaluations)
