"""ModelOpt QAT insertion (incl. residual-Add inputs) and exact QAT checkpoint round trips."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from feredge.checkpoint import CheckpointMeta, load_checkpoint
from feredge.models import get_entry
from feredge.quantize.evaluate import torch_logits
from feredge.quantize.modelopt_qat import is_qat_extra, qat_info, quantized_layers, quantizers, save_qat_checkpoint
from feredge.quantize.residual import ResidualAdd, insert_residual_adds
from feredge.quantize.state_codec import from_json, to_json


def test_every_residual_add_becomes_a_module(float_model) -> None:
    traced = insert_residual_adds(float_model)
    adds = [m for m in traced.modules() if isinstance(m, ResidualAdd)]
    assert len(adds) == 4  # one per mini-Xception module
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), float_model(x), rtol=0, atol=0)


def test_quantizers_follow_the_recipe(quantized, float_model) -> None:
    found = quantizers(quantized)
    enabled = {name: q for name, q in found.items() if q.is_enabled}
    for i in range(4):  # both inputs of every residual Add
        assert f"residual_add_{i}.input_quantizer" in enabled
        assert f"residual_add_{i}.residual_input_quantizer" in enabled
    weights = [q for name, q in enabled.items() if name.endswith("weight_quantizer")]
    inputs = [q for name, q in enabled.items() if name.endswith("input_quantizer")]
    assert len(weights) == 23 and all(q.axis == 0 and q.num_bits == 8 and not q.unsigned for q in weights)
    assert all(q.axis is None and q.num_bits == 8 for q in inputs)
    assert not any(name.startswith(("bn", "blocks.0.bn")) for name in enabled)  # BatchNorm stays float
    assert all(float(q.amax.min()) > 0 for q in enabled.values())
    # the caller's float model is untouched (fx shares submodules; quantize_model works on a copy)
    assert not quantizers(float_model)


def test_state_codec_round_trip(quantized) -> None:
    import json

    import modelopt.torch.opt as mto

    state = mto.modelopt_state(quantized)
    text = json.dumps(to_json(state))
    assert from_json(json.loads(text)) == state


def test_qat_checkpoint_round_trip_is_exact(quantized, real_faces: np.ndarray, tmp_path: Path) -> None:
    entry = get_entry("mini_xception")
    meta = CheckpointMeta("mini_xception", {}, entry.spec, entry.labels)
    info = qat_info(quantized, method="ptq", overflow_fix=False)
    path = save_qat_checkpoint(tmp_path / "qat", quantized, meta, info)
    sidecar = path.with_suffix(".json").read_text()
    assert "modelopt_state" in sidecar
    restored, restored_meta = load_checkpoint(path)  # through the loader feredge.quantize registers
    assert is_qat_extra(restored_meta.extra) and restored_meta.loaders == {"qat": "feredge.quantize"}
    assert quantized_layers(restored) == quantized_layers(quantized)
    faces = real_faces[:16]
    np.testing.assert_array_equal(torch_logits(restored, faces), torch_logits(quantized, faces))
    # the float twin that export uses for its fp32 steps has no active quantizer
    assert not any(q.is_enabled for q in quantizers(restored.deploy()).values())


class _ShapeGate(torch.nn.Module):
    """Control flow on a shape, like SimAM's ``max(h·w − 1, 1)``: fx cannot trace it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = max(x.shape[2] * x.shape[3] - 1, 1)
        return x * torch.sigmoid(x.pow(2).sum(dim=(2, 3), keepdim=True) / n)


class _Block(torch.nn.Module):
    def __init__(self, gate: bool) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)
        self.gate = _ShapeGate() if gate else torch.nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(self.conv(x)) + x


class _Net(torch.nn.Module):
    def __init__(self, root_untraceable: bool) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(1, 4, 3, padding=1)
        self.blocks = torch.nn.Sequential(_Block(True), _Block(False))
        self.head = torch.nn.Linear(4, 7)
        self.root_untraceable = root_untraceable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.blocks(self.stem(x))
        if self.root_untraceable and y.shape[-1] > 1:  # like S4's crop boxes: Python on shapes
            y = y[..., : y.shape[-1] // 2 * 2]
        return self.head(y.mean(dim=(2, 3)))


@pytest.mark.parametrize("root_untraceable", [False, True])
def test_residual_adds_are_found_in_models_fx_cannot_trace_whole(root_untraceable: bool) -> None:
    """Only the untraceable part stays opaque: both blocks' residual adds still get quantizers."""
    from feredge.quantize.modelopt_qat import prepare, quantize_model

    torch.manual_seed(0)
    model = _Net(root_untraceable).eval()
    traced = insert_residual_adds(copy.deepcopy(model))
    assert isinstance(traced, torch.fx.GraphModule) != root_untraceable
    assert len([m for m in traced.modules() if isinstance(m, ResidualAdd)]) == 2
    x = torch.randn(2, 1, 6, 6)
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x), rtol=0, atol=0)
    assert sorted(traced.state_dict()) == sorted(model.state_dict())
    assert callable(getattr(prepare(model), "deploy", None))
    quantized = quantize_model(model, x.numpy(), overflow_fix=False)
    adds = [name for name, q in quantizers(quantized).items() if "residual_input_quantizer" in name and q.is_enabled]
    assert len(adds) == 2
    with torch.no_grad():
        twin = quantized.deploy()
        torch.testing.assert_close(twin(x), model(x), rtol=1e-5, atol=1e-5)  # the float twin is the float model
    from feredge.quantize.modelopt_qat import restore

    torch.manual_seed(0)
    again = restore(_Net(root_untraceable).eval(), qat_info(quantized, method="ptq", overflow_fix=False),
                    quantized.state_dict())  # what loading a QAT checkpoint does
    with torch.no_grad():
        torch.testing.assert_close(again(x), quantized(x), rtol=0, atol=0)
