"""ONNX Runtime on the CPU (the reference ONNX runtime: same file TensorRT parses).

The model file is untrusted: before ONNX Runtime sees it, its external-data paths are checked to
stay in its directory (:mod:`feredge.runtimes.onnx_external`; ONNX Runtime itself checks only
since 1.24). Inside a bundle they must also be listed and hashed (:meth:`feredge.bundle.Bundle.verify`).
"""

from __future__ import annotations

import numpy as np

from feredge.errors import FeredgeError
from feredge.runtimes.base import ImageInput, Runner, ShapedCall, TensorMeta
from feredge.runtimes.onnx_external import check_onnx_file


class OnnxRuntimeRunner(Runner):
    name = "onnxruntime"

    def _activate(self) -> TensorMeta:
        import onnxruntime as ort

        check_onnx_file(self.model_path)
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.model_path), options, providers=_providers(self.device))
        model_input = self.session.get_inputs()[0]
        self.output_name = self.session.get_outputs()[0].name
        self.settings = {
            "runtime": self.name,
            "version": ort.__version__,
            "provider": self.session.get_providers()[0],
            "threads": self.threads or "default",
            "precision": self.options.get("precision") or _onnx_precision(model_input.type),
        }
        shape = tuple(d if isinstance(d, int) else None for d in model_input.shape)
        dtype = "float16" if "float16" in model_input.type else "float32"
        return TensorMeta(model_input.name, shape, dtype)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        assert self.input_meta is not None
        (logits,) = self.session.run([self.output_name], {self.input_meta.name: batch})
        return np.asarray(logits, dtype=np.float32)

    @property
    def reshapes(self) -> bool:
        """A file whose input height and width are free (symbolic) dimensions runs at any size."""
        return self.input_meta is not None and len(self.input_meta.shape) == 4 and \
            self.input_meta.shape[2] is None and self.input_meta.shape[3] is None

    def _at_shape(self, shape: tuple[int, ...], image: ImageInput | None) -> _ShapedSession:
        return _ShapedSession(self, shape, image)  # the session itself runs any size

    def _deactivate(self) -> None:
        del self.session


class _ShapedSession(ShapedCall):
    def __init__(self, runner: OnnxRuntimeRunner, shape: tuple[int, ...], image: ImageInput | None) -> None:
        super().__init__(shape, image)
        self.runner = runner

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        return self.runner._infer(self.image.to_network(batch) if self.image is not None else batch)


#: device → execution providers, in ONNX Runtime's order of preference (CPU always last: it runs every op)
DEVICE_PROVIDERS = {"cpu": ("CPUExecutionProvider",),
                    "gpu": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
                    "auto": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "OpenVINOExecutionProvider",
                             "CPUExecutionProvider")}


def _providers(device: str) -> list[str]:
    """The installed providers for ``device``; ``gpu`` without a GPU provider is an error, not the CPU."""
    import onnxruntime as ort

    available = set(ort.get_available_providers())
    chosen = [p for p in DEVICE_PROVIDERS[device] if p in available]
    if device == "gpu" and not {"TensorrtExecutionProvider", "CUDAExecutionProvider"} & set(chosen):
        raise FeredgeError("onnxruntime has no GPU provider here (pip install onnxruntime-gpu on a CUDA machine)")
    return chosen


def _onnx_precision(type_string: str) -> str:
    return "fp16" if "float16" in type_string else "fp32"
