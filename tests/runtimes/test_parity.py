"""The Done-when of the walking skeleton: three runtimes, one answer, on real faces.

Parametrized over the runtime registry; ``RUNTIME_CASES`` must name every registered runtime
(with a skip reason where it cannot run on a CPU machine), checked by the meta-test.
"""

from __future__ import annotations

import numpy as np
import pytest

from feredge.backends import runtime_names
from feredge.bundle import Bundle
from feredge.preprocess.detect import Box
from feredge.preprocess.spec import DetectorSpec
from feredge.preprocess.transform import preprocess_faces
from feredge.runtimes.pipeline import Pipeline
from feredge.runtimes.registry import is_available, runner_class

#: runtime → None (runs here) or the reason it is skipped on this machine
RUNTIME_CASES: dict[str, str | None] = {
    "torch": None, "onnxruntime": None, "openvino": None,
    "tensorrt": None if is_available("tensorrt") else
    "TensorRT is not installed (it needs an NVIDIA GPU and NVIDIA's wheels); tests/runtimes/tensorrt/test_runner.py "
    "runs it where it is",
}


def test_every_registered_runtime_has_a_test_entry():
    assert set(runtime_names()) == set(RUNTIME_CASES)


@pytest.fixture(scope="module")
def lfw_batch(default_bundle, lfw) -> np.ndarray:
    spec = Bundle.load(default_bundle).spec.replace(detector=DetectorSpec(name="none"), crop_margin=0.0)
    return np.concatenate([preprocess_faces(face, [Box(0, 0, 25, 25)], spec) for face in lfw])


@pytest.fixture(scope="module")
def logits(default_bundle, lfw_batch) -> dict[str, np.ndarray]:
    bundle = Bundle.load(default_bundle)
    out = {}
    for name, skip in RUNTIME_CASES.items():
        if skip is None:
            with runner_class(name).from_bundle(bundle) as runner:
                out[name] = np.concatenate([runner.infer(lfw_batch[i : i + 32]) for i in range(0, 100, 32)])
    return out


@pytest.mark.parametrize("runtime", sorted(RUNTIME_CASES))
def test_astronaut_is_happy(default_bundle, astronaut_path, runtime):
    if RUNTIME_CASES[runtime]:
        pytest.skip(RUNTIME_CASES[runtime])
    from feredge.preprocess.image_io import read_image

    with Pipeline.from_bundle(default_bundle, runtime=runtime) as pipeline:
        result = pipeline.run(read_image(astronaut_path).image)
        precision = pipeline.runner.settings.get("inference_precision", pipeline.runner.settings.get("precision"))
    assert len(result.faces) == 1
    assert result.faces[0].label == "happy"
    assert result.faces[0].probability > 0.9
    assert precision in ("f32", "fp32"), f"{runtime} ran {precision}, not f32"
    assert set(result.timings_ms) == {"detect", "preprocess", "infer", "postprocess"}


@pytest.mark.parametrize("runtime", sorted(set(RUNTIME_CASES) - {"torch"}))
def test_fp32_logits_match_torch_on_lfw_faces(logits, runtime):
    if RUNTIME_CASES[runtime]:
        pytest.skip(RUNTIME_CASES[runtime])
    reference, actual = logits["torch"], logits[runtime]
    assert reference.shape == (100, 7)
    np.testing.assert_allclose(actual, reference, atol=1e-4, rtol=0)
    assert (actual.argmax(1) == reference.argmax(1)).all()


def test_labels_are_not_all_the_same(logits):
    # a parity check on a model that always says one thing would prove little
    assert len(set(logits["torch"].argmax(1).tolist())) >= 3


def test_input_is_checked_against_the_model(default_bundle):
    from feredge.errors import FeredgeError

    with runner_class("onnxruntime").from_bundle(Bundle.load(default_bundle)) as runner:
        with pytest.raises(FeredgeError, match="axis 1 must be 1"):
            runner.infer(np.zeros((1, 3, 64, 64), np.float32))
        with pytest.raises(FeredgeError, match="expected float32"):
            runner.infer(np.zeros((1, 1, 64, 64), np.float64))
        with pytest.raises(FeredgeError, match="exceeds the model's max 64"):
            runner.infer(np.zeros((65, 1, 64, 64), np.float32))


def test_a_file_that_is_not_onnx_gives_one_line(tmp_path):
    from feredge.errors import FeredgeError

    (tmp_path / "model.onnx").write_bytes(b"definitely not protobuf")
    runner = runner_class("onnxruntime")(tmp_path / "model.onnx")
    with pytest.raises(FeredgeError, match=r"model\.onnx: onnxruntime cannot load the model") as info:
        runner.activate()
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("runtime", sorted(name for name, skip in RUNTIME_CASES.items() if skip is None))
def test_a_result_is_not_overwritten_by_the_next_call(default_bundle, lfw_batch, runtime):
    """Runners reuse request buffers between calls (OpenVINO's output tensor): results must be copies."""
    with runner_class(runtime).from_bundle(Bundle.load(default_bundle)) as runner:
        first = runner.infer(lfw_batch[:4])
        kept = first.copy()
        second = runner.infer(lfw_batch[4:8])
    np.testing.assert_array_equal(first, kept)
    assert not np.array_equal(first, second) and first.dtype == np.float32
