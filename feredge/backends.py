"""One record per back end: what runs it, what its bundle holds, how it is exported (issue 15).

Every fact about a back end lives in its :class:`Backend` row of :data:`BACKENDS`: the runner (a lazy
``"module:Class"``, imported only when asked for, so a Jetson with only TensorRT or a CPU box with
only OpenVINO imports feredge without the others), what it needs installed, the bundle roles its
runner reads, the devices it takes, and — in an :class:`ExportTarget` sub-record — how the export
makes its bundle (a lazy ``"module:function"`` build, imported when the export runs) with its INT8
facts. The runners (:mod:`feredge.runtimes`), the export and quantize sides, bench and the CLI all
read these rows; none keeps a table of its own, and an unknown name is an error, never a fallback.

Plain data and the standard library only (plus :mod:`feredge.errors`): the device side and the CLI's
argument parsers read it without torch, and it imports none of the modules its strings name.

The lookups are functions over :data:`BACKENDS`, not dictionaries derived from it, so a row a test
registers (``monkeypatch.setitem(BACKENDS, "toy", Backend(...))``) is seen by every reader at once.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from feredge.errors import FeredgeError


def load_object(ref: str) -> Any:
    """The object a lazy ``"module:attribute"`` reference names, importing its module now."""
    module, sep, attribute = ref.partition(":")
    if not sep or not module or not attribute:
        raise FeredgeError(f"{ref!r} is not a 'module:attribute' reference (a feredge bug)")
    return getattr(importlib.import_module(module), attribute)


@dataclass(frozen=True)
class ExportTarget:
    """A format ``feredge export --target`` writes, with every fact the export and quantize sides need."""

    #: the name manifests record as ``target`` (the onnxruntime back end's target is ``onnx``)
    name: str
    aliases: tuple[str, ...]
    precisions: tuple[str, ...]
    description: str
    #: ``"module:function"`` taking the :class:`~feredge.export.context.ExportContext`, imported when the export
    #: runs (the export side needs torch; this record must not)
    build: str
    #: the runtime that measures this target's INT8 artifact here (TensorRT cannot run here: its
    #: Q/DQ ONNX is measured in ONNX Runtime, which reads the same Q/DQ semantics)
    int8_runtime: str = "onnxruntime"
    #: ``--ptq auto``: the target runtime's own tool (ModelOpt for TensorRT; feredge.quantize.ptq)
    auto_ptq: str = "ort"
    #: INT8 artifact kinds the target can ship (feredge.quantize.ptq: qdq_onnx, openvino_ir)
    int8_kinds: tuple[str, ...] = ("qdq_onnx",)
    #: 7-bit weights by default (feredge.quantize.config): CPUs without VNNI saturate; GPUs never do
    overflow_fix: bool = True
    #: runner roles the bundle's other networks (the detector) get on this target: the ONNX always,
    #: plus what its runtime reads natively (feredge.export.detector_network.CONVERTERS)
    network_roles: tuple[str, ...] = ("onnx",)

    def builder(self) -> Callable[[Any], None]:
        """The build function, imported now."""
        build: Callable[[Any], None] = load_object(self.build)
        return build


@dataclass(frozen=True)
class Backend:
    """One back end: its runner (how a device runs a bundle) and/or its export target (how a bundle is made)."""

    name: str
    description: str
    #: other names ``--runtime`` accepts for the runner (the target's aliases are its own)
    aliases: tuple[str, ...] = ()
    #: ``"module:Class"`` of the :class:`~feredge.runtimes.base.Runner`; None for a target only
    runner: str | None = None
    #: top-level packages that must be importable for the runner
    requires: tuple[str, ...] = ()
    #: what to install when one of :attr:`requires` is missing
    install: str = ""
    #: the back end's own package, imported before a memory baseline so the baseline holds its libraries
    package: str = ""
    #: bundle file roles the runner reads, first match wins (openvino falls back to the ONNX)
    bundle_roles: tuple[str, ...] = ()
    #: devices the runner takes (``device=``), first the default; "auto" lets the back end choose
    devices: tuple[str, ...] = ("cpu",)
    #: the runner writes into the bundle it runs (TensorRT adds the engine it builds for this GPU), so
    #: the read-only prebuilt default bundle is run from a cache copy (feredge.default_bundle)
    writes_bundle: bool = False
    #: the export target whose bundle the runner runs (what a benchmark matrix exports for it)
    bundle_target: str | None = None
    #: how the export makes this back end's bundle; None for a runner without a target of its own (torch)
    target: ExportTarget | None = None
    #: the bundle's other networks (the detector) are verified in this runtime and declared for it
    #: (feredge.export.detector_network); TensorRT: its static ONNX check only, so far
    verifies_networks: bool = False

    def __post_init__(self) -> None:
        if self.runner is None and self.target is None:
            raise FeredgeError(f"back end {self.name}: a row needs a runner, an export target or both")
        if self.runner is not None and not (self.bundle_roles and self.devices and self.bundle_target):
            raise FeredgeError(f"back end {self.name}: a runner needs its bundle roles, devices and bundle target")

    def runner_class(self) -> type:
        """The runner class, imported now (availability is :func:`feredge.runtimes.registry.runner_class`'s)."""
        if self.runner is None:
            raise FeredgeError(f"{self.name} is an export target, not a runtime")
        cls: type = load_object(self.runner)
        return cls


#: name → row. Order is the runtimes' order (``--runtime`` help, ``bench``'s default runtimes) and the targets'.
BACKENDS: dict[str, Backend] = {
    row.name: row
    for row in (
        Backend("openvino", "Intel OpenVINO: CPU, GPU, NPU", aliases=("ov",),
                runner="feredge.runtimes.openvino_runner:OpenVINORunner", requires=("openvino",),
                install="pip install openvino", package="openvino", bundle_roles=("openvino_xml", "onnx"),
                devices=("cpu", "gpu", "npu", "auto"), bundle_target="openvino", verifies_networks=True,
                target=ExportTarget("openvino", ("ov", "openvino_ir"), ("fp32", "fp16", "int8"),
                                    "ONNX + OpenVINO IR, verified in OpenVINO with f32 forced",
                                    "feredge.export.targets:build_openvino", int8_runtime="openvino",
                                    auto_ptq="nncf", int8_kinds=("qdq_onnx", "openvino_ir"),
                                    network_roles=("onnx", "openvino_xml"))),
        Backend("onnxruntime", "ONNX Runtime: the reference ONNX runtime (the file TensorRT parses)",
                aliases=("ort", "onnx"), runner="feredge.runtimes.onnxruntime_runner:OnnxRuntimeRunner",
                requires=("onnxruntime",), install="pip install onnxruntime", package="onnxruntime",
                bundle_roles=("onnx",), devices=("cpu", "gpu", "auto"), bundle_target="onnx",
                verifies_networks=True,
                target=ExportTarget("onnx", ("ort",), ("fp32", "fp16", "int8"),
                                    "ONNX (dynamic batch), verified in onnxruntime",
                                    "feredge.export.targets:build_onnx")),
        # PyTorch eager runs any bundle's fp32 weights; the matrix takes them from the openvino bundle
        Backend("torch", "PyTorch eager: the reference every other runtime is compared with", aliases=("pytorch",),
                runner="feredge.runtimes.torch_runner:TorchRunner", requires=("torch", "safetensors"),
                install="pip install 'feredge[train]' (torch, safetensors)", package="torch",
                bundle_roles=("weights",), devices=("cpu",), bundle_target="openvino"),
        Backend("tensorrt", "NVIDIA TensorRT (Jetson or desktop GPU), the engine built on the device",
                aliases=("trt", "engine"), runner="feredge.runtimes.tensorrt.runner:TensorRTRunner",
                requires=("tensorrt", "cuda"),
                install="TensorRT: JetPack's python3-libnvinfer on Jetson, or pip install tensorrt "
                        "--extra-index-url https://pypi.nvidia.com; plus pip install cuda-python",
                package="tensorrt", bundle_roles=("trt_engine", "onnx"), devices=("gpu",), writes_bundle=True,
                bundle_target="tensorrt",
                target=ExportTarget("tensorrt", ("trt", "engine"), ("fp32", "fp16", "int8"),
                                    "TensorRT-ready ONNX; engine built where TensorRT runs",
                                    "feredge.export.tensorrt.export_target:build_tensorrt",
                                    auto_ptq="modelopt", overflow_fix=False)),
        Backend("deepstream", "NVIDIA DeepStream: nvinfer configs run by deepstream-app (no feredge runner)",
                target=ExportTarget("deepstream", ("ds", "nvinfer"), ("fp32", "fp16", "int8"),
                                    "TensorRT-ready ONNX + nvinfer configs (BlazeFace primary, classifier secondary) "
                                    "and a deepstream-app config for N streams, checked statically",
                                    "feredge.export.deepstream:build_deepstream",
                                    auto_ptq="modelopt", overflow_fix=False)),
        Backend("triton", "NVIDIA Triton: a model repository served by `feredge serve` (no feredge runner)",
                target=ExportTarget("triton", ("tritonserver",), ("fp32", "fp16"),
                                    "ONNX + OpenVINO IR + a Triton model repository (native and python-backend "
                                    "models)", "feredge.export.targets:build_triton", int8_runtime="openvino",
                                    network_roles=("onnx", "openvino_xml"))),
    )
}
#: ``runtime="auto"`` takes the first available runtime in this order that the bundle has files for
AUTO_ORDER = ("tensorrt", "openvino", "onnxruntime", "torch")


def backend(name: str) -> Backend:
    """The row named ``name`` (its back-end name, not an alias: aliases belong to a runtime or a target)."""
    row = BACKENDS.get(name)
    if row is None:
        raise FeredgeError(f"unknown back end {name!r}; known: {', '.join(BACKENDS)}")
    return row


def runtime_names() -> tuple[str, ...]:
    """The back ends with a runner, in row order."""
    return tuple(row.name for row in BACKENDS.values() if row.runner is not None)


def runtime(name: str) -> Backend:
    """The row of runtime ``name`` or one of its aliases, case-insensitive; an unknown name is an error."""
    key = name.lower()
    for row in BACKENDS.values():
        if row.runner is not None and (key == row.name or key in row.aliases):
            return row
    raise FeredgeError(f"unknown runtime {name!r}; known: {', '.join(runtime_names())}")


def resolve_runtime(name: str) -> str:
    """The runtime's own name for ``name`` or an alias (``ov`` → openvino)."""
    return runtime(name).name


def export_targets() -> tuple[ExportTarget, ...]:
    """Every export target, in row order."""
    return tuple(row.target for row in BACKENDS.values() if row.target is not None)


def resolve_target(name: str) -> ExportTarget:
    """The export target ``name`` or one of its aliases names (``trt`` → tensorrt); unknown is an error."""
    key = name.lower()
    for target in export_targets():
        if key == target.name or key in target.aliases:
            return target
    names = ", ".join(f"{t.name} ({'/'.join(t.aliases)})" for t in export_targets())
    raise FeredgeError(f"unknown export target {name!r}; known: {names}")


def network_runtimes() -> tuple[str, ...]:
    """The runtimes a bundle's other networks (the detector) are verified in, in row order."""
    return tuple(row.name for row in BACKENDS.values() if row.runner is not None and row.verifies_networks)
