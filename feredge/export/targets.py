"""Build functions of the onnx, openvino and triton export targets (rows: :data:`feredge.backends.BACKENDS`).

A target's build adds its artifacts to a bundle being staged; the shared steps (weights, verified
fp32 ONNX) run first for every target in :mod:`feredge.export.exporter`. Its row names the build
as ``"module:function"`` (the tensorrt and deepstream builds live in their own modules), so adding
a format is a build function and a row, not a branch in the exporter.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from feredge.parity import compare_logits

if TYPE_CHECKING:
    from feredge.export.context import ExportContext


def build_onnx(ctx: ExportContext) -> None:
    """``onnx``: fp32 is the shared verified ONNX as it is; fp16 converts it (fp32 I/O kept); int8 quantizes."""
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


def build_openvino(ctx: ExportContext) -> None:
    """``openvino``: the IR converted from the verified ONNX and checked in OpenVINO; int8 quantizes."""
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


def build_triton(ctx: ExportContext) -> None:
    """``triton``: the OpenVINO target's artifacts (both native CPU backends need a verified file), then the
    model repository."""
    from feredge.export.triton import build_triton_repository

    build_openvino(ctx)
    build_triton_repository(ctx)
