"""The export driver: model source → staged bundle with verified artifacts and a manifest.

Steps shared by every target: the deploy graph's weights (safetensors, so the torch runtime and
later rebuilds can use the bundle) and an fp32 ONNX verified against PyTorch on real faces. The
target then adds its own artifacts (:mod:`feredge.export.targets`). Every numerical check is
recorded in the manifest's ``parity`` list; one that fails aborts the export, and because the
bundle is staged, nothing already at the destination is touched. Before the staged bundle
replaces the destination it is loaded the way a device loads it (:meth:`Bundle.load`): a target
that wrote a file it did not list (OpenVINO's ``model.bin``, say) fails the export instead of
shipping a bundle every device refuses.
"""

from __future__ import annotations

import platform
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from feredge import __version__
from feredge.bundle import (
    BUNDLE_SCHEMA_VERSION,
    Bundle,
    BundleError,
    file_entry,
    file_precision,
    staged_bundle,
    write_manifest,
)
from feredge.calibration.reference import ReferenceSet, reference_faces
from feredge.errors import FeredgeError
from feredge.export.onnx_export import DEFAULT_OPSET, export_onnx, torch_logits
from feredge.export.source import ModelSource, resolve_source
from feredge.export.targets import resolve_target
from feredge.export.tensorrt.options import TrtExportOptions
from feredge.parity import ParityResult
from feredge.quantize.options import Int8Options


@dataclass
class ExportOptions:
    target: str = "openvino"
    precision: str = "fp32"
    output: Path | None = None
    model: str | None = None
    checkpoint: Path | None = None
    max_batch: int = 64
    opset: int = DEFAULT_OPSET
    force: bool = False
    int8: Int8Options | None = None  # calibration and PTQ choices for --precision int8
    tensorrt: TrtExportOptions | None = None  # batch profile and workspace for --target trt


@dataclass
class ExportContext:
    source: ModelSource
    options: ExportOptions
    staging: Path
    reference: ReferenceSet
    expected: np.ndarray
    files: dict[str, str] = field(default_factory=dict)  # file name → role
    parity: list[ParityResult] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    manifest_extra: dict[str, Any] = field(default_factory=dict)
    gate_faces: Any = None  # INT8's in-domain gate faces (feredge.quantize.int8.GateFaces), once built
    scratch_dirs: list[Path] = field(default_factory=list)

    def scratch(self, prefix: str) -> Path:
        """A temporary directory for intermediate artifacts, removed as soon as the target is built
        (:meth:`remove_scratch`), so many exports in one process (the benchmark matrix) do not pile up."""
        path = Path(tempfile.mkdtemp(prefix=prefix))
        self.scratch_dirs.append(path)
        return path

    def remove_scratch(self) -> None:
        while self.scratch_dirs:
            shutil.rmtree(self.scratch_dirs.pop(), ignore_errors=True)

    def add_file(self, name: str, role: str) -> None:
        self.files[name] = role

    def message(self, text: str) -> None:
        self.messages.append(text)

    def record_parity(self, result: ParityResult) -> None:
        """Keep ``result`` for the manifest; a failed gate aborts the export, a failed information check is said."""
        self.parity.append(result)
        if result.passed:
            return
        if result.gate:
            where = "" if result.faces == "reference" else f" on {result.faces}"
            raise FeredgeError(f"{result.runtime} {result.precision} parity failed{where}: {result.reason}")
        self.message(f"{result.runtime} {result.precision} on {result.faces} faces (information, not the gate): "
                     f"{result.reason}")


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
    return Path("bundles") / f"{model}-{target}-{precision}"


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
        ctx = ExportContext(source, options, staging, reference, expected)
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
            target.build(ctx)
        finally:
            ctx.remove_scratch()
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
            "files": {name: file_entry(staging / name, role, precision=file_precision(role, target.name,
                                                                                      options.precision))
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
