"""INT8 export options: the ``int8`` field of :class:`~feredge.export.context.ExportOptions`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from feredge.errors import FeredgeError


@dataclass(frozen=True)
class Int8Options:
    calib: Path | str | None = None  # dataset / photo folder / .npy / "reference"
    calib_format: str = "auto"  # auto | images | npy | reference | a feredge.data format (folder, fer2013, ...)
    calib_size: int = 256
    max_drop: float | None = None  # accuracy points on validation data
    min_agreement: float | None = None  # percent top-1 agreement with FP32 on the gate faces
    ptq: str = "auto"
    overflow_fix: bool | None = None  # 7-bit weights (config.py); None: on for CPU targets, off for TensorRT

    def __post_init__(self) -> None:
        # checked here, when the options are made, so a bad value fails before any quantization work
        if self.min_agreement is not None and not 0 < self.min_agreement <= 100:
            raise FeredgeError(f"--min-agreement must be a percentage in (0, 100], got {self.min_agreement}")


def overflow_fix_for(options: Int8Options, default: bool) -> bool:
    """``--[no-]overflow-fix`` if given, else the export target's default (on for CPUs, off for TensorRT)."""
    return options.overflow_fix if options.overflow_fix is not None else default


def int8_options_of(options: Any) -> Int8Options:
    if options.int8 is not None:
        return options.int8
    trt = options.tensorrt  # the TensorRT options' --calib, when only those were given
    return Int8Options(calib=trt.calib if trt is not None else None)
