"""What our numbers are compared with, measured in the same run as they are.

* **OpenVINO's own ``benchmark_app``** on the bundle's IR: the openvino wheel ships it (module
  ``openvino.tools.benchmark``, console script ``benchmark_app``), so it is run as a subprocess
  as a user runs it — ``-hint latency -infer_precision f32`` with its **default (async) API**, the
  same dynamic-batch IR fed ``-data_shape [B,C,H,W]``, ``-inference_only`` — and its reported
  median is parsed. Why the default API and not ``-api sync`` (our runner's own call): users run
  the default and compare with it; on mini-Xception the sync API reads 1.02–1.04× our runner where
  the default reads 1.21×, so the sync figure flattered us. ``api="sync"`` is still available.
  If it is missing, :func:`openvino_loop_reference` is the equivalent: ``compile_model``
  with ``PERFORMANCE_HINT=LATENCY`` and a tight ``infer_request.infer`` loop. Our overhead is the
  ratio of our runner's p50 to that median.
* **The compute floor**: ``2 × MACs × batch`` FLOPs at the CPU's *measured* peak fp32 rate (a
  large ``torch.matmul``, best of several repeats, with the benchmark's thread count), so the
  achieved fraction says how far a model is from being compute-bound. A measured peak is used
  rather than cores × GHz × FMA width because the nominal clock of a shared cloud vCPU is not
  what it runs at.
* PyTorch eager on the same weights is the ``torch`` runtime of the matrix itself.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

_BENCHMARK_APP_MODULE = "openvino.tools.benchmark.main"


@dataclass(frozen=True)
class ReferenceLatency:
    tool: str  # "benchmark_app" or "openvino-loop"
    batch: int
    median_ms: float
    mean_ms: float
    min_ms: float
    max_ms: float
    iterations: int
    command: str
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def benchmark_app_command() -> list[str] | None:
    """How to start the shipped benchmark_app here, or None when the wheel lacks it."""
    import importlib.util

    found = shutil.which("benchmark_app")
    if found:
        return [found]
    try:
        if importlib.util.find_spec(_BENCHMARK_APP_MODULE) is not None:
            return [sys.executable, "-c", f"import sys; from {_BENCHMARK_APP_MODULE} import main; sys.exit(main())"]
    except ModuleNotFoundError:
        return None
    return None


_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"


_TO_MS = {"ms": 1.0, "us": 1e-3, "µs": 1e-3, "s": 1e3}


def parse_benchmark_app(output: str) -> dict[str, float]:
    """median/mean/min/max latency (ms), throughput (FPS) and count from benchmark_app's report.

    benchmark_app switches its latency unit to ``us`` below one millisecond, so the unit is read
    and converted rather than assumed.
    """
    found: dict[str, float] = {}
    latency = {"median_ms": "Median", "mean_ms": "Average", "min_ms": "Min", "max_ms": "Max"}
    for key, label in latency.items():
        match = re.search(rf"{label}:\s+{_NUMBER}\s*(ms|us|µs|s)\b", output)
        if match:
            found[key] = float(match.group(1)) * _TO_MS[match.group(2)]
    counters = {"fps": rf"Throughput:\s+{_NUMBER}\s*FPS", "count": rf"Count:\s+{_NUMBER}\s*iterations"}
    for key, pattern in counters.items():
        match = re.search(pattern, output)
        if match:
            found[key] = float(match.group(1))
    return found


def benchmark_app_reference(xml: Path, input_shape: tuple[int, ...], *, batch: int = 1, seconds: float = 5.0,
                            threads: int | None = None, precision: str = "f32",
                            api: str = "default") -> ReferenceLatency:
    """Run benchmark_app on ``xml`` as a user does (its default API unless ``api="sync"``); falls
    back to the loop if it is absent."""
    command = benchmark_app_command()
    if command is None:
        return openvino_loop_reference(xml, input_shape, batch=batch, seconds=seconds, threads=threads,
                                       precision=precision)
    shape = "[" + ",".join(str(d) for d in (batch, *input_shape)) + "]"
    args = [*command, "-m", str(xml), "-d", "CPU", "-hint", "latency", *(["-api", api] if api != "default" else []),
            "-data_shape", shape, "-t", str(max(1, round(seconds))), "-infer_precision", precision,
            "-inference_only", "true"]
    if threads:
        args += ["-nthreads", str(threads)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120 + 4 * seconds)
    stats = parse_benchmark_app(proc.stdout + proc.stderr)
    if proc.returncode != 0 or "median_ms" not in stats:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise RuntimeError(f"benchmark_app failed (exit {proc.returncode}): {tail[0][:200]}")
    shown = "benchmark_app " + " ".join(args[len(command):])
    return ReferenceLatency("benchmark_app", batch, stats["median_ms"], stats.get("mean_ms", float("nan")),
                            stats.get("min_ms", float("nan")), stats.get("max_ms", float("nan")),
                            int(stats.get("count", 0)), shown,
                            {"hint": "LATENCY", "api": api if api != "default" else "async (default)",
                             "infer_precision": precision, "threads": threads})


def openvino_loop_reference(xml: Path, input_shape: tuple[int, ...], *, batch: int = 1, seconds: float = 5.0,
                            threads: int | None = None, precision: str = "f32") -> ReferenceLatency:
    """benchmark_app's core without its app: LATENCY-hint compile and a tight synchronous infer loop."""
    import openvino as ov

    core = ov.Core()
    config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    compiled = core.compile_model(core.read_model(str(xml)), "CPU", config)
    request = compiled.create_infer_request()
    data = np.random.default_rng(0).standard_normal((batch, *input_shape)).astype(np.float32)
    request.set_input_tensor(ov.Tensor(data))
    for _ in range(10):
        request.infer()
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline or len(times) < 20:
        start = time.perf_counter()
        request.infer()
        times.append((time.perf_counter() - start) * 1000.0)
    arr = np.asarray(times)
    return ReferenceLatency("openvino-loop", batch, float(np.median(arr)), float(arr.mean()), float(arr.min()),
                            float(arr.max()), len(arr), f"compile_model({xml.name}, LATENCY) + infer() loop",
                            {"hint": "LATENCY", "infer_precision": precision, "threads": threads})


