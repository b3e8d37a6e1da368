"""Runtime registry: name → where its runner lives and what it needs, imported only when used.

No back end is imported until a runner of that kind is asked for, so a Jetson with only
TensorRT, or a CPU box with only OpenVINO, imports feredge without the others. Each entry says
what to install when its module is missing.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass

from feredge.errors import FeredgeError, MissingBackendError
from feredge.runtimes.base import Runner


@dataclass(frozen=True)
class RuntimeInfo:
    name: str
    module: str  # feredge module holding the runner class
    class_name: str
    requires: tuple[str, ...]  # top-level packages that must be importable
    install: str
    aliases: tuple[str, ...] = ()
    #: the export target whose bundle this runtime runs (what a benchmark matrix exports for it)
    export_target: str = "onnx"
    #: the back end's own package, imported before a memory baseline so the baseline holds its libraries
    package: str = ""
    #: the runner writes into the bundle it runs (TensorRT adds the engine it builds for this GPU), so
    #: the read-only prebuilt default bundle is run from a cache copy (feredge.default_bundle)
    writes_bundle: bool = False


RUNTIMES: dict[str, RuntimeInfo] = {
    info.name: info
    for info in (
        RuntimeInfo("openvino", "feredge.runtimes.openvino_runner", "OpenVINORunner", ("openvino",),
                    "pip install openvino", aliases=("ov",), export_target="openvino", package="openvino"),
        RuntimeInfo("onnxruntime", "feredge.runtimes.onnxruntime_runner", "OnnxRuntimeRunner",
                    ("onnxruntime",), "pip install onnxruntime", aliases=("ort", "onnx"), export_target="onnx",
                    package="onnxruntime"),
        # PyTorch eager runs any bundle's fp32 weights; the matrix takes them from the openvino bundle
        RuntimeInfo("torch", "feredge.runtimes.torch_runner", "TorchRunner", ("torch", "safetensors"),
                    "pip install 'feredge[train]' (torch, safetensors)", aliases=("pytorch",),
                    export_target="openvino", package="torch"),
        RuntimeInfo("tensorrt", "feredge.runtimes.tensorrt.runner", "TensorRTRunner", ("tensorrt", "cuda"),
                    "TensorRT: JetPack's python3-libnvinfer on Jetson, or pip install tensorrt "
                    "--extra-index-url https://pypi.nvidia.com; plus pip install cuda-python",
                    aliases=("trt", "engine"), export_target="tensorrt", package="tensorrt",
                    writes_bundle=True),
    )
}
#: ``runtime="auto"`` takes the first available runtime in this order that the bundle has files for
AUTO_ORDER = ("tensorrt", "openvino", "onnxruntime", "torch")


def resolve_name(name: str) -> str:
    key = name.lower()
    for info in RUNTIMES.values():
        if key == info.name or key in info.aliases:
            return info.name
    raise FeredgeError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")


def runtime_info(name: str) -> RuntimeInfo:
    """The registry row of ``name`` (or an alias); an unknown name is an error, never a fallback."""
    return RUNTIMES[resolve_name(name)]


def is_available(name: str) -> bool:
    info = RUNTIMES[resolve_name(name)]
    return all(importlib.util.find_spec(pkg) is not None for pkg in info.requires)


def available_runtimes() -> list[str]:
    return [name for name in RUNTIMES if is_available(name)]


def runner_class(name: str) -> type[Runner]:
    info = RUNTIMES[resolve_name(name)]
    if not is_available(info.name):
        raise MissingBackendError(f"runtime {info.name} is not installed: {info.install}")
    module = importlib.import_module(info.module)
    cls: type[Runner] = getattr(module, info.class_name)
    return cls


def auto_runtime(bundle: object) -> str:
    """The first runtime in :data:`AUTO_ORDER` that is installed and has a file in the bundle."""
    for name in AUTO_ORDER:
        if not is_available(name):
            continue
        cls = runner_class(name)
        if any(bundle.has(role) for role in cls.bundle_roles):  # type: ignore[attr-defined]
            return name
    raise FeredgeError("no installed runtime can run this bundle; install onnxruntime or openvino")
