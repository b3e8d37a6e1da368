"""Where an INT8 export gets its quantization: the hook the QAT/PTQ code plugs into.

TensorRT 11 only accepts INT8 as a Q/DQ ONNX; TensorRT 10 also accepts an fp32 ONNX with a
calibration cache from an entropy calibrator. :func:`int8_onnx_for` asks
:func:`feredge.export.int8.int8_onnx` (QAT checkpoint, else PTQ from ``--calib``) for a Q/DQ ONNX,
then a checkpoint's ``qdq_onnx`` metadata entry. The file lives in the export's scratch directory:
the target copies it into the bundle.
Without a Q/DQ ONNX, :func:`calibration_for` says whether calibration data was given (TensorRT
10 only); with neither, the export fails with :data:`INT8_NEEDS`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from feredge.errors import FeredgeError
from feredge.export.tensorrt.options import trt_options_of

if TYPE_CHECKING:
    from feredge.export.context import ExportContext

INT8_NEEDS = ("INT8 needs --calib (calibration faces) or a QAT checkpoint (--checkpoint with a Q/DQ ONNX); "
              "none was given")

class Int8Unavailable(FeredgeError):
    """No Q/DQ ONNX and no calibration data for an INT8 export."""


def _from_checkpoint(ctx: ExportContext) -> Path | None:
    found = ctx.source.extra.get("qdq_onnx")
    if not found:
        return None
    path = Path(found)
    if not path.is_file():
        raise FeredgeError(f"the checkpoint's Q/DQ ONNX {path} does not exist")
    return path


def int8_onnx_for(ctx: ExportContext) -> Path:
    """A Q/DQ ONNX for ``ctx``'s model; raises :class:`Int8Unavailable` when no provider has one.

    First :func:`feredge.export.int8.int8_onnx` (a QAT checkpoint's quantizers, else ModelOpt/ORT PTQ
    on ``--calib``); without a QAT checkpoint or calibration data, the checkpoint's own Q/DQ ONNX."""
    from feredge.export.int8 import Int8NeedsCalibration, int8_onnx

    try:
        return int8_onnx(ctx)
    except Int8NeedsCalibration:
        pass
    path = _from_checkpoint(ctx)
    if path is not None:
        return path
    raise Int8Unavailable(INT8_NEEDS)


def calibration_for(ctx: ExportContext) -> np.ndarray | None:
    """Calibration faces (NCHW float32) for TensorRT 10's entropy calibrator, if the user gave any.

    ``--calib reference`` takes the shared pipeline's reference faces; a ``.npy`` file must hold
    an NCHW float32 array shaped like the model's input.
    """
    calib = trt_options_of(ctx.options).calib
    if calib is None:
        return None
    if str(calib) == "reference":
        return ctx.reference.batch
    path = Path(calib)
    if path.suffix != ".npy" or not path.is_file():
        raise FeredgeError(f"--calib {calib}: expected 'reference' or an existing .npy file of NCHW float32 faces")
    data = np.load(path, allow_pickle=False)
    expected = tuple(ctx.source.spec.input_shape)
    if data.ndim != 4 or tuple(data.shape[1:]) != expected:
        raise FeredgeError(f"--calib {calib}: shape {data.shape} does not match the model input (N, "
                           f"{', '.join(map(str, expected))})")
    return np.ascontiguousarray(data, dtype=np.float32)