@dataclass(frozen=True)
class PeakRate:
    gflops: float
    method: str
    threads: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure_peak_gflops(threads: int | None = None, size: int = 1024, repeats: int = 8) -> PeakRate:
    """Best fp32 GFLOP/s of a ``size``² matmul (torch if present, else numpy's BLAS)."""
    try:
        import torch
    except ImportError:
        torch = None  # type: ignore[assignment]
    flops = 2.0 * size**3
    best = float("inf")
    if torch is not None:
        previous = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        try:
            a, b = torch.randn(size, size), torch.randn(size, size)
            torch.matmul(a, b)
            for _ in range(repeats):
                start = time.perf_counter()
                torch.matmul(a, b)
                best = min(best, time.perf_counter() - start)
            used = torch.get_num_threads()
        finally:
            torch.set_num_threads(previous)
        method = f"measured: best of {repeats} torch.matmul fp32 {size}x{size}"
    else:
        a, b = np.random.rand(size, size).astype(np.float32), np.random.rand(size, size).astype(np.float32)
        a @ b
        for _ in range(repeats):
            start = time.perf_counter()
            a @ b
            best = min(best, time.perf_counter() - start)
        used = threads or 0
        method = f"measured: best of {repeats} numpy matmul fp32 {size}x{size}"
    return PeakRate(round(flops / best / 1e9, 2), method, used)


def compute_floor_ms(macs: int, batch: int, peak_gflops: float) -> float:
    """The time ``batch`` forward passes would take at the peak rate: the latency no runtime beats."""
    return 2.0 * macs * batch / (peak_gflops * 1e9) * 1000.0


@dataclass
class OverheadComparison:
    """Our OpenVINO runner against benchmark_app on the same IR, trials alternating."""

    model: str
    batch: int
    tool: str
    trials: int
    ours_p50_ms: float  # median over trials of our per-trial p50
    reference_median_ms: float  # median over trials of the reference's per-trial median
    ratio: float  # median of per-trial ratios ours / reference
    ratio_min: float  # ratio of the best (minimum) latencies: less sensitive to a loaded machine
    ratio_trials: list[float]
    command: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["ratio_trials"] = [round(r, 4) for r in self.ratio_trials]
        return data


def compare_with_benchmark_app(model: str, bundle_dir: Path, *, batch: int = 1, trials: int = 3,
                               seconds: float = 5.0, threads: int | None = None) -> OverheadComparison:
    """Alternate (ours, benchmark_app) and (benchmark_app, ours) trials; each in its own process.

    Our side is :mod:`feredge.bench.worker` with enough iterations to last about ``seconds``
    (estimated from a short first run), so both sides see the same machine state and duration.
    """
    from feredge.bench.worker import CaseSpec, run_case_subprocess
    from feredge.bundle import Bundle

    bundle = Bundle.load(bundle_dir)
    xml = bundle.path("openvino_xml")
    shape = tuple(bundle.spec.input_shape)
    probe = run_case_subprocess(CaseSpec(str(bundle_dir), "openvino", [batch], 5, 30, threads))
    if probe.error:
        raise RuntimeError(f"our OpenVINO runner failed: {probe.error}")
    iterations = max(50, int(seconds * 1000.0 / max(probe.latency[0]["p50_ms"], 0.05)))
    ours: list[dict[str, float]] = []
    refs: list[ReferenceLatency] = []
    for trial in range(trials):
        order = ("ours", "ref") if trial % 2 == 0 else ("ref", "ours")
        for side in order:
            if side == "ours":
                case = run_case_subprocess(CaseSpec(str(bundle_dir), "openvino", [batch], 20, iterations, threads))
                if case.error:
                    raise RuntimeError(f"our OpenVINO runner failed: {case.error}")
                ours.append(case.latency[0])
            else:
                refs.append(benchmark_app_reference(xml, shape, batch=batch, seconds=seconds, threads=threads))
    ratios = [o["p50_ms"] / r.median_ms for o, r in zip(ours, refs, strict=True)]
    best_ours = min(o["min_ms"] for o in ours)
    best_ref = min(r.min_ms for r in refs)
    return OverheadComparison(model, batch, refs[0].tool, trials, float(np.median([o["p50_ms"] for o in ours])),
                              float(np.median([r.median_ms for r in refs])), float(np.median(ratios)),
                              best_ours / best_ref if best_ref == best_ref and best_ref > 0 else float("nan"),
                              ratios, refs[0].command)
