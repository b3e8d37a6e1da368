"""What a video run writes: an annotated video, JSON lines per face per frame, a per-track CSV.

Every writer is built to leave a valid file whenever the run stops, Ctrl-C included: JSON lines
are written whole and flushed per frame (a reader never sees half a record), the CSV is written
to a temporary file and renamed into place on close (complete or absent, never truncated), and
the video writer is released on close so the container gets its index. The video command
closes all of them in a ``finally``.
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from feredge.errors import FeredgeError
from feredge.preprocess.detect import Box
from feredge.video.smoothing import TrackHistory

_PALETTE = [(66, 135, 245), (60, 180, 75), (230, 25, 75), (255, 165, 0), (145, 30, 180), (70, 240, 240),
            (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40)]


@dataclass
class TrackedFace:
    """One face in one frame: its track, the smoothed expression, whether the model ran for it now."""

    track_id: int
    box: Box
    label: str
    probability: float
    probabilities: dict[str, float]
    inferred: bool

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "track_id": self.track_id,
            "box": self.box.as_list(),
            "label": self.label,
            "probability": round(self.probability, 6),
            "probabilities": {k: round(v, 6) for k, v in self.probabilities.items()},
            "inferred": self.inferred,
        }
        if self.box.landmarks is not None:
            out["landmarks"] = [[round(x, 1), round(y, 1)] for x, y in self.box.landmarks]
        return out


def track_colour(track_id: int) -> tuple[int, int, int]:
    r, g, b = _PALETTE[track_id % len(_PALETTE)]
    return b, g, r


def draw_faces(image: np.ndarray, faces: list[TrackedFace]) -> np.ndarray:
    """Box, ``#id label p%`` and a probability bar under the box, in the track's colour."""
    out = image.copy()
    for face in faces:
        b, colour = face.box, track_colour(face.track_id)
        cv2.rectangle(out, (b.x, b.y), (b.x + b.w, b.y + b.h), colour, 2)
        text = f"#{face.track_id} {face.label} {face.probability:.0%}"
        y = max(b.y - 6, 14)
        cv2.putText(out, text, (b.x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (b.x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, colour, 1, cv2.LINE_AA)
        bar_y = min(b.y + b.h + 4, out.shape[0] - 7)
        cv2.rectangle(out, (b.x, bar_y), (b.x + b.w, bar_y + 6), (40, 40, 40), -1)
        cv2.rectangle(out, (b.x, bar_y), (b.x + round(b.w * face.probability), bar_y + 6), colour, -1)
        if b.landmarks is not None:
            for x, y in b.landmarks:
                cv2.circle(out, (round(x), round(y)), 2, colour, -1)
    return out


class AnnotatedVideo:
    """Annotated frames into ``path`` (``.avi`` → MJPG, else mp4v); opened on the first frame."""

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self.writer: Any = None
        self.frames = 0

    def write(self, image: np.ndarray, faces: list[TrackedFace]) -> None:
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
            h, w = image.shape[:2]
            self.writer = cv2.VideoWriter(str(self.path), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
            if not self.writer.isOpened():
                raise FeredgeError(f"{self.path}: OpenCV cannot write {fourcc} video")
        self.writer.write(draw_faces(image, faces))
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None


class JsonLines:
    """One JSON object per line; each frame's lines are flushed together."""

    def __init__(self, stream: IO[str], *, owned: bool = False) -> None:
        self.stream, self.owned = stream, owned
        self.lines = 0

    @classmethod
    def open(cls, path: Path) -> JsonLines:
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(open(path, "w", encoding="utf-8"), owned=True)

    def write_frame(self, records: list[dict[str, Any]]) -> None:
        if records:
            self.stream.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
            self.stream.flush()
            self.lines += len(records)

    def close(self) -> None:
        if self.owned:
            self.stream.close()


TRACK_COLUMNS = ("track_id", "first_frame", "last_frame", "frames_seen", "duration_s", "dominant",
                 "dominant_share", "inferences", "timeline")


@dataclass
class TrackRow:
    track_id: int
    history: TrackHistory

    def as_row(self, fps: float) -> dict[str, Any]:
        label, share = self.history.dominant
        return {
            "track_id": self.track_id,
            "first_frame": self.history.first_frame,
            "last_frame": self.history.last_frame,
            "frames_seen": self.history.frames_seen,
            "duration_s": round((self.history.last_frame - self.history.first_frame + 1) / fps, 3),
            "dominant": label,
            "dominant_share": round(share, 4),
            "inferences": self.history.inferences,
            "timeline": self.history.timeline_text(),
        }


def write_track_csv(path: Path, rows: list[TrackRow], fps: float) -> None:
    """All tracks, sorted by id; written to ``path.tmp`` then renamed, so the CSV is never partial."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=TRACK_COLUMNS)
        writer.writeheader()
        for row in sorted(rows, key=lambda r: r.track_id):
            writer.writerow(row.as_row(fps))
    os.replace(tmp, path)
