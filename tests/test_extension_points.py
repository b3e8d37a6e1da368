"""Adding a runtime is one runner module and one registry row; adding an export target is one
build function and one table row (docs/architecture.md). Shown with a toy of each, registered
for the test only: nothing else in feredge is edited for them to work end to end."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from feredge.runtimes.base import Runner, TensorMeta


class ToyRunner(Runner):
    """A 'new back end': ONNX Runtime behind its own name, reading its own bundle role."""

    name = "toy"
    bundle_roles = ("toy_onnx", "onnx")
    devices = ("cpu",)

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


def _build_toy(ctx) -> None:  # type: ignore[no-untyped-def]
    """A 'new export target': a copy of the verified fp32 ONNX under its own role, checked in the toy runtime."""
    from feredge.parity import compare_logits

    shutil.copyfile(ctx.staging / "model.onnx", ctx.staging / "toy.onnx")
    ctx.add_file("toy.onnx", "toy_onnx")
    with ToyRunner(ctx.staging / "toy.onnx") as runner:
        ctx.record_parity(compare_logits(ctx.expected, runner.infer_all(ctx.reference.batch), runtime="toy"))


@pytest.fixture
def toys(monkeypatch: pytest.MonkeyPatch) -> None:
    from feredge.export.context import ExportTarget
    from feredge.export.targets import TARGETS
    from feredge.runtimes.registry import RUNTIMES, RuntimeInfo

    monkeypatch.setitem(RUNTIMES, "toy", RuntimeInfo("toy", __name__, "ToyRunner", ("onnxruntime",), "-",
                                                     export_target="toy", package="onnxruntime"))
    monkeypatch.setitem(TARGETS, "toy", ExportTarget("toy", (), ("fp32",), "a toy", _build_toy,
                                                     int8_runtime="toy"))


@pytest.mark.slow
@pytest.mark.usefixtures("toys")
def test_a_toy_runtime_and_target_work_end_to_end_from_their_rows_alone(tmp_path: Path) -> None:
    from feredge.bench.model_bench import artifact_bytes, runner_role
    from feredge.bundle import Bundle
    from feredge.calibration.reference import reference_faces
    from feredge.export.exporter import ExportOptions, export
    from feredge.runtimes.onnxruntime_runner import OnnxRuntimeRunner
    from feredge.runtimes.registry import runner_class, runtime_info

    result = export(ExportOptions(target="toy", output=tmp_path / "bundle", max_batch=8))
    bundle = Bundle.load(result.bundle)  # listed, hashed, members checked: the toy file too
    assert bundle.manifest["target"] == "toy" and bundle.roles()["toy_onnx"] == "toy.onnx"
    assert [p["runtime"] for p in result.manifest["parity"]["results"]] == ["onnxruntime", "toy"]
    assert runner_class("toy") is ToyRunner and runtime_info("toy").export_target == "toy"
    assert runner_role(bundle, "toy") == "toy_onnx" and artifact_bytes(bundle, "toy") > 0
    faces = reference_faces(bundle.spec, include_lfw=False).batch
    with ToyRunner.from_bundle(bundle) as toy, OnnxRuntimeRunner.from_bundle(bundle) as ort:
        assert toy.model_path.name == "toy.onnx"
        np.testing.assert_allclose(toy.infer_all(faces), ort.infer_all(faces), atol=1e-5)


def test_unknown_names_are_errors_not_fallbacks() -> None:
    from feredge.errors import FeredgeError
    from feredge.export.targets import resolve_target
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
