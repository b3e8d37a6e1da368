"""Registered FER models.

Every module in this package (one per model family) registers its models with
``@register_model`` when imported; importing the package imports them all, so adding a family
is adding a file.
"""

import importlib
import pkgutil

from feredge.models.registry import (
    ModelEntry,
    PaperFigures,
    TrainDefaults,
    count_macs,
    count_params,
    create_model,
    deploy_graph,
    get_entry,
    list_models,
    register_model,
)

DEFAULT_MODEL = "mini_xception"

_NOT_MODEL_FAMILIES = {"registry", "layers"}
for _info in pkgutil.iter_modules(__path__):
    if _info.name not in _NOT_MODEL_FAMILIES and not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")

__all__ = [
    "DEFAULT_MODEL",
    "ModelEntry",
    "PaperFigures",
    "TrainDefaults",
    "count_macs",
    "count_params",
    "create_model",
    "deploy_graph",
    "get_entry",
    "list_models",
    "register_model",
]
