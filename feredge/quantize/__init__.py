"""INT8: ModelOpt QAT, post-training backends (ModelOpt, NNCF, ONNX Runtime), one Q/DQ ONNX.

Entry points: :func:`int8_onnx` (a Q/DQ ONNX for an export context: what the TensorRT target
calls), :mod:`~feredge.quantize.modelopt_qat` (insert/calibrate/fine-tune/save/restore),
:data:`~feredge.quantize.ptq.PTQ_BACKENDS`, :mod:`~feredge.quantize.sensitivity` (``--max-drop``).
Imports are lazy: ModelOpt and NNCF load only when used.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Int8NeedsCalibration", "int8_onnx"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from feredge.quantize import int8

        return getattr(int8, name)
    raise AttributeError(name)
