"""``feredge bench --mode throughput`` as a user runs it: JSON, Markdown, one-line refusals."""

from __future__ import annotations

import json
import subprocess
import sys


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feredge", "bench", *args], capture_output=True, text=True,
                          timeout=600)


def test_throughput_mode_reports_rates_and_requests_per_runtime(default_bundle, tmp_path):
    result = _bench("--bundle", str(default_bundle), "--mode", "throughput", "--runtimes", "openvino", "onnxruntime",
                    "--batch", "1", "--iterations", "2", "--warmup", "1", "--report-dir", str(tmp_path), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["mode"] == "throughput" and report["results"] == []
    rows = {r["runtime"]: r for r in report["throughput"]}
    assert set(rows) == {"openvino", "onnxruntime"}
    for row in rows.values():
        assert row["inferences_per_s"] > 0 and row["requests"] >= 1 and row["inferences"] == 2 * row["requests"]
    text = (tmp_path / "bench.md").read_text()
    assert "## Throughput" in text and "| requests in flight |" in text and "AsyncInferQueue" in text
    assert "## Model-only latency" not in text


def test_throughput_mode_refuses_latency_only_options_in_one_line(default_bundle):
    result = _bench("--bundle", str(default_bundle), "--mode", "throughput", "--matrix")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "feredge: error: --mode throughput measures one bundle (--bundle); --matrix belong(s) to --mode latency"]
    result = _bench("--bundle", str(default_bundle), "--infer-requests", "2")
    assert result.returncode == 2
    assert result.stderr.strip() == "feredge: error: --infer-requests is for --mode throughput"
