"""INT8 budgets (``--max-drop``, ``--min-agreement``, the default gate): keep the fewest sensitive
layers in float until INT8 is close enough.

The metric is accuracy on labelled validation faces; for an agreement budget the labels are FP32's
own top-1 predictions, so the metric is top-1 agreement with FP32 (1.0 for FP32 itself) and the
budget is ``100 − min_agreement`` points. Reports name the metric they measured
(``fp32_agreement``, ``int8_agreement``... for an agreement budget).

Layers are ranked once by a continuous sensitivity score the caller measures in one pass — the
logit noise each layer adds alone on the calibration faces (:mod:`feredge.quantize.layer_noise`
in torch, :mod:`feredge.quantize.onnx_noise` for ONNX) — and the shortest prefix of that ranking
that meets the budget is found by doubling, then bisecting: ``O(log n)`` evaluations (each a
re-quantization for ONNX Runtime and NNCF) instead of one per layer. Why not measure each layer's
recovery one at a time: on a few hundred faces one layer alone flips zero, one or two near-ties,
so that order is mostly chance, and it costs one re-quantization per layer (1-7 minutes for the
shipped model). The search assumes that keeping more of the ranking in float does not hurt, which
holds for noise rankings up to flips of near-ties; it reports every prefix it tried.
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
    fp32_accuracy: float  # of the metric (accuracy or agreement), named by ``metric`` in to_dict()
    int8_accuracy: float  # all layers quantized
    final_accuracy: float
    max_drop_points: float
    excluded: list[str]
    met: bool
    ranking: dict[str, float] = field(default_factory=dict)  # the caller's sensitivity scores
    ranked_by: str = "output noise"
    evaluations: int = 0
    tried: dict[int, float] = field(default_factory=dict)  # layers kept in float → the metric
    metric: str = "accuracy"
    latency: dict[str, Any] = field(default_factory=dict)  # filled by the caller: what keeping them costs

    @property
    def drop_points(self) -> float:
        return 100.0 * (self.fp32_accuracy - self.final_accuracy)

    def to_dict(self) -> dict[str, Any]:
        """The report, each figure named by the metric it is (``int8_agreement``, not ``int8_accuracy``)."""
        data = asdict(self)
        for stage in ("fp32", "int8", "final"):
            data[f"{stage}_{self.metric}"] = data.pop(f"{stage}_accuracy")
        data["tried"] = {str(k): round(v, 6) for k, v in self.tried.items()}
        return {**data, "drop_points": round(self.drop_points, 3),
                "int8_drop_points": round(100.0 * (self.fp32_accuracy - self.int8_accuracy), 3)}


def fit_budget(layers: Sequence[str], evaluate: Evaluate, fp32_accuracy: float, max_drop_points: float,
               *, ranking: Ranking, log: Callable[[str], None] = lambda _m: None, metric: str = "accuracy",
               ranked_by: str = "output noise") -> BudgetResult:
    """``ranking``: a sensitivity score per layer (higher: keep in float first), or a function that
    measures them, called only when all-INT8 misses the budget; ``ranked_by`` names it."""
    if max_drop_points < 0:
        raise FeredgeError(f"the INT8 budget must be ≥ 0 points, got {max_drop_points}")
    from feredge.progress import bar

    # each try is a re-quantization measured in the runtime (seconds to minutes): one bar step per try
    with bar(desc=f"int8: {metric} budget, layers kept in float", unit="try") as tries:
        return _search(layers, _counted(evaluate, tries, fp32_accuracy), fp32_accuracy, max_drop_points,
                       ranking=ranking, log=log, metric=metric, ranked_by=ranked_by)


def _counted(evaluate: Evaluate, tries: Any, fp32_accuracy: float) -> Evaluate:
    """``evaluate`` that advances the ``tries`` bar and shows the last try's size and drop."""
    def run(excluded: frozenset[str]) -> float:
        value = evaluate(excluded)
        tries.set_postfix(kept=len(excluded), drop=f"{100 * (fp32_accuracy - value):.2f}", refresh=False)
        tries.update(1)
        return value

    return run


def _search(layers: Sequence[str], evaluate: Evaluate, fp32_accuracy: float, max_drop_points: float,
            *, ranking: Ranking, log: Callable[[str], None], metric: str, ranked_by: str) -> BudgetResult:
    tried: dict[int, float] = {0: evaluate(frozenset())}
    int8 = tried[0]

    def within(value: float) -> bool:
        return 100.0 * (fp32_accuracy - value) <= max_drop_points + 1e-9

    if within(int8):
        return BudgetResult(fp32_accuracy, int8, int8, max_drop_points, [], True, ranked_by=ranked_by,
                            evaluations=1, tried=tried, metric=metric)
    scores = dict(ranking() if callable(ranking) else ranking)
    missing = [name for name in layers if name not in scores]
    if missing:
        raise FeredgeError(f"no sensitivity score for {', '.join(missing[:3])}")
    log(f"INT8 {metric} drops {100 * (fp32_accuracy - int8):.2f} points (budget {max_drop_points:g}); "
        f"keeping layers in float by {ranked_by}")
    index = {name: i for i, name in enumerate(layers)}
    order = sorted(layers, key=lambda name: (-scores[name], index[name]))

    def at(count: int) -> float:
        if count not in tried:
            tried[count] = evaluate(frozenset(order[:count]))
            log(f"  {count} in float ({', '.join(order[:count][-3:])}{'…' if count > 3 else ''}) → "
                f"drop {100 * (fp32_accuracy - tried[count]):.2f}")
        return tried[count]

    low, high = 0, min(1, len(order))  # at(low) misses; find the smallest count in (low, high] that holds
    while not within(at(high)):
        if high == len(order):
            return BudgetResult(fp32_accuracy, int8, tried[high], max_drop_points, list(order), False,
                                _rounded(scores), ranked_by, len(tried), tried, metric)
        low, high = high, min(2 * high, len(order))
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if within(at(middle)) else (middle, high)
    return BudgetResult(fp32_accuracy, int8, tried[high], max_drop_points, list(order[:high]), True,
                        _rounded(scores), ranked_by, len(tried), tried, metric)


def _rounded(scores: Mapping[str, float]) -> dict[str, float]:
    return {k: float(f"{v:.4g}") for k, v in scores.items()}
