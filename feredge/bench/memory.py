"""Peak resident memory of one benchmark case, read from ``/proc`` (no psutil on the device side).

Method: each runtime case runs in its own Python process (:mod:`feredge.bench.worker`). After the
interpreter, numpy and the back end are imported, the process resets its peak-RSS counter
(``echo 5 > /proc/self/clear_refs`` sets ``VmHWM`` to the current ``VmRSS``) and records the
baseline; after loading the model and running every batch size, ``VmHWM`` is the case's peak.
``model_mb = peak - baseline`` is what loading and running the model cost, which is the figure a
device budget needs; ``peak_mb`` includes the interpreter and the back end's own libraries.

Where ``/proc`` is missing (macOS) the numbers fall back to ``resource.getrusage`` (peak only,
no reset, so the delta is from process start) and the method says so.
"""

from __future__ import annotations

import resource
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


def _status_kb(field: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_mb() -> float | None:
    kb = _status_kb("VmRSS")
    return None if kb is None else kb / 1024.0


def peak_rss_mb() -> float:
    kb = _status_kb("VmHWM")
    if kb is not None:
        return kb / 1024.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024.0 * 1024.0) if sys.platform == "darwin" else peak / 1024.0  # bytes on macOS, KiB on Linux


def reset_peak() -> bool:
    """Make ``VmHWM`` restart from the current RSS; False where the kernel does not allow it."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True)
class MemoryUsage:
    baseline_mb: float  # RSS after imports, before the model is loaded
    peak_mb: float  # peak RSS of the process over load + every timed batch
    model_mb: float  # peak - baseline: what the model and its inference cost
    method: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PeakTracker:
    """``start()`` before loading the model, ``stop()`` after the last inference."""

    def __init__(self) -> None:
        self.baseline = 0.0
        self.method = ""

    def start(self) -> None:
        if reset_peak():
            self.method = "subprocess per case; /proc/self/status VmHWM after clear_refs reset"
            self.baseline = current_rss_mb() or 0.0
        else:
            self.method = "getrusage ru_maxrss (no peak reset: baseline is the peak before the case)"
            self.baseline = peak_rss_mb()

    def stop(self) -> MemoryUsage:
        peak = peak_rss_mb()
        return MemoryUsage(round(self.baseline, 2), round(peak, 2), round(max(peak - self.baseline, 0.0), 2),
                           self.method)
