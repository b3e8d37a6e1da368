"""Runtimes by name: thin functions over the back-end rows (:data:`feredge.backends.BACKENDS`).

No back end is imported until a runner of that kind is asked for, so a Jetson with only
TensorRT, or a CPU box with only OpenVINO, imports feredge without the others. Each row says
what to install when its module is missing.
"""

from __future__ import annotations

import importlib.util

from feredge.backends import AUTO_ORDER, Backend, resolve_runtime, runtime, runtime_names
from feredge.errors import FeredgeError, MissingBackendError
from feredge.runtimes.base import Runner

__all__ = ["AUTO_ORDER", "auto_runtime", "available_runtimes", "is_available", "resolve_name", "runner_class",
           "runtime_info"]


def resolve_name(name: str) -> str:
    """The runtime's own name for ``name`` or an alias; an unknown name is an error."""
    return resolve_runtime(name)


def runtime_info(name: str) -> Backend:
    """The back-end row of runtime ``name`` (or an alias); an unknown name is an error, never a fallback."""
    return runtime(name)


def is_available(name: str) -> bool:
    return all(importlib.util.find_spec(pkg) is not None for pkg in runtime(name).requires)


def available_runtimes() -> list[str]:
    return [name for name in runtime_names() if is_available(name)]


def runner_class(name: str) -> type[Runner]:
    row = runtime(name)
    if not is_available(row.name):
        raise MissingBackendError(f"runtime {row.name} is not installed: {row.install}")
    cls: type[Runner] = row.runner_class()
    return cls


def auto_runtime(bundle: object) -> str:
    """The first runtime in :data:`AUTO_ORDER` that is installed and has a file in the bundle."""
    for name in AUTO_ORDER:
        if is_available(name) and any(bundle.has(role) for role in runtime(name).bundle_roles):  # type: ignore[attr-defined]
            return name
    raise FeredgeError("no installed runtime can run this bundle; install onnxruntime or openvino")
