"""feredge eval on the wrong kind of folder: say which file to pass, in one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from feredge.cli import main


def _one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("feredge: error:") and "\n" not in err
    return err


def test_a_run_folder_names_its_checkpoints(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "x"
    run.mkdir(parents=True)
    for name in ("best.safetensors", "best.json", "last.safetensors", "last.json", "trainer_state.safetensors",
                 "history.json"):
        (run / name).write_bytes(b"{}")
    err = _one_error(capsys, ["eval", str(run), "--data", str(tmp_path / "never-read")])
    assert "no manifest.json" in err and f"e.g. {run / 'best.safetensors'}" in err
    assert "found: best.safetensors, last.safetensors)" in err  # the trainer's own state is not a checkpoint


def test_a_folder_of_pickles_or_nothing_says_what_feredge_reads(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "pickles").mkdir()
    (tmp_path / "pickles" / "model.pt").write_bytes(b"\x80")
    err = _one_error(capsys, ["eval", str(tmp_path / "pickles"), "--data", "d"])
    assert "found model.pt" in err and ".safetensors checkpoint" in err
    (tmp_path / "empty").mkdir()
    err = _one_error(capsys, ["eval", str(tmp_path / "empty"), "--data", "d"])
    assert "not a bundle (no manifest.json) and holds no checkpoint" in err
