"""The export side of TensorRT: the INT8 hook (where a Q/DQ ONNX comes from) and the export options."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from feredge.export.tensorrt.int8 import INT8_NEEDS, Int8Unavailable, int8_onnx_for
from feredge.export.tensorrt.options import TrtExportOptions, trt_options_of
from feredge.runtimes.tensorrt.plan import DEFAULT_WORKSPACE_MB


def test_int8_hook_raises_without_calibration_and_takes_the_checkpoints_qdq_onnx(tmp_path):
    ctx = SimpleNamespace(source=SimpleNamespace(extra={}), options=SimpleNamespace(int8=None, tensorrt=None))
    with pytest.raises(Int8Unavailable) as info:
        int8_onnx_for(ctx)  # type: ignore[arg-type]
    assert str(info.value) == INT8_NEEDS and "--calib" in INT8_NEEDS and "\n" not in INT8_NEEDS
    qdq = tmp_path / "qat.onnx"
    qdq.write_bytes(b"")
    ckpt = SimpleNamespace(source=SimpleNamespace(extra={"qdq_onnx": str(qdq)}),
                           options=SimpleNamespace(int8=None, tensorrt=None))
    assert int8_onnx_for(ckpt) == qdq  # type: ignore[arg-type]


def test_trt_options_ride_on_export_options():
    from feredge.export.exporter import ExportOptions

    options = ExportOptions(target="trt")
    assert trt_options_of(options) == TrtExportOptions()
    options.tensorrt = TrtExportOptions(min_batch=2, opt_batch=8, workspace_mb=256)
    assert trt_options_of(options).opt_batch == 8
    assert TrtExportOptions().workspace_mb == DEFAULT_WORKSPACE_MB == 1024  # one default, the device plan's
