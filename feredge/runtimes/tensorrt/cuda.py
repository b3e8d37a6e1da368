"""The little of CUDA that the builder and runner need, through cuda-python (no torch, no pycuda).

cuda-python ≥ 12.6 exposes the runtime API as ``cuda.bindings.runtime``; older releases as
``cuda.cudart``. Every call returns ``(error, *values)``; :func:`check` turns an error into a
one-line :class:`FeredgeError`. Pinned host buffers make the host↔device copies asynchronous.
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from feredge.errors import FeredgeError, MissingBackendError

CUDA_INSTALL = "pip install cuda-python (the CUDA runtime bindings TensorRT's runner uses)"


def cudart() -> Any:
    """The CUDA runtime module of cuda-python, whichever layout is installed."""
    try:
        from cuda.bindings import runtime  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart as runtime  # cuda-python < 12.6
        except ImportError:
            raise MissingBackendError(f"TensorRT needs the CUDA runtime bindings: {CUDA_INSTALL}") from None
    return runtime


def check(result: Any, what: str = "CUDA call") -> Any:
    """Unpack ``(err, *values)``; raise on an error; return the single value, a tuple, or None."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        rt = cudart()
        name = rt.cudaGetErrorName(err)[1]
        raise FeredgeError(f"{what} failed: {name.decode() if isinstance(name, bytes) else name}")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def gpu_count() -> int:
    """Visible CUDA devices; 0 when there is no driver or no GPU (never raises for that)."""
    rt = cudart()
    err, count = rt.cudaGetDeviceCount()
    return int(count) if int(err) == 0 else 0


def compute_capability(device: int = 0) -> tuple[int, int]:
    props = check(cudart().cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    return int(props.major), int(props.minor)


def device_name(device: int = 0) -> str:
    props = check(cudart().cudaGetDeviceProperties(device), "cudaGetDeviceProperties")
    name = props.name
    return name.decode(errors="replace").rstrip("\x00") if isinstance(name, bytes) else str(name)


@dataclass
class DeviceBuffer:
    ptr: int
    nbytes: int

    @classmethod
    def allocate(cls, nbytes: int) -> DeviceBuffer:
        return cls(int(check(cudart().cudaMalloc(nbytes), "cudaMalloc")), nbytes)

    def free(self) -> None:
        if self.ptr:
            check(cudart().cudaFree(self.ptr), "cudaFree")
            self.ptr = 0


@dataclass
class PinnedBuffer:
    """Page-locked host memory with a numpy view of it."""

    ptr: int
    nbytes: int
    array: np.ndarray

    @classmethod
    def allocate(cls, nbytes: int, dtype: np.dtype[Any]) -> PinnedBuffer:
        ptr = int(check(cudart().cudaMallocHost(nbytes), "cudaMallocHost"))
        raw = (ctypes.c_uint8 * nbytes).from_address(ptr)
        return cls(ptr, nbytes, np.ctypeslib.as_array(raw).view(dtype))

    def free(self) -> None:
        if self.ptr:
            check(cudart().cudaFreeHost(self.ptr), "cudaFreeHost")
            self.ptr = 0


class Stream:
    def __init__(self) -> None:
        self.rt = cudart()
        self.stream = check(self.rt.cudaStreamCreate(), "cudaStreamCreate")

    @property
    def handle(self) -> int:
        return int(self.stream)

    def copy_to_device(self, device: DeviceBuffer, host: PinnedBuffer, nbytes: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyHostToDevice
        check(self.rt.cudaMemcpyAsync(device.ptr, host.ptr, nbytes, kind, self.stream), "cudaMemcpyAsync H2D")

    def copy_to_host(self, host: PinnedBuffer, device: DeviceBuffer, nbytes: int) -> None:
        kind = self.rt.cudaMemcpyKind.cudaMemcpyDeviceToHost
        check(self.rt.cudaMemcpyAsync(host.ptr, device.ptr, nbytes, kind, self.stream), "cudaMemcpyAsync D2H")

    def synchronize(self) -> None:
        check(self.rt.cudaStreamSynchronize(self.stream), "cudaStreamSynchronize")

    def destroy(self) -> None:
        if self.stream is not None:
            check(self.rt.cudaStreamDestroy(self.stream), "cudaStreamDestroy")
            self.stream = None


def copy_to_device_sync(device: DeviceBuffer, host: np.ndarray) -> None:
    """Blocking copy of a contiguous host array (calibration batches: not on the hot path)."""
    rt = cudart()
    data = np.ascontiguousarray(host)
    check(rt.cudaMemcpy(device.ptr, data.ctypes.data, data.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice),
          "cudaMemcpy H2D")
