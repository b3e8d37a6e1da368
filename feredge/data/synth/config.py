"""The nuisance ranges of the synthetic set (identity, pose, lighting, blur, noise, clutter, occluders)."""

from __future__ import annotations

from dataclasses import dataclass


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

