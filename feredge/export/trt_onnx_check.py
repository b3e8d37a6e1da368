"""Static checks that an ONNX will parse in TensorRT and quantize the way TensorRT wants.

Operator support is TensorRT 10.15's list, taken from onnx-tensorrt ``docs/operators.md``
("TensorRT 10.15 supports operators in the inclusive range of opset 9 to opset 24";
https://github.com/onnx/onnx-tensorrt/blob/main/docs/operators.md, TensorRT 10.15 GA, 2026-02).
Only the operator names marked supported are embedded; per-operator restrictions (e.g. Resize
modes) are left to the parser on the device. TensorRT 11 parses the same set (it removed
builder flags, not ONNX operators) [check against 11's operators.md when it is published].

Q/DQ rules are TensorRT's INT8 placement rules (TensorRT developer guide, "Working with
quantized types"; TensorRT#1992, Model-Optimizer#80): symmetric quantization (zero point 0),
int8 zero-point type (a missing zero point means uint8 in ONNX), weights quantized per channel
on axis 0, activations per tensor, and Q/DQ on both inputs of a residual Add — otherwise the Add
runs in higher precision and an "INT8" engine can be slower than FP16. A residual Add is one with
an input from the INT8 graph (a DequantizeLinear or a quantized Conv/Gemm/MatMul); an Add
between float ops has nothing to fuse into and is left alone, and so is a residual Add that the
INT8 step deliberately kept in float (``float_layers``: the manifest's ``int8.excluded``, e.g. by
``--min-agreement``) — TensorRT then runs it in FP16/FP32, which is the point.

:func:`check_onnx` returns findings (empty: passes); the TensorRT export fails on any.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SOURCE = "onnx/onnx-tensorrt docs/operators.md (TensorRT 10.15)"
TENSORRT_VERSION = "10.15"
OPSET_RANGE = (9, 24)

#: ONNX operators marked "Y" in onnx-tensorrt's support matrix for TensorRT 10.15
_SUPPORTED_TABLE = """
Abs Acos Acosh Add And ArgMax ArgMin Asin Asinh Atan Atanh Attention AveragePool BatchNormalization
BlackmanWindow Cast CastLike Ceil Celu Clip Concat Constant ConstantOfShape Conv ConvTranspose Cos Cosh
CumSum DeformConv DepthToSpace DequantizeLinear Div Dropout Einsum Elu Equal Erf Exp Expand EyeLike Flatten
Floor Gather GatherElements GatherND Gelu Gemm GlobalAveragePool GlobalLpPool GlobalMaxPool Greater
GreaterOrEqual GridSample GroupNormalization GRU HammingWindow HannWindow HardSigmoid HardSwish Hardmax
Identity If ImageScaler InstanceNormalization IsInf IsNaN LayerNormalization LeakyRelu Less LessOrEqual Log
LogSoftmax Loop LRN LSTM LpNormalization LpPool MatMul Max MaxPool Mean MeanVarianceNormalization Min Mish
Mod Mul Neg NonMaxSuppression NonZero Not OneHot Or Pad ParametricSoftplus Pow PRelu QuantizeLinear
RandomNormal RandomNormalLike RandomUniform RandomUniformLike Range Reciprocal ReduceL1 ReduceL2 ReduceLogSum
ReduceLogSumExp ReduceMax ReduceMean ReduceMin ReduceProd ReduceSum ReduceSumSquare Relu Reshape Resize
ReverseSequence RMSNormalization RNN RoiAlign RotaryEmbedding Round STFT ScaledTanh Scan Scatter
ScatterElements ScatterND Selu Shape Shrink Sigmoid Sign Sin Sinh Size Slice Softmax Softplus Softsign
SpaceToDepth Split Sqrt Squeeze Sub Sum Tan Tanh TensorScatter ThresholdedRelu Tile TopK Transpose Trilu
Unsqueeze Upsample Where Xor
"""
SUPPORTED_OPS: frozenset[str] = frozenset(_SUPPORTED_TABLE.split())

@dataclass(frozen=True)
class Finding:
    rule: str  # "opset", "unsupported-op", "zero-point", "int8", "weight-per-channel", "activation-per-tensor",
    #            "residual-add"
    node: str
    message: str

    def __str__(self) -> str:
        return f"[{self.rule}] {self.node}: {self.message}"


def _nodes(graph: Any) -> Iterator[Any]:
    """Every node, including those of If/Loop/Scan bodies."""
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.g is not None and attr.g.node:
                yield from _nodes(attr.g)
            for sub in attr.graphs:
                yield from _nodes(sub)


def constant_values(graph: Any) -> dict[str, Any]:
    """name → numpy value of initializers and Constant node outputs."""
    from onnx import numpy_helper

    values = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def _attr(node: Any, name: str, default: int) -> int:
    for attr in node.attribute:
        if attr.name == name:
            return int(attr.i)
    return default


def _label(node: Any) -> str:
    return node.name or f"{node.op_type}({', '.join(node.input)})"


def check_ops(model: Any) -> list[Finding]:
    findings = []
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    low, high = OPSET_RANGE
    if opset is None or not low <= opset <= high:
        findings.append(Finding("opset", "model", f"opset {opset} is outside TensorRT {TENSORRT_VERSION}'s "
                                                  f"{low}..{high}"))
    for node in _nodes(model.graph):
        if node.domain not in ("", "ai.onnx"):
            findings.append(Finding("unsupported-op", _label(node),
                                    f"custom-domain op {node.domain}::{node.op_type} needs a TensorRT plugin"))
        elif node.op_type not in SUPPORTED_OPS:
            findings.append(Finding("unsupported-op", _label(node),
                                    f"{node.op_type} is not supported by TensorRT {TENSORRT_VERSION} ({SOURCE})"))
    return findings


def check_qdq(model: Any, float_layers: Iterable[str] = ()) -> list[Finding]:
    graph = model.graph
    float_layers = set(float_layers)  # torch module names (ModelOpt, QAT) or ONNX node names (ONNX Runtime PTQ)
    consts = constant_values(graph)
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    qdq = [n for n in graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    if not qdq:
        return []
    findings: list[Finding] = []
    for node in qdq:
        label = _label(node)
        zero = consts.get(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        if zero is None:
            findings.append(Finding("int8", label, "no zero point: ONNX then quantizes to uint8; TensorRT needs int8"))
        else:
            if str(zero.dtype) != "int8":
                findings.append(Finding("int8", label, f"zero point is {zero.dtype}; TensorRT needs int8"))
            if zero.any():
                findings.append(Finding("zero-point", label, "zero point is not 0; TensorRT quantizes symmetrically"))
        scale = consts.get(node.input[1])
        scales = 1 if scale is None else int(scale.size)
        per_channel = scales > 1
        if _is_weight_path(node, consts, producers):
            out_channels = _weight_out_channels(node, consts, producers)
            if out_channels is not None and out_channels > 1 and not per_channel:
                findings.append(Finding("weight-per-channel", label,
                                        "weights are quantized per tensor; TensorRT wants per-channel scales"))
            if per_channel and _attr(node, "axis", 1) != 0:
                findings.append(Finding("weight-per-channel", label,
                                        f"weight scales on axis {_attr(node, 'axis', 1)}; TensorRT wants axis 0"))
        elif per_channel:
            findings.append(Finding("activation-per-tensor", label,
                                    f"activation has {scales} scales (per channel); TensorRT wants one"))
    for node in graph.node:
        if node.op_type != "Add" or len(node.input) != 2:
            continue
        if any(name in consts or name not in producers for name in node.input):
            continue  # a bias or a graph input: not a residual join
        if not any(_in_int8_region(producers[name], producers) for name in node.input):
            continue  # float math between float ops (e.g. S4's covariance): nothing of INT8 to fuse into
        if node.name in float_layers or _module_of(node) in float_layers:
            continue  # a residual Add kept in float on purpose
        missing = [name for name in node.input if producers[name].op_type != "DequantizeLinear"]
        if missing:
            findings.append(Finding("residual-add", _label(node),
                                    f"input {', '.join(missing)} has no Q/DQ; quantize both inputs of a residual Add "
                                    "so TensorRT fuses it in INT8"))
    return findings


#: layers TensorRT runs in INT8 when their inputs carry Q/DQ, and fuses a following Add into
_INT8_LAYERS = ("Conv", "ConvTranspose", "Gemm", "MatMul")


def _in_int8_region(node: Any, producers: dict[str, Any]) -> bool:
    """Whether an Add input comes from the INT8 graph: a DequantizeLinear, or a quantized layer
    (its data input dequantized), possibly through a BatchNormalization TensorRT folds into it.
    An Add with such an input is a residual join TensorRT fuses only when both inputs carry Q/DQ."""
    if node.op_type == "DequantizeLinear":
        return True
    if node.op_type == "BatchNormalization" and node.input[0] in producers:
        node = producers[node.input[0]]
    if node.op_type not in _INT8_LAYERS:
        return False
    source = producers.get(node.input[0])
    return source is not None and source.op_type == "DequantizeLinear"


def _weight_source(node: Any, producers: dict[str, Any]) -> str:
    """The tensor a Q/DQ chain starts from (DQ ← Q ← W gives W)."""
    name = node.input[0]
    upstream = producers.get(name)
    if node.op_type == "DequantizeLinear" and upstream is not None and upstream.op_type == "QuantizeLinear":
        return str(upstream.input[0])
    return str(name)


def _is_weight_path(node: Any, consts: dict[str, Any], producers: dict[str, Any]) -> bool:
    return _weight_source(node, producers) in consts


def _weight_out_channels(node: Any, consts: dict[str, Any], producers: dict[str, Any]) -> int | None:
    value = consts.get(_weight_source(node, producers))
    return int(value.shape[0]) if value is not None and value.ndim >= 1 else None


def _module_of(node: Any) -> str:
    """The torch module an exported node came from: TorchScript names nodes ``/<scope>/<Op>``
    (``/residual_add_1/Add``, ``/layer1/residual_add_0/Add_2``), dynamo ``node_Add_3`` (none)."""
    parts = str(node.name).split("/")
    return ".".join(parts[1:-1]) if len(parts) > 2 and not parts[0] else ""


def check_onnx(model: Any, float_layers: Iterable[str] = ()) -> list[Finding]:
    """All findings for a model (an ``onnx.ModelProto`` or a path); ``float_layers``: modules the
    INT8 step kept in float on purpose (their residual Adds are not findings)."""
    import onnx

    proto = onnx.load(str(model)) if isinstance(model, (str, Path)) else model
    return check_ops(proto) + check_qdq(proto, float_layers)
