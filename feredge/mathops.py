"""Small NumPy operations the device side needs (the pipeline, the video loop) and verification reuses.

Why a module of its own: these lived in :mod:`feredge.parity`, so turning logits into
probabilities on a device imported the export-time comparison code. This module imports NumPy
only.
"""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of (N, K) logits, shifted by the row maximum so large logits do not overflow."""
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)
