"""SPD-Attention (seed S4): local manifold attention over a whole face and n local crops.

Du, Yang, Zhai, Zhang, *Computer Systems & Applications* 2022. One torchvision ResNet-18 (shared
weights) sees the face and ``n`` local crops. For every view the layer3 feature map (``c = 256``
channels, ``wh`` positions) gives a ``c × c`` covariance matrix, made SPD by
``Cov + λ·trace(Cov)·I``; an SPD network (BiMap ``W X Wᵀ`` → ReEig ``U max(εI, Σ) Uᵀ`` → LogEig
``U log(Σ) Uᵀ``) maps it to a symmetric matrix whose upper triangle feeds a small MLP that scores
the view. The scores are softmaxed over the views and weight the views' pooled layer4 vectors;
their sum goes through the classifier.

Design decisions (where the paper is silent or would not deploy):

* **Covariance is c × c** (covariance pooling, as in Acharya et al. whom the paper builds on).
  Read literally, eq. (2) builds a ``wh × wh`` matrix, which would tie BiMap's weight to the
  spatial size and so make the face (14×14 at 224) and the crops (13×13) incompatible.
  ``W Cov Wᵀ`` is computed as ``(W Xc)(W Xc)ᵀ/(wh−1)``: the same algebra without the 256×256 matrix.
* **BiMap's W stays semi-orthogonal** (orthonormal rows) through a QR parametrisation
  (:class:`StiefelBiMap`), the Stiefel constraint of Huang & Van Gool's SPDNet. It makes
  ``W (λ·tr·I) Wᵀ = λ·tr·I``, so every eigenvalue of the BiMap output lies in
  ``[λ·tr(Cov), (1+λ)·tr(Cov)]``: the condition number is at most ``(1+λ)/λ`` (1001 at λ = 1e-3)
  whatever the input. That bound is what lets the deploy graph use a fixed iteration count with a
  known accuracy.
* **ReEig + LogEig are one eigendecomposition** (``U log(max(ε, Σ)) Uᵀ``), done in float64 in the
  training graph so that its values are a clean reference, with a Daleckii–Krein backward that
  stays finite for repeated (e.g. clamped) eigenvalues, where torch's eigh backward gives NaN.
* **Crops.** Deploy (and eval) crops are FIXED crops of the input inside the graph: ``n = 4``
  corner-anchored squares (a 5th would be the centre) of area ratio ``r = 0.75``, i.e. side
  ``round(√r·224) = 194``, taken at native resolution (not resized: the ResNet accepts any size,
  the facial parts keep the scale they have in the whole-face view, the crops cost 25 % fewer
  MACs, and no Resize op whose coordinate rules differ between runtimes enters the graph). The
  deployed graph's only input is the face batch ``(N, 3, 224, 224)``.
  ``training_crops="random"`` (default) draws, in train mode only, ``n`` independent crops of the
  same side at uniformly random positions per sample (the paper's random cropping, r = 0.75);
  ``"fixed"`` trains on the deploy crops. Contract: the attention MLP scores a view from its SPD
  matrix alone and never sees a crop's index or position, so a model trained on random crops is
  evaluated on the fixed corner crops without any change; eval mode always uses the fixed crops,
  so validation numbers are those of the deployed graph.
* **Deploy graph** (:meth:`SPDAttention.deploy`): eigh has no ONNX/ORT/OpenVINO/TensorRT
  equivalent, so LogEig becomes :func:`spd_logm_iterative` (inverse scaling and squaring with
  coupled Newton–Schulz square roots and an inverse-free ``asinh`` series, only matmul/add/mul/
  sqrt/log/div, fixed iteration counts). ReEig's clamp is dropped there: it is provably inactive
  whenever ``λ·tr(Cov) ≥ ε`` (smallest eigenvalue ≥ λ·tr(Cov), see above), i.e. unless the whole
  layer3 map is nearly constant (``tr(Cov) < ε/λ = 0.1``); ``scripts/spd_deploy_report.py``
  measures how far real inputs are from that.
"""

