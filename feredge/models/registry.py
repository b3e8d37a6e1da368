"""Model registry: ``create_model(name, **kw)``, ``list_models()``, one file per model family.

Like timm's ``register_model`` and torchvision's weight metadata, each entry carries what the rest
of the toolkit needs to use the model without re-typing anything: its default
:class:`PreprocessSpec`, its label list, the seed it implements and the paper's reported figures
(so ``feredge models`` can show our measured numbers beside them).

Train/deploy split: a registered module's ``forward(x)`` returns logits. Anything only training
uses (auxiliary heads, consistency branches, regularisers) is reached through other methods. A
model whose deployed graph differs from its training graph (SPD-Attention swaps ``eigh`` for
matrix iterations) defines ``deploy() -> nn.Module``; :func:`deploy_graph` calls it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from feredge.errors import FeredgeError
from feredge.preprocess.spec import PreprocessSpec

#: how far (relative) our measured parameters and MACs may be from the paper's without a finding
PAPER_TOLERANCE = 0.05


@dataclass(frozen=True)
class PaperFigures:
    """What the seed paper reports, for comparison with what we measure.

    ``finding`` is where the paper's figures need reading (a unit, a counting convention) or
    where our build departs from them, and why. It is data, not a docstring keyword: a FLOPs
    figure (whose reading as 2 × MACs is a finding) or a ``tolerance`` looser than
    :data:`PAPER_TOLERANCE` cannot be registered without one, and the tests hold every entry to
    its own tolerance.
    """

    params_m: float | None = None
    macs_m: float | None = None
    flops_m: float | None = None  # a figure the paper calls FLOPs, counting a multiply-accumulate as two
    input_size: tuple[int, int] | None = None
    note: str = ""
    finding: str = ""
    tolerance: float = PAPER_TOLERANCE  # relative gap allowed between our params / MACs and the paper's

    def __post_init__(self) -> None:
        if self.flops_m is not None and not self.finding:
            raise ValueError("a paper's FLOPs figure needs a finding that says how it maps to MACs")
        if self.tolerance > PAPER_TOLERANCE and not self.finding:
            raise ValueError(f"a tolerance above {PAPER_TOLERANCE:.0%} needs a finding that says why")

    @property
    def paper_macs_m(self) -> float | None:
        """The paper's cost in MACs: ``macs_m``, or half its FLOPs (MACs are what we count)."""
        if self.macs_m is not None:
            return self.macs_m
        return None if self.flops_m is None else self.flops_m / 2


@dataclass(frozen=True)
class TrainDefaults:
    """What ``feredge train`` uses for this model where the command line gives no value.

    A model's recipe is data beside its spec because one set of flag defaults cannot train every
    model: csam_net stays at chance with its paper dropout, mini_xception from random weights keeps
    validation at one class (Keras BatchNorm momentum), lfer_ldl needs AdamW at 3e-3 for 48 epochs.
    ``basis`` says what the recipe reached where it was measured ("measured: ...", from
    benchmarks/training.md: the synthetic set, 2 CPU cores) or, for a model nobody has trained here
    yet, which measured recipe it borrows; ``feredge train --help`` shows the table.
    """

    epochs: int = 12
    batch_size: int = 64
    optimizer: str = "adamw"  # sgd | adamw
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_epochs: int = 0
    input_size: int | None = None  # square side; None: the spec's
    dropout: float | None = None  # None: the model's own rates
    init: str | None = None  # "pretrained": fine-tune the shipped weights; None: random weights
    basis: str = "not measured"  # each field but this one is the ``feredge train`` flag of its name


#: measured on the synthetic set (benchmarks/training.md): ResNet-18 from random weights at 64×64
RESNET_RECIPE = TrainDefaults(epochs=12, optimizer="adamw", lr=1e-3, input_size=64,
                              basis="measured: 97.1 % val, 2.6 min")


@dataclass(frozen=True)
class ModelEntry:
    name: str
    builder: Callable[..., nn.Module]
    spec: PreprocessSpec
    labels: tuple[str, ...]
    seed: str = "control"
    description: str = ""
    paper: PaperFigures = field(default_factory=PaperFigures)
    pretrained: Path | None = None  # shipped safetensors weights, if any
    # The CI suite may build a model with lighter settings (fewer crops, a smaller input that the
    # same architecture accepts) so that every registered model is exported and checked in budget.
    test_kwargs: dict[str, Any] = field(default_factory=dict)
    test_input_size: tuple[int, int] | None = None
    # True when the architecture is built for one input size (flatten → FC, Keras-style padding):
    # the builder then takes ``input_size=(h, w)`` and training at another size passes it.
    sized_by_input: bool = False
    train_defaults: TrainDefaults = field(default_factory=TrainDefaults)

    def build(self, **kwargs: Any) -> nn.Module:
        kwargs.setdefault("num_classes", len(self.labels))
        return self.builder(**kwargs)


#: filled by the family modules that ``feredge/models/__init__.py`` imports. Importing this module
#: always runs that package init first, so every lookup below sees every family without this
#: module importing its own package (which made ``models`` ↔ ``models.registry`` a cycle).
_REGISTRY: dict[str, ModelEntry] = {}


def register_model(
    name: str,
    *,
    spec: PreprocessSpec,
    labels: tuple[str, ...],
    seed: str = "control",
    description: str = "",
    paper: PaperFigures | None = None,
    pretrained: Path | None = None,
    test_kwargs: dict[str, Any] | None = None,
    test_input_size: tuple[int, int] | None = None,
    sized_by_input: bool = False,
    train_defaults: TrainDefaults | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator for a builder ``f(num_classes=..., **kw) -> nn.Module``."""

    def wrap(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} registered twice")
        _REGISTRY[name] = ModelEntry(
            name=name,
            builder=builder,
            spec=spec,
            labels=tuple(labels),
            seed=seed,
            description=description or _first_line(builder.__doc__),
            paper=paper or PaperFigures(),
            pretrained=pretrained,
            test_kwargs=dict(test_kwargs or {}),
            test_input_size=test_input_size,
            sized_by_input=sized_by_input,
            train_defaults=train_defaults or TrainDefaults(),
        )
        return builder

    return wrap


def _first_line(doc: str | None) -> str:
    lines = (doc or "").strip().splitlines()
    return lines[0] if lines else ""


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def get_entry(name: str) -> ModelEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FeredgeError(f"unknown model {name!r}; known: {', '.join(sorted(_REGISTRY))}") from None


def create_model(name: str, *, pretrained: bool = False, **kwargs: Any) -> nn.Module:
    """Build a registered model; ``pretrained=True`` loads its shipped weights (safetensors)."""
    entry = get_entry(name)
    model = entry.build(**kwargs)
    if pretrained:
        if entry.pretrained is None:
            raise FeredgeError(f"model {name!r} ships no pretrained weights")
        from safetensors.torch import load_file

        model.load_state_dict(load_file(str(entry.pretrained)))
    return model


def deploy_graph(model: nn.Module) -> nn.Module:
    """The logits-only module that export and runtimes see, in eval mode."""
    deploy = getattr(model, "deploy", None)
    graph = deploy() if callable(deploy) else model
    return graph.eval()


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass at batch 1, from torch's FLOP counter (FLOPs / 2)."""
    from torch.utils.flop_counter import FlopCounterMode

    model = model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.zeros(1, *input_shape))
    return counter.get_total_flops() // 2

