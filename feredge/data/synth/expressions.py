"""The expressions as facial-action parameters: one prototype per FER2013_7 label, blended and jittered.

Why parameters and not pictures: a model trained on these faces has to look at the regions a real
FER model looks at (mouth curve and opening, brow height, slope and pinch, eye opening, nose
wrinkle, ...); :mod:`~feredge.data.synth.face` turns a parameter vector into strokes.
"""

from __future__ import annotations

import numpy as np

from feredge.data.synth.config import SynthConfig
from feredge.labels import FER2013_7

SYNTH_LABELS = FER2013_7

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
PARAM_INDEX = {name: k for k, name in enumerate(PARAMS)}


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
