"""The TensorRT runner: registry wiring and pre-flight here; inference where TensorRT and a GPU are."""

from __future__ import annotations

import numpy as np
import pytest

from feredge.bundle import Bundle
from feredge.errors import FeredgeError, MissingBackendError
from feredge.runtimes.registry import AUTO_ORDER, is_available, resolve_name, runner_class, runtime_info
from feredge.runtimes.tensorrt.builder import LocalTensorRT, probe_tensorrt
from feredge.runtimes.tensorrt.engine_key import EngineKey

LOCAL_TRT, NO_TRT_REASON = probe_tensorrt()
needs_gpu = pytest.mark.skipif(LOCAL_TRT is None, reason=f"needs TensorRT and an NVIDIA GPU: {NO_TRT_REASON}")


def test_registered_first_in_auto_order_with_aliases():
    assert runtime_info("tensorrt").runner == "feredge.runtimes.tensorrt.runner:TensorRTRunner"
    assert AUTO_ORDER[0] == "tensorrt"
    assert resolve_name("trt") == resolve_name("engine") == "tensorrt"


def test_missing_tensorrt_names_what_to_install():
    if is_available("tensorrt"):
        pytest.skip("TensorRT is installed here")
    with pytest.raises(MissingBackendError, match="runtime tensorrt is not installed: TensorRT: JetPack"):
        runner_class("tensorrt")


def test_runner_module_imports_without_tensorrt():
    from feredge.runtimes.tensorrt.runner import TensorRTRunner

    assert runtime_info("tensorrt").runner_class() is TensorRTRunner  # the row's reference, without TensorRT
    assert TensorRTRunner.row().bundle_roles == ("trt_engine", "onnx") and TensorRTRunner.row().devices == ("gpu",)


def test_no_build_refuses_a_foreign_engine_before_touching_tensorrt(default_bundle, tmp_path, monkeypatch):
    import shutil

    from feredge.runtimes.tensorrt.runner import TensorRTRunner

    root = tmp_path / "bundle"
    shutil.copytree(default_bundle, root)
    bundle = Bundle.load(root)
    foreign = EngineKey("90", "10.13.0")
    (root / foreign.directory()).mkdir(parents=True)
    (root / foreign.engine_path()).write_bytes(b"not an engine for this device")
    bundle.add_file(foreign.engine_path(), "trt_engine", key=str(foreign))
    orin = LocalTensorRT("10.3.0", EngineKey("87", "10.3.0"), "Orin")
    monkeypatch.setattr("feredge.runtimes.tensorrt.builder.require_tensorrt", lambda: orin)
    runner = TensorRTRunner.from_bundle(Bundle.load(root), build=False)
    with pytest.raises(FeredgeError, match=r"foreign.*--no-build.*feredge build") as info:
        runner._resolve_engine()  # the pre-flight step of activate(), before any TensorRT import
    assert "\n" not in str(info.value)


@pytest.mark.tensorrt
@needs_gpu
def test_builds_on_first_load_then_reuses_and_matches_torch(default_bundle, tmp_path):
    import shutil

    from feredge.runtimes.pipeline import Pipeline

    root = tmp_path / "bundle"
    shutil.copytree(default_bundle, root)
    with runner_class("tensorrt").from_bundle(Bundle.load(root)) as runner, \
            runner_class("onnxruntime").from_bundle(Bundle.load(root)) as reference:
        batch = np.random.default_rng(0).random((5, 1, 64, 64), dtype=np.float32)
        np.testing.assert_allclose(runner.infer(batch), reference.infer(batch), atol=1e-3)
    bundle = Bundle.load(root)
    assert LOCAL_TRT is not None and bundle.has("trt_engine")
    assert str(LOCAL_TRT.key) in bundle.manifest["tensorrt"]["engines"]
    with Pipeline.from_bundle(root, runtime="tensorrt", build=False) as pipeline:  # reuses, no build
        assert pipeline.runner.settings["runtime"] == "tensorrt"