from __future__ import annotations

import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models import resnet18

from feredge.labels import RAFDB_7
from feredge.models.registry import RESNET_RECIPE, PaperFigures, register_model
from feredge.preprocess.spec import PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Iteration schedule of the deploy matrix log, for eigenvalue ratios up to the model's provable
# bound (1+λ)/λ = 1001 at the default λ. Since every iterate is a polynomial in the input, each
# eigenvalue follows the scalar recurrence; an exhaustive search over schedules on a log grid of
# eigenvalues in [2.5e-4, 1]·2 (worst case of the scaling: 1/(κ·√d)) picked the cheapest one whose
# log error stays ≤ 2e-5 (8e-6 for this one): the input is scaled so that its eigenvalues lie in
# (0, 2] (Frobenius norm ≥ largest eigenvalue), 4 successive coupled Newton–Schulz square roots
# with 13, 8, 6 and 4 iterations bring them within |log| ≤ 0.48 of 1, and 5 terms of the asinh
# series finish the job. In float32 round-off dominates (~1e-5 relative, measured in
# benchmarks/spd_deploy_report.md); beyond the bound the error grows (6e-3 at κ = 1e4).
LOGM_SQRT_ITERS: tuple[int, ...] = (13, 8, 6, 4)
LOGM_SERIES_TERMS = 5
LOGM_PRESCALE = 2.0

# Maclaurin coefficients of asinh(x) = Σ a_j x^(2j+1).
_ASINH_COEFFS = tuple(
    (-1) ** j * math.factorial(2 * j) / (4**j * math.factorial(j) ** 2 * (2 * j + 1)) for j in range(8)
)

_FIXED_ANCHORS = ("top_left", "top_right", "bottom_left", "bottom_right", "center")


# --------------------------------------------------------------------------------------------------
# Matrix functions


class _LogEig(torch.autograd.Function):
    """``(U log(max(ε, Σ)) Uᵀ, max(ε, Σ))`` in float64 with a Daleckii–Krein backward.

    torch's eigh backward divides by eigenvalue gaps and returns NaN for repeated eigenvalues
    (e.g. several clamped to ε, or a view whose features are constant). The derivative of a
    spectral function needs no such division: ``dF = U (K ∘ Uᵀ dX U) Uᵀ`` with the Loewner matrix
    ``K_ij = (f(σ_i) − f(σ_j)) / (σ_i − σ_j)``, ``K_ii = f'(σ_i)``, which stays finite.
    """

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: Tensor, eps: float) -> tuple[Tensor, Tensor]:
        xd = x.double()
        sigma, u = torch.linalg.eigh(0.5 * (xd + xd.transpose(-1, -2)))
        clamped = sigma.clamp_min(eps) if eps > 0 else sigma
        f = torch.log(clamped)
        log = (u * f.unsqueeze(-2)) @ u.transpose(-1, -2)
        ctx.save_for_backward(sigma, u, clamped, f)
        ctx.eps = eps  # type: ignore[attr-defined]
        ctx.dtype = x.dtype  # type: ignore[attr-defined]
        return log.to(x.dtype), clamped.to(x.dtype)

    @staticmethod
    def backward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx, g_log: Tensor | None, g_sigma: Tensor | None
    ) -> tuple[Tensor | None, None]:
        sigma, u, clamped, f = ctx.saved_tensors  # type: ignore[attr-defined]
        active = sigma > ctx.eps  # type: ignore[attr-defined]
        fprime = torch.where(active, 1.0 / clamped, torch.zeros_like(clamped))
        inner = torch.zeros_like(u)
        if g_log is not None:
            g = g_log.double()
            g = 0.5 * (g + g.transpose(-1, -2))
            gap = sigma.unsqueeze(-1) - sigma.unsqueeze(-2)
            scale = torch.maximum(sigma.abs().unsqueeze(-1), sigma.abs().unsqueeze(-2)).clamp_min(1e-300)
            close = gap.abs() <= 1e-9 * scale
            divided = (f.unsqueeze(-1) - f.unsqueeze(-2)) / torch.where(close, torch.ones_like(gap), gap)
            loewner = torch.where(close, 0.5 * (fprime.unsqueeze(-1) + fprime.unsqueeze(-2)), divided)
            inner = inner + loewner * (u.transpose(-1, -2) @ g @ u)
        if g_sigma is not None:
            inner = inner + torch.diag_embed(g_sigma.double() * active)
        grad = u @ inner @ u.transpose(-1, -2)
        return grad.to(ctx.dtype), None  # type: ignore[attr-defined]


