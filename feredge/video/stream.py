"""Frame sources (video file, camera), a bounded reader thread, and asynchronous classification.

Why a thread and a bounded queue: decoding (OpenCV releases the GIL), detection and the model
(OpenVINO's async requests) then overlap, and memory cannot grow with the length of the video —
the queue holds at most ``maxsize`` frames. When it is full a live source (camera, or
``realtime=True``) *drops* the new frame and counts it: a late frame is worth less than the
current one. A file source by default blocks the reader instead (no frame lost, same bound);
with ``realtime=True`` it is played at its own frame rate, like a camera, and drops the same way.

Bad frames: OpenCV answers a corrupt frame in the middle of a file (e.g. a damaged JPEG in an
MJPG AVI) with ``read() == False``, exactly as at the end of the stream. The reader tells them
apart by reading on: if a good frame follows within ``max_bad_run`` reads, the failures were
corrupt frames — skipped and counted — otherwise the stream has ended. Where the container
announces its frame count (``CAP_PROP_FRAME_COUNT``), frames it announced but that never came
(a truncated file, undecodable frames at the very end) are counted as *missing*, separately:
from the end of a stream, a cut-off file and a corrupt tail look the same.

Paths reach OpenCV through :class:`~feredge.preprocess.image_io.OpenCVName` (a file name that is
not UTF-8 crashed ``cv2.VideoCapture``); a camera index must be 0 or above (``-1``, OpenCV's
"any camera", crashed it when none was present): :func:`check_camera_index`. URLs (``rtsp://``,
http(s) videos) reach it as the URL string, with the FFmpeg backend and timeouts
(:func:`~feredge.preprocess.url.open_stream_capture`). A live URL stream that drops is reopened a
bounded number of times with growing pauses (:class:`ReconnectPolicy`): networks hiccup and cameras
reboot, and a long unattended run should survive that; a file, or an http video with a known
length, ends where it ends.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from feredge.errors import FeredgeError
from feredge.mathops import softmax
from feredge.preprocess.image_io import ImageError, OpenCVName, display_path, open_capture, to_bgr_u8
from feredge.preprocess.url import DEFAULT_OPTIONS, UrlOptions, display_url, is_live_url, is_url, open_stream_capture


@dataclass
class Frame:
    index: int  # position in the source (counting corrupt and skipped frames)
    image: np.ndarray  # BGR uint8
    timestamp: float  # seconds: source time for files, wall time since start for cameras


@dataclass
class StreamStats:
    read: int = 0  # frames decoded
    corrupt: int = 0  # frames that failed to decode and were skipped (a good frame followed)
    missing: int = 0  # frames the container announced that never came (truncated file, corrupt tail)
    skipped: int = 0  # left out on purpose (--every, --max-fps)
    dropped: int = 0  # lost to back-pressure (queue full on a live source)
    queued: int = 0
    max_queue: int = 0
    reconnects: int = 0  # a live URL stream dropped and was reopened


class FrameSource(Protocol):
    live: bool
    fps: float
    name: str

    def frames(self, stats: StreamStats) -> Iterator[Frame]: ...

    def close(self) -> None: ...


def check_camera_index(index: object) -> int:
    """``index`` as a camera number, or a one-line :class:`FeredgeError` (negative, not an integer).

    OpenCV reads -1 as "any camera" and crashed (segfault) when there was none; numbers from
    0 up are device indices (``/dev/video<N>`` on Linux). For the CLI's ``--camera``.
    """
    if isinstance(index, bool) or not isinstance(index, int | np.integer):
        raise FeredgeError(f"--camera takes a camera index (0 for the first camera), got {index!r}")
    if index < 0:
        raise FeredgeError(f"--camera must be 0 or above (0 is the first camera), got {index}")
    return int(index)


@dataclass(frozen=True)
class ReconnectPolicy:
    """How a dropped live URL stream is reopened: up to ``retries`` tries, pausing ``delay`` seconds
    before the first and doubling up to ``max_delay`` (0.5 + 1 + 2 + 4 + 8 s by default), then an error."""

    retries: int = 5
    delay: float = 0.5
    max_delay: float = 8.0

    def delays(self) -> Iterator[float]:
        delay = self.delay
        for _ in range(self.retries):
            yield delay
            delay = min(self.max_delay, delay * 2)


class CaptureSource:
    """A ``cv2.VideoCapture`` over a file path, a camera index or a URL (rtsp://, http(s) video…).

    ``live`` sources (cameras, streaming URLs, http videos without a frame count) drop frames when
    processing falls behind and get wall-clock timestamps; live URLs are reopened by ``reconnect``
    when they drop. ``url_options`` sets OpenCV's open/read timeouts for URLs.
    """

    def __init__(self, target: str | int | Path, *, max_bad_run: int = 25, reconnect: ReconnectPolicy | None = None,
                 url_options: UrlOptions = DEFAULT_OPTIONS) -> None:
        self.live = isinstance(target, int | np.integer) and not isinstance(target, bool)
        self._alias: OpenCVName | None = None
        self.url = target if isinstance(target, str) and is_url(target) else None
        self.url_options = url_options
        self._closing = threading.Event()
        if self.live:
            index = check_camera_index(target)
            self.name = f"camera:{index}"
            self.capture = cv2.VideoCapture(index)
            if not self.capture.isOpened():
                self.capture.release()
                raise ImageError(f"{self.name}: cannot open camera", reason="cannot open camera")
        elif self.url is not None:  # the URL string itself, never a Path (which would eat its '//')
            self.name = display_url(self.url)
            self.capture = open_stream_capture(self.url, url_options)
        else:
            self.name = display_path(str(target))
            self.capture, self._alias = open_capture(Path(str(target)))
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self.fps = fps if 0.0 < fps < 1000.0 else 25.0
        count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if self.url is not None:
            self.live = is_live_url(self.url, count)
        self.frame_count = count if count > 0 and not self.live else None
        self.max_bad_run = max_bad_run
        self.reconnect = (reconnect or ReconnectPolicy()) if self.url is not None and self.live else None

    def _reopen(self, index: int, stats: StreamStats) -> bool:
        """After a failed read of a live URL: reopen it per :attr:`reconnect`; False once closed meanwhile.

        Raises :class:`ImageError` when every try failed.
        """
        assert self.url is not None and self.reconnect is not None
        self.capture.release()
        waited, tries = 0.0, 0
        for delay in self.reconnect.delays():
            if self._closing.wait(delay):
                return False
            waited, tries = waited + delay, tries + 1
            try:
                self.capture = open_stream_capture(self.url, self.url_options)
            except ImageError:
                continue
            stats.reconnects += 1
            return True
        raise ImageError(f"{self.name}: the stream dropped after {index} frame(s) and did not come back "
                         f"({tries} reconnect tries over {waited:g} s)", reason="stream dropped")

    def frames(self, stats: StreamStats) -> Iterator[Frame]:
        # ``index``: source position of the next good frame; failed reads are only counted as
        # frames (corrupt) once a good frame follows them, so a final run of failures — the end of
        # the stream — never inflates the position.
        index, bad_run, start = 0, 0, time.perf_counter()
        while True:
            ok, image = self.capture.read()
            if not ok or image is None:
                if self.reconnect is not None:  # a live stream has no end of its own: it dropped
                    if not self._reopen(index, stats):
                        break
                    continue
                bad_run += 1
                if bad_run > self.max_bad_run or (
                        self.frame_count is not None and index + bad_run >= self.frame_count):
                    break
                continue
            if bad_run:  # failures followed by a good frame: they were corrupt frames
                stats.corrupt += bad_run
                index += bad_run
                bad_run = 0
            stats.read += 1
            timestamp = time.perf_counter() - start if self.live else index / self.fps
            yield Frame(index, to_bgr_u8(image, f"{self.name}#{index}"), timestamp)
            index += 1
        if self.frame_count is not None and index < self.frame_count:
            stats.missing += self.frame_count - index
        if stats.read == 0:
            raise ImageError(f"{self.name}: video has no decodable frames", reason="video has no decodable frames")

    def interrupt(self) -> None:
        """Stop waiting to reconnect (the reader is being stopped); safe from any thread."""
        self._closing.set()

    def close(self) -> None:
        self._closing.set()
        self.capture.release()
        if self._alias is not None:
            self._alias.close()


class _End:
    """Queue sentinel; carries the reader's exception, if any."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


class FrameQueue:
    """Reads a source on a thread into a bounded queue, applying ``every`` and the ``max_fps`` budget.

    Iterate it for frames; ``stop()`` ends reading early (Ctrl-C). Memory is bounded by ``maxsize``.
    """

    def __init__(self, source: FrameSource, *, maxsize: int = 8, every: int = 1, max_fps: float | None = None,
                 realtime: bool | None = None, max_frames: int | None = None) -> None:
        if every < 1:
            raise FeredgeError(f"--every must be at least 1, got {every}")
        if max_fps is not None and max_fps <= 0:
            raise FeredgeError(f"--max-fps must be positive, got {max_fps}")
        self.source, self.every, self.max_fps, self.max_frames = source, every, max_fps, max_frames
        self.drop = source.live if realtime is None else realtime
        self.stats = StreamStats()
        self._queue: queue.Queue[Frame | _End] = queue.Queue(maxsize=max(1, maxsize))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, name="feredge-frame-reader", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        error: BaseException | None = None
        last_slot: int | None = None
        taken = 0
        paced = self.drop and not self.source.live  # a file played as if live: frames arrive at its fps
        start = time.perf_counter()
        try:
            for frame in self.source.frames(self.stats):
                if self._stop.is_set() or (self.max_frames is not None and taken >= self.max_frames):
                    break
                if paced:
                    time.sleep(max(0.0, start + frame.timestamp - time.perf_counter()))
                if frame.index % self.every:
                    self.stats.skipped += 1
                    continue
                if self.max_fps is not None:  # one frame per 1/max_fps slot of source (or wall) time
                    slot = int(frame.timestamp * self.max_fps + 1e-6)
                    if last_slot is not None and slot <= last_slot:
                        self.stats.skipped += 1
                        continue
                    last_slot = slot
                taken += 1
                if not self._put(frame):
                    break
        except BaseException as exc:  # handed to the consumer, raised there
            error = exc
        finally:
            self._put_end(_End(error))

    def _put(self, frame: Frame) -> bool:
        if self.drop:
            try:
                self._queue.put_nowait(frame)
            except queue.Full:
                self.stats.dropped += 1
                return True
        else:
            while not self._stop.is_set():
                try:
                    self._queue.put(frame, timeout=0.1)
                    break
                except queue.Full:
                    continue
            else:
                return False
        self.stats.queued += 1
        self.stats.max_queue = max(self.stats.max_queue, self._queue.qsize())
        return True

    def _put_end(self, end: _End) -> None:
        while True:
            try:
                self._queue.put(end, timeout=0.1)
                return
            except queue.Full:
                if self._stop.is_set():  # consumer gone: make room for the sentinel
                    with contextlib.suppress(queue.Empty):
                        self._queue.get_nowait()

    def __iter__(self) -> Iterator[Frame]:
        while True:
            item = self._queue.get()
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            yield item

    def stop(self) -> None:
        self._stop.set()
        interrupt = getattr(self.source, "interrupt", None)  # e.g. a reconnect back-off: end its wait now
        if interrupt is not None:
            interrupt()
        self._thread.join(timeout=5.0)

    def close(self) -> None:
        self.stop()
        self.source.close()


class PendingProbabilities:
    """The result of one submission: chunk futures joined into one probability array on ``result()``."""

    def __init__(self, futures: list[Future[np.ndarray]]) -> None:
        self.futures = futures

    def result(self) -> np.ndarray:
        return softmax(np.concatenate([f.result() for f in self.futures]))


class AsyncClassifier:
    """Non-blocking model calls for a :class:`~feredge.runtimes.pipeline.Pipeline`.

    OpenVINO: ``ov.AsyncInferQueue`` with ``jobs`` requests in flight. Other runtimes: one worker
    thread calling the runner (ONNX Runtime and TensorRT release the GIL while they compute), so
    detection of the next frame still overlaps the model. Batches larger than the bundle's max
    batch are split into chunks, as ``Pipeline.classify`` does.
    """

    def __init__(self, pipeline: Any, jobs: int = 2) -> None:
        self.pipeline = pipeline
        self.max_batch = pipeline.max_batch
        self._ov = None
        self._pool: ThreadPoolExecutor | None = None
        if hasattr(pipeline.runner, "async_queue"):
            self._ov = pipeline.runner.async_queue(jobs)
            self.mode = f"openvino-async x{jobs}"
        else:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feredge-infer")
            self.mode = f"{pipeline.runner.name}-thread"

    def submit(self, batch: np.ndarray) -> PendingProbabilities:
        futures = []
        for i in range(0, len(batch), self.max_batch):
            chunk = np.ascontiguousarray(batch[i:i + self.max_batch])
            if self._ov is not None:
                futures.append(self._ov.submit(chunk))
            else:
                assert self._pool is not None
                futures.append(self._pool.submit(self.pipeline.runner.infer, chunk))
        return PendingProbabilities(futures)

    def close(self) -> None:
        if self._ov is not None:
            self._ov.wait_all()
        if self._pool is not None:
            self._pool.shutdown(wait=True)
