"""The ``tensorrt`` export target: TensorRT-ready ONNX files, their checks, and the build plan.

Runs after the shared steps (weights, verified fp32 ``model.onnx``). Per precision it adds what
each TensorRT major needs (see :func:`~feredge.runtimes.tensorrt.plan.default_variants`), checks
every TensorRT-ready ONNX statically (:mod:`feredge.export.trt_onnx_check`: supported ops,
Q/DQ placement) and numerically in onnxruntime against PyTorch, and records the plan with its
``trtexec`` lines. Where TensorRT and a GPU are present the engine is built now; otherwise the
export says, in one line, that the device will build it.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

import numpy as np

from feredge.errors import FeredgeError
from feredge.export.tensorrt.int8 import Int8Unavailable, calibration_for, int8_onnx_for
from feredge.export.tensorrt.options import trt_options_of
from feredge.parity import compare_logits
from feredge.runtimes.tensorrt.plan import BuildPlan, Calibration, default_variants
from feredge.runtimes.tensorrt.profile import batch_profile
from feredge.runtimes.tensorrt.trtexec import trtexec_commands

if TYPE_CHECKING:
    from feredge.export.context import ExportContext

FP16_ONNX = "model.fp16.onnx"
QDQ_ONNX = "model.qdq.onnx"
CALIBRATION_DATA = "calibration.npy"
TRT_ONNX_ROLE = "trt_onnx"
CALIBRATION_DATA_ROLE = "trt_calibration_data"


def _onnx_parity(ctx: ExportContext, name: str, precision: str) -> None:
    """The TensorRT-ready ONNX against PyTorch in onnxruntime, with the precision's tolerance.

    INT8 goes through :func:`feredge.export.int8.record_int8_parity`: gated on the calibration
    dataset's validation split when one was given, on the reference faces otherwise."""
    from feredge.export.onnx_export import onnxruntime_logits

    runtime = f"onnxruntime/trt-{precision}"
    if precision == "int8":
        from feredge.export.int8 import record_int8_parity
        from feredge.runtimes.onnxruntime_runner import OnnxRuntimeRunner

        with OnnxRuntimeRunner(ctx.staging / name) as runner:  # one session for both face sets
            record_int8_parity(ctx, runtime, runner.infer_all)
        return
    logits = onnxruntime_logits(ctx.staging / name, ctx.reference.batch)
    ctx.record_parity(compare_logits(ctx.expected, logits, runtime=runtime, precision=precision))


def _static_check(ctx: ExportContext, names: set[str]) -> dict[str, object]:
    from feredge.export.trt_onnx_check import OPSET_RANGE, SOURCE, check_onnx

    float_layers = (ctx.manifest_extra.get("int8") or {}).get("excluded") or []  # kept in float on purpose
    for name in sorted(names):
        findings = check_onnx(ctx.staging / name, float_layers)
        if findings:
            more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
            raise FeredgeError(f"{name} is not TensorRT-ready: {findings[0]}{more}")
    return {"checked": sorted(names), "passed": True, "ops_source": SOURCE, "opset_range": list(OPSET_RANGE)}


def build_tensorrt(ctx: ExportContext) -> None:
    options = trt_options_of(ctx.options)
    precision = ctx.options.precision
    profile = batch_profile(ctx.options.max_batch, options.min_batch, options.opt_batch)
    if options.workspace_mb < 16:
        raise FeredgeError(f"--workspace-mb must be at least 16, got {options.workspace_mb}")
    section: dict[str, object] = {}
    fp16_onnx = qdq_onnx = None
    calibration = None
    if precision == "fp16":
        from feredge.export.tensorrt.fp16 import to_fp16_onnx

        section["fp16_converter"] = to_fp16_onnx(ctx.staging / "model.onnx", ctx.staging / FP16_ONNX)
        fp16_onnx = FP16_ONNX
        ctx.add_file(FP16_ONNX, TRT_ONNX_ROLE)
        _onnx_parity(ctx, FP16_ONNX, "fp16")
    elif precision == "int8":
        try:
            source = int8_onnx_for(ctx)
        except Int8Unavailable:
            data = calibration_for(ctx)
            if data is None:
                raise
            np.save(ctx.staging / CALIBRATION_DATA, data)
            ctx.add_file(CALIBRATION_DATA, CALIBRATION_DATA_ROLE)
            calibration = Calibration(CALIBRATION_DATA, batch_size=min(8, len(data)))
            ctx.message("INT8 from calibration data alone builds on TensorRT 10 only (entropy calibrator); "
                        "TensorRT 11 needs a Q/DQ ONNX from QAT or PTQ")
        else:
            shutil.copyfile(source, ctx.staging / QDQ_ONNX)
            qdq_onnx = QDQ_ONNX
            ctx.add_file(QDQ_ONNX, TRT_ONNX_ROLE)
            _onnx_parity(ctx, QDQ_ONNX, "int8")
    variants = default_variants(precision, "model.onnx", fp16_onnx=fp16_onnx, qdq_onnx=qdq_onnx,
                                calibration=calibration)
    plan = BuildPlan(precision, "input", tuple(ctx.source.spec.input_shape), profile, variants,
                     options.workspace_mb)
    section["onnx_check"] = _static_check(ctx, {v.onnx for v in variants.values() if v.onnx})
    section.update(plan.to_dict())
    section["trtexec"] = trtexec_commands(plan)
    section["status"] = "not-built"
    _build_now_or_later(ctx, section)
    ctx.manifest_extra["tensorrt"] = section


def _build_now_or_later(ctx: ExportContext, section: dict[str, object]) -> None:
    from feredge.runtimes.tensorrt.builder import build_into_directory, probe_tensorrt

    local, reason = probe_tensorrt()
    if local is None:
        section["reason"] = reason
        ctx.message(f"{reason}: the TensorRT engine will be built on the device (`feredge build BUNDLE --target trt`, "
                    "or automatically on first load)")
        return
    files = {name: {"role": role} for name, role in ctx.files.items()}
    built = build_into_directory(ctx.staging, {"tensorrt": section, "files": files}, local,
                                 log=lambda text: ctx.message(text))
    ctx.add_file(built.engine, "trt_engine")
    if built.timing_cache:
        ctx.add_file(built.timing_cache, "trt_timing_cache")
    if built.calibration_cache:
        ctx.add_file(built.calibration_cache, "trt_calibration_cache")
    section.update(status="built", engines={str(built.key): built.engine}, built_on=local.device)
