"""The one export that makes the prebuilt default bundle (:mod:`feredge.default_bundle`).

Kept in one place so that ``scripts/build_default_bundle.py`` (which writes the package's copy),
the fallback of :func:`feredge.cli.common.ensure_default_bundle` (an installation without it) and
``tests/test_default_bundle.py`` (which checks the shipped copy against a fresh one) run the same
export: the shipped model, the options ``feredge export`` defaults to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from feredge.default_bundle import SHIPPED_PRECISION, SHIPPED_TARGET
from feredge.export.exporter import ExportOptions, ExportResult, export


def export_shipped(output: Path, *, force: bool = False,
                   progress: Callable[[str], None] | None = None) -> ExportResult:
    """Export the shipped model (its shipped weights) as ``feredge export --target openvino`` does."""
    return export(ExportOptions(target=SHIPPED_TARGET, precision=SHIPPED_PRECISION, output=output, force=force),
                  progress=progress)
