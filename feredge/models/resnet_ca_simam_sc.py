"""S1 — ResNet-50 + CA + SimAM + SC (Hu, Tang, Zhu & Zhu 2024).

Deployed graph (224×224 RGB; torchvision ResNet-50 with ``weights=None`` underneath)::

    conv 7×7/1 (64)                                   224 -> 224   (stride 2 -> 1)
    SC: space-to-depth ×2 → 1×1 (256 -> 64)           224 -> 112   (takes over the subsampling)
    BN ReLU
    CA: conv 3×3 (64) → Y;  (GAP(Y) + GMP(Y)) → FC(4) ELU FC(64) sigmoid → Y · w
    maxpool 3×3/2                                     112 -> 56
    layer1 → SimAM → layer2 → layer3 → layer4 → SimAM → GAP → FC(num_classes)

The paper reports accuracy only (no parameter or MAC figures). Its changes cost few parameters
but many MACs: the stride-1 stem conv alone is 472 M MACs (4× torchvision's), and SC and CA's
3×3 conv add 206 M and 462 M at 112×112, so the model is 23.6 M parameters and 5.1 G MACs
against ResNet-50's 23.5 M and 4.1 G.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision import models as tvm

from feredge.labels import RAFDB_7
from feredge.models.controls import BORROWED_RESNET_RECIPE, IMAGENET_224
from feredge.models.layers import SimAM, SpaceToDepthConv
from feredge.models.registry import PaperFigures, register_model


class ChannelAttention(nn.Module):
    """S1's CA: a 3×3 conv makes Y, then (GAP + GMP)(Y) → FC → ELU → FC → sigmoid reweights Y.

    Unlike SE, the block owns a conv (the paper: "to extract richer features by spatial
    convolution" before weighting) and pools both ways, summed, before one shared MLP. The paper
    does not give the reduction ratio or whether the conv has BN; we use r = 16 (SE's default) and
    conv → BN, since it sits on a BN-ReLU'd stem whose scale BN keeps stable. The FCs are 1×1
    convs so that the pooled 1×1 maps never need a reshape.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.conv = nn.Sequential(
            nn.Conv2d(channels, channels, 3, 1, 1, bias=False), nn.BatchNorm2d(channels)
        )
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.max = nn.AdaptiveMaxPool2d(1)
        self.mlp = nn.Sequential(
            nn.Conv2d(channels, hidden, 1), nn.ELU(), nn.Conv2d(hidden, channels, 1), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y * self.mlp(self.avg(y) + self.max(y))


class ResNet50CASimAMSC(nn.Module):
    """ResNet-50 with an SC stem, CA before the stem max-pool, and SimAM after layer1 and layer4.

    "After the first and the last layer" is read as after ResNet's first and last residual stage
    (layer1, layer4), the places the paper's figure 3 draws it. SC takes the stride-1 stem conv's
    64×H×W map to 256×H/2×W/2 by interval sampling and back to 64 with a 1×1; the stem's BN and
    ReLU then follow as in the unmodified network, so the downstream statistics are unchanged in
    kind. Input H and W must be even (any multiple of 32 works throughout).
    """

    def __init__(self, num_classes: int = 7, ca_reduction: int = 16, simam_lambda: float = 1e-4):
        super().__init__()
        base = tvm.resnet50(weights=None)
        self.conv1 = nn.Conv2d(3, 64, 7, 1, 3, bias=False)
        self.sc = SpaceToDepthConv(64)
        self.bn1 = base.bn1
        self.relu = base.relu
        self.ca = ChannelAttention(64, ca_reduction)
        self.maxpool = base.maxpool
        self.layer1 = base.layer1
        self.simam1 = SimAM(simam_lambda)
        self.layer2 = base.layer2
        self.layer3 = base.layer3
        self.layer4 = base.layer4
        self.simam4 = SimAM(simam_lambda)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(base.fc.in_features, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """layer4's map after SimAM (2048×7×7 at 224), the map Grad-CAM visualises."""
        x = self.relu(self.bn1(self.sc(self.conv1(x))))
        x = self.maxpool(self.ca(x))
        x = self.simam1(self.layer1(x))
        return self.simam4(self.layer4(self.layer3(self.layer2(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.features(x)), 1))


@register_model(
    "resnet50_ca_simam_sc",
    spec=IMAGENET_224,
    labels=RAFDB_7,
    seed="S1",
    paper=PaperFigures(input_size=(224, 224), note="accuracy only: 76.91 % on a 1,880-image own set"),
    test_input_size=(64, 64),
    train_defaults=BORROWED_RESNET_RECIPE,
)
def resnet50_ca_simam_sc(num_classes: int = 7, **kw: Any) -> nn.Module:
    """S1: ResNet-50 with a stride-1 stem + SC, channel attention and two SimAM blocks."""
    return ResNet50CASimAMSC(num_classes=num_classes, **kw)
