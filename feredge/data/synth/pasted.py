"""A test video with a *real* face moving: the shipped astronaut photo's face pasted along paths.

Why: :class:`~feredge.data.synth.video.SyntheticVideo` draws cartoon faces that drift slowly in
their own columns — right for tracking ids and expressions, but gentle on a detector and on
optical flow. Here real skin, hair and lighting (``feredge/assets/astronaut.jpg``, public domain)
move faster, at several sizes, one mirrored; one face *jumps* across the frame in one frame and a
fourth *walks in* halfway through and leaves again — the cases an adaptive detection schedule must
catch. The truth box is the astronaut's face box on the still photo (:data:`FACE_BOX`, close to
what MTCNN, Haar and BlazeFace each find there: IoU 0.82–0.88), moved and scaled with the paste.
Each face is pasted through a feathered ellipse, so no rectangle edge gives the flow an easy
corner. Frames are a pure function of the spec and the index (seeded sensor noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from feredge.data.synth.background import draw_background
from feredge.data.synth.config import SynthConfig
from feredge.data.synth.video import FaceTruth
from feredge.errors import FeredgeError

#: the astronaut's face in feredge/assets/astronaut.jpg (x, y, w, h), and the square crop pasted around it
FACE_BOX = (178, 68, 92, 102)
CROP = (124, 19, 200, 200)

Keyframe = tuple[int, float, float]  # frame, centre x and y as fractions of the frame


@dataclass(frozen=True)
class PastedFace:
    size: int  # face-box height in px
    path: tuple[Keyframe, ...]  # linear between keyframes; two keyframes one frame apart make a jump
    start: int = 0
    end: int | None = None  # exclusive; None: to the end
    mirror: bool = False
    gain: float = 1.0  # brightness


def _default_faces() -> tuple[PastedFace, ...]:
    return (
        PastedFace(96, ((0, 0.16, 0.30), (150, 0.40, 0.26), (299, 0.18, 0.34))),
        PastedFace(120, ((0, 0.84, 0.62), (60, 0.64, 0.70), (120, 0.86, 0.56), (180, 0.66, 0.66), (299, 0.84, 0.62)),
                   mirror=True, gain=0.85),
        PastedFace(84, ((0, 0.40, 0.78), (199, 0.48, 0.76), (200, 0.62, 0.24), (299, 0.58, 0.22))),
        PastedFace(72, ((150, -0.08, 0.72), (205, 0.20, 0.72), (260, -0.08, 0.72)), start=150, end=260, gain=1.1),
    )


@dataclass(frozen=True)
class PastedSpec:
    frames: int = 300
    width: int = 640
    height: int = 360
    fps: float = 25.0
    faces: tuple[PastedFace, ...] = field(default_factory=_default_faces)
    noise: float = 2.0  # sensor noise sigma (grey levels)
    seed: int = 0


@dataclass
class PastedFaceVideo:
    """Renders frame ``i`` and its truth (boxes clipped to the frame; faces under half visible are left out)."""

    spec: PastedSpec = field(default_factory=PastedSpec)
    _sprites: dict[int, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        from feredge.calibration.reference import demo_image_path

        photo = cv2.imread(str(demo_image_path()))
        if photo is None:
            raise FeredgeError("cannot read the shipped astronaut photo")
        x, y, w, h = CROP
        self._crop = photo[y:y + h, x:x + w]
        s = self.spec
        rng = np.random.default_rng(s.seed)
        side = max(s.width, s.height)
        scene = draw_background(rng, side, SynthConfig(clutter=6))
        self._background = np.ascontiguousarray(scene[:s.height, :s.width])

    def _sprite(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if index not in self._sprites:
            face = self.spec.faces[index]
            scale = face.size / FACE_BOX[3]
            side = max(8, round(CROP[2] * scale))
            image = cv2.resize(self._crop, (side, side), interpolation=cv2.INTER_AREA)
            if face.mirror:
                image = image[:, ::-1]
            image = np.clip(image.astype(np.float32) * face.gain, 0, 255)
            mask = np.zeros((side, side), np.float32)
            cv2.ellipse(mask, (side // 2, side // 2), (int(side * 0.36), int(side * 0.46)), 0, 0, 360, 1.0, -1)
            mask = cv2.GaussianBlur(mask, (0, 0), side * 0.04)[..., None]
            self._sprites[index] = (image, mask)
        return self._sprites[index]

    def _centre(self, face: PastedFace, index: int) -> tuple[float, float]:
        frames = [k[0] for k in face.path]
        fx = float(np.interp(index, frames, [k[1] for k in face.path]))
        fy = float(np.interp(index, frames, [k[2] for k in face.path]))
        return fx * self.spec.width, fy * self.spec.height

    def _placed(self, index: int) -> list[tuple[int, int, int, PastedFace]]:
        """(face index, sprite x0, sprite y0, face) for the faces present on frame ``index``."""
        out = []
        for i, face in enumerate(self.spec.faces):
            if index < face.start or (face.end is not None and index >= face.end):
                continue
            cx, cy = self._centre(face, index)
            side = self._sprite(i)[0].shape[0]
            # the face box centre, not the crop centre, follows the path
            scale = side / CROP[2]
            fx = (FACE_BOX[0] - CROP[0] + FACE_BOX[2] / 2) * scale
            fy = (FACE_BOX[1] - CROP[1] + FACE_BOX[3] / 2) * scale
            if face.mirror:
                fx = side - fx
            out.append((i, round(cx - fx), round(cy - fy), face))
        return out

    def truth(self, index: int) -> list[FaceTruth]:
        s = self.spec
        out = []
        for i, x0, y0, face in self._placed(index):
            side = self._sprite(i)[0].shape[0]
            scale = side / CROP[2]
            w, h = FACE_BOX[2] * scale, FACE_BOX[3] * scale
            left = (FACE_BOX[0] - CROP[0]) * scale
            if face.mirror:
                left = side - left - w
            bx, by = x0 + left, y0 + (FACE_BOX[1] - CROP[1]) * scale
            cx0, cy0 = max(0.0, bx), max(0.0, by)
            cx1, cy1 = min(float(s.width), bx + w), min(float(s.height), by + h)
            if cx1 <= cx0 or cy1 <= cy0 or (cx1 - cx0) * (cy1 - cy0) < 0.5 * w * h:
                continue
            out.append(FaceTruth(i, (round(cx0), round(cy0), round(cx1 - cx0), round(cy1 - cy0)), "real"))
        return out

    def frame(self, index: int) -> np.ndarray:
        s = self.spec
        image = self._background.astype(np.float32)
        for i, x0, y0, _face in self._placed(index):
            sprite, mask = self._sprite(i)
            side = sprite.shape[0]
            sx0, sy0 = max(0, -x0), max(0, -y0)
            dx0, dy0 = max(0, x0), max(0, y0)
            dx1, dy1 = min(s.width, x0 + side), min(s.height, y0 + side)
            if dx1 <= dx0 or dy1 <= dy0:
                continue
            region = (slice(dy0, dy1), slice(dx0, dx1))
            part = (slice(sy0, sy0 + dy1 - dy0), slice(sx0, sx0 + dx1 - dx0))
            image[region] = image[region] * (1.0 - mask[part]) + sprite[part] * mask[part]
        if s.noise:
            image += np.random.default_rng((s.seed, index)).normal(0.0, s.noise, image.shape).astype(np.float32)
        return np.clip(image, 0, 255).astype(np.uint8)
