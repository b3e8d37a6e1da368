"""Helpers shared by the commands: JSON printing, progress bars, default bundle."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

DEFAULT_BUNDLE = Path("bundles") / "mini_xception-openvino-fp32"


def print_json(data: Any) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def progress(items: Iterable[T], *, total: int | None = None, desc: str = "", enabled: bool = True) -> Iterator[T]:
    """:func:`feredge.progress.bar` over ``items`` (stderr, terminals only, off under ``--quiet``)."""
    from feredge.progress import bar

    yield from bar(items, total=total, desc=desc, enabled=enabled)


def ensure_default_bundle(quiet: bool = False) -> Path:
    """The shipped default model's bundle, exported on first use (needs the torch side)."""
    from feredge.errors import MissingBackendError

    if (DEFAULT_BUNDLE / "manifest.json").is_file():
        return DEFAULT_BUNDLE
    try:
        import torch  # noqa: F401  (the export below needs it; say so in one line rather than deep inside)
    except ImportError:
        raise MissingBackendError(
            "no --bundle given, and the default model is exported on first use, which needs the training side: "
            "pip install 'feredge[train]', or pass --bundle DIR") from None
    from feredge.export.exporter import ExportOptions, export

    if not quiet:
        from feredge.progress import note

        note(f"exporting the default model to {DEFAULT_BUNDLE} (first use)")
    from feredge.logs import third_party_output

    with third_party_output():  # the ONNX exporter prints on stdout, which may be --json output
        export(ExportOptions(target="openvino", output=DEFAULT_BUNDLE))
    return DEFAULT_BUNDLE


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
