"""One interface for every back end, modelled on Polygraphy's ``BaseRunner``.

``activate`` loads (the expensive part, done once), ``infer`` runs one NCHW float32 batch and
returns logits, ``deactivate`` frees. A runner is a context manager. Every ``infer`` checks the
batch against the model's input metadata (rank, channels, size, dtype, batch limit) so a wrong
spec fails with a message instead of a back-end stack trace, and records its wall time, so
benchmarks and pipelines read timings from one place. ``settings`` records what actually ran
(threads, precision): benchmarks report it instead of what was asked for.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from feredge.errors import FeredgeError


@dataclass(frozen=True)
class TensorMeta:
    name: str
    shape: tuple[int | None, ...]  # None marks a dynamic axis
    dtype: str = "float32"

    def check(self, batch: np.ndarray, max_batch: int | None = None) -> None:
        if batch.dtype != np.dtype(self.dtype):
            raise FeredgeError(f"input {self.name}: expected {self.dtype}, got {batch.dtype}")
        if batch.ndim != len(self.shape):
            raise FeredgeError(f"input {self.name}: expected rank {len(self.shape)}, got shape {batch.shape}")
        for axis, (want, got) in enumerate(zip(self.shape, batch.shape, strict=True)):
            if want is not None and want != got:
                raise FeredgeError(
                    f"input {self.name}: axis {axis} must be {want}, got shape {tuple(batch.shape)}"
                )
        if batch.shape[0] < 1:
            raise FeredgeError(f"input {self.name}: empty batch")
        if max_batch is not None and batch.shape[0] > max_batch:
            raise FeredgeError(f"input {self.name}: batch {batch.shape[0]} exceeds the model's max {max_batch}")


class Runner(ABC):
    """Base class of the back-end adapters; subclasses implement the three ``_`` hooks."""

    name: ClassVar[str]
    #: bundle file roles this runner needs, first match wins (e.g. openvino falls back to onnx)
    bundle_roles: ClassVar[tuple[str, ...]]

    def __init__(self, model_path: str | Path, *, threads: int | None = None, max_batch: int | None = None,
                 **options: Any) -> None:
        self.model_path = Path(model_path)
        self.threads = threads
        self.max_batch = max_batch
        self.options = options
        self.input_meta: TensorMeta | None = None
        self.settings: dict[str, Any] = {}
        self.timings: list[float] = []
        self.is_active = False

    @classmethod
    def from_bundle(cls, bundle: Any, **options: Any) -> Runner:
        for role in cls.bundle_roles:
            if bundle.has(role):
                options.setdefault("max_batch", bundle.max_batch)
                # fp16/int8 files keep float32 I/O: the precision a runner reports comes from the bundle
                options.setdefault("precision", bundle.precision)
                return cls._from_bundle_file(bundle, role, **options)
        raise FeredgeError(
            f"{bundle.root}: no file for runtime {cls.name} (needs one of: {', '.join(cls.bundle_roles)})"
        )

    @classmethod
    def _from_bundle_file(cls, bundle: Any, role: str, **options: Any) -> Runner:
        return cls(bundle.path(role), **options)

    def activate(self) -> Runner:
        if not self.is_active:
            try:
                self.input_meta = self._activate()
            except FeredgeError:
                raise
            except Exception as exc:  # a back end rejecting the file: report it in one line
                reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc.__class__.__name__
                raise FeredgeError(f"{self.model_path}: {self.name} cannot load the model ({reason})") from None
            self.is_active = True
        return self

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if not self.is_active:
            raise FeredgeError(f"{self.name} runner used before activate()")
        assert self.input_meta is not None
        self.input_meta.check(batch, self.max_batch)
        start = time.perf_counter()
        logits = self._infer(np.ascontiguousarray(batch))
        self.timings.append(time.perf_counter() - start)
        return logits

    def infer_all(self, batch: np.ndarray, chunk: int = 16) -> np.ndarray:
        """Logits for a batch of any size, run in chunks of ``chunk`` (at most the model's max batch)."""
        size = min(chunk, self.max_batch) if self.max_batch else chunk
        return np.concatenate([self.infer(batch[i : i + size]) for i in range(0, len(batch), size)])

    @property
    def last_inference_time(self) -> float | None:
        return self.timings[-1] if self.timings else None

    @abstractmethod
    def _activate(self) -> TensorMeta: ...

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray: ...

    def _deactivate(self) -> None:  # noqa: B027  (optional hook)
        pass
