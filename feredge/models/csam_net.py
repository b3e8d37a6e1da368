"""S0 — CSAM-Net (Guo, Cheng & Shen 2023): CNN with channel-spatial attention, IHOR blocks and RM.

The paper (TensorFlow 2.1, 48×48 gray FER2013) gives the block structure but only one width
(64, the shallow extractor) and one size figure: 11.34 M parameters. The choices below fill the
gaps; each is the simplest reading of the text that keeps the model near that figure.

Graph (1×48×48 in [-1, 1])::

    shallow:    conv3×3(64) BN ReLU ×2, avgpool 2/2                         48 -> 24
    CSAM(64)                                                                 24
    IHOR(64 -> 64),   transition(64 -> 128),  avgpool 2/2                    24 -> 12
    IHOR(128 -> 128), transition(128 -> 256), avgpool 2/2                    12 -> 6
    IHOR(256 -> 256), transition(256 -> 512), avgpool 2/2                    6 -> 3
    RM(512)                                                                  3
    flatten (4608) → FC(384) BN ReLU = embedding (center loss) → dropout → FC(K)

Widths double at each transition (the paper: transitions "raise the dimension") from the stated
64; the three transitions halve the map as in the digest's average pool, so RM works on a 3×3
map. The classifier is Keras-style (flatten → dense), as a TensorFlow 2.1 model of this kind
would be; its embedding width is the one number we set from the paper's total (see
:class:`CSAMNet`): 11.337 M parameters against the paper's 11.34 M, 575 M MACs.
Joint loss: cross-entropy + λ · :class:`CenterLoss` on :meth:`CSAMNet.features`.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from feredge.labels import FER2013_7
from feredge.models.layers import SeparableConv2d, SqueezeExcitation, conv_bn_act
from feredge.models.registry import PaperFigures, TrainDefaults, register_model
from feredge.preprocess.spec import PreprocessSpec


class CSAM(nn.Module):
    """Channel-spatial attention: parallel channel and spatial branches, added, GELU, times F.

    Channel branch (eq. 5): ``conv3×3(F) · σ(δ(FC(δ(FC(GAP(F))))))`` with reduction r = 16. The
    paper puts a ReLU *before* the sigmoid, so the weights lie in [0.5, 1); we keep that.
    Spatial branch (eq. 6): channel-wise max and mean maps (CBAM's pools, which the paper says it
    follows; "stride-1 spatial pools" is the other reading) → conv3×3 (1 → 3) each → concat (6) →
    conv3×3 (6 → 1) → σ, times conv3×3(F). Every conv has BN + ReLU after it, as the paper says,
    including the one before the sigmoid. Output ``F · GELU(Mc + Ms)``.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.c_conv = conv_bn_act(channels, channels, 3)
        self.c_pool = nn.AdaptiveAvgPool2d(1)
        self.c_fc = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1), nn.ReLU(), nn.Sigmoid()
        )
        self.s_conv = conv_bn_act(channels, channels, 3)
        self.s_max = conv_bn_act(1, 3, 3)
        self.s_avg = conv_bn_act(1, 3, 3)
        self.s_fuse = nn.Sequential(conv_bn_act(6, 1, 3), nn.Sigmoid())
        self.gelu = nn.GELU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mc = self.c_conv(x) * self.c_fc(self.c_pool(x))
        pooled = torch.cat(
            [self.s_max(x.amax(dim=1, keepdim=True)), self.s_avg(x.mean(dim=1, keepdim=True))], dim=1
        )
        ms = self.s_conv(x) * self.s_fuse(pooled)
        return x * self.gelu(mc + ms)


