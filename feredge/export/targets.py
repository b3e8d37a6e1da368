"""Export targets: one table of formats with their precisions and aliases (``trt`` → tensorrt).

Each target is a function that adds its artifacts to a bundle being staged; the shared steps
(weights, verified fp32 ONNX) run first for every target in :mod:`feredge.export.exporter`.
Adding a format is adding a row here, not a branch in the exporter.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from feredge.errors import FeredgeError
from feredge.parity import compare_logits

if TYPE_CHECKING:
    from feredge.export.exporter import ExportContext


@dataclass(frozen=True)
class ExportTarget:
    name: str
    aliases: tuple[str, ...]
    precisions: tuple[str, ...]
    description: str
    build: Callable[[ExportContext], None]


def _build_onnx(ctx: ExportContext) -> None:
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

    xml = ctx.staging / "model.xml"
    convert_to_openvino(ctx.staging / "model.onnx", xml, compress_to_fp16=ctx.options.precision == "fp16")
    ctx.add_file("model.xml", "openvino_xml")
    ctx.add_file("model.bin", "openvino_bin")
    ctx.record_parity(openvino_parity(xml, ctx.reference.batch, ctx.expected, ctx.options.precision))


def _build_tensorrt(ctx: ExportContext) -> None:
    plan = {
        "status": "not-built",
        "onnx": "model.onnx",
        "trtexec": f"trtexec --onnx=model.onnx --saveEngine=model.engine "
                   f"--minShapes=input:1x{'x'.join(map(str, ctx.source.spec.input_shape))} "
                   f"--optShapes=input:4x{'x'.join(map(str, ctx.source.spec.input_shape))} "
                   f"--maxShapes=input:{ctx.options.max_batch}x{'x'.join(map(str, ctx.source.spec.input_shape))}"
                   + (" --fp16" if ctx.options.precision == "fp16" else ""),
    }
    if importlib.util.find_spec("tensorrt") is None:
        plan["reason"] = "TensorRT is not installed on the exporting machine"
        ctx.message("TensorRT is not installed here: the bundle carries the verified ONNX and the engine "
                    "must be built on the device (see manifest 'tensorrt.trtexec')")
    else:
        raise FeredgeError("building TensorRT engines in feredge is not implemented yet; "
                           "use the trtexec line recorded in the manifest")
    ctx.manifest_extra["tensorrt"] = plan


TARGETS: dict[str, ExportTarget] = {
    t.name: t
    for t in (
        ExportTarget("onnx", ("ort",), ("fp32", "fp16"), "ONNX (dynamic batch), verified in onnxruntime",
                     _build_onnx),
        ExportTarget("openvino", ("ov", "openvino_ir"), ("fp32", "fp16"),
                     "ONNX + OpenVINO IR, verified in OpenVINO with f32 forced", _build_openvino),
        ExportTarget("tensorrt", ("trt", "engine"), ("fp32", "fp16"),
                     "TensorRT-ready ONNX; engine built where TensorRT runs", _build_tensorrt),
    )
}


def resolve_target(name: str) -> ExportTarget:
    key = name.lower()
    for target in TARGETS.values():
        if key == target.name or key in target.aliases:
            return target
    names = ", ".join(f"{t.name} ({'/'.join(t.aliases)})" for t in TARGETS.values())
    raise FeredgeError(f"unknown export target {name!r}; known: {names}")
