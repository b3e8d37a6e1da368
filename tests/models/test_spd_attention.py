"""SPD-Attention (S4): training graph, eigh-free deploy graph, and its ONNX export.

The deploy graph swaps eigh (no ONNX/ORT/OpenVINO/TensorRT kernel) for matmul iterations, so the
tests pin down (a) that the iterative matrix log matches eigh over the whole range of condition
numbers the model can produce, (b) that deploy and eigh graphs give the same logits on real faces,
(c) that the exported graph has no eigen/SVD-like op and matches PyTorch in onnxruntime.
Full-size (224) figures: ``scripts/spd_deploy_report.py`` → ``benchmarks/spd_deploy_report.md``.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from feredge.labels import RAFDB_7
from feredge.models import create_model, deploy_graph, get_entry
from feredge.models.spd_attention import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    SPDAttention,
    eigenvalue_regularizer,
    fixed_crop_boxes,
    spd_logm_eigh,
    spd_logm_iterative,
)

ENTRY = get_entry("spd_attention")
SIZE = ENTRY.test_input_size or (64, 64)

# Ops that ONNX Runtime, OpenVINO and TensorRT all run; anything else in the graph is a regression.
ALLOWED_OPS = {
    "Add", "BatchNormalization", "Cast", "Concat", "Constant", "Conv", "Div", "Expand", "Flatten",
    "Gather", "GatherND", "Gemm", "GlobalAveragePool", "Identity", "Log", "MatMul", "MaxPool", "Mul",
    "ReduceMean", "ReduceSum", "Relu", "Reshape", "Shape", "Slice", "Softmax", "Sqrt", "Squeeze", "Sub",
    "Transpose", "Unsqueeze",
}  # fmt: skip


def _faces(n: int) -> torch.Tensor:
    """Real faces (LFW 25×25 from scikit-image + the astronaut), upscaled, RGB, ImageNet-normalised."""
    import skimage
    from skimage import data

    lfw = np.load(os.path.join(skimage.data_dir, "lfw_subset.npy"))[: n - 1].astype(np.float32)
    gray = torch.from_numpy(lfw).unsqueeze(1).expand(-1, 3, -1, -1)
    astro = torch.from_numpy(data.astronaut()[30:230, 150:350].astype(np.float32) / 255).permute(2, 0, 1)
    up = [F.interpolate(t, size=SIZE, mode="bilinear", antialias=True) for t in (gray, astro[None])]
    images = torch.cat(up).clamp(0, 1)
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


@pytest.fixture(scope="module")
def model() -> SPDAttention:
    torch.manual_seed(0)
    m = create_model("spd_attention", **ENTRY.test_kwargs)
    assert isinstance(m, SPDAttention)
    return m.eval()


@pytest.fixture(scope="module")
def inputs() -> torch.Tensor:
    noise = torch.randn(2, 3, *SIZE, generator=torch.Generator().manual_seed(1))
    faces = _faces(6)
    return torch.cat([faces, faces.flip(-1)[:2], noise])


def test_registry_entry() -> None:
    assert ENTRY.labels == RAFDB_7 and ENTRY.seed == "S4"
    spec = ENTRY.spec
    assert spec.input_size == (224, 224) and spec.channels == "rgb"
    assert spec.mean == IMAGENET_MEAN and spec.std == IMAGENET_STD and spec.scale == pytest.approx(1 / 255)
    # The deploy crops: 4 corners of side round(√0.75·224) = 194.
    boxes = fixed_crop_boxes(224, 224, 4, 0.75)
    assert boxes == [(0, 0, 194, 194), (0, 30, 194, 194), (30, 0, 194, 194), (30, 30, 194, 194)]


def test_forward_backward_training_graph() -> None:
    torch.manual_seed(1)
    m = create_model("spd_attention", **ENTRY.test_kwargs)
    assert isinstance(m, SPDAttention)
    m.train()  # random crops, eigh path
    x = torch.randn(2, 3, *SIZE)
    logits, reg = m.forward_with_regularizer(x)
    assert logits.shape == (2, len(RAFDB_7)) and reg.ndim == 0 and reg >= 0
    loss = F.cross_entropy(logits, torch.tensor([0, 3])) + 0.01 * reg
    loss.backward()
    for name in ("stem.0.weight", "layer3.0.conv1.weight", "bimap.free", "attention.0.weight", "fc.weight"):
        grad = dict(m.named_parameters())[name].grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0, name


def test_bimap_stays_semi_orthogonal_under_sgd_with_weight_decay() -> None:
    """W Wᵀ = I is what bounds the condition number; it must survive an optimiser step."""
    torch.manual_seed(2)
    m = create_model("spd_attention", **ENTRY.test_kwargs)
    opt = torch.optim.SGD(m.bimap.parameters(), lr=0.5, momentum=0.9, weight_decay=5e-4)
    for _ in range(3):
        w = m.bimap.weight
        loss = (w @ torch.randn(256, 8)).square().sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    w = m.bimap.weight.detach()
    torch.testing.assert_close(w @ w.t(), torch.eye(w.shape[0]), atol=1e-5, rtol=0)


def test_dynamic_batch(model: SPDAttention, inputs: torch.Tensor) -> None:
    deploy = deploy_graph(model)
    with torch.no_grad():
        for graph in (model, deploy):
            whole = graph(inputs[:3])
            ones = torch.cat([graph(inputs[i : i + 1]) for i in range(3)])
            torch.testing.assert_close(whole, ones, atol=1e-4, rtol=1e-4)


def test_deploy_matches_eigh_graph(model: SPDAttention, inputs: torch.Tensor) -> None:
    with torch.no_grad():
        ref = model(inputs)
        dep = deploy_graph(model)(inputs)
        sigma = torch.linalg.eigvalsh(model.spd_matrices(inputs).double())
    rel = ((dep - ref).abs().amax(1) / ref.abs().amax(1)).max().item()
    assert rel < 1e-4, rel
    assert torch.equal(ref.argmax(1), dep.argmax(1))
    # Dropping ReEig's clamp is exact when no eigenvalue is below ε, and the condition number stays
    # inside the range the matrix log is tuned for.
    assert sigma[..., 0].min() > model.reeig_eps
    assert (sigma[..., -1] / sigma[..., 0]).max() <= (1 + model.cov_lambda) / model.cov_lambda


def test_smallest_eigenvalue_bound(model: SPDAttention, inputs: torch.Tensor) -> None:
    """σ_min(W (Cov + λ·tr·I) Wᵀ) ≥ λ·tr(Cov): the bound behind the deploy graph's fixed iterations."""
    with torch.no_grad():
        f3, _ = model._branch(inputs)
        feats = f3.flatten(2)
        feats = feats - feats.mean(-1, keepdim=True)
        trace = feats.square().sum((1, 2)) / (feats.shape[-1] - 1)
        spd = model.spd_matrices(inputs)[:, 0]  # the whole-face view
    sigma_min = torch.linalg.eigvalsh(spd.double())[:, 0]
    assert (sigma_min >= model.cov_lambda * trace.double() * (1 - 1e-4)).all()


