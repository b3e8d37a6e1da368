"""Plain ImageNet backbones as controls for the seed models.

Each seed claims a gain over a standard backbone (S1 and S2 over ResNet-50, S3 over
ShuffleNet-V2 1.0×, S4 over ResNet-18), so the same backbones, unmodified except for a new
classifier, are registered here and go through the same training, export and runtime path.
They are built with ``weights=None``: nothing is downloaded at build time; a training recipe
that wants ImageNet initialisation loads it explicitly.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from torch import nn
from torchvision import models as tvm

from feredge.labels import RAFDB_7
from feredge.models.registry import RESNET_RECIPE, PaperFigures, TrainDefaults, register_model
from feredge.preprocess.spec import PreprocessSpec

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# 224×224 RGB with ImageNet statistics; a 10 % margin around the detected box keeps the chin
# and brows that tight Haar boxes cut off.
IMAGENET_224 = PreprocessSpec(
    input_size=(224, 224),
    channels="rgb",
    scale=1.0 / 255.0,
    mean=IMAGENET_MEAN,
    std=IMAGENET_STD,
    crop_margin=0.1,
)

# The architectures below are fully convolutional up to a global average pool, so the CI suite
# can run them at 64×64 (ResNet's /32 gives a 2×2 map, ShuffleNet's a 2×2 map) in budget.
SMALL_TEST_SIZE = (64, 64)


def _replace_fc(model: nn.Module, num_classes: int) -> nn.Module:
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    return model


#: for the ResNet-based models nobody has trained here yet: resnet18's measured recipe
BORROWED_RESNET_RECIPE = replace(RESNET_RECIPE, basis="not measured: resnet18's recipe")


@register_model("resnet18", spec=IMAGENET_224, labels=RAFDB_7, test_input_size=SMALL_TEST_SIZE,
                train_defaults=RESNET_RECIPE)
def resnet18(num_classes: int = 7, **kw: Any) -> nn.Module:
    """ResNet-18 (torchvision, untrained) with a ``num_classes`` FC: the control for S4's backbone."""
    return _replace_fc(tvm.resnet18(weights=None, **kw), num_classes)


@register_model("resnet50", spec=IMAGENET_224, labels=RAFDB_7, test_input_size=SMALL_TEST_SIZE,
                train_defaults=BORROWED_RESNET_RECIPE)
def resnet50(num_classes: int = 7, **kw: Any) -> nn.Module:
    """ResNet-50 (torchvision, untrained) with a ``num_classes`` FC: the control for S1 and S2."""
    return _replace_fc(tvm.resnet50(weights=None, **kw), num_classes)


@register_model(
    "shufflenet_v2",
    spec=IMAGENET_224,
    labels=RAFDB_7,
    paper=PaperFigures(
        params_m=1.23,
        flops_m=291.48,
        input_size=(224, 224),
        note="S3's baseline (table 4)",
        finding="S3's 'FLOPs' count a multiply-accumulate as two: 291.48 M FLOPs are 145.7 M MACs (the "
        "ShuffleNet-V2 paper gives 146 M MACs for 1.0×)",
    ),
    test_input_size=SMALL_TEST_SIZE,
    train_defaults=TrainDefaults(epochs=48, optimizer="adamw", lr=3e-3, warmup_epochs=1, input_size=48,
                                 basis="not measured: lfer_ldl's recipe (the same ShuffleNet-V2 1.0× trunk)"),
)
def shufflenet_v2(num_classes: int = 7, **kw: Any) -> nn.Module:
    """ShuffleNet-V2 1.0× (torchvision, untrained) with a ``num_classes`` FC: the control for S3.

    Finding: S3 lists this baseline at 1.23 M parameters and 291.48 M "FLOPs"; we measure 1.26 M
    and 143.9 M MACs. The FLOPs figure counts a multiply-accumulate as two operations (the
    ShuffleNet-V2 paper gives 146 M MACs for 1.0×), so 2 × 143.9 M is within 1.3 % of it.
    """
    return _replace_fc(tvm.shufflenet_v2_x1_0(weights=None, **kw), num_classes)
