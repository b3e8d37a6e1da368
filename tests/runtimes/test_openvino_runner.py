"""OpenVINORunner's buffers: a kept input tensor per batch shape, an output bound to our own memory,
large batches wrapped instead of copied — each path checked against ONNX Runtime on real inputs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from feredge.bundle import Bundle
from feredge.calibration.reference import reference_faces
from feredge.runtimes.onnxruntime_runner import OnnxRuntimeRunner
from feredge.runtimes.openvino_runner import SHARE_INPUT_BYTES, OpenVINORunner

SHIPPED = Path(__file__).resolve().parents[2] / "feredge" / "assets" / "default_bundle"


def test_classifier_batches_of_changing_size_match_onnxruntime_and_come_back_as_copies() -> None:
    bundle = Bundle.load(SHIPPED)
    faces = reference_faces(bundle.spec, include_lfw=False).batch
    with OpenVINORunner.from_bundle(bundle) as ov, OnnxRuntimeRunner.from_bundle(bundle) as ort:
        previous = None
        for n in (1, 1, 5, 5, 1, 3, 3):  # repeats: the fast path of a kept shape
            batch = faces[:n]
            assert batch.nbytes < SHARE_INPUT_BYTES
            got = ov.infer(batch)
            assert ov._output is not None and ov._output.shape == got.shape  # bound: static f32 past the batch
            np.testing.assert_allclose(got, ort.infer(batch), atol=1e-4)
            if previous is not None and previous.shape == got.shape:
                kept = previous.copy()
                again = ov.infer(faces[-n:])  # the same shape again: the fast path, new data
                assert ov._bound_shape == batch.shape
                np.testing.assert_allclose(again, ort.infer(faces[-n:]), atol=1e-4)
                np.testing.assert_array_equal(previous, kept)  # it wrote the bound buffer, not what we returned
            previous = got


def test_a_photos_detector_views_are_wrapped_not_copied_and_match_onnxruntime(astronaut_path: Path) -> None:
    from feredge.preprocess.blazeface import BlazeFaceDetector, network_input
    from feredge.preprocess.spec import DetectorSpec

    bundle = Bundle.load(SHIPPED)
    detector = BlazeFaceDetector(DetectorSpec(name="blazeface_short_tiled"), runtime="onnxruntime")
    crops, _ = detector.views(cv2.imread(str(astronaut_path)))
    views = network_input(crops)
    assert views.nbytes >= SHARE_INPUT_BYTES  # the 512² photo's 21 views: the wrapped path
    with OpenVINORunner.from_bundle(bundle, network="detector") as ov, \
            OnnxRuntimeRunner.from_bundle(bundle, network="detector") as ort:
        for batch in (views, views[:1], views, views[:3]):  # wrapped, kept, wrapped again, kept anew
            got = ov.infer(batch)
            assert (ov._input is None) == (batch.nbytes >= SHARE_INPUT_BYTES)
            np.testing.assert_allclose(got, ort.infer(batch), rtol=1e-4, atol=1e-3)  # raw logits reach ±300
        before = views.copy()
        ov.infer(views)
        np.testing.assert_array_equal(views, before)  # wrapping reads the caller's memory, never writes it


def test_the_call_is_the_compiled_bindings_own_and_gives_the_wrappers_numbers() -> None:
    from openvino import _pyopenvino

    from feredge.runtimes.openvino_runner import _bare_infer

    bundle = Bundle.load(SHIPPED)
    faces = reference_faces(bundle.spec, include_lfw=False).batch[:2]
    with OpenVINORunner.from_bundle(bundle) as runner:
        assert getattr(runner._run, "func", None) is _pyopenvino.InferRequest.infer  # not the Python wrapper
        got = runner.infer(faces)
        wrapped = runner.request.infer({0: faces})[0]  # the wrapper's own path: input dispatched, output copied
        np.testing.assert_array_equal(got, wrapped)

    class Stand:  # not an OpenVINO request: the wrapper's method is used as it is
        def infer(self) -> str:
            return "wrapper"

    assert _bare_infer(Stand())() == "wrapper"


def test_at_shape_runs_the_network_at_another_shape_compiled_once_per_shape(astronaut_path: Path) -> None:
    """The bundle's detector at other static shapes: at 128² its numbers are the runner's own; pixels
    (uint8 BGR, converted in the graph) give what the float input made in numpy gives; one compiled
    copy per (shape, input), at most SHAPED_CACHE kept; a wrong input is an error."""
    import pytest

    from feredge.errors import FeredgeError
    from feredge.preprocess.blazeface import PIXELS, network_input
    from feredge.runtimes import openvino_runner

    bundle = Bundle.load(SHIPPED)
    image = cv2.imread(str(astronaut_path))
    level = cv2.resize(image, (416, 208))  # a wide level: height and width multiples of 16
    with OpenVINORunner.from_bundle(bundle, network="detector") as ov:
        assert ov.reshapes
        crops = [cv2.resize(image, (128, 128)), level[:128, :128], level[-128:, -128:]]
        same = ov.at_shape((3, 3, 128, 128))
        np.testing.assert_allclose(same.infer(network_input(crops)), ov.infer(network_input(crops)), atol=1e-3)
        assert ov.at_shape((3, 3, 128, 128)) is same and ov.at_shape((3, 3, 128, 128), image=PIXELS) is not same
        wide = ov.at_shape((1, 3, 208, 416))
        from_pixels = ov.at_shape((1, 3, 208, 416), image=PIXELS)
        raw = wide.infer(network_input([level]))
        assert raw.shape == (1, (26 * 52) * 2 + (13 * 26) * 6, 17)  # the wide input's own anchors
        np.testing.assert_allclose(from_pixels.infer(level[None]), raw, rtol=1e-4, atol=2e-3)
        with pytest.raises(FeredgeError, match=r"is not the compiled uint8\[1, 208, 416, 3\]"):
            from_pixels.infer(network_input([level]))
        with pytest.raises(FeredgeError, match="is not the compiled float32"):
            wide.infer(network_input([level[:192]]))
        for k in range(openvino_runner.SHAPED_CACHE + 2):
            ov.at_shape((1, 3, 128, 128 + 16 * k))
        assert len(ov._shaped) == openvino_runner.SHAPED_CACHE
    with pytest.raises(FeredgeError, match="before activate"):
        ov.at_shape((1, 3, 128, 128))


def test_onnxruntime_reshapes_only_a_file_with_free_height_and_width(astronaut_path: Path, tmp_path: Path) -> None:
    import pytest

    from feredge.errors import FeredgeError
    from feredge.export.detector_network import free_spatial_dims
    from feredge.preprocess.blazeface import PIXELS, models_dir, network_input

    pytest.importorskip("onnx")
    level = cv2.resize(cv2.imread(str(astronaut_path)), (416, 208))
    with OnnxRuntimeRunner(models_dir() / "short_range.onnx") as fixed:
        assert not fixed.reshapes
        with pytest.raises(FeredgeError, match="runs only at its own input shape"):
            fixed.at_shape((1, 3, 208, 416))
    free = free_spatial_dims(models_dir() / "short_range.onnx", tmp_path / "free.onnx")
    with OnnxRuntimeRunner(free) as ort, OpenVINORunner(models_dir() / "short_range.onnx") as ov:
        assert ort.reshapes
        got = ort.at_shape((1, 3, 208, 416), image=PIXELS).infer(level[None])
        np.testing.assert_allclose(got, ort.at_shape((1, 3, 208, 416)).infer(network_input([level])), atol=1e-4)
        np.testing.assert_allclose(got, ov.at_shape((1, 3, 208, 416), image=PIXELS).infer(level[None]),
                                   rtol=1e-4, atol=2e-3)
