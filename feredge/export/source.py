"""Where the model to export comes from: the shipped default, a registered model, or a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from feredge.preprocess.spec import PreprocessSpec


@dataclass
class ModelSource:
    module: nn.Module
    name: str
    kwargs: dict[str, Any]
    spec: PreprocessSpec
    labels: tuple[str, ...]
    origin: str  # "pretrained", "random-init" or "checkpoint:<path>"
    extra: dict[str, Any] = field(default_factory=dict)


def resolve_source(model: str | None = None, checkpoint: str | Path | None = None) -> ModelSource:
    """A checkpoint wins; else the named model (shipped weights if any, random init otherwise);
    else the shipped default model with its weights."""
    from feredge.checkpoint import load_checkpoint
    from feredge.models import DEFAULT_MODEL, create_model, get_entry

    if checkpoint is not None:
        module, meta = load_checkpoint(checkpoint)
        return ModelSource(module, meta.model, meta.model_kwargs, meta.spec, meta.labels,
                           f"checkpoint:{checkpoint}", meta.extra)
    entry = get_entry(model or DEFAULT_MODEL)
    pretrained = entry.pretrained is not None
    module = create_model(entry.name, pretrained=pretrained)
    return ModelSource(module, entry.name, {}, entry.spec, entry.labels,
                       "pretrained" if pretrained else "random-init")
