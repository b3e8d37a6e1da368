"""The three-line Python API: paths, arrays (BGR, gray, BGRA), PIL images, and boxes you already have."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

import feredge
from feredge.errors import FeredgeError


@pytest.fixture(scope="module")
def model(default_bundle: Path):
    with feredge.load(default_bundle, runtime="onnxruntime") as recognizer:
        yield recognizer


def test_three_lines_from_a_photo_to_its_face(model, astronaut_path: Path) -> None:
    faces = model.predict(astronaut_path)
    assert len(faces) == 1 and faces[0].label == "happy" and faces[0].probability > 0.9
    assert faces[0].emotions == faces[0].probabilities and abs(sum(faces[0].emotions.values()) - 1) < 1e-4
    assert model.predict(str(astronaut_path))[0].box == faces[0].box


def test_arrays_gray_alpha_and_pil_give_the_same_face(model, astronaut_path: Path) -> None:
    from PIL import Image

    bgr = cv2.imread(str(astronaut_path))
    reference = model.predict(bgr)[0]
    assert reference.label == "happy"
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    pil = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    for image in (bgra, pil):  # the same colour pixels: the same face
        face = model.predict(image)[0]
        assert face.label == reference.label and face.box == reference.box
        assert face.probability == pytest.approx(reference.probability, abs=1e-3)
    for image in (gray, pil.convert("L")):  # the detector sees grey, not colour: a box within a few pixels
        face = model.predict(image)[0]
        assert face.label == reference.label
        assert max(abs(a - b) for a, b in zip(face.box.as_list(), reference.box.as_list(), strict=True)) <= 4
        assert face.probability == pytest.approx(reference.probability, abs=0.02)


def test_given_boxes_are_classified_without_detecting(model, astronaut_path: Path) -> None:
    detected = model.predict(astronaut_path)[0]
    x, y, w, h = detected.box.as_list()
    given = model.predict(astronaut_path, boxes=[(x, y, w, h), (0, 0, 64, 64)])
    assert [f.box.as_list() for f in given] == [[x, y, w, h], [0, 0, 64, 64]]
    assert given[0].label == detected.label and given[0].probability == pytest.approx(detected.probability, abs=1e-5)
    assert model.predict(astronaut_path, boxes=[]) == []
    assert [len(f) for f in model.predict_batch([astronaut_path, cv2.imread(str(astronaut_path))])] == [1, 1]


@pytest.mark.parametrize("bad, match", [(42, "a path, a URL, a numpy array or a PIL image"),
                                        ("no/such/photo.jpg", "no such file")])
def test_bad_images_are_one_line_errors(model, bad: object, match: str) -> None:
    with pytest.raises(FeredgeError, match=match):
        model.predict(bad)


@pytest.mark.parametrize("box", [(1, 2, 3), (0, 0, 0, 10), (0, 0, 10, -1)])
def test_bad_boxes_are_one_line_errors(model, astronaut_path: Path, box: tuple) -> None:
    with pytest.raises(FeredgeError, match="box"):
        model.predict(astronaut_path, boxes=[box])


def test_import_feredge_loads_no_runtime() -> None:
    import subprocess
    import sys

    code = "import sys, feredge; assert 'feredge.runtimes' not in sys.modules; assert callable(feredge.load)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


# --- URLs, streams and per-frame tables --------------------------------------------------------------


def test_predict_takes_an_http_url(model, http_server, astronaut_path: Path) -> None:
    faces = model.predict(http_server.url("/astronaut.jpg"))
    assert len(faces) == 1 and faces[0].label == "happy"
    assert faces[0].box == model.predict(astronaut_path)[0].box
    with pytest.raises(FeredgeError, match=r"/missing\.jpg: HTTP 404"):
        model.predict(http_server.url("/missing.jpg"))
    with pytest.raises(FeredgeError, match="not a readable image"):
        model.predict(http_server.url("/notimage.jpg"))


@pytest.fixture(scope="module")
def video_model(tmp_path_factory: pytest.TempPathFactory):
    """The video tests' tiny linear bundle with MTCNN (finds the generated faces), on ONNX Runtime."""
    from tests.video.conftest import make_bundle

    bundle = make_bundle(tmp_path_factory.mktemp("tiny_api") / "bundle", detector="mtcnn", max_batch=2)
    with feredge.load(bundle, runtime="onnxruntime") as recognizer:
        yield recognizer


