"""What an export target is given: the options and the export in progress.

Apart from :mod:`feredge.export.exporter` (the driver, which runs the targets' builds) so that the
build functions and the INT8 step can name these types without an import cycle. The target itself is
its back-end row's :class:`~feredge.backends.ExportTarget`.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feredge.backends import ExportTarget
from feredge.errors import FeredgeError

if TYPE_CHECKING:  # types only: importing the context (a target's build does) imports neither torch nor them
    import numpy as np

    from feredge.calibration.reference import ReferenceSet
    from feredge.export.deepstream_options import DeepStreamOptions
    from feredge.export.source import ModelSource
    from feredge.export.tensorrt.options import TrtExportOptions
    from feredge.parity import ParityResult
    from feredge.quantize.options import Int8Options

DEFAULT_OPSET = 18  # the ONNX opset every export writes (feredge.export.onnx_export)


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
    deepstream: DeepStreamOptions | None = None  # streams and URIs for --target deepstream
    #: the BlazeFace variant whose network goes into the bundle as its detector network (None: none);
    #: the bundle's default detector (spec.detector.name) is not changed by it
    detector_network: str | None = "blazeface"


@dataclass
class ExportContext:
    source: ModelSource
    options: ExportOptions
    staging: Path
    reference: ReferenceSet
    expected: np.ndarray
    files: dict[str, str] = field(default_factory=dict)  # file name → role
    file_precisions: dict[str, str] = field(default_factory=dict)  # file name → precision, where not the role's
    networks: dict[str, dict[str, Any]] = field(default_factory=dict)  # role → the manifest's networks entry
    parity: list[ParityResult] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)
    manifest_extra: dict[str, Any] = field(default_factory=dict)
    #: the target being built: its back-end row's export facts (INT8: feredge.export.int8; other networks'
    #: roles: feredge.export.detector_network)
    target: ExportTarget | None = None
    state: dict[str, Any] = field(default_factory=dict)  # a target's own working data (INT8: its gate faces)
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

    def add_file(self, name: str, role: str, precision: str | None = None) -> None:
        self.files[name] = role
        if precision is not None:
            self.file_precisions[name] = precision

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
