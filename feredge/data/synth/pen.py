"""Anti-aliased OpenCV strokes in face coordinates, posed by one similarity transform."""

from __future__ import annotations

import math

import cv2
import numpy as np


class Pen:
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
            clip_colour(color),
            th,
            cv2.LINE_AA,
            self.SHIFT,
        )

    def poly(self, pts, color, thickness: float, closed: bool = False) -> None:
        th = max(1, round(thickness * self.unit))
        cv2.polylines(self.img, [self._fx(pts)], closed, clip_colour(color), th, cv2.LINE_AA, self.SHIFT)

    def fill(self, pts, color) -> None:
        cv2.fillPoly(self.img, [self._fx(pts)], clip_colour(color), cv2.LINE_AA, self.SHIFT)

    def px(self, size: float) -> float:
        """A face-unit length in pixels (for line thickness)."""
        return size * self.unit


def clip_colour(color) -> tuple[float, float, float]:
    b, g, r = (min(255.0, max(0.0, float(v))) for v in color)
    return (b, g, r)


def curve_points(x0: float, x1: float, fn, n: int = 16) -> np.ndarray:
    xs = np.linspace(x0, x1, n)
    return np.stack([xs, fn(xs)], axis=1)
