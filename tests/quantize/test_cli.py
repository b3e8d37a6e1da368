"""``feredge export --precision int8`` and ``feredge qat`` fail in one line when they cannot work."""

from __future__ import annotations

from pathlib import Path

import pytest

from feredge.checkpoint import CheckpointMeta, save_checkpoint
from feredge.cli import main
from feredge.models import create_model, get_entry


def _one_line_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # refused when parsed (argparse exits)
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("feredge: error:") and "\n" not in err and "Traceback" not in err
    return err


def test_int8_without_calib_on_a_float_checkpoint(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    entry = get_entry("mini_xception")
    ckpt = save_checkpoint(tmp_path / "fp32", create_model("mini_xception").state_dict(),
                           CheckpointMeta("mini_xception", {}, entry.spec, entry.labels))
    for target in ("openvino", "onnx"):
        err = _one_line_error(capsys, ["export", "--target", target, "--precision", "int8", "--checkpoint", str(ckpt),
                                       "-o", str(tmp_path / target)])
        assert "--calib" in err and "QAT" in err
    assert _one_line_error(capsys, ["export", "--precision", "int8", "--max-drop", "1", "-o", str(tmp_path / "x")])
    assert not (tmp_path / "openvino").exists()


def test_qat_errors(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    err = _one_line_error(capsys, ["qat", str(tmp_path / "none.safetensors"), "--data", str(tmp_path)])
    assert "not found" in err


def test_qat_is_a_command() -> None:
    from feredge.cli import COMMANDS

    assert "qat" in {cmd.NAME for cmd in COMMANDS}


@pytest.mark.parametrize("value", ["0", "150"])
def test_min_agreement_outside_a_percentage_fails_before_any_work(capsys: pytest.CaptureFixture[str],
                                                                   tmp_path: Path, value: str) -> None:
    err = _one_line_error(capsys, ["export", "--target", "onnx", "--precision", "int8", "--calib", "reference",
                                   "--min-agreement", value, "-o", str(tmp_path / "b")])
    assert "argument --min-agreement: must be in (0, 100]" in err
    assert not (tmp_path / "b").exists()


def test_qat_min_agreement_outside_a_percentage_fails_before_any_work(capsys: pytest.CaptureFixture[str],
                                                                      tmp_path: Path) -> None:
    err = _one_line_error(capsys, ["qat", str(tmp_path / "none.safetensors"), "--data", str(tmp_path),
                                   "--min-agreement", "150", "--out", str(tmp_path / "run")])
    assert "--min-agreement must be a percentage in (0, 100]" in err  # before the missing checkpoint is noticed
    assert not (tmp_path / "run").exists()
