"""Argument types that validate when the command line is parsed, before any model work.

A bad value (``--batch-size 0``, ``--detect-width -5``, ``--camera -1``, an output file that is a
directory) is reported by argparse as ``feredge CMD: error: argument --x: ...`` on one line, so a
typo never costs an export or a traceback halfway through a run.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _number(kind: type, text: str) -> float:
    try:
        value = kind(text)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
    if kind is float and value != value:  # NaN compares false with every bound
        raise argparse.ArgumentTypeError("expected a number, got nan")
    return value


def int_at_least(low: int, high: int | None = None) -> Callable[[str], int]:
    """An integer ≥ ``low`` (and ≤ ``high`` when given)."""
    def parse(text: str) -> int:
        value = int(_number(int, text))
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    parse.__name__ = f"int≥{low}" if high is None else f"int in [{low}, {high}]"
    return parse


def float_in(low: float, high: float = float("inf"), *, low_open: bool = True, high_open: bool = False
             ) -> Callable[[str], float]:
    """A float in the interval; ``low_open``/``high_open`` exclude the ends."""
    left, right = "(" if low_open else "[", ")" if high_open else "]"
    interval = f"{left}{low:g}, {high:g}{right}" if high != float("inf") else f"{left}{low:g}, ∞)"

    def parse(text: str) -> float:
        value = float(_number(float, text))
        below = value <= low if low_open else value < low
        above = value >= high if high_open else value > high
        if below or above or (value == float("inf") and high == float("inf")):
            raise argparse.ArgumentTypeError(f"must be in {interval}, got {text}")
        return value

    parse.__name__ = f"float in {interval}"
    return parse


positive_int = int_at_least(1)
nonnegative_int = int_at_least(0)
positive_float = float_in(0.0)
nonnegative_float = float_in(0.0, low_open=False)
unit_interval = float_in(0.0, 1.0)  # (0, 1]


def output_file(text: str) -> Path:
    """A path to write a file at: not an existing directory, and no parent that is a file."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a directory; give a file path")
    _parents_are_directories(path)
    return path


def output_dir(text: str) -> Path:
    """A directory to write into (created if missing): not an existing file, nor under one."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} exists and is not a directory; give a directory")
    _parents_are_directories(path)
    return path


def _parents_are_directories(path: Path) -> None:
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{parent} is a file, not a directory")
            return


class OneLineParser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage stays in ``--help``); exit status 2, as argparse's.

    ``epilog_factory``: text appended to the epilog when help is shown, computed then and not when
    the parser is built (``feredge train``'s per-model defaults come from the model registry, which
    needs torch; building the parser must not).
    """

    def __init__(self, *args: Any, epilog_factory: Callable[[], str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._epilog_factory = epilog_factory

    def format_help(self) -> str:
        if self._epilog_factory is not None:
            extra, self._epilog_factory = self._epilog_factory(), None
            self.epilog = f"{self.epilog}\n\n{extra}" if self.epilog else extra
        return super().format_help()

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"feredge: error: {message} (see '{self.prog} --help')\n")
