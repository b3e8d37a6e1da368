"""Videos and streams by URL: the URL string reaches OpenCV's FFmpeg backend; live streams reconnect."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from feredge.preprocess.image_io import ImageError
from feredge.video import stream as stream_module
from feredge.video.stream import CaptureSource, ReconnectPolicy, StreamStats
from tests.loopback import Route
from tests.video.conftest import SMALL


class _Spy:
    """cv2.VideoCapture, recording its arguments."""

    def __init__(self, real: Any) -> None:
        self.real, self.calls = real, []

    def __call__(self, *args: Any) -> Any:
        self.calls.append(args)
        return self.real(*args)


def test_an_rtsp_url_reaches_opencv_unchanged_and_a_failed_open_is_one_line(monkeypatch) -> None:
    spy = _Spy(cv2.VideoCapture)
    monkeypatch.setattr(cv2, "VideoCapture", spy)
    url = "rtsp://127.0.0.1:1/x"
    with pytest.raises(ImageError) as caught:
        CaptureSource(url)
    assert [call[:2] for call in spy.calls] == [(url, cv2.CAP_FFMPEG)]
    assert type(spy.calls[0][0]) is str
    message = str(caught.value)
    assert message.startswith(f"{url}: cannot open the stream") and "\n" not in message


def test_a_password_never_reaches_the_message() -> None:
    with pytest.raises(ImageError) as caught:
        CaptureSource("rtsp://admin:hunter2@127.0.0.1:1/live")
    assert "hunter2" not in str(caught.value) and "admin:***@127.0.0.1:1" in str(caught.value)


def test_an_http_video_plays_like_a_file(http_server, small_video: Path) -> None:
    http_server.routes["/clip.avi"] = Route(small_video.read_bytes(), "video/x-msvideo")
    source = CaptureSource(http_server.url("/clip.avi"))
    try:
        assert not source.live and source.reconnect is None and source.frame_count == SMALL.frames
        stats = StreamStats()
        frames = list(source.frames(stats))
    finally:
        source.close()
    assert [f.index for f in frames] == list(range(SMALL.frames)) and stats.reconnects == 0
    assert frames[0].image.shape == (SMALL.height, SMALL.width, 3)


class _FakeStream:
    """A capture that delivers ``frames`` frames and then fails to read, as a dropped RTSP session does."""

    def __init__(self, frames: int) -> None:
        self.left = frames
        self.released = False

    def get(self, prop: int) -> float:
        return 10.0 if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.left <= 0 or self.released:
            return False, None
        self.left -= 1
        return True, np.full((24, 32, 3), 100, np.uint8)

    def release(self) -> None:
        self.released = True


def _scripted_opens(monkeypatch, script: list[int | None]) -> list[str]:
    """``open_stream_capture`` answers from ``script``: a frame count per successful open, None for a failure."""
    opened: list[str] = []

    def fake_open(url: str, options: Any) -> _FakeStream:
        opened.append(url)
        step = script.pop(0) if script else None
        if step is None:
            raise ImageError(f"{url}: cannot open the stream", reason="cannot open stream")
        return _FakeStream(step)

    monkeypatch.setattr(stream_module, "open_stream_capture", fake_open)
    return opened


def test_a_dropped_live_stream_is_reopened_and_frames_continue(monkeypatch) -> None:
    url = "rtsp://127.0.0.1:8554/live"
    opened = _scripted_opens(monkeypatch, [3, None, 2, None, None])
    source = CaptureSource(url, reconnect=ReconnectPolicy(retries=2, delay=0.0))
    assert source.live and source.frame_count is None
    stats = StreamStats()
    frames = []
    with pytest.raises(ImageError) as caught:
        for frame in source.frames(stats):
            frames.append(frame)
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]  # one sequence across the reconnect
    assert stats.reconnects == 1 and opened == [url] * 5  # open, drop → fail, open, drop → fail, fail
    assert "dropped after 5 frame(s) and did not come back (2 reconnect tries" in str(caught.value)


def test_closing_ends_a_reconnect_wait_at_once(monkeypatch) -> None:
    _scripted_opens(monkeypatch, [1])
    source = CaptureSource("rtsp://127.0.0.1:8554/live", reconnect=ReconnectPolicy(retries=3, delay=30.0))
    got: list[int] = []
    reader = threading.Thread(target=lambda: got.extend(f.index for f in source.frames(StreamStats())))
    reader.start()
    time.sleep(0.3)  # the reader is now waiting 30 s to reconnect
    start = time.monotonic()
    source.interrupt()
    reader.join(timeout=5)
    assert not reader.is_alive() and time.monotonic() - start < 2 and got == [0]
    source.close()


def test_files_and_finite_http_videos_are_never_reconnected(small_video: Path) -> None:
    source = CaptureSource(small_video)
    assert source.reconnect is None and not source.live
    source.close()
    assert list(ReconnectPolicy(retries=5, delay=0.5, max_delay=2.0).delays()) == [0.5, 1.0, 2.0, 2.0, 2.0]
