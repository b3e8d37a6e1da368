"""Generated multi-face test videos with known boxes and expressions that change over time.

Why: tracking, smoothing and long-run memory need videos whose truth is known — which face is
where, wearing which expression, in every frame — and that can be made any length on a machine
without datasets. Faces are drawn by :func:`~feredge.data.synth.sample.synth_sample` (one sprite per face
and expression, cached, so a 10,000-frame video costs a paste per face per frame), drift smoothly
inside their own column (they never cross, so a correct tracker keeps one id per face) and switch
expression every ``segment`` frames. :func:`corrupt_mjpeg_frame` damages one frame of an MJPG AVI
in place, the realistic way a frame goes bad (a broken JPEG inside a valid container).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np

from feredge.data.synth.config import SynthConfig
from feredge.data.synth.expressions import SYNTH_LABELS
from feredge.data.synth.sample import synth_sample
from feredge.errors import FeredgeError
from feredge.preprocess.image_io import OpenCVName, display_path

#: expressions each face cycles through (names of :data:`SYNTH_LABELS`)
DEFAULT_CYCLE = ("happy", "surprise", "neutral", "sad", "angry")
_CLEAN = SynthConfig(blend_fraction=0.0, occlusion_prob=0.0, max_rotation=6.0, clutter=2, max_noise=2.0,
                     max_blur=0.0, intensity=(1.0, 1.15))


@dataclass(frozen=True)
class VideoSpec:
    frames: int = 300
    width: int = 640
    height: int = 360
    fps: float = 25.0
    faces: int = 3
    face_size: int = 120
    segment: int = 75  # frames per expression
    seed: int = 0
    cycle: tuple[str, ...] = DEFAULT_CYCLE


@dataclass(frozen=True)
class FaceTruth:
    face: int  # which generated face (the id a perfect tracker would keep)
    box: tuple[int, int, int, int]  # x, y, w, h of the drawn sprite
    label: str


@dataclass
class SyntheticVideo:
    """Renders frame ``i`` and its truth; pure function of the spec and ``i``."""

    spec: VideoSpec
    _sprites: dict[tuple[int, str], np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        s = self.spec
        if s.faces < 1 or s.width < s.faces * s.face_size or s.height < s.face_size:
            raise FeredgeError(f"{s.faces} faces of {s.face_size}px do not fit a {s.width}x{s.height} frame")
        unknown = [name for name in s.cycle if name not in SYNTH_LABELS]
        if unknown:
            raise FeredgeError(f"unknown expressions {unknown}; known: {', '.join(SYNTH_LABELS)}")
        ramp = np.linspace(70, 150, s.width, dtype=np.float32)
        self._background = np.repeat(np.repeat(ramp[None, :, None], s.height, 0), 3, 2).astype(np.uint8)

    def _sprite(self, face: int, label: str) -> np.ndarray:
        key = (face, label)
        if key not in self._sprites:
            # same index and seed per face → same identity; the label changes only the expression
            sample = synth_sample(1000 + face, seed=self.spec.seed, size=self.spec.face_size, config=_CLEAN,
                                  label=SYNTH_LABELS.index(label))
            self._sprites[key] = sample.image
        return self._sprites[key]

    def label(self, face: int, index: int) -> str:
        return self.spec.cycle[(index // self.spec.segment + face) % len(self.spec.cycle)]

    def truth(self, index: int) -> list[FaceTruth]:
        s = self.spec
        column = s.width / s.faces
        slack_x, slack_y = column - s.face_size, s.height - s.face_size
        out = []
        for face in range(s.faces):
            phase = index / s.fps * 2 * math.pi
            x = face * column + slack_x * (0.5 + 0.45 * math.sin(0.11 * phase * (1 + face * 0.3) + face))
            y = slack_y * (0.5 + 0.45 * math.sin(0.07 * phase * (1 + face * 0.2) + 2 * face))
            out.append(FaceTruth(face, (round(x), round(y), s.face_size, s.face_size), self.label(face, index)))
        return out

    def frame(self, index: int) -> np.ndarray:
        image = self._background.copy()
        for t in self.truth(index):
            x, y, w, h = t.box
            image[y:y + h, x:x + w] = self._sprite(t.face, t.label)
        return image


def write_video(path: str | Path, spec: VideoSpec, *, truth_path: str | Path | None = None) -> Path:
    """Encode the video (``.avi`` → MJPG, else mp4v); optionally the per-frame truth as JSON lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fourcc = "MJPG" if path.suffix.lower() == ".avi" else "mp4v"
    video = SyntheticVideo(spec)
    with OpenCVName(path) as name:  # a non-UTF-8 path never reaches OpenCV (it crashes on one)
        writer = cv2.VideoWriter(name.name, cv2.VideoWriter_fourcc(*fourcc), spec.fps, (spec.width, spec.height))
        if not writer.isOpened():
            raise FeredgeError(f"{display_path(path)}: OpenCV cannot write {fourcc} video")
        truth = open(truth_path, "w", encoding="utf-8") if truth_path else None  # noqa: SIM115
        try:
            for index in range(spec.frames):
                writer.write(video.frame(index))
                if truth:
                    truth.write(json.dumps({"frame": index, "faces": [asdict(t) for t in video.truth(index)]}) + "\n")
        finally:
            writer.release()
            if truth:
                truth.close()
    return path


def corrupt_mjpeg_frame(path: str | Path, index: int) -> None:
    """Zero frame ``index``'s JPEG bytes (SOI to EOI) inside an MJPG AVI, keeping the container intact.

    Players and OpenCV read on past it; FFmpeg's decoder finds no JPEG in that one packet. (Damaging
    only the header is not enough: FFmpeg resynchronises on later markers and returns a garbled
    picture as a good frame.)
    """
    path = Path(path)
    data = bytearray(path.read_bytes())
    starts, pos = [], data.find(b"\xff\xd8\xff")
    while pos >= 0:
        starts.append(pos)
        pos = data.find(b"\xff\xd8\xff", pos + 3)
    if index >= len(starts):
        raise FeredgeError(f"{path}: has {len(starts)} JPEG frames, cannot corrupt frame {index}")
    start = starts[index]
    end = data.find(b"\xff\xd9", start)
    end = end + 2 if end >= 0 else len(data)
    data[start:end] = bytes(end - start)
    path.write_bytes(bytes(data))
