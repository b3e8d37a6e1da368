"""Latency measurement of one runner at one batch size.

Warm-up iterations are run and discarded (first calls allocate and JIT-select kernels); the
statistics are over the remaining wall times as recorded by the runner itself, so every back end
is timed at the same boundary (numpy batch in → numpy logits out).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from feredge.runtimes.base import Runner


@dataclass(frozen=True)
class LatencyStats:
    runtime: str
    batch: int
    iterations: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    throughput_fps: float  # samples (faces) per second at the median latency
    settings: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def tile_batch(samples: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` real samples, repeating the set when it is smaller than the batch."""
    reps = -(-batch // len(samples))
    return np.ascontiguousarray(np.concatenate([samples] * reps)[:batch])


def measure(runner: Runner, samples: np.ndarray, batch: int, *, warmup: int = 10,
            iterations: int = 50) -> LatencyStats:
    inputs = tile_batch(samples, batch)
    for _ in range(warmup):
        runner.infer(inputs)
    runner.reset_timings(max(iterations, 1))  # the bounded window must hold every measured call
    for _ in range(iterations):
        runner.infer(inputs)
    times = np.asarray(runner.timings) * 1000.0
    p50 = float(np.percentile(times, 50))
    return LatencyStats(
        runtime=runner.name,
        batch=batch,
        iterations=iterations,
        p50_ms=p50,
        p90_ms=float(np.percentile(times, 90)),
        p99_ms=float(np.percentile(times, 99)),
        mean_ms=float(times.mean()),
        min_ms=float(times.min()),
        max_ms=float(times.max()),
        throughput_fps=batch * 1000.0 / p50,
        settings=dict(runner.settings),
    )
