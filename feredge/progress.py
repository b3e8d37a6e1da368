"""feredge's own console output on stderr: progress bars, notes and warnings, behind one ``--quiet`` switch.

Every long loop (MAC counting, the synthetic set, cropping, epochs, evaluation, benchmark cases,
the INT8 layer search, video frames) shows its bar through :func:`bar`, so every bar has the same
settings: on **stderr** (stdout carries results and JSON lines), drawn only when stderr is a
terminal (tqdm's ``disable=None``: a log file or CI capture gets no carriage-return noise), removed
when done (``leave=False``: the lines that stay are the results), and off under ``--quiet``.

Lines, by what they are:

* :func:`note` — feredge telling what it is doing ("loading data…", per-epoch lines under ``--json``):
  stderr, dropped under ``--quiet``;
* :func:`warn` — a likely problem the run goes on despite (accuracy at chance, fewer calibration
  faces than asked): ``feredge: warning: ...`` on stderr, kept under ``--quiet``, as errors are;
* :func:`echo` — a result line on stdout, written so that a bar on the same terminal is cleared
  and redrawn around it instead of being torn.

``--quiet`` never hides errors nor what was asked for (results, ``--json``, files). The switch
is process state set by the CLI for one command (:func:`quiet_mode`); library callers that never
touch it keep today's behaviour. Device side: no torch, tqdm imported when a bar or line is made.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

_state = {"quiet": False}


def is_quiet() -> bool:
    """True while a command runs with ``--quiet``."""
    return _state["quiet"]


@contextlib.contextmanager
def quiet_mode(quiet: bool) -> Iterator[None]:
    """Notes and bars off (``quiet``) or on for the block; the previous mode is restored after."""
    previous = _state["quiet"]
    _state["quiet"] = bool(quiet)
    try:
        yield
    finally:
        _state["quiet"] = previous


def bar(iterable: Iterable[T] | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
        enabled: bool = True, leave: bool = False) -> Any:
    """A tqdm bar on stderr, drawn only on a terminal, never under ``--quiet`` or when not ``enabled``.

    Returns the tqdm object (iterate it, or ``update()`` it when ``iterable`` is None); a disabled
    bar still iterates and accepts ``update``/``set_postfix``, so callers never branch on it.
    """
    from tqdm import tqdm

    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=leave, dynamic_ncols=True,
                disable=None if enabled and not _state["quiet"] else True)


def note(text: str) -> None:
    """A line about what feredge is doing, on stderr; nothing under ``--quiet``."""
    if not _state["quiet"]:
        _write(text, sys.stderr)


def warn(text: str) -> None:
    """``feredge: warning: TEXT`` on stderr, also under ``--quiet`` (a problem, not chatter)."""
    _write(f"feredge: warning: {text}", sys.stderr)


def echo(text: str) -> None:
    """A result line on stdout, around any bar on the terminal (tqdm clears and redraws it)."""
    _write(text, sys.stdout)


def _write(text: str, stream: Any) -> None:
    from tqdm import tqdm

    tqdm.write(text, file=stream)
