"""TensorRT on an NVIDIA GPU (Jetson or desktop), with the engine built on first load.

A bundle normally arrives without an engine for this device (engines are tied to the GPU and
the TensorRT version), so activation runs the pre-flight check
(:func:`~feredge.runtimes.tensorrt.engine_key.preflight`): an engine keyed for this (sm, TensorRT)
is loaded; none, a stale or a foreign one is rebuilt into the bundle — or, with
``build=False`` (``--no-build``, or ``FEREDGE_TRT_BUILD=0`` in the environment for commands that
have no such flag), refused with a message — and never deserialized into a crash.

Inference follows the TensorRT 10/11 API: I/O tensors by name, ``set_input_shape`` for the
batch, device buffers sized for the profile's max batch, pinned host buffers and one CUDA
stream via cuda-python, ``execute_async_v3``. No torch on this path.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from feredge.errors import FeredgeError
from feredge.runtimes.base import Runner, TensorMeta
from feredge.runtimes.tensorrt.engine_key import preflight


class TensorRTRunner(Runner):
    name = "tensorrt"

    @classmethod
    def _from_bundle_file(cls, bundle: Any, role: str, **options: Any) -> Runner:
        return cls(bundle.path(role), bundle=bundle, **options)

    def _resolve_engine(self) -> Path:
        """The engine file to deserialize, after the pre-flight check (building if allowed)."""
        bundle = self.options.get("bundle")
        if bundle is None:  # a bare engine file: the caller vouches for it
            if self.model_path.suffix == ".onnx":
                raise FeredgeError(f"{self.model_path}: the TensorRT runner needs a bundle to build an engine from "
                                   "an ONNX file; use Pipeline.from_bundle or `feredge build`")
            return self.model_path
        from feredge.bundle import safe_member
        from feredge.runtimes.tensorrt.builder import build_into_bundle, require_tensorrt

        local = require_tensorrt()
        allowed = self.options.get("build", os.environ.get("FEREDGE_TRT_BUILD", "1") != "0")
        decision = preflight(bundle.manifest["files"], local.key, build_allowed=bool(allowed))
        log = self.options.get("log") or (lambda text: print(f"feredge: {text}", file=sys.stderr))
        if decision.action == "refuse":
            raise FeredgeError(f"{bundle.root}: {decision.reason}")
        if decision.action == "build":
            log(decision.reason)
            built = build_into_bundle(bundle, local, log=log)
            return Path(safe_member(bundle.root, built.engine))
        assert decision.engine is not None
        return Path(safe_member(bundle.root, decision.engine))

    def _activate(self) -> TensorMeta:
        import tensorrt as trt

        from feredge.runtimes.tensorrt import cuda

        engine_path = self._resolve_engine()
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise FeredgeError(f"{engine_path}: TensorRT {trt.__version__} cannot deserialize the engine")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        if len(inputs) != 1 or len(outputs) != 1:
            raise FeredgeError(f"{engine_path}: expected one input and one output, got {inputs} / {outputs}")
        self.input_name, self.output_name = inputs[0], outputs[0]
        _, _, max_shape = self.engine.get_tensor_profile_shape(self.input_name, 0)
        engine_max = int(max_shape[0])
        self.max_batch = min(self.max_batch or engine_max, engine_max)
        sample_shape = _dims(self.engine.get_tensor_shape(self.input_name))[1:]
        self.input_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self.output_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.output_name)))
        # output shape at the max batch, to size its buffers
        self.context.set_input_shape(self.input_name, (self.max_batch, *sample_shape))
        out_sample = _dims(self.context.get_tensor_shape(self.output_name))[1:]
        in_bytes = self.max_batch * int(np.prod(sample_shape)) * self.input_dtype.itemsize
        out_bytes = self.max_batch * int(np.prod(out_sample)) * self.output_dtype.itemsize
        self.stream = cuda.Stream()
        self.d_input, self.d_output = cuda.DeviceBuffer.allocate(in_bytes), cuda.DeviceBuffer.allocate(out_bytes)
        self.h_input = cuda.PinnedBuffer.allocate(in_bytes, self.input_dtype)
        self.h_output = cuda.PinnedBuffer.allocate(out_bytes, self.output_dtype)
        self.output_sample = out_sample
        self.context.set_tensor_address(self.input_name, self.d_input.ptr)
        self.context.set_tensor_address(self.output_name, self.d_output.ptr)
        self.settings = {
            "runtime": self.name,
            "version": trt.__version__,
            "device": cuda.device_name(0),
            "engine": str(engine_path),
            "precision": self.options.get("precision", "fp32"),
            "max_batch": self.max_batch,
        }
        return TensorMeta(self.input_name, (None, *sample_shape), "float32")

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        n = len(batch)
        if not self.context.set_input_shape(self.input_name, batch.shape):
            raise FeredgeError(f"TensorRT rejected input shape {batch.shape} (profile max batch {self.max_batch})")
        count = batch.size
        self.h_input.array[:count] = batch.reshape(-1).astype(self.input_dtype, copy=False)
        in_bytes = count * self.input_dtype.itemsize
        out_count = n * int(np.prod(self.output_sample))
        out_bytes = out_count * self.output_dtype.itemsize
        self.stream.copy_to_device(self.d_input, self.h_input, in_bytes)
        if not self.context.execute_async_v3(self.stream.handle):
            raise FeredgeError("TensorRT execute_async_v3 failed")
        self.stream.copy_to_host(self.h_output, self.d_output, out_bytes)
        self.stream.synchronize()
        return self.h_output.array[:out_count].reshape(n, *self.output_sample).astype(np.float32, copy=True)

    def _deactivate(self) -> None:
        for buffer in (self.d_input, self.d_output, self.h_input, self.h_output):
            buffer.free()
        self.stream.destroy()
        del self.context, self.engine, self.runtime


def _dims(dims: Any) -> tuple[int, ...]:
    """A TensorRT ``Dims`` as a tuple (indexable and sized; not declared iterable in the stubs)."""
    return tuple(int(dims[i]) for i in range(len(dims)))
