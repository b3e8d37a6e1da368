"""The parity gates: each precision's tolerance fails when broken, and FP16 near-ties do not count."""

from __future__ import annotations

import numpy as np
import pytest

from feredge.parity import compare_logits


def _logits(n: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(0, 0.5, (n, 7))
    logits[np.arange(n), rng.integers(0, 7, n)] += 3.0  # a clear winner on every face
    return logits


def test_fp32_fails_beyond_its_elementwise_tolerance():
    ref = _logits()
    assert compare_logits(ref, ref + 5e-5, runtime="x").passed
    result = compare_logits(ref, ref + 1e-3, runtime="x")
    assert not result.passed and "logits differ" in result.reason


def test_fp16_flip_of_a_near_tie_passes_but_a_decisive_flip_fails():
    ref = _logits()
    ref[0, :] = 0.0
    ref[0, 1], ref[0, 2] = 1.0, 0.99  # softmax margin ≈ 0.0034: a tie at fp16 precision
    flipped = ref.copy()
    flipped[0, 1], flipped[0, 2] = 0.99, 1.0  # moves each probability by < 0.004
    tie = compare_logits(ref, flipped, runtime="x", precision="fp16")
    assert tie.passed and tie.top1_agreement == pytest.approx(0.99) and tie.decisive == 99
    assert tie.decisive_agreement == 1.0

    decisive = ref.copy()
    i = 5
    top = int(ref[i].argmax())
    decisive[i] = ref[i]
    decisive[i, (top + 1) % 7] = ref[i, top] + 0.001  # a clear face now won by another class
    result = compare_logits(ref, decisive, runtime="x", precision="fp16")
    assert not result.passed  # the softmax gate and the agreement gate both catch it
    assert "softmax differs" in result.reason and "decisive faces" in result.reason


def test_int8_counts_every_face():
    ref = _logits()
    out = ref.copy()
    for i in range(3):  # 3 % of faces flipped: below the 98 % floor
        top = int(ref[i].argmax())
        out[i, (top + 1) % 7] = ref[i, top] + 1.0
    result = compare_logits(ref, out, runtime="x", precision="int8")
    assert not result.passed and result.decisive == 100 and result.top1_agreement == pytest.approx(0.97)
    assert result.reason.startswith("top-1 agreement 97.00% below")