def spd_logm_eigh(x: Tensor, eps: float = 0.0) -> tuple[Tensor, Tensor]:
    """ReEig + LogEig by eigendecomposition: ``(U log(max(ε, Σ)) Uᵀ, max(ε, Σ))``.

    Computed in float64 (a 16×16 eigh is negligible next to the backbone) so that the training
    graph's values are a clean reference, with a backward that stays finite for repeated
    eigenvalues (:class:`_LogEig`); cast back to the input dtype. Training / reference path only:
    not exportable.
    """
    log, sigma = _LogEig.apply(x, eps)
    return log, sigma


def _newton_schulz_sqrt(a: Tensor, iters: int, eye: Tensor) -> tuple[Tensor, Tensor]:
    """Coupled Newton–Schulz: ``Y → a^{1/2}``, ``Z → a^{-1/2}``; converges for eigenvalues in (0, 3).

    For symmetric ``a`` every iterate is a polynomial in ``a``, so the scalar recurrence
    ``p ← p (3 − p)² / 4`` (``p = yz``) describes each eigenvalue exactly: small ones grow by
    9/4 per step, then convergence is quadratic. The first step uses ``Z₀ = I``.
    """
    t = 1.5 * eye - 0.5 * a
    y, z = a @ t, t
    for _ in range(iters - 1):
        t = 1.5 * eye - 0.5 * (z @ y)
        y, z = y @ t, t @ z
    return y, z


def spd_logm_iterative(
    x: Tensor,
    sqrt_iters: tuple[int, ...] = LOGM_SQRT_ITERS,
    series_terms: int = LOGM_SERIES_TERMS,
    prescale: float = LOGM_PRESCALE,
) -> Tensor:
    """Matrix log of SPD ``x`` (..., d, d) from matmuls only: the eigh-free LogEig of the deploy graph.

    Inverse scaling and squaring: with ``s = ‖x‖_F / prescale`` (so the eigenvalues of ``a = x/s``
    lie in (0, prescale]), ``m`` successive coupled Newton–Schulz square roots give
    ``Y = a^{1/2^{m}}`` and, from the last one, ``Z = a^{-1/2^{m}}``. Then
    ``(Y − Z)/2 = sinh(log(a)/2^m)`` exactly, so ``log(a) = 2^m · asinh((Y − Z)/2)``, evaluated by
    a truncated Maclaurin series in Horner form — no matrix inverse (ONNX has none) and no Padé
    solve. Finally ``log(x) = log(a) + log(s)·I``. Fixed iteration counts, no data-dependent
    control flow: exports to plain MatMul/Add/Mul/Div/Sqrt/Log nodes with any batch dimensions.
    """
    if not sqrt_iters or min(sqrt_iters) < 1:
        raise ValueError(f"sqrt_iters needs at least one square root of ≥ 1 iteration, got {sqrt_iters}")
    if not 1 <= series_terms <= len(_ASINH_COEFFS):
        raise ValueError(f"series_terms must be in 1..{len(_ASINH_COEFFS)}, got {series_terms}")
    d = x.shape[-1]
    eye = torch.eye(d, dtype=x.dtype, device=x.device)
    s = torch.sqrt((x * x).sum(dim=(-2, -1), keepdim=True)) / prescale
    y = x / s
    z = eye
    for iters in sqrt_iters:
        y, z = _newton_schulz_sqrt(y, iters, eye)
    h = 0.5 * (y - z)
    h2 = h @ h
    poly = _ASINH_COEFFS[series_terms - 1] * eye
    for coeff in reversed(_ASINH_COEFFS[: series_terms - 1]):
        poly = coeff * eye + h2 @ poly
    log = float(2 ** len(sqrt_iters)) * (h @ poly)
    log = 0.5 * (log + log.transpose(-1, -2)) + torch.log(s) * eye
    return log


