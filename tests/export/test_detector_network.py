"""The detector network at the bundle's precision: an fp16 bundle's BlazeFace files are fp16, verified against fp32."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from feredge.bundle import Bundle
from feredge.export.detector_network import FP16_TOLERANCES, NETWORK_PRECISION, PRECISION_TOLERANCES
from feredge.preprocess.image_io import read_image
from feredge.runtimes.pipeline import Pipeline


@pytest.fixture(scope="module")
def fp16_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from feredge.export.exporter import ExportOptions, export

    return export(ExportOptions(target="openvino", precision="fp16",
                                output=tmp_path_factory.mktemp("det16") / "bundle")).bundle


def test_every_bundle_precision_has_a_detector_precision_with_limits():
    assert set(NETWORK_PRECISION) == {"fp32", "fp16", "int8"}
    assert set(NETWORK_PRECISION.values()) <= set(PRECISION_TOLERANCES)


def test_an_fp16_bundles_detector_files_are_fp16_with_float32_io(fp16_bundle: Path):
    import onnx

    bundle = Bundle.load(fp16_bundle)  # every sha256 checked
    net = bundle.network("detector")
    assert bundle.manifest["networks"]["detector"]["precision"] == "fp16"
    assert bundle.manifest["networks"]["detector"]["fp16_converter"]  # which converter wrote the fp16 ONNX
    assert {bundle.manifest["files"][name]["precision"] for name in net.files.values()} == {"fp16"}
    model = onnx.load(str(bundle.network_path(net, "onnx")))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in model.graph.initializer)
    assert "FP16" in bundle.network_path(net, "openvino_xml").read_text(encoding="utf-8")  # fp16 weights in the IR


def test_both_fp16_files_are_verified_against_the_fp32_reference(fp16_bundle: Path):
    rows = Bundle.load(fp16_bundle).network("detector").parity
    by_runtime = {row["runtime"]: row for row in rows}
    assert "onnxruntime, fp16 file" in by_runtime  # the fp16 ONNX is checked too (an fp32 copy would not be)
    assert any(name.startswith("openvino (") and name.endswith(", fp16 file") for name in by_runtime)
    for row in rows:
        assert row["reference"] == "onnxruntime" and row["passed"] and row["gate"]
        assert row["options"]["precision"] == "fp16"
        assert row["faces"] == row["reference_faces"] == [1, 1, 1]
        assert 0 < row["max_abs_raw"] <= row["raw_atol"]  # not bit-identical: fp16 really ran
        assert row["max_abs_box_px"] <= FP16_TOLERANCES.box_px and row["max_abs_score"] <= FP16_TOLERANCES.score
    assert by_runtime["onnxruntime, fp16 file"]["limits"] == asdict(FP16_TOLERANCES)


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
def test_the_fp16_detector_finds_the_astronaut_where_the_fp32_one_does(fp16_bundle: Path, default_bundle: Path,
                                                                       astronaut_path: Path, runtime: str):
    image = read_image(astronaut_path).image
    faces = {}
    for name, root in (("fp16", fp16_bundle), ("fp32", default_bundle)):
        with Pipeline.from_bundle(root, runtime=runtime) as pipeline:
            assert Path(pipeline.detector.runner.model_path).parent == Path(root)  # the bundle's own network
            (faces[name],) = pipeline.run(image).faces
    np.testing.assert_allclose(faces["fp16"].box.as_list(), faces["fp32"].box.as_list(), atol=FP16_TOLERANCES.box_px)
    assert faces["fp16"].label == faces["fp32"].label == "happy"
