"""Fidelity rows, regression-gate logic and precision advice on hand-made numbers (no export)."""

from __future__ import annotations

import numpy as np
import pytest

from feredge.bench.evaluate import Evaluation
from feredge.bench.fidelity import fidelity_row
from feredge.bench.recommend import recommend
from feredge.bench.regression import check_fidelity, check_latency, failures, parse_config
from feredge.errors import FeredgeError
from feredge.metrics import classification_report

LABELS = ("a", "b", "c")


def _evaluation(logits: np.ndarray, truth: np.ndarray, runtime: str) -> Evaluation:
    report = classification_report(truth, logits.argmax(1), LABELS)
    return Evaluation("x", runtime, {"precision": "fp32"}, report, logits, 0)


@pytest.fixture
def reference() -> tuple[Evaluation, np.ndarray]:
    rng = np.random.default_rng(0)
    truth = np.arange(60) % 3
    logits = rng.standard_normal((60, 3)).astype(np.float32)
    logits[np.arange(60), truth] += 2.0
    return _evaluation(logits, truth, "torch"), truth


def test_identical_logits_give_a_perfect_row(reference):
    ref, truth = reference
    row = fidelity_row("m", ref, _evaluation(ref.logits.copy(), truth, "openvino"), "fp32")
    assert row.top1_agreement == 1.0 and row.max_logit_error == 0.0 and row.parity_passed
    assert row.accuracy_delta == 0.0 and all(v == 0.0 for v in row.recall_delta.values())
    assert row.to_dict().keys().isdisjoint({"logits", "reference_logits"})


def test_a_flipped_class_shows_in_recall_delta_and_gates(reference):
    ref, truth = reference
    bad = ref.logits.copy()
    bad[truth == 1] = bad[truth == 1][:, [1, 0, 2]]  # class b predicted as a
    row = fidelity_row("m", ref, _evaluation(bad, truth, "onnxruntime"), "int8")
    assert row.recall_delta["b"] < -0.5
    assert row.top1_agreement < 0.8
    config = parse_config({"models": {"m": {"artifacts": ["onnxruntime/int8"]}}})
    failed = {g.gate for g in failures(check_fidelity("m", [row], config))}
    assert failed == {"accuracy_drop", "recall_drop", "agreement_floor"}


def test_fp32_logit_tolerance_is_elementwise(reference):
    ref, truth = reference
    nudged = ref.logits + 5e-4  # agreement intact, logits outside atol 1e-4 + rtol 1e-3·|ref| for small |ref|
    row = fidelity_row("m", ref, _evaluation(nudged, truth, "openvino"), "fp32")
    config = parse_config({"models": {"m": {"artifacts": ["openvino/fp32"]}}})
    failed = failures(check_fidelity("m", [row], config))
    assert [g.gate for g in failed] == ["fp32_logit_tolerance"]
    loose = parse_config({"models": {"m": {"artifacts": {"openvino/fp32": {"fp32_logit_atol": 1e-3}}}}})
    assert not failures(check_fidelity("m", [row], loose))


def test_missing_artifacts_skip_unless_required():
    artifacts = {"openvino/int8": {}, "onnxruntime/fp32": {"required": True}}
    config = parse_config({"models": {"m": {"artifacts": artifacts}}})
    results = check_fidelity("m", [], config, skipped={"openvino/int8": "exporter cannot make int8"})
    by_artifact = {g.artifact: g for g in results}
    assert by_artifact["openvino/int8"].skipped and by_artifact["openvino/int8"].passed
    assert "exporter cannot make int8" in by_artifact["openvino/int8"].detail
    assert not by_artifact["onnxruntime/fp32"].passed


