"""Per-track temporal smoothing of expression probabilities, and the track's expression history.

Why: a per-frame classifier flickers between neighbouring expressions on near-identical frames
(a blink, a compression artefact). An exponential moving average of the probability vectors,
``s ← α·p + (1-α)·s``, keeps the label steady while still following a real change within a few
model runs: ``α = 1`` is no smoothing; ``α = 0.5`` follows a switch after ~2 runs. The average is
updated only when the model ran for the track, so skipping frames does not decay it.

:class:`TrackHistory` keeps what the per-track summary needs in constant memory per track: label
counts and the timeline of label *changes* (not one entry per frame).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from feredge.errors import FeredgeError


@dataclass
class EmaSmoother:
    alpha: float = 0.5
    value: np.ndarray | None = None
    updates: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha <= 1.0:
            raise FeredgeError(f"smoothing alpha must be in (0, 1], got {self.alpha}")

    def update(self, probabilities: np.ndarray) -> np.ndarray:
        p = np.asarray(probabilities, np.float64)
        self.value = p.copy() if self.value is None else self.alpha * p + (1.0 - self.alpha) * self.value
        self.updates += 1
        return self.value


@dataclass
class TrackHistory:
    """Frames per label and the (frame, label) points where the smoothed label changed."""

    first_frame: int
    last_frame: int
    counts: Counter[str] = field(default_factory=Counter)
    timeline: list[tuple[int, str]] = field(default_factory=list)
    inferences: int = 0

    def observe(self, frame: int, label: str) -> None:
        self.last_frame = frame
        self.counts[label] += 1
        if not self.timeline or self.timeline[-1][1] != label:
            self.timeline.append((frame, label))

    @property
    def frames_seen(self) -> int:
        return sum(self.counts.values())

    @property
    def dominant(self) -> tuple[str, float]:
        if not self.counts:
            return "", 0.0
        label, count = self.counts.most_common(1)[0]
        return label, count / self.frames_seen

    def timeline_text(self) -> str:
        return ";".join(f"{frame}:{label}" for frame, label in self.timeline)
