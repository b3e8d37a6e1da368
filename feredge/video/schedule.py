"""When the video loop runs the face detector: every k-th frame, k adapting to how stable the tracks are.

Why: the detector is most of a frame's cost (91–217 ms of a 95–225 ms frame in issue 16), while
faces in a video move little between frames. Between detections the boxes are carried forward by
:class:`~feredge.video.flow.FlowTracker` (constant velocity refined by sparse optical flow), which
costs a few milliseconds. The schedule decides when that is no longer trustworthy:

* after a detection that confirms every tracked box (no new face, no face lost, each tracked box
  within ``residual`` of its detection: ``1 - IoU`` at most that), k grows by ``growth`` (×2 by
  default), up to ``k_max``;
* it falls back to ``k_min`` — a detection on the next frame — when a detection finds a new face,
  misses a tracked one or disagrees with a tracked box by more than ``residual``, and between
  detections when a face moves fast (per-frame displacement above ``motion`` × its box size) or
  the flow loses a face (too few points survive the forward–backward check);
* a face the detector misses while the flow still holds it (a detector false negative: a blink,
  a turned head) is kept at its carried box for up to ``hold`` detections — which the miss makes
  consecutive frames — instead of vanishing for the frames until it is found again;
* ``k_max`` also bounds the wait for a face that walks in: a new face is found at most
  ``k_max - 1`` processed frames after it appears. The default 16 is 0.6 s at 25 fps, 0.5 s at 30:
  faces that matter for an expression stay longer than that, and the tracked faces are re-checked by
  the flow on every frame in between, or every other frame while all of them are slow
  (:meth:`~feredge.video.flow.FlowTracker.coast`) (``benchmarks/video_detection.md``: recall against ground truth,
  every frame vs this schedule). At 8 the scheduled detections were a third of a tracked 3-face
  frame's cost on 2 cores.

``k_max = 1`` detects every frame (and the loop then tracks nothing: the behaviour before the
schedule, for comparison). :class:`DetectionScheduler` holds the state and counts detector runs by
reason, which the video statistics report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from feredge.errors import FeredgeError
from feredge.preprocess.boxes import Box
from feredge.video.flow import FlowStep, FlowTracker
from feredge.video.tracker import IoUTracker, Track, iou


@dataclass(frozen=True)
class DetectionSchedule:
    k_min: int = 1  # frames between detections right after a change (1: detect the next frame)
    k_max: int = 16  # frames between detections while every track is stable; 1 = detect every frame
    growth: float = 2.0  # k ← k·growth after each stable detection
    motion: float = 0.2  # per-frame displacement / box size above which a face "moves": detect next frame
    residual: float = 0.35  # 1 - IoU(tracked box, detected box) above which tracking drifted
    min_points: int = 5  # flow points a face needs; fewer and it is lost until the next detection
    hold: int = 3  # detections in a row that may miss a face the flow still holds before it is dropped

    def __post_init__(self) -> None:
        if self.k_min < 1 or self.k_max < self.k_min:
            raise FeredgeError(f"detection schedule needs 1 <= k_min <= k_max, got k_min={self.k_min}, "
                               f"k_max={self.k_max}")
        if self.growth < 1.0:
            raise FeredgeError(f"detection schedule growth must be at least 1, got {self.growth}")
        if self.motion <= 0 or not 0.0 < self.residual < 1.0:
            raise FeredgeError(f"detection schedule needs motion > 0 and residual in (0, 1), got motion="
                               f"{self.motion}, residual={self.residual}")
        if self.hold < 0:
            raise FeredgeError(f"detection schedule hold must be 0 or more, got {self.hold}")
        if self.min_points < 1:
            raise FeredgeError(f"detection schedule min_points must be at least 1, got {self.min_points}")

    @property
    def adaptive(self) -> bool:
        """False for the every-frame schedule: no tracking between detections at all."""
        return self.k_max > 1

    @classmethod
    def every_frame(cls) -> DetectionSchedule:
        return cls(k_min=1, k_max=1)


@dataclass
class DetectionScheduler:
    """The schedule's state: the current k, frames since the last detection, detector runs by reason."""

    schedule: DetectionSchedule = field(default_factory=DetectionSchedule)
    k: int = 0
    since: int = 0  # processed frames since the last detection
    reason: str = "first"  # why the next detection is forced; "" when it is only scheduled
    runs: Counter[str] = field(default_factory=Counter)
    ks: list[int] = field(default_factory=list)  # k after each detection (for tests and the report)

    def __post_init__(self) -> None:
        self.k = self.k or self.schedule.k_min

    def pending(self) -> bool:
        """Whether this frame will get a detection (:meth:`due` without counting it)."""
        return not self.schedule.adaptive or bool(self.reason) or self.since + 1 >= self.k

    def due(self) -> bool:
        """Whether this frame gets a detection; counts the run under its reason when it does."""
        if not self.pending():
            return False
        self.runs["every_frame" if not self.schedule.adaptive else self.reason or "scheduled"] += 1
        return True

    def detected(self, *, new: int, lost: int, residual: float) -> None:
        """After a detection: grow k when it confirmed every track, else fall back to ``k_min``."""
        s = self.schedule
        if new:
            self.reason = "new_face"
        elif lost:
            self.reason = "lost_face"
        elif residual > s.residual:
            self.reason = "drift"
        else:
            self.reason = ""
        if self.reason:
            self.k = s.k_min
            if s.k_min > 1:  # a change only shortens the wait to k_min, it does not force the next frame
                self.reason = ""
        else:
            self.k = min(s.k_max, max(self.k + 1, round(self.k * s.growth)))
        self.since = 0
        self.ks.append(self.k)

    def tracked(self, *, motion: float, lost: int) -> None:
        """After a frame carried by the tracker: a fast or lost face forces a detection on the next frame."""
        self.since += 1
        if lost:
            self.reason, self.k = "track_lost", self.schedule.k_min
        elif motion > self.schedule.motion:
            self.reason, self.k = "motion", self.schedule.k_min


