"""Which files an ONNX model would make a runtime read: its external-data locations.

An ONNX tensor may keep its bytes in another file (``data_location = EXTERNAL``, the path in
``external_data["location"]``, relative to the model's directory). ONNX Runtime, OpenVINO's ONNX
front end and TensorRT's parser all follow that path when they load the model by file name, so
a hostile ``model.onnx`` naming ``../../home/user/.ssh/id_rsa`` would read (and, as weights,
leak through the logits) a file outside the bundle. ONNX Runtime validates the path only since
1.24 (microsoft/onnxruntime#26776); feredge accepts older versions and other back ends, so it
checks itself before any of them sees the file.

Why by hand: the ``onnx`` package parses ModelProto, but it is a training-side dependency (the
device side has numpy, OpenCV and one runtime). The protobuf wire format is small and stable,
so this module walks it directly, descending only into the fields that can hold a TensorProto
(graph initializers, node attributes, nested graphs of If/Loop/Scan, functions, training info,
sparse tensors) and skipping every other field — tensor payloads included — without copying.
Field numbers are onnx.proto's (checked against ``onnx`` 1.23's descriptors in the tests).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from feredge.errors import FeredgeError

# message kinds and, for each, field number → child kind (only fields that can lead to a tensor)
_MODEL, _GRAPH, _NODE, _ATTRIBUTE, _TENSOR, _SPARSE, _FUNCTION, _TRAINING = range(8)
_CHILDREN: dict[int, dict[int, int]] = {
    _MODEL: {7: _GRAPH, 20: _TRAINING, 25: _FUNCTION},
    _TRAINING: {1: _GRAPH, 2: _GRAPH},
    _FUNCTION: {7: _NODE, 11: _ATTRIBUTE},
    _GRAPH: {1: _NODE, 5: _TENSOR, 15: _SPARSE},
    _NODE: {5: _ATTRIBUTE},
    _ATTRIBUTE: {5: _TENSOR, 6: _GRAPH, 10: _TENSOR, 11: _GRAPH, 22: _SPARSE, 23: _SPARSE},
    _SPARSE: {1: _TENSOR, 2: _TENSOR},
}
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION, _EXTERNAL = 8, 13, 14, 1
_MAX_DEPTH = 100  # protobuf's own default recursion limit


@dataclass(frozen=True)
class ExternalTensor:
    tensor: str
    location: str | None  # None: marked external but names no file


def external_tensors(data: bytes | memoryview) -> list[ExternalTensor]:
    """Every tensor in the serialized ModelProto ``data`` whose bytes live in another file.

    Raises ``ValueError`` on bytes that are not well-formed protobuf.
    """
    found: list[ExternalTensor] = []
    _walk(memoryview(data), _MODEL, 0, found)
    return found


def check_onnx_file(path: Path) -> None:
    """Refuse an ONNX file whose external data would be read from outside its own directory.

    Used by the runners for model files loaded on their own (a bundle's members are checked more
    strictly by :meth:`feredge.bundle.Bundle.verify`: inside the bundle *and* listed and hashed).
    Raises ``ValueError`` for bytes that are not protobuf, :class:`FeredgeError` for an escape.
    """
    try:
        tensors = external_tensors(path.read_bytes())
    except ValueError as exc:  # the runner reports it as the runtime failing to load the model
        raise ValueError(f"not a valid ONNX file: {exc}") from None
    for tensor in tensors:
        external_member(path.parent, tensor, path)


def external_member(directory: Path, tensor: ExternalTensor, model: Path) -> PurePosixPath:
    """``tensor``'s location relative to ``directory`` if it stays inside it; else a one-line error."""
    location = tensor.location
    pure = PurePosixPath(location or "")
    if (not location or pure.is_absolute() or "\\" in location or ":" in location or ".." in pure.parts):
        raise FeredgeError(f"{model}: tensor {tensor.tensor!r} reads external data from {location!r}, outside the "
                           "model's directory; refusing an untrusted model")
    if not (directory / pure).resolve().is_relative_to(directory.resolve()):
        raise FeredgeError(f"{model}: tensor {tensor.tensor!r} external data {location!r} resolves outside the "
                           "model's directory (symlink?); refusing an untrusted model")
    return pure


def _walk(data: memoryview, kind: int, depth: int, found: list[ExternalTensor]) -> None:
    if depth > _MAX_DEPTH:
        raise ValueError("messages nested too deeply")
    if kind == _TENSOR:
        _tensor(data, found)
        return
    children = _CHILDREN[kind]
    for number, value in _fields(data):
        child = children.get(number)
        if child is not None and isinstance(value, memoryview):
            _walk(value, child, depth + 1, found)


def _tensor(data: memoryview, found: list[ExternalTensor]) -> None:
    name, location, external = "", None, False
    for number, value in _fields(data):
        if number == _TENSOR_NAME and isinstance(value, memoryview):
            name = bytes(value).decode("utf-8", "replace")
        elif number == _TENSOR_DATA_LOCATION and isinstance(value, int):
            external = external or value == _EXTERNAL
        elif number == _TENSOR_EXTERNAL_DATA and isinstance(value, memoryview):
            external = True  # any external_data entry makes a runtime look for a file
            entry = {k: bytes(v).decode("utf-8", "replace") for k, v in _fields(value) if isinstance(v, memoryview)}
            if entry.get(1) == "location":
                location = entry.get(2, "")
    if external:
        found.append(ExternalTensor(name, location))


def _fields(data: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """(field number, value) of one message: varints as int, length-delimited fields as views."""
    pos, end = 0, len(data)
    while pos < end:
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if wire == 0:
            value, pos = _varint(data, pos)
            yield number, value
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > end:
                raise ValueError("truncated field")
            yield number, data[pos : pos + length]
            pos += length
        elif wire in (1, 5):  # fixed64 / fixed32: nothing we need
            pos += 8 if wire == 1 else 4
            if pos > end:
                raise ValueError("truncated field")
        else:  # groups (3, 4) are not used by onnx.proto; anything else is not protobuf
            raise ValueError(f"unsupported wire type {wire}")


def _varint(data: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise ValueError("truncated or overlong varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
