"""How a benchmark row is named for a reader: the runtime, the bundle file that ran, the precision that ran.

Why one place: a row used to print the bundle's precision, then the file's and the runtime's
(``fp32 fp32 openvino``), leaving the reader to guess which file ran. A row is now named by its
artifact (``model.xml``, ``model.onnx``, ``weights.safetensors``) and one precision, the one that
ran: the runtime's own compute precision where it reports one, qualified only where it differs
from the file (``fp32 (fp16 weights)``: OpenVINO's CPU decompresses an fp16 IR and computes in
f32; ``fp16 (fp32 I/O)``: ONNX Runtime on the fp16 ONNX, whose inputs and outputs stay float32).
The JSON keeps its machine keys (``precision`` = the file's, ``ran_precision`` = the runtime's
word), which gates and advice key on.
"""

from __future__ import annotations

from typing import Any

#: OpenVINO's element-type names → the names the rest of feredge uses
_RUNTIME_NAMES = {"f32": "fp32", "f16": "fp16", "bf16": "bf16", "i8": "int8", "u8": "int8"}


def normalise_precision(name: str | None) -> str:
    """``f32`` → ``fp32`` etc.; an unknown or missing name is returned as is (``""`` for None)."""
    if not name:
        return ""
    return _RUNTIME_NAMES.get(str(name).lower(), str(name))


def ran_as(file_precision: str, runtime_precision: str | None, runtime: str) -> str:
    """The one precision a row shows: what ran, qualified where the file stores something else.

    An INT8 file runs its quantized operators whatever float precision the runtime reports for the
    rest, so it reads ``int8``.
    """
    ran = normalise_precision(runtime_precision) or file_precision
    if file_precision == "int8":
        return "int8"
    if file_precision == "fp16" and runtime == "onnxruntime":
        return "fp16 (fp32 I/O)"  # the runner reads the input type; the fp16 ONNX keeps float32 inputs/outputs
    if ran != file_precision:
        return f"{ran} ({file_precision} weights)" if file_precision in ("fp16", "int8") else ran
    return ran


def row_name(row: dict[str, Any]) -> str:
    """``openvino model.xml fp32`` (+ `` [variant]``): runtime, artifact and precision, each once."""
    parts = [str(row.get("runtime", "")), str(row.get("artifact") or ""), str(row.get("ran_as") or
                                                                           row.get("precision") or "")]
    name = " ".join(p for p in parts if p)
    return f"{name} [{row['variant']}]" if row.get("variant") else name
