"""Post-training INT8 backends, one table: ModelOpt (torch), NNCF (OpenVINO), ONNX Runtime.

Each backend takes the same :class:`Int8Request` (float model, its verified fp32 ONNX,
calibration faces, layers to keep in float) and returns an :class:`Int8Artifact`: a Q/DQ ONNX
(``modelopt``, ``ort``: readable by ONNX Runtime, OpenVINO and TensorRT) or an OpenVINO IR
(``nncf``). All follow :mod:`feredge.quantize.config`: symmetric INT8, per-channel weights,
per-tensor activations, the overflow fix unless disabled. Adding a backend is adding a row to
:data:`PTQ_BACKENDS` (and a test entry: a meta-test checks that every row has one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from feredge.errors import FeredgeError

if TYPE_CHECKING:
    from torch import nn

QDQ_ONNX = "qdq_onnx"
#: wraps an iterable of layer names in a progress bar (identity when there is none)
Progress = Callable[[Iterable[str]], Iterable[str]]
OPENVINO_IR = "openvino_ir"


@dataclass(frozen=True)
class Int8Request:
    module: nn.Module  # the float model (or a QAT model, for the "qat" method)
    input_shape: tuple[int, ...]
    float_onnx: Path  # the verified fp32 ONNX of ``module``
    calib: np.ndarray  # NCHW float32 calibration faces
    workdir: Path
    exclude: tuple[str, ...] = ()
    overflow_fix: bool = True
    max_batch: int = 64

    def excluding(self, layers: frozenset[str] | tuple[str, ...]) -> Int8Request:
        return replace(self, exclude=tuple(sorted(layers)))


@dataclass
class Int8Artifact:
    method: str
    kind: str  # QDQ_ONNX or OPENVINO_IR
    path: Path
    excluded: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PtqBackend:
    name: str
    produces: str
    description: str
    quantize: Callable[[Int8Request], Int8Artifact]
    layers: Callable[[Int8Request], list[str]]  # names ``exclude`` accepts, in graph order
    #: one-pass sensitivity of each of ``layers`` (higher: keep in float first); ``progress`` wraps the loop
    rank: Callable[[Int8Request, Progress], dict[str, float]] | None = None


def _tag(request: Int8Request, stem: str, suffix: str) -> Path:
    key = "-".join(request.exclude)
    digest = f"{abs(hash(key)) % 10**8:08d}" if key else "all"
    return request.workdir / f"{stem}-{digest}{suffix}"


# --- ModelOpt ------------------------------------------------------------------------------------

def _modelopt_quantize(request: Int8Request) -> Int8Artifact:
    from feredge.quantize.modelopt_qat import quantize_model
    from feredge.quantize.qdq_export import export_qdq_onnx

    model = quantize_model(request.module, request.calib, exclude=request.exclude,
                           overflow_fix=request.overflow_fix)
    path = _tag(request, "modelopt", ".onnx")
    summary = export_qdq_onnx(model, request.input_shape, path, max_batch=request.max_batch)
    return Int8Artifact("modelopt", QDQ_ONNX, path, list(request.exclude), {"qdq": summary.to_dict()})


def _modelopt_layers(request: Int8Request) -> list[str]:
    from feredge.quantize.modelopt_qat import quantize_model, quantized_layers

    return quantized_layers(quantize_model(request.module, request.calib[:8], overflow_fix=request.overflow_fix))


def qat_artifact(request: Int8Request) -> Int8Artifact:
    """A QAT model's Q/DQ ONNX as an INT8 artifact (``request.exclude``: layers set back to float)."""
    import copy

    from feredge.quantize.modelopt_qat import quantized_layers
    from feredge.quantize.qdq_export import export_qdq_onnx

    model = copy.deepcopy(request.module)
    if request.exclude:
        from feredge.quantize.modelopt_qat import set_excluded

        set_excluded(model, request.exclude)
    path = request.workdir / f"qat-{len(request.exclude)}.onnx"
    summary = export_qdq_onnx(model, request.input_shape, path, max_batch=request.max_batch)
    return Int8Artifact("qat", QDQ_ONNX, path, list(request.exclude),
                        {"qdq": summary.to_dict(), "layers": len(quantized_layers(model))})


# --- ONNX Runtime --------------------------------------------------------------------------------