class IHOR(nn.Module):
    """Improved high-order residual block (eq. 9): ``X1 + SE(X3)``.

    Bottleneck kernel order 1×1, 3×3, 1×1, each a "block conv" (conv → BN → ReLU):
    X1 = conv1×1 (changes the width), X2 = depthwise-separable 3×3, X3 = depthwise-separable 1×1
    then SE. A depthwise-separable conv with a 1×1 kernel is a pointwise conv (its depthwise
    factor is a per-channel scale the pointwise weights absorb), so X3 is built as one. DS convs
    are Keras ``SeparableConv2D`` (no BN between the halves): the paper counts 3 BN for 3 convs.
    """

    def __init__(self, in_ch: int, out_ch: int, se_reduction: int = 16):
        super().__init__()
        self.x1 = conv_bn_act(in_ch, out_ch, 1)
        self.x2 = nn.Sequential(SeparableConv2d(out_ch, out_ch, 3), nn.BatchNorm2d(out_ch), nn.ReLU())
        self.x3 = conv_bn_act(out_ch, out_ch, 1)
        self.se = SqueezeExcitation(out_ch, se_reduction)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x1 = self.x1(x)
        return x1 + self.se(self.x3(self.x2(x1)))


class Transition(nn.Module):
    """Transition: conv3×3 BN, conv3×3 BN, ReLU, avgpool 2/2, dropout; raises the width."""

    def __init__(self, in_ch: int, out_ch: int, dropout: float = 0.2):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_act(in_ch, out_ch, 3, act=None),
            conv_bn_act(out_ch, out_ch, 3, act=None),
            nn.ReLU(),
            nn.AvgPool2d(2, 2),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class RefinementModule(nn.Module):
    """RM (eqs. 10-14): ``concat(F1.1, F1.2) + F1.3``.

    F1.1 = conv3×3(conv1×1(F)) and F1.2 = conv3×3(conv3×3(conv1×1(F))), each C/2 wide, so that
    their concatenation has F's width (eq. 12); the two paths have their own 1×1. F1.3 is the
    pyramid: 3×3 convs with dilation 1, 2, 3 and a sigmoid after each (eq. 13), then a 1×1 "to
    make its width equal to F1's", which implies the pyramid is narrower than F; we run it at C/2.
    The paper writes only σ between the pyramid convs; the other convs get BN + ReLU like every
    other conv in the network.
    """

    def __init__(self, channels: int):
        super().__init__()
        half = channels // 2
        self.path1 = nn.Sequential(conv_bn_act(channels, half, 1), conv_bn_act(half, half, 3))
        self.path2 = nn.Sequential(
            conv_bn_act(channels, half, 1), conv_bn_act(half, half, 3), conv_bn_act(half, half, 3)
        )
        self.pyramid = nn.Sequential(
            nn.Conv2d(channels, half, 3, padding=1, dilation=1), nn.Sigmoid(),
            nn.Conv2d(half, half, 3, padding=2, dilation=2), nn.Sigmoid(),
            nn.Conv2d(half, half, 3, padding=3, dilation=3), nn.Sigmoid(),
            conv_bn_act(half, channels, 1),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.path1(x), self.path2(x)], dim=1) + self.pyramid(x)


