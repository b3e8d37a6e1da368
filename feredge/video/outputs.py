"""What a video run writes: an annotated video, JSON lines per face per frame, a per-track CSV.

Every writer is built to leave a valid file whenever the run stops, Ctrl-C and a full disk
included: JSON lines are written whole per frame — one ``os.write`` of the frame's complete
lines, and if the OS fails part-way (ENOSPC after a short write) the file is cut back to the last
complete frame before the one-line error — so a reader never sees half a record; the CSV is built
in memory and written through a temporary file renamed into place (complete or absent, never
truncated); the video is written under a temporary name in the target folder, released (so the
container gets its index) and renamed into place on close. The video command closes all of them
in a ``finally``. No path reaches OpenCV in a form that can crash it: the video writer gets an
:class:`~feredge.preprocess.image_io.OpenCVName`; images go through
:func:`~feredge.preprocess.image_io.write_image` (``cv2.imencode`` + temp-and-rename).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import cv2
import numpy as np

from feredge.errors import FeredgeError
from feredge.preprocess.detect import Box
from feredge.preprocess.image_io import OpenCVName, display_path, write_file_atomic, write_image
from feredge.video.smoothing import TrackHistory

_PALETTE = [(66, 135, 245), (60, 180, 75), (230, 25, 75), (255, 165, 0), (145, 30, 180), (70, 240, 240),
            (240, 50, 230), (210, 245, 60), (0, 128, 128), (170, 110, 40)]
_DETECTION_BOX = (0, 200, 0)  # BGR


@dataclass
class TrackedFace:
    """One face in one frame: its track, the smoothed expression, whether the model ran for it now."""

    track_id: int
    box: Box
    label: str
    probability: float
    probabilities: dict[str, float]
    inferred: bool

    @property
    def emotions(self) -> dict[str, float]:
        """The probabilities under the name the ``fer`` package uses (as on a still image's faces)."""
        return self.probabilities

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of the face in this frame; ``emotions`` repeats ``probabilities`` (fer's name)."""
        probabilities = {k: round(v, 6) for k, v in self.probabilities.items()}
        out: dict[str, Any] = {
            "track_id": self.track_id,
            "box": self.box.as_list(),
            "label": self.label,
            "probability": round(self.probability, 6),
            "probabilities": probabilities,
            "emotions": probabilities,  # the same dict under the name the fer package's users look for
            "inferred": self.inferred,
        }
        if self.box.landmarks is not None:
            out["landmarks"] = [[round(x, 1), round(y, 1)] for x, y in self.box.landmarks]
        return out


def track_colour(track_id: int) -> tuple[int, int, int]:
    r, g, b = _PALETTE[track_id % len(_PALETTE)]
    return b, g, r


_FONT = cv2.FONT_HERSHEY_SIMPLEX


def label_style(image: np.ndarray) -> tuple[float, int, int]:
    """(font scale, text thickness, box thickness) for ``image``: the label grows with the picture, so it
    stays readable on a 4K frame and still fits a 64-pixel crop."""
    short = min(image.shape[:2])
    scale = float(np.clip(short / 900.0, 0.45, 1.6))
    return scale, 1 if scale < 0.9 else 2, max(2, round(short / 360))


def contrast_ink(colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """Black or white, whichever has the higher WCAG contrast ratio on ``colour`` (BGR): black above a
    relative luminance of 0.179, where (L + 0.05) / 0.05 overtakes 1.05 / (L + 0.05)."""
    linear = [(c / 255) / 12.92 if c <= 10 else ((c / 255 + 0.055) / 1.055) ** 2.4 for c in colour]
    luminance = 0.0722 * linear[0] + 0.7152 * linear[1] + 0.2126 * linear[2]
    return (0, 0, 0) if luminance > 0.179 else (255, 255, 255)


def label_rect(image: np.ndarray, box: Box, text: str) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the filled label :func:`draw_labelled_box` draws for ``text``: above the box,
    or inside its top edge when there is no room above; moved left to stay in the picture."""
    scale, thickness, _ = label_style(image)
    (tw, th), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = max(2, round(3 * scale))
    width, height = tw + 2 * pad, th + baseline + 2 * pad
    y0 = box.y - height if box.y - height >= 0 else max(box.y, 0)
    x0 = min(max(box.x, 0), max(image.shape[1] - width, 0))
    return x0, y0, x0 + width, y0 + height


def draw_labelled_box(image: np.ndarray, box: Box, text: str, colour: tuple[int, int, int],
                      text_colour: tuple[int, int, int] | None = None) -> None:
    """In place: ``box``'s outline and ``text`` on a filled label in the box's colour, so the text reads on
    any picture (a halo alone vanished on busy or dark backgrounds); the ink is black or white by contrast."""
    scale, thickness, line = label_style(image)
    cv2.rectangle(image, (box.x, box.y), (box.x + box.w, box.y + box.h), colour, line)
    x0, y0, x1, y1 = label_rect(image, box, text)
    cv2.rectangle(image, (x0, y0), (x1 - 1, y1 - 1), colour, -1)
    (_, th), baseline = cv2.getTextSize(text, _FONT, scale, thickness)
    pad = (y1 - y0 - th - baseline) // 2
    cv2.putText(image, text, (x0 + pad, y0 + pad + th), _FONT, scale, text_colour or contrast_ink(colour), thickness,
                cv2.LINE_AA)


def draw_detections(image: np.ndarray, faces: Sequence[Any], scale: float = 1.0) -> np.ndarray:
    """A copy of ``image`` with each face's box and ``label p%`` on a green label (a still image: no tracks).

    ``faces`` are the pipeline's results (``box``, ``label``, ``probability``); ``scale`` maps
    their boxes onto ``image`` when it is not the picture they were found in.
    """
    out = image.copy()
    for face in faces:
        box = face.box.scaled(scale) if scale != 1.0 else face.box
        draw_labelled_box(out, box, f"{face.label} {face.probability:.0%}", _DETECTION_BOX)
    return out


def draw_faces(image: np.ndarray, faces: list[TrackedFace]) -> np.ndarray:
    """Box, ``#id label p%`` and a probability bar under the box, in the track's colour."""
    out = image.copy()
    for face in faces:
        b, colour = face.box, track_colour(face.track_id)
        draw_labelled_box(out, b, f"#{face.track_id} {face.label} {face.probability:.0%}", colour)
        bar_y = min(b.y + b.h + 4, out.shape[0] - 7)
        cv2.rectangle(out, (b.x, bar_y), (b.x + b.w, bar_y + 6), (40, 40, 40), -1)
        cv2.rectangle(out, (b.x, bar_y), (b.x + round(b.w * face.probability), bar_y + 6), colour, -1)
        if b.landmarks is not None:
            for x, y in b.landmarks:
                cv2.circle(out, (round(x), round(y)), 2, colour, -1)
    return out


class AnnotatedVideo:
    """Annotated frames into ``path`` (``.avi`` → MJPG, else mp4v); opened on the first frame.

    Frames go to a temporary file next to ``path`` (reached by OpenCV through an
    :class:`OpenCVName`, so any file name works); :meth:`close` releases the writer and renames the
    finished video into place, so ``path`` never holds a video without its index.
    """

    def __init__(self, path: Path, fps: float) -> None:
        self.path, self.fps = path, fps
        self.writer: Any = None
        self.frames = 0
        self._tmp: str | None = None
        self._alias: OpenCVName | None = None

    def _open(self, width: int, height: int) -> None:
        fourcc = "MJPG" if self.path.suffix.lower() == ".avi" else "mp4v"
        shown = display_path(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, self._tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".feredge-",
                                             suffix=self.path.suffix if self.path.suffix.isascii() else ".mp4")
            os.close(fd)
        except OSError as exc:
            raise FeredgeError(f"cannot write {shown}: {exc.strerror or exc}") from None
        self._alias = OpenCVName(self._tmp)
        self.writer = cv2.VideoWriter(self._alias.name, cv2.VideoWriter_fourcc(*fourcc), self.fps, (width, height))
        if not self.writer.isOpened():
            self._discard()
            raise FeredgeError(f"{shown}: OpenCV cannot write {fourcc} video")

    def write(self, image: np.ndarray, faces: list[TrackedFace]) -> None:
        if self.writer is None:
            h, w = image.shape[:2]
            self._open(w, h)
        self.writer.write(draw_faces(image, faces))
        self.frames += 1

    def _discard(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        if self._alias is not None:
            self._alias.close()
            self._alias = None
        if self._tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._tmp)
            self._tmp = None

    def close(self) -> None:
        if self.writer is None:
            return
        self.writer.release()
        self.writer = None
        assert self._alias is not None and self._tmp is not None
        self._alias.close()
        self._alias = None
        tmp, self._tmp = self._tmp, None
        try:
            os.replace(tmp, self.path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise FeredgeError(f"cannot write {display_path(self.path)}: {exc.strerror or exc}") from None


def write_annotated_image(path: Path, image: np.ndarray, faces: list[TrackedFace]) -> None:
    """``image`` with ``faces`` drawn, encoded by ``path``'s suffix and written atomically."""
    write_image(path, draw_faces(image, faces))


class JsonLines:
    """One JSON object per line; each frame's lines are written (and flushed) together, whole.

    :meth:`open` writes a file through its descriptor (unbuffered): a frame's lines are one bytes
    object, written until done; if the OS fails part-way, the file is truncated back to the end of
    the last complete frame and the failure is a one-line :class:`FeredgeError` that says how
    many records the file keeps. A text stream handed in (stdout) gets the frame's text in one
    ``write`` and one ``flush``; a stream cannot be cut back, so that guarantee is the stream's.
    Records are ASCII JSON (``ensure_ascii``), so names with undecodable bytes stay writable.
    """

    def __init__(self, stream: IO[str] | None, *, owned: bool = False) -> None:
        self.stream, self.owned = stream, owned
        self.lines = 0
        self.path: Path | None = None
        self._fd: int | None = None
        self._committed = 0  # bytes of complete frames in the file

    @classmethod
    def open(cls, path: Path) -> JsonLines:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o666)
        except OSError as exc:
            raise FeredgeError(f"cannot write {display_path(path)}: {exc.strerror or exc}") from None
        sink = cls(None, owned=True)
        sink.path, sink._fd = path, fd
        return sink

    def write_frame(self, records: list[dict[str, Any]]) -> None:
        if not records:
            return
        text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in records)
        if self._fd is None:
            assert self.stream is not None
            try:
                self.stream.write(text)
                self.stream.flush()
            except OSError as exc:
                name = display_path(str(getattr(self.stream, "name", "the JSON lines stream")))
                raise FeredgeError(f"cannot write {name}: {exc.strerror or exc}") from None
        else:
            self._write_whole(text.encode("utf-8"))
        self.lines += len(records)

    def _write_whole(self, data: bytes) -> None:
        assert self._fd is not None and self.path is not None
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            with contextlib.suppress(OSError):  # not possible on a pipe or /dev/full: nothing to cut
                os.ftruncate(self._fd, self._committed)
                os.lseek(self._fd, self._committed, os.SEEK_SET)
            raise FeredgeError(f"cannot write {display_path(self.path)}: {exc.strerror or exc}; it keeps "
                               f"the {self.lines} complete record(s) written before") from None
        self._committed += len(data)

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
        elif self.owned and self.stream is not None:
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
    """All tracks, sorted by id; written through a temporary file and renamed, so never partial."""
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=TRACK_COLUMNS)
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r.track_id):
        writer.writerow(row.as_row(fps))
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FeredgeError(f"cannot write {display_path(path)}: {exc.strerror or exc}") from None
    write_file_atomic(path, buffer.getvalue().encode("utf-8"))