def _ort_quantize(request: Int8Request) -> Int8Artifact:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Reader(CalibrationDataReader):
        def __init__(self, batch: np.ndarray) -> None:
            self.items = iter([{"input": batch[i : i + 1]} for i in range(len(batch))])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.items, None)

    path = _tag(request, "ort", ".onnx")
    quantize_static(str(request.float_onnx), str(path), Reader(request.calib), quant_format=QuantFormat.QDQ,
                    per_channel=True, activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    reduce_range=request.overflow_fix, calibrate_method=CalibrationMethod.MinMax,
                    nodes_to_exclude=list(request.exclude),
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    from feredge.quantize.qdq_export import inspect_qdq

    return Int8Artifact("ort", QDQ_ONNX, path, list(request.exclude), {"qdq": inspect_qdq(path).to_dict()})


def _onnx_noise(request: Int8Request) -> Any:
    from feredge.quantize.onnx_noise import OnnxLayerNoise

    return OnnxLayerNoise(request.float_onnx, request.calib, overflow_fix=request.overflow_fix)


def _ort_layers(request: Int8Request) -> list[str]:
    """ONNX node names (what ``nodes_to_exclude`` takes): convolutions, matrix products, residual Adds."""
    return list(_onnx_noise(request).layers())


def _ort_rank(request: Int8Request, progress: Progress) -> dict[str, float]:
    return dict(_onnx_noise(request).ranking(progress=progress))


# --- NNCF ----------------------------------------------------------------------------------------



def _nncf_quantize(request: Int8Request) -> Int8Artifact:
    try:
        import nncf
        from nncf.quantization.advanced_parameters import AdvancedQuantizationParameters, OverflowFix
    except ImportError:
        raise FeredgeError("--ptq nncf needs `pip install nncf`") from None
    import openvino as ov

    model = ov.Core().read_model(str(request.float_onnx))
    dataset = nncf.Dataset([request.calib[i : i + 1] for i in range(len(request.calib))])
    fix = OverflowFix.ENABLE if request.overflow_fix else OverflowFix.DISABLE
    quantized = nncf.quantize(
        model, dataset, preset=nncf.QuantizationPreset.PERFORMANCE, target_device=nncf.TargetDevice.CPU,
        subset_size=len(request.calib), fast_bias_correction=True,
        ignored_scope=nncf.IgnoredScope(names=list(request.exclude)) if request.exclude else None,
        advanced_parameters=AdvancedQuantizationParameters(overflow_fix=fix),
    )
    path = _tag(request, "nncf", ".xml")
    ov.save_model(quantized, str(path), compress_to_fp16=False)
    return Int8Artifact("nncf", OPENVINO_IR, path, list(request.exclude), {"nncf": nncf.__version__})


#: ONNX layer op → the OpenVINO op types it becomes (the one NNCF puts its fake quantizers on)
NNCF_OP_TYPES = {"Conv": ("Convolution", "GroupConvolution"),
                 "ConvTranspose": ("ConvolutionBackpropData", "GroupConvolutionBackpropData"),
                 "Gemm": ("MatMul",), "MatMul": ("MatMul",), "Add": ("Add",)}


def _nncf_names(request: Int8Request) -> dict[str, str]:
    """OpenVINO op name → the ONNX layer it came from, one op per layer, in graph order.

    OpenVINO names an op after its ONNX node; a convolution whose bias became a separate Add is
    ``X/WithoutBiases`` and the bias Add ``X`` (no Q/DQ goes there), so the op kind decides. ONNX
    names may hold ``/`` themselves (the TorchScript exporter's ``/conv1/Conv``): the longest
    ``/``-prefix of the OpenVINO name that is an ONNX layer is its origin."""
    import openvino as ov

    noise = _onnx_noise(request)
    kinds = {name: NNCF_OP_TYPES.get(noise.nodes[name].op_type, ()) for name in noise.layers()}
    names: dict[str, str] = {}
    for op in ov.Core().read_model(str(request.float_onnx)).get_ordered_ops():
        name = op.get_friendly_name()
        parts = name.split("/")
        origin = next((o for o in ("/".join(parts[:k]) for k in range(len(parts), 0, -1)) if o in kinds), None)
        if origin is not None and op.get_type_name() in kinds[origin] and origin not in names.values():
            names[name] = origin
    return names


def _nncf_layers(request: Int8Request) -> list[str]:
    """OpenVINO op names (what NNCF's ignored scope takes) of the layers NNCF quantizes."""
    return list(_nncf_names(request))


def _nncf_rank(request: Int8Request, progress: Progress) -> dict[str, float]:
    """The ONNX ranking (:mod:`feredge.quantize.onnx_noise`) under OpenVINO's names."""
    names = _nncf_names(request)
    noise = _onnx_noise(request).ranking(list(names.values()), progress=progress)
    return {name: noise[origin] for name, origin in names.items()}


PTQ_BACKENDS: dict[str, PtqBackend] = {
    b.name: b
    for b in (
        PtqBackend("modelopt", QDQ_ONNX, "NVIDIA ModelOpt max calibration in torch → Q/DQ ONNX (also residual Adds)",
                   _modelopt_quantize, _modelopt_layers),  # ranked in torch: feredge.export.int8
        PtqBackend("nncf", OPENVINO_IR, "NNCF post-training quantization of the OpenVINO model → INT8 IR",
                   _nncf_quantize, _nncf_layers, _nncf_rank),
        PtqBackend("ort", QDQ_ONNX, "ONNX Runtime quantize_static (QDQ, per-channel, symmetric) → Q/DQ ONNX",
                   _ort_quantize, _ort_layers, _ort_rank),
    )
}

def resolve_backend(name: str, target: str, *, auto: str, kinds: tuple[str, ...]) -> PtqBackend:
    """``--ptq NAME`` for ``target``, whose back-end row (:class:`feredge.backends.ExportTarget`) gives
    what ``auto`` means and the artifact ``kinds`` it can ship."""
    key = auto if name == "auto" else name
    backend = PTQ_BACKENDS.get(key)
    if backend is None:
        raise FeredgeError(f"unknown PTQ backend {name!r}; known: auto, {', '.join(PTQ_BACKENDS)}")
    if backend.produces not in kinds:
        raise FeredgeError(f"--ptq {key} produces an OpenVINO IR; the {target} target needs a Q/DQ ONNX "
                           f"(use --ptq modelopt or ort)")
    return backend