def eigenvalue_regularizer(sigma: Tensor) -> Tensor:
    """The paper's eq. (8), ``mean (σ − 1 − log σ)²`` over the LogEig input's eigenvalues.

    ``σ − 1 − log σ ≥ 0`` vanishes only at σ = 1 and grows both as σ → 0 (where log's gradient
    explodes) and for large σ (where it vanishes), so the term keeps the spectrum where LogEig has
    well-behaved gradients. Training only: it needs the eigenvalues, i.e. the eigh graph.
    """
    return (sigma - 1.0 - torch.log(sigma)).square().mean()


# --------------------------------------------------------------------------------------------------
# Crops


def crop_side(size: int, area_ratio: float) -> int:
    """Side of a square crop covering ``area_ratio`` of a ``size × size`` image (194 at 224, r=0.75)."""
    return max(1, min(size, round(math.sqrt(area_ratio) * size)))


def fixed_crop_boxes(
    height: int, width: int, num_crops: int, area_ratio: float
) -> list[tuple[int, int, int, int]]:
    """``(top, left, side_h, side_w)`` of the deploy crops: corners first, then the centre."""
    if not 0 <= num_crops <= len(_FIXED_ANCHORS):
        raise ValueError(f"fixed crops support 0..{len(_FIXED_ANCHORS)} crops, got {num_crops}")
    sh, sw = crop_side(height, area_ratio), crop_side(width, area_ratio)
    offsets = {
        "top_left": (0, 0),
        "top_right": (0, width - sw),
        "bottom_left": (height - sh, 0),
        "bottom_right": (height - sh, width - sw),
        "center": ((height - sh) // 2, (width - sw) // 2),
    }
    return [(*offsets[name], sh, sw) for name in _FIXED_ANCHORS[:num_crops]]


def fixed_crops(x: Tensor, num_crops: int, area_ratio: float) -> Tensor:
    """The deploy crops stacked view-major: ``(num_crops·N, C, s, s)`` (static slices in the graph)."""
    # int(): the legacy tracer hands out shape entries as tensors; the crops are static by design.
    boxes = fixed_crop_boxes(int(x.shape[-2]), int(x.shape[-1]), num_crops, area_ratio)
    return torch.cat([x[:, :, top : top + h, left : left + w] for top, left, h, w in boxes], dim=0)


def random_crops(
    x: Tensor, num_crops: int, area_ratio: float, generator: torch.Generator | None = None
) -> Tensor:
    """Training crops: same size as the fixed ones, independent uniform positions per sample and view.

    Returned view-major like :func:`fixed_crops`, ``(num_crops·N, C, s, s)``, by one gather.
    """
    n, _, height, width = x.shape
    sh, sw = crop_side(height, area_ratio), crop_side(width, area_ratio)
    tops = torch.randint(0, height - sh + 1, (num_crops, n), generator=generator).to(x.device)
    lefts = torch.randint(0, width - sw + 1, (num_crops, n), generator=generator).to(x.device)
    rows = (tops.unsqueeze(-1) + torch.arange(sh, device=x.device)).reshape(num_crops * n, sh, 1)
    cols = (lefts.unsqueeze(-1) + torch.arange(sw, device=x.device)).reshape(num_crops * n, 1, sw)
    batch = torch.arange(n, device=x.device).repeat(num_crops).view(-1, 1, 1)
    return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


# --------------------------------------------------------------------------------------------------
# Model


class StiefelBiMap(nn.Module):
    """BiMap weight ``W`` (d × c) with orthonormal rows: ``W = Qᵀ`` from the QR of a free c × d matrix.

    Keeps ``W`` on the Stiefel manifold as SPDNet requires, with any optimiser and weight decay
    (``Q`` is invariant to the free matrix's scale). Signs follow ``diag(R) ≥ 0`` so that ``W`` is a
    continuous function of the parameter. (torch's ``parametrizations.orthogonal`` with its default
    Householder map for a wide matrix collapsed to W = 0 after one SGD step with weight decay in
    torch 2.14, hence this.)
    """

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.free = nn.Parameter(torch.empty(in_dim, out_dim))
        nn.init.orthogonal_(self.free)

    @property
    def weight(self) -> Tensor:
        q, r = torch.linalg.qr(self.free)
        signs = torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(q.dtype)
        return (q * signs).t()


class _SPDAttentionBody(nn.Module):
    """What the training model and the deploy module share: backbone, SPD head, attention, classifier.

    Subclasses provide the BiMap weight and the matrix log (eigh vs iterative).
    """

    num_crops: int
    crop_ratio: float
    cov_lambda: float
    stem: nn.Module
    layer1: nn.Module
    layer2: nn.Module
    layer3: nn.Module
    layer4: nn.Module
    attention: nn.Module
    dropout: nn.Module
    fc: nn.Module
    triu_index: Tensor
    triu_weight: Tensor

    def _bimap(self) -> tuple[Tensor, Tensor]:
        """``(W, W Wᵀ)``; ``W Wᵀ = I`` up to round-off, kept so the algebra is exact."""
        raise NotImplementedError

    def _views(self, x: Tensor) -> Tensor:
        return fixed_crops(x, self.num_crops, self.crop_ratio)

    def _branch(self, x: Tensor) -> tuple[Tensor, Tensor]:
        f3 = self.layer3(self.layer2(self.layer1(self.stem(x))))
        pooled = torch.flatten(F.adaptive_avg_pool2d(self.layer4(f3), 1), 1)
        return f3, pooled

    def _spd_matrix(self, f3: Tensor, weight: Tensor, wwt: Tensor) -> Tensor:
        """BiMap of the regularised covariance: ``W (Cov + λ·tr(Cov)·I) Wᵀ``, (N, d, d)."""
        feats = torch.flatten(f3, 2)  # (N, c, wh): c channel vectors over wh positions
        feats = feats - feats.mean(dim=-1, keepdim=True)
        denom = float(max(feats.shape[-1] - 1, 1))
        trace = (feats * feats).sum(dim=(1, 2)) / denom  # tr(Cov) without forming Cov
        proj = torch.matmul(weight, feats)  # (N, d, wh)
        cov_d = proj @ proj.transpose(1, 2) / denom
        return cov_d + (self.cov_lambda * trace).view(-1, 1, 1) * wwt

    def _logm(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        raise NotImplementedError

    def _spd_and_vectors(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Every view's BiMap output (N, n+1, d, d) and pooled layer4 vector (N, n+1, 512); view 0 = face."""
        n = x.shape[0]
        weight, wwt = self._bimap()
        f3_face, v_face = self._branch(x)
        spd = [self._spd_matrix(f3_face, weight, wwt).unsqueeze(1)]
        vecs = [v_face.unsqueeze(1)]
        if self.num_crops > 0:
            f3_crops, v_crops = self._branch(self._views(x))
            d = weight.shape[0]
            spd.append(self._spd_matrix(f3_crops, weight, wwt).view(self.num_crops, n, d, d).transpose(0, 1))
            vecs.append(v_crops.view(self.num_crops, n, -1).transpose(0, 1))
        return torch.cat(spd, dim=1), torch.cat(vecs, dim=1)

    def _forward_parts(self, x: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
        """Logits, the ReEig eigenvalues (eigh path only) and the attention weights (N, n+1)."""
        spd, vecs = self._spd_and_vectors(x)
        log, sigma = self._logm(spd)
        logits, attn = self._head(log, vecs)
        return logits, sigma, attn

    def _head(self, log: Tensor, vecs: Tensor) -> tuple[Tensor, Tensor]:
        """Attention over views from their log matrices, weighted sum of their vectors, classifier."""
        tri = torch.flatten(log, -2)[..., self.triu_index] * self.triu_weight  # (N, n+1, d(d+1)/2)
        attn = torch.softmax(self.attention(tri).squeeze(-1), dim=1)  # (N, n+1)
        pooled = (attn.unsqueeze(-1) * vecs).sum(dim=1)
        return self.fc(self.dropout(pooled)), attn

    def spd_matrices(self, x: Tensor) -> Tensor:
        """BiMap outputs before ReEig, (N, n+1, d, d): what the matrix log sees (diagnostics, tests)."""
        return self._spd_and_vectors(x)[0]


class SPDAttention(_SPDAttentionBody):
    """SPD-Attention (S4): face + n crops through a shared ResNet-18, SPD-manifold attention over views.

    ``forward(x)`` returns logits; :meth:`forward_with_regularizer` also returns the eq. (8)
    eigenvalue regulariser for the training loss; :meth:`deploy` returns the eigh-free graph.
    """

    def __init__(
        self,
        num_classes: int = 7,
        num_crops: int = 4,
        crop_ratio: float = 0.75,
        spd_dim: int = 16,
        cov_lambda: float = 1e-3,
        reeig_eps: float = 1e-4,
        attention_hidden: int = 64,
        dropout: float = 0.0,
        training_crops: str = "random",
        in_channels: int = 3,
    ) -> None:
        super().__init__()
        if training_crops not in ("random", "fixed"):
            raise ValueError(f"training_crops must be 'random' or 'fixed', got {training_crops!r}")
        if not 0.0 < crop_ratio <= 1.0:
            raise ValueError(f"crop_ratio must be in (0, 1], got {crop_ratio}")
        fixed_crop_boxes(224, 224, num_crops, crop_ratio)  # validates num_crops
        self.num_crops = num_crops
        self.crop_ratio = crop_ratio
        self.spd_dim = spd_dim
        self.cov_lambda = cov_lambda
        self.reeig_eps = reeig_eps
        self.training_crops = training_crops

        net = resnet18(weights=None)
        if in_channels != 3:
            net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.stem = nn.Sequential(net.conv1, net.bn1, net.relu, net.maxpool)
        self.layer1, self.layer2, self.layer3, self.layer4 = net.layer1, net.layer2, net.layer3, net.layer4
        channels = 256  # layer3 width of ResNet-18
        if not 1 <= spd_dim <= channels:
            raise ValueError(f"spd_dim must be in 1..{channels}, got {spd_dim}")
        self.bimap = StiefelBiMap(channels, spd_dim)

        rows, cols = torch.triu_indices(spd_dim, spd_dim)
        self.register_buffer("triu_index", rows * spd_dim + cols, persistent=False)
        # √2 on off-diagonal entries: the vector's Euclidean norm is the log matrix's Frobenius norm.
        self.register_buffer(
            "triu_weight", torch.where(rows == cols, 1.0, math.sqrt(2.0)).float(), persistent=False
        )
        self.attention = nn.Sequential(
            nn.Linear(spd_dim * (spd_dim + 1) // 2, attention_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(attention_hidden, 1),
        )
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512, num_classes)

    def _bimap(self) -> tuple[Tensor, Tensor]:
        weight = self.bimap.weight
        return weight, weight @ weight.t()

    def _views(self, x: Tensor) -> Tensor:
        if self.training and self.training_crops == "random":
            return random_crops(x, self.num_crops, self.crop_ratio)
        return super()._views(x)

    def _logm(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return spd_logm_eigh(x, self.reeig_eps)

    def forward_with_regularizer(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(logits, eq. (8) regulariser)``; the loss is ``CE + β·reg`` (training only)."""
        logits, sigma, _ = self._forward_parts(x)
        assert sigma is not None
        return logits, eigenvalue_regularizer(sigma)

    def attention_weights(self, x: Tensor) -> Tensor:
        """Softmax weights over (face, crop 1..n), (N, n+1): for inspection and visualisation."""
        return self._forward_parts(x)[2]

    def spd_eigenvalues(self, x: Tensor) -> Tensor:
        """Eigenvalues of every view's BiMap output after ReEig, (N, n+1, d): for diagnostics."""
        sigma = self._forward_parts(x)[1]
        assert sigma is not None
        return sigma

    def forward(self, x: Tensor) -> Tensor:
        return self._forward_parts(x)[0]

    def deploy(self) -> SPDAttentionDeploy:
        """The eigh-free logits-only graph (fixed crops, iterative LogEig), sharing this model's layers."""
        return SPDAttentionDeploy(self)


class SPDAttentionDeploy(_SPDAttentionBody):
    """Deploy graph of :class:`SPDAttention`: same layers, BiMap weight frozen to a buffer,
    LogEig by :func:`spd_logm_iterative`, ReEig's clamp omitted (inactive by construction; see the
    module docstring). Input: the face batch only, ``(N, 3, H, W)`` with H, W those it was exported at.
    """

    def __init__(
        self,
        model: SPDAttention,
        sqrt_iters: tuple[int, ...] = LOGM_SQRT_ITERS,
        series_terms: int = LOGM_SERIES_TERMS,
    ) -> None:
        super().__init__()
        self.num_crops = model.num_crops
        self.crop_ratio = model.crop_ratio
        self.cov_lambda = model.cov_lambda
        self.sqrt_iters = tuple(sqrt_iters)
        self.series_terms = series_terms
        self.stem, self.layer1, self.layer2 = model.stem, model.layer1, model.layer2
        self.layer3, self.layer4 = model.layer3, model.layer4
        self.attention, self.dropout, self.fc = model.attention, model.dropout, model.fc
        with torch.no_grad():
            weight = model.bimap.weight.detach().clone()
            self.register_buffer("bimap_weight", weight)
            self.register_buffer("bimap_gram", weight @ weight.t())
        self.register_buffer("triu_index", model.triu_index.clone(), persistent=False)
        self.register_buffer("triu_weight", model.triu_weight.clone(), persistent=False)

    def _bimap(self) -> tuple[Tensor, Tensor]:
        return self.bimap_weight, self.bimap_gram

    def _logm(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        return spd_logm_iterative(x, self.sqrt_iters, self.series_terms), None

    def forward(self, x: Tensor) -> Tensor:
        return self._forward_parts(x)[0]


@register_model(
    "spd_attention",
    spec=PreprocessSpec(input_size=(224, 224), channels="rgb", mean=IMAGENET_MEAN, std=IMAGENET_STD),
    labels=RAFDB_7,
    seed="S4",
    paper=PaperFigures(
        input_size=(224, 224),
        note="RAF-DB 86.63 % (table 1); ResNet-18 over face + n crops (r = 0.75); params/MACs not reported",
    ),
    test_input_size=(64, 64),
    train_defaults=replace(RESNET_RECIPE, basis="not measured: resnet18's recipe (its backbone)"),
)
def spd_attention(num_classes: int = 7, **kwargs: object) -> nn.Module:
    """SPD-Attention (S4): ResNet-18 over face + 4 crops, SPD-manifold attention; eigh-free deploy graph."""
    return SPDAttention(num_classes=num_classes, **kwargs)  # type: ignore[arg-type]
