"""Rank an ONNX model's layers by the output noise each adds when it alone is INT8, in one pass.

The order in which :func:`feredge.quantize.sensitivity.fit_budget` keeps layers in float for the
ONNX Runtime and NNCF backends — the same measure QAT and ModelOpt use in torch
(:mod:`feredge.quantize.layer_noise`): the normalized mean squared logit error against FP32,
``MSE(fp32, only-this-layer-int8) / MSE(fp32, 0)``, on the calibration faces (the faces that gate
the result play no part in the ranking).

Why simulate here instead of asking the backend: re-quantizing with one layer in float per layer
(what the backends' own APIs allow) re-runs calibration every time — 1-7 minutes for the shipped
model — and counting top-1 flips per layer on a few hundred faces is mostly chance. Why not map
the torch ranking onto the ONNX graph: the export folds BatchNorm into the convolutions and the
dynamo exporter renames nodes, so module names do not survive. Here, one ONNX Runtime run
collects every layer input's max-abs (the max calibration all three backends use), then each
layer in turn gets the recipe of :mod:`feredge.quantize.config` — symmetric per-channel weights
on the output axis (7-bit with the overflow fix), a per-tensor symmetric Q/DQ on each activation
input — and one more run over the calibration faces measures its noise. Seconds for our models.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from feredge.quantize.config import MIN_ACTIVATION_AMAX, MIN_WEIGHT_AMAX, OVERFLOW_FIX_FACTOR

#: ONNX ops the ranking covers: those ONNX Runtime's quantize_static and NNCF put Q/DQ on
NOISE_OPS = ("Conv", "ConvTranspose", "Gemm", "MatMul", "Add")
CHUNK = 64


def _weight_axis(node: object, rank: int) -> int:
    """The output-channel axis of a layer's weight: per-channel scales go along it."""
    op = node.op_type  # type: ignore[attr-defined]
    if op == "Conv":
        return 0
    if op == "ConvTranspose":
        return 1
    if op == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)  # type: ignore[attr-defined]
        return 0 if trans_b else 1
    return rank - 1  # MatMul: (…, K, N), one scale per output column


def fake_quant_weight(weight: np.ndarray, axis: int, *, overflow_fix: bool) -> np.ndarray:
    """Symmetric per-channel INT8 round trip of ``weight`` along ``axis``."""
    levels = 127.0 / OVERFLOW_FIX_FACTOR if overflow_fix else 127.0
    other = tuple(i for i in range(weight.ndim) if i != axis)
    amax = np.maximum(np.abs(weight).max(axis=other, keepdims=True), MIN_WEIGHT_AMAX)
    scale = amax / levels
    return (np.clip(np.round(weight / scale), -levels, levels) * scale).astype(weight.dtype)


def _run(model_bytes: bytes, batch: np.ndarray, outputs: list[str] | None = None) -> list[np.ndarray]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # ORT's graph-optimization warnings are not the user's business
    session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    parts = [session.run(outputs, {name: batch[i : i + CHUNK]}) for i in range(0, len(batch), CHUNK)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


class OnnxLayerNoise:
    """The ranking of one float ONNX on one calibration batch; see the module doc."""

    def __init__(self, float_onnx: Path, calib: np.ndarray, *, overflow_fix: bool) -> None:
        import onnx

        self.model = onnx.load(str(float_onnx))
        self.calib = calib.astype(np.float32)
        self.overflow_fix = overflow_fix
        graph = self.model.graph
        self.nodes = {n.name: n for n in graph.node if n.op_type in NOISE_OPS}
        self.weights = {i.name: i for i in graph.initializer}
        self.constants = {o for n in graph.node if n.op_type == "Constant" for o in n.output}

    def layers(self) -> list[str]:
        """Quantizable layers in graph order: convolutions and matrix products with a constant
        weight, and Adds of two computed tensors (residuals; a bias Add is folded by every backend)."""
        return [name for name, node in self.nodes.items() if self._activations(node) and
                (node.op_type == "Add" or self._weight(node) is not None)]

    def _weight(self, node: object) -> str | None:
        inputs = list(node.input)  # type: ignore[attr-defined]
        return inputs[1] if len(inputs) > 1 and inputs[1] in self.weights else None

    def _activations(self, node: object) -> list[str]:
        count = 2 if node.op_type == "Add" else 1  # type: ignore[attr-defined]
        return [t for t in list(node.input)[:count]  # type: ignore[attr-defined]
                if t and t not in self.weights and t not in self.constants]

    def ranking(self, layers: Sequence[str] | None = None,
                progress: Callable[[Iterable[str]], Iterable[str]] = lambda items: items) -> dict[str, float]:
        """Normalized logit MSE per layer (higher: more sensitive, kept in float first)."""
        import onnx
        from onnx import helper, numpy_helper

        layers = list(layers) if layers is not None else self.layers()
        tensors = sorted({t for name in layers for t in self._activations(self.nodes[name])})
        probe = onnx.ModelProto()
        probe.CopyFrom(self.model)
        known = {o.name for o in probe.graph.output}
        probe.graph.output.extend(helper.make_empty_tensor_value_info(t) for t in tensors if t not in known)
        outputs = [self.model.graph.output[0].name, *tensors]
        results = _run(probe.SerializeToString(), self.calib, outputs)
        reference = results[0].astype(np.float64)
        amax = {t: max(float(np.abs(r).max()), MIN_ACTIVATION_AMAX) for t, r in zip(tensors, results[1:], strict=True)}
        power = max(float(np.mean(reference ** 2)), 1e-12)
        noise: dict[str, float] = {}
        for name in progress(layers):
            variant = onnx.ModelProto()
            variant.CopyFrom(self.model)
            node = next(n for n in variant.graph.node if n.name == name)
            weight = self._weight(node)
            if weight is not None:
                init = next(i for i in variant.graph.initializer if i.name == weight)
                array = numpy_helper.to_array(init)
                quantized = fake_quant_weight(array, _weight_axis(node, array.ndim), overflow_fix=self.overflow_fix)
                init.CopyFrom(numpy_helper.from_array(quantized, weight))
            qdq = []
            for k, tensor in enumerate(list(node.input)):
                if tensor not in amax:
                    continue
                scale, zero = f"{name}__noise_scale{k}", f"{name}__noise_zero{k}"
                variant.graph.initializer.extend([numpy_helper.from_array(np.float32(amax[tensor] / 127.0), scale),
                                                  numpy_helper.from_array(np.int8(0), zero)])
                q, dq = f"{name}__noise_q{k}", f"{name}__noise_dq{k}"
                qdq += [helper.make_node("QuantizeLinear", [tensor, scale, zero], [q]),
                        helper.make_node("DequantizeLinear", [q, scale, zero], [dq])]
                node.input[k] = dq
            _insert_before(variant.graph, node, qdq)
            logits = _run(variant.SerializeToString(), self.calib)[0]
            noise[name] = float(np.mean((logits - reference) ** 2)) / power
        return noise


def _insert_before(graph: object, target: object, new: list[object]) -> None:
    """Put ``new`` just before ``target``, keeping the topological order ONNX requires."""
    nodes = []
    for node in graph.node:  # type: ignore[attr-defined]
        if node.name == target.name:  # type: ignore[attr-defined]
            nodes += new
        nodes.append(node)
    copies = [type(n)() for n in nodes]
    for copy, node in zip(copies, nodes, strict=True):
        copy.CopyFrom(node)
    del graph.node[:]  # type: ignore[attr-defined]
    graph.node.extend(copies)  # type: ignore[attr-defined]
