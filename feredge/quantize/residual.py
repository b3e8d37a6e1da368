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

Models whose Python forward ``torch.fx`` cannot trace (control flow on shapes: SimAM's
``max(h·w − 1, 1)``, S4's crop boxes and covariance) are rewritten as far as tracing goes: the
smallest untraceable submodules become opaque leaves (their adds stay float; their convolutions
are still quantized, ModelOpt works on modules), and when the model's own forward is the
untraceable part, each child is rewritten on its own. The result is a ``GraphModule`` in the
first case and the model itself, with rewritten children, in the second.
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


class _LeafTracer(fx.Tracer):
    """fx's tracer with some module instances kept opaque (called, not traced into)."""

    def __init__(self, leaves: set[int]) -> None:
        super().__init__()
        self.leaves = leaves

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return id(m) in self.leaves or super().is_leaf_module(m, module_qualified_name)


def _trace(model: nn.Module, leaves: set[int]) -> fx.GraphModule:
    tracer = _LeafTracer(leaves)
    graph = tracer.trace(model)
    return fx.GraphModule(tracer.root, graph, model.__class__.__name__)


def _untraceable(model: nn.Module) -> set[int]:
    """The smallest submodules fx cannot trace (children first, so a parent is only opaque when its
    own forward is the problem). Any exception counts: tracing runs arbitrary model code."""
    leaves: set[int] = set()

    def visit(module: nn.Module) -> None:
        for child in module.children():
            visit(child)
        if module is model:
            return
        try:
            _trace(module, leaves)
        except Exception:  # fx raises TraceError, TypeError, RuntimeError... from user code
            leaves.add(id(module))

    visit(model)
    return leaves


def insert_residual_adds(model: nn.Module) -> nn.Module:
    """``model`` with every traceable tensor + tensor add replaced by a named :class:`ResidualAdd`.

    Module names (``residual_add_<n>``, in graph order; prefixed by the child's name when
    children are rewritten one by one) are stable for a given architecture, and the other modules
    keep their qualified names, so state-dict keys are unchanged. See the module doc for models
    fx cannot trace whole.
    """
    try:
        graph_module = fx.symbolic_trace(model)
    except Exception:  # see _untraceable
        leaves = _untraceable(model)
        try:
            graph_module = _trace(model, leaves)
        except Exception:  # the model's own forward: rewrite each child instead
            for name, child in list(model.named_children()):
                setattr(model, name, insert_residual_adds(child))
            return model
    return _rewrite_adds(graph_module, model.training)


def _rewrite_adds(graph_module: fx.GraphModule, training: bool) -> fx.GraphModule:
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
    graph_module.training = training
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
