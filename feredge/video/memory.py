"""Resident memory sampled during a run, reduced to a peak and a slope.

Why: "flat memory" on a long video is a claim to measure, not assume. RSS is read every
``every`` processed frames (``/proc/self/statm`` on Linux: a read, no dependency; psutil
elsewhere when installed). The slope is a least-squares line over the samples after a warm-up
(the first ``warmup`` fraction: allocator pools, OpenVINO's first requests, the video writer's
buffers), in MB per 1,000 frames — near 0 when nothing accumulates per frame.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

import numpy as np


def rss_mb() -> float | None:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:
        return None


@dataclass
class MemoryMonitor:
    every: int = 100
    warmup: float = 0.2
    samples: list[tuple[int, float]] = field(default_factory=list)

    def maybe_sample(self, frame_number: int) -> None:
        if self.every > 0 and frame_number % self.every == 0:
            value = rss_mb()
            if value is not None:
                self.samples.append((frame_number, value))

    def summary(self) -> dict[str, Any]:
        if not self.samples:
            return {"samples": 0}
        frames = np.array([s[0] for s in self.samples], np.float64)
        values = np.array([s[1] for s in self.samples], np.float64)
        steady = frames >= frames[0] + self.warmup * (frames[-1] - frames[0])
        slope = float(np.polyfit(frames[steady], values[steady], 1)[0] * 1000) if steady.sum() >= 3 else None
        return {
            "samples": len(self.samples),
            "every_frames": self.every,
            "start_mb": round(float(values[0]), 1),
            "end_mb": round(float(values[-1]), 1),
            "peak_mb": round(float(values.max()), 1),
            "steady_min_mb": round(float(values[steady].min()), 1),
            "steady_max_mb": round(float(values[steady].max()), 1),
            "slope_mb_per_1k_frames": None if slope is None else round(slope, 4),
        }
