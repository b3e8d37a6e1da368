"""Pipeline benchmark: where a frame's time goes, from the encoded file to labelled faces.

Stages: ``decode`` (JPEG file → BGR array through the checked reader, or one ``VideoCapture.read``
for video), then :meth:`feredge.runtimes.pipeline.Pipeline.run` itself with the timings it reports:
``detect`` (the bundle's detector, Haar by default) → ``preprocess`` (crop with the spec's margin
or alignment, resize, scale, mean/std, NCHW) → ``infer`` (the runner, all faces of the frame as one
batch, chunked at the bundle's max batch) → ``postprocess`` (softmax, argmax, per-face records).

Inputs are real photographs: the shipped ``astronaut.jpg`` as is, and frames composed by tiling
its face crop 1, 4 and 16 times on a fixed 640×640 canvas (same pixels to decode and scan, more
faces), plus a generated multi-face MJPEG video with the tiles drifting and changing brightness
frame to frame.

Two rates come out per input: ``fps`` is 1000 / the median of the per-frame stage sums (a typical
frame, robust to a stall), ``e2e_fps`` is timed frames / the wall-clock time of the whole timed
loop, everything between the first timed frame and the last included (stalls, loop and record
overhead): the frames/s a user's loop actually gets, which a peer benchmark compares against.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from feredge.preprocess.image_io import OpenCVName

STAGES = ("decode", "detect", "preprocess", "infer", "postprocess")  # Pipeline.run's, after decoding
CANVAS = 640


@dataclass
class PipelineCase:
    source: str
    kind: str  # "image" or "video"
    faces_placed: int | None
    frames: int
    faces_detected_mean: float
    stage_ms: dict[str, float]  # median per stage
    stage_mean_ms: dict[str, float]
    total_ms: float  # median of the per-frame totals
    fps: float
    runtime: str = ""
    settings: dict[str, Any] = field(default_factory=dict)
    wall_s: float = 0.0  # wall-clock of the timed frames, end to end
    e2e_fps: float = 0.0  # frames / wall_s

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stage_share"] = {k: (v / self.total_ms if self.total_ms else 0.0) for k, v in self.stage_ms.items()}
        return data


def astronaut_face_tile(size: int) -> np.ndarray:
    """The shipped photo's face, detected by the Haar cascade and cropped with context, ``size``²."""
    from feredge.calibration.reference import demo_image_path
    from feredge.preprocess.detect import HaarDetector
    from feredge.preprocess.image_io import read_image
    from feredge.preprocess.spec import DetectorSpec
    from feredge.preprocess.transform import square_crop

    image = read_image(demo_image_path()).image
    boxes = HaarDetector(DetectorSpec()).detect(image)
    if not boxes:
        raise RuntimeError("the shipped face photo was not detected")
    crop = square_crop(image, boxes[0], 0.35)
    return cv2.resize(crop, (size, size), interpolation=cv2.INTER_AREA)


def compose_frame(faces: int, *, canvas: int = CANVAS, shift: tuple[int, int] = (0, 0),
                  gain: float = 1.0) -> np.ndarray:
    """``faces`` (a square number) copies of the face tiled on a ``canvas``² frame; odd tiles mirrored."""
    cols = math.isqrt(faces)
    if cols * cols != faces:
        raise ValueError(f"faces per frame must be a square number, got {faces}")
    tile = canvas // cols
    face = astronaut_face_tile(tile)
    frame = np.full((canvas, canvas, 3), 90, np.uint8)
    for i in range(faces):
        r, c = divmod(i, cols)
        img = cv2.flip(face, 1) if i % 2 else face
        frame[r * tile:(r + 1) * tile, c * tile:(c + 1) * tile] = img
    if shift != (0, 0):
        matrix = np.float32([[1, 0, shift[0]], [0, 1, shift[1]]])
        frame = cv2.warpAffine(frame, matrix, (canvas, canvas), borderMode=cv2.BORDER_REPLICATE)
    if gain != 1.0:
        frame = cv2.convertScaleAbs(frame, alpha=gain)
    return frame


def write_video(path: Path, faces: int, frames: int = 24, fps: int = 12) -> Path:
    """An MJPEG ``.avi`` of ``frames`` frames with ``faces`` faces drifting and flickering."""
    with OpenCVName(path) as name:  # a non-UTF-8 path never reaches OpenCV (it crashes on one)
        writer = cv2.VideoWriter(name.name, cv2.VideoWriter_fourcc(*"MJPG"), fps, (CANVAS, CANVAS))
        if not writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write MJPEG video {path}")
        try:
            for k in range(frames):
                shift = (round(6 * math.sin(k / 3)), round(4 * math.cos(k / 4)))
                writer.write(compose_frame(faces, shift=shift, gain=0.9 + 0.2 * (k % 5) / 4))
        finally:
            writer.release()
    return path


