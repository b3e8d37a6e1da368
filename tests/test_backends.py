"""The back-end record (:mod:`feredge.backends`): one row per back end, every reference real, every name looked up.

Mirrors the module: its imports (stdlib and ``feredge.errors`` only: the device side and the CLI read
it), the lazy references (each row's runner and build name a real object), the lookups (an unknown
name is an error with the message the CLI has always given; a row registered later is seen at once),
and the facts the rows must agree on with each other and with what ships (names and aliases
unchanged, the detector network's runtimes as the prebuilt manifest records them).
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import sys

import pytest

from feredge.backends import (
    AUTO_ORDER,
    BACKENDS,
    Backend,
    ExportTarget,
    backend,
    export_targets,
    load_object,
    network_runtimes,
    resolve_runtime,
    resolve_target,
    runtime,
    runtime_names,
)
from feredge.errors import FeredgeError
from feredge.runtimes.base import Runner

RUNNER_ROWS = [row for row in BACKENDS.values() if row.runner is not None]
TARGET_ROWS = [row for row in BACKENDS.values() if row.target is not None]
DEVICES = {"cpu", "gpu", "npu", "auto"}


def _installed(row: Backend) -> bool:
    return all(importlib.util.find_spec(pkg) is not None for pkg in row.requires)


# --- the module -----------------------------------------------------------------------------------

def test_the_module_imports_only_the_standard_library_and_the_errors():
    from tests.test_layering import ROOT, scan

    imports = scan(ROOT)["feredge.backends"].imports
    assert {i.target for i in imports if i.internal} == {"feredge.errors"}
    outside = {i.target.split(".")[0] for i in imports if not i.internal}
    assert outside and outside <= set(sys.stdlib_module_names) | {"__future__"}, outside


def test_the_rows_are_the_six_back_ends_in_order():
    assert list(BACKENDS) == ["openvino", "onnxruntime", "torch", "tensorrt", "deepstream", "triton"]
    assert runtime_names() == ("openvino", "onnxruntime", "torch", "tensorrt")
    assert [t.name for t in export_targets()] == ["openvino", "onnx", "tensorrt", "deepstream", "triton"]
    assert backend("torch").target is None  # runs the openvino bundle's weights, no target of its own
    assert backend("deepstream").runner is None and backend("triton").runner is None


# --- the lazy references --------------------------------------------------------------------------

@pytest.mark.parametrize("row", RUNNER_ROWS, ids=lambda r: r.name)
def test_every_runner_reference_is_a_runner_of_its_row(row: Backend):
    if not _installed(row) and row.name != "tensorrt":  # tensorrt's module imports without TensorRT
        pytest.skip(f"{row.name} is not installed: {row.install}")
    cls = row.runner_class()
    assert inspect.isclass(cls) and issubclass(cls, Runner) and cls.name == row.name
    assert cls.row() is row
    # the row holds the facts; a class attribute would be a second copy to drift
    assert not hasattr(cls, "bundle_roles") and not hasattr(cls, "devices")


@pytest.mark.parametrize("row", TARGET_ROWS, ids=lambda r: r.name)
def test_every_build_reference_is_a_function_taking_the_context(row: Backend):
    pytest.importorskip("torch", reason="the build functions are the export side's")
    assert row.target is not None
    build = row.target.builder()
    assert inspect.isfunction(build) and list(inspect.signature(build).parameters) == ["ctx"]


def test_a_malformed_reference_is_an_error():
    assert load_object("feredge.backends:BACKENDS") is BACKENDS
    for ref in ("feredge.backends", "feredge.backends:", ":BACKENDS"):
        with pytest.raises(FeredgeError, match="is not a 'module:attribute' reference"):
            load_object(ref)
    with pytest.raises(AttributeError):
        load_object("feredge.backends:no_such_thing")


def test_a_row_needs_a_runner_or_a_target_and_a_runner_its_facts():
    with pytest.raises(FeredgeError, match="needs a runner, an export target or both"):
        Backend("nothing", "neither")
    with pytest.raises(FeredgeError, match="a runner needs its bundle roles, devices and bundle target"):
        Backend("half", "no roles", runner="feredge.runtimes.onnxruntime_runner:OnnxRuntimeRunner")
    with pytest.raises(FeredgeError, match="is an export target, not a runtime"):
        backend("triton").runner_class()


# --- the lookups ----------------------------------------------------------------------------------

def test_unknown_names_are_errors_with_the_known_ones():
    with pytest.raises(FeredgeError, match=r"^unknown runtime 'tpu'; known: openvino, onnxruntime, torch, tensorrt$"):
        runtime("tpu")
    with pytest.raises(FeredgeError, match=r"^unknown export target 'tpu'; known: openvino \(ov/openvino_ir\), "
                                           r"onnx \(ort\), tensorrt \(trt/engine\), deepstream \(ds/nvinfer\), "
                                           r"triton \(tritonserver\)$"):
        resolve_target("tpu")
    with pytest.raises(FeredgeError, match=r"^unknown back end 'ov'; known: openvino, onnxruntime, torch, tensorrt, "
                                           r"deepstream, triton$"):
        backend("ov")  # a row by its name: aliases belong to a runtime or a target
    with pytest.raises(FeredgeError, match="unknown runtime 'deepstream'"):
        runtime("deepstream")  # a target only
    with pytest.raises(FeredgeError, match="unknown export target 'onnxruntime'"):
        resolve_target("onnxruntime")  # the runtime's name is not its target's


def test_names_and_aliases_resolve_as_they_always_have():
    assert {alias: resolve_runtime(alias) for alias in ("ov", "ORT", "onnx", "pytorch", "trt", "engine")} == {
        "ov": "openvino", "ORT": "onnxruntime", "onnx": "onnxruntime", "pytorch": "torch", "trt": "tensorrt",
        "engine": "tensorrt"}
    assert {alias: resolve_target(alias).name for alias in ("ov", "openvino_ir", "ort", "trt", "engine", "ds",
                                                             "nvinfer", "tritonserver")} == {
        "ov": "openvino", "openvino_ir": "openvino", "ort": "onnx", "trt": "tensorrt", "engine": "tensorrt",
        "ds": "deepstream", "nvinfer": "deepstream", "tritonserver": "triton"}
    assert resolve_target("onnx") is backend("onnxruntime").target  # manifests say target "onnx"


def test_names_are_unique_within_runtimes_and_within_targets():
    runtime_keys = [key for row in RUNNER_ROWS for key in (row.name, *row.aliases)]
    target_keys = [key for t in export_targets() for key in (t.name, *t.aliases)]
    assert len(runtime_keys) == len(set(runtime_keys)) and len(target_keys) == len(set(target_keys))
    assert all(key == key.lower() for key in runtime_keys + target_keys)  # looked up lower-cased


def test_a_registered_row_is_seen_by_every_lookup(monkeypatch: pytest.MonkeyPatch):
    row = Backend("late", "registered after import", aliases=("lt",),
                  runner="feredge.runtimes.torch_runner:TorchRunner", bundle_roles=("onnx",), bundle_target="late",
                  target=ExportTarget("late", ("lt",), ("fp32",), "late", "feredge.export.targets:build_onnx"))
    monkeypatch.setitem(BACKENDS, "late", row)
    assert runtime_names()[-1] == "late" and runtime("LT") is row and backend("late") is row
    assert resolve_target("lt") is row.target and export_targets()[-1] is row.target


# --- the facts agree ------------------------------------------------------------------------------

def test_auto_order_is_every_runtime_once():
    assert sorted(AUTO_ORDER) == sorted(runtime_names())
    assert AUTO_ORDER[0] == "tensorrt"


@pytest.mark.parametrize("row", RUNNER_ROWS, ids=lambda r: r.name)
def test_a_runners_facts_name_real_things(row: Backend):
    assert row.bundle_target in {t.name for t in export_targets()}
    assert row.devices and set(row.devices) <= DEVICES
    assert row.requires and row.install and row.package in row.requires


@pytest.mark.parametrize("row", TARGET_ROWS, ids=lambda r: r.name)
def test_a_targets_int8_facts_name_real_things(row: Backend):
    from feredge.quantize.ptq import PTQ_BACKENDS

    target = row.target
    assert target is not None
    assert target.int8_runtime in runtime_names()
    assert target.auto_ptq in PTQ_BACKENDS and PTQ_BACKENDS[target.auto_ptq].produces in target.int8_kinds
    assert set(target.precisions) <= {"fp32", "fp16", "int8"} and "fp32" in target.precisions
    assert target.network_roles[0] == "onnx"


def test_network_roles_have_converters():
    pytest.importorskip("torch", reason="the converters are the export side's")
    from feredge.export.detector_network import CONVERTERS

    for target in export_targets():
        assert set(target.network_roles) - {"onnx"} <= set(CONVERTERS), target.name


def test_the_detector_network_is_declared_for_the_rows_that_verify_networks():
    from feredge.default_bundle import SHIPPED_BUNDLE

    assert network_runtimes() == ("openvino", "onnxruntime")  # row order
    manifest = json.loads((SHIPPED_BUNDLE / "manifest.json").read_text(encoding="utf-8"))
    pytest.importorskip("torch", reason="declared_runtimes is the export side's")
    from feredge.export.detector_network import REFERENCE, declared_runtimes

    assert declared_runtimes()[0] == REFERENCE
    assert list(declared_runtimes()) == manifest["networks"]["detector"]["runtimes"]  # the same manifests


def test_the_cli_choices_are_the_rows_names():
    from feredge.cli import export_cmd, infer_cmd

    def choices(module, flag: str) -> set[str]:  # type: ignore[no-untyped-def]
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        return set(next(a.choices for a in parser._actions if flag in a.option_strings))

    assert choices(infer_cmd, "--runtime") == {"auto", "openvino", "ov", "onnxruntime", "ort", "onnx", "torch",
                                               "pytorch", "tensorrt", "trt", "engine"}
    assert choices(export_cmd, "--target") == {"onnx", "ort", "openvino", "ov", "openvino_ir", "tensorrt", "trt",
                                               "engine", "deepstream", "ds", "nvinfer", "triton", "tritonserver"}
