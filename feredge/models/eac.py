"""S2 — EAC, Erasing Attention Consistency (Zhang et al., ECCV 2022, as the seed chapter uses it).

The deployed model is a plain ResNet-50 classifier (GAP + FC); EAC changes training only. Each
training image is random-erased and paired with its horizontal flip; the class activation maps
of the pair must agree after un-flipping, which stops the network from memorising noisy labels
through features that are not symmetric about the face's midline.

RAF-DB's aligned images are 100×100; like the EAC code (``transforms.Resize((224, 224))``,
bilinear) the spec resizes them up to ResNet's 224×224 with linear interpolation, so a model
trained on RAF-DB sees the same kind of upscaled input at deployment.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision import models as tvm

from feredge.labels import RAFDB_7
from feredge.models.controls import BORROWED_RESNET_RECIPE, IMAGENET_224
from feredge.models.registry import PaperFigures, register_model


class EACResNet50(nn.Module):
    """ResNet-50 (GAP + FC) whose ``forward_with_cam`` also returns the FC-weighted CAMs.

    ``M_j(h, w) = Σ_c W(j, c) F_c(h, w)`` uses the FC weight without the bias, as CAM (Zhou et al.
    2016) and the EAC code do: GAP of M_j plus the bias is exactly logit j, so the CAMs are the
    spatial decomposition of the logits, and flipping the image should flip them.
    """

    def __init__(self, num_classes: int = 7):
        super().__init__()
        base = tvm.resnet50(weights=None)
        self.backbone = nn.Sequential(
            base.conv1, base.bn1, base.relu, base.maxpool, base.layer1, base.layer2, base.layer3, base.layer4
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(base.fc.in_features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.backbone(x)), 1))

    def forward_with_cam(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits (N, K), cams (N, K, h, w)) from one pass over the backbone (training only)."""
        feat = self.backbone(x)
        logits = self.fc(torch.flatten(self.avgpool(feat), 1))
        cams = torch.einsum("nchw,kc->nkhw", feat, self.fc.weight)
        return logits, cams


def eac_consistency_loss(cam: torch.Tensor, cam_of_flipped: torch.Tensor) -> torch.Tensor:
    """EAC's ``Lc = mean ‖M − flip(M′)‖²``: M from the image, M′ from its horizontal flip.

    Both are (N, K, h, w); M′ is flipped back along the width axis before comparing, and the mean
    runs over every element (batch, class, position), as the EAC code's ``MSELoss`` does.
    """
    return (cam - torch.flip(cam_of_flipped, dims=(-1,))).pow(2).mean()


@register_model(
    "eac_resnet50",
    spec=IMAGENET_224.replace(interpolation="linear"),
    labels=RAFDB_7,
    seed="S2",
    paper=PaperFigures(input_size=(224, 224), note="accuracy only: over 90 % on RAF-DB basic"),
    test_input_size=(64, 64),
    train_defaults=BORROWED_RESNET_RECIPE,
)
def eac_resnet50(num_classes: int = 7, **kw: Any) -> nn.Module:
    """S2 EAC: ResNet-50 classifier; the CAM-flip consistency branch is training-only."""
    return EACResNet50(num_classes=num_classes, **kw)
