"""Generated videos (known truth, corrupt frames) and the three outputs."""

from __future__ import annotations

import csv
import json

import cv2
import numpy as np
import pytest

from feredge.data.synth.video import SyntheticVideo, VideoSpec
from feredge.preprocess.detect import Box
from feredge.video.outputs import (
    AnnotatedVideo,
    JsonLines,
    TrackedFace,
    TrackRow,
    contrast_ink,
    draw_detections,
    draw_faces,
    label_rect,
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
    x0, y0, x1, y1 = label_rect(out, Box(10, 10, 20, 20), "happy 50%")
    assert (x0, y0) == (10, 10)  # no room above the box: the label sits inside its top edge
    drawn = np.zeros((100, 100), bool)
    drawn[9:32, 9:32] = True  # the box's outline (2 px, centred on its edges)
    drawn[y0:y1, x0:x1] = True
    assert not out[~drawn].any()  # nothing but the box and its label; no probability bar under it
    np.testing.assert_array_equal(draw_detections(image, [face]), draw_detections(image, [face], scale=1.0))


@pytest.mark.parametrize("box", [Box(60, 80, 70, 70), Box(0, 0, 50, 50), Box(170, 100, 30, 30)],
                         ids=["above", "top edge", "right edge"])
def test_labels_sit_on_a_filled_background_that_covers_any_picture(box):
    """Noise under the label is replaced by the box colour and black ink only: readable on any image."""
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    face = TrackedFace(1, box, "surprise", 0.87, {"surprise": 0.87}, inferred=True)
    out = draw_detections(noise, [face])
    x0, y0, x1, y1 = label_rect(out, box, "surprise 87%")
    assert 0 <= x0 < x1 <= 200 and 0 <= y0 < y1 <= 200  # in the picture
    patch = out[y0:y1, x0:x1].astype(int)
    assert not patch[..., [0, 2]].any()  # every pixel a blend of the green background and black text
    background = (patch == (0, 200, 0)).all(axis=-1)
    assert background.mean() > 0.5 and background[0].all() and background[-1].all()
    assert (patch[..., 1] < 60).sum() > 20  # and there is text on it
    assert out[y0:y1, x0:x1].tobytes() != noise[y0:y1, x0:x1].tobytes()


def test_label_ink_contrasts_with_its_background():
    assert contrast_ink((0, 200, 0)) == (0, 0, 0) and contrast_ink((128, 0, 0)) == (255, 255, 255)
    assert contrast_ink((0, 255, 255)) == (0, 0, 0) and contrast_ink((180, 30, 145)) == (255, 255, 255)
    image = np.zeros((120, 120, 3), np.uint8)
    face = TrackedFace(4, Box(30, 40, 50, 50), "sad", 0.6, {"sad": 0.6}, inferred=True)  # track 4: dark purple
    out = draw_faces(image, [face])
    x0, y0, x1, y1 = label_rect(out, face.box, "#4 sad 60%")
    patch = out[y0:y1, x0:x1].reshape(-1, 3)
    colour = track_colour(4)
    assert (patch == colour).all(axis=-1).mean() > 0.5
    assert (patch.astype(int).sum(axis=-1) > sum(colour) + 150).any()  # white ink on the dark label


def test_face_records_carry_emotions_as_an_alias_of_probabilities():
    record = _face(1, 0.75).to_dict()
    assert record["emotions"] == record["probabilities"] == {"happy": 0.75, "sad": 0.25}


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
