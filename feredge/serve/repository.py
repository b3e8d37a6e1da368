"""A Triton model repository's records: each model's config, written as ``config.pbtxt`` and checked.

Written from dataclasses (not templates) so the export and the static check share one truth; the
check parses every ``config.pbtxt`` with Triton's own ``ModelConfig`` protobuf (shipped by
``tritonclient``), so an unknown field or a malformed file fails here as it would in the server
(``failed to read text proto``), and then compares names, types and dims with the model's file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feredge.errors import FeredgeError

#: where a repository lives inside a bundle
REPOSITORY_DIR = "triton"
CONFIG = "config.pbtxt"

#: numpy dtype name → Triton data type
TRITON_TYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "int64": "TYPE_INT64", "int32": "TYPE_INT32",
                "uint8": "TYPE_UINT8", "bytes": "TYPE_STRING"}


@dataclass(frozen=True)
class TensorConfig:
    name: str
    data_type: str  # TYPE_FP32, TYPE_STRING, ...
    dims: tuple[int, ...]  # without the batch dimension when max_batch_size > 0

    def text(self) -> str:
        return f'{{ name: "{self.name}" data_type: {self.data_type} dims: [ {", ".join(map(str, self.dims))} ] }}'


@dataclass(frozen=True)
class ModelConfig:
    """One model of the repository; :meth:`text` is its ``config.pbtxt``."""

    name: str
    backend: str  # onnxruntime | openvino | tensorrt | python
    inputs: tuple[TensorConfig, ...]
    outputs: tuple[TensorConfig, ...]
    max_batch_size: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0
    dynamic_batching: bool = False
    instance_kind: str = "KIND_CPU"  # KIND_CPU | KIND_GPU | KIND_AUTO
    instance_count: int = 1
    platform: str | None = None  # tensorrt_plan: the platform names the backend
    default_model_filename: str | None = None
    parameters: dict[str, str] = field(default_factory=dict)
    #: files of the version directory the model needs (model.onnx; model.plan is built on the device)
    files: tuple[str, ...] = ()

    def text(self) -> str:
        lines = [f'name: "{self.name}"']
        lines.append(f'platform: "{self.platform}"' if self.platform else f'backend: "{self.backend}"')
        lines.append(f"max_batch_size: {self.max_batch_size}")
        if self.default_model_filename:
            lines.append(f'default_model_filename: "{self.default_model_filename}"')
        lines.append("input [\n  " + ",\n  ".join(t.text() for t in self.inputs) + "\n]")
        lines.append("output [\n  " + ",\n  ".join(t.text() for t in self.outputs) + "\n]")
        if self.dynamic_batching:
            sizes = ", ".join(map(str, self.preferred_batch_sizes))
            lines.append("dynamic_batching {" + (f" preferred_batch_size: [ {sizes} ]" if sizes else "")
                         + f" max_queue_delay_microseconds: {self.max_queue_delay_us} }}")
        lines.append(f"instance_group [ {{ count: {self.instance_count} kind: {self.instance_kind} }} ]")
        for key, value in sorted(self.parameters.items()):
            lines.append(f'parameters {{ key: "{key}" value: {{ string_value: {json.dumps(value)} }} }}')
        return "\n".join(lines) + "\n"


def preferred_sizes(max_batch: int) -> tuple[int, ...]:
    """Powers of two from 4 up to the bundle's max batch (the largest always included)."""
    sizes = [s for s in (4, 8, 16, 32, 64, 128, 256) if s < max_batch]
    return (*sizes, max_batch)


def _model_config_proto() -> Any:
    try:
        from tritonclient.grpc import model_config_pb2
    except ImportError:
        raise FeredgeError("checking Triton configs needs tritonclient: pip install 'feredge[serve]'") from None
    return model_config_pb2


def parse_config(path: Path) -> Any:
    """``config.pbtxt`` → Triton's ``ModelConfig`` message; a malformed file is a one-line error."""
    from google.protobuf import text_format

    message = _model_config_proto().ModelConfig()
    try:
        text_format.Parse(path.read_text(encoding="utf-8"), message)
    except text_format.ParseError as exc:
        raise FeredgeError(f"{path}: not a valid Triton model config ({exc})") from None
    return message


#: ONNX Runtime's type string → Triton data type
_ORT_TYPES = {"tensor(float)": "TYPE_FP32", "tensor(float16)": "TYPE_FP16", "tensor(int64)": "TYPE_INT64",
              "tensor(int32)": "TYPE_INT32", "tensor(uint8)": "TYPE_UINT8", "tensor(string)": "TYPE_STRING"}


