"""Adaptive detection: k grows on a static scene, falls to 1 on a jump or a new face; flow follows faces."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from feredge.data.synth.pasted import PastedFace, PastedFaceVideo, PastedSpec
from feredge.data.synth.video import SyntheticVideo, VideoSpec
from feredge.errors import FeredgeError
from feredge.preprocess.boxes import Box
from feredge.video.schedule import DetectionSchedule, DetectionScheduler, ScheduledTracker
from feredge.video.tracker import iou


class TruthDetector:
    """Returns the video's truth boxes for the frame it is told about, and records which frames it ran on."""

    def __init__(self, video: SyntheticVideo | PastedFaceVideo) -> None:
        self.video, self.frame, self.ran_on = video, 0, []

    def detect(self, image: np.ndarray) -> list[Box]:
        self.ran_on.append(self.frame)
        return [Box(*t.box) for t in self.video.truth(self.frame)]


def _drive(video, frames: int, schedule: DetectionSchedule | None = None):
    detector = TruthDetector(video)
    tracker = ScheduledTracker(detector.detect, schedule or DetectionSchedule())
    outputs = []
    for index in range(frames):
        detector.frame = index
        outputs.append(tracker.step(video.frame(index), index))
    return tracker, detector, outputs


def test_schedule_validates_its_numbers():
    with pytest.raises(FeredgeError, match="k_min <= k_max"):
        DetectionSchedule(k_min=4, k_max=2)
    with pytest.raises(FeredgeError, match="growth"):
        DetectionSchedule(growth=0.5)
    assert not DetectionSchedule.every_frame().adaptive and DetectionSchedule().adaptive


def test_k_doubles_to_k_max_on_stable_detections_and_resets_on_a_change():
    scheduler = DetectionScheduler(DetectionSchedule(k_max=8))
    ran = []
    for frame in range(40):
        if scheduler.due():
            ran.append(frame)
            scheduler.detected(new=0, lost=0, residual=0.0)
        else:
            scheduler.tracked(motion=0.0, lost=0)
    assert ran[:5] == [0, 2, 6, 14, 22]  # gaps 2, 4, 8, 8: k doubles after each stable detection, capped at 8
    assert scheduler.ks[:4] == [2, 4, 8, 8]
    scheduler.detected(new=1, lost=0, residual=0.0)
    assert scheduler.k == 1 and scheduler.due() and scheduler.runs["new_face"] == 1
    scheduler.detected(new=0, lost=0, residual=0.5)  # tracked box 50 % off its detection: drift
    assert scheduler.k == 1 and scheduler.reason == "drift"
    scheduler.detected(new=0, lost=0, residual=0.0)
    scheduler.tracked(motion=0.5, lost=0)  # half a box per frame: detect on the next frame
    assert scheduler.reason == "motion" and scheduler.due()


def test_static_video_grows_k_and_runs_the_detector_rarely():
    video = SyntheticVideo(VideoSpec(frames=80, width=480, height=200, faces=3, face_size=96, fps=1e6, seed=3))
    tracker, detector, outputs = _drive(video, 80)  # fps 1e6: the faces do not move
    assert tracker.scheduler.ks[-1] == DetectionSchedule().k_max == 16
    assert len(detector.ran_on) <= 10, detector.ran_on  # 0, 1 (confirming the new faces), then gaps 2,4,8,16…
    assert all(len(out.boxes) == 3 for out in outputs)


