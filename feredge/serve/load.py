"""A closed-loop load run against a served classifier, and the same faces run locally.

``concurrency`` clients each send one face per request and wait for the answer before sending the
next (what a fleet of cameras does), over Triton's gRPC endpoint: the gRPC client is thread-safe,
so each client is a thread timing its own requests; the HTTP client is gevent-based and is not.
Every answer is checked against the local logits of the same face, so a wrong answer counts as
an error, not as a fast request. The local side is the bundle's runner in this process, one face
per call, back to back: what the server saves or costs against running the model where the
faces are.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from feredge.errors import FeredgeError


@dataclass
class LoadResult:
    side: str  # "triton" or the local runtime
    requests: int
    concurrency: int
    errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    throughput_rps: float
    wall_s: float
    executions: int | None = None  # server-side model executions (< requests: dynamic batching)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _summary(side: str, latencies: list[float], wall: float, errors: int, concurrency: int,
             executions: int | None = None) -> LoadResult:
    ms = np.asarray(latencies) * 1000.0 if latencies else np.asarray([np.nan])
    return LoadResult(side, len(latencies) + errors, concurrency, errors, float(np.percentile(ms, 50)),
                      float(np.percentile(ms, 90)), float(np.percentile(ms, 99)), len(latencies) / wall, wall,
                      executions)


def load_run(grpc_url: str, faces: np.ndarray, expected: np.ndarray, *, requests: int = 2000,
             concurrency: int = 16, model: str = "classifier", atol: float = 1e-4) -> LoadResult:
    """``requests`` single-face requests from ``concurrency`` closed-loop clients; answers checked
    against ``expected`` (the local logits of ``faces``) within ``atol``."""
    import tritonclient.grpc as grpc

    if requests < 1 or concurrency < 1:
        raise FeredgeError("a load run needs at least one request and one client")
    clients = [grpc.InferenceServerClient(grpc_url) for _ in range(concurrency)]
    try:
        try:
            ready = clients[0].is_server_ready()
        except Exception:  # connection refused, DNS...: the client library raises its own types
            ready = False
        if not ready:
            raise FeredgeError(f"no Triton ready at {grpc_url} (its gRPC port; start one with `feredge serve BUNDLE`)")
        before = _executions(clients[0], model)

        def client(worker: int) -> tuple[list[float], int]:
            latencies: list[float] = []
            errors = 0
            for k in range(worker, requests, concurrency):
                index = k % len(faces)
                tensor = grpc.InferInput("input", [1, *faces.shape[1:]], "FP32")
                tensor.set_data_from_numpy(faces[index : index + 1])
                start = time.perf_counter()
                try:
                    result = clients[worker].infer(model, [tensor], outputs=[grpc.InferRequestedOutput("logits")])
                    logits = result.as_numpy("logits")
                    ok = logits is not None and np.allclose(logits[0], expected[index], atol=atol)
                except Exception:  # the client library's own error types: each is one failed request
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - start)
                else:
                    errors += 1
            return latencies, errors

        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            results = list(pool.map(client, range(concurrency)))
        wall = time.perf_counter() - start
        executions = _executions(clients[0], model) - before
    finally:
        for c in clients:
            c.close()
    latencies = [t for found, _ in results for t in found]
    return _summary("triton", latencies, wall, sum(e for _, e in results), concurrency, executions)


def _executions(client: Any, model: str) -> int:
    stats = client.get_inference_statistics(model, as_json=True)["model_stats"][0]
    return int(stats.get("execution_count", 0))


def local_run(bundle: Path, faces: np.ndarray, *, requests: int = 2000, runtime: str = "onnxruntime") -> LoadResult:
    """The same single-face calls in this process, back to back."""
    from feredge.runtimes.registry import runner_class

    latencies = []
    with runner_class(runtime).from_bundle(_bundle(bundle)) as runner:
        for k in range(10):
            runner.infer(faces[k % len(faces)][None])
        start = time.perf_counter()
        for k in range(requests):
            t = time.perf_counter()
            runner.infer(faces[k % len(faces)][None])
            latencies.append(time.perf_counter() - t)
        wall = time.perf_counter() - start
    return _summary(f"local {runtime}", latencies, wall, 0, 1)


def _bundle(path: Path) -> Any:
    from feredge.bundle import Bundle

    return Bundle.load(path)
