"""TensorRT-specific export options: the ``tensorrt`` field of :class:`~feredge.export.context.ExportOptions`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feredge.runtimes.tensorrt.plan import DEFAULT_WORKSPACE_MB


@dataclass(frozen=True)
class TrtExportOptions:
    min_batch: int | None = None  # None: 1
    opt_batch: int | None = None  # None: 4 clamped to [min, max]
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    calib: Path | str | None = None  # calibration data for INT8 (.npy NCHW batch, or "reference")


def trt_options_of(options: Any) -> TrtExportOptions:
    """The export's TensorRT options, defaults when none were given (the INT8 --calib is shared)."""
    if options.tensorrt is not None:
        return options.tensorrt
    return TrtExportOptions(calib=options.int8.calib if options.int8 is not None else None)