def test_a_jump_and_a_new_face_drop_k_to_one():
    faces = (PastedFace(90, ((0, 0.2, 0.4), (59, 0.2, 0.4), (60, 0.75, 0.45), (120, 0.75, 0.45))),
             PastedFace(80, ((0, 0.5, 0.7), (120, 0.5, 0.7)), start=90))
    video = PastedFaceVideo(PastedSpec(frames=120, faces=faces, noise=0.0))
    tracker, detector, outputs = _drive(video, 120, DetectionSchedule(k_max=8))
    ran = detector.ran_on
    # the jump at frame 60 is caught on that frame, the next, or — when 60 was carried by velocity
    # alone (FlowTracker.coast: every face was slow) — the one after, which the next flow step flags
    assert {60, 61, 62} & set(ran)
    before_jump = [f for f in ran if f < 60]
    assert before_jump[-1] - before_jump[-2] == 8  # k had grown to 8 before the jump
    assert 90 in ran or 91 in ran or any(90 <= f <= 97 for f in ran)  # a new face within k_max frames
    new_at = min(f for f in ran if f >= 90)
    assert ran[ran.index(new_at) + 1] == new_at + 1  # the new face reset k to 1
    reasons = tracker.scheduler.runs
    assert reasons["new_face"] >= 1 and (reasons["motion"] + reasons["track_lost"] + reasons["lost_face"]
                                         + reasons["drift"]) >= 1
    for index in range(120):  # every face on every frame after the jump has been caught
        truth = video.truth(index)
        if index in (60, 61) or new_at > index >= 90:
            continue
        found = outputs[index].boxes
        assert all(max((iou(Box(*t.box), b) for b in found), default=0.0) >= 0.5 for t in truth), index


@pytest.mark.parametrize("video", [
    SyntheticVideo(VideoSpec(frames=120, width=640, height=360, faces=3, face_size=120, seed=0)),
    PastedFaceVideo(PastedSpec(frames=150)),
], ids=["synthetic", "pasted_real"])
def test_tracked_boxes_follow_moving_faces_between_detections(video):
    frames = 120 if isinstance(video, SyntheticVideo) else 150
    _, detector, outputs = _drive(video, frames, DetectionSchedule(k_max=15))
    assert len(detector.ran_on) < frames / 4
    worst = 1.0
    for index, out in enumerate(outputs):
        if out.detected:
            continue
        for t in video.truth(index):
            best = max((iou(Box(*t.box), b) for b in out.boxes), default=0.0)
            worst = min(worst, best)
    assert worst >= 0.5, worst
    carried = sum(not out.detected for out in outputs)
    assert carried > frames / 2  # most frames were carried by the flow, not detected


def test_a_face_the_detector_misses_is_held_while_the_flow_holds_it():
    video = SyntheticVideo(VideoSpec(frames=40, width=480, height=200, faces=2, face_size=96, seed=1))
    truth = TruthDetector(video)

    misses: list[int] = []

    def flaky(image):  # the detector misses face 1 on its first two runs from frame 18 on
        boxes = truth.detect(image)
        if truth.frame >= 18 and len(misses) < 2:
            misses.append(truth.frame)
            return boxes[:1]
        return boxes

    tracker = ScheduledTracker(flaky, DetectionSchedule(k_max=4))
    for index in range(40):
        truth.frame = index
        out = tracker.step(video.frame(index), index)
        assert len(out.boxes) == 2, index
    first = misses[0]
    assert misses == [first, first + 1] and first + 2 in truth.ran_on  # each miss: detect on the next frame
    assert tracker.scheduler.runs["lost_face"] == 2


def test_detection_frames_always_get_the_flow_and_slow_frames_between_may_coast():
    video = SyntheticVideo(VideoSpec(frames=80, width=480, height=200, faces=3, face_size=96, fps=1e6, seed=3))
    detector = TruthDetector(video)
    tracker = ScheduledTracker(detector.detect, DetectionSchedule())
    coasted: list[int] = []
    coast = tracker.flow.coast

    def spy(image: np.ndarray):
        coasted.append(detector.frame)
        return coast(image)

    tracker.flow.coast = spy  # type: ignore[method-assign]
    for index in range(80):
        detector.frame = index
        out = tracker.step(video.frame(index), index)
        assert len(out.boxes) == 3, index
    assert coasted and not set(coasted) & set(detector.ran_on)  # still faces: coasting, never on a detection
    assert all(b - a > 1 for a, b in itertools.pairwise(coasted))  # at most one frame in a row
