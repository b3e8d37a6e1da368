"""Fidelity of each runtime × precision against the FP32 PyTorch reference on labelled data.

Why beside accuracy: two artifacts with the same accuracy can disagree on many faces, and a
per-class recall can collapse while the average holds (INT8 often hurts the rare classes first).
So each row has accuracy and macro-F1 with their deltas, per-class recall and its delta, top-1
agreement with the reference, and max/mean logit error (from :func:`feredge.parity.compare_logits`
with the precision's tolerance), plus its confusion matrix. Built from
:func:`feredge.bench.evaluate.evaluate` results, so the crops are the deployment pipeline's own.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from feredge.bench.evaluate import Evaluation, evaluate
from feredge.bench.naming import ran_as
from feredge.errors import FeredgeError
from feredge.parity import compare_logits


@dataclass
class FidelityRow:
    model: str
    runtime: str
    precision: str  # the artifact's precision (fp32 / fp16 / int8)
    ran_precision: str  # what the runtime says it computed in
    artifact: str
    samples: int
    accuracy: float
    accuracy_delta: float  # candidate - reference (negative is a drop)
    macro_f1: float
    macro_f1_delta: float
    per_class_recall: dict[str, float]
    recall_delta: dict[str, float]
    top1_agreement: float
    max_logit_error: float
    mean_logit_error: float
    softmax_max_error: float
    parity_passed: bool
    parity_reason: str
    confusion: list[list[int]]
    labels: list[str]
    # kept in memory for elementwise gates, left out of reports
    reference_logits: np.ndarray | None = field(default=None, repr=False)
    logits: np.ndarray | None = field(default=None, repr=False)
    file: str = ""  # the bundle file that ran (model.xml, model.onnx): what the row is named by
    ran_as: str = ""  # the one precision a reader sees (feredge.bench.naming.ran_as)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("reference_logits", "logits")}

    @property
    def key(self) -> str:
        return f"{self.runtime}/{self.precision}"


def fidelity_row(model: str, reference: Evaluation, candidate: Evaluation, precision: str) -> FidelityRow:
    ref, cand = reference.report, candidate.report
    ran = str(candidate.settings.get("inference_precision") or candidate.settings.get("precision") or precision)
    parity = compare_logits(reference.logits, candidate.logits, runtime=candidate.runtime,
                            precision=precision if precision in ("fp32", "fp16", "bf16", "int8") else "fp32")
    recall_delta = {name: cand.per_class_recall.get(name, 0.0) - value for name, value in ref.per_class_recall.items()}
    return FidelityRow(
        model=model, runtime=candidate.runtime, precision=precision, ran_precision=ran, artifact=candidate.artifact,
        samples=cand.samples, accuracy=cand.accuracy, accuracy_delta=cand.accuracy - ref.accuracy,
        macro_f1=cand.macro_f1, macro_f1_delta=cand.macro_f1 - ref.macro_f1,
        per_class_recall=dict(cand.per_class_recall), recall_delta=recall_delta,
        top1_agreement=parity.top1_agreement, max_logit_error=parity.max_abs, mean_logit_error=parity.mean_abs,
        softmax_max_error=parity.softmax_max_abs, parity_passed=parity.passed, parity_reason=parity.reason,
        confusion=cand.confusion, labels=list(cand.labels), reference_logits=reference.logits,
        logits=candidate.logits, file=candidate.file,
        ran_as=ran_as(precision, candidate.settings.get("inference_precision") or candidate.settings.get("precision"),
                      candidate.runtime),
    )


def reference_row(model: str, reference: Evaluation) -> FidelityRow:
    """The reference against itself: the row every delta is measured from."""
    return fidelity_row(model, reference, reference, "fp32")


@dataclass
class FidelityResult:
    model: str
    data: str
    split: str
    reference: FidelityRow
    rows: list[FidelityRow]
    skipped: list[dict[str, str]]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "data": self.data, "split": self.split, "reference": self.reference.to_dict(),
                "rows": [r.to_dict() for r in self.rows], "skipped": self.skipped}


def run_fidelity(model: str, bundles: dict[str, Path], runtimes: list[str], data: Path, *, fmt: str = "folder",
                 split: str = "test", reference_bundle: Path | None = None) -> FidelityResult:
    """Evaluate every (runtime, precision) artifact and compare it with PyTorch fp32.

    ``bundles`` maps precision → bundle directory (or "target/precision" → bundle, the matrix's
    form: the runtime picks the target it reads). The reference is the fp32 bundle's weights in
    PyTorch eager (``reference_bundle`` overrides, e.g. the undegraded bundle in the gate tests);
    without an fp32 bundle, any bundle's weights: every bundle carries the deploy graph's float
    weights (``weights.safetensors``), so ``bench --data`` works on an INT8 bundle alone. A row's
    precision is that of the file its runtime ran (ONNX Runtime on an INT8 OpenVINO bundle runs its
    fp32 ONNX).
    """
    from feredge.bench.model_bench import runner_role
    from feredge.bundle import Bundle
    from feredge.runtimes.registry import runtime_info

    by_precision: dict[str, dict[str, Path]] = {}
    for key, path in bundles.items():
        target, _, precision = key.rpartition("/")
        by_precision.setdefault(precision, {})[target or "*"] = Path(path)
    ref_path = (reference_bundle or _pick(by_precision.get("fp32", {}), "openvino", "fp32")
                or next((Path(p) for p in bundles.values()), None))
    if ref_path is None:
        raise FeredgeError(f"{model}: no bundle to take the PyTorch reference from")
    reference = evaluate(ref_path, data, fmt=fmt, split=split, runtime="torch")
    rows: list[FidelityRow] = []
    skipped: list[dict[str, str]] = []
    for precision, targets in by_precision.items():
        for runtime in runtimes:
            if runtime == "torch":
                continue
            path = _pick(targets, runtime_info(runtime).bundle_target, precision)
            if path is None:
                skipped.append({"runtime": runtime, "precision": precision, "reason": "no artifact"})
                continue
            try:
                candidate = evaluate(path, data, fmt=fmt, split=split, runtime=runtime)
            except Exception as exc:  # a runtime refusing one artifact must not hide the others
                skipped.append({"runtime": runtime, "precision": precision, "reason": str(exc)[:300]})
                continue
            role = runner_role(Bundle.load(path), runtime)
            ran = Bundle.load(path).role_precision(role) if role is not None else precision
            rows.append(fidelity_row(model, reference, candidate, ran))
    return FidelityResult(model, str(data), split, reference_row(model, reference), rows, skipped)


def _pick(targets: dict[str, Path], target: str, precision: str) -> Path | None:
    if target in targets:
        return targets[target]
    if target == "onnx" and precision == "fp32" and "openvino" in targets:  # its model.onnx is the fp32 ONNX
        return targets["openvino"]
    return targets.get("*")
