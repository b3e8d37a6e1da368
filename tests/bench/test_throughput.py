"""``bench --mode throughput``: several requests in flight on OpenVINO and ONNX Runtime, rates and request counts."""

from __future__ import annotations

import pytest

from feredge.bench.throughput import THROUGHPUT_METHODS, ThroughputConfig, bench_throughput, method_for
from feredge.errors import FeredgeError


def test_every_throughput_method_is_a_registered_runtime():
    from feredge.backends import runtime_names

    assert {"openvino", "onnxruntime"} <= set(THROUGHPUT_METHODS) <= set(runtime_names())
    assert method_for("ov").runtime == "openvino"  # aliases resolve like everywhere else
    with pytest.raises(FeredgeError, match="runs on onnxruntime, openvino, not torch"):
        method_for("torch")


def test_openvino_throughput_uses_the_throughput_hint_and_its_optimal_requests(default_bundle):
    config = ThroughputConfig(batches=(1, 2), iterations=3, warmup=1)
    rows = bench_throughput(default_bundle, "openvino", config)
    assert [r.batch for r in rows] == [1, 2]
    for row in rows:
        assert row.settings["hint"] == "THROUGHPUT"
        assert row.requests == row.settings["optimal_infer_requests"] >= 1
        assert row.inferences == 3 * row.requests  # every timed request completed, once
        assert row.inferences_per_s > 0 and row.images_per_s == pytest.approx(row.inferences_per_s * row.batch)
        assert 0 < row.latency_p50_ms <= row.latency_p99_ms
        assert (row.artifact, row.ran_as) == ("model.xml", "fp32")


def test_openvino_takes_a_given_number_of_requests(default_bundle):
    (row,) = bench_throughput(default_bundle, "openvino", ThroughputConfig(batches=(1,), iterations=2, warmup=0,
                                                                           requests=3))
    assert row.requests == 3 and row.inferences == 6


def test_onnxruntime_throughput_runs_concurrent_sessions_runs(default_bundle):
    (row,) = bench_throughput(default_bundle, "onnxruntime", ThroughputConfig(batches=(2,), iterations=4, warmup=1,
                                                                              requests=2))
    assert row.requests == row.settings["client_threads"] == 2 and row.inferences == 8
    assert row.settings["intra_op_threads"] >= 1
    assert row.inferences_per_s > 0 and row.images_per_s == pytest.approx(2 * row.inferences_per_s)
    assert (row.artifact, row.ran_as) == ("model.onnx", "fp32")
