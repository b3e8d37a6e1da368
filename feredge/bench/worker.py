"""One runtime case (bundle × runtime × every batch size), run in a fresh process.

Why a process per case: peak RSS is a per-process high-water mark, and back ends keep thread
pools, kernel caches and allocator arenas alive after a model is freed, so a second case in the
same process would inherit the first one's memory and warm caches. The parent sends a
:class:`CaseSpec` as JSON on stdin and reads a :class:`CaseResult` as JSON on stdout
(``python -m feredge.bench.worker``); :func:`run_case` is the same code in-process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from feredge.errors import FeredgeError


@dataclass
class CaseSpec:
    bundle: str
    runtime: str
    batches: list[int]
    warmup: int = 10
    iterations: int = 100
    threads: int | None = None
    #: OpenVINO INFERENCE_PRECISION_HINT override (e.g. the device default); None: the runner's choice
    inference_precision: str | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self))


@dataclass
class CaseResult:
    runtime: str
    latency: list[dict[str, Any]] = field(default_factory=list)  # LatencyStats.to_dict() per batch
    memory: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    load_ms: float = 0.0
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _import_backend(runtime: str) -> None:
    """Import the back end before the memory baseline, so the baseline includes its libraries."""
    from feredge.runtimes.registry import runtime_info

    package = runtime_info(runtime).package
    if package:
        __import__(package)


def run_case(spec: CaseSpec) -> CaseResult:
    from feredge.bench.latency import measure
    from feredge.bench.memory import PeakTracker
    from feredge.bundle import Bundle
    from feredge.calibration.reference import reference_faces
    from feredge.runtimes.registry import resolve_name, runner_class

    name = resolve_name(spec.runtime)
    bundle = Bundle.load(spec.bundle)
    samples = reference_faces(bundle.spec, include_lfw=False).batch
    _import_backend(name)
    options: dict[str, Any] = {"threads": spec.threads}
    if spec.inference_precision:
        options["inference_precision"] = spec.inference_precision
    tracker = PeakTracker()
    tracker.start()
    start = time.perf_counter()
    runner = runner_class(name).from_bundle(bundle, **options).activate()
    load_ms = (time.perf_counter() - start) * 1000.0
    result = CaseResult(runtime=name, load_ms=round(load_ms, 2))
    try:
        for batch in spec.batches:
            stats = measure(runner, samples, batch, warmup=spec.warmup, iterations=spec.iterations)
            result.latency.append(stats.to_dict())
        result.settings = dict(runner.settings)
    finally:
        runner.deactivate()
    result.memory = tracker.stop().to_dict()
    return result


def run_case_subprocess(spec: CaseSpec, timeout: float = 1800) -> CaseResult:
    """:func:`run_case` in a fresh interpreter; a crash becomes ``CaseResult.error``, not an exception."""
    proc = subprocess.run([sys.executable, "-m", "feredge.bench.worker"], input=spec.to_json(), capture_output=True,
                          text=True, timeout=timeout)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.strip().splitlines() if ln.strip()]
        return CaseResult(runtime=spec.runtime, error=(lines[-1] if lines else f"exit {proc.returncode}")[:300])
    return CaseResult(**json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> int:
    spec = CaseSpec(**json.loads(sys.stdin.read()))
    try:
        result = run_case(spec)
    except FeredgeError as exc:
        print(f"feredge: error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result.to_dict(), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
