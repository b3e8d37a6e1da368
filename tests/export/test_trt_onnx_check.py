"""The TensorRT static checker on hand-built graphs: one broken rule per test, and one that passes."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from feredge.export.trt_onnx_check import SUPPORTED_OPS, check_onnx


def _model(nodes, initializers, opset: int = 18) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4, 8, 8])],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in initializers.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


ZERO_INT8 = np.int8(0)
ACT_SCALE = np.float32(0.1)


def _qdq_residual(*, act_zero=ZERO_INT8, w_zero=None, w_scale=None, w_axis=0, act_scale=ACT_SCALE,
                  skip_qdq: bool = True) -> onnx.ModelProto:
    """x → Q/DQ → Conv(DQ(W)) → Add(residual), the shape of a quantized ResNet block."""
    w_zero = np.zeros(4, np.int8) if w_zero is None else w_zero
    w_scale = np.full(4, 0.01, np.float32) if w_scale is None else w_scale
    inits = {"w_q": np.ones((4, 4, 3, 3), np.int8), "w_s": w_scale, "w_z": w_zero,
             "a_s": act_scale, "a_z": act_zero}
    nodes = [
        helper.make_node("QuantizeLinear", ["x", "a_s", "a_z"], ["xq"], name="q_in"),
        helper.make_node("DequantizeLinear", ["xq", "a_s", "a_z"], ["xd"], name="dq_in"),
        helper.make_node("DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], name="dq_w", axis=w_axis),
        helper.make_node("Conv", ["xd", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["x"], ["skip"], name="skip_relu"),
    ]
    if skip_qdq:
        nodes += [helper.make_node("QuantizeLinear", ["skip", "a_s", "a_z"], ["sq"], name="q_skip"),
                  helper.make_node("DequantizeLinear", ["sq", "a_s", "a_z"], ["sd"], name="dq_skip"),
                  helper.make_node("QuantizeLinear", ["c", "a_s", "a_z"], ["cq"], name="q_c"),
                  helper.make_node("DequantizeLinear", ["cq", "a_s", "a_z"], ["cd"], name="dq_c"),
                  helper.make_node("Add", ["cd", "sd"], ["y"], name="residual")]
    else:
        nodes += [helper.make_node("Add", ["c", "skip"], ["y"], name="residual")]
    return _model(nodes, inits)


def _rules(model: onnx.ModelProto) -> set[str]:
    return {f.rule for f in check_onnx(model)}


def test_a_well_quantized_graph_passes():
    model = _qdq_residual()
    onnx.checker.check_model(model, full_check=True)
    assert check_onnx(model) == []


def test_a_plain_fp32_graph_passes():
    model = _model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("GlobalAveragePool", ["r"], ["y"])], {})
    assert check_onnx(model) == []


def test_unsupported_op_is_found():
    model = _model([helper.make_node("Unique", ["x"], ["y"], name="u")], {})
    findings = check_onnx(model)
    assert [f.rule for f in findings] == ["unsupported-op"] and "Unique" in findings[0].message


def test_custom_domain_op_is_found():
    model = _model([helper.make_node("Fancy", ["x"], ["y"], domain="com.example")], {})
    assert _rules(model) == {"unsupported-op"}


def test_opset_outside_tensorrt_range_is_found():
    assert "opset" in _rules(_model([helper.make_node("Relu", ["x"], ["y"])], {}, opset=8))


def test_nonzero_zero_point_is_found():
    assert _rules(_qdq_residual(act_zero=np.int8(3))) == {"zero-point"}


def test_uint8_quantization_is_found():
    assert _rules(_qdq_residual(act_zero=np.uint8(0))) == {"int8"}


def test_per_tensor_weights_are_found():
    assert _rules(_qdq_residual(w_zero=np.int8(0), w_scale=np.float32(0.01))) == {"weight-per-channel"}


def test_weight_axis_other_than_0_is_found():
    assert _rules(_qdq_residual(w_axis=1)) == {"weight-per-channel"}


def test_per_channel_activations_are_found():
    model = _qdq_residual()
    # give the skip branch's activation Q/DQ per-channel scales
    model.graph.initializer.extend([numpy_helper.from_array(np.full(4, 0.1, np.float32), "pc_s"),
                                    numpy_helper.from_array(np.zeros(4, np.int8), "pc_z")])
    for node in model.graph.node:
        if node.name in ("q_skip", "dq_skip"):
            node.input[1], node.input[2] = "pc_s", "pc_z"
    assert _rules(model) == {"activation-per-tensor"}


def test_residual_add_without_qdq_on_both_inputs_is_found():
    model = _qdq_residual(skip_qdq=False)
    findings = check_onnx(model)
    assert {f.rule for f in findings} == {"residual-add"} and "skip" in findings[0].message


@pytest.mark.parametrize("op", ["Conv", "Gemm", "Add", "QuantizeLinear", "DequantizeLinear", "Resize", "Softmax"])
def test_list_holds_the_ops_our_models_use(op):
    assert op in SUPPORTED_OPS


def test_a_residual_add_kept_in_float_on_purpose_is_not_a_finding():
    """``--min-agreement`` may keep a residual Add in float: TensorRT should run it in FP16/FP32."""
    model = _qdq_residual(skip_qdq=False)
    add = next(n for n in model.graph.node if n.op_type == "Add")
    add.name = "/layer1/residual_add_0/Add"  # TorchScript's name for module layer1.residual_add_0
    assert {f.rule for f in check_onnx(model)} == {"residual-add"}
    assert check_onnx(model, float_layers=["layer1.residual_add_0"]) == []
    assert {f.rule for f in check_onnx(model, float_layers=["layer2.residual_add_0"])} == {"residual-add"}
    add.name = "node_Add_12"  # ONNX Runtime PTQ excludes ONNX node names
    assert check_onnx(model, float_layers=["node_Add_12"]) == []


def test_an_add_between_float_ops_is_not_a_residual_join():
    """S4's covariance math adds float tensors next to a quantized backbone: no INT8 to fuse into."""
    model = _qdq_residual()
    model.graph.node.extend([helper.make_node("Relu", ["y"], ["r1"], name="float_a"),
                             helper.make_node("Sigmoid", ["y"], ["r2"], name="float_b"),
                             helper.make_node("Add", ["r1", "r2"], ["z"], name="float_add")])
    model.graph.output[0].name = "z"
    assert check_onnx(model) == []


def test_an_add_after_a_quantized_conv_through_batchnorm_is_a_residual_join():
    model = _qdq_residual(skip_qdq=False)
    conv = next(n for n in model.graph.node if n.op_type == "Conv")
    conv.output[0] = "c_raw"
    for name, value in (("bn_s", np.ones(4, np.float32)), ("bn_b", np.zeros(4, np.float32)),
                        ("bn_m", np.zeros(4, np.float32)), ("bn_v", np.ones(4, np.float32))):
        model.graph.initializer.append(numpy_helper.from_array(value, name))
    model.graph.node.insert(list(model.graph.node).index(conv) + 1, helper.make_node(
        "BatchNormalization", ["c_raw", "bn_s", "bn_b", "bn_m", "bn_v"], ["c"], name="bn"))
    assert _rules(model) == {"residual-add"}
