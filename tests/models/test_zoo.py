"""The seed models and their controls: shapes, gradients, dynamic batch, paper figures, losses.

Models run at their registered ``test_input_size`` (64×64 for the 224 models, whose graphs are
fully convolutional up to a global pool) so the file stays fast on a CPU; parameter and MAC
counts are taken at the paper's input size, where the paper gives figures. Export and runtime
parity are tested with the export matrix, not here.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from feredge.models import PaperFigures, count_macs, count_params, create_model, get_entry
from feredge.models.registry import PAPER_TOLERANCE

ZOO = [
    "resnet18",
    "resnet50",
    "shufflenet_v2",
    "csam_net",
    "resnet50_ca_simam_sc",
    "eac_resnet50",
    "lfer_ldl",
]
SEEDS = {"csam_net": "S0", "resnet50_ca_simam_sc": "S1", "eac_resnet50": "S2", "lfer_ldl": "S3"}


def _input_shape(name: str) -> tuple[int, int, int]:
    entry = get_entry(name)
    size = entry.test_input_size or entry.spec.input_size
    return (entry.spec.num_channels, *size)


def _build(name: str) -> nn.Module:
    torch.manual_seed(0)
    return create_model(name, **get_entry(name).test_kwargs)


def _within(measured: float, paper: float, tol: float = 0.05) -> bool:
    return abs(measured - paper) <= tol * paper


@pytest.mark.parametrize("name", ZOO)
def test_registered_metadata(name: str) -> None:
    entry = get_entry(name)
    assert entry.seed == SEEDS.get(name, "control")
    assert len(entry.labels) == 7
    assert entry.spec.input_size == ((48, 48) if name == "csam_net" else (224, 224))
    assert entry.spec.channels == ("gray" if name == "csam_net" else "rgb")


@pytest.mark.parametrize("name", ZOO)
def test_forward_backward(name: str) -> None:
    model = _build(name).train()
    x = torch.randn(2, *_input_shape(name))
    logits = model(x)
    assert logits.shape == (2, len(get_entry(name).labels))
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert sum(float(g.abs().sum()) for g in grads) > 0


@pytest.mark.parametrize("name", ZOO)
def test_dynamic_batch(name: str) -> None:
    model = _build(name).eval()
    x = torch.randn(3, *_input_shape(name))
    with torch.no_grad():
        three = model(x)
        one = model(x[:1])
    assert three.shape == (3, 7) and one.shape == (1, 7)
    torch.testing.assert_close(one, three[:1], rtol=1e-4, atol=1e-4)  # rows do not interact in eval


PAPER = [n for n in ZOO if get_entry(n).paper.params_m is not None or get_entry(n).paper.paper_macs_m is not None]


@pytest.mark.parametrize("name", PAPER)
def test_paper_figures(name: str) -> None:
    """At the paper's input size: within the entry's tolerance of its figures (5 % unless a finding says why)."""
    entry = get_entry(name)
    paper = entry.paper
    assert paper.tolerance <= PAPER_TOLERANCE or paper.finding
    model = create_model(name)
    size = paper.input_size or entry.spec.input_size
    shape = (entry.spec.num_channels, *size)
    if paper.params_m is not None:
        assert _within(count_params(model) / 1e6, paper.params_m, paper.tolerance)
    if paper.paper_macs_m is not None:
        assert _within(count_macs(model, shape) / 1e6, paper.paper_macs_m, paper.tolerance)


def test_csam_net_params_match_paper() -> None:
    # S0's only figure, reached without a finding: 11.34 M.
    assert not get_entry("csam_net").paper.finding
    assert _within(count_params(create_model("csam_net")) / 1e6, 11.34, 0.01)


@pytest.mark.parametrize(
    ("name", "params_m", "flops_m"), [("lfer_ldl", 1.26, 294.60), ("shufflenet_v2", 1.23, 291.48)]
)
def test_s3_flops_are_twice_macs(name: str, params_m: float, flops_m: float) -> None:
    # The S3 finding, recorded in both entries: its "FLOPs" are 2 × MACs; parameters match as they are.
    paper = get_entry(name).paper
    assert (paper.params_m, paper.flops_m, paper.macs_m) == (params_m, flops_m, None)
    assert "multiply-accumulate as two" in paper.finding and paper.tolerance == PAPER_TOLERANCE
    model = create_model(name)
    assert _within(count_params(model) / 1e6, params_m)
    assert _within(2 * count_macs(model, (3, 224, 224)) / 1e6, flops_m)


def test_a_flops_figure_or_a_looser_tolerance_cannot_be_registered_without_a_finding() -> None:
    with pytest.raises(ValueError, match="FLOPs figure needs a finding"):
        PaperFigures(params_m=1.0, flops_m=300.0)
    with pytest.raises(ValueError, match="tolerance above 5% needs a finding"):
        PaperFigures(params_m=1.0, tolerance=0.1)
    assert PaperFigures(params_m=1.0, tolerance=0.1, finding="why").tolerance == 0.1


# --- S0: center loss ---------------------------------------------------------------------------


def test_csam_features_and_center_loss() -> None:
    from feredge.models.csam_net import CenterLoss, joint_loss

    model = _build("csam_net").train()
    x, y = torch.randn(4, 1, 48, 48), torch.tensor([0, 1, 1, 6])
    feats = model.features(x)
    assert feats.shape == (4, model.embed_dim)
    crit = CenterLoss(7, model.embed_dim, beta=0.5)
    loss = joint_loss(model.classifier(feats), feats, y, crit, lam=0.01)
    assert torch.isfinite(loss)
    loss.backward()
    assert crit.centers.grad is None  # centres move by update_centers, not the optimiser

    # Features sitting on their centres cost nothing; update_centers moves a centre towards its class.
    centers = torch.randn(7, 5)
    crit = CenterLoss(7, 5)
    crit.centers.copy_(centers)
    labels = torch.tensor([2, 2, 4])
    assert float(crit(centers[labels], labels)) == 0.0
    feats = torch.randn(3, 5)
    before = crit(feats, labels)
    crit.update_centers(feats, labels)
    assert crit(feats, labels) < before
    torch.testing.assert_close(crit.centers[0], centers[0])  # absent classes stay put


# --- S2: CAM consistency ----------------------------------------------------------------------


def test_eac_cams_and_consistency_loss() -> None:
    from feredge.models.eac import eac_consistency_loss

    model = _build("eac_resnet50").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        logits, cams = model.forward_with_cam(x)
        _, cams_flipped = model.forward_with_cam(torch.flip(x, dims=(-1,)))
    assert cams.shape[:2] == (2, 7)
    torch.testing.assert_close(logits, model(x))
    # GAP of the CAM plus the FC bias is the logit: the CAMs decompose the logits spatially.
    torch.testing.assert_close(cams.mean(dim=(2, 3)) + model.fc.bias, logits, rtol=1e-4, atol=1e-4)
    loss = eac_consistency_loss(cams, cams_flipped)
    assert torch.isfinite(loss) and loss >= 0

    # A flip-consistent pair costs exactly zero; a mismatch costs its mean squared difference.
    m = torch.randn(2, 7, 4, 4)
    assert float(eac_consistency_loss(m, torch.flip(m, dims=(-1,)))) == 0.0
    assert torch.isclose(eac_consistency_loss(m, torch.flip(m, dims=(-1,)) + 1.0), torch.tensor(1.0))


# --- S3: PDWRes, combo and LDL losses -----------------------------------------------------------


def test_pdwres_quadrants_are_independent() -> None:
    from feredge.models.lfer_ldl import PDWRes

    block = PDWRes(24, 116).eval()
    x = torch.randn(1, 24, 56, 56)
    with torch.no_grad():
        out = block(x)
        x2 = x.clone()
        x2[..., :28, :28] += 1.0  # change the top-left quadrant only
        out2 = block(x2)
    assert out.shape == (1, 116, 28, 28)
    assert not torch.allclose(out[..., :14, :14], out2[..., :14, :14])
    torch.testing.assert_close(out[..., 14:, :], out2[..., 14:, :])
    torch.testing.assert_close(out[..., :14, 14:], out2[..., :14, 14:])


def test_combo_and_ldl_losses() -> None:
    from feredge.models.lfer_ldl import combo_loss, ldl_kl_loss

    target = torch.tensor([0, 3, 6])
    logits = torch.randn(3, 7, requires_grad=True)
    loss = combo_loss(logits, target, alpha=0.5, beta=0.2)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(logits.grad).all()
    perfect = 30.0 * F.one_hot(target, 7).float()
    assert combo_loss(perfect, target) < 1e-3
    assert combo_loss(perfect, target) < combo_loss(-perfect, target)
    # β weights the positive (FN) terms, 1 − β the negative (FP) ones: α = β = 1 leaves cross-entropy / C.
    torch.testing.assert_close(
        combo_loss(logits.detach(), target, alpha=1.0, beta=1.0), F.cross_entropy(logits.detach(), target) / 7
    )
    assert torch.isfinite(combo_loss(logits, F.one_hot(target, 7).float()))  # one-hot targets work too

    dist = F.softmax(torch.randn(3, 7), dim=1)
    assert abs(float(ldl_kl_loss(torch.log(dist), dist))) < 1e-6
    student = torch.randn(3, 7, requires_grad=True)
    kl = ldl_kl_loss(student, dist)
    kl.backward()
    assert kl > 0 and torch.isfinite(student.grad).all()
    # Zero-probability teacher classes contribute nothing (no 0 · log 0 = NaN).
    hard = F.one_hot(target, 7).float()
    assert torch.isfinite(ldl_kl_loss(student.detach(), hard))
    torch.testing.assert_close(
        ldl_kl_loss(student.detach(), hard), F.cross_entropy(student.detach(), target) / 7
    )


# --- shared layers ------------------------------------------------------------------------------


def test_space_to_depth_and_simam() -> None:
    from feredge.models.layers import SimAM, SpaceToDepthConv, space_to_depth

    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    y = space_to_depth(x)
    assert y.shape == (2, 12, 2, 2)
    torch.testing.assert_close(y.sum(dim=(1, 2, 3)), x.sum(dim=(1, 2, 3)))  # a permutation of pixels
    torch.testing.assert_close(y[:, :3], x[..., ::2, ::2])
    assert SpaceToDepthConv(3)(x).shape == (2, 3, 2, 2)
    assert sum(p.numel() for p in SimAM().parameters()) == 0
    out = SimAM()(torch.randn(2, 8, 5, 5))
    assert out.shape == (2, 8, 5, 5) and torch.isfinite(out).all()
    assert torch.isfinite(SimAM()(torch.randn(2, 8, 1, 1))).all()  # a 1×1 map has no variance


@pytest.mark.parametrize("name", ["lfer_ldl", "shufflenet_v2"])
def test_papers_flops_are_compared_as_macs(name: str) -> None:
    """S3 reports 'FLOPs' = 2 × MACs: halved, its figures are within 5 % of what we count."""
    entry = get_entry(name)
    assert entry.paper.macs_m is None and entry.paper.flops_m is not None
    size = entry.paper.input_size or entry.spec.input_size
    macs = count_macs(create_model(name), (entry.spec.num_channels, *size)) / 1e6
    assert _within(macs, entry.paper.flops_m / 2)
