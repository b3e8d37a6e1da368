"""Building blocks shared by the seed models (not a model family, so not auto-imported).

Every block here is written so that it exports to ONNX (opset 18) with ops that onnxruntime and
OpenVINO both implement: no adaptive pools other than to 1×1, no data-dependent shapes, and
space-to-depth done with strided slices rather than a reshape that would bake in the batch size.
"""

from __future__ import annotations

import torch
from torch import nn


def conv_bn_act(
    in_ch: int,
    out_ch: int,
    kernel_size: int = 3,
    stride: int = 1,
    *,
    groups: int = 1,
    dilation: int = 1,
    act: type[nn.Module] | None = nn.ReLU,
) -> nn.Sequential:
    """conv (no bias, BN follows) → BN → optional activation, with 'same' padding for odd kernels."""
    padding = dilation * (kernel_size - 1) // 2
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel_size, stride, padding, dilation=dilation, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SeparableConv2d(nn.Module):
    """Depthwise k×k followed by pointwise 1×1, no BN between them (Keras ``SeparableConv2D``).

    The seeds trained in Keras/TensorFlow describe a depthwise-separable conv as one "block conv"
    with a single BN after it; :class:`DepthwiseSeparableConv` is the MobileNet form with BN and an
    activation after each half.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel_size: int = 3, stride: int = 1, bias: bool = False):
        super().__init__()
        self.depthwise = nn.Conv2d(
            in_ch, in_ch, kernel_size, stride, (kernel_size - 1) // 2, groups=in_ch, bias=False
        )
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class DepthwiseSeparableConv(nn.Module):
    """MobileNet-style DS conv: depthwise k×k → BN → act → pointwise 1×1 → BN → act."""

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        kernel_size: int = 3,
        stride: int = 1,
        act: type[nn.Module] = nn.ReLU,
    ):
        super().__init__()
        self.depthwise = conv_bn_act(in_ch, in_ch, kernel_size, stride, groups=in_ch, act=act)
        self.pointwise = conv_bn_act(in_ch, out_ch, 1, act=act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class SqueezeExcitation(nn.Module):
    """SE (Hu et al. 2018): GAP → FC(C/r) → ReLU → FC(C) → sigmoid, scaling the channels."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.pool(x))


class SimAM(nn.Module):
    """Parameter-free 3-D attention (Yang et al. 2021), ``x · sigmoid(e)``.

    ``e = (x − μ)² / (4(σ² + λ)) + 0.5`` per channel, with μ and σ² the spatial mean and variance
    (variance over ``n = h·w − 1`` as in the reference code, floored at 1 so that a 1×1 map gives
    ``e = 0.5`` instead of 0/0). It has no parameters, so inserting it into a pretrained backbone
    changes outputs but not the state dict.
    """

    def __init__(self, lam: float = 1e-4):
        super().__init__()
        self.lam = lam

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = max(x.shape[2] * x.shape[3] - 1, 1)
        d = (x - x.mean(dim=(2, 3), keepdim=True)).pow(2)
        e = d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.lam)) + 0.5
        return x * torch.sigmoid(e)


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """Interval sampling ×2: (N, C, H, W) → (N, 4C, H/2, W/2), every other pixel in y and x.

    Strided slices (ONNX ``Slice`` with steps) keep the batch axis dynamic; the channel order is
    the four phases (0,0), (1,0), (0,1), (1,1) as in YOLOv5's Focus. H and W must be even.
    """
    return torch.cat(
        [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]],
        dim=1,
    )


class SpaceToDepthConv(nn.Module):
    """SC block (seed S1): space-to-depth ×2 then a 1×1 conv from 4C back to ``out_ch`` (default C).

    It replaces a stride-2 conv's subsampling: every input pixel still reaches the next layer,
    so small details a strided 7×7 would skip are kept.
    """

    def __init__(self, in_ch: int, out_ch: int | None = None):
        super().__init__()
        self.conv = nn.Conv2d(4 * in_ch, out_ch or in_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(space_to_depth(x))