def expected_tensors(model_file: Path) -> tuple[list[TensorConfig], list[TensorConfig], bool] | None:
    """(inputs, outputs, batched) of an ONNX model file as ONNX Runtime reads it (names, types, dims;
    a symbolic dimension is -1); None for other files. ONNX Runtime, not ``onnx``: this is device side."""
    if model_file.suffix != ".onnx":
        return None
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_file), providers=["CPUExecutionProvider"])

    def tensors(values: Any) -> tuple[list[TensorConfig], bool]:
        out, batched = [], True
        for value in values:
            shape = list(value.shape)
            batched = batched and bool(shape) and not isinstance(shape[0], int)
            out.append(TensorConfig(value.name, _ORT_TYPES[value.type],
                                    tuple(d if isinstance(d, int) else -1 for d in shape[1:])))
        return out, batched

    inputs, batched_in = tensors(session.get_inputs())
    outputs, batched_out = tensors(session.get_outputs())
    return inputs, outputs, batched_in and batched_out


@dataclass
class CheckResult:
    model: str
    backend: str
    checked: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "backend": self.backend, "checked": self.checked}


def check_model(model_dir: Path, max_batch: int | None = None) -> CheckResult:
    """Parse ``model_dir/config.pbtxt`` and check it against its files; raise a one-line error on a mismatch."""
    path = model_dir / CONFIG
    config = parse_config(path)
    checked = ["parses as ModelConfig"]
    if config.name != model_dir.name:
        raise FeredgeError(f"{path}: name {config.name!r} is not the directory's {model_dir.name!r}")
    backend = config.backend or config.platform
    if not backend:
        raise FeredgeError(f"{path}: names neither a backend nor a platform")
    if max_batch is not None and config.max_batch_size not in (0, max_batch):
        raise FeredgeError(f"{path}: max_batch_size {config.max_batch_size} is not the bundle's {max_batch}")
    if config.HasField("dynamic_batching"):
        bad = [s for s in config.dynamic_batching.preferred_batch_size if not 1 <= s <= config.max_batch_size]
        if bad or config.max_batch_size == 0:
            raise FeredgeError(f"{path}: preferred batch sizes {bad or 'with max_batch_size 0'} are out of range")
        checked.append("dynamic batching within max_batch_size")
    if not config.instance_group:
        raise FeredgeError(f"{path}: no instance_group")
    version = model_dir / "1"
    filename = config.default_model_filename or {"onnxruntime": "model.onnx", "openvino": "model.xml",
                                                  "python": "model.py", "tensorrt_plan": "model.plan"}[backend]
    model_file = version / filename
    if backend == "tensorrt_plan":  # built on the device: check against the ONNX it is built from
        model_file = model_dir.parent / "classifier_onnxruntime" / "1" / "model.onnx"
    if not model_file.is_file():
        raise FeredgeError(f"{path}: its model file {model_file.relative_to(model_dir.parent)} is missing")
    expected = expected_tensors(model_file)
    if expected is None and backend == "openvino":
        onnx_twin = model_dir.parent / "classifier_onnxruntime" / "1" / "model.onnx"
        expected = expected_tensors(onnx_twin) if onnx_twin.is_file() else None
    if expected is not None:
        inputs, outputs, batched = expected
        if batched != (config.max_batch_size > 0):
            raise FeredgeError(f"{path}: max_batch_size {config.max_batch_size} but the ONNX batch dimension is "
                               f"{'dynamic' if batched else 'fixed'}")
        for kind, want, have in (("input", inputs, config.input), ("output", outputs, config.output)):
            got = [TensorConfig(t.name, _model_config_proto().DataType.Name(t.data_type), tuple(t.dims)) for t in have]
            if got != want:
                raise FeredgeError(f"{path}: {kind}s {[t.text() for t in got]} differ from the ONNX "
                                   f"{[t.text() for t in want]}")
        checked.append("inputs/outputs: names, types and dims equal the ONNX")
    return CheckResult(config.name, backend, checked)


def model_dirs(repository: Path) -> list[Path]:
    return sorted(p for p in repository.iterdir() if (p / CONFIG).is_file())


def check_repository(repository: Path, max_batch: int | None = None) -> list[CheckResult]:
    dirs = model_dirs(repository)
    if not dirs:
        raise FeredgeError(f"{repository}: not a Triton model repository (no */{CONFIG})")
    return [check_model(d, max_batch) for d in dirs]
