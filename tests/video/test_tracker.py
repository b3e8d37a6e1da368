"""IoU tracking: ids survive motion and short misses, greedy matching, when the model re-runs."""

from __future__ import annotations

import pytest

from feredge.preprocess.detect import Box
from feredge.video.tracker import IoUTracker, ReinferPolicy, Track, iou


def test_iou():
    assert iou(Box(0, 0, 10, 10), Box(0, 0, 10, 10)) == 1.0
    assert iou(Box(0, 0, 10, 10), Box(20, 20, 5, 5)) == 0.0
    assert iou(Box(0, 0, 10, 10), Box(5, 0, 10, 10)) == pytest.approx(50 / 150)


def test_moving_faces_keep_their_ids_and_new_faces_get_new_ones():
    tracker = IoUTracker()
    ids = []
    for frame in range(20):
        boxes = [Box(10 + 2 * frame, 10, 50, 50), Box(300 - 2 * frame, 40, 60, 60)]
        if frame >= 10:
            boxes.append(Box(150, 150, 40, 40))
        tracks, _ = tracker.update(boxes, frame)
        ids.append([t.id for t in tracks])
    assert all(row[:2] == [1, 2] for row in ids)
    assert all(row[2] == 3 for row in ids[10:])


def test_a_track_survives_short_misses_and_finishes_after_max_missed():
    tracker = IoUTracker(max_missed=3)
    first, _ = tracker.update([Box(0, 0, 40, 40)], 0)
    for frame in (1, 2, 3):
        _, finished = tracker.update([], frame)
        assert not finished
    again, _ = tracker.update([Box(2, 0, 40, 40)], 4)
    assert again[0].id == first[0].id
    finished = []
    for frame in range(5, 9):
        finished += tracker.update([], frame)[1]
    assert [t.id for t in finished] == [first[0].id]
    assert tracker.tracks == []


def test_greedy_matching_gives_each_detection_the_best_free_track():
    tracker = IoUTracker(iou_match=0.1)
    tracker.update([Box(0, 0, 40, 40), Box(30, 0, 40, 40)], 0)
    # both detections overlap both tracks; the best pairs win, no track is used twice
    tracks, _ = tracker.update([Box(32, 0, 40, 40), Box(1, 0, 40, 40)], 1)
    assert [t.id for t in tracks] == [2, 1]


def test_reinfer_policy():
    policy = ReinferPolicy(box_change=0.3, every=5)
    track = Track(1, Box(0, 0, 40, 40), 0, 0)
    assert policy.needs(track, 0)  # new
    track.inferred_box, track.inferred_frame = track.box, 0
    assert not policy.needs(track, 3)
    assert policy.needs(track, 5)  # every K frames
    track.box = Box(20, 0, 40, 40)  # moved: IoU 1/3 < 0.7
    assert policy.needs(track, 3)
    assert ReinferPolicy(every=1).needs(Track(1, Box(0, 0, 4, 4), 0, 0, inferred_box=Box(0, 0, 4, 4),
                                               inferred_frame=0), 0)
