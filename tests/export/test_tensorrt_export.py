"""``feredge export --target trt``: bundle contents, checks and plan, on a machine without TensorRT.

One fp16 export of the default model is shared by the module (about 15 s). Where TensorRT and a
GPU are present the export also builds the engine; the ``tensorrt``-marked test checks that.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from feredge.bundle import Bundle
from feredge.errors import FeredgeError, MissingBackendError
from feredge.runtimes.tensorrt.builder import probe_tensorrt

LOCAL_TRT, NO_TRT_REASON = probe_tensorrt()


@pytest.fixture(scope="module")
def fp16_export(tmp_path_factory: pytest.TempPathFactory):
    from feredge.export.exporter import ExportOptions, export
    from feredge.export.tensorrt.options import TrtExportOptions

    options = ExportOptions(target="trt", precision="fp16", output=tmp_path_factory.mktemp("trt") / "fp16",
                            max_batch=32, tensorrt=TrtExportOptions(opt_batch=2, workspace_mb=256))
    return export(options)


def test_bundle_carries_both_tensorrt_ready_onnx_files(fp16_export):
    bundle = Bundle.load(fp16_export.bundle)  # verifies every sha256
    roles = bundle.roles()
    assert roles["onnx"] == "model.onnx" and roles["trt_onnx"] == "model.fp16.onnx"
    section = bundle.manifest["tensorrt"]
    assert section["variants"]["10"] == {"onnx": "model.onnx", "flags": ["FP16"], "strongly_typed": False}
    assert section["variants"]["11"]["onnx"] == "model.fp16.onnx"
    assert section["profile"] == {"min": 1, "opt": 2, "max": 32}
    assert section["shapes"]["max"] == [32, 1, 64, 64] and section["workspace_mb"] == 256
    assert section["onnx_check"]["passed"] and section["onnx_check"]["checked"] == ["model.fp16.onnx", "model.onnx"]


def test_fp16_onnx_is_fp16_inside_with_float32_io(fp16_export):
    import onnx

    model = onnx.load(str(fp16_export.bundle / "model.fp16.onnx"))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)


def test_fp16_parity_in_onnxruntime_is_recorded(fp16_export):
    results = {r["runtime"]: r for r in fp16_export.manifest["parity"]["results"]}
    fp16 = results["onnxruntime/trt-fp16"]
    assert fp16["precision"] == "fp16" and fp16["passed"]
    assert fp16["softmax_max_abs"] <= 1e-2 and fp16["top1_agreement"] >= 0.995 and fp16["samples"] >= 32
    print(f"fp16 ONNX vs PyTorch: max|Δlogit| {fp16['max_abs']:.2e}, softmax {fp16['softmax_max_abs']:.2e}, "
          f"top-1 {fp16['top1_agreement']:.1%} on {fp16['samples']} faces")


def test_static_checks_pass_on_the_bundle(fp16_export):
    from feredge.export.trt_onnx_check import check_onnx

    for name in ("model.onnx", "model.fp16.onnx"):
        assert check_onnx(fp16_export.bundle / name) == []


def test_trtexec_lines_are_recorded(fp16_export):
    lines = fp16_export.manifest["tensorrt"]["trtexec"]
    assert "--fp16" in lines["10"] and "--optShapes=input:2x1x64x64" in lines["10"]
    assert lines["11"].startswith("trtexec --onnx=model.fp16.onnx") and "--fp16" not in lines["11"]


def test_without_tensorrt_the_export_says_so_in_one_line(fp16_export):
    if LOCAL_TRT is not None:
        pytest.skip("TensorRT and a GPU are here: the engine was built at export")
    section = fp16_export.manifest["tensorrt"]
    assert section["status"] == "not-built" and section["reason"] == NO_TRT_REASON
    notes = [m for m in fp16_export.messages if "built on the device" in m]
    assert len(notes) == 1 and "\n" not in notes[0]


def test_building_without_tensorrt_is_a_clear_error(fp16_export):
    if LOCAL_TRT is not None:
        pytest.skip("TensorRT is installed here")
    from feredge.runtimes.tensorrt.builder import build_into_bundle

    with pytest.raises(MissingBackendError, match=r"cannot build a TensorRT engine: .*not installed"):
        build_into_bundle(Bundle.load(fp16_export.bundle))


@pytest.mark.tensorrt
def test_engine_is_built_at_export_where_tensorrt_runs(fp16_export):
    if LOCAL_TRT is None:
        pytest.skip(f"needs TensorRT and a GPU: {NO_TRT_REASON}")
    bundle = Bundle.load(fp16_export.bundle)
    assert bundle.manifest["tensorrt"]["status"] == "built"
    assert bundle.path("trt_engine").name == "model.engine"


def _fake_ctx(staging: Path, fp16_export, precision: str, calib: object = None) -> SimpleNamespace:
    from feredge.export.tensorrt.options import TrtExportOptions

    shutil.copyfile(fp16_export.bundle / "model.onnx", staging / "model.onnx")
    options = SimpleNamespace(precision=precision, max_batch=16, int8=None,
                              tensorrt=TrtExportOptions(calib=calib))  # type: ignore[arg-type]
    reference = SimpleNamespace(batch=np.random.default_rng(0).random((20, 1, 64, 64), dtype=np.float32))
    ctx = SimpleNamespace(source=SimpleNamespace(spec=SimpleNamespace(input_shape=(1, 64, 64)), extra={}),
                          options=options, staging=staging, reference=reference, files={"model.onnx": "onnx"},
                          manifest_extra={}, messages=[])
    ctx.add_file = lambda name, role: ctx.files.__setitem__(name, role)
    ctx.message = ctx.messages.append
    return ctx


def test_int8_without_calibration_or_qat_fails_in_one_line(tmp_path, fp16_export):
    from feredge.export.tensorrt.export_target import build_tensorrt

    with pytest.raises(FeredgeError, match=r"INT8 needs --calib .* or a QAT checkpoint") as info:
        build_tensorrt(_fake_ctx(tmp_path, fp16_export, "int8"))  # type: ignore[arg-type]
    assert "\n" not in str(info.value)


def test_int8_with_calibration_data_plans_an_entropy_calibrated_tensorrt_10_build(tmp_path, fp16_export,
                                                                                   monkeypatch):
    from feredge.export.int8 import Int8NeedsCalibration
    from feredge.export.tensorrt.export_target import build_tensorrt

    def no_qdq(*_args: object, **_kwargs: object) -> None:
        raise Int8NeedsCalibration("no PTQ backend")  # the fallback: no Q/DQ ONNX, calibration faces only

    monkeypatch.setattr("feredge.export.int8.int8_onnx", no_qdq)

    ctx = _fake_ctx(tmp_path, fp16_export, "int8", calib="reference")
    build_tensorrt(ctx)  # type: ignore[arg-type]
    section = ctx.manifest_extra["tensorrt"]
    assert ctx.files["calibration.npy"] == "trt_calibration_data"
    assert np.load(tmp_path / "calibration.npy").shape == (20, 1, 64, 64)
    assert section["variants"]["10"]["calibration"] == {"data": "calibration.npy", "batch_size": 8,
                                                        "algorithm": "entropy2"}
    assert "--int8" in section["trtexec"]["10"] and "--calib=calibration.cache" in section["trtexec"]["10"]
    assert section["trtexec"]["11"].startswith("# not buildable") and "Q/DQ" in section["variants"]["11"]["unsupported"]
    json.dumps(section)  # the manifest section is plain JSON
