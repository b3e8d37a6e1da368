"""Every registered model exports from a checkpoint and matches PyTorch in both CPU runtimes.

The export is the real one (``feredge.export.exporter.export``): deploy graph → ONNX verified in
onnxruntime → OpenVINO IR verified with f32 forced, each within FP32 atol 1e-4 on real faces
prepared by the model's own spec. Models declare a ``test_input_size``/``test_kwargs`` in the
registry to keep CI in budget with the real architecture. ``EXPORT_CASES`` must list every
registered model: a new model without an entry fails the meta-test.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from feredge.bundle import Bundle
from feredge.checkpoint import CheckpointMeta, save_checkpoint
from feredge.export.exporter import ExportOptions, export
from feredge.models import create_model, get_entry, list_models
from feredge.runtimes.registry import runner_class

#: model → what the export matrix covers for it (documentation for the reader of a failure)
EXPORT_CASES: dict[str, str] = {
    "mini_xception": "shipped default, pretrained weights",
    "csam_net": "S0",
    "resnet50_ca_simam_sc": "S1",
    "eac_resnet50": "S2 deploy graph (plain ResNet-50 classifier)",
    "lfer_ldl": "S3",
    "spd_attention": "S4 deploy graph (eigh replaced by matrix iterations)",
    "resnet18": "control",
    "resnet50": "control",
    "shufflenet_v2": "control",
}


def test_every_registered_model_is_in_the_export_matrix():
    assert set(list_models()) == set(EXPORT_CASES)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPORT_CASES))
def test_export_from_checkpoint_with_parity(name, tmp_path):
    entry = get_entry(name)
    torch.manual_seed(0)
    model = create_model(name, pretrained=entry.pretrained is not None, **entry.test_kwargs)
    spec = entry.spec.replace(input_size=entry.test_input_size) if entry.test_input_size else entry.spec
    # random BN statistics so the graph is not an identity-ish map of freshly initialised layers
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d) and entry.pretrained is None:
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    ckpt = save_checkpoint(tmp_path / "ckpt", model.state_dict(),
                           CheckpointMeta(model=name, model_kwargs=entry.test_kwargs, spec=spec, labels=entry.labels))
    result = export(ExportOptions(target="openvino", checkpoint=ckpt, output=tmp_path / "bundle", max_batch=8))
    parity = {p["runtime"]: p for p in result.manifest["parity"]["results"]}
    assert set(parity) == {"onnxruntime", "openvino (f32)"}
    for runtime, figures in parity.items():
        assert figures["passed"], (runtime, figures["reason"])
        assert figures["samples"] >= 100

    # the bundle runs in every runtime with the same answers, dynamic batch included
    bundle = Bundle.load(result.bundle)
    batch = np.random.default_rng(1).standard_normal((3, *spec.input_shape)).astype(np.float32)
    outputs = {}
    for runtime in ("torch", "onnxruntime", "openvino"):
        with runner_class(runtime).from_bundle(bundle) as runner:
            outputs[runtime] = np.concatenate([runner.infer(batch[:1]), runner.infer(batch[1:])])
    for runtime in ("onnxruntime", "openvino"):
        np.testing.assert_allclose(outputs[runtime], outputs["torch"], atol=1e-4, rtol=1e-3)
    assert outputs["torch"].shape == (3, len(entry.labels))
