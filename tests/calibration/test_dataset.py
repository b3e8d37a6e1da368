"""Calibration sets: built by the deployment pipeline, class-balanced, and reported."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from feredge.calibration.dataset import build_calibration_set, validation_set
from feredge.calibration.report import REPORT_FILE, describe
from feredge.data.crops import make_crops
from feredge.errors import FeredgeError
from feredge.models import get_entry
from feredge.preprocess.transform import normalise

ENTRY = get_entry("mini_xception")


@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from feredge.data.synth import write_folder

    root = tmp_path_factory.mktemp("calib") / "synth"
    write_folder(root, 20, size=48, seed=0, splits={"train": 6, "val": 2})
    return root


def test_balanced_composition_and_report(synth: Path, tmp_path: Path) -> None:
    calib = build_calibration_set(synth, ENTRY.spec, ENTRY.labels, size=21)
    assert calib.fmt == "folder" and calib.split == "train"
    assert calib.batch.shape == (21, *ENTRY.spec.input_shape) and calib.batch.dtype == np.float32
    report = describe(calib, method="test")
    assert report.per_class == dict.fromkeys(ENTRY.labels, 3) and report.balanced
    assert len(report.sources) == 21 and all(s.startswith("train/") for s in report.sources)
    assert set(report.stats) == {"mean", "std", "min", "max", "percentiles"}
    written = json.loads(report.write(tmp_path).read_text())
    assert written["per_class"] == report.per_class and tmp_path.joinpath(REPORT_FILE).is_file()
    assert report.summary()["sources"] == 21


def test_same_pipeline_as_training(synth: Path) -> None:
    """The calibration tensors are exactly the training crops, normalised by the spec."""
    from feredge.data.formats import load_dataset

    calib = build_calibration_set(synth, ENTRY.spec, ENTRY.labels, size=1000)
    crops = make_crops(load_dataset("folder", synth, split="train", labels=ENTRY.labels), ENTRY.spec)
    index = [crops.sources.index(s) for s in calib.sources]
    np.testing.assert_array_equal(calib.batch, normalise(crops.crops[index], ENTRY.spec))


def test_balanced_when_classes_run_out(synth: Path) -> None:
    calib = build_calibration_set(synth, ENTRY.spec, ENTRY.labels, size=1000)
    assert describe(calib).per_class == dict.fromkeys(ENTRY.labels, 6)


def test_photo_folder_uses_the_detector(tmp_path: Path, astronaut_path: Path) -> None:
    shutil.copy(astronaut_path, tmp_path / "a.jpg")
    (tmp_path / "notes.txt").write_text("not an image")
    calib = build_calibration_set(tmp_path, ENTRY.spec, ENTRY.labels)
    assert calib.fmt == "images" and calib.labels is None and len(calib) >= 1
    assert calib.sources[0].startswith("a.jpg#")
    assert describe(calib).per_class is None


def test_npy_and_reference(tmp_path: Path) -> None:
    data = np.zeros((5, *ENTRY.spec.input_shape), np.float32)
    np.save(tmp_path / "faces.npy", data)
    assert len(build_calibration_set(tmp_path / "faces.npy", ENTRY.spec, ENTRY.labels)) == 5
    ref = build_calibration_set("reference", ENTRY.spec, ENTRY.labels, size=10, reference=data)
    assert ref.fmt == "reference" and len(ref) == 5
    np.save(tmp_path / "bad.npy", np.zeros((2, 3, 8, 8), np.float32))
    with pytest.raises(FeredgeError, match="shape"):
        build_calibration_set(tmp_path / "bad.npy", ENTRY.spec, ENTRY.labels)


def test_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(FeredgeError, match="no such file") as info:
        build_calibration_set(tmp_path / "missing", ENTRY.spec, ENTRY.labels)
    assert "\n" not in str(info.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(FeredgeError, match="no images"):
        build_calibration_set(tmp_path / "empty", ENTRY.spec, ENTRY.labels)


def test_validation_set_needs_labels(synth: Path, tmp_path: Path) -> None:
    assert validation_set(synth, ENTRY.spec, ENTRY.labels).labels is not None
    with pytest.raises(FeredgeError, match="--max-drop needs labelled validation data"):
        validation_set(tmp_path, ENTRY.spec, ENTRY.labels)


def test_fewer_photos_than_asked_is_one_warning_and_notes_are_not_photos(
        tmp_path: Path, astronaut_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    for k in range(3):
        shutil.copyfile(astronaut_path, photos / f"face{k}.jpg")
    (photos / "readme.txt").write_text("where these came from")  # not an image: not read, not a failure
    calib = build_calibration_set(photos, ENTRY.spec, ENTRY.labels, size=256)
    assert len(calib) == 3 and calib.fmt == "images"
    assert calib.skipped == []
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"feredge: warning: --calib {photos}: 3 calibration face(s) in 3 photo(s), fewer than the 256 "
                   "asked (--calib-size); INT8 ranges from few faces may clip real ones"]
    build_calibration_set(photos, ENTRY.spec, ENTRY.labels, size=3)
    assert capsys.readouterr().err == ""  # as many as asked: nothing to say
