"""A procedural synthetic FER set: cartoon faces drawn with OpenCV for the 7 basic expressions.

Why: none of the real FER datasets can be downloaded on the project's machines, yet training,
export, quantisation-calibration and parity code all need images whose labels mean something.
These faces are drawn from a small set of facial-action parameters (mouth curve and opening, brow
height, slope and pinch, eye opening, nose wrinkle, ...), one prototype per expression, so a model
has to look at the same regions a real FER model looks at. Nuisances that real data has (identity,
skin tone, in-plane pose, scale, lighting gradients, blur, noise, background clutter, glasses,
mask bars, hands) are randomised, and ~10 % of images blend two expressions and record the blend
as a soft label.

Determinism: image ``i`` is drawn from ``np.random.default_rng([seed, stream, i])`` alone, so it
is identical whether 10 or 10 000 images are generated and in whatever order or process.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from feredge.data.records import FerDataset, Sample
from feredge.errors import FeredgeError
from feredge.labels import FER2013_7

SYNTH_LABELS = FER2013_7
DEFAULT_SPLITS = {"train": 0.8, "val": 0.1, "test": 0.1}
# Each split draws from its own stream so no image appears in two splits.
SPLIT_STREAMS = {"train": 1, "val": 2, "test": 3, "all": 0}
FER2013_USAGE = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}

# Facial-action parameters. Units are fractions of the face size; signs: + = up / open / more.
PARAMS = (
    "curve",  # mouth corners up (+) or down (-)
    "open",  # mouth opening
    "width",  # mouth width factor
    "round",  # opening shaped as an O instead of a slit
    "upper",  # upper lip raised (disgust)
    "teeth",  # teeth visible in the opening
    "brow_h",  # brows raised (+) or lowered (-)
    "inner",  # inner brow end raised (+, sad/fear) or pulled down (-, angry)
    "together",  # brows pulled toward the midline
    "arch",  # brow arch
    "eye",  # eye opening factor
    "wrinkle",  # nose wrinkle lines
    "press",  # lips pressed thin
    "folds",  # nasolabial folds
)
_P = {name: k for k, name in enumerate(PARAMS)}


def _proto(**kw: float) -> np.ndarray:
    base = {
        "curve": 0.0,
        "open": 0.0,
        "width": 1.0,
        "round": 0.0,
        "upper": 0.0,
        "teeth": 0.0,
        "brow_h": 0.0,
        "inner": 0.0,
        "together": 0.0,
        "arch": 0.3,
        "eye": 1.0,
        "wrinkle": 0.0,
        "press": 0.0,
        "folds": 0.0,
    }
    base.update(kw)
    return np.array([base[n] for n in PARAMS], dtype=np.float64)


# One prototype per expression, keyed by FER2013_7 name: a cartoon of its facial actions (FACS).
PROTOTYPES: dict[str, np.ndarray] = {
    "neutral": _proto(),
    "happy": _proto(curve=1.0, open=0.4, width=1.3, teeth=1.0, brow_h=0.1, eye=0.7, folds=0.9),
    "sad": _proto(curve=-1.0, width=0.85, brow_h=0.1, inner=1.0, together=0.4, arch=0.0, eye=0.7, press=0.3),
    "surprise": _proto(open=1.0, width=0.55, round=1.0, brow_h=1.0, inner=0.2, arch=0.9, eye=1.6),
    "angry": _proto(
        curve=-0.3,
        width=0.8,
        brow_h=-0.8,
        inner=-1.0,
        together=1.0,
        arch=0.0,
        eye=0.6,
        wrinkle=0.2,
        press=1.0,
    ),
    "disgust": _proto(
        curve=-0.5,
        open=0.25,
        width=0.95,
        upper=1.0,
        teeth=0.6,
        brow_h=-0.4,
        inner=-0.4,
        together=0.5,
        arch=0.0,
        eye=0.6,
        wrinkle=1.0,
        folds=0.9,
    ),
    "fear": _proto(
        curve=-0.35,
        open=0.55,
        width=1.35,
        teeth=0.7,
        brow_h=0.8,
        inner=1.0,
        together=0.9,
        arch=0.0,
        eye=1.6,
        folds=0.3,
    ),
}

SKIN_LIGHT = np.array([196, 214, 245.0])  # BGR
SKIN_DARK = np.array([52, 78, 120.0])
HAIR_COLOURS = np.array([[20, 20, 25], [30, 45, 70], [60, 90, 140], [80, 150, 200], [160, 160, 165]], float)


@dataclass(frozen=True)
class SynthConfig:
    """Nuisance ranges. Defaults aim at face crops like FER2013 / RAF-DB aligned images."""

    blend_fraction: float = 0.10
    blend_weight: tuple[float, float] = (0.25, 0.45)  # weight of the second expression
    intensity: tuple[float, float] = (0.75, 1.15)
    param_noise: float = 0.08
    face_scale: tuple[float, float] = (0.80, 1.0)  # face height / image side, before pose scale
    max_rotation: float = 12.0  # degrees, in-plane
    max_offset: float = 0.06  # fraction of the image side
    lighting: float = 0.35  # strength of the linear lighting gradient
    max_blur: float = 0.9  # Gaussian sigma in output pixels
    max_noise: float = 6.0  # Gaussian noise sigma in grey levels
    clutter: int = 6  # at most this many background shapes
    occlusion_prob: float = 0.25  # glasses, bars, hands
    gray: bool = False


@dataclass
class SynthSample:
    """One generated image with its label, its soft label, the face box and the drawn parameters."""

    image: np.ndarray
    label: int
    soft: np.ndarray
    box: tuple[int, int, int, int]
    params: np.ndarray
    blend: int | None = None  # index of the second expression when blended
    occlusion: str = ""
    extra: dict[str, float] = field(default_factory=dict)


class _Pen:
    """Draws in face coordinates (origin at the face centre, unit = face half-height).

    The in-plane pose is a similarity transform applied to every point, radius and angle, so the
    face is drawn once at its final pose (no warp, no resampling) with anti-aliased sub-pixel
    primitives.
    """

    SHIFT = 4
    ONE = 1 << SHIFT

    def __init__(self, img: np.ndarray, cx: float, cy: float, unit: float, angle_deg: float):
        self.img = img
        self.cx, self.cy, self.unit, self.angle = cx, cy, unit, angle_deg
        t = math.radians(angle_deg)
        self.c, self.s = math.cos(t), math.sin(t)

    def map(self, pts: np.ndarray) -> np.ndarray:
        pts = np.asarray(pts, dtype=np.float64).reshape(-1, 2)
        x = self.unit * (self.c * pts[:, 0] - self.s * pts[:, 1]) + self.cx
        y = self.unit * (self.s * pts[:, 0] + self.c * pts[:, 1]) + self.cy
        return np.stack([x, y], axis=1)

    def _fx(self, pts: np.ndarray) -> np.ndarray:
        return np.round(self.map(pts) * self.ONE).astype(np.int32)

    def ellipse(
        self,
        center,
        axes,
        color,
        thickness: float = -1,
        angle: float = 0.0,
        start: float = 0.0,
        end: float = 360.0,
    ) -> None:
        x, y = float(center[0]), float(center[1])
        px = round((self.unit * (self.c * x - self.s * y) + self.cx) * self.ONE)
        py = round((self.unit * (self.s * x + self.c * y) + self.cy) * self.ONE)
        ax = max(1, round(float(axes[0]) * self.unit * self.ONE))
        ay = max(1, round(float(axes[1]) * self.unit * self.ONE))
        th = int(thickness) if thickness < 0 else max(1, round(thickness))
        cv2.ellipse(
            self.img,
            (px, py),
            (ax, ay),
            angle + self.angle,
            start,
            end,
            _col(color),
            th,
            cv2.LINE_AA,
            self.SHIFT,
        )

    def poly(self, pts, color, thickness: float, closed: bool = False) -> None:
        th = max(1, round(thickness * self.unit))
        cv2.polylines(self.img, [self._fx(pts)], closed, _col(color), th, cv2.LINE_AA, self.SHIFT)

    def fill(self, pts, color) -> None:
        cv2.fillPoly(self.img, [self._fx(pts)], _col(color), cv2.LINE_AA, self.SHIFT)

    def px(self, size: float) -> float:
        """A face-unit length in pixels (for line thickness)."""
        return size * self.unit


def _col(color) -> tuple[float, float, float]:
    b, g, r = (min(255.0, max(0.0, float(v))) for v in color)
    return (b, g, r)


def _curve(x0: float, x1: float, fn, n: int = 16) -> np.ndarray:
    xs = np.linspace(x0, x1, n)
    return np.stack([xs, fn(xs)], axis=1)


def expression_params(
    label: int, rng: np.random.Generator, config: SynthConfig, blend: int | None = None, blend_w: float = 0.0
) -> np.ndarray:
    """Facial-action parameters for ``label`` (optionally blended), with intensity and noise."""
    neutral = PROTOTYPES["neutral"]
    p = PROTOTYPES[SYNTH_LABELS[label]]
    if blend is not None:
        p = (1.0 - blend_w) * p + blend_w * PROTOTYPES[SYNTH_LABELS[blend]]
    p = neutral + (p - neutral) * rng.uniform(*config.intensity)
    return p + rng.normal(0.0, config.param_noise, size=p.shape)


def _background(rng: np.random.Generator, side: int, config: SynthConfig) -> np.ndarray:
    base = rng.uniform(40, 220, size=3)
    tilt = rng.uniform(-60, 60, size=3)
    ramp = np.linspace(-0.5, 0.5, side)
    if rng.random() < 0.5:
        img = base + ramp[:, None, None] * tilt
        img = np.broadcast_to(img, (side, side, 3))
    else:
        img = base + ramp[None, :, None] * tilt
        img = np.broadcast_to(img, (side, side, 3))
    img = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
    for _ in range(rng.integers(0, config.clutter + 1)):
        colour = _col(rng.uniform(0, 255, size=3))
        kind = rng.integers(0, 3)
        p = rng.uniform(0, side, size=4).astype(int)
        if kind == 0:
            cv2.rectangle(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), colour, -1)
        elif kind == 1:
            radius = int(rng.uniform(0.03, 0.2) * side)
            cv2.circle(img, (int(p[0]), int(p[1])), radius, colour, -1, cv2.LINE_AA)
        else:
            th = int(max(1, rng.uniform(0.005, 0.03) * side))
            cv2.line(img, (int(p[0]), int(p[1])), (int(p[2]), int(p[3])), colour, th, cv2.LINE_AA)
    return img


def _draw_face(pen: _Pen, p: np.ndarray, rng: np.random.Generator, occlusion: str) -> None:
    """Draw head, hair, and the expression-bearing features in face units (face half-height = 1)."""
    g = {name: float(p[k]) for name, k in _P.items()}
    t = rng.random()
    skin = (1 - t) * SKIN_LIGHT + t * SKIN_DARK + rng.normal(0, 8, 3)
    a = rng.uniform(0.72, 0.86)  # face half-width (half-height = 1)
    shade = skin * 0.72
    hair = HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))] + rng.normal(0, 8, 3)
    has_hair = rng.random() < 0.85

    # Clothes, neck, hair behind, ears, head.
    cloth = rng.uniform(20, 230, 3)
    pen.ellipse((0, 2.15), (1.9, 0.9), cloth)
    pen.fill([(-0.38 * a, 0.6), (0.38 * a, 0.6), (0.42 * a, 1.5), (-0.42 * a, 1.5)], skin * 0.85)
    if has_hair:
        pen.ellipse((0, -0.18), (a * 1.12, 1.0), hair)
    for side in (-1, 1):
        pen.ellipse((side * a * 0.98, -0.02), (0.13, 0.2), skin * 0.92)
    pen.ellipse((0, 0), (a, 1.0), shade)
    pen.ellipse((0, -0.04), (a * 0.93, 0.95), skin)
    if has_hair:  # hairline across the top of the forehead
        pen.ellipse((0, -0.72), (a * 1.02, 0.34), hair, start=180, end=360)
        pen.fill([(-a * 1.02, -0.72), (a * 1.02, -0.72), (a * 0.95, -0.62), (-a * 0.95, -0.62)], hair)

    eye_y = -0.12 + rng.normal(0, 0.02)
    eye_dx = a * rng.uniform(0.38, 0.44)
    ew = a * rng.uniform(0.19, 0.23)
    eh = ew * 0.55 * float(np.clip(g["eye"], 0.25, 1.9))
    iris = HAIR_COLOURS[rng.integers(3)] * 0.8 + rng.normal(0, 6, 3)
    line = skin * 0.35

    # Forehead lines when the brows go up; a frown line between pinched brows.
    if g["brow_h"] > 0.4:
        for k in range(3):
            y = -0.52 - 0.08 * k
            pen.poly(
                _curve(-0.35 * a, 0.35 * a, lambda x, y=y: y + 0.15 * (x / a) ** 2),
                skin * 0.75,
                0.018 * (g["brow_h"] - 0.3),
            )
    if g["together"] > 0.5 and g["inner"] < 0.3:
        for side in (-1, 1):
            pen.poly([(side * 0.05, eye_y - 0.33), (side * 0.07, eye_y - 0.2)], skin * 0.7, 0.02)

    # Eyes: socket shadow, sclera, iris, pupil, upper lid.
    for side in (-1, 1):
        ex = side * eye_dx
        pen.ellipse((ex, eye_y - 0.01), (ew * 1.35, ew * 0.85), skin * 0.8)
        pen.ellipse((ex, eye_y), (ew, eh), (235, 240, 240))
        r = ew * 0.5
        pen.ellipse((ex, eye_y), (r, min(r, eh * 0.95)), iris)
        pen.ellipse((ex, eye_y), (r * 0.5, min(r * 0.5, eh * 0.6)), (10, 10, 10))
        pen.ellipse((ex, eye_y), (ew, eh), line, thickness=pen.px(0.035), start=180, end=360)
        pen.ellipse((ex, eye_y), (ew, eh), skin * 0.55, thickness=pen.px(0.015), start=0, end=180)

    # Brows: inner end height and pinch carry most of angry / sad / fear / surprise.
    brow_y = eye_y - 0.25 - 0.12 * g["brow_h"]
    brow_th = rng.uniform(0.05, 0.075)
    for side in (-1, 1):
        x_in = side * (eye_dx - ew * 1.05 + 0.0) * (1.0 - 0.3 * float(np.clip(g["together"], 0, 1.3)))
        x_in = side * max(abs(x_in), 0.08)
        x_out = side * (eye_dx + ew * 1.25)
        y_in = brow_y - 0.12 * g["inner"]
        y_out = brow_y + 0.04 * g["inner"] - 0.02
        arch = 0.06 + 0.1 * g["arch"]

        def brow(x, x_in=x_in, x_out=x_out, y_in=y_in, y_out=y_out, arch=arch):
            u = (x - x_in) / (x_out - x_in)
            return y_in + (y_out - y_in) * u - arch * 4 * u * (1 - u)

        pen.poly(_curve(x_in, x_out, brow), hair * 0.6 + line * 0.4, brow_th)

    # Nose: bridge shading, tip, nostrils; wrinkles across the bridge for disgust.
    nose_y = 0.3 + rng.normal(0, 0.02)
    pen.poly([(0.06, eye_y + 0.05), (0.08, nose_y - 0.05)], skin * 0.8, 0.025)
    pen.ellipse((0, nose_y - 0.02), (0.12, 0.07), skin * 0.85, thickness=pen.px(0.02), start=20, end=160)
    for side in (-1, 1):
        pen.ellipse((side * 0.07, nose_y), (0.04, 0.022), line)
    wr = float(np.clip(g["wrinkle"], 0, 1.5))
    if wr > 0.3:
        for k in range(3):
            y = eye_y + 0.08 + 0.06 * k
            pen.poly(_curve(-0.1, 0.1, lambda x, y=y: y - 0.3 * x * x), skin * 0.6, 0.02 * wr)
        for side in (-1, 1):
            pen.poly([(side * 0.13, eye_y + 0.05), (side * 0.2, eye_y + 0.12)], skin * 0.65, 0.02 * wr)

    # Mouth: centre line curved by `curve`, opened by `open`, upper lip lifted by `upper`.
    mouth_y = 0.58 + rng.normal(0, 0.02)
    mw = a * 0.42 * float(np.clip(g["width"], 0.35, 1.6))
    curve = 0.2 * g["curve"]
    open_h = 0.3 * max(0.0, g["open"])
    roundness = float(np.clip(g["round"], 0, 1))
    asym = rng.choice([-1.0, 1.0]) * 0.5
    upper = max(0.0, g["upper"]) * 0.1
    lip = skin * np.array([0.75, 0.7, 0.95]) * (0.8 if rng.random() < 0.5 else 0.95)

    if g["folds"] > 0.4:
        for side in (-1, 1):
            u = np.linspace(0, 1, 8)
            xs = side * (0.14 + u * (mw + 0.04 - 0.14))
            fold = np.stack([xs, nose_y + 0.02 + u * (mouth_y - curve - nose_y)], 1)
            pen.poly(fold, skin * 0.72, 0.022 * min(g["folds"], 1.2))

    def centre(x):
        u = x / mw
        return mouth_y - curve * u * u

    def upper_edge(x):
        u = np.clip(x / mw, -1, 1)
        env = (1 - u * u) ** (0.5 + 0.5 * (1 - roundness))
        return centre(x) - 0.5 * open_h * env - upper * (1 - u * u) * (1 + asym * u)

    def lower_edge(x):
        u = np.clip(x / mw, -1, 1)
        env = (1 - u * u) ** (0.5 + 0.5 * (1 - roundness))
        return centre(x) + 0.5 * open_h * env * (1.3 if roundness > 0.5 else 1.0)

    lip_th = 0.045 * (1.0 - 0.55 * float(np.clip(g["press"], 0, 1)))
    top = _curve(-mw, mw, upper_edge, 24)
    bottom = _curve(-mw, mw, lower_edge, 24)
    if open_h + upper > 0.04:
        pen.fill(np.concatenate([top, bottom[::-1]]), (30, 25, 70))
        teeth = float(np.clip(g["teeth"], 0, 1))
        if teeth > 0.3:
            t_h = 0.45 * teeth * (open_h + upper)
            band = _curve(-mw * 0.85, mw * 0.85, lambda x: np.minimum(upper_edge(x) + t_h, lower_edge(x)), 20)
            pen.fill(
                np.concatenate([_curve(-mw * 0.85, mw * 0.85, upper_edge, 20), band[::-1]]), (225, 235, 240)
            )
    pen.poly(top + np.array([0, -lip_th * 0.5]), lip, lip_th + 0.01)
    pen.poly(bottom + np.array([0, lip_th * 0.6]), lip, lip_th * 1.3 + 0.01)
    pen.poly(_curve(-mw, mw, centre, 24) if open_h + upper <= 0.04 else top, lip * 0.5, 0.02)

    # Occluders that move with the face.
    if occlusion == "glasses":
        frame = rng.uniform(0, 120, 3)
        dark = rng.random() < 0.25
        for side in (-1, 1):
            if dark:
                pen.ellipse((side * eye_dx, eye_y), (ew * 1.5, ew * 1.15), (25, 25, 25))
            pen.ellipse((side * eye_dx, eye_y), (ew * 1.5, ew * 1.15), frame, thickness=pen.px(0.03))
            pen.poly([(side * (eye_dx + ew * 1.5), eye_y), (side * a, eye_y - 0.04)], frame, 0.03)
        pen.poly([(-eye_dx + ew * 1.5, eye_y), (eye_dx - ew * 1.5, eye_y)], frame, 0.03)
    elif occlusion == "mask":
        colour = rng.uniform(60, 250, 3)
        pen.fill(
            [(-a * 0.95, nose_y - 0.02), (a * 0.95, nose_y - 0.02), (a * 0.7, 0.95), (-a * 0.7, 0.95)], colour
        )
    elif occlusion == "bar":
        y = rng.choice([eye_y, mouth_y])
        pen.fill([(-a, y - 0.1), (a, y - 0.1), (a, y + 0.1), (-a, y + 0.1)], (10, 10, 10))


def _hand(img: np.ndarray, rng: np.random.Generator, cx: float, cy: float, unit: float) -> None:
    """A hand-like blob (palm + four fingers) over part of the lower or side face."""
    t = rng.random()
    skin = (1 - t) * SKIN_LIGHT + t * SKIN_DARK
    pen = _Pen(
        img,
        cx + rng.uniform(-0.8, 0.8) * unit,
        cy + rng.uniform(0.3, 1.0) * unit,
        unit * rng.uniform(0.5, 0.8),
        rng.uniform(-60, 60),
    )
    pen.ellipse((0, 0.2), (0.45, 0.35), skin * 0.9)
    for k in range(4):
        x = -0.3 + 0.2 * k
        pen.ellipse((x, -0.35), (0.085, 0.35), skin * 0.95)
        pen.ellipse((x, -0.35), (0.085, 0.35), skin * 0.6, thickness=1)


def synth_sample(
    index: int,
    seed: int = 0,
    size: int = 64,
    config: SynthConfig | None = None,
    stream: int = 0,
    label: int | None = None,
) -> SynthSample:
    """Draw image ``index`` of the set (label ``index % 7`` unless given); pure function of the args."""
    config = config or SynthConfig()
    if size < 16:
        raise FeredgeError(f"synthetic image size {size} is too small (minimum 16)")
    rng = np.random.default_rng([seed, stream, index])
    n = len(SYNTH_LABELS)
    label = index % n if label is None else label
    soft = np.zeros(n, dtype=np.float32)
    blend = None
    if rng.random() < config.blend_fraction:
        blend = int((label + rng.integers(1, n)) % n)
        w = float(rng.uniform(*config.blend_weight))
        soft[label], soft[blend] = 1.0 - w, w
    else:
        w = 0.0
        soft[label] = 1.0
    params = expression_params(label, rng, config, blend, w)

    side = max(128, size)  # draw at >= 128 px and downsample: anti-aliasing for small outputs
    img = _background(rng, side, config)
    face_h = rng.uniform(*config.face_scale) * side  # chin-to-crown height
    unit = face_h / 2.0
    angle = rng.uniform(-config.max_rotation, config.max_rotation)
    cx = side / 2 + rng.uniform(-config.max_offset, config.max_offset) * side
    cy = side / 2 + rng.uniform(-config.max_offset, config.max_offset) * side + 0.05 * side
    occlusion = ""
    if rng.random() < config.occlusion_prob:
        occlusion = str(rng.choice(["glasses", "glasses", "mask", "bar", "hand", "hand"]))
    pen = _Pen(img, cx, cy, unit * 0.92, angle)
    _draw_face(pen, params, rng, occlusion)
    if occlusion == "hand":
        _hand(img, rng, cx, cy, unit)

    # Lighting: a linear gradient in a random direction (applied at output size: cheaper).
    out = img if side == size else cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = np.linspace(-1.0, 1.0, size, dtype=np.float32)
    gain = (
        1.0
        + rng.uniform(0, config.lighting)
        * (np.float32(np.cos(theta)) * ramp[None, :] + np.float32(np.sin(theta)) * ramp[:, None])
        + np.float32(rng.uniform(-0.15, 0.1))
    )
    out = out.astype(np.float32) * gain[:, :, None]
    sigma = rng.uniform(0, config.max_blur) if rng.random() < 0.6 else 0.0
    if sigma > 0.2:
        out = cv2.GaussianBlur(out, (0, 0), sigma)
    noise_sigma = rng.uniform(0, config.max_noise)
    out = out + rng.normal(0, 1, out.shape).astype(np.float32) * noise_sigma
    image = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    if config.gray:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)

    scale = size / side
    half_w, half_h = 0.8 * unit * scale, unit * scale
    x0, y0 = (cx * scale - half_w), (cy * scale - 0.85 * half_h)
    box = (round(x0), round(y0), round(2 * half_w), round(1.85 * half_h))
    return SynthSample(
        image=image,
        label=label,
        soft=soft,
        box=box,
        params=params,
        blend=blend,
        occlusion=occlusion,
        extra={"angle": angle},
    )


Rendered = list[tuple[np.ndarray, np.ndarray | None]]


def _render_batch(args: tuple[list[int], int, int, SynthConfig, int]) -> Rendered:
    """(image, soft label or None when not blended) for each index; runs in worker processes."""
    indices, seed, size, config, stream = args
    out = []
    for i in indices:
        s = synth_sample(i, seed, size, config, stream)
        out.append((s.image, s.soft if s.blend is not None else None))
    return out


def generate(
    n: int,
    seed: int = 0,
    size: int = 64,
    config: SynthConfig | None = None,
    stream: int = 0,
    start: int = 0,
    split: str = "all",
) -> FerDataset:
    """``n`` in-memory samples (indices ``start .. start+n-1``; labels cycle, so classes balance).

    The images are already face crops, so no box is attached (a box means "crop me" to the
    data layer); :func:`synth_sample` reports the face box for detection checks.
    """
    config = config or SynthConfig()
    samples = []
    for i in range(start, start + n):
        s = synth_sample(i, seed, size, config, stream)
        soft = s.soft if s.blend is not None else None
        samples.append(Sample(source=f"synth:{seed}:{stream}:{i}", label=s.label, image=s.image, soft=soft))
    return FerDataset(labels=SYNTH_LABELS, samples=samples, split=split, name="synth")


def _split_counts(n_per_class: int, splits: Mapping[str, float | int]) -> dict[str, int]:
    """Per-class image count for each split: floats are fractions of n_per_class, ints are counts."""
    counts: dict[str, int] = {}
    for name, value in splits.items():
        if name not in SPLIT_STREAMS:
            raise FeredgeError(f"unknown split '{name}' (use train, val, test)")
        if isinstance(value, float):
            if not 0.0 <= value <= 1.0:
                raise FeredgeError(f"split fraction for '{name}' must be in [0, 1], got {value}")
            counts[name] = round(value * n_per_class)
        else:
            counts[name] = int(value)
    if isinstance(next(iter(splits.values()), 0.0), float) and sum(splits.values()) > 1.0 + 1e-9:
        raise FeredgeError(f"split fractions {dict(splits)} add up to more than 1")
    return counts


def _indices(count_per_class: int) -> list[int]:
    return list(range(count_per_class * len(SYNTH_LABELS)))


def _render_all(
    indices: list[int], seed: int, size: int, config: SynthConfig, stream: int, workers: int
) -> Rendered:
    if workers <= 1 or len(indices) < 64:  # a process pool costs more than it saves below this
        return _render_batch((indices, seed, size, config, stream))
    chunks = [indices[k::workers] for k in range(workers)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(_render_batch, [(c, seed, size, config, stream) for c in chunks]))
    results: Rendered = [None] * len(indices)  # type: ignore[list-item]
    for k, part in enumerate(parts):
        for j, item in enumerate(part):
            results[k + j * workers] = item
    return results


def write_folder(
    root: str | Path,
    n_per_class: int,
    size: int = 64,
    seed: int = 0,
    splits: Mapping[str, float | int] | None = None,
    config: SynthConfig | None = None,
    workers: int = 1,
) -> dict[str, int]:
    """Write ``root/<split>/<label>/<idx>.png`` plus ``root/soft_labels.csv`` for the blends.

    ``splits`` maps split names to fractions of ``n_per_class`` (floats) or per-class counts
    (ints); each split uses its own random stream. The result loads with
    ``load_dataset("folder", root, split)``, soft labels included. Returns images written per split.
    """
    config = config or SynthConfig()
    root = Path(root)
    counts = _split_counts(n_per_class, splits or DEFAULT_SPLITS)
    written: dict[str, int] = {}
    soft_rows: list[list[str]] = []
    for split, per_class in counts.items():
        stream = SPLIT_STREAMS[split]
        for name in SYNTH_LABELS:
            (root / split / name).mkdir(parents=True, exist_ok=True)
        indices = _indices(per_class)
        rendered = _render_all(indices, seed, size, config, stream, workers)
        for i, (image, soft) in zip(indices, rendered, strict=True):
            rel = f"{split}/{SYNTH_LABELS[i % len(SYNTH_LABELS)]}/{i:06d}.png"
            ok, encoded = cv2.imencode(".png", image)  # no path reaches OpenCV (non-UTF-8 names crash it)
            if not ok:
                raise FeredgeError(f"cannot encode {root / rel}")
            (root / rel).write_bytes(encoded.tobytes())
            if soft is not None:
                soft_rows.append([split, rel, *(f"{v:.6f}" for v in soft)])
        written[split] = len(indices)
    with open(root / "soft_labels.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["split", "path", *SYNTH_LABELS])
        writer.writerows(soft_rows)
    return written


def write_fer2013_csv(
    path: str | Path,
    n_per_class: int,
    seed: int = 0,
    splits: Mapping[str, float | int] | None = None,
    config: SynthConfig | None = None,
    workers: int = 1,
) -> dict[str, int]:
    """Write the set as a FER2013 CSV (``emotion,pixels,Usage``; 48x48 gray; FER2013_7 indices).

    Soft labels cannot be expressed in this format; blended images keep their primary label.
    """
    config = config or SynthConfig()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    counts = _split_counts(n_per_class, splits or DEFAULT_SPLITS)
    written: dict[str, int] = {}
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["emotion", "pixels", "Usage"])
        for split, per_class in counts.items():
            if split not in FER2013_USAGE:
                raise FeredgeError(f"split '{split}' has no FER2013 Usage value")
            stream = SPLIT_STREAMS[split]
            indices = _indices(per_class)
            rendered = _render_all(indices, seed, 48, config, stream, workers)
            for i, (image, _) in zip(indices, rendered, strict=True):
                gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                label = i % len(SYNTH_LABELS)  # SYNTH_LABELS is FER2013_7: the index is the code
                writer.writerow([label, " ".join(map(str, gray.ravel().tolist())), FER2013_USAGE[split]])
            written[split] = len(indices)
    return written


def example_grid(
    seed: int = 0, rows: int = 3, size: int = 96, config: SynthConfig | None = None
) -> np.ndarray:
    """rows x 7 grid (one column per expression, FER2013_7 order) with the label names on top."""
    n = len(SYNTH_LABELS)
    header = 16
    grid = np.full((header + rows * size, n * size, 3), 255, np.uint8)
    for c, name in enumerate(SYNTH_LABELS):
        cv2.putText(grid, name, (c * size + 4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
        for r in range(rows):
            s = synth_sample(r * n + c, seed, size, config, stream=0)
            image = s.image if s.image.ndim == 3 else cv2.cvtColor(s.image, cv2.COLOR_GRAY2BGR)
            grid[header + r * size : header + (r + 1) * size, c * size : (c + 1) * size] = image
    return grid
