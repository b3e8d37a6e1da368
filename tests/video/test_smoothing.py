"""EMA smoothing steadies labels; the track history stays compact."""

from __future__ import annotations

import numpy as np
import pytest

from feredge.errors import FeredgeError
from feredge.video.smoothing import EmaSmoother, TrackHistory


def test_ema_formula_and_alpha_one_is_identity():
    s = EmaSmoother(alpha=0.25)
    s.update(np.array([1.0, 0.0]))
    out = s.update(np.array([0.0, 1.0]))
    np.testing.assert_allclose(out, [0.75, 0.25])
    raw = EmaSmoother(alpha=1.0)
    raw.update(np.array([1.0, 0.0]))
    np.testing.assert_allclose(raw.update(np.array([0.2, 0.8])), [0.2, 0.8])
    for bad in (0.0, -0.1, 1.5):
        with pytest.raises(FeredgeError):
            EmaSmoother(alpha=bad)


def _label_changes(alpha: float) -> int:
    """A face that is 'happy' with noisy probabilities that often put 'neutral' on top for a frame."""
    rng = np.random.default_rng(0)
    smoother, history = EmaSmoother(alpha), TrackHistory(0, 0)
    for frame in range(200):
        p = np.array([0.55, 0.45]) + rng.normal(0, 0.12, 2)
        p = np.clip(p, 0.01, None)
        value = smoother.update(p / p.sum())
        history.observe(frame, ("happy", "neutral")[int(np.argmax(value))])
    return len(history.timeline) - 1


def test_smoothing_removes_flicker():
    raw, smooth = _label_changes(1.0), _label_changes(0.2)
    assert raw > 30
    assert smooth < raw / 4


def test_history_timeline_and_dominant():
    h = TrackHistory(10, 10)
    for frame, label in enumerate(["happy"] * 5 + ["sad"] * 2 + ["happy"] * 3, start=10):
        h.observe(frame, label)
    assert h.timeline_text() == "10:happy;15:sad;17:happy"
    assert h.dominant == ("happy", 0.8)
    assert h.frames_seen == 10 and h.last_frame == 19