class CSAMNet(nn.Module):
    """CSAM-Net for 48×48 gray faces; ``features`` gives the center-loss embedding.

    The paper says only that the center-loss feature x_i is "the output before the FC layer"
    (eqs. 15-16). We flatten RM's 512×3×3 map into FC(``embed_dim``) → BN → ReLU as that
    embedding (an FC embedding, as in Wen et al.'s center loss) and put dropout and the class FC
    after it. Every other width follows from the paper's 64 and the doubling rule; the network
    without this FC has 9.56 M parameters, and ``embed_dim`` = 384 brings the total to the
    paper's 11.34 M (256 would give 10.75 M, 512 11.93 M). Flattening ties the model to its
    48×48 input (``input_size``), which the paper's 64×64 ablation would rebuild with 4×4.
    """

    def __init__(
        self,
        num_classes: int = 7,
        widths: tuple[int, int, int, int] = (64, 128, 256, 512),
        stem_width: int = 64,
        embed_dim: int = 384,
        input_size: int | tuple[int, int] = 48,
        dropout: float = 0.5,
    ):
        super().__init__()
        w1, w2, w3, w4 = widths
        self.stem = nn.Sequential(
            conv_bn_act(1, stem_width, 3), conv_bn_act(stem_width, stem_width, 3), nn.AvgPool2d(2, 2)
        )
        self.csam = CSAM(stem_width)
        self.body = nn.Sequential(
            IHOR(stem_width, w1), Transition(w1, w2),
            IHOR(w2, w2), Transition(w2, w3),
            IHOR(w3, w3), Transition(w3, w4),
        )  # fmt: skip
        self.rm = RefinementModule(w4)
        # stem and three transitions each halve the map; square inputs only
        side = (input_size if isinstance(input_size, int) else int(input_size[0])) // 16
        self.embed = nn.Sequential(
            nn.Flatten(), nn.Linear(w4 * side * side, embed_dim), nn.BatchNorm1d(embed_dim), nn.ReLU()
        )
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(embed_dim, num_classes)
        self.embed_dim = embed_dim

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate embedding (N, embed_dim): the x_i of the center loss."""
        x = self.rm(self.body(self.csam(self.stem(x))))
        return self.embed(x)

    def classify_features(self, features: torch.Tensor) -> torch.Tensor:
        """Logits from :meth:`features`, so the joint loss needs one pass for both of its terms."""
        return self.classifier(self.dropout(features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classify_features(self.features(x))


class CenterLoss(nn.Module):
    """Center loss (Wen et al. 2016), the paper's eq. 16-17: ``½ ‖x − c_y‖²`` averaged over the batch.

    The centres are a buffer, not a parameter: the optimiser never moves them. Instead
    :meth:`update_centers` applies eq. 17 after each step, ``c_j ← c_j − β Δc_j`` with
    ``Δc_j = Σ_{y_i = j} (c_j − x_i) / (1 + n_j)``, so a class's centre moves by at most β of the
    way to its batch mean and classes absent from the batch stay put. The gradient of the loss
    reaches the features only. The paper sums over the batch; we average (``reduction="sum"``
    gives the paper's scale) so λ does not depend on the batch size.
    """

    centers: torch.Tensor

    def __init__(self, num_classes: int, feat_dim: int, beta: float = 0.5, reduction: str = "mean"):
        super().__init__()
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.beta = beta
        self.reduction = reduction
        self.register_buffer("centers", torch.zeros(num_classes, feat_dim))

    def forward(self, features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        per_sample = 0.5 * (features - self.centers[labels]).pow(2).sum(dim=1)
        return per_sample.mean() if self.reduction == "mean" else per_sample.sum()

    @torch.no_grad()
    def update_centers(self, features: torch.Tensor, labels: torch.Tensor) -> None:
        diff = self.centers[labels] - features.detach().to(self.centers.dtype)
        delta = torch.zeros_like(self.centers).index_add_(0, labels, diff)
        counts = torch.bincount(labels, minlength=self.centers.shape[0]).to(self.centers.dtype)
        self.centers -= self.beta * delta / (1 + counts).unsqueeze(1)


def joint_loss(
    logits: torch.Tensor,
    features: torch.Tensor,
    labels: torch.Tensor,
    center_loss: CenterLoss,
    lam: float = 0.01,
) -> torch.Tensor:
    """The paper's eq. 18: cross-entropy + λ · center loss (call ``update_centers`` after the step)."""
    return F.cross_entropy(logits, labels) + lam * center_loss(features, labels)


# 48×48 gray in [-1, 1], as FER2013's own pixels; the detector crop is the face box itself.
GRAY_48 = PreprocessSpec(input_size=(48, 48), channels="gray", mean=(0.5,), std=(0.5,))


@register_model(
    "csam_net",
    spec=GRAY_48,
    labels=FER2013_7,
    seed="S0",
    sized_by_input=True,
    paper=PaperFigures(params_m=11.34, input_size=(48, 48), note="abstract and table 4"),
    train_defaults=TrainDefaults(epochs=16, optimizer="adamw", lr=1e-3, warmup_epochs=1, input_size=32, dropout=0.0,
                                 basis="measured: 93.6 % val, 5.6 min; dropout 0 (the paper's rates: chance)"),
)
def csam_net(num_classes: int = 7, **kw: Any) -> nn.Module:
    """S0 CSAM-Net: CSAM attention, three IHOR blocks with transitions, refinement module."""
    return CSAMNet(num_classes=num_classes, **kw)