def test_latency_budgets_are_ratios_measured_together():
    config = parse_config({"models": {"m": {"latency": [
        {"numerator": "onnxruntime/fp32", "denominator": "openvino/fp32", "max_ratio": 2.0},
        {"numerator": "tensorrt/fp16", "denominator": "openvino/fp32", "max_ratio": 1.0}]}}})
    rows = [{"model": "m", "runtime": "onnxruntime", "precision": "fp32", "batch": 1, "p50_ms": 3.0},
            {"model": "m", "runtime": "openvino", "precision": "fp32", "batch": 1, "p50_ms": 1.0},
            {"model": "m", "runtime": "openvino", "precision": "fp32", "batch": 1, "p50_ms": 0.1,
             "variant": "device default (bf16)"}]
    first, second = check_latency("m", rows, config)
    assert first.value == pytest.approx(3.0) and not first.passed
    assert second.skipped and second.passed


def test_bad_config_is_a_one_line_error():
    with pytest.raises(FeredgeError, match="runtime/precision"):
        parse_config({"models": {"m": {"artifacts": ["openvino"]}}})
    with pytest.raises(FeredgeError, match="no gates for model"):
        parse_config({"models": {"m": {}}}).for_model("other")


def _gate_rows(runtime: str, times: dict[str, float]) -> list[dict[str, object]]:
    return [{"model": "m", "runtime": runtime, "precision": p, "batch": 1, "p50_ms": t} for p, t in times.items()]


def test_recommend_skips_a_faster_precision_that_fails():
    config = parse_config({"models": {"m": {"artifacts": ["openvino/fp32", "openvino/fp16", "openvino/int8"]}}})
    rows = [
        {"runtime": "openvino", "precision": "fp32", "accuracy_delta": 0.0, "recall_delta": {"a": 0.0},
         "top1_agreement": 1.0, "max_logit_error": 0.0},
        {"runtime": "openvino", "precision": "fp16", "accuracy_delta": 0.0, "recall_delta": {"a": 0.0},
         "top1_agreement": 1.0, "max_logit_error": 1e-3},
        {"runtime": "openvino", "precision": "int8", "accuracy_delta": -0.05, "recall_delta": {"a": -0.2},
         "top1_agreement": 0.9, "max_logit_error": 0.5},
    ]
    gates = check_fidelity("m", rows, config)
    (advice,) = recommend("m", _gate_rows("openvino", {"fp32": 2.0, "fp16": 1.8, "int8": 0.5}), gates)
    assert advice.precision == "fp16"
    assert any("int8 rejected" in r for r in advice.reasons)


def test_recommend_says_when_int8_is_not_faster():
    config = parse_config({"models": {"m": {"artifacts": ["onnxruntime/fp32", "onnxruntime/int8"]}}})
    rows = [{"runtime": "onnxruntime", "precision": p, "accuracy_delta": 0.0, "recall_delta": {"a": 0.0},
             "top1_agreement": 1.0, "max_logit_error": 0.0} for p in ("fp32", "int8")]
    gates = check_fidelity("m", rows, config)
    (advice,) = recommend("m", _gate_rows("onnxruntime", {"fp32": 1.0, "int8": 1.4}), gates)
    assert advice.precision == "fp32"
    assert any("int8 is not faster" in r for r in advice.reasons)


def test_a_mixed_precision_int8_row_is_advised_on_but_the_device_default_row_is_not():
    """Rows of INT8 artifacts with layers kept in float are the artifact; bf16 device-default rows are not."""
    from feredge.bench.recommend import recommend
    from feredge.bench.regression import GateResult

    rows = [{"model": "m", "runtime": "openvino", "precision": "fp32", "batch": 1, "p50_ms": 2.0, "variant": ""},
            {"model": "m", "runtime": "openvino", "precision": "fp32", "batch": 1, "p50_ms": 1.0,
             "variant": "device default (bf16)"},
            {"model": "m", "runtime": "openvino", "precision": "int8", "batch": 1, "p50_ms": 1.5,
             "variant": "6 layers kept in float"}]
    gates = [GateResult("m", f"openvino/{p}", "agreement_floor", 1.0, 0.98, True, "") for p in ("fp32", "int8")]
    (advice,) = recommend("m", rows, gates)
    assert advice.precision == "int8" and advice.p50_ms == 1.5
