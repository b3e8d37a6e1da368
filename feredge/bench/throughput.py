"""``feredge bench --mode throughput``: inferences per second with several requests in flight.

Latency mode (:mod:`feredge.bench.latency`) times one synchronous call after another: what one
camera stream waiting on each answer sees. Throughput mode keeps several requests in flight at
once: what a server, a batch job or a multi-camera box sees. Each runtime does that its own way,
so the way is a row of :data:`THROUGHPUT_METHODS` (the runtime's name → how it runs) and every
result says which method, how many requests and what the runtime set up:

* **OpenVINO**: the bundle's model compiled with ``PERFORMANCE_HINT=THROUGHPUT`` (the plugin picks
  the streams and the threads per stream) through the same runner as latency mode (same file,
  precision hint, threads), then an ``openvino.AsyncInferQueue`` of
  ``compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS")`` requests (or ``--infer-requests``).
  ``start_async`` copies each batch in; a request's logits are copied out when it comes back idle
  (``get_idle_request_id``), ``wait_all`` ends the run (no Python callback: see :func:`_queue_run`).
  Per-request latency is OpenVINO's own for each request (``InferRequest.latency``).
* **ONNX Runtime**: it has no request queue on the CPU, so N Python threads (default: one per CPU
  core) call ``run`` on one shared session (``InferenceSession.run`` is thread-safe and releases
  the GIL) with ``intra_op_num_threads = cores // N`` (at least 1; ``--threads`` overrides):
  N independent single-threaded runs, the ONNX Runtime counterpart of OpenVINO's streams. It is
  not batching: each run is one batch of ``--batch`` faces, as in latency mode. Per-request latency
  is each run's wall time.

Both time the same boundary as latency mode: a float32 batch in, float32 logits out. Rates are
over the whole timed run: inferences/s = completed requests / wall time from the first submission
to the last completion; images/s = inferences/s × batch. ``--warmup`` and ``--iterations`` count
per request in flight (the run makes ``iterations × requests`` inferences).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from feredge.bench.latency import tile_batch
from feredge.errors import FeredgeError


@dataclass(frozen=True)
class ThroughputConfig:
    batches: tuple[int, ...] = (1, 8)
    iterations: int = 100  # timed inferences per request in flight
    warmup: int = 10  # untimed inferences per request in flight
    threads: int | None = None  # the runtime's threads (OpenVINO: in all; ONNX Runtime: per session run)
    requests: int | None = None  # requests in flight; None: the runtime's choice (see the module docstring)


@dataclass(frozen=True)
class ThroughputStats:
    runtime: str
    artifact: str  # the bundle file that ran
    precision: str  # the file's precision
    ran_as: str  # the precision that ran (feredge.bench.naming)
    batch: int
    requests: int  # requests in flight
    inferences: int  # timed inferences (requests completed)
    wall_s: float
    inferences_per_s: float
    images_per_s: float  # faces per second: inferences/s × batch
    latency_p50_ms: float  # per request
    latency_p90_ms: float
    latency_p99_ms: float
    latency_mean_ms: float
    method: str
    settings: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Timed:
    """What a method measured for one batch size: the run's wall time and each request's latency (ms)."""

    wall_s: float
    latencies_ms: list[float]
    requests: int


#: runs every batch size of ``config`` on a runner of the bundle → (per batch Timed, the runner's settings)
Measure = Callable[[Any, np.ndarray, ThroughputConfig], tuple[list[Timed], dict[str, Any]]]


@dataclass(frozen=True)
class ThroughputMethod:
    runtime: str
    describe: str  # one line, copied into every result
    measure: Measure


THROUGHPUT_METHODS: dict[str, ThroughputMethod] = {}


def register(runtime: str, describe: str) -> Callable[[Measure], Measure]:
    def add(measure: Measure) -> Measure:
        THROUGHPUT_METHODS[runtime] = ThroughputMethod(runtime, describe, measure)
        return measure

    return add


def method_for(runtime: str) -> ThroughputMethod:
    """The throughput method of ``runtime`` (aliases resolved); one without is a one-line error."""
    from feredge.runtimes.registry import resolve_name

    name = resolve_name(runtime)
    if name not in THROUGHPUT_METHODS:
        raise FeredgeError(f"--mode throughput runs on {', '.join(sorted(THROUGHPUT_METHODS))}, not {name} "
                           "(it has no concurrent-request path here; use --mode latency)")
    return THROUGHPUT_METHODS[name]


@register("openvino", "PERFORMANCE_HINT=THROUGHPUT, AsyncInferQueue of OPTIMAL_NUMBER_OF_INFER_REQUESTS requests "
                      "(or --infer-requests); latency per request from InferRequest.latency")
def _openvino(bundle: Any, samples: np.ndarray, config: ThroughputConfig) -> tuple[list[Timed], dict[str, Any]]:
    from feredge.runtimes.registry import runner_class

    with runner_class("openvino").from_bundle(bundle, hint="THROUGHPUT", threads=config.threads) as runner:
        compiled = runner.compiled
        optimal = int(compiled.get_property("OPTIMAL_NUMBER_OF_INFER_REQUESTS"))
        jobs = config.requests or optimal
        settings = dict(runner.settings, optimal_infer_requests=optimal,
                        streams=int(compiled.get_property("NUM_STREAMS")))
        timed = []
        for batch in config.batches:
            inputs = tile_batch(samples, batch)
            _queue_run(compiled, inputs, jobs, config.warmup * jobs)
            timed.append(_queue_run(compiled, inputs, jobs, config.iterations * jobs))
    return timed, settings


def _queue_run(compiled: Any, inputs: np.ndarray, jobs: int, count: int) -> Timed:
    """``count`` inferences through an ``AsyncInferQueue`` of ``jobs`` requests; each result is collected
    (logits copied out, OpenVINO's latency read) when its request comes back idle, and the rest after
    ``wait_all``.

    Why no ``set_callback``: a Python callback runs on OpenVINO's worker threads and needs the GIL, and
    a queue (or its compiled model) released soon after ``wait_all`` while a worker is still leaving
    the callback aborts the process ("Resource deadlock avoided", in about half the runs tried here). The
    default callbacks never touch Python, and ``get_idle_request_id`` hands back the handle that the
    next ``start_async`` takes (the front of the idle queue), so every request is collected once.
    """
    import openvino as ov

    queue = ov.AsyncInferQueue(compiled, jobs)
    pending = [False] * len(queue)
    latencies: list[float] = []

    def collect(handle: int) -> None:
        request = queue[handle]  # the pool's request: read-only use (output, latency) keeps the queue valid
        np.array(request.get_output_tensor(0).data, dtype=np.float32, copy=True)  # the logits out
        latencies.append(float(request.latency))

    start = time.perf_counter()
    try:
        for _ in range(count):
            handle = queue.get_idle_request_id()  # waits (GIL released) while every request is busy
            if pending[handle]:
                collect(handle)
            queue.start_async({0: inputs})
            pending[handle] = True
        queue.wait_all()
        wall = time.perf_counter() - start
        for handle, busy in enumerate(pending):
            if busy:
                collect(handle)
    except RuntimeError as exc:  # a request failing in the plugin
        raise FeredgeError(f"openvino: an asynchronous request failed ({str(exc).splitlines()[0][:200]})") from None
    finally:
        queue.wait_all()  # nothing in flight when the queue is released (on return, on this thread)
    return Timed(wall, latencies, jobs)


@register("onnxruntime", "N threads (default one per core) calling run on one shared session with "
                         "intra_op_num_threads = cores // N; latency per request = each run's wall time")
def _onnxruntime(bundle: Any, samples: np.ndarray, config: ThroughputConfig) -> tuple[list[Timed], dict[str, Any]]:
    from feredge.runtimes.registry import runner_class

    cores = os.cpu_count() or 1
    jobs = config.requests or cores
    intra = config.threads or max(1, cores // jobs)
    with runner_class("onnxruntime").from_bundle(bundle, threads=intra) as runner:
        settings = dict(runner.settings, client_threads=jobs, intra_op_threads=intra)
        timed = []
        for batch in config.batches:
            inputs = tile_batch(samples, batch)
            _in_threads(runner.infer, inputs, jobs, config.warmup)
            wall, latencies = _in_threads(runner.infer, inputs, jobs, config.iterations)
            timed.append(Timed(wall, latencies, jobs))
    return timed, settings


def _in_threads(infer: Callable[[np.ndarray], Any], inputs: np.ndarray, jobs: int,
                count: int) -> tuple[float, list[float]]:
    """``jobs`` threads each calling ``infer(inputs)`` ``count`` times, released together: (wall s, ms per call)."""
    barrier = threading.Barrier(jobs + 1)
    latencies: list[list[float]] = [[] for _ in range(jobs)]
    errors: list[BaseException] = []

    def work(mine: list[float]) -> None:
        barrier.wait()
        try:
            for _ in range(count):
                start = time.perf_counter()
                infer(inputs)
                mine.append((time.perf_counter() - start) * 1000.0)
        except BaseException as exc:  # raised below, in the caller's thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(latencies[i],), daemon=True) for i in range(jobs)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - start
    if errors:
        raise FeredgeError(f"onnxruntime: a concurrent run failed ({errors[0]})")
    return wall, [t for mine in latencies for t in mine]


def bench_throughput(bundle_dir: Any, runtime: str, config: ThroughputConfig) -> list[ThroughputStats]:
    """Every batch of ``config`` on ``runtime``'s file of the bundle at ``bundle_dir``, one result per batch."""
    from feredge.bench.model_bench import runner_role
    from feredge.bench.naming import ran_as
    from feredge.bundle import Bundle
    from feredge.calibration.reference import reference_faces

    method = method_for(runtime)
    bundle = Bundle.load(bundle_dir)
    role = runner_role(bundle, method.runtime)
    if role is None:
        raise FeredgeError(f"{bundle.root}: no file for {method.runtime}")
    if config.iterations < 1 or config.warmup < 0 or (config.requests is not None and config.requests < 1):
        raise FeredgeError("throughput: iterations and requests must be at least 1, warm-up at least 0")
    samples = reference_faces(bundle.spec, include_lfw=False).batch
    timed, settings = method.measure(bundle, samples, config)
    precision = bundle.role_precision(role)
    shown = ran_as(precision, settings.get("inference_precision") or settings.get("precision"), method.runtime)
    out = []
    for batch, run in zip(config.batches, timed, strict=True):
        times = np.asarray(run.latencies_ms, dtype=np.float64)
        done = len(times)
        rate = done / run.wall_s if run.wall_s > 0 else float("nan")
        out.append(ThroughputStats(
            runtime=method.runtime, artifact=bundle.roles()[role], precision=precision, ran_as=shown, batch=batch,
            requests=run.requests, inferences=done, wall_s=round(run.wall_s, 6), inferences_per_s=rate,
            images_per_s=rate * batch, latency_p50_ms=float(np.percentile(times, 50)),
            latency_p90_ms=float(np.percentile(times, 90)), latency_p99_ms=float(np.percentile(times, 99)),
            latency_mean_ms=float(times.mean()), method=method.describe, settings=settings))
    return out


#: the throughput table's columns (CLI and Markdown)
THROUGHPUT_COLUMNS = [("runtime", "runtime"), ("artifact", "artifact"), ("ran_as", "precision"), ("batch", "batch"),
                      ("requests", "requests in flight"), ("inferences", "inferences"),
                      ("inferences_per_s", "inferences/s"), ("images_per_s", "faces/s"),
                      ("latency_p50_ms", "p50 ms/request"), ("latency_p90_ms", "p90 ms/request"),
                      ("latency_p99_ms", "p99 ms/request")]
