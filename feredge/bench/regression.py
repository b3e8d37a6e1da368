"""Regression gates read from ``regression.yaml``: fidelity tolerances and latency-ratio budgets.

Why ratios for latency: CI machines and shared boxes differ by large factors from run to run, so
an absolute budget either flakes or is so loose it catches nothing. A ratio between two cases
measured in the same run (ONNX Runtime fp32 over OpenVINO fp32, say) cancels the machine's speed
and still catches a runtime or export that got relatively slower. Fidelity is gated against the
FP32 PyTorch reference on labelled data: accuracy drop, every class's recall drop, top-1
agreement floor per precision, and elementwise logit tolerance for fp32 artifacts.

A gate whose artifact was not produced (an INT8 export this toolchain cannot make yet) is
*skipped* with the reason, unless the file marks it ``required: true``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from feredge.bench.variants import is_device_default
from feredge.errors import FeredgeError

DEFAULTS: dict[str, Any] = {
    "accuracy_drop": 0.01,
    "recall_drop": 0.05,
    "agreement_floor": {"fp32": 1.0, "fp16": 0.995, "bf16": 0.995, "int8": 0.98},
    "fp32_logit_atol": 1e-4,
    "fp32_logit_rtol": 1e-3,
    "required": False,
}


@dataclass(frozen=True)
class LatencyBudget:
    numerator: str  # "runtime/precision"
    denominator: str
    max_ratio: float
    batch: int = 1

    @property
    def name(self) -> str:
        return f"{self.numerator} / {self.denominator} @ batch {self.batch}"


@dataclass
class ModelGates:
    artifacts: dict[str, dict[str, Any]]  # "runtime/precision" → tolerances (defaults filled in)
    latency: list[LatencyBudget] = field(default_factory=list)


@dataclass
class RegressionConfig:
    models: dict[str, ModelGates]
    path: str = ""

    def for_model(self, model: str) -> ModelGates:
        if model in self.models:
            return self.models[model]
        if "*" in self.models:
            return self.models["*"]
        raise FeredgeError(f"{self.path}: no gates for model {model!r} (known: {', '.join(self.models)})")


@dataclass(frozen=True)
class GateResult:
    model: str
    artifact: str
    gate: str
    value: float | None
    limit: float | None
    passed: bool
    detail: str = ""
    skipped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        status = "SKIP" if self.skipped else ("PASS" if self.passed else "FAIL")
        value = "-" if self.value is None else f"{self.value:.4g}"
        limit = "-" if self.limit is None else f"{self.limit:.4g}"
        return f"{status}  {self.model} {self.artifact} {self.gate}: {value} (limit {limit}) {self.detail}".rstrip()


def _merge(base: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def parse_config(data: dict[str, Any], path: str = "") -> RegressionConfig:
    if not isinstance(data, dict) or "models" not in data:
        raise FeredgeError(f"{path or 'regression config'}: needs a 'models' mapping")
    defaults = _merge(DEFAULTS, data.get("defaults"))
    models: dict[str, ModelGates] = {}
    for name, entry in data["models"].items():
        entry = entry or {}
        model_defaults = _merge(defaults, entry.get("defaults"))
        listed = entry.get("artifacts", [])
        items = listed.items() if isinstance(listed, dict) else ((a, None) for a in listed)
        artifacts = {}
        for key, override in items:
            if key.count("/") != 1:
                raise FeredgeError(f"{path}: artifact {key!r} of {name} must be 'runtime/precision'")
            artifacts[key] = _merge(model_defaults, override)
        budgets = []
        for item in entry.get("latency", []):
            try:
                budgets.append(LatencyBudget(str(item["numerator"]), str(item["denominator"]),
                                             float(item["max_ratio"]), int(item.get("batch", 1))))
            except (KeyError, TypeError, ValueError) as exc:
                raise FeredgeError(f"{path}: bad latency budget {item!r} for {name}: {exc}") from None
        models[str(name)] = ModelGates(artifacts, budgets)
    return RegressionConfig(models, path)


def load_config(path: str | Path) -> RegressionConfig:
    path = Path(path)
    if not path.is_file():
        raise FeredgeError(f"{path}: no such regression file")
    return parse_config(yaml.safe_load(path.read_text(encoding="utf-8")), str(path))


def _missing(model: str, artifact: str, gate: str, tol: dict[str, Any], reason: str) -> GateResult:
    if tol.get("required"):
        return GateResult(model, artifact, gate, None, None, False, f"required but {reason}")
    return GateResult(model, artifact, gate, None, None, True, reason, skipped=True)


def check_fidelity(model: str, rows: list[Any], config: RegressionConfig,
                   skipped: dict[str, str] | None = None) -> list[GateResult]:
    """Gate every listed artifact of ``model``; ``rows`` are FidelityRow objects or their dicts."""
    gates = config.for_model(model)
    by_key = {f"{r['runtime']}/{r['precision']}": r for r in (_as_dict(r) for r in rows)}
    results: list[GateResult] = []
    for artifact, tol in gates.artifacts.items():
        row = by_key.get(artifact)
        if row is None:
            reason = (skipped or {}).get(artifact, "artifact not measured")
            results.append(_missing(model, artifact, "fidelity", tol, reason))
            continue
        precision = artifact.split("/")[1]
        drop = -row["accuracy_delta"]
        results.append(GateResult(model, artifact, "accuracy_drop", drop, tol["accuracy_drop"],
                                  drop <= tol["accuracy_drop"] + 1e-12,
                                  f"accuracy {row.get('accuracy', float('nan')):.2%}"))
        deltas = row.get("recall_delta") or {}
        worst_class, worst = min(deltas.items(), key=lambda kv: kv[1]) if deltas else ("-", 0.0)
        results.append(GateResult(model, artifact, "recall_drop", -worst, tol["recall_drop"],
                                  -worst <= tol["recall_drop"] + 1e-12, f"worst class {worst_class}"))
        floors = tol["agreement_floor"]
        floor = floors.get(precision, floors.get("int8", 0.98)) if isinstance(floors, dict) else float(floors)
        results.append(GateResult(model, artifact, "agreement_floor", row["top1_agreement"], floor,
                                  row["top1_agreement"] >= floor - 1e-12))
        if precision == "fp32":
            ok = _within(row, tol["fp32_logit_atol"], tol["fp32_logit_rtol"])
            results.append(GateResult(model, artifact, "fp32_logit_tolerance", row["max_logit_error"],
                                      tol["fp32_logit_atol"], ok, f"rtol {tol['fp32_logit_rtol']:g}"))
    return results


def _within(row: dict[str, Any], atol: float, rtol: float) -> bool:
    """Elementwise ``|ref - x| <= atol + rtol·|ref|`` when the row still holds both logit sets (a live
    FidelityRow); from a saved report only the max error is left, checked against ``atol`` alone."""
    ref, act = row.get("reference_logits"), row.get("logits")
    if ref is not None and act is not None:
        ref, act = np.asarray(ref, np.float64), np.asarray(act, np.float64)
        return bool(np.all(np.abs(ref - act) <= atol + rtol * np.abs(ref)))
    return bool(row["max_logit_error"] <= atol)


def check_latency(model: str, rows: list[dict[str, Any]], config: RegressionConfig) -> list[GateResult]:
    """Each budget's ratio of p50 latencies, both measured in this run at the budget's batch."""
    gates = config.for_model(model)
    p50 = {(f"{r['runtime']}/{r['precision']}", int(r["batch"])): float(r["p50_ms"])
           for r in rows if r.get("model", model) == model and not is_device_default(r)}
    results = []
    for budget in gates.latency:
        num, den = p50.get((budget.numerator, budget.batch)), p50.get((budget.denominator, budget.batch))
        if num is None or den is None:
            missing = budget.numerator if num is None else budget.denominator
            results.append(GateResult(model, budget.name, "latency_ratio", None, budget.max_ratio, True,
                                      f"{missing} not measured", skipped=True))
            continue
        ratio = num / den
        results.append(GateResult(model, budget.name, "latency_ratio", ratio, budget.max_ratio,
                                  ratio <= budget.max_ratio, f"{num:.3g} ms / {den:.3g} ms"))
    return results


def failures(results: list[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]


def _as_dict(row: Any) -> dict[str, Any]:
    if isinstance(row, dict):
        return row
    data = row.to_dict()
    data["reference_logits"], data["logits"] = getattr(row, "reference_logits", None), getattr(row, "logits", None)
    return data
