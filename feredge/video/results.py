"""Per-frame results of a video, camera or stream for Python callers: an iterator, a table, a CSV.

:class:`FrameStream` is what ``Recognizer.stream(source)`` returns: it opens the source at once (a
bad path or an unreachable ``rtsp://`` fails at the call, not at the first ``next``) and yields one
:class:`FrameResult` per processed frame from :meth:`VideoProcessor.results
<feredge.video.processor.VideoProcessor.results>` — the loop ``feredge infer`` runs on videos, with
its tracker, smoothing, adaptive detection and async model calls, not a copy of it.

:class:`VideoResults` (``Recognizer.analyze``) keeps every frame's faces, without the images, as
``fer``'s ``Video.analyze`` does, in long form: one row per face per frame with the columns of
:func:`result_columns` — ``frame, time, track, x, y, w, h``, one column per label's probability,
``label``; a frame without a face is one row with only ``frame`` and ``time``, so gaps stay visible.
:meth:`VideoResults.to_csv` needs nothing beyond the standard library; :meth:`VideoResults.to_dataframe`
imports pandas when called — pandas is not a feredge dependency, and a missing one is a one-line
:class:`~feredge.errors.MissingBackendError`.
"""

from __future__ import annotations

import csv
import importlib
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feredge.errors import MissingBackendError
from feredge.preprocess.image_io import write_file_atomic
from feredge.preprocess.url import DEFAULT_OPTIONS, UrlOptions
from feredge.video.outputs import TrackedFace
from feredge.video.processor import VideoOptions, VideoProcessor, VideoStats
from feredge.video.stream import CaptureSource, ReconnectPolicy

#: the columns before and after the per-label probabilities (see :func:`result_columns`)
LEADING_COLUMNS = ("frame", "time", "track", "x", "y", "w", "h")
TRAILING_COLUMNS = ("label",)


@dataclass(frozen=True)
class FrameResult:
    """One processed frame: its position in the source, its time, and its faces with their track ids.

    ``index`` counts every frame of the source (skipped and corrupt ones too); ``timestamp`` is in
    seconds, source time for files and wall time since the start for cameras and live streams.
    ``image`` is the decoded BGR frame (None in :class:`VideoResults`, which keeps no images).
    """

    index: int
    timestamp: float
    faces: list[TrackedFace]
    image: np.ndarray | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {"frame": self.index, "timestamp": round(self.timestamp, 3), "faces": [f.to_dict() for f in self.faces]}


def result_columns(labels: Sequence[str]) -> list[str]:
    """``frame, time, track, x, y, w, h``, then one probability column per label, then ``label``."""
    return [*LEADING_COLUMNS, *labels, *TRAILING_COLUMNS]


def frame_rows(result: FrameResult, labels: Sequence[str]) -> list[dict[str, Any]]:
    """The table rows of one frame: one per face, or one with only frame and time when it has none."""
    base = {"frame": result.index, "time": round(result.timestamp, 3)}
    if not result.faces:
        return [{**base, **dict.fromkeys((*LEADING_COLUMNS[2:], *labels, *TRAILING_COLUMNS))}]
    rows = []
    for face in result.faces:
        x, y, w, h = face.box.as_list()
        rows.append({**base, "track": face.track_id, "x": x, "y": y, "w": w, "h": h,
                     **{label: round(face.probabilities[label], 6) for label in labels}, "label": face.label})
    return rows


class FrameStream:
    """An iterator of :class:`FrameResult` over one video file, camera index or URL; close it (or ``with``).

    Frames come in order; a live source drops frames when the consumer falls behind (see
    :class:`~feredge.video.stream.FrameQueue`). :meth:`stop` ends it after the frames already in
    flight; breaking out of the loop and :meth:`close` end it at once. :attr:`stats` holds the
    run's figures (frames, inferences, dropped, reconnects…) once iteration has finished.
    """

    def __init__(self, pipeline: Any, source: str | Path | int, options: VideoOptions | None = None, *,
                 keep_images: bool = True, url_options: UrlOptions = DEFAULT_OPTIONS,
                 reconnect: ReconnectPolicy | None = None) -> None:
        self.labels: list[str] = list(pipeline.labels)
        self.keep_images = keep_images
        self.source = CaptureSource(source, reconnect=reconnect, url_options=url_options)
        self.name, self.fps, self.live = self.source.name, self.source.fps, self.source.live
        try:
            self.processor = VideoProcessor(pipeline, options)
        except BaseException:
            self.source.close()
            raise
        self._results = self.processor.results(self.source)

    @property
    def stats(self) -> VideoStats:
        return self.processor.stats

    def __iter__(self) -> Iterator[FrameResult]:
        return self

    def __next__(self) -> FrameResult:
        frame, faces = next(self._results)
        return FrameResult(frame.index, frame.timestamp, faces, frame.image if self.keep_images else None)

    def stop(self) -> None:
        """End after the frames already submitted to the model (they are still yielded)."""
        self.processor.stop()

    def close(self) -> None:
        self._results.close()
        self.source.close()

    def __enter__(self) -> FrameStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@dataclass
class VideoResults:
    """Every processed frame of one source (no images), as rows, a CSV file or a pandas DataFrame."""

    labels: list[str]
    frames: list[FrameResult]
    source: str = ""
    fps: float = 0.0
    stats: VideoStats | None = None

    @classmethod
    def collect(cls, stream: FrameStream) -> VideoResults:
        """Run ``stream`` to its end (closing it) and keep its frames."""
        with stream:
            frames = [FrameResult(r.index, r.timestamp, r.faces) for r in stream]
        return cls(stream.labels, frames, stream.name, stream.fps, stream.stats)

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[FrameResult]:
        return iter(self.frames)

    @property
    def columns(self) -> list[str]:
        return result_columns(self.labels)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per face per frame (and per face-less frame), keyed by :attr:`columns`."""
        return [row for frame in self.frames for row in frame_rows(frame, self.labels)]

    def to_csv(self, path: str | Path) -> Path:
        """Write :meth:`rows` as CSV (header = :attr:`columns`; empty cells where a frame has no face).

        Written through a temporary file and renamed, so ``path`` is complete or untouched.
        """
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=self.columns)
        writer.writeheader()
        writer.writerows(self.rows())
        path = Path(path)
        write_file_atomic(path, buffer.getvalue().encode("utf-8"))
        return path

    def to_dataframe(self) -> Any:
        """:meth:`rows` as a ``pandas.DataFrame`` with :attr:`columns` (pandas imported here, not a dependency)."""
        try:
            pandas = importlib.import_module("pandas")  # by name: an optional package, without stubs here
        except ImportError:
            raise MissingBackendError("to_dataframe needs pandas, which feredge does not install: pip install pandas "
                                      "(or write the same table with to_csv(path))") from None
        return pandas.DataFrame(self.rows(), columns=self.columns)