def _random_spd(n: int, d: int, cond: float, gen: torch.Generator) -> torch.Tensor:
    q, _ = torch.linalg.qr(torch.randn(n, d, d, dtype=torch.float64, generator=gen))
    e = torch.exp(torch.rand(n, d, dtype=torch.float64, generator=gen) * math.log(cond))
    e[:, 0], e[:, 1] = 1.0, cond
    e[: n // 2, 2:] = cond  # half with one small eigenvalue only: the worst case of the ‖·‖_F scaling
    e = e * torch.exp(3 * torch.randn(n, 1, dtype=torch.float64, generator=gen))  # any overall scale
    return (q * e.unsqueeze(-2)) @ q.transpose(-1, -2)


@pytest.mark.parametrize("cond", [2.0, 30.0, 300.0, 1001.0])
def test_iterative_logm_matches_eigh(cond: float) -> None:
    """Up to (1+λ)/λ = 1001, the model's provable bound on the condition number."""
    x = _random_spd(400, 16, cond, torch.Generator().manual_seed(int(cond)))
    exact, _ = spd_logm_eigh(x)
    approx = spd_logm_iterative(x.float()).double()
    rel = ((approx - exact).abs().amax((-2, -1)) / exact.abs().amax((-2, -1))).max().item()
    assert rel < 1e-4, rel
    torch.testing.assert_close(approx, approx.transpose(-1, -2), atol=1e-6, rtol=0)


def test_logeig_backward_matches_autograd_and_survives_repeated_eigenvalues() -> None:
    gen = torch.Generator().manual_seed(4)
    a = torch.randn(3, 6, 6, dtype=torch.float64, generator=gen)
    x = a @ a.transpose(-1, -2) + 0.1 * torch.eye(6, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda t: spd_logm_eigh(0.5 * (t + t.mT), 0.3), (x.clone().requires_grad_(),)
    )
    g = torch.randn(3, 6, 6, dtype=torch.float64, generator=gen)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    s, u = torch.linalg.eigh(x1)
    ((u * s.log().unsqueeze(-2)) @ u.mT * g).sum().backward()
    (spd_logm_eigh(x2)[0] * g).sum().backward()
    assert x1.grad is not None and x2.grad is not None
    torch.testing.assert_close(x1.grad + x1.grad.mT, x2.grad + x2.grad.mT)
    # A view with constant features gives X = 0: every eigenvalue clamped to ε, all equal.
    z = torch.zeros(2, 4, 4, requires_grad=True)
    log, sigma = spd_logm_eigh(z * 1.0, 1e-4)
    (log.sum() + eigenvalue_regularizer(sigma)).backward()
    assert z.grad is not None and torch.isfinite(z.grad).all()


def test_eigenvalue_regularizer() -> None:
    assert eigenvalue_regularizer(torch.ones(5)).item() == 0.0
    sigma = torch.tensor([0.5, 2.0])
    expected = ((sigma - 1 - sigma.log()) ** 2).mean()
    torch.testing.assert_close(eigenvalue_regularizer(sigma), expected)


@pytest.mark.slow
def test_onnx_export_has_no_eigen_op_and_matches_onnxruntime(
    model: SPDAttention, inputs: torch.Tensor
) -> None:
    import onnx
    import onnxruntime as ort

    from feredge.export.onnx_export import EXPORTERS, INPUT_NAME

    deploy = deploy_graph(model)
    data = EXPORTERS["dynamo"](deploy, (3, *SIZE), 64, 18)
    proto = onnx.load_from_string(data)
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == 18 or any(o.version == 18 for o in proto.opset_import)
    ops = {(n.domain, n.op_type) for n in proto.graph.node}
    assert all(domain in ("", "ai.onnx") for domain, _ in ops), ops
    names = {op for _, op in ops}
    assert not any(w in op.lower() for op in names for w in ("eig", "svd", "inverse", "loop", "if")), names
    assert names <= ALLOWED_OPS, names - ALLOWED_OPS
    assert not proto.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value")  # dynamic batch

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = deploy(inputs).numpy()
    for batch in (inputs[:3], inputs[3:]):  # two batch sizes through one session
        got = session.run(None, {INPUT_NAME: batch.numpy()})[0]
        np.testing.assert_allclose(got, deploy(batch).detach().numpy(), atol=1e-4, rtol=0)
    got_all = np.concatenate(
        [session.run(None, {INPUT_NAME: inputs[i : i + 1].numpy()})[0] for i in range(2)]
    )
    np.testing.assert_allclose(got_all, expected[:2], atol=1e-4, rtol=0)
