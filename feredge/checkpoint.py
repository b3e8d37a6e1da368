"""Checkpoints: safetensors weights plus a JSON sidecar, never pickle.

``run.safetensors`` holds the tensors; ``run.json`` holds everything needed to rebuild and use the
model without re-typing it — registered model name and constructor arguments, PreprocessSpec,
labels, training metrics, data fingerprint, feredge version — and the sha256 of the weights file,
so a sidecar paired with the wrong weights is refused.

A checkpoint whose ``extra`` holds a section a plain float build cannot load (ModelOpt's QAT
quantizers under ``extra["qat"]``) is rebuilt by the loader registered for that section with
:func:`register_extra_loader`. The package that writes such sections registers its loader
(:mod:`feredge.quantize` registers ``"qat"``), so this module imports none of them; the sidecar
records the section's loader and who registers it, so a checkpoint loaded where that package was
never imported fails in one line instead of loading as a float model.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feredge.bundle import sha256_file
from feredge.errors import FeredgeError
from feredge.preprocess.spec import PreprocessSpec
from feredge.version import __version__

CHECKPOINT_SCHEMA_VERSION = 1


@dataclass(frozen=True)
class ExtraLoader:
    """Rebuilds the model of a checkpoint whose ``extra`` has ``section``: ``load(weights, meta) -> model``."""

    section: str
    load: Callable[[Path, CheckpointMeta], Any]
    provider: str  # the package that registers it, named in the sidecar and in the error when it is missing


_EXTRA_LOADERS: dict[str, ExtraLoader] = {}


def register_extra_loader(section: str, load: Callable[[Path, CheckpointMeta], Any], provider: str) -> ExtraLoader:
    """Load checkpoints whose ``extra`` holds ``section`` with ``load`` instead of a plain float build."""
    known = _EXTRA_LOADERS.get(section)
    if known is not None and (known.load is not load or known.provider != provider):
        raise FeredgeError(f"checkpoint section {section!r} already has a loader (from {known.provider})")
    loader = _EXTRA_LOADERS[section] = ExtraLoader(section, load, provider)
    return loader


def extra_loaders() -> dict[str, ExtraLoader]:
    """The registered loaders by section (a copy)."""
    return dict(_EXTRA_LOADERS)


@dataclass
class CheckpointMeta:
    model: str
    model_kwargs: dict[str, Any]
    spec: PreprocessSpec
    labels: tuple[str, ...]
    metrics: dict[str, Any] = field(default_factory=dict)
    data_fingerprint: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. {"qat": {...}}, {"epoch": 3}
    #: extra section → package whose loader rebuilds the model, as the sidecar recorded it
    loaders: dict[str, str] = field(default_factory=dict)

    def needed_loaders(self) -> dict[str, str]:
        """The sections of ``extra`` that need a registered loader, and which package registers each."""
        return {section: (loader.provider if (loader := _EXTRA_LOADERS.get(section)) else self.loaders[section])
                for section in self.extra if section in _EXTRA_LOADERS or section in self.loaders}

    def to_dict(self, weights_sha256: str) -> dict[str, Any]:
        loaders = self.needed_loaders()
        return {
            "schema_version": CHECKPOINT_SCHEMA_VERSION,
            "feredge_version": __version__,
            "model": self.model,
            "model_kwargs": self.model_kwargs,
            "spec": self.spec.to_dict(),
            "labels": list(self.labels),
            "metrics": self.metrics,
            "data_fingerprint": self.data_fingerprint,
            "extra": self.extra,
            **({"loaders": loaders} if loaders else {}),  # float checkpoints' sidecars stay as they were
            "weights_sha256": weights_sha256,
        }


def sidecar_path(weights: Path) -> Path:
    return weights.with_suffix(".json")


def save_checkpoint(path: str | Path, state_dict: dict[str, Any], meta: CheckpointMeta) -> Path:
    """Write ``path`` (.safetensors) and its sidecar atomically; returns the weights path."""
    from safetensors.torch import save_file

    weights = Path(path).with_suffix(".safetensors")
    weights.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().contiguous().cpu() for k, v in state_dict.items()}
    fd, tmp = tempfile.mkstemp(dir=weights.parent, prefix=f".{weights.stem}-", suffix=".safetensors")
    os.close(fd)
    save_file(tensors, tmp)
    digest = sha256_file(Path(tmp))
    fd, tmp_json = tempfile.mkstemp(dir=weights.parent, prefix=f".{weights.stem}-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(meta.to_dict(digest), handle, indent=2, sort_keys=True)
    os.replace(tmp, weights)
    os.replace(tmp_json, sidecar_path(weights))
    return weights


def read_checkpoint_meta(path: str | Path) -> tuple[Path, CheckpointMeta]:
    weights = Path(path)
    if weights.suffix == ".json":
        weights = weights.with_suffix(".safetensors")
    sidecar = sidecar_path(weights)
    if not weights.is_file():
        raise FeredgeError(f"{weights}: checkpoint weights not found")
    if not sidecar.is_file():
        raise FeredgeError(f"{weights}: checkpoint has no JSON sidecar {sidecar.name}")
    try:
        data = json.loads(sidecar.read_text(encoding="utf-8"))
        meta = CheckpointMeta(
            model=str(data["model"]),
            model_kwargs=dict(data.get("model_kwargs") or {}),
            spec=PreprocessSpec.from_dict(data["spec"]),
            labels=tuple(data["labels"]),
            metrics=dict(data.get("metrics") or {}),
            data_fingerprint=data.get("data_fingerprint"),
            extra=dict(data.get("extra") or {}),
            loaders={str(k): str(v) for k, v in dict(data.get("loaders") or {}).items()},
        )
        expected = data["weights_sha256"]
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise FeredgeError(f"{sidecar}: malformed checkpoint sidecar ({exc.__class__.__name__}: {exc})") from None
    if sha256_file(weights) != expected:
        raise FeredgeError(f"{weights}: weights do not match the sidecar's sha256")
    return weights, meta


def load_checkpoint(path: str | Path) -> tuple[Any, CheckpointMeta]:
    """Rebuild the registered model and load its weights (safetensors only)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from feredge.models import create_model

    weights, meta = read_checkpoint_meta(path)
    needed = meta.needed_loaders()
    if len(needed) > 1:
        raise FeredgeError(f"{weights}: checkpoint sections {', '.join(sorted(needed))} each need their own "
                           "loader; one checkpoint can be rebuilt by one only")
    if needed:  # e.g. an INT8 fake-quant (ModelOpt QAT) model, rebuilt with its quantizers
        [(section, provider)] = needed.items()
        loader = _EXTRA_LOADERS.get(section)
        if loader is None:
            raise FeredgeError(f"{weights}: its {section!r} section is loaded by {provider}, which is not "
                               f"imported; import {provider} first")
        return loader.load(weights, meta), meta
    model = create_model(meta.model, **{"num_classes": len(meta.labels), **meta.model_kwargs})
    try:
        state = load_file(str(weights))
    except SafetensorError as exc:
        raise FeredgeError(f"{weights}: not a valid safetensors file ({exc})") from None
    check_weights_fit(model, state, f"{weights}: weights do not fit model {meta.model}")
    model.load_state_dict(state)
    return model, meta


def check_weights_fit(model: Any, state: dict[str, Any], what: str) -> None:
    """Names and shapes of ``state`` against ``model``: a one-line error instead of torch's multi-line one."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{name} {tuple(state[name].shape)} (model: {tuple(tensor.shape)})" for name, tensor in expected.items()
             if name in state and tuple(state[name].shape) != tuple(tensor.shape)]
    if missing or unexpected or wrong:
        parts = [f"{len(missing)} missing" if missing else "", f"{len(unexpected)} unexpected" if unexpected else "",
                 f"{len(wrong)} of the wrong shape, e.g. {wrong[0]}" if wrong else ""]
        raise FeredgeError(f"{what} ({', '.join(p for p in parts if p)})")
