"""feredge.progress: one bar helper (stderr, terminals only, off under --quiet), notes, warnings, result lines."""

from __future__ import annotations

import io
import sys

import pytest

from feredge.progress import bar, echo, is_quiet, note, quiet_mode, warn


class _Terminal(io.StringIO):
    """A stderr that says it is a terminal, as tqdm asks (isatty)."""

    def isatty(self) -> bool:
        return True


def test_bar_is_drawn_on_a_terminal_stderr_and_never_on_stdout(monkeypatch: pytest.MonkeyPatch) -> None:
    terminal, stdout = _Terminal(), io.StringIO()
    monkeypatch.setattr(sys, "stderr", terminal)
    monkeypatch.setattr(sys, "stdout", stdout)
    items = list(bar(range(5), desc="counting", unit="model"))
    assert items == [0, 1, 2, 3, 4]
    assert "counting:" in terminal.getvalue() and "/5 " in terminal.getvalue()  # drawn, then cleared (leave=False)
    assert stdout.getvalue() == ""


def test_bar_is_off_when_stderr_is_not_a_terminal_quiet_or_disabled(monkeypatch: pytest.MonkeyPatch) -> None:
    piped = io.StringIO()  # a log file, CI capture, `2> log`
    monkeypatch.setattr(sys, "stderr", piped)
    assert bar(range(3)).disable and list(bar(range(3), desc="x")) == [0, 1, 2]
    assert piped.getvalue() == ""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert not bar(range(3)).disable
    assert bar(range(3), enabled=False).disable
    with quiet_mode(True):
        quiet_bar = bar(total=4)
        quiet_bar.update(4)  # a disabled bar still takes updates and postfixes
        quiet_bar.set_postfix(faces=2)
        assert quiet_bar.disable
    assert bar(["a", "b"]).total == 2  # the total comes from the iterable when it has a length


def test_quiet_drops_notes_keeps_warnings_and_results(capsys: pytest.CaptureFixture[str]) -> None:
    assert not is_quiet()
    with quiet_mode(True):
        assert is_quiet()
        note("loading data")
        warn("validation accuracy is at chance")
        echo("result line")
    assert not is_quiet()  # restored after the command
    out, err = capsys.readouterr()
    assert out == "result line\n"
    assert err == "feredge: warning: validation accuracy is at chance\n"
    note("loading data")
    assert capsys.readouterr().err == "loading data\n"
