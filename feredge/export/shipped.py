"""The one export that makes the prebuilt default bundle (:mod:`feredge.default_bundle`).

Kept in one place so that ``scripts/build_default_bundle.py`` (which writes the package's copy),
the fallback of :func:`feredge.default_bundle.ensure_default_bundle` (:func:`export_into_cache`, for an
installation without it) and ``tests/test_default_bundle.py`` (which checks the shipped copy against a
fresh one) run the same export: the shipped model, the options ``feredge export`` defaults to.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from feredge.bundle import MANIFEST
from feredge.default_bundle import SHIPPED_PRECISION, SHIPPED_TARGET, cache_bundle_path
from feredge.export.exporter import ExportOptions, ExportResult, export
from feredge.logs import third_party_output
from feredge.models import DEFAULT_MODEL
from feredge.progress import note


def export_shipped(output: Path, *, force: bool = False,
                   progress: Callable[[str], None] | None = None) -> ExportResult:
    """Export the shipped model (its shipped weights) as ``feredge export --target openvino`` does."""
    return export(ExportOptions(target=SHIPPED_TARGET, precision=SHIPPED_PRECISION, output=output, force=force),
                  progress=progress)


def export_into_cache(*, quiet: bool = False) -> Path:
    """The shipped model's bundle in the per-user cache, exported once (an installation without the
    prebuilt bundle: :func:`feredge.default_bundle.ensure_default_bundle`), then reused."""
    cached = cache_bundle_path(DEFAULT_MODEL, SHIPPED_TARGET, SHIPPED_PRECISION)
    if (cached / MANIFEST).is_file():
        return cached
    if not quiet:
        note(f"exporting the default model to {cached} (the prebuilt bundle is missing)")
    with third_party_output():  # the ONNX exporter prints on stdout, which may be --json output
        export_shipped(cached)
    return cached
