"""A lightweight IoU tracker: one id per face across frames, and when a face needs the model again.

Matching is greedy, not Hungarian: every (track, detection) pair whose IoU reaches ``iou_match``
is sorted by IoU, best first, and taken when neither side is taken yet. For faces — few per
frame, rarely overlapping, moving little between frames — greedy and optimal assignment agree
almost always, and greedy is a few lines of numpy with no SciPy. Unmatched detections open new
tracks; a track unmatched for more than ``max_missed`` processed frames is finished.

:class:`ReinferPolicy` decides, per track and frame, whether the expression model must run:
on a new track, when the box moved or resized (IoU with the box the model last saw below
``1 - box_change``), and at least every ``every`` frames. Between runs the track keeps its
smoothed probabilities — the saving the video command reports as inferences run vs faces seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from feredge.preprocess.detect import Box


def iou(a: Box, b: Box) -> float:
    x0, y0 = max(a.x, b.x), max(a.y, b.y)
    x1, y1 = min(a.x + a.w, b.x + b.w), min(a.y + a.h, b.y + b.h)
    inter = max(0, x1 - x0) * max(0, y1 - y0)
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


def iou_matrix(tracks: list[Box], detections: list[Box]) -> np.ndarray:
    out = np.zeros((len(tracks), len(detections)), np.float64)
    for i, t in enumerate(tracks):
        for j, d in enumerate(detections):
            out[i, j] = iou(t, d)
    return out


@dataclass
class Track:
    id: int
    box: Box
    first_frame: int
    last_frame: int
    hits: int = 1
    missed: int = 0
    inferred_box: Box | None = None  # the box the model last classified
    inferred_frame: int | None = None


@dataclass(frozen=True)
class ReinferPolicy:
    """Run the model for a track when it is new, moved by more than ``box_change``, or every ``every`` frames.

    ``every=1`` runs it on every face of every processed frame (no skipping).
    """

    box_change: float = 0.3
    every: int = 10

    def needs(self, track: Track, frame: int) -> bool:
        if self.every <= 1 or track.inferred_box is None or track.inferred_frame is None:
            return True
        if frame - track.inferred_frame >= self.every:
            return True
        return iou(track.box, track.inferred_box) < 1.0 - self.box_change


@dataclass
class IoUTracker:
    iou_match: float = 0.3
    max_missed: int = 10
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 1

    def update(self, detections: list[Box], frame: int) -> tuple[list[Track], list[Track]]:
        """Match this frame's boxes; returns (the track of each detection, in order; tracks just finished)."""
        scores = iou_matrix([t.box for t in self.tracks], detections)
        assigned: list[Track | None] = [None] * len(detections)
        used: set[int] = set()
        if scores.size:
            order = np.argsort(-scores, axis=None, kind="stable")
            for flat in order:
                i, j = divmod(int(flat), len(detections))
                if scores[i, j] < self.iou_match:
                    break
                if i in used or assigned[j] is not None:
                    continue
                used.add(i)
                track = self.tracks[i]
                track.box, track.last_frame, track.hits, track.missed = detections[j], frame, track.hits + 1, 0
                assigned[j] = track
        finished = []
        for i, track in enumerate(self.tracks):
            if i not in used:
                track.missed += 1
                if track.missed > self.max_missed:
                    finished.append(track)
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        result: list[Track] = []
        for j, box in enumerate(detections):
            track = assigned[j]
            if track is None:
                track = Track(self.next_id, box, frame, frame)
                self.next_id += 1
                self.tracks.append(track)
            result.append(track)
        return result, finished

    def flush(self) -> list[Track]:
        """End of stream: every live track is finished."""
        out, self.tracks = self.tracks, []
        return out
