"""What a calibration used, stored in the bundle (manifest ``calibration`` + ``calibration.json``).

INT8 results depend on the calibration faces, so a bundle says which they were: the source and
format, the count per class (or that there were no labels), every source file, what was skipped
and why, and input statistics (per-channel mean/std/min/max and percentiles of the normalised
tensors) — enough to spot a calibration set prepared differently from the deployed inputs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feredge.calibration.dataset import CalibrationSet

REPORT_FILE = "calibration.json"


@dataclass
class CalibrationReport:
    origin: str
    fmt: str
    split: str | None
    samples: int
    per_class: dict[str, int] | None
    balanced: bool
    input_shape: list[int]
    stats: dict[str, Any]
    sources: list[str]
    skipped: list[list[str]] = field(default_factory=list)
    method: str = ""  # which INT8 path used it (qat/modelopt/nncf/ort)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> dict[str, Any]:
        """The manifest's ``calibration`` entry: everything but the long lists."""
        data = self.to_dict()
        data["sources"] = len(self.sources)
        data["skipped"] = len(self.skipped)
        data["file"] = REPORT_FILE
        return data

    def write(self, directory: Path) -> Path:
        path = directory / REPORT_FILE
        path.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True), encoding="utf-8")
        return path


def input_statistics(batch: np.ndarray) -> dict[str, Any]:
    per_channel = batch.transpose(1, 0, 2, 3).reshape(batch.shape[1], -1)
    q = np.percentile(batch, [0.1, 1, 50, 99, 99.9])
    return {
        "mean": [round(float(v), 6) for v in per_channel.mean(axis=1)],
        "std": [round(float(v), 6) for v in per_channel.std(axis=1)],
        "min": [round(float(v), 6) for v in per_channel.min(axis=1)],
        "max": [round(float(v), 6) for v in per_channel.max(axis=1)],
        "percentiles": {p: round(float(v), 6) for p, v in zip(("0.1", "1", "50", "99", "99.9"), q, strict=True)},
    }


def describe(calib: CalibrationSet, method: str = "") -> CalibrationReport:
    per_class = None
    if calib.labels is not None:
        counts = np.bincount(calib.labels, minlength=len(calib.label_names))
        per_class = {name: int(counts[k]) for k, name in enumerate(calib.label_names)}
    balanced = per_class is not None and max(per_class.values()) - min(per_class.values()) <= 1
    return CalibrationReport(origin=calib.origin, fmt=calib.fmt, split=calib.split, samples=len(calib),
                             per_class=per_class, balanced=balanced, input_shape=list(calib.batch.shape[1:]),
                             stats=input_statistics(calib.batch), sources=list(calib.sources),
                             skipped=[list(s) for s in calib.skipped], method=method)
