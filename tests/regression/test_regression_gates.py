"""The regression gates of ``regression.yaml``, run in CI on a small synthetic eval set.

Accuracy part: the shipped default model's OpenVINO and ONNX Runtime fp32 artifacts against the
FP32 PyTorch reference must pass every gate. Degraded part: the same bundle with its weights
perturbed and its IR re-converted must *fail* (the gate is only worth having if it can fail).
Latency part: a short run checks the ratio budgets (ratios of two runtimes in the same run).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from feredge.bench.fidelity import run_fidelity
from feredge.bench.regression import check_fidelity, check_latency, failures, load_config

REPO = Path(__file__).resolve().parents[2]
GATES = REPO / "regression.yaml"
MODEL = "mini_xception"


@pytest.fixture(scope="module")
def config():
    return load_config(GATES)


@pytest.fixture(scope="module")
def eval_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from feredge.data.synth import write_folder

    root = tmp_path_factory.mktemp("synth_eval")
    write_folder(root, 12, size=64, splits={"test": 12})  # 84 faces, 12 per class
    return root


def _degrade(bundle: Path, out: Path, scale: float = 0.6) -> Path:
    """Copy ``bundle`` with every conv/linear weight perturbed by ``scale``·std noise, IR re-converted."""
    import onnx
    from onnx import numpy_helper

    from feredge.bundle import Bundle, file_entry, write_manifest
    from feredge.export.openvino_export import convert_to_openvino

    shutil.copytree(bundle, out)
    model = onnx.load(str(out / "model.onnx"))
    rng = np.random.default_rng(0)
    for i, init in enumerate(model.graph.initializer):
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.ndim >= 2 and arr.size > 16:
            noisy = arr + rng.standard_normal(arr.shape).astype(np.float32) * scale * float(arr.std())
            model.graph.initializer[i].CopyFrom(numpy_helper.from_array(noisy, init.name))
    onnx.save(model, str(out / "model.onnx"))
    convert_to_openvino(out / "model.onnx", out / "model.xml", compress_to_fp16=False)
    manifest = Bundle.load(out, verify=False).manifest
    manifest["files"] = {name: file_entry(out / name, entry["role"]) for name, entry in manifest["files"].items()}
    write_manifest(out, manifest)
    return out


def test_regression_file_lists_the_matrix_models(config):
    for model in ("mini_xception", "csam_net", "lfer_ldl"):
        gates = config.for_model(model)
        assert {"openvino/fp32", "onnxruntime/fp32"} <= set(gates.artifacts)
        assert gates.latency, "every model has at least one latency-ratio budget"
        assert all(b.max_ratio > 0 for b in gates.latency)


def test_shipped_model_passes_accuracy_gates(default_bundle, eval_set, config):
    result = run_fidelity(MODEL, {"openvino/fp32": default_bundle}, ["openvino", "onnxruntime"], eval_set)
    assert {r.key for r in result.rows} == {"openvino/fp32", "onnxruntime/fp32"}
    gates = check_fidelity(MODEL, result.rows, config)
    assert not failures(gates), "\n".join(g.line() for g in failures(gates))
    measured = [g for g in gates if not g.skipped]
    assert {g.gate for g in measured} == {"accuracy_drop", "recall_drop", "agreement_floor", "fp32_logit_tolerance"}


def test_degraded_artifact_fails_the_gates(default_bundle, eval_set, config, tmp_path):
    degraded = _degrade(default_bundle, tmp_path / "degraded")
    result = run_fidelity(MODEL, {"openvino/fp32": degraded}, ["openvino", "onnxruntime"], eval_set,
                          reference_bundle=default_bundle)
    failed = failures(check_fidelity(MODEL, result.rows, config))
    assert failed, "perturbed weights must fail the regression gates"
    assert {g.artifact for g in failed} == {"openvino/fp32", "onnxruntime/fp32"}
    assert {"agreement_floor", "fp32_logit_tolerance"} <= {g.gate for g in failed}


def test_latency_ratio_budgets(default_bundle, config):
    from feredge.bench.model_bench import MatrixConfig, ModelRef, bench_model

    result = bench_model(ModelRef(MODEL, bundle=default_bundle),
                         MatrixConfig(runtimes=["openvino", "onnxruntime", "torch"], batches=[1], warmup=3,
                                      iterations=15, isolate=False), log=lambda _text: None)
    gates = check_latency(MODEL, result.rows, config)
    assert gates and not any(g.skipped for g in gates)
    assert not failures(gates), "\n".join(g.line() for g in failures(gates))
