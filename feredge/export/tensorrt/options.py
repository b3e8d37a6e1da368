"""TensorRT-specific export options, carried on :class:`~feredge.export.exporter.ExportOptions`.

``ExportOptions`` has no TensorRT fields yet, so the CLI attaches a :class:`TrtExportOptions`
under one attribute name and the target reads it back with defaults; when ``ExportOptions``
grows a ``tensorrt`` field this keeps working unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ATTRIBUTE = "tensorrt"
DEFAULT_WORKSPACE_MB = 1024


@dataclass(frozen=True)
class TrtExportOptions:
    min_batch: int | None = None  # None: 1
    opt_batch: int | None = None  # None: 4 clamped to [min, max]
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    calib: Path | str | None = None  # calibration data for INT8 (.npy NCHW batch, or "reference")


def attach(options: Any, trt: TrtExportOptions) -> None:
    vars(options)[ATTRIBUTE] = trt


def trt_options_of(options: Any) -> TrtExportOptions:
    found = getattr(options, ATTRIBUTE, None)
    if isinstance(found, TrtExportOptions):
        return found
    calib = getattr(options, "calib", None)  # a shared --calib option, if the exporter grows one
    return TrtExportOptions(calib=calib)
