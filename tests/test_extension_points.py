"""Adding a back end with its export target is one module (the runner and the build function, here
this file) and one :class:`~feredge.backends.Backend` row (docs/architecture.md). Shown with a toy,
registered for the test only: nothing else in feredge is edited for it to work end to end — export,
bundle loading, the runner, the bench's artifact lookup and the CLI's choices all read the row."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from feredge.runtimes.base import Runner, TensorMeta


class ToyRunner(Runner):
    """A 'new back end': ONNX Runtime behind its own name, reading its own bundle role."""

    name = "toy"

    def _activate(self) -> TensorMeta:
        import onnxruntime as ort

        self.session = ort.InferenceSession(str(self.model_path), providers=["CPUExecutionProvider"])
        meta = self.session.get_inputs()[0]
        self.settings = {"runtime": self.name, "precision": self.options.get("precision", "fp32")}
        return TensorMeta(meta.name, tuple(d if isinstance(d, int) else None for d in meta.shape))

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        assert self.input_meta is not None
        return np.asarray(self.session.run(None, {self.input_meta.name: batch})[0], np.float32)

    def _deactivate(self) -> None:
        del self.session


def build_toy(ctx) -> None:  # type: ignore[no-untyped-def]
    """A 'new export target': a copy of the verified fp32 ONNX under its own role, checked in the toy runtime."""
    from feredge.parity import compare_logits

    shutil.copyfile(ctx.staging / "model.onnx", ctx.staging / "toy.onnx")
    ctx.add_file("toy.onnx", "toy_onnx")
    with ToyRunner(ctx.staging / "toy.onnx") as runner:
        ctx.record_parity(compare_logits(ctx.expected, runner.infer_all(ctx.reference.batch), runtime="toy"))


@pytest.fixture
def toys(monkeypatch: pytest.MonkeyPatch) -> None:
    """The one registry row: runner, bundle roles, devices and export target."""
    from feredge.backends import BACKENDS, Backend, ExportTarget

    monkeypatch.setitem(BACKENDS, "toy", Backend(
        "toy", "ONNX Runtime behind its own name", aliases=("toy-rt",), runner=f"{__name__}:ToyRunner",
        requires=("onnxruntime",), install="-", package="onnxruntime", bundle_roles=("toy_onnx", "onnx"),
        devices=("cpu",), bundle_target="toy",
        target=ExportTarget("toy", ("toy-format",), ("fp32",), "a toy", f"{__name__}:build_toy")))


@pytest.mark.slow
@pytest.mark.usefixtures("toys")
def test_a_toy_runtime_and_target_work_end_to_end_from_their_rows_alone(tmp_path: Path) -> None:
    from feredge.bench.model_bench import artifact_bytes, runner_role
    from feredge.bundle import Bundle
    from feredge.calibration.reference import reference_faces
    from feredge.errors import FeredgeError
    from feredge.export.exporter import ExportOptions, export
    from feredge.runtimes.onnxruntime_runner import OnnxRuntimeRunner
    from feredge.runtimes.registry import runner_class, runtime_info

    result = export(ExportOptions(target="toy-format", output=tmp_path / "bundle", max_batch=8))
    bundle = Bundle.load(result.bundle)  # listed, hashed, members checked: the toy file too
    assert bundle.manifest["target"] == "toy" and bundle.roles()["toy_onnx"] == "toy.onnx"
    assert [p["runtime"] for p in result.manifest["parity"]["results"]] == ["onnxruntime", "toy"]
    assert runner_class("toy-rt") is ToyRunner and runtime_info("toy").bundle_target == "toy"
    assert runner_role(bundle, "toy") == "toy_onnx" and artifact_bytes(bundle, "toy") > 0
    faces = reference_faces(bundle.spec, include_lfw=False).batch
    with ToyRunner.from_bundle(bundle) as toy, OnnxRuntimeRunner.from_bundle(bundle) as ort:
        assert toy.model_path.name == "toy.onnx" and toy.device == "cpu"
        np.testing.assert_allclose(toy.infer_all(faces), ort.infer_all(faces), atol=1e-5)
    with pytest.raises(FeredgeError, match="runtime toy runs on cpu, not 'gpu'"):
        ToyRunner(bundle.path("toy_onnx"), device="gpu")  # the row's devices


@pytest.mark.usefixtures("toys")
def test_the_cli_offers_the_toy_from_its_row() -> None:
    import argparse

    from feredge.cli import export_cmd, infer_cmd

    def choices(module, flag: str) -> list[str]:  # type: ignore[no-untyped-def]
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        return next(a.choices for a in parser._actions if flag in a.option_strings)

    assert {"toy", "toy-rt"} <= set(choices(infer_cmd, "--runtime"))
    assert {"toy", "toy-format"} <= set(choices(export_cmd, "--target"))


def test_unknown_names_are_errors_not_fallbacks() -> None:
    from feredge.backends import resolve_target
    from feredge.errors import FeredgeError
    from feredge.runtimes.registry import runtime_info

    with pytest.raises(FeredgeError, match="unknown runtime 'toy'"):
        runtime_info("toy")
    with pytest.raises(FeredgeError, match="unknown export target 'toy'"):
        resolve_target("toy")


@pytest.mark.parametrize("runtime, device, ok", [("onnxruntime", "cpu", True), ("onnxruntime", "npu", False),
                                                 ("openvino", "npu", True), ("openvino", "tpu", False)])
def test_runners_take_a_device_they_have(runtime: str, device: str, ok: bool, tmp_path: Path) -> None:
    from feredge.errors import FeredgeError
    from feredge.runtimes.registry import runner_class

    cls = runner_class(runtime)
    if ok:
        assert cls(tmp_path / "m.onnx", device=device.upper()).device == device  # checked when made
    else:
        with pytest.raises(FeredgeError, match=f"runs on .* not '{device}'"):
            cls(tmp_path / "m.onnx", device=device)


def test_a_missing_device_is_one_line_at_activation(default_bundle: Path) -> None:
    from feredge.bundle import Bundle
    from feredge.errors import FeredgeError
    from feredge.runtimes.registry import runner_class

    bundle = Bundle.load(default_bundle)
    with pytest.raises(FeredgeError, match="no GPU"):
        runner_class("onnxruntime").from_bundle(bundle, device="gpu").activate()
    with runner_class("openvino").from_bundle(bundle, device="cpu") as runner:
        assert runner.settings["device"] == "CPU"
