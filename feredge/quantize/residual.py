"""Q/DQ on residual-Add inputs: ModelOpt quantizes modules, not the ``a + b`` inside ``forward``.

TensorRT fuses a residual Add into the INT8 convolution before it only when both Add inputs
carry Q/DQ; otherwise the Add (and often the conv) falls back to higher precision and an "INT8"
engine can be slower than FP16 (TensorRT#1992, Model-Optimizer#80). ModelOpt's torch
quantization (0.47) inserts quantizers on Conv/Linear/pooling inputs and weights only; a
functional add stays unquantized. So before ``mtq.quantize`` the deploy graph is traced with
``torch.fx`` and every tensor + tensor add becomes a :class:`ResidualAdd` module, for which a
ModelOpt quantized class (:class:`QuantResidualAdd`) is registered with two per-tensor input
quantizers, ``input_quantizer`` and ``residual_input_quantizer`` (both match ModelOpt's
``*input_quantizer`` pattern). The rewrite is deterministic, so restoring a QAT checkpoint redoes
it on a fresh model before loading the ModelOpt state and the weights.
"""

from __future__ import annotations

import operator

import torch
from torch import fx, nn

ADD_TARGETS = (operator.add, operator.iadd, torch.add)
ADD_PREFIX = "residual_add"


class ResidualAdd(nn.Module):
    """``a + b`` as a module, so a quantizer can sit on each operand."""

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return a + b


def _is_tensor_add(node: fx.Node) -> bool:
    if node.op == "call_function" and node.target in ADD_TARGETS:
        return len(node.args) == 2 and all(isinstance(a, fx.Node) for a in node.args) and not node.kwargs
    if node.op == "call_method" and node.target in ("add", "add_"):
        return len(node.args) == 2 and all(isinstance(a, fx.Node) for a in node.args) and not node.kwargs
    return False


def insert_residual_adds(model: nn.Module) -> fx.GraphModule:
    """``model`` traced with every tensor + tensor add replaced by a named :class:`ResidualAdd`.

    Module names (``residual_add_<n>``, in graph order) are stable for a given architecture, and
    the other modules keep their qualified names, so state-dict keys are unchanged.
    """
    graph_module = fx.symbolic_trace(model)
    count = 0
    for node in list(graph_module.graph.nodes):
        if not _is_tensor_add(node):
            continue
        name = f"{ADD_PREFIX}_{count}"
        count += 1
        graph_module.add_submodule(name, ResidualAdd())
        with graph_module.graph.inserting_after(node):
            replacement = graph_module.graph.call_module(name, args=tuple(node.args))
        node.replace_all_uses_with(replacement)
        graph_module.graph.erase_node(node)
    graph_module.graph.lint()
    graph_module.recompile()
    graph_module.training = model.training
    return graph_module


def residual_add_names(model: nn.Module) -> list[str]:
    return [name for name, module in model.named_modules() if isinstance(module, ResidualAdd)]


_REGISTERED = False


def register_with_modelopt() -> None:
    """Give ModelOpt a quantized class for :class:`ResidualAdd` (idempotent)."""
    global _REGISTERED
    if _REGISTERED:
        return
    from modelopt.torch.quantization.nn import QuantModuleRegistry, TensorQuantizer
    from modelopt.torch.quantization.nn.modules.quant_module import QuantModule
    from modelopt.torch.quantization.tensor_quant import QUANT_DESC_8BIT_PER_TENSOR

    class QuantResidualAdd(QuantModule):
        """Both operands fake-quantized per tensor, then added in float (Q/DQ → Add in ONNX)."""

        def _setup(self) -> None:
            self._register_temp_attribute("input_quantizer", TensorQuantizer(QUANT_DESC_8BIT_PER_TENSOR))
            self._register_temp_attribute("residual_input_quantizer",
                                          TensorQuantizer(QUANT_DESC_8BIT_PER_TENSOR))

        def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
            return self.input_quantizer(a) + self.residual_input_quantizer(b)

    if ResidualAdd not in QuantModuleRegistry:
        QuantModuleRegistry.register({ResidualAdd: "ResidualAdd"})(QuantResidualAdd)
    _REGISTERED = True
