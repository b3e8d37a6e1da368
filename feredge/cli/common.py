"""Helpers shared by the commands: JSON printing, progress bars, output flags, tables."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool = True) -> Iterator[T]:
    """:func:`feredge.progress.bar` over ``items`` (stderr, terminals only, off under ``--quiet``)."""
    from feredge.progress import bar

    yield from bar(items, total=total, desc=desc, enabled=enabled)


def add_json_flag(parser: Any, what: str = "results") -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout")


def add_output_flags(parser: Any) -> None:
    """``--quiet`` and ``--verbose``, which every command takes (the CLI adds them to each)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--quiet", "-q", action="store_true",
                       help="no notes or progress bars on stderr; errors, warnings and the results stay")
    group.add_argument("--verbose", "-v", action="store_true",
                       help="show the toolchains' own log lines and warnings (NNCF, ONNX Runtime, OpenVINO, "
                            "ModelOpt, torch, OpenCV) on stderr; by default they are silenced (feredge.logs)")


def format_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> str:
    """A plain fixed-width table; ``columns`` is (key, header). Floats print with 3 significant places."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
        return "-" if value is None else str(value)

    body = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(header), *(len(r[i]) for r in body)) if body else len(header)
              for i, (_, header) in enumerate(columns)]
    lines = ["  ".join(h.ljust(w) for (_, h), w in zip(columns, widths, strict=True))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in body]
    return "\n".join(lines)
