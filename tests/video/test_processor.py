"""The video loop on a generated three-face video: stable ids, skipping saves inferences, async modes."""

from __future__ import annotations

import json

import pytest

from feredge.data.synth.video import SyntheticVideo
from feredge.runtimes.pipeline import Pipeline
from feredge.video.processor import VideoOptions, VideoProcessor
from feredge.video.stream import CaptureSource
from feredge.video.tracker import iou
from tests.video.conftest import SMALL


def _run(bundle, video, runtime="openvino", **options):
    frames = []
    with Pipeline.from_bundle(bundle, runtime=runtime) as pipeline:
        processor = VideoProcessor(pipeline, VideoOptions(**options))
        stats = processor.run(CaptureSource(video), lambda frame, faces: frames.append((frame.index, faces)))
    return stats, frames, processor


@pytest.fixture(scope="module")
def skipping_run(tiny_bundle, small_video):
    return _run(tiny_bundle, small_video, reinfer_every=8)


def test_each_generated_face_keeps_one_track_id(skipping_run):
    stats, frames, _ = skipping_run
    truth = SyntheticVideo(SMALL)
    ids_of_face: dict[int, set[int]] = {0: set(), 1: set(), 2: set()}
    from feredge.preprocess.detect import Box

    for index, faces in frames:
        for face in faces:
            best = max(truth.truth(index), key=lambda t: iou(Box(*t.box), face.box))
            assert iou(Box(*best.box), face.box) > 0.2  # every detection is one of the drawn faces
            ids_of_face[best.face].add(face.track_id)
    assert all(len(ids) == 1 for ids in ids_of_face.values()), ids_of_face
    assert stats.tracks == 3 and stats.frames == SMALL.frames
    assert stats.faces >= 0.9 * 3 * SMALL.frames  # MTCNN finds (nearly) every face


def test_track_based_skipping_saves_inferences_and_reports_it(skipping_run, tiny_bundle, small_video):
    stats, frames, processor = skipping_run
    assert stats.inferences < 0.5 * stats.faces
    assert sum(face.inferred for _, faces in frames for face in faces) == stats.inferences
    full, _, _ = _run(tiny_bundle, small_video, reinfer_every=1, max_frames=12)
    assert full.inferences == full.faces > 0
    report = stats.to_dict()
    json.dumps(report)
    assert report["inference_saving"] == pytest.approx(1 - stats.inferences / stats.faces, abs=1e-4)
    assert stats.inference_mode.startswith("openvino-async")
    assert stats.batches >= 2  # three new faces with max batch 2: chunked
    rows = processor.track_rows()
    assert len(rows) == 3 and all(r.history.frames_seen > 0 and r.history.inferences > 0 for r in rows)


def test_onnxruntime_runs_through_a_worker_thread(tiny_bundle, small_video):
    stats, frames, _ = _run(tiny_bundle, small_video, runtime="onnxruntime", max_frames=6)
    assert stats.inference_mode == "onnxruntime-thread" and stats.frames == 6
    assert [index for index, _ in frames] == list(range(6))


def test_stop_finishes_submitted_frames_in_order(tiny_bundle, small_video):
    frames = []
    with Pipeline.from_bundle(tiny_bundle, runtime="openvino") as pipeline:
        processor = VideoProcessor(pipeline, VideoOptions(memory_every=2))

        def on_frame(frame, faces):
            frames.append(frame.index)
            if len(frames) == 4:
                processor.stop()

        stats = processor.run(CaptureSource(small_video), on_frame)
    assert stats.interrupted and 4 <= stats.frames <= 4 + 1 + VideoOptions().in_flight
    assert frames == list(range(len(frames)))
    assert stats.memory["samples"] >= 2 and stats.memory["peak_mb"] > 0