@dataclass
class FrameFaces:
    """One frame's faces after :meth:`ScheduledTracker.step`: tracks and boxes in the same order."""

    tracks: list[Track]
    boxes: list[Box]
    finished: list[Track]  # tracks that ended at this frame
    detected: bool  # the detector ran on this frame (else the boxes were carried by the flow)


@dataclass
class ScheduledTracker:
    """Detector runs on the schedule, the flow carries boxes between, the IoU tracker keeps ids.

    Owned by :class:`~feredge.video.processor.VideoProcessor`, and usable without a classifier
    (``scripts/video_detection.py`` measures recall with it). ``detect`` maps a BGR frame to boxes.
    At a detection, tracks are matched against their *carried* boxes, so the IoU tracker compares
    boxes of the same frame however long the gap was.
    """

    detect: Callable[[np.ndarray], list[Box]]
    schedule: DetectionSchedule = field(default_factory=DetectionSchedule)
    tracker: IoUTracker = field(default_factory=IoUTracker)
    scheduler: DetectionScheduler = field(init=False)
    flow: FlowTracker = field(init=False)
    detections: int = 0

    def __post_init__(self) -> None:
        self.scheduler = DetectionScheduler(self.schedule)
        self.flow = FlowTracker(min_points=self.schedule.min_points)

    def step(self, image: np.ndarray, frame: int, timed: Callable[[str], None] = lambda stage: None) -> FrameFaces:
        """This frame's faces; ``timed(stage)`` is called after the flow and after the detector."""
        gray, steps = None, {}
        if self.schedule.adaptive:  # every frame carried: by the flow, or by velocity while all faces are slow
            if not self.scheduler.pending() and self.flow.can_coast():
                steps = self.flow.coast(image)
            else:  # a detection frame always gets the flow: its boxes are matched against the flowed ones
                gray = self.flow.gray(image)
                steps = self.flow.step(gray)
            timed("flow")
        if not self.scheduler.due():
            tracks, boxes = self._carry(steps, frame)
            return FrameFaces(tracks, boxes, [], False)
        boxes = self.detect(image)
        self.detections += 1
        timed("detect")
        tracks, finished = self._match(boxes, steps, frame)
        boxes, shown = list(boxes), {track.id for track in tracks}
        for track in self.tracker.tracks:  # missed by the detector, still held by the flow: keep it a little
            step = steps.get(track.id)
            if 0 < track.missed <= self.schedule.hold and step is not None and step.ok and track.id not in shown:
                tracks.append(track)
                boxes.append(step.box)
        if gray is not None:
            self.flow.seed(image, {track.id: box for track, box in zip(tracks, boxes, strict=True)}, gray)
        return FrameFaces(tracks, boxes, finished, True)

    def _match(self, boxes: list[Box], steps: dict[int, FlowStep], frame: int) -> tuple[list[Track], list[Track]]:
        live = {track.id for track in self.tracker.tracks if track.missed == 0} | set(steps)  # shown last frame
        carried: dict[int, Box] = {}
        for track in self.tracker.tracks:
            step = steps.get(track.id)
            if step is not None and step.visible:
                track.box = carried[track.id] = step.box
        tracks, finished = self.tracker.update(boxes, frame)
        matched = {track.id for track in tracks}
        new = sum(track.first_frame == frame and track.hits == 1 for track in tracks)
        residual = max((1.0 - iou(carried[track.id], box) for track, box in zip(tracks, boxes, strict=True)
                        if track.id in carried), default=0.0)
        self.scheduler.detected(new=new, lost=len(live - matched), residual=residual)
        return tracks, finished

    def _carry(self, steps: dict[int, FlowStep], frame: int) -> tuple[list[Track], list[Box]]:
        """No detection: the tracks the flow carried, at their carried boxes (a lost one coasts one frame)."""
        by_id = {track.id: track for track in self.tracker.tracks}
        tracks, boxes, lost, motion = [], [], 0, 0.0
        for track_id, step in steps.items():
            track = by_id.get(track_id)
            if track is None:
                continue
            lost += not step.ok
            if not step.visible or step.box.w < 2 or step.box.h < 2:
                continue
            track.box, track.last_frame = step.box, frame
            tracks.append(track)
            boxes.append(step.box)
            motion = max(motion, step.motion)
        self.scheduler.tracked(motion=motion, lost=lost)
        return tracks, boxes
