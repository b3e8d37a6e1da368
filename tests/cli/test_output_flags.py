"""--quiet and --verbose on every command; small input defects answered with one clear line."""

from __future__ import annotations

from pathlib import Path

import pytest

from feredge.cli import COMMANDS, main


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.NAME)
def test_every_command_takes_quiet_and_verbose(command, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main([command.NAME, "--help"])
    out = capsys.readouterr().out
    assert "--quiet" in out and "--verbose" in out


def test_quiet_and_verbose_together_are_refused_when_parsed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["models", "--quiet", "--verbose"])
    assert exc.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_quiet_models_prints_the_table_and_nothing_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["models", "mini_xception", "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "mini_xception" in out and "MACs" in out
    assert err == ""


def test_synth_with_too_few_per_class_fills_every_split_and_says_so(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "synth"
    assert main(["data", "synth", "--output", str(out), "--per-class", "5", "--size", "32", "--json", "-q"]) == 0
    captured = capsys.readouterr()
    warning = [line for line in captured.err.splitlines() if line]
    assert warning == ["feredge: warning: --per-class 5: 80 % / 10 % / 10 % (train/val/test) would leave a split "
                       "empty; writing 3 train / 1 val / 1 test per class"]  # a warning, so --quiet keeps it
    for split, per_class in {"train": 3, "val": 1, "test": 1}.items():
        folders = sorted((out / split).iterdir())
        assert len(folders) == 7 and all(len(list(f.iterdir())) == per_class for f in folders), split
    assert '"val": 7' in captured.out


def test_synth_with_enough_per_class_says_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["data", "synth", "--output", str(tmp_path / "s"), "--per-class", "10", "--size", "32"]) == 0
    out, err = capsys.readouterr()
    assert "train 56, val 7, test 7" in out and err == ""  # no bar off a terminal, no warning