class StagedRunner:
    """A :class:`~feredge.runtimes.pipeline.Pipeline` measured through its own ``run`` (what
    ``feredge infer`` calls per frame), keeping the stage timings it reports. Why not call the
    stages one by one here: a copy of ``Pipeline.run`` measures the copy, and it drifts."""

    def __init__(self, pipeline: Any) -> None:
        self.pipeline = pipeline

    def process(self, image: np.ndarray, timings: dict[str, float]) -> int:
        result = self.pipeline.run(image)
        timings.update(result.timings_ms)
        return len(result.faces)


def _summarise(source: str, kind: str, placed: int | None, per_frame: list[dict[str, float]],
               faces: list[int], runner: Any, wall_s: float) -> PipelineCase:
    stage_ms = {s: float(np.median([t.get(s, 0.0) for t in per_frame])) for s in STAGES}
    stage_mean = {s: float(np.mean([t.get(s, 0.0) for t in per_frame])) for s in STAGES}
    totals = [sum(t.get(s, 0.0) for s in STAGES) for t in per_frame]
    total = float(np.median(totals))
    return PipelineCase(source, kind, placed, len(per_frame), float(np.mean(faces)), stage_ms, stage_mean, total,
                        1000.0 / total if total else 0.0, runner.name, dict(runner.settings), wall_s,
                        len(per_frame) / wall_s if wall_s > 0 else 0.0)


def bench_image(staged: StagedRunner, path: Path, *, iterations: int, warmup: int = 2,
                placed: int | None = None) -> PipelineCase:
    from feredge.preprocess.image_io import read_image

    per_frame: list[dict[str, float]] = []
    faces: list[int] = []
    timed_from = time.perf_counter()
    for i in range(warmup + iterations):
        timings: dict[str, float] = {}
        start = time.perf_counter()
        if i == warmup:
            timed_from = start
        image = read_image(path).image
        timings["decode"] = (time.perf_counter() - start) * 1000.0
        found = staged.process(image, timings)
        if i >= warmup:
            per_frame.append(timings)
            faces.append(found)
    wall = time.perf_counter() - timed_from
    return _summarise(path.name, "image", placed, per_frame, faces, staged.pipeline.runner, wall)


def bench_video(staged: StagedRunner, path: Path, *, placed: int | None = None, warmup: int = 2) -> PipelineCase:
    with OpenCVName(path) as name:  # opened here; the alias may go once the file is open
        capture = cv2.VideoCapture(name.name)
    per_frame: list[dict[str, float]] = []
    faces: list[int] = []
    timed_from = timed_to = time.perf_counter()
    try:
        index = 0
        while True:
            start = time.perf_counter()
            if index == warmup:
                timed_from = start
            ok, frame = capture.read()
            decode = (time.perf_counter() - start) * 1000.0
            if not ok:
                break
            timings = {"decode": decode}
            found = staged.process(frame, timings)
            if index >= warmup:
                per_frame.append(timings)
                faces.append(found)
                timed_to = time.perf_counter()
            index += 1
    finally:
        capture.release()
    if not per_frame:
        raise RuntimeError(f"{path}: no frames decoded")
    return _summarise(path.name, "video", placed, per_frame, faces, staged.pipeline.runner, timed_to - timed_from)


@dataclass
class PipelineConfig:
    faces: tuple[int, ...] = (1, 4, 16)
    iterations: int = 30
    video_frames: int = 24
    warmup: int = 2
    runtime: str = "auto"
    threads: int | None = None
    workdir: Path | None = None


def bench_pipeline(bundle: Path, config: PipelineConfig) -> list[PipelineCase]:
    """astronaut.jpg, the 1/4/16-face composed frames, and one multi-face video per face count."""
    from feredge.calibration.reference import demo_image_path
    from feredge.runtimes.pipeline import Pipeline

    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="feredge-pipeline-"))
    workdir.mkdir(parents=True, exist_ok=True)
    cases: list[PipelineCase] = []
    with Pipeline.from_bundle(bundle, config.runtime, threads=config.threads) as pipeline:
        staged = StagedRunner(pipeline)
        cases.append(bench_image(staged, demo_image_path(), iterations=config.iterations, warmup=config.warmup,
                                 placed=1))
        for n in config.faces:
            path = workdir / f"faces{n:02d}.jpg"
            cv2.imwrite(str(path), compose_frame(n), [cv2.IMWRITE_JPEG_QUALITY, 90])
            cases.append(bench_image(staged, path, iterations=config.iterations, warmup=config.warmup, placed=n))
        for n in config.faces:
            video = write_video(workdir / f"faces{n:02d}.avi", n, frames=config.video_frames)
            cases.append(bench_video(staged, video, placed=n, warmup=min(config.warmup, config.video_frames - 1)))
    return cases
