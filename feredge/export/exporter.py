"""The export driver: model source → staged bundle with verified artifacts and a manifest.

Steps shared by every target: the deploy graph's weights (safetensors, so the torch runtime and
later rebuilds can use the bundle) and an fp32 ONNX verified against PyTorch on real faces. The
target then adds its own artifacts: its back-end row's build (:attr:`feredge.backends.ExportTarget.build`).
Every numerical check is recorded in the manifest's ``parity`` list; one that fails aborts the export, and because the
bundle is staged, nothing already at the destination is touched. Before the staged bundle
replaces the destination it is loaded the way a device loads it (:meth:`Bundle.load`): a target
that wrote a file it did not list (OpenVINO's ``model.bin``, say) fails the export instead of
shipping a bundle every device refuses.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

from feredge.backends import resolve_target
from feredge.bundle import (
    BUNDLE_SCHEMA_VERSION,
    CLASSIFIER,
    Bundle,
    BundleError,
    check_destination,
    file_entry,
    file_precision,
    staged_bundle,
    write_manifest,
)
from feredge.calibration.reference import reference_faces
from feredge.default_bundle import cache_bundle_path
from feredge.errors import FeredgeError
from feredge.export.context import ExportContext, ExportOptions
from feredge.export.detector_network import add_detector_network
from feredge.export.onnx_export import export_onnx, torch_logits
from feredge.export.source import resolve_source
from feredge.version import __version__

__all__ = ["ExportContext", "ExportOptions", "ExportResult", "export"]


@dataclass
class ExportResult:
    bundle: Path
    manifest: dict[str, Any]
    messages: list[str]


TOOLCHAIN_PACKAGES = ("torch", "onnx", "onnxruntime", "openvino", "opencv-python-headless", "numpy")


def toolchain_versions() -> dict[str, str]:
    versions = {"feredge": __version__, "python": platform.python_version()}
    for package in TOOLCHAIN_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def default_output(target: str, model: str, precision: str) -> Path:
    """Where an export without ``--output`` goes: the per-user cache (``$XDG_CACHE_HOME/feredge/VERSION/
    MODEL-TARGET-PRECISION``), never the working directory."""
    return cache_bundle_path(model, target, precision)


def export(options: ExportOptions, progress: Callable[[str], None] | None = None) -> ExportResult:
    from safetensors.torch import save_file

    from feredge.models import deploy_graph

    step = progress or (lambda _text: None)
    target = resolve_target(options.target)
    if options.precision not in target.precisions:
        raise FeredgeError(f"target {target.name} supports precisions {', '.join(target.precisions)}, "
                           f"not {options.precision!r}")
    if not 1 <= options.max_batch <= 4096:
        raise FeredgeError(f"--max-batch must be between 1 and 4096, got {options.max_batch}")
    if options.output is not None:  # a taken destination fails before the model loads, not after the export
        check_destination(options.output, overwrite=options.force)
    step("loading model")
    source = resolve_source(options.model, options.checkpoint)
    output = options.output or default_output(target.name, source.name, options.precision)
    graph = deploy_graph(source.module)
    step("preparing reference faces")
    reference = reference_faces(source.spec)
    expected = torch_logits(graph, reference.batch)
    if expected.ndim != 2 or expected.shape[1] != len(source.labels):
        width = expected.shape[1] if expected.ndim == 2 else f"shape {expected.shape[1:]}"
        raise FeredgeError(f"{source.name}: the model outputs {width} values per face but has "
                           f"{len(source.labels)} labels; fix the model's labels or its classifier")
    with staged_bundle(output, overwrite=options.force) as staging:
        ctx = ExportContext(source, options, staging, reference, expected, target=target)
        save_file({k: v.contiguous() for k, v in source.module.state_dict().items()},
                  str(staging / "weights.safetensors"))
        ctx.add_file("weights.safetensors", "weights")
        step("exporting ONNX")
        onnx_report = export_onnx(graph, source.spec.input_shape, staging / "model.onnx", reference.batch,
                                  max_batch=options.max_batch, opset=options.opset)
        ctx.add_file("model.onnx", "onnx")
        ctx.parity.append(onnx_report.parity)
        step(f"building {target.name} artifacts")
        try:
            target.builder()(ctx)
        finally:
            ctx.remove_scratch()
        if options.detector_network:
            step(f"adding the {options.detector_network} detector network")
            add_detector_network(ctx, options.detector_network)
        manifest = {
            "schema_version": BUNDLE_SCHEMA_VERSION,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "model": {"name": source.name, "kwargs": source.kwargs, "origin": source.origin},
            "labels": list(source.labels),
            "spec": source.spec.to_dict(),
            "precision": options.precision,
            "target": target.name,
            "input": {"name": "input", "shape": [None, *source.spec.input_shape], "dtype": "float32",
                      "max_batch": options.max_batch},
            "output": {"name": "logits", "shape": [None, len(source.labels)]},
            "onnx": {k: v for k, v in onnx_report.to_dict().items() if k != "parity"},
            "parity": {"reference": reference.describe(), "results": [p.to_dict() for p in ctx.parity]},
            "toolchain": toolchain_versions(),
            "networks": {CLASSIFIER: {"kind": "classifier", "runtimes": []}, **ctx.networks},
            "files": {name: file_entry(staging / name, role, precision=ctx.file_precisions.get(name) or file_precision(
                          role, target.name, options.precision))
                      for name, role in ctx.files.items()},
            **ctx.manifest_extra,
        }
        write_manifest(staging, manifest)
        try:  # what a device will check: every file listed (model.bin too) and hashed, sections agreeing
            Bundle.load(staging)
        except BundleError as exc:
            raise FeredgeError(f"export wrote an inconsistent bundle (a feredge bug; nothing was replaced): "
                               f"{exc}") from None
    return ExportResult(Path(output), manifest, ctx.messages)
