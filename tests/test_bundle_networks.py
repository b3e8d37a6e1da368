"""A bundle holds several networks: the classifier and the BlazeFace detector, each verified and run from it."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from feredge.bundle import BUNDLE_SCHEMA_VERSION, Bundle, BundleError, file_entry, sha256_file
from feredge.errors import FeredgeError
from feredge.export.detector_network import DEVICE_TOLERANCES, FP32_TOLERANCES
from feredge.preprocess.blazeface import (
    BLAZEFACE_SPECS,
    RUNNER_OPTIONS,
    SHORT_RANGE,
    BlazeFaceDetector,
    BlazeFaceSpec,
    models_dir,
)
from feredge.preprocess.image_io import read_image
from feredge.runtimes.pipeline import Pipeline
from feredge.runtimes.registry import runner_class
from tests.bundle_edit import edit_manifest as _edit_manifest

#: the runtimes the shipped bundle's detector network was verified in (its manifest's networks.detector.runtimes)
SHIPPED_DETECTOR_RUNTIMES = ("onnxruntime", "openvino")


@pytest.fixture
def old_bundle(default_bundle, tmp_path) -> Path:
    """A schema-1 bundle written by hand: one ONNX, the top-level fields, no networks section."""
    root = tmp_path / "old"
    root.mkdir()
    shutil.copyfile(default_bundle / "model.onnx", root / "model.onnx")
    current = json.loads((default_bundle / "manifest.json").read_text())
    labels = current["labels"]
    manifest = {
        "schema_version": 1, "model": {"name": "mini_xception", "kwargs": {}}, "labels": labels,
        "spec": current["spec"], "precision": "fp32", "target": "onnx",
        "input": {"name": "input", "shape": [None, 1, 64, 64], "max_batch": 16},
        "output": {"name": "logits", "shape": [None, len(labels)]},
        "parity": {"results": [{"runtime": "onnxruntime", "passed": True}]},
        "files": {"model.onnx": file_entry(root / "model.onnx", "onnx")},
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_schema_is_version_2():
    assert BUNDLE_SCHEMA_VERSION == 2


def test_an_old_schema_bundle_loads_as_one_classifier_network(old_bundle, astronaut_path):
    bundle = Bundle.load(old_bundle)
    assert list(bundle.networks) == ["classifier"]
    net = bundle.network("classifier")
    assert net.files == {"onnx": "model.onnx"} and net.input_shape == (1, 64, 64) and net.max_batch == 16
    assert net.parity == ({"runtime": "onnxruntime", "passed": True},) and net.runtimes == ()
    with pytest.raises(BundleError, match="has no detector network"):
        bundle.network("detector")
    with pytest.raises(BundleError, match="has no detector network"):
        runner_class("onnxruntime").from_bundle(bundle, network="detector")
    # the pipeline falls back to the packaged BlazeFace and still finds the astronaut happy
    with Pipeline.from_bundle(bundle, runtime="onnxruntime", detector="blazeface") as pipeline:
        assert pipeline.detector.runner.model_path == models_dir() / "short_range.onnx"
        (face,) = pipeline.run(read_image(astronaut_path).image).faces
        assert face.label == "happy"


def test_a_new_bundle_lists_its_detector_network_hashed_and_verified(default_bundle):
    bundle = Bundle.load(default_bundle)
    assert bundle.manifest["schema_version"] == 2 and set(bundle.networks) == {"classifier", "detector"}
    net = bundle.network("detector")
    assert net.kind == "blazeface" and net.runtimes == ("onnxruntime", "openvino")
    assert set(net.files) == {"onnx", "openvino_xml", "openvino_bin"}  # an openvino bundle: ONNX + IR
    assert BlazeFaceSpec.from_dict(net.spec) == SHORT_RANGE  # the spec round-trips: input, anchors, thresholds
    assert net.input_shape == (3, 128, 128) and net.output_shape == (896, 17)
    for role, name in net.files.items():
        entry = bundle.manifest["files"][name]
        assert entry["role"] == f"detector.{role}" and entry["precision"] == "fp32"
        assert entry["sha256"] == sha256_file(default_bundle / name)
    # the shipped asset, byte for byte; the classifier's roles are not shadowed by the detector's
    assert sha256_file(bundle.network_path(net, "onnx")) == sha256_file(models_dir() / "short_range.onnx")
    assert bundle.roles("classifier")["onnx"] == "model.onnx" and bundle.path("onnx").name == "model.onnx"
    ov, levels, *device = net.parity
    assert ov["runtime"] == "openvino (f32)" and ov["reference"] == "onnxruntime" and ov["passed"] and ov["gate"]
    assert ov["photos"] == ["astronaut", "camera", "grace_hopper"] and ov["faces"] == ov["reference_faces"] == [1, 1, 1]
    assert ov["views"] > 3 and 0 < ov["max_abs_raw"] < ov["raw_atol"] and ov["max_abs_box_px"] < 0.5
    assert ov["limits"] == asdict(FP32_TOLERANCES) and ov["options"] == {"precision": "fp32"}
    # the default detector's path on OpenVINO (each pyramid level whole, compiled per shape), against
    # ONNX Runtime on the same level inputs
    assert levels["runtime"] == "openvino (f32), whole levels (blazeface_short_tiled)" and levels["passed"]
    assert levels["faces"] == levels["reference_faces"] == [1, 1, 1] and levels["views"] >= 3 * 3
    assert 0 < levels["max_abs_raw"] < levels["raw_atol"] and levels["max_abs_box_px"] < 0.5
    # the detector runs OpenVINO at the device's precision: checked again as it runs, unless that is f32 here
    default_precision = ov_core_default_precision()
    if default_precision == "f32":
        assert device == []
    else:
        row, row_levels = device
        assert row_levels["runtime"] == f"openvino ({default_precision}), whole levels (blazeface_short_tiled)"
        assert row_levels["passed"] and row_levels["limits"] == asdict(DEVICE_TOLERANCES)
        assert row["runtime"] == f"openvino ({default_precision})" and row["passed"]
        assert row["options"] == {"precision": "fp32", **RUNNER_OPTIONS["openvino"]}
        assert row["limits"] == asdict(DEVICE_TOLERANCES) and row["faces"] == row["reference_faces"] == [1, 1, 1]
        assert row["max_abs_box_px"] <= DEVICE_TOLERANCES.box_px and row["max_abs_score"] <= DEVICE_TOLERANCES.score
    assert bundle.manifest["networks"]["detector"]["tensorrt_onnx_check"]["findings"] == []


def ov_core_default_precision() -> str:
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()


def test_detector_parity_fails_beyond_its_limits(astronaut_path):
    """Boxes off by a frame pixel pass the device limits and fail the fp32 ones."""
    from feredge.export.detector_network import DEVICE_TOLERANCES, FP32_TOLERANCES, detector_parity

    class Shifted:  # every regressed centre moved by ¼ input pixel: 1 frame px in the 512² photo's 128² letterbox
        def __init__(self, runner):
            self.runner = runner

        def infer(self, batch):
            out = self.runner.infer(batch).copy()
            out[..., 0:2] += 0.25
            return out

    path = models_dir() / "short_range.onnx"
    reference = BlazeFaceDetector(variant=SHORT_RANGE, runner=runner_class("onnxruntime")(path, threads=1))
    other = BlazeFaceDetector(variant=SHORT_RANGE, runner=runner_class("onnxruntime")(path, threads=1))
    other.runner = Shifted(other.runner)
    images = {"astronaut": read_image(astronaut_path).image}
    strict = detector_parity(reference, other, images, "shifted", FP32_TOLERANCES)
    loose = detector_parity(reference, other, images, "shifted", DEVICE_TOLERANCES)
    assert not strict.passed and "boxes/keypoints differ" in strict.reason and strict.max_abs_box_px > 0.5
    assert loose.passed, loose.reason


@pytest.mark.parametrize("role", ["onnx", "openvino_bin"])
def test_a_tampered_detector_file_is_refused(bundle_copy, role):
    name = Bundle.load(bundle_copy).network("detector").files[role]
    with open(bundle_copy / name, "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(BundleError, match=f"{name} does not match its sha256"):
        Bundle.load(bundle_copy)


def test_a_detector_file_missing_from_the_files_list_is_refused(bundle_copy):
    name = Bundle.load(bundle_copy).network("detector").files["onnx"]
    _edit_manifest(bundle_copy, lambda m: m["files"].pop(name))
    with pytest.raises(BundleError, match=r"detector's onnx file .* is not listed"):
        Bundle.load(bundle_copy)


def test_a_schema_2_manifest_without_networks_is_refused(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m.pop("networks"))
    with pytest.raises(BundleError, match="lacks its networks section"):
        Bundle.load(bundle_copy)


def test_a_detector_disagreeing_with_its_declared_output_is_refused_at_activation(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m["networks"]["detector"]["output"].update(shape=[None, 2304, 17]))
    runner = runner_class("onnxruntime").from_bundle(Bundle.load(bundle_copy), network="detector")
    with pytest.raises(BundleError, match=r"declares output \(batch, 2304, 17\) but the model outputs \(1, 896, 17\)"):
        runner.activate()


@pytest.mark.parametrize("runtime", SHIPPED_DETECTOR_RUNTIMES)
def test_the_detector_network_runs_from_the_bundle_like_the_packaged_one(default_bundle, astronaut_path, runtime):
    bundle = Bundle.load(default_bundle)
    runner = runner_class(runtime).from_bundle(bundle, network="detector")
    expected_file = {"onnxruntime": "onnx", "openvino": "openvino_xml"}[runtime]
    assert runner.model_path == bundle.network_path("detector", expected_file)
    assert runner.contract is not None and runner.contract.output_shape == (896, 17)
    image = read_image(astronaut_path).image
    ours = BlazeFaceDetector(variant=SHORT_RANGE, runner=runner).detect_arrays([image])[0]
    packaged = BlazeFaceDetector(variant=SHORT_RANGE).detect_arrays([image])[0]
    assert len(ours) == len(packaged) == 1
    np.testing.assert_allclose(ours.boxes, packaged.boxes, atol=0.5)
    np.testing.assert_allclose(ours.keypoints, packaged.keypoints, atol=0.5)
    np.testing.assert_allclose(ours.scores, packaged.scores, atol=1e-3)


def test_a_runtime_the_detector_was_not_verified_in_is_refused(default_bundle):
    with pytest.raises(FeredgeError, match="verified for onnxruntime, openvino, not torch"):
        runner_class("torch").from_bundle(Bundle.load(default_bundle), network="detector")


@pytest.mark.parametrize("runtime", SHIPPED_DETECTOR_RUNTIMES)
def test_the_pipeline_runs_the_bundles_detector_on_the_classifiers_runtime(default_bundle, astronaut_path, runtime):
    bundle = Bundle.load(default_bundle)
    with Pipeline.from_bundle(bundle, runtime=runtime, detector="blazeface") as pipeline:
        runner = pipeline.detector.runner
        assert runner.name == runtime and runner.model_path.parent == default_bundle.resolve()
        assert pipeline.spec.detector.name == "blazeface"
        (face,) = pipeline.run(read_image(astronaut_path).image).faces
        assert face.label == "happy" and face.probability > 0.5
        assert face.box.landmarks is not None  # BlazeFace's keypoints, not Haar's bare box
    assert bundle.spec.detector.name == "blazeface_short_tiled"  # the bundle's default is unchanged by the override


def test_a_variant_on_the_same_network_uses_it_another_model_falls_back(default_bundle):
    bundle = Bundle.load(default_bundle)
    with Pipeline.from_bundle(bundle, runtime="onnxruntime", detector="blazeface_short_tiled") as tiled:
        assert tiled.detector.runner.model_path.parent == default_bundle.resolve()
        assert tiled.detector.variant == BLAZEFACE_SPECS["blazeface_short_tiled"]  # the registered views, thresholds
    with Pipeline.from_bundle(bundle, runtime="onnxruntime", detector="blazeface_full") as full:
        assert full.detector.runner.model_path == models_dir() / "full_range.onnx"  # not in this bundle
    with Pipeline.from_bundle(bundle, runtime="onnxruntime") as default:  # the spec's default: the tiled short range
        assert default.detector.runner.model_path.parent == default_bundle.resolve()
        assert default.detector.variant.name == "blazeface_short_tiled"
    with Pipeline.from_bundle(bundle, runtime="onnxruntime", detector="haar") as haar:
        assert type(haar.detector).__name__ == "HaarDetector"
