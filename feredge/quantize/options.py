"""INT8 export options, carried on :class:`~feredge.export.exporter.ExportOptions`.

``ExportOptions`` has no INT8 fields, so (like the TensorRT options) the CLI attaches an
:class:`Int8Options` under one attribute name and the targets read it back with defaults.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

ATTRIBUTE = "int8"
PTQ_CHOICES = ("auto", "modelopt", "nncf", "ort")


@dataclass(frozen=True)
class Int8Options:
    calib: Path | str | None = None  # dataset / photo folder / .npy / "reference"
    calib_format: str = "auto"  # auto | images | npy | reference | a feredge.data format (folder, fer2013, ...)
    calib_size: int = 256
    max_drop: float | None = None  # accuracy points on validation data
    ptq: str = "auto"
    overflow_fix: bool | None = None  # 7-bit weights (config.py); None: on for CPU targets, off for TensorRT


def overflow_fix_for(options: Int8Options, target: str) -> bool:
    """CPU runtimes (OpenVINO, ONNX Runtime) may run on x86 without VNNI; TensorRT GPUs never saturate."""
    return options.overflow_fix if options.overflow_fix is not None else target != "tensorrt"


def attach(options: Any, int8: Int8Options) -> None:
    vars(options)[ATTRIBUTE] = int8


def int8_options_of(options: Any) -> Int8Options:
    found = getattr(options, ATTRIBUTE, None)
    if isinstance(found, Int8Options):
        return found
    trt = getattr(options, "tensorrt", None)  # the TensorRT options' --calib, when only those were attached
    return Int8Options(calib=getattr(trt, "calib", None) or getattr(options, "calib", None))
