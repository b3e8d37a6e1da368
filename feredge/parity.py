"""Comparing a runtime's logits with the reference's, with the tolerance its precision allows.

The gates are the ones deployment users expect (see ``shared/docs/backends.md``): FP32 logits
elementwise within atol 1e-4 / rtol 1e-3; FP16/BF16 softmax within 1e-2 and top-1 agreement
≥ 99.5 %; INT8 top-1 agreement ≥ 98 %. A result that misses its gate fails — it never only warns.

FP16/BF16 agreement is counted on decisive faces only: those whose FP32 softmax top-1 beats the
runner-up by more than twice the softmax tolerance. Why: within the softmax gate no probability
moves by more than that tolerance, so a face with a wider margin cannot flip unless the softmax
gate fails too, and a face with a narrower one (a near-tie: untrained models, out-of-domain faces)
may flip while every number stays within tolerance. Counting those made the gate fail on one
tied face in 132 of an untrained model. The raw agreement over every face is still reported.
INT8 has no elementwise bound, so its agreement counts every face.

Every result says which faces it was measured on (``faces``) and whether it is a gate
(``gate``). An export checks on the shared real reference faces; an INT8 export given a labelled
calibration dataset is gated on that dataset's validation split instead (in-domain faces, see
:mod:`feredge.export.int8`), and the reference-face figure is kept as information.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from feredge.mathops import softmax


@dataclass(frozen=True)
class Tolerance:
    atol: float | None = None  # elementwise on logits
    rtol: float = 0.0
    softmax_atol: float | None = None
    min_agreement: float = 1.0
    tie_margin: float = 0.0  # FP32 top-1 − top-2 softmax margin at or below which a face is a near-tie


TOLERANCES: dict[str, Tolerance] = {
    "fp32": Tolerance(atol=1e-4, rtol=1e-3, min_agreement=1.0),
    "fp16": Tolerance(softmax_atol=1e-2, min_agreement=0.995, tie_margin=2e-2),
    "bf16": Tolerance(softmax_atol=1e-2, min_agreement=0.995, tie_margin=2e-2),
    "int8": Tolerance(min_agreement=0.98),
}


@dataclass(frozen=True)
class ParityResult:
    runtime: str
    precision: str
    samples: int
    max_abs: float
    mean_abs: float
    max_rel: float
    softmax_max_abs: float
    top1_agreement: float
    passed: bool
    reason: str = ""
    decisive: int = -1  # faces counted by the agreement gate (all of them when the tolerance has no tie margin)
    decisive_agreement: float = 1.0
    faces: str = "reference"  # which faces: the shared real reference faces, or an in-domain split
    gate: bool = True  # False: recorded for information, does not fail the export

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def compare_logits(reference: np.ndarray, actual: np.ndarray, *, runtime: str, precision: str = "fp32",
                   tolerance: Tolerance | None = None, faces: str = "reference", gate: bool = True) -> ParityResult:
    reference = np.asarray(reference, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    if reference.shape != actual.shape:
        return ParityResult(runtime, precision, len(reference), float("inf"), float("inf"), float("inf"),
                            float("inf"), 0.0, False, f"shape {actual.shape} != reference {reference.shape}",
                            faces=faces, gate=gate)
    tol = tolerance or TOLERANCES[precision]
    diff = np.abs(reference - actual)
    max_rel = float((diff / np.maximum(np.abs(reference), 1e-6)).max())
    ref_probs = softmax(reference)
    soft = float(np.abs(ref_probs - softmax(actual)).max())
    same = reference.argmax(1) == actual.argmax(1)
    agreement = float(same.mean())
    top2 = np.sort(ref_probs, axis=1)[:, -2:]
    decisive = (top2[:, 1] - top2[:, 0]) > tol.tie_margin
    gated = float(same[decisive].mean()) if decisive.any() else 1.0
    reasons = []
    if tol.atol is not None and not np.all(diff <= tol.atol + tol.rtol * np.abs(reference)):
        reasons.append(f"logits differ by up to {diff.max():.3g} (atol {tol.atol:g}, rtol {tol.rtol:g})")
    if tol.softmax_atol is not None and soft > tol.softmax_atol:
        reasons.append(f"softmax differs by {soft:.3g} (limit {tol.softmax_atol:g})")
    if gated < tol.min_agreement:
        where = f" on {int(decisive.sum())} decisive faces" if tol.tie_margin > 0 else ""
        reasons.append(f"top-1 agreement {gated:.2%}{where} below {tol.min_agreement:.2%}")
    return ParityResult(runtime, precision, len(reference), float(diff.max()), float(diff.mean()), max_rel, soft,
                        agreement, not reasons, "; ".join(reasons), int(decisive.sum()), gated, faces, gate)
