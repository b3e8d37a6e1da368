"""Precision advice: per runtime, the fastest precision whose fidelity passes the gates.

Why measured and not assumed: INT8 is not always faster (CPUs without VNNI/AMX emulate it; small
models are dominated by per-call overhead and Q/DQ reorders; fp16 weights on a CPU that computes
in f32 only save disk). So the choice is made from this run's latency rows and this run's gate
results on the user's data, and every rejected precision is listed with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from feredge.bench.regression import GateResult
from feredge.bench.variants import is_device_default


@dataclass
class Recommendation:
    model: str
    runtime: str
    precision: str | None
    p50_ms: float | None
    batch: int
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        if self.precision is None:
            return f"{self.model} {self.runtime}: no precision passes — " + "; ".join(self.reasons)
        return (f"{self.model} {self.runtime}: use {self.precision} ({self.p50_ms:.3g} ms p50 at batch {self.batch}) — "
                + "; ".join(self.reasons))


def recommend(model: str, latency_rows: list[dict[str, Any]], gates: list[GateResult], *,
              batch: int = 1) -> list[Recommendation]:
    """One recommendation per runtime that has latency rows for ``model`` at ``batch``."""
    timed: dict[str, dict[str, float]] = {}
    for row in latency_rows:
        if row.get("model", model) != model or int(row["batch"]) != batch or is_device_default(row):
            continue
        timed.setdefault(row["runtime"], {})[row["precision"]] = float(row["p50_ms"])
    verdicts: dict[str, list[GateResult]] = {}
    for gate in gates:
        if gate.model == model and "/" in gate.artifact and " " not in gate.artifact:
            verdicts.setdefault(gate.artifact, []).append(gate)
    out = []
    for runtime, by_precision in sorted(timed.items()):
        reasons: list[str] = []
        passing: dict[str, float] = {}
        for precision, p50 in sorted(by_precision.items(), key=lambda kv: kv[1]):
            found = [g for g in verdicts.get(f"{runtime}/{precision}", []) if not g.skipped]
            failed = [g for g in found if not g.passed]
            if failed:
                first = failed[0]
                reasons.append(f"{precision} rejected ({first.gate} {first.value or 0:.3g} vs {first.limit or 0:.3g})")
            elif not found and not (runtime == "torch" and precision == "fp32"):
                reasons.append(f"{precision} not checked on the data (no fidelity result)")
            else:
                passing[precision] = p50
        if not passing:
            out.append(Recommendation(model, runtime, None, None, batch, reasons))
            continue
        best = min(passing, key=lambda p: passing[p])
        faster = [p for p, t in by_precision.items() if t < passing[best] and p not in passing]
        for precision, p50 in sorted(passing.items(), key=lambda kv: kv[1]):
            if precision != best:
                reasons.append(f"{precision} passes but is {p50 / passing[best]:.2f}× slower")
        if "int8" in by_precision and "fp32" in by_precision and by_precision["int8"] >= by_precision["fp32"]:
            int8, fp32 = by_precision["int8"], by_precision["fp32"]
            reasons.append(f"int8 is not faster here ({int8:.3g} vs fp32 {fp32:.3g} ms)")
        if faster:
            reasons.append(f"faster {', '.join(faster)} excluded by the gates")
        reasons.insert(0, f"fastest precision that passes the gates of {len(passing)} passing")
        out.append(Recommendation(model, runtime, best, passing[best], batch, reasons))
    return out
