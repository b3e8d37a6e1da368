"""One synthetic image: a pure function of (seed, stream, index), whatever else is generated."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from feredge.data.synth.background import draw_background
from feredge.data.synth.config import SynthConfig
from feredge.data.synth.expressions import SYNTH_LABELS, expression_params
from feredge.data.synth.face import draw_face, draw_hand
from feredge.data.synth.pen import Pen
from feredge.errors import FeredgeError


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
    img = draw_background(rng, side, config)
    face_h = rng.uniform(*config.face_scale) * side  # chin-to-crown height
    unit = face_h / 2.0
    angle = rng.uniform(-config.max_rotation, config.max_rotation)
    cx = side / 2 + rng.uniform(-config.max_offset, config.max_offset) * side
    cy = side / 2 + rng.uniform(-config.max_offset, config.max_offset) * side + 0.05 * side
    occlusion = ""
    if rng.random() < config.occlusion_prob:
        occlusion = str(rng.choice(["glasses", "glasses", "mask", "bar", "hand", "hand"]))
    pen = Pen(img, cx, cy, unit * 0.92, angle)
    draw_face(pen, params, rng, occlusion)
    if occlusion == "hand":
        draw_hand(img, rng, cx, cy, unit)

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
