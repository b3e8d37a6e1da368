"""The fp16 ONNX that TensorRT 11 (strongly typed) builds into an FP16 engine.

ModelOpt's AutoCast (``modelopt.onnx.autocast.convert_to_f16``) is TensorRT's own tool and is
used when it imports. It does not import on the project's machines: it lives behind the
``nvidia-modelopt[onnx]`` extra (onnx-graphsurgeon, onnxslim, polygraphy, cupy, ...), and that
extra replaces the CPU ``onnxruntime`` with ``onnxruntime-gpu``. The fallback is
onnxconverter-common's ``float16.convert_float_to_float16`` — the same converter the ONNX target
uses. Both keep float32 graph inputs and outputs (Casts at the edges), so callers keep feeding
float32 and the TensorRT runner needs no dtype special case. The converter used is recorded.
"""

from __future__ import annotations

import warnings
from pathlib import Path


def to_fp16_onnx(source: Path, destination: Path) -> str:
    """Write an fp16 copy of ``source``; return the converter's name for the manifest."""
    import onnx

    model = onnx.load(str(source))
    try:
        from modelopt.onnx.autocast import convert_to_f16
    except ImportError:
        from onnxconverter_common import float16

        with warnings.catch_warnings():  # it warns for every tiny weight it clamps to fp16's range
            warnings.simplefilter("ignore", UserWarning)
            converted = float16.convert_float_to_float16(model, keep_io_types=True)
        name = "onnxconverter-common float16 (keep_io_types)"
    else:  # pragma: no cover - needs nvidia-modelopt[onnx]
        converted = convert_to_f16(model, low_precision_type="fp16", keep_io_types=True)
        name = "modelopt.onnx.autocast.convert_to_f16"
    onnx.save(converted, str(destination))
    return name
