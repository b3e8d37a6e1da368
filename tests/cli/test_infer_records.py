"""``feredge infer --json`` records: the per-face probabilities also under ``emotions`` (fer's key)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_infer_json_records_carry_emotions_equal_to_probabilities(default_bundle, astronaut_path):
    result = subprocess.run([sys.executable, "-m", "feredge", "infer", str(astronaut_path), "--bundle",
                             str(default_bundle), "--json"], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert records and all(r["emotions"] == r["probabilities"] for r in records)
    assert abs(sum(records[0]["emotions"].values()) - 1) < 1e-4
