"""The ``python``-backend models of a feredge Triton repository, on feredge's device side (no torch).

Triton's python-backend stub imports ``model.py`` from each model's version directory; the
generated ``model.py`` is a shim that puts feredge on ``sys.path`` (``FEREDGE_SYS_PATH``, set by
``feredge serve`` so the server runs the same feredge as the command) and exposes one of these
classes as ``TritonPythonModel``. Keeping the code here (not in the generated file) means a bundle's
repository never carries a stale copy of the inference code, and the classes are tested as code.

The bundle is found from the model's ``bundle`` parameter, a path relative to the model directory
(``../..``: the repository lives at ``BUNDLE/triton``); an absolute path serves a copied repository.

Errors are per request: a request that fails (garbage bytes, an empty image) gets an error
response with a one-line message and the others in the same batch are still answered.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

#: largest encoded image the pipeline model accepts (bytes): beyond it, an error, not a decode
MAX_IMAGE_BYTES = 32 << 20


def _parameters(args: dict[str, Any]) -> dict[str, str]:
    config = json.loads(args["model_config"])
    return {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}


def _bundle_path(args: dict[str, Any], params: dict[str, str]) -> Path:
    where = Path(params.get("bundle", "../.."))
    return where if where.is_absolute() else (Path(args["model_repository"]) / where).resolve()


def _threads(params: dict[str, str]) -> int | None:
    value = params.get("threads", "")
    return int(value) if value else None


def _as_numpy(tensor: Any) -> np.ndarray:
    """An input tensor as numpy through DLPack: the wheel's stub is built with a pybind11 that
    reads numpy 1's array-descriptor layout, so ``as_numpy``/``Tensor(name, array)`` see a wrong item
    size under numpy 2 (empty outputs); DLPack never touches numpy's structs."""
    return np.from_dlpack(tensor)


def _tensor(pb_utils: Any, name: str, array: np.ndarray) -> Any:
    return pb_utils.Tensor.from_dlpack(name, np.array(array, dtype=np.float32, order="C"))  # a writable copy


class ClassifierModel:
    """``input`` float32 (N, C, H, W) → ``logits`` and ``probabilities`` float32 (N, K); Triton batches."""

    def initialize(self, args: dict[str, Any]) -> None:
        from feredge.bundle import Bundle
        from feredge.runtimes.registry import resolve_name, runner_class

        params = _parameters(args)
        bundle = Bundle.load(_bundle_path(args, params))
        runtime = resolve_name(params.get("runtime", "onnxruntime"))
        self.runner = runner_class(runtime).from_bundle(bundle, threads=_threads(params)).activate()
        self.max_batch = bundle.max_batch

    def execute(self, requests: list[Any]) -> list[Any]:
        import triton_python_backend_utils as pb_utils

        from feredge.mathops import softmax

        # one runner call for the whole dynamic batch (that is the point of batching), split back per request
        arrays = [_as_numpy(pb_utils.get_input_tensor_by_name(r, "input")) for r in requests]
        sizes = [len(a) for a in arrays]
        logits = self.runner.infer_all(np.concatenate(arrays).astype(np.float32, copy=False), chunk=self.max_batch)
        probs = softmax(logits)
        responses, start = [], 0
        for size in sizes:
            part = slice(start, start + size)
            start += size
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                _tensor(pb_utils, "logits", logits[part]),
                _tensor(pb_utils, "probabilities", probs[part]),
            ]))
        return responses

    def finalize(self) -> None:
        self.runner.deactivate()


def decode_image_bytes(data: bytes, max_side: int = 1920) -> tuple[np.ndarray, float]:
    """Encoded image bytes → BGR uint8 and the detection scale (as :func:`read_image` does for files)."""
    import cv2

    from feredge.preprocess.image_io import to_bgr_u8

    if not data:
        raise ValueError("empty image")
    if len(data) > MAX_IMAGE_BYTES:
        raise ValueError(f"image of {len(data)} bytes exceeds {MAX_IMAGE_BYTES}")
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None:
        raise ValueError(f"not a decodable image ({len(data)} bytes)")
    image = to_bgr_u8(array, "request")
    h, w = image.shape[:2]
    scale = 1.0
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    return image, scale


class PipelineModel:
    """``image`` UINT8 [n] (one encoded image's bytes) → ``faces`` UINT8 [m]: UTF-8 JSON, the list of
    local records (box, label, probability, probabilities), from :class:`feredge.runtimes.pipeline.Pipeline`.

    UINT8 vectors, not Triton BYTES: the wheel's stub unpacks BYTES through numpy object arrays with
    numpy 1's struct layout and crashes under numpy 2 (``unpack_from requires a buffer of at least
    3537031894 bytes``); byte vectors travel through DLPack like the classifier's floats."""

    def initialize(self, args: dict[str, Any]) -> None:
        from feredge.runtimes.pipeline import Pipeline

        params = _parameters(args)
        detector = params.get("detector") or None
        self.pipeline = Pipeline.from_bundle(_bundle_path(args, params), params.get("runtime", "onnxruntime"),
                                             detector=detector, threads=_threads(params))

    def execute(self, requests: list[Any]) -> list[Any]:
        import triton_python_backend_utils as pb_utils

        responses = []
        for request in requests:
            try:
                data = _as_numpy(pb_utils.get_input_tensor_by_name(request, "image")).tobytes()
                image, scale = decode_image_bytes(data)
                faces = [f.to_dict() for f in self.pipeline.run(image, scale=scale).faces]
                out = np.frombuffer(json.dumps(faces).encode(), dtype=np.uint8).copy()  # writable: DLPack
                responses.append(pb_utils.InferenceResponse(output_tensors=[
                    pb_utils.Tensor.from_dlpack("faces", out)]))
            except Exception as exc:  # answered as this request's error; the model keeps serving
                message = f"{type(exc).__name__}: {exc}".splitlines()[0]
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message)))
        return responses

    def finalize(self) -> None:
        self.pipeline.close()


#: the python models a repository can hold: kind → class name in this module (the shim imports it)
PYTHON_MODELS = {"classifier": "ClassifierModel", "pipeline": "PipelineModel"}

MODEL_SHIM = '''"""Generated by feredge: Triton python model {kind!r}; its code is feredge.serve.python_models."""
import os
import sys

for _entry in reversed([p for p in os.environ.get("FEREDGE_SYS_PATH", "").split(os.pathsep) if p]):
    if _entry not in sys.path:
        sys.path.insert(0, _entry)

from feredge.serve.python_models import {cls} as TritonPythonModel  # noqa: E402,F401
'''


def model_shim(kind: str) -> str:
    return MODEL_SHIM.format(kind=kind, cls=PYTHON_MODELS[kind])
