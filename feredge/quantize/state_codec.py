"""ModelOpt state ↔ JSON, so QAT checkpoints stay pickle-free.

``mto.modelopt_state(model)`` is a nest of dicts, lists, tuples, strings and numbers, plus a few
values JSON cannot hold (tuples, which ModelOpt compares by type; ``torch.dtype``/``torch.Size``
in quantizer metadata; non-finite floats). Those are written as tagged objects
(``{"__tuple__": [...]}``) and rebuilt exactly on load. Anything else (a tensor, an arbitrary
object) raises: silently dropping a field would give a checkpoint that restores differently.
"""

from __future__ import annotations

import math
from typing import Any

import torch

_TAGS = ("__tuple__", "__dtype__", "__size__", "__float__")


class StateCodecError(ValueError):
    """A value in the ModelOpt state has no JSON form."""


def to_json(value: Any, path: str = "$") -> Any:
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if isinstance(value, torch.Size):
        return {"__size__": list(value)}
    if isinstance(value, tuple):
        return {"__tuple__": [to_json(v, f"{path}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [to_json(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, torch.dtype):
        return {"__dtype__": str(value).removeprefix("torch.")}
    if isinstance(value, dict):
        if not all(isinstance(k, str) for k in value):
            raise StateCodecError(f"{path}: non-string dict keys {list(value)[:3]}")
        if any(k in _TAGS for k in value):
            raise StateCodecError(f"{path}: a key collides with the codec's tags")
        return {k: to_json(v, f"{path}.{k}") for k, v in value.items()}
    raise StateCodecError(f"{path}: {type(value).__name__} has no JSON form")


def from_json(value: Any) -> Any:
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) == 1:
        (tag, inner), = value.items()
        if tag == "__tuple__":
            return tuple(from_json(v) for v in inner)
        if tag == "__size__":
            return torch.Size(inner)
        if tag == "__dtype__":
            return getattr(torch, inner)
        if tag == "__float__":
            return float(inner)
    return {k: from_json(v) for k, v in value.items()}
