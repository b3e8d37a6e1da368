"""The synthetic FER set: determinism, balance, soft labels, round trips, detectability, separability."""

from __future__ import annotations

import csv
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from feredge.data import load_dataset
from feredge.data.synth import (
    SYNTH_LABELS,
    SynthConfig,
    generate,
    synth_sample,
    write_fer2013_csv,
    write_folder,
)
from feredge.labels import FER2013_7, RAFDB_7

# Measured on 700 images of 128 px (seed 0): 71 % have a frontal-cascade detection (80 % of the
# unoccluded ones). The threshold leaves room for sampling noise on the 140 images tested here.
HAAR_MIN_RATE = 0.5
# Measured: nearest class mean on HOG features, 78 % with 980 train / 700 test images and 64 % with
# the 350 / 140 used here (chance 14 %).
SEPARABILITY_MIN_ACC = 0.45


def test_same_seed_same_bytes_regardless_of_count() -> None:
    a = synth_sample(5, seed=3, size=64)
    b = synth_sample(5, seed=3, size=64)
    assert a.image.tobytes() == b.image.tobytes()
    small, large = generate(10, seed=3), generate(30, seed=3)
    for s, t in zip(small.samples, large.samples[:10], strict=True):
        assert s.image.tobytes() == t.image.tobytes() and s.label == t.label
    tail = generate(5, seed=3, start=20)
    assert tail.samples[0].image.tobytes() == large.samples[20].image.tobytes()
    other = synth_sample(5, seed=4, size=64)
    assert other.image.tobytes() != a.image.tobytes()
    assert synth_sample(5, seed=3, size=64, stream=1).image.tobytes() != a.image.tobytes()


def test_shapes_balance_and_soft_labels() -> None:
    ds = generate(350, seed=0, size=32)
    assert ds.labels == FER2013_7
    assert set(ds.class_counts().values()) == {50}
    assert ds.samples[0].image.shape == (32, 32, 3) and ds.samples[0].image.dtype == np.uint8
    blends = [s for s in ds.samples if s.soft is not None]
    assert 0.05 < len(blends) / len(ds) < 0.15
    for s in blends:
        assert float(s.soft.sum()) == pytest.approx(1.0, abs=1e-6)
        assert int(np.argmax(s.soft)) == s.label
        assert np.count_nonzero(s.soft) == 2
    gray = synth_sample(0, size=48, config=SynthConfig(gray=True)).image
    assert gray.shape == (48, 48)


def test_write_folder_reloads_through_folder_loader(tmp_path: Path) -> None:
    root = tmp_path / "synth"
    written = write_folder(
        root, n_per_class=20, size=40, seed=7, splits={"train": 0.6, "val": 0.2, "test": 0.2}
    )
    assert written == {"train": 84, "val": 28, "test": 28}
    train = load_dataset("folder", root, split="train", labels=FER2013_7)
    assert len(train) == 84 and set(train.class_counts().values()) == {12}
    for k in (0, 13, 50):
        sample = train.samples[k]
        index = int(Path(sample.source).stem)
        expected = synth_sample(index, seed=7, size=40, stream=1)
        assert FER2013_7[sample.label] == SYNTH_LABELS[expected.label]
        assert train.load_image(k).tobytes() == expected.image.tobytes()  # PNG is lossless
    with open(root / "soft_labels.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "expected some blended images among 140"
    for row in rows:
        assert sum(float(row[name]) for name in SYNTH_LABELS) == pytest.approx(1.0, abs=1e-4)
    everything = load_dataset("folder", root, labels=FER2013_7)
    soft = [s for s in everything.samples if s.soft is not None]
    assert len(soft) == len(rows)
    # Reloaded in RAF-DB order, labels and soft labels follow the names.
    raf = load_dataset("folder", root, split="val", labels=RAFDB_7)
    val = load_dataset("folder", root, split="val", labels=FER2013_7)
    for a, b in zip(raf.samples, val.samples, strict=True):
        assert RAFDB_7[a.label] == FER2013_7[b.label]
        if b.soft is not None:
            assert a.soft[RAFDB_7.index("happy")] == pytest.approx(b.soft[FER2013_7.index("happy")])


def test_write_fer2013_csv_reloads_through_fer2013_loader(tmp_path: Path) -> None:
    path = tmp_path / "fer2013.csv"
    written = write_fer2013_csv(
        path, n_per_class=10, seed=2, splits={"train": 0.8, "val": 0.1, "test": 0.1}, workers=2
    )
    assert written == {"train": 56, "val": 7, "test": 7}
    train = load_dataset("fer2013", path, split="train")
    assert len(train) == 56 and not train.skipped
    assert set(train.class_counts().values()) == {8}
    for k in (0, 9, 55):
        expected = synth_sample(k, seed=2, size=48, stream=1)
        assert train.samples[k].label == expected.label
        gray = cv2.cvtColor(expected.image, cv2.COLOR_BGR2GRAY)
        assert np.array_equal(train.load_image(k), gray)
    assert len(load_dataset("fer2013", path, split="test")) == 7


def test_haar_cascade_finds_faces_at_larger_sizes() -> None:
    cascade = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
    assert not cascade.empty()
    n = 140
    hits = 0
    for i in range(n):
        gray = cv2.cvtColor(synth_sample(i, seed=0, size=128).image, cv2.COLOR_BGR2GRAY)
        hits += len(cascade.detectMultiScale(gray, 1.1, 3, minSize=(32, 32))) > 0
    assert hits / n > HAAR_MIN_RATE, f"Haar detection rate {hits / n:.2f}"


def _hog(images: list[np.ndarray]) -> np.ndarray:
    hog = cv2.HOGDescriptor((64, 64), (16, 16), (8, 8), (8, 8), 9)
    return np.stack([hog.compute(cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)).ravel() for im in images])


def test_classes_are_separable_by_nearest_class_mean() -> None:
    """A nearest-class-mean rule on HOG features is far above the 1/7 chance level."""
    train = generate(350, seed=0, size=64, stream=1)
    test = generate(140, seed=0, size=64, stream=3)
    x_train, x_test = _hog([s.image for s in train.samples]), _hog([s.image for s in test.samples])
    y_train, y_test = train.targets, test.targets
    means = np.stack([x_train[y_train == c].mean(0) for c in range(len(SYNTH_LABELS))])
    pred = ((x_test[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)
    accuracy = float((pred == y_test).mean())
    assert accuracy > SEPARABILITY_MIN_ACC, f"nearest-class-mean accuracy {accuracy:.2f}"


def test_generation_speed() -> None:
    """CPU time, not wall time: the shared test machine may be busy with other jobs."""
    start = time.process_time()
    generate(200, seed=1, size=64)
    rate = 200 / max(time.process_time() - start, 1e-9)
    assert rate > 100, f"{rate:.0f} images/s per core"