STREAM_FRAMES = 12


@pytest.fixture(scope="module")
def short_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from dataclasses import replace

    from feredge.data.synth.video import write_video
    from tests.video.conftest import SMALL

    return write_video(tmp_path_factory.mktemp("api_video") / "three.avi", replace(SMALL, frames=STREAM_FRAMES))


def test_stream_yields_the_video_loops_frames_with_track_ids(video_model, short_video: Path) -> None:
    from feredge.video.processor import VideoOptions, VideoProcessor
    from feredge.video.stream import CaptureSource

    with video_model.stream(short_video) as frames:
        assert frames.fps == 25.0 and not frames.live
        results = list(frames)
    assert [r.index for r in results] == list(range(STREAM_FRAMES))
    assert [r.timestamp for r in results] == pytest.approx([i / 25.0 for i in range(STREAM_FRAMES)])
    assert all(r.image is not None and r.image.shape == (200, 480, 3) for r in results)
    assert all(sorted(f.track_id for f in r.faces) == [1, 2, 3] for r in results)  # three faces, one id each
    assert frames.stats.frames == STREAM_FRAMES and frames.stats.tracks == 3
    # the same loop as `feredge infer` on videos: the push form gives the same faces
    pushed: list[tuple[int, list]] = []
    VideoProcessor(video_model.pipeline, VideoOptions()).run(CaptureSource(short_video),
                                                             lambda f, faces: pushed.append((f.index, faces)))
    assert [(r.index, r.faces) for r in results] == pushed
    assert results[0].faces[0].emotions == results[0].faces[0].probabilities


def test_stream_settings_and_early_exit(video_model, short_video: Path) -> None:
    import threading

    every = list(video_model.stream(short_video, every=3, keep_images=False))
    assert [r.index for r in every] == [0, 3, 6, 9] and all(r.image is None for r in every)
    with video_model.stream(short_video) as frames:
        first = next(frames)
    assert first.index == 0
    assert not any(t.name == "feredge-frame-reader" and t.is_alive() for t in threading.enumerate())
    with pytest.raises(FeredgeError, match=r"unknown stream setting.*no_such"):
        video_model.stream(short_video, no_such=1)
    with pytest.raises(FeredgeError, match=r"rtsp://127\.0\.0\.1:1/x: cannot open the stream"):
        video_model.stream("rtsp://127.0.0.1:1/x")  # fails at the call, not at the first frame


def test_analyze_writes_the_per_frame_table_as_csv(video_model, short_video: Path, tmp_path: Path,
                                                   monkeypatch) -> None:
    import csv
    import sys
    import types

    from feredge.errors import MissingBackendError

    table = video_model.analyze(short_video, max_frames=5)
    assert len(table) == 5 and table.source == str(short_video)
    labels = list(video_model.labels)
    columns = ["frame", "time", "track", "x", "y", "w", "h", *labels, "label"]
    path = table.to_csv(tmp_path / "faces.csv")
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        rows = list(reader)
    assert reader.fieldnames == columns
    assert len(rows) == sum(len(frame.faces) for frame in table) == 15
    for row, frame_face in zip(rows, [(fr, f) for fr in table for f in fr.faces], strict=True):
        frame, face = frame_face
        assert int(row["frame"]) == frame.index and int(row["track"]) == face.track_id
        assert [int(row[k]) for k in "xywh"] == face.box.as_list() and row["label"] == face.label
        assert sum(float(row[label]) for label in labels) == pytest.approx(1.0, abs=1e-4)
        assert max(labels, key=lambda label: float(row[label])) == row["label"]
    monkeypatch.setitem(sys.modules, "pandas", None)  # pandas is not a dependency: a clear line without it
    with pytest.raises(MissingBackendError, match=r"pip install pandas.*to_csv"):
        table.to_dataframe()
    fake = types.ModuleType("pandas")
    fake.DataFrame = lambda rows, columns: ("frame", rows, columns)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pandas", fake)
    assert table.to_dataframe() == ("frame", table.rows(), columns)


def test_a_frame_without_faces_is_one_row_with_only_frame_and_time() -> None:
    from feredge.video.results import FrameResult, frame_rows

    assert frame_rows(FrameResult(7, 0.28, []), ["happy", "sad"]) == [
        {"frame": 7, "time": 0.28, "track": None, "x": None, "y": None, "w": None, "h": None, "happy": None,
         "sad": None, "label": None}]
