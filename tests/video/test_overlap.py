"""Overlapped stages: decode ‖ detect/track ‖ classify really run at once, results stay in frame order,
and every queue between them stays within its bound."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from feredge.data.synth.video import SyntheticVideo, VideoSpec
from feredge.preprocess.boxes import Box
from feredge.runtimes.pipeline import Pipeline
from feredge.video.processor import VideoOptions, VideoProcessor
from feredge.video.schedule import DetectionSchedule
from feredge.video.stream import Frame, FrameQueue, StreamStats

SPEC = VideoSpec(frames=30, width=480, height=200, faces=3, face_size=96, seed=2)
VIDEO = SyntheticVideo(SPEC)


class Source:
    """Decodes (renders) frames, recording how far ahead of the detector it got."""

    live, fps, name = False, 25.0, "gated"

    def __init__(self, log: dict[str, list[int]], delay: float = 0.0) -> None:
        self.log, self.delay = log, delay

    def frames(self, stats: StreamStats) -> Iterator[Frame]:
        for i in range(SPEC.frames):
            time.sleep(self.delay)
            stats.read += 1
            self.log["decoded"].append(i)
            yield Frame(i, VIDEO.frame(i), i / self.fps)

    def close(self) -> None:
        pass


class Detector:
    def __init__(self, log: dict[str, list[int]], started: dict[int, threading.Event]) -> None:
        self.log, self.started, self.frame = log, started, -1

    def detect(self, image: np.ndarray) -> list[Box]:
        self.frame += 1  # k=1 in these tests: one call per frame, in order
        self.log["detected"].append(self.frame)
        self.started.setdefault(self.frame, threading.Event()).set()
        return [Box(*t.box) for t in VIDEO.truth(self.frame)]


class GatedRunner:
    """The model for frame t waits until detection of frame t+1 has begun: it can only finish if the
    loop goes on detecting while the model computes (sequential stages would time out here)."""

    name = "gated"

    def __init__(self, real, started: dict[int, threading.Event], log: dict[str, list[int]]) -> None:
        self.real, self.started, self.log, self.calls = real, started, log, 0
        self.overlapped = 0

    def infer(self, batch: np.ndarray) -> np.ndarray:
        frame = self.calls  # one batch per frame (3 faces, max batch 4)
        self.calls += 1
        if frame + 1 < SPEC.frames and self.started.setdefault(frame + 1, threading.Event()).wait(timeout=5.0):
            self.overlapped += 1
        time.sleep(float(np.random.default_rng(frame).uniform(0, 0.01)))  # uneven model times
        self.log["classified"].append(frame)
        return self.real.infer(batch)


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from tests.video.conftest import make_bundle

    return make_bundle(tmp_path_factory.mktemp("overlap") / "bundle", detector="none", max_batch=4)


def test_stages_overlap_and_frames_come_out_in_order(bundle):
    log: dict[str, list[int]] = {"decoded": [], "detected": [], "classified": []}
    started: dict[int, threading.Event] = {}
    out: list[int] = []
    with Pipeline.from_bundle(bundle, runtime="onnxruntime") as pipeline:
        pipeline.detector = Detector(log, started)
        runner = GatedRunner(pipeline.runner, started, log)
        pipeline.runner = runner
        options = VideoOptions(reinfer_every=1, queue_size=3, in_flight=2,
                               detection=DetectionSchedule.every_frame())
        processor = VideoProcessor(pipeline, options)

        def on_frame(frame: Frame, faces: list) -> None:
            out.append(frame.index)
            assert len(faces) == 3
            # decode ran ahead of output, never further than the bounded queue and the frames in flight allow
            ahead = len(log["decoded"]) - len(out)
            assert ahead <= options.queue_size + options.in_flight + 2, ahead

        stats = processor.run(Source(log), on_frame)
        pipeline.runner = runner.real
    assert out == list(range(SPEC.frames))  # in frame order, none lost
    assert runner.overlapped == SPEC.frames - 1  # the model ran while the next frame was being detected
    assert stats.stream.max_queue <= options.queue_size
    assert stats.inferences == 3 * SPEC.frames and stats.detections == SPEC.frames


def test_the_frame_queue_never_holds_more_than_its_size():
    log: dict[str, list[int]] = {"decoded": []}
    queue = FrameQueue(Source(log), maxsize=3)
    seen = []
    for frame in queue:
        time.sleep(0.01)  # a slow consumer: the reader fills the queue and must wait
        assert len(log["decoded"]) - len(seen) <= 3 + 2  # queued + the one being put + the one taken
        seen.append(frame.index)
    queue.close()
    assert seen == list(range(SPEC.frames)) and queue.stats.dropped == 0
    assert queue.stats.max_queue == 3  # it did fill up, and no further
