"""One cartoon face drawn from its facial-action parameters, with the occluders that move with it."""

from __future__ import annotations

import numpy as np

from feredge.data.synth.expressions import PARAM_INDEX
from feredge.data.synth.pen import Pen, curve_points

SKIN_LIGHT = np.array([196, 214, 245.0])  # BGR
SKIN_DARK = np.array([52, 78, 120.0])
HAIR_COLOURS = np.array([[20, 20, 25], [30, 45, 70], [60, 90, 140], [80, 150, 200], [160, 160, 165]], float)


def draw_face(pen: Pen, p: np.ndarray, rng: np.random.Generator, occlusion: str) -> None:
    """Draw head, hair, and the expression-bearing features in face units (face half-height = 1)."""
    g = {name: float(p[k]) for name, k in PARAM_INDEX.items()}
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
                curve_points(-0.35 * a, 0.35 * a, lambda x, y=y: y + 0.15 * (x / a) ** 2),
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

        pen.poly(curve_points(x_in, x_out, brow), hair * 0.6 + line * 0.4, brow_th)

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
            pen.poly(curve_points(-0.1, 0.1, lambda x, y=y: y - 0.3 * x * x), skin * 0.6, 0.02 * wr)
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
    top = curve_points(-mw, mw, upper_edge, 24)
    bottom = curve_points(-mw, mw, lower_edge, 24)
    if open_h + upper > 0.04:
        pen.fill(np.concatenate([top, bottom[::-1]]), (30, 25, 70))
        teeth = float(np.clip(g["teeth"], 0, 1))
        if teeth > 0.3:
            t_h = 0.45 * teeth * (open_h + upper)
            band = curve_points(-mw * 0.85, mw * 0.85, lambda x: np.minimum(upper_edge(x) + t_h, lower_edge(x)), 20)
            pen.fill(
                np.concatenate([curve_points(-mw * 0.85, mw * 0.85, upper_edge, 20), band[::-1]]), (225, 235, 240)
            )
    pen.poly(top + np.array([0, -lip_th * 0.5]), lip, lip_th + 0.01)
    pen.poly(bottom + np.array([0, lip_th * 0.6]), lip, lip_th * 1.3 + 0.01)
    pen.poly(curve_points(-mw, mw, centre, 24) if open_h + upper <= 0.04 else top, lip * 0.5, 0.02)

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


def draw_hand(img: np.ndarray, rng: np.random.Generator, cx: float, cy: float, unit: float) -> None:
    """A hand-like blob (palm + four fingers) over part of the lower or side face."""
    t = rng.random()
    skin = (1 - t) * SKIN_LIGHT + t * SKIN_DARK
    pen = Pen(
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
