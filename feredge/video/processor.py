"""The video loop: frames → detect (every k-th frame) or track → classify (only where needed, async) → smooth → outputs.

Detection follows :class:`~feredge.video.schedule.DetectionSchedule`: the detector runs on the
first frame, then every k-th processed frame with k doubling while every track is confirmed (up to
``k_max``), and again on the next frame after a new or lost face, a drifted box or fast motion.
Between detections :class:`~feredge.video.flow.FlowTracker` carries each box (velocity prior,
optical flow); :class:`~feredge.video.schedule.ScheduledTracker` ties detector, flow and the IoU
tracker together.

Three things overlap: the reader thread decodes frame t+2 into the bounded queue, the main
thread detects and tracks frame t+1, and the model runs on frame t's faces (OpenVINO async
requests, or a worker thread). At most ``in_flight`` frames wait for their probabilities; they are
finished strictly in order, so smoothing and every output see frames in sequence. All faces of a
frame that need the model go in one batch (chunked to the bundle's max batch).

Stopping: :meth:`VideoProcessor.stop` (the CLI wires it to Ctrl-C / SIGTERM) ends the loop after
the current frame; frames already submitted are finished and handed to ``on_frame``, so outputs
hold every processed frame and can be closed cleanly.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np

from feredge.preprocess.detect import Box
from feredge.preprocess.transform import preprocess_faces
from feredge.video.memory import MemoryMonitor
from feredge.video.outputs import TrackedFace, TrackRow
from feredge.video.schedule import DetectionSchedule, ScheduledTracker
from feredge.video.smoothing import EmaSmoother, TrackHistory
from feredge.video.stream import AsyncClassifier, Frame, FrameQueue, FrameSource, PendingProbabilities, StreamStats
from feredge.video.tracker import IoUTracker, ReinferPolicy, Track


@dataclass(frozen=True)
class VideoOptions:
    every: int = 1  # process every N-th frame of the source
    max_fps: float | None = None  # frame budget: process at most this many frames per second (source time)
    smoothing: float = 0.5  # EMA alpha: weight of the newest probabilities; 1 = no smoothing
    reinfer_every: int = 10  # run the model for a track at least every K processed frames; 1 = every frame
    box_change: float = 0.3  # … or when its box changed (IoU with the last classified box < 1 - this)
    iou_match: float = 0.3  # tracker: minimum IoU to continue a track
    max_missed: int = 10  # tracker: frames a track survives without a detection
    queue_size: int = 8  # decoded frames waiting for detection
    realtime: bool | None = None  # drop frames when the queue is full (None: only for cameras)
    jobs: int = 2  # async inference requests
    in_flight: int = 2  # frames whose probabilities may still be computing
    detect_width: int | None = None  # downscale wider frames for detection only
    memory_every: int = 0  # sample RSS every N processed frames (0: off)
    max_frames: int | None = None  # stop after this many processed frames (cameras, tests)
    detection: DetectionSchedule = field(default_factory=DetectionSchedule)  # when the detector runs


@dataclass
class VideoStats:
    source: str = ""
    frames: int = 0  # processed (detected, tracked, output)
    faces: int = 0  # face boxes seen over all processed frames
    inferences: int = 0  # faces actually run through the model
    detections: int = 0  # detector runs (the rest of the frames were tracked)
    detect_reasons: dict[str, int] = field(default_factory=dict)  # detector runs by why they ran
    batches: int = 0
    tracks: int = 0
    wall_s: float = 0.0
    interrupted: bool = False
    inference_mode: str = ""
    stream: StreamStats = field(default_factory=StreamStats)
    stage_ms: dict[str, float] = field(default_factory=dict)
    memory: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["fps"] = round(self.fps, 2)
        data["wall_s"] = round(self.wall_s, 3)
        data["inference_saving"] = round(1.0 - self.inferences / self.faces, 4) if self.faces else 0.0
        data["stage_ms"] = {k: round(v, 1) for k, v in self.stage_ms.items()}
        return data

    def line(self) -> str:
        s = self.stream
        saving = f" ({1 - self.inferences / self.faces:.0%} saved)" if self.faces else ""
        return (f"{self.source}: {self.frames} frame(s) at {self.fps:.1f} fps, {self.faces} face(s) seen, "
                f"{self.inferences} inference(s){saving}, {self.detections} detection(s), {self.tracks} track(s); "
                f"dropped {s.dropped}, "
                f"corrupt {s.corrupt}, missing {s.missing}, skipped {s.skipped}"
                + (f", reconnects {s.reconnects}" if s.reconnects else "")
                + ("; interrupted" if self.interrupted else ""))


@dataclass
class _Pending:
    frame: Frame
    boxes: list[Box]
    tracks: list[Track]
    inferred: list[int]  # positions in boxes that went to the model
    probabilities: PendingProbabilities | None
    finished: list[int]  # track ids that ended at this frame


OnFrame = Callable[[Frame, list[TrackedFace]], None]


class VideoProcessor:
    def __init__(self, pipeline: Any, options: VideoOptions | None = None) -> None:
        self.pipeline = pipeline
        self.options = options or VideoOptions()
        o = self.options
        EmaSmoother(o.smoothing)  # validates alpha before any work
        self.tracker = IoUTracker(iou_match=o.iou_match, max_missed=o.max_missed)
        self.faces = ScheduledTracker(self._detect, o.detection, self.tracker)
        self.policy = ReinferPolicy(box_change=o.box_change, every=o.reinfer_every)
        self.smoothers: dict[int, EmaSmoother] = {}
        self.histories: dict[int, TrackHistory] = {}
        self.memory = MemoryMonitor(every=o.memory_every)
        self.stats = VideoStats()
        self._stop = threading.Event()

    def stop(self) -> None:
        self._stop.set()

    def track_rows(self) -> list[TrackRow]:
        return [TrackRow(tid, history) for tid, history in self.histories.items() if history.frames_seen]

    def run(self, source: FrameSource, on_frame: OnFrame) -> VideoStats:
        """Process ``source``, calling ``on_frame(frame, faces)`` for every processed frame, in order."""
        with contextlib.closing(self.results(source)) as results:
            for frame, faces in results:
                on_frame(frame, faces)
        return self.stats

    def results(self, source: FrameSource) -> Generator[tuple[Frame, list[TrackedFace]], None, None]:
        """Process ``source``, yielding ``(frame, faces)`` for every processed frame, in order.

        The pull form of :meth:`run` (``Recognizer.stream`` iterates it): after :meth:`stop`, or when
        the source ends or fails, the frames already submitted are still yielded (then a failure is
        raised); a consumer that stops iterating (``break``, ``close()``) ends the run at once, and
        the frames still computing are dropped. :attr:`stats` is complete once the iterator is done.
        """
        o = self.options
        self.stats.source = source.name
        frames = FrameQueue(source, maxsize=o.queue_size, every=o.every, max_fps=o.max_fps, realtime=o.realtime,
                            max_frames=o.max_frames)
        self.stats.stream = frames.stats
        classifier = AsyncClassifier(self.pipeline, jobs=o.jobs)
        self.stats.inference_mode = classifier.mode
        pending: deque[_Pending] = deque()
        start = time.perf_counter()
        failure: Exception | None = None
        try:
            try:
                for frame in frames:
                    if self._stop.is_set():
                        break
                    pending.append(self._submit(frame, classifier))
                    while len(pending) > max(0, o.in_flight):
                        yield from self._finish(pending.popleft())
            except Exception as exc:  # the reader's or the detector's: deliver what was submitted, then raise it
                failure = exc
            finally:
                self.stats.interrupted = self._stop.is_set()
                frames.close()
            while pending:
                yield from self._finish(pending.popleft())
            if failure is not None:
                raise failure
        finally:
            classifier.close()
            self.tracker.flush()
            self.stats.wall_s = time.perf_counter() - start
            self.stats.tracks = len(self.histories)
            self.stats.detect_reasons = dict(self.faces.scheduler.runs)
            self.stats.memory = self.memory.summary()

    def _timed(self, stage: str, since: float) -> float:
        now = time.perf_counter()
        self.stats.stage_ms[stage] = self.stats.stage_ms.get(stage, 0.0) + (now - since) * 1000.0
        return now

    def _detect(self, image: np.ndarray) -> list[Box]:
        width = self.options.detect_width
        if width and image.shape[1] > width:
            scale = width / image.shape[1]
            small = cv2.resize(image, (width, round(image.shape[0] * scale)), interpolation=cv2.INTER_AREA)
            return [box.scaled(1.0 / scale) for box in self.pipeline.detector.detect(small)]
        return self.pipeline.detector.detect(image)

    def _submit(self, frame: Frame, classifier: AsyncClassifier) -> _Pending:
        t = time.perf_counter()

        def timed(stage: str) -> None:
            nonlocal t
            t = self._timed(stage, t)

        faces = self.faces.step(frame.image, frame.index, timed)
        tracks, boxes, finished = faces.tracks, faces.boxes, faces.finished
        self.stats.detections = self.faces.detections
        inferred = [i for i, track in enumerate(tracks) if self.policy.needs(track, frame.index)]
        for i in inferred:
            tracks[i].inferred_box, tracks[i].inferred_frame = boxes[i], frame.index
        for track in tracks:
            self.histories.setdefault(track.id, TrackHistory(frame.index, frame.index))
        t = self._timed("track", t)
        probabilities = None
        if inferred:
            batch = preprocess_faces(frame.image, [boxes[i] for i in inferred], self.pipeline.spec)
            t = self._timed("preprocess", t)
            probabilities = classifier.submit(batch)
            self._timed("submit", t)
            self.stats.batches += -(-len(inferred) // self.pipeline.max_batch)
        self.stats.faces += len(boxes)
        self.stats.inferences += len(inferred)
        return _Pending(frame, boxes, tracks, inferred, probabilities, [t.id for t in finished])

    def _finish(self, item: _Pending) -> Generator[tuple[Frame, list[TrackedFace]], None, None]:
        """Yield ``item``'s frame with its faces (probabilities waited for, smoothed), then update the books."""
        t = time.perf_counter()
        rows = item.probabilities.result() if item.probabilities is not None else None
        t = self._timed("infer_wait", t)
        labels = self.pipeline.labels
        fresh = {position: row for row, position in enumerate(item.inferred)}
        faces = []
        for position, (track, box) in enumerate(zip(item.tracks, item.boxes, strict=True)):
            smoother = self.smoothers.setdefault(track.id, EmaSmoother(self.options.smoothing))
            history = self.histories[track.id]
            if position in fresh:
                assert rows is not None
                smoother.update(rows[fresh[position]])
                history.inferences += 1
            value = smoother.value
            if value is None:  # cannot happen: a new track is always classified on its first frame
                continue
            best = int(np.argmax(value))
            history.observe(item.frame.index, labels[best])
            faces.append(TrackedFace(
                track_id=track.id, box=box, label=labels[best], probability=float(value[best]),
                probabilities={label: float(p) for label, p in zip(labels, value, strict=True)},
                inferred=position in fresh,
            ))
        yield item.frame, faces
        self._timed("output", t)
        for track_id in item.finished:
            self.smoothers.pop(track_id, None)
        self.stats.frames += 1
        self.memory.maybe_sample(self.stats.frames)
