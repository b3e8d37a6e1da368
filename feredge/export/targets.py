"""Export targets: one table of formats with their precisions and aliases (``trt`` → tensorrt).

Each target is a function that adds its artifacts to a bundle being staged; the shared steps
(weights, verified fp32 ONNX) run first for every target in :mod:`feredge.export.exporter`.
Adding a format is adding a row here, not a branch in the exporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from feredge.errors import FeredgeError
from feredge.export.context import ExportTarget
from feredge.parity import compare_logits

if TYPE_CHECKING:
    from feredge.export.context import ExportContext


def _build_onnx(ctx: ExportContext) -> None:
    if ctx.options.precision == "int8":  # QAT or PTQ → Q/DQ ONNX (feredge.quantize)
        from feredge.export.int8 import build_onnx_int8

        build_onnx_int8(ctx)
        return
    if ctx.options.precision != "fp16":
        return
    import onnx
    from onnxconverter_common import float16

    from feredge.export.onnx_export import onnxruntime_logits

    fp32 = onnx.load(str(ctx.staging / "model.onnx"))
    # fp16 weights and activations, fp32 graph inputs/outputs so callers keep feeding float32
    fp16 = float16.convert_float_to_float16(fp32, keep_io_types=True)
    path = ctx.staging / "model.onnx"
    onnx.save(fp16, str(path))
    parity = compare_logits(ctx.expected, onnxruntime_logits(path, ctx.reference.batch),
                            runtime="onnxruntime", precision="fp16")
    ctx.record_parity(parity)


def _build_openvino(ctx: ExportContext) -> None:
    from feredge.export.openvino_export import convert_to_openvino, openvino_parity

    if ctx.options.precision == "int8":  # QAT or PTQ (NNCF by default) → INT8 IR (feredge.quantize)
        from feredge.export.int8 import build_openvino_int8

        build_openvino_int8(ctx)
        return
    xml = ctx.staging / "model.xml"
    convert_to_openvino(ctx.staging / "model.onnx", xml, compress_to_fp16=ctx.options.precision == "fp16")
    ctx.add_file("model.xml", "openvino_xml")
    ctx.add_file("model.bin", "openvino_bin")
    ctx.record_parity(openvino_parity(xml, ctx.reference.batch, ctx.expected, ctx.options.precision))


def _build_deepstream(ctx: ExportContext) -> None:
    # the tensorrt target's ONNX and checks, then nvinfer + deepstream-app configs in deepstream/, checked
    from feredge.export.deepstream import build_deepstream

    build_deepstream(ctx)


def _build_tensorrt(ctx: ExportContext) -> None:
    # TensorRT-ready ONNX per precision, static + numerical checks, build plan; engine where TensorRT runs
    from feredge.export.tensorrt.export_target import build_tensorrt

    build_tensorrt(ctx)


def _build_triton(ctx: ExportContext) -> None:
    # the OpenVINO target's artifacts (both native CPU backends need a verified file), then the repository
    from feredge.export.triton import build_triton_repository

    _build_openvino(ctx)
    build_triton_repository(ctx)


TARGETS: dict[str, ExportTarget] = {
    t.name: t
    for t in (
        ExportTarget("onnx", ("ort",), ("fp32", "fp16", "int8"), "ONNX (dynamic batch), verified in onnxruntime",
                     _build_onnx),
        ExportTarget("openvino", ("ov", "openvino_ir"), ("fp32", "fp16", "int8"),
                     "ONNX + OpenVINO IR, verified in OpenVINO with f32 forced", _build_openvino,
                     int8_runtime="openvino", auto_ptq="nncf", int8_kinds=("qdq_onnx", "openvino_ir"),
                     network_roles=("onnx", "openvino_xml")),
        ExportTarget("tensorrt", ("trt", "engine"), ("fp32", "fp16", "int8"),
                     "TensorRT-ready ONNX; engine built where TensorRT runs", _build_tensorrt,
                     auto_ptq="modelopt", overflow_fix=False),
        ExportTarget("deepstream", ("ds", "nvinfer"), ("fp32", "fp16", "int8"),
                     "TensorRT-ready ONNX + nvinfer configs (BlazeFace primary, classifier secondary) and a "
                     "deepstream-app config for N streams, checked statically", _build_deepstream,
                     auto_ptq="modelopt", overflow_fix=False),
        ExportTarget("triton", ("tritonserver",), ("fp32", "fp16"),
                     "ONNX + OpenVINO IR + a Triton model repository (native and python-backend models)",
                     _build_triton, int8_runtime="openvino", network_roles=("onnx", "openvino_xml")),
    )
}


def resolve_target(name: str) -> ExportTarget:
    key = name.lower()
    for target in TARGETS.values():
        if key == target.name or key in target.aliases:
            return target
    names = ", ".join(f"{t.name} ({'/'.join(t.aliases)})" for t in TARGETS.values())
    raise FeredgeError(f"unknown export target {name!r}; known: {names}")
