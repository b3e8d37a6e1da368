"""Augmentations: shapes, determinism, what each step changes; balanced sampling weights."""

from __future__ import annotations

import numpy as np
import pytest

from feredge.data.augment import (
    AugmentConfig,
    Augmenter,
    balanced_sample_weights,
    class_loss_weights,
    color_jitter,
    hflip,
    random_erasing,
    random_resized_crop,
    random_shift,
)
from feredge.errors import FeredgeError


def _image(gray: bool = False) -> np.ndarray:
    rng = np.random.default_rng(0)
    shape = (40, 48) if gray else (40, 48, 3)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def test_seeded_by_index_and_epoch() -> None:
    image = _image()
    aug = Augmenter(AugmentConfig(erase_p=0.5, shift=0.1), seed=3)
    a = aug(image, index=7, epoch=1)
    b = Augmenter(AugmentConfig(erase_p=0.5, shift=0.1), seed=3)(image, index=7, epoch=1)
    assert a.tobytes() == b.tobytes()
    assert aug(image, index=7, epoch=2).tobytes() != a.tobytes()
    assert aug(image, index=8, epoch=1).tobytes() != a.tobytes()
    assert a.shape == image.shape and a.dtype == np.uint8
    assert aug(_image(gray=True), index=0).shape == (40, 48)


def test_individual_steps() -> None:
    image = _image()
    assert np.array_equal(hflip(hflip(image)), image)
    assert np.array_equal(hflip(image)[:, 0], image[:, -1])
    rng = np.random.default_rng(1)
    assert random_resized_crop(image, rng).shape == image.shape
    assert random_shift(image, rng, 0.2).shape == image.shape
    erased = random_erasing(image, rng, value=0)
    changed = np.any(erased != image, axis=2)
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 0
    # The erased region is one rectangle filled with the constant.
    assert np.all(erased[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] == 0)
    brighter = color_jitter(np.full((8, 8, 3), 100, np.uint8), np.random.default_rng(2), 0.5, 0.0, 0.0)
    assert len(np.unique(brighter)) == 1 and int(brighter[0, 0, 0]) != 100


def test_disabled_config_is_identity_copy() -> None:
    image = _image()
    off = AugmentConfig(hflip=0, crop_p=0, shift=0, erase_p=0, brightness=0, contrast=0, saturation=0)
    out = Augmenter(off)(image, index=0)
    assert np.array_equal(out, image) and out is not image


def test_eac_pair_is_erased_image_and_its_flip() -> None:
    image = _image()
    aug = Augmenter(AugmentConfig(hflip=0, crop_p=0, brightness=0, contrast=0, saturation=0), seed=0)
    erased, flipped = aug.eac_pair(image, index=3)
    assert np.array_equal(flipped, erased[:, ::-1])
    assert not np.array_equal(erased, image)


def test_balanced_sample_weights() -> None:
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1 + [-1] * 5)
    w = balanced_sample_weights(labels, num_classes=4)
    assert w.sum() == pytest.approx(1.0)
    for c in range(3):
        assert w[labels == c].sum() == pytest.approx(1 / 3)
    assert np.all(w[labels == -1] == 0)
    draws = np.random.default_rng(0).choice(len(labels), size=30000, p=w)
    share = np.bincount(labels[draws], minlength=3) / 30000
    assert np.allclose(share, 1 / 3, atol=0.02)
    cw = class_loss_weights(labels, 4)
    assert cw[3] == 0 and cw[2] > cw[1] > cw[0]
    with pytest.raises(FeredgeError):
        balanced_sample_weights([5], num_classes=3)
    with pytest.raises(FeredgeError):
        balanced_sample_weights([-1, -1])


def test_torch_view_batches_with_augmentation() -> None:
    """The thin torch adapter: CHW float tensors in [0, 1], labels, soft labels, fixed size."""
    torch = pytest.importorskip("torch")
    from feredge.data.synth import generate

    ds = generate(14, seed=0, size=40)
    view = ds.to_torch(transform=Augmenter(seed=1), with_soft=True, size=32)
    batch = next(iter(torch.utils.data.DataLoader(view, batch_size=7)))
    x, y, soft = batch
    assert x.shape == (7, 3, 32, 32) and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert y.tolist() == list(range(7))
    assert torch.allclose(soft.sum(1), torch.ones(7))
