"""ModelOpt QAT insertion (incl. residual-Add inputs) and exact QAT checkpoint round trips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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
    restored, restored_meta = load_checkpoint(path)
    assert is_qat_extra(restored_meta.extra)
    assert quantized_layers(restored) == quantized_layers(quantized)
    faces = real_faces[:16]
    np.testing.assert_array_equal(torch_logits(restored, faces), torch_logits(quantized, faces))
    # the float twin that export uses for its fp32 steps has no active quantizer
    assert not any(q.is_enabled for q in quantizers(restored.deploy()).values())
