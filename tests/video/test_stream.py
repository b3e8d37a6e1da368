"""Frame sources and the bounded reader: corrupt frames counted, back-pressure drops, budgets skip."""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from feredge.errors import FeredgeError
from feredge.preprocess.image_io import ImageError
from feredge.video.stream import CaptureSource, Frame, FrameQueue, StreamStats
from tests.video.conftest import SMALL


class CountingSource:
    """A fast fake source: ``n`` tiny frames at ``fps``; ``live`` as asked."""

    def __init__(self, n: int, live: bool = False, fps: float = 25.0) -> None:
        self.n, self.live, self.fps, self.name = n, live, fps, "fake"

    def frames(self, stats: StreamStats) -> Iterator[Frame]:
        for i in range(self.n):
            stats.read += 1
            yield Frame(i, np.zeros((4, 4, 3), np.uint8), i / self.fps)

    def close(self) -> None:
        pass


def test_corrupt_frame_in_a_real_file_is_skipped_and_counted(corrupt_video):
    source = CaptureSource(corrupt_video)
    stats = StreamStats()
    indices = [f.index for f in source.frames(stats)]
    source.close()
    assert indices == [i for i in range(SMALL.frames) if i != 20]
    assert stats.corrupt == 1 and stats.read == SMALL.frames - 1


def test_missing_file_and_absent_camera_are_one_line_errors(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        CaptureSource(tmp_path / "nope.avi")
    (tmp_path / "bad.avi").write_text("not a video")
    with pytest.raises(ImageError, match="cannot open"):
        CaptureSource(tmp_path / "bad.avi")


def test_live_source_drops_frames_when_the_consumer_is_slow_and_memory_stays_bounded():
    queue = FrameQueue(CountingSource(300, live=True), maxsize=4)
    seen = []
    for frame in queue:
        seen.append(frame.index)
        time.sleep(0.002)
    queue.close()
    s = queue.stats
    assert s.dropped > 0 and s.max_queue <= 4
    assert len(seen) + s.dropped == 300 and seen == sorted(seen)


def test_file_source_blocks_instead_of_dropping():
    queue = FrameQueue(CountingSource(60), maxsize=2)
    seen = []
    for frame in queue:
        seen.append(frame.index)
        time.sleep(0.001)
    assert seen == list(range(60)) and queue.stats.dropped == 0


def test_every_and_max_fps_skip_frames():
    queue = FrameQueue(CountingSource(100, fps=25.0), every=2)
    assert [f.index for f in queue][:3] == [0, 2, 4] and queue.stats.skipped == 50
    queue = FrameQueue(CountingSource(100, fps=25.0), max_fps=5.0)  # 4 s of video at 5 fps → 20 frames
    assert len(list(queue)) == 20 and queue.stats.skipped == 80
    with pytest.raises(FeredgeError):
        FrameQueue(CountingSource(1), every=0)


def test_stop_ends_reading_early():
    queue = FrameQueue(CountingSource(10_000), maxsize=2)
    first = next(iter(queue))
    queue.stop()
    assert first.index == 0 and queue.stats.queued < 10_000


def test_reader_errors_reach_the_consumer(tmp_path):
    class Broken(CountingSource):
        def frames(self, stats: StreamStats) -> Iterator[Frame]:
            yield from super().frames(stats)
            raise ImageError("fake: broken")

    with pytest.raises(ImageError, match="broken"):
        list(FrameQueue(Broken(3)))
