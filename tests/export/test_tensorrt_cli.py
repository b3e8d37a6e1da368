"""``feredge build`` and the export's TensorRT options, through the command line."""

from __future__ import annotations

import pytest

from feredge.cli import main
from feredge.runtimes.tensorrt.builder import probe_tensorrt

LOCAL_TRT, NO_TRT_REASON = probe_tensorrt()


def test_build_is_a_registered_command(capsys):
    with pytest.raises(SystemExit):
        main(["build", "--help"])
    out = capsys.readouterr().out
    assert "--target" in out and "feredge build" in out


def test_export_offers_int8_and_the_profile_options(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    for option in ("int8", "--min-batch", "--opt-batch", "--workspace-mb"):
        assert option in out


def test_build_prints_the_trtexec_lines_without_tensorrt(default_bundle, capsys):
    assert main(["build", str(default_bundle), "--target", "trt", "--print-trtexec"]) == 0
    out = capsys.readouterr().out
    assert "# TensorRT 10\ntrtexec --onnx=model.onnx" in out and "# TensorRT 11" in out


def test_build_without_tensorrt_fails_in_one_line(default_bundle, capsys):
    if LOCAL_TRT is not None:
        pytest.skip("TensorRT and a GPU are here")
    assert main(["build", str(default_bundle), "--target", "trt"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("feredge: error: cannot build a TensorRT engine: TensorRT is not installed")
    assert "\n" not in err
