"""A fake-quant torch model → one Q/DQ ONNX that ONNX Runtime, OpenVINO and TensorRT all read.

ModelOpt's quantizers export only through the TorchScript exporter (``dynamo=False``): the
dynamo path trips over their data-dependent checks. What comes out is then normalised so every
consumer sees the canonical form TensorRT documents: each QuantizeLinear/DequantizeLinear takes
its scale as a float32 initializer and its zero point as an int8 initializer equal to 0 (the
exporter emits ``Cast(Constant)`` for zero points), per-channel weight Q/DQ on axis 0, opset ≥ 13.
:func:`inspect_qdq` reads those properties back; tests and the export both check them.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from feredge.errors import FeredgeError
from feredge.export.trt_onnx_check import constant_values

INPUT_NAME = "input"
OUTPUT_NAME = "logits"
QDQ_OPSET = 17  # ≥ 13 for per-channel Q/DQ; 17 is read by TensorRT 10/11, ORT and OpenVINO
QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def export_qdq_onnx(model: nn.Module, input_shape: tuple[int, ...], path: Path, *, max_batch: int = 64,
                    opset: int = QDQ_OPSET) -> QdqSummary:
    """Export ``model`` (with enabled ModelOpt quantizers) to ``path``; returns its Q/DQ summary."""
    import onnx

    del max_batch  # the batch axis is dynamic; the bound lives in the bundle manifest
    model = model.eval()
    example = torch.randn(2, *input_shape, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(model, (example,), buffer, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=opset,
                          dynamo=False, do_constant_folding=True)
    proto = normalise_qdq(onnx.load_from_string(buffer.getvalue()))
    onnx.checker.check_model(proto, full_check=True)
    path.write_bytes(proto.SerializeToString())
    summary = inspect_qdq(path)
    if not summary.quantize_nodes:
        raise FeredgeError("the exported model has no QuantizeLinear nodes: were the quantizers enabled?")
    if summary.problems:
        raise FeredgeError(f"Q/DQ ONNX is not in canonical form: {summary.problems[0]}")
    return summary


def normalise_qdq(proto: Any) -> Any:
    """Scales → float32 initializers, zero points → int8 zero initializers; a QuantizeLinear fed
    by ``Identity(initializer)`` reads the initializer itself (the TorchScript exporter routes a
    weight through Identity when a layer runs twice, e.g. S4's shared branch over face and crops,
    and TensorRT folds Q/DQ into a layer's weights only from an initializer); dead nodes removed."""
    import onnx
    from onnx import helper, numpy_helper

    graph = proto.graph
    consts = constant_values(graph)
    producers = {out: node for node in graph.node for out in node.output}
    initializers = {init.name for init in graph.initializer}
    for node in graph.node:
        source = producers.get(node.input[0]) if node.op_type == "QuantizeLinear" else None
        if source is not None and source.op_type == "Identity" and source.input[0] in initializers:
            node.input[0] = source.input[0]

    def resolve(name: str) -> np.ndarray | None:
        if name in consts:
            return consts[name]
        node = producers.get(name)
        if node is not None and node.op_type == "Cast" and node.input[0] in consts:
            to = helper.tensor_dtype_to_np_dtype(next(a.i for a in node.attribute if a.name == "to"))
            return consts[node.input[0]].astype(to)
        return None

    new_inits: list[Any] = []
    for index, node in enumerate(n for n in graph.node if n.op_type in QDQ_OPS):
        scale = resolve(node.input[1])
        zero = resolve(node.input[2]) if len(node.input) > 2 else np.zeros_like(scale, dtype=np.int8)
        if scale is None or zero is None:
            raise FeredgeError(f"{node.name}: Q/DQ scale or zero point is not a constant")
        if np.any(zero != 0):
            raise FeredgeError(f"{node.name}: zero point is not 0 (asymmetric quantization is not supported)")
        scale_name, zero_name = f"qdq{index}_scale", f"qdq{index}_zero_point"
        new_inits.append(numpy_helper.from_array(np.asarray(scale, np.float32), scale_name))
        new_inits.append(numpy_helper.from_array(np.zeros(np.shape(zero), np.int8), zero_name))
        del node.input[1:]
        node.input.extend([scale_name, zero_name])
    graph.initializer.extend(new_inits)
    _prune(graph)
    return onnx.shape_inference.infer_shapes(proto)


def _prune(graph: Any) -> None:
    needed = {out.name for out in graph.output}
    keep = []
    for node in reversed(list(graph.node)):
        if any(out in needed for out in node.output):
            keep.append(node)
            needed.update(i for i in node.input if i)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    live = [init for init in graph.initializer if init.name in needed]
    del graph.initializer[:]
    graph.initializer.extend(live)


@dataclass
class QdqSummary:
    opset: int
    quantize_nodes: int
    dequantize_nodes: int
    per_channel_weights: int  # Q/DQ on an initializer with a 1-D scale
    per_tensor_activations: int
    ops: dict[str, int]
    quantized_add_inputs: int  # Add inputs coming straight from a DequantizeLinear
    adds: int
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def inspect_qdq(path: Path) -> QdqSummary:
    """The Q/DQ facts TensorRT cares about, and anything that breaks them (``problems``)."""
    import onnx
    from onnx import numpy_helper

    proto = onnx.load(str(path))
    graph = proto.graph
    inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    opset = max((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), default=0)
    problems: list[str] = []
    if opset < 13:
        problems.append(f"opset {opset} < 13 (per-channel Q/DQ needs 13)")
    per_channel = per_tensor = 0
    for node in graph.node:
        if node.op_type not in QDQ_OPS:
            continue
        if len(node.input) < 3 or node.input[1] not in inits or node.input[2] not in inits:
            problems.append(f"{node.name}: scale/zero point not initializers")
            continue
        scale, zero = inits[node.input[1]], inits[node.input[2]]
        if zero.dtype != np.int8 or np.any(zero != 0):
            problems.append(f"{node.name}: zero point {zero.dtype} not int8 0")
        if np.any(scale <= 0) or not np.all(np.isfinite(scale)):
            problems.append(f"{node.name}: non-positive or non-finite scale")
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        if scale.ndim == 1 and scale.size > 1:
            per_channel += node.op_type == "QuantizeLinear"
            if axis != 0:
                problems.append(f"{node.name}: per-channel axis {axis}, expected 0 (weights)")
            if node.op_type == "QuantizeLinear" and node.input[0] not in inits:
                problems.append(f"{node.name}: per-channel Q/DQ on an activation")
        elif node.op_type == "QuantizeLinear":
            per_tensor += 1
    adds = [n for n in graph.node if n.op_type == "Add"]
    quantized_inputs = sum(
        1 for n in adds for i in n.input if i in producers and producers[i].op_type == "DequantizeLinear"
    )
    ops = Counter(n.op_type for n in graph.node)
    return QdqSummary(opset, ops["QuantizeLinear"], ops["DequantizeLinear"], per_channel, per_tensor, dict(ops),
                      quantized_inputs, len(adds), problems)
