"""INT8 calibration for TensorRT 10 (JetPack 6): an entropy calibrator fed by a data loader.

TensorRT 10 still has implicit INT8 with ``IInt8EntropyCalibrator2`` (deprecated since 10.1,
removed in 11, where INT8 is a Q/DQ ONNX only). The calibrator reads batches from any
:class:`CalibrationSource` — an iterable of NCHW float32 numpy batches, such as
``feredge.calibration.reference.reference_faces(spec).batch`` split by :func:`calibration_batches`
— and writes the calibration cache, so a rebuild (new TensorRT point release, timing change)
skips calibration.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from feredge.errors import FeredgeError
from feredge.fileio import write_bytes_atomic

if TYPE_CHECKING:
    import tensorrt as trt


class CalibrationSource(Protocol):
    """What the calibrator reads: NCHW float32 batches, all of one batch size."""

    def __iter__(self) -> Iterator[np.ndarray]: ...


def calibration_batches(data: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Full batches of ``data`` (the calibrator's batch size is fixed; a short tail is dropped)."""
    if data.ndim != 4:
        raise FeredgeError(f"calibration data must be NCHW, got shape {data.shape}")
    if len(data) < batch_size:
        raise FeredgeError(f"calibration needs at least {batch_size} faces, got {len(data)}")
    data = np.ascontiguousarray(data, dtype=np.float32)
    return [data[i : i + batch_size] for i in range(0, len(data) - batch_size + 1, batch_size)]


def make_entropy_calibrator(source: Iterable[np.ndarray], *, batch_size: int, cache_path: Path) -> Any:
    """An ``IInt8EntropyCalibrator2`` over ``source``, caching to ``cache_path`` (TensorRT 10 only)."""
    import tensorrt as trt

    from feredge.runtimes.tensorrt import cuda

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.batches = iter(source)
            self.device: cuda.DeviceBuffer | None = None
            self.cache_path = cache_path

        def get_batch_size(self) -> int:
            return batch_size

        def get_batch(self, names: list[str]) -> list[int]:
            batch = next(self.batches, None)
            if batch is None:
                return []  # no more data: TensorRT stops calibrating
            batch = np.ascontiguousarray(batch, dtype=np.float32)
            if len(batch) != batch_size:
                raise FeredgeError(f"calibration batch of {len(batch)}, expected {batch_size}")
            if self.device is None:
                self.device = cuda.DeviceBuffer.allocate(batch.nbytes)
            cuda.copy_to_device_sync(self.device, batch)
            return [self.device.ptr]

        def read_calibration_cache(self) -> bytes | None:  # None: no cache, calibrate
            # an existing cache skips calibration (the stubs omit the documented None)
            return self.cache_path.read_bytes() if self.cache_path.is_file() else None

        def write_calibration_cache(self, cache: Any) -> None:
            write_bytes_atomic(self.cache_path, bytes(cache))

        def free(self) -> None:
            if self.device is not None:
                self.device.free()
                self.device = None

    calibrator: trt.IInt8EntropyCalibrator2 = EntropyCalibrator()
    return calibrator
