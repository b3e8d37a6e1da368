"""Generated videos (known truth, corrupt frames) and the three outputs."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np

from feredge.data.synth.video import SyntheticVideo, VideoSpec
from feredge.preprocess.detect import Box
from feredge.video.outputs import (
    AnnotatedVideo,
    JsonLines,
    TrackedFace,
    TrackRow,
    draw_detections,
    draw_faces,
    track_colour,
    write_track_csv,
)
from feredge.video.smoothing import TrackHistory
from tests.video.conftest import SMALL


def test_synthetic_video_is_deterministic_with_known_changing_expressions():
    video = SyntheticVideo(SMALL)
    np.testing.assert_array_equal(video.frame(7), SyntheticVideo(SMALL).frame(7))
    truth = video.truth(0)
    assert [t.face for t in truth] == [0, 1, 2]
    for t in truth:  # inside the frame, in its own column (faces never overlap)
        x, y, w, h = t.box
        assert x >= 0 and y >= 0 and x + w <= SMALL.width and y + h <= SMALL.height
        assert SMALL.width / 3 * t.face <= x < SMALL.width / 3 * (t.face + 1)
    assert video.label(0, 0) != video.label(0, SMALL.segment)  # expressions change over time
    assert video.truth(0)[0].box != video.truth(10)[0].box  # faces move


def test_corrupt_frame_is_unreadable_and_the_rest_decodes(corrupt_video):
    capture = cv2.VideoCapture(str(corrupt_video))
    results = [capture.read()[0] for _ in range(SMALL.frames)]
    capture.release()
    assert results.count(False) == 1 and results.index(False) == 20


def _face(track_id: int, p: float) -> TrackedFace:
    return TrackedFace(track_id, Box(20, 20, 40, 40, landmarks=((30, 30), (50, 30), (40, 40), (32, 50), (48, 50))),
                       "happy", p, {"happy": p, "sad": 1 - p}, inferred=True)


def test_draw_faces_marks_box_and_bar():
    image = np.zeros((100, 100, 3), np.uint8)
    out = draw_faces(image, [_face(1, 0.5)])
    assert out.shape == image.shape and out.any() and not image.any()
    assert tuple(out[40, 20]) == track_colour(1)  # the box's left edge, in the track's colour
    assert tuple(out[66, 25]) == track_colour(1) and tuple(out[66, 50]) == (40, 40, 40)  # bar: half filled


def test_draw_detections_draws_the_same_box_in_green_at_the_image_scale():
    """A still image's faces (``feredge infer`` on photos): same box and label drawing, no track colour or bar."""
    image = np.zeros((100, 100, 3), np.uint8)
    face = _face(1, 0.5)
    out = draw_detections(image, [face], scale=0.5)  # the box was found on a picture twice this size
    assert not image.any()
    assert tuple(out[22, 10]) == (0, 200, 0) and tuple(out[30, 20]) == (0, 200, 0)  # edges of (10, 10, 20, 20)
    label = out[:16]  # above the box's inner area: the text, green on its black halo
    assert label[..., 1].max() > 240 and not label[..., [0, 2]].any()
    assert not out[17:28, 13:28].any()  # inside the box, below the label: untouched
    assert not out[33:].any()  # no probability bar under it
    np.testing.assert_array_equal(draw_detections(image, [face]), draw_detections(image, [face], scale=1.0))


def test_outputs_are_valid_files(tmp_path):
    video = AnnotatedVideo(tmp_path / "a.mp4", fps=10)
    lines = JsonLines.open(tmp_path / "faces.jsonl")
    for frame in range(5):
        video.write(np.zeros((80, 120, 3), np.uint8), [_face(1, 0.9)])
        lines.write_frame([{"frame": frame, **_face(1, 0.9).to_dict()}])
    video.close()
    lines.close()
    capture = cv2.VideoCapture(str(tmp_path / "a.mp4"))
    assert capture.isOpened() and int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == 5
    records = [json.loads(line) for line in (tmp_path / "faces.jsonl").read_text().splitlines()]
    assert [r["track_id"] for r in records] == [1] * 5 and len(records[0]["landmarks"]) == 5
    history = TrackHistory(0, 0)
    for frame in range(25):
        history.observe(frame, "happy" if frame < 20 else "sad")
    write_track_csv(tmp_path / "t.csv", [TrackRow(1, history)], fps=25)
    rows = list(csv.DictReader((tmp_path / "t.csv").open()))
    assert rows == [{"track_id": "1", "first_frame": "0", "last_frame": "24", "frames_seen": "25",
                     "duration_s": "1.0", "dominant": "happy", "dominant_share": "0.8", "inferences": "0",
                     "timeline": "0:happy;20:sad"}]
    assert not (tmp_path / "t.csv.tmp").exists()


def test_video_spec_that_does_not_fit_is_refused():
    import pytest

    from feredge.errors import FeredgeError

    with pytest.raises(FeredgeError):
        SyntheticVideo(VideoSpec(faces=9, width=320))
