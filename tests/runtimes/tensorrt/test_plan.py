"""Build plan, batch profile and trtexec lines: the device-side TensorRT decisions that need no TensorRT."""

from __future__ import annotations

import pytest

from feredge.errors import FeredgeError
from feredge.runtimes.tensorrt.plan import BuildPlan, Calibration, default_variants, plan_from_manifest
from feredge.runtimes.tensorrt.profile import BatchProfile, batch_profile
from feredge.runtimes.tensorrt.trtexec import trtexec_command, trtexec_commands


def _plan(precision: str, **variants_kwargs: object) -> BuildPlan:
    variants = default_variants(precision, "model.onnx", **variants_kwargs)  # type: ignore[arg-type]
    return BuildPlan(precision, "input", (1, 64, 64), batch_profile(64), variants, 512)


@pytest.mark.parametrize(("max_batch", "low", "opt", "expected"), [
    (64, None, None, (1, 4, 64)), (2, None, None, (1, 2, 2)), (64, 8, None, (8, 8, 64)), (16, 2, 3, (2, 3, 16)),
])
def test_profile_defaults_and_clamping(max_batch, low, opt, expected):
    profile = batch_profile(max_batch, low, opt)
    assert (profile.min, profile.opt, profile.max) == expected
    assert profile.shapes((3, 224, 224))[1] == (expected[1], 3, 224, 224)


@pytest.mark.parametrize(("low", "opt", "high"), [(0, 1, 4), (2, 1, 4), (1, 8, 4)])
def test_profile_rejects_disordered_batches(low, opt, high):
    with pytest.raises(FeredgeError, match="min <= opt <= max"):
        BatchProfile(low, opt, high)


def test_fp16_plan_uses_flag_on_10_and_fp16_onnx_on_11():
    plan = _plan("fp16", fp16_onnx="model.fp16.onnx")
    assert plan.variant(10).flags == ("FP16",) and plan.variant(10).onnx == "model.onnx"
    assert plan.variant(11).onnx == "model.fp16.onnx" and plan.variant(11).strongly_typed
    assert plan.variant(12).onnx == "model.fp16.onnx"  # a newer major uses the newest plan
    with pytest.raises(FeredgeError, match="TensorRT 8 is not supported"):
        plan.variant(8)


def test_trtexec_lines_for_10_and_11():
    lines = trtexec_commands(_plan("fp16", fp16_onnx="model.fp16.onnx"))
    assert lines["10"] == ("trtexec --onnx=model.onnx --saveEngine=model.engine --minShapes=input:1x1x64x64 "
                           "--optShapes=input:4x1x64x64 --maxShapes=input:64x1x64x64 --memPoolSize=workspace:512M "
                           "--timingCacheFile=timing.cache --fp16")
    assert lines["11"].startswith("trtexec --onnx=model.fp16.onnx ")
    assert "--fp16" not in lines["11"] and "--int8" not in lines["11"]


def test_int8_with_calibration_only_builds_on_10():
    plan = _plan("int8", calibration=Calibration("calibration.npy", 8))
    line = trtexec_command(plan, 10)
    assert "--int8 --fp16 --calib=calibration.cache" in line
    assert trtexec_commands(plan)["11"].startswith("# not buildable")
    with pytest.raises(FeredgeError, match="Q/DQ ONNX"):
        plan.variant(11)


def test_int8_with_qdq_serves_both_majors():
    plan = _plan("int8", qdq_onnx="model.qdq.onnx")
    assert plan.variant(11).onnx == plan.variant(10).onnx == "model.qdq.onnx"
    assert "--int8" in trtexec_command(plan, 10) and "--int8" not in trtexec_command(plan, 11)


def test_int8_without_data_fails_in_one_line():
    with pytest.raises(FeredgeError, match="INT8 needs --calib or a QAT checkpoint"):
        default_variants("int8", "model.onnx")


def test_plan_round_trips_through_the_manifest():
    plan = _plan("int8", calibration=Calibration("calibration.npy", 4))
    data = {**plan.to_dict(), "status": "not-built"}
    again = plan_from_manifest({"tensorrt": data, "files": {}})
    assert again.to_dict() == data and again.variant(10).calibration == Calibration("calibration.npy", 4)


def test_default_plan_for_a_bundle_of_another_target():
    manifest = {"precision": "fp32", "files": {"model.onnx": {"role": "onnx"}, "model.xml": {"role": "openvino_xml"}},
                "input": {"name": "input", "shape": [None, 3, 224, 224], "max_batch": 16}}
    plan = plan_from_manifest(manifest)
    assert plan.input_shape == (3, 224, 224) and plan.profile == BatchProfile(1, 4, 16)
    assert plan.variant(10).flags == () and plan.variant(11).onnx == "model.onnx"
