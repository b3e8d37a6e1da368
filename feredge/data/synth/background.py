"""The scene behind a face: a lighting ramp and random clutter shapes."""

from __future__ import annotations

import cv2
import numpy as np

from feredge.data.synth.config import SynthConfig
from feredge.data.synth.pen import clip_colour


def draw_background(rng: np.random.Generator, side: int, config: SynthConfig) -> np.ndarray:
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
        colour = clip_colour(rng.uniform(0, 255, size=3))
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
