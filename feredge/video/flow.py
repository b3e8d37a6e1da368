"""Carrying face boxes between detections: a constant-velocity prior refined by sparse optical flow.

Why this tracker: it must cost a small fraction of a detection and stay on the face for the
``k_max`` frames between detections. Per face, corners inside the box (``goodFeaturesToTrack`` on
the inner 80 %, so background at the box edge contributes little) are followed with pyramidal
Lucas–Kanade (``calcOpticalFlowPyrLK``), all faces in one call. The box's own velocity (from the
last frames) seeds the search (``OPTFLOW_USE_INITIAL_FLOW``), which keeps fast, steady motion
inside the search window. A forward–backward check (track back to the previous frame, keep points
that return within ``fb_error`` px) drops points on occluders, the background and the frame edge.
The box then moves by the median point displacement and scales by the median change of point
distances to their centroid — both robust to a few bad points. A face whose points fall below
``min_points``, or whose box leaves the frame, is *lost*: the schedule detects on the next frame.

Cost: the flow runs on a gray frame scaled so that the smallest held face is about ``face_px``
wide (never enlarged, never wider than ``max_width``). LK's cost is mostly its image pyramids, so
it follows the frame's area; a 76-px face tracked at 48 px keeps sub-pixel accuracy in frame pixels
(~1.6 px per flow pixel, the median of ≥ ``min_points`` points) at 40 % of the full-size cost. The
scale is picked from a few fixed steps at each detection (:meth:`FlowTracker.seed`) and held until the
next one, so the two frames of every LK call share it. An 11-px window over 2 pyramid levels
follows a face moving 8–10 flow pixels a frame from a standing start (measured: 16 px a frame of
a 120-px face tracked at 60 px, ``tests/video/test_flow.py``; the 15-px window of before reached
20), and steady motion beyond that through the velocity guess; a faster jump leaves the box
behind, and the next detection's residual (``DetectionSchedule.residual``) brings k back to 1.
Why not that 15-px window: a point's cost follows the window's area; on the 3-face video of
``benchmarks/pipeline_vs_fer.md`` a step took 0.79× the time (1.06 vs 1.41 ms, medians of 10
alternating runs over 149 frames in one process, AMD EPYC AVX2), with the same recall, false
positives, detector runs and mean IoU on both videos of ``benchmarks/video_detection.md``. One
level fewer was cheaper still and followed only 12 px. Tracking each face in its own small crop
instead of the whole frame was tried and was slower (1.86 vs 1.46 ms): six small OpenCV calls a
frame cost more than two whole-frame ones.

While every held face is slow, every other frame is carried by the velocity alone
(:meth:`FlowTracker.coast`) and the next flow step spans both frames; a detection frame always
gets the flow (:class:`~feredge.video.schedule.ScheduledTracker` checks), since its boxes are matched
against the flowed ones.

Memory is constant: the previous gray frame and ≤ ``max_points`` points per face.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from feredge.preprocess.boxes import Box

#: flow scales (flow pixels per frame pixel) a seed picks from: few, so the scale rarely changes
SCALE_STEPS = (1.0, 0.75, 0.5, 0.375, 0.25, 0.125)


def _median(values: np.ndarray) -> np.ndarray:
    """The median along axis 0 by one sort: ``np.median``'s general path costs ~20 µs a call, several
    calls per face per frame, for the ≤ ``max_points`` values here."""
    ordered = np.sort(values, axis=0)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2.0


@dataclass
class _State:
    cx: float
    cy: float
    w: float
    h: float
    points: np.ndarray  # (n, 2) float32, positions in the previous frame
    seeded: int  # points at the last seeding
    vx: float = 0.0  # px per processed frame
    vy: float = 0.0
    landmarks: np.ndarray | None = None  # (5, 2) float64, moved with the box
    score: float = 1.0  # the detection's score, carried
    motion: float = float("inf")  # last per-frame displacement / box size measured by the flow (inf: none yet)


@dataclass(frozen=True)
class FlowStep:
    """One face carried one frame: its new box, how far it moved (× box size), and whether it is still held.

    ``ok`` False: the flow lost it (too few points, or it left the frame); ``visible`` says whether
    the coasted box is still mostly inside the frame, worth showing until the next detection.
    """

    box: Box
    motion: float
    ok: bool
    visible: bool = True


@dataclass
class FlowTracker:
    min_points: int = 5
    max_points: int = 24
    fb_error: float = 1.0  # flow px: forward–backward disagreement above which a point is dropped
    window: int = 11
    levels: int = 2
    max_width: int = 640  # flow on frames downscaled to this width: LK cost stays flat on HD video
    face_px: float = 48.0  # the smallest held face is tracked at about this width (0: frame scale only)
    max_coast: int = 1  # frames in a row carried by velocity alone while every face is slow (0: flow every frame)
    coast_motion: float = 0.05  # "slow": per-frame displacement under this × the box, at the last flow step
    _coasted: int = field(default=0, repr=False)  # frames carried by velocity since ``_prev``
    _scale: float = field(default=1.0, repr=False)  # flow pixels per frame pixel
    _prev: np.ndarray | None = field(default=None, repr=False)
    _states: dict[int, _State] = field(default_factory=dict, repr=False)

    def gray(self, image: np.ndarray) -> np.ndarray:
        """The frame as the flow sees it: gray, at the scale held since the last seed (boxes in and out
        stay in frame pixels)."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self._scale < 1.0:
            size = (max(1, round(gray.shape[1] * self._scale)), max(1, round(gray.shape[0] * self._scale)))
            # bilinear down to ½ (LK's pyramid smooths anyway; OpenCV's area path at ¾ costs 3× as much)
            gray = cv2.resize(gray, size, interpolation=cv2.INTER_LINEAR if self._scale >= 0.5 else cv2.INTER_AREA)
        return gray

    def _pick_scale(self, width: int, boxes: list[Box]) -> float:
        """The coarsest of :data:`SCALE_STEPS` at which every box is still ≥ ``face_px`` wide."""
        cap = min(1.0, self.max_width / width) if self.max_width else 1.0
        smallest = min((min(b.w, b.h) for b in boxes if min(b.w, b.h) > 0), default=0)
        if not self.face_px or not smallest:
            return cap
        wanted = self.face_px / smallest
        return min(cap, min((s for s in SCALE_STEPS if s >= wanted), default=1.0))

    def _corners(self, gray: np.ndarray, cx: float, cy: float, w: float, h: float) -> np.ndarray:
        height, width = gray.shape
        x0, x1 = int(max(0, cx - 0.4 * w)), int(min(width, cx + 0.4 * w))
        y0, y1 = int(max(0, cy - 0.4 * h)), int(min(height, cy + 0.4 * h))
        if x1 - x0 < 4 or y1 - y0 < 4:
            return np.empty((0, 2), np.float32)
        found = cv2.goodFeaturesToTrack(gray[y0:y1, x0:x1], self.max_points, 0.01,
                                        max(2.0, min(w, h) / 12.0), blockSize=5)
        if found is None:
            return np.empty((0, 2), np.float32)
        return (found.reshape(-1, 2) + np.float32([x0, y0])).astype(np.float32)

    def seed(self, image: np.ndarray, boxes: dict[int, Box], gray: np.ndarray | None = None) -> None:
        """A detection frame: restart each face from its detected box (velocity from the box's move).

        ``gray``: this frame from :meth:`gray` (reused when the flow scale stays, else made again).
        """
        scale = self._pick_scale(image.shape[1], list(boxes.values()))
        if scale != self._scale or gray is None:
            previous_scale, self._scale = self._scale, scale
            for state in self._states.values():  # velocities are in flow pixels
                state.vx, state.vy = state.vx * scale / previous_scale, state.vy * scale / previous_scale
            gray = self.gray(image)
        states: dict[int, _State] = {}
        for track_id, box in boxes.items():
            box = box.scaled(self._scale) if self._scale != 1.0 else box
            cx, cy = box.x + box.w / 2.0, box.y + box.h / 2.0
            points = self._corners(gray, cx, cy, box.w, box.h)
            old = self._states.get(track_id)
            vx, vy = (old.vx, old.vy) if old is not None else (0.0, 0.0)
            landmarks = None if box.landmarks is None else np.asarray(box.landmarks, np.float64)
            states[track_id] = _State(cx, cy, float(box.w), float(box.h), points, len(points), vx, vy, landmarks,
                                       box.score, old.motion if old is not None else float("inf"))
        self._states = states
        self._prev, self._coasted = gray, 0

    def reset(self) -> None:
        self._prev, self._states, self._coasted = None, {}, 0

    def can_coast(self) -> bool:
        """Whether the next frame may be carried by velocity alone (:meth:`coast`): fewer than
        ``max_coast`` frames coasted since the last flow step, and every held face measured slow then."""
        return (self._coasted < self.max_coast and self._prev is not None and bool(self._states)
                and all(state.motion < self.coast_motion for state in self._states.values()))

    def coast(self, image: np.ndarray) -> dict[int, FlowStep]:
        """Carry every held face one frame by its velocity, without optical flow (``image`` gives the
        frame size only). The next :meth:`step` then spans the coasted frames from the last flowed one.

        Why: LK is most of a tracked frame's cost, and a slow face (under ``coast_motion`` × its box a
        frame: under 2.4 flow px at 48) is where the velocity guess is already within a pixel or so.
        Coasting every other frame while all faces are slow took the flow's time per frame to 0.43×
        (synthetic_3face) and 0.56× (pasted_real) on ``benchmarks/video_detection.md``'s videos with
        the same recall, false positives, detector runs and mean IoU, and ``feredge infer`` on the
        3-face video of ``benchmarks/pipeline_vs_fer.md`` ran at 1.09–1.25× the frames/s (5
        alternating runs, AMD EPYC AVX2). The price: a face that jumps on a coasted frame is seen one
        frame later. A fast face, a seed or a lost face brings the flow back on every frame."""
        self._coasted += 1
        height, width = (round(d * self._scale) for d in image.shape[:2])
        out: dict[int, FlowStep] = {}
        for track_id, state in self._states.items():
            dx, dy = state.vx * self._coasted, state.vy * self._coasted
            box = self._box(state, width, height, dx, dy)
            inside = box.w * box.h >= 0.5 * state.w * state.h
            out[track_id] = FlowStep(self._in_frame(box), state.motion, True, inside)
        return out

    @property
    def ids(self) -> list[int]:
        return list(self._states)

    def step(self, gray: np.ndarray) -> dict[int, FlowStep]:
        """Carry every held face to ``gray`` (the next processed frame); lost faces are dropped after this."""
        prev, self._prev = self._prev, gray
        span, self._coasted = self._coasted + 1, 0  # frames this step covers (coasted ones included)
        if prev is None or not self._states:
            return {}
        ids = list(self._states)
        counts = [len(self._states[i].points) for i in ids]
        out: dict[int, FlowStep] = {}
        if sum(counts):
            p0 = np.concatenate([self._states[i].points for i in ids]).reshape(-1, 1, 2)
            guess = np.concatenate([self._states[i].points + np.float32([self._states[i].vx * span,
                                                                         self._states[i].vy * span])
                                    for i in ids]).reshape(-1, 1, 2)
            criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)
            size = (self.window, self.window)
            p1, st1, _ = cv2.calcOpticalFlowPyrLK(prev, gray, p0, guess.copy(), winSize=size, maxLevel=self.levels,
                                                  criteria=criteria, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
            back, st2, _ = cv2.calcOpticalFlowPyrLK(gray, prev, p1, p0.copy(), winSize=size, maxLevel=self.levels,
                                                    criteria=criteria, flags=cv2.OPTFLOW_USE_INITIAL_FLOW)
            fb = (back - p0).reshape(-1, 2)
            good = (st1.ravel() == 1) & (st2.ravel() == 1) & ((fb * fb).sum(axis=1) < self.fb_error ** 2)
            p0, p1 = p0.reshape(-1, 2), p1.reshape(-1, 2)
        else:
            good = np.zeros(0, bool)
            p0 = p1 = np.empty((0, 2), np.float32)
        start = 0
        height, width = gray.shape
        for track_id, count in zip(ids, counts, strict=True):
            state = self._states[track_id]
            keep = good[start:start + count]
            a, b = p0[start:start + count][keep], p1[start:start + count][keep]
            start += count
            ok = len(a) >= self.min_points
            if ok:
                dx, dy = (float(v) for v in _median(b - a))
                c0, c1 = a - a.mean(axis=0), b - b.mean(axis=0)
                spread0, spread1 = np.hypot(c0[:, 0], c0[:, 1]), np.hypot(c1[:, 0], c1[:, 1])
                valid = spread0 > 1.0
                scale = 1.0
                if np.count_nonzero(valid) >= 3:
                    scale = min(1.25, max(0.8, float(_median(spread1[valid] / spread0[valid]))))
            else:  # too few points: coast on the velocity; the schedule detects on the next frame
                dx, dy, scale = state.vx * span, state.vy * span, 1.0
            ocx, ocy = state.cx, state.cy
            state.cx, state.cy = ocx + dx, ocy + dy
            state.w, state.h = state.w * scale, state.h * scale
            state.vx, state.vy = dx / span, dy / span
            if state.landmarks is not None:
                state.landmarks = (state.landmarks - [ocx, ocy]) * scale + [state.cx, state.cy]
            box = self._box(state, width, height)
            inside = box.w * box.h >= 0.5 * state.w * state.h
            ok = ok and inside
            state.points = b.astype(np.float32)
            if ok and len(state.points) < max(self.min_points * 2, state.seeded // 2):  # thinning: re-seed
                fresh = self._corners(gray, state.cx, state.cy, state.w, state.h)
                if len(fresh) > len(state.points):
                    state.points, state.seeded = fresh, len(fresh)
            motion = float(np.hypot(dx, dy) / span / max(1.0, min(state.w, state.h)))
            state.motion = motion
            out[track_id] = FlowStep(self._in_frame(box), motion, ok, inside)
        self._states = {i: s for i, s in self._states.items() if out[i].ok}
        return out

    def _in_frame(self, box: Box) -> Box:
        """A box in flow pixels in frame pixels."""
        return box.scaled(1.0 / self._scale) if self._scale != 1.0 else box

    @staticmethod
    def _box(state: _State, width: int, height: int, dx: float = 0.0, dy: float = 0.0) -> Box:
        """``state``'s box moved by ``dx, dy`` (flow px), clipped to the frame."""
        cx, cy = state.cx + dx, state.cy + dy
        x0, y0 = max(0.0, cx - state.w / 2.0), max(0.0, cy - state.h / 2.0)
        x1, y1 = min(float(width), cx + state.w / 2.0), min(float(height), cy + state.h / 2.0)
        landmarks = None
        if state.landmarks is not None:
            landmarks = tuple((float(x) + dx, float(y) + dy) for x, y in state.landmarks)
        return Box(round(x0), round(y0), max(0, round(x1 - x0)), max(0, round(y1 - y0)), state.score, landmarks)
