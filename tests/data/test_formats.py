"""Loaders against small files written in exactly the real datasets' formats."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from feredge.data import FORMATS, FerDataset, Sample, load_dataset
from feredge.errors import FeredgeError
from feredge.labels import AFFECTNET_7, AFFECTNET_8, FER2013_7, RAFDB_7


def _pixels(value: int, n: int = 48 * 48) -> str:
    return " ".join([str(value)] * n)


def _write_fer2013(path: Path, rows: list[tuple[str, str, str]]) -> Path:
    lines = ["emotion,pixels,Usage"] + [f"{e},{p},{u}" for e, p, u in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


GOOD_FER_ROWS = [
    ("0", _pixels(10), "Training"),
    ("3", _pixels(20), "Training"),
    ("6", _pixels(30), "PublicTest"),
    ("5", _pixels(40), "PrivateTest"),
]


def test_fer2013_labels_splits_and_pixels(tmp_path: Path) -> None:
    csv_path = _write_fer2013(tmp_path / "fer2013.csv", GOOD_FER_ROWS)
    train = load_dataset("fer2013", csv_path, split="train")
    assert train.labels == FER2013_7
    assert [s.label for s in train.samples] == [0, 3]
    image = train.load_image(1)
    assert image.shape == (48, 48) and image.dtype == np.uint8 and int(image[0, 0]) == 20
    assert [s.label for s in load_dataset("fer2013", csv_path, split="val").samples] == [6]
    assert [s.label for s in load_dataset("fer2013", csv_path, split="PrivateTest").samples] == [5]
    everything = load_dataset("fer2013", csv_path)
    assert everything.split == "all" and len(everything) == 4
    assert everything.class_counts()["happy"] == 1
    # A folder holding fer2013.csv works too.
    assert len(load_dataset("fer2013", tmp_path)) == 4


def test_fer2013_bad_rows_are_skipped_with_reasons(tmp_path: Path) -> None:
    rows = [
        *GOOD_FER_ROWS,
        ("2", _pixels(1, 47 * 48), "Training"),  # bad pixel count
        ("7", _pixels(1), "Training"),  # label out of range
        ("x", _pixels(1), "Training"),  # non-integer label
        ("1", _pixels(300), "Training"),  # pixel out of range
        ("1", _pixels(1).replace("1", "a", 1), "Training"),  # non-integer pixel
        ("1", _pixels(1), "Validation"),  # unknown usage
    ]
    csv_path = _write_fer2013(tmp_path / "fer2013.csv", rows)
    with open(csv_path, "a") as handle:
        handle.write("1,2\n")  # too few fields
    ds = load_dataset("fer2013", csv_path)
    assert len(ds) == 4
    reasons = ds.skipped_summary()
    assert sum(reasons.values()) == 7
    assert "bad pixel count 2256 (expected 2304)" in reasons
    assert "emotion 7 out of range 0-6" in reasons
    assert "non-integer emotion" in reasons
    assert "pixel value out of 0-255" in reasons
    assert "non-integer pixel value" in reasons
    assert "unknown Usage 'Validation'" in reasons
    assert "expected 3 fields, got 2" in reasons
    assert all(src.startswith("fer2013.csv:") for src, _ in ds.skipped)


def test_fer2013_icml_header_with_spaces(tmp_path: Path) -> None:
    """Kaggle's icml_face_data.csv spells the header 'emotion, Usage, pixels'."""
    path = tmp_path / "icml_face_data.csv"
    path.write_text("emotion, Usage, pixels\n4,Training," + _pixels(5) + "\n")
    ds = load_dataset("fer2013", path)
    assert [s.label for s in ds.samples] == [4]


FERPLUS_HEADER = "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"


def test_ferplus_soft_labels_and_skips(tmp_path: Path) -> None:
    rows = [*GOOD_FER_ROWS, ("0", _pixels(50), "Training"), ("0", _pixels(60), "Training")]
    _write_fer2013(tmp_path / "fer2013.csv", rows)
    votes = [
        "Training,fer0000000.png,0,8,0,0,2,0,0,0,0,0",  # happy 0.8, angry 0.2
        "Training,fer0000001.png,4,0,0,6,0,0,0,0,0,0",  # sad majority
        "PublicTest,fer0000002.png,0,0,5,0,0,0,5,0,0,0",  # tie surprise/fear -> first in order
        "PrivateTest,fer0000003.png,1,0,0,0,0,0,0,0,0,9",  # NF majority -> skipped
        "Training,,0,0,0,0,0,0,0,0,0,0",  # no votes -> skipped
        "Training,fer0000005.png,2,0,0,0,0,0,0,1,7,0",  # unknown majority -> skipped
    ]
    (tmp_path / "fer2013new.csv").write_text(FERPLUS_HEADER + "\n" + "\n".join(votes) + "\n")
    ds = load_dataset("ferplus", tmp_path / "fer2013.csv")
    assert ds.labels == AFFECTNET_8
    assert len(ds) == 3
    first = ds.samples[0]
    assert AFFECTNET_8[first.label] == "happy"
    assert first.soft is not None and first.soft.shape == (8,)
    assert first.soft[AFFECTNET_8.index("happy")] == pytest.approx(0.8)
    assert first.soft[AFFECTNET_8.index("angry")] == pytest.approx(0.2)
    assert AFFECTNET_8[ds.samples[1].label] == "sad"
    assert AFFECTNET_8[ds.samples[2].label] == "surprise"
    for sample in ds.samples:
        assert float(sample.soft.sum()) == pytest.approx(1.0)
    reasons = ds.skipped_summary()
    assert reasons == {
        "NF (not a face) is the majority vote": 1,
        "no expression votes": 1,
        "unknown is the majority vote": 1,
    }
    assert len(load_dataset("ferplus", tmp_path, split="train")) == 2

    # Remapped to FER2013's 7 classes by name: contempt has no match.
    with pytest.raises(FeredgeError, match="contempt"):
        ds.remap(FER2013_7)
    fer7 = ds.remap(FER2013_7, drop_missing=True)
    assert FER2013_7[fer7.samples[0].label] == "happy"
    assert fer7.samples[0].soft[FER2013_7.index("angry")] == pytest.approx(0.2)


def test_ferplus_row_count_mismatch_raises(tmp_path: Path) -> None:
    _write_fer2013(tmp_path / "fer2013.csv", GOOD_FER_ROWS)
    (tmp_path / "fer2013new.csv").write_text(FERPLUS_HEADER + "\nTraining,a.png,1,0,0,0,0,0,0,0,0,0\n")
    with pytest.raises(FeredgeError, match="same order"):
        load_dataset("ferplus", tmp_path)


def _img(path: Path, value: int, size: int = 100) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), np.full((size, size, 3), value, np.uint8))


def _rafdb(root: Path) -> Path:
    lines = [
        "train_00001.jpg 1",  # surprise
        "train_00002.jpg 6",  # angry
        "train_00003.jpg 7",  # neutral
        "test_0001.jpg 4",  # happy
        "test_0002.jpg 8",  # out of range
        "test_0003.jpg 2",  # image missing
        "train_00004.jpg",  # malformed
    ]
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines) + "\n")
    for name, value in [("train_00001", 10), ("train_00002", 20), ("train_00003", 30), ("test_0001", 40)]:
        _img(root / "Image" / "aligned" / f"{name}_aligned.jpg", value)
    return root


def test_rafdb_labels_splits_and_remap_by_name(tmp_path: Path) -> None:
    root = _rafdb(tmp_path / "RAF-DB" / "basic")
    train = load_dataset("rafdb", root, split="train")
    assert train.labels == RAFDB_7
    assert [RAFDB_7[s.label] for s in train.samples] == ["surprise", "angry", "neutral"]
    assert train.load_image(0).shape == (100, 100, 3)
    test = load_dataset("rafdb", root, split="test")
    assert [RAFDB_7[s.label] for s in test.samples] == ["happy"]
    assert test.skipped_summary() == {
        "label '8' out of range 1-7": 1,
        "missing image": 1,
        "expected '<file> <label>'": 1,
    }
    # RAF-DB label 1 (surprise) is FER2013 index 5; angry is FER2013 index 0.
    fer = load_dataset("rafdb", root, split="train", labels=FER2013_7)
    assert fer.labels == FER2013_7
    assert [s.label for s in fer.samples] == [5, 0, 6]
    assert fer.class_counts() == {
        "angry": 1,
        "disgust": 0,
        "fear": 0,
        "happy": 0,
        "sad": 0,
        "surprise": 1,
        "neutral": 1,
    }
    with pytest.raises(FeredgeError, match="no samples in split 'val'"):
        load_dataset("rafdb", root, split="val")


AFFECTNET_HEADER = "subDirectory_filePath,face_x,face_y,face_width,face_height,expression,valence,arousal"


def _affectnet(root: Path) -> Path:
    rows = [
        "1/a.jpg,10,12,60,70,0,0.1,0.2",  # neutral
        "1/b.jpg,0,0,100,100,1,0.5,0.5",  # happy
        "2/c.jpg,5,5,50,50,7,-0.3,0.4",  # contempt
        "2/d.jpg,5,5,50,50,8,0,0",  # none
        "2/e.jpg,5,5,50,50,9,0,0",  # uncertain
        "2/f.jpg,5,5,50,50,10,0,0",  # no-face
        "2/g.jpg,5,5,50,50,11,0,0",  # out of range
        "2/missing.jpg,5,5,50,50,6,0,0",  # missing image
        "2/h.jpg,5,5,50,-1,6,0,0",  # bad box
        "2/i.jpg,5,5,50",  # malformed
    ]
    (root / "training.csv").parent.mkdir(parents=True, exist_ok=True)
    (root / "training.csv").write_text(AFFECTNET_HEADER + "\n" + "\n".join(rows) + "\n")
    (root / "validation.csv").write_text(AFFECTNET_HEADER + "\n2/j.jpg,1,2,30,40,6,0,0\n")
    for name in (
        "1/a.jpg",
        "1/b.jpg",
        "2/c.jpg",
        "2/d.jpg",
        "2/e.jpg",
        "2/f.jpg",
        "2/g.jpg",
        "2/h.jpg",
        "2/j.jpg",
    ):
        _img(root / "Manually_Annotated_Images" / name, 50)
    return root


def test_affectnet_views_boxes_and_skips(tmp_path: Path) -> None:
    root = _affectnet(tmp_path / "AffectNet")
    eight = load_dataset("affectnet8", root, split="train")
    assert eight.labels == AFFECTNET_8
    assert [AFFECTNET_8[s.label] for s in eight.samples] == ["neutral", "happy", "contempt"]
    assert eight.samples[0].box == (10, 12, 60, 70)
    assert eight.load_face(0).shape == (70, 60, 3)
    reasons = eight.skipped_summary()
    assert reasons["expression 8 (none) is not a class"] == 1
    assert reasons["expression 9 (uncertain) is not a class"] == 1
    assert reasons["expression 10 (no-face) is not a class"] == 1
    assert reasons["expression '11' out of range 0-10"] == 1
    assert reasons["missing image"] == 1
    assert reasons["bad face box"] == 1
    assert reasons["expected 8 fields, got 4"] == 1

    seven = load_dataset("affectnet7", root / "training.csv")
    assert seven.labels == AFFECTNET_7
    assert [AFFECTNET_7[s.label] for s in seven.samples] == ["neutral", "happy"]
    assert "expression 7 (contempt) not in the 7-class view" in seven.skipped_summary()

    val = load_dataset("affectnet", root, split="val")
    assert [AFFECTNET_8[s.label] for s in val.samples] == ["angry"]
    # Asking for FER2013 labels picks the 7-class view and remaps by name.
    fer = load_dataset("affectnet", root, split="train", labels=FER2013_7)
    assert [FER2013_7[s.label] for s in fer.samples] == ["neutral", "happy"]


def test_folder_layouts_and_label_validation(tmp_path: Path) -> None:
    root = tmp_path / "sfew"
    _img(root / "train" / "Angry" / "1.png", 10, 32)
    _img(root / "train" / "Happy" / "2.jpg", 20, 32)
    _img(root / "Val" / "Surprise" / "3.png", 30, 32)
    _img(root / "train" / "Confused" / "4.png", 30, 32)
    (root / "train" / "Happy" / "notes.txt").write_text("not an image")
    train = load_dataset("folder", root, split="train", labels=FER2013_7)
    assert sorted(FER2013_7[s.label] for s in train.samples) == ["angry", "happy"]
    assert train.skipped == [("train/Confused/4.png", "folder 'Confused' is not a label")]
    val = load_dataset("folder", root, split="val", labels=RAFDB_7)
    assert [RAFDB_7[s.label] for s in val.samples] == ["surprise"]
    with pytest.raises(FeredgeError, match="match no known label set"):
        load_dataset("folder", root)

    flat = tmp_path / "flat"
    _img(flat / "anger" / "a.png", 10, 32)
    _img(flat / "contempt" / "b.png", 10, 32)
    ds = load_dataset("folder", flat)  # guessed: contempt only exists in AffectNet-8
    assert ds.labels == AFFECTNET_8 and ds.split == "all"
    assert sorted(AFFECTNET_8[s.label] for s in ds.samples) == ["angry", "contempt"]


def test_errors_are_one_line_feredge_errors(tmp_path: Path) -> None:
    csv_path = _write_fer2013(tmp_path / "fer2013.csv", GOOD_FER_ROWS[:2])
    cases = [
        lambda: load_dataset("kinetics", csv_path),
        lambda: load_dataset("fer2013", tmp_path / "nope.csv"),
        lambda: load_dataset("fer2013", csv_path, split="test"),
        lambda: load_dataset("fer2013", csv_path, split="holdout"),
        lambda: load_dataset("rafdb", tmp_path),
        lambda: load_dataset("ferplus", csv_path),
    ]
    for case in cases:
        with pytest.raises(FeredgeError) as info:
            case()
        assert "\n" not in str(info.value)
    bad_header = tmp_path / "bad.csv"
    bad_header.write_text("label,pixels\n1,2\n")
    with pytest.raises(FeredgeError, match="missing CSV columns"):
        load_dataset("fer2013", bad_header)
    assert set(FORMATS) >= {"fer2013", "ferplus", "rafdb", "affectnet", "affectnet7", "affectnet8", "folder"}


def test_remap_round_trip_between_orders() -> None:
    samples = [Sample(source=str(k), label=k) for k in range(7)]
    raf = FerDataset(labels=RAFDB_7, samples=samples, name="raf")
    fer = raf.remap(FER2013_7)
    assert [FER2013_7[s.label] for s in fer.samples] == list(RAFDB_7)
    back = fer.remap(RAFDB_7)
    assert [s.label for s in back.samples] == list(range(7))
    # Every class is present once, so counts are equal whatever the order.
    assert set(fer.class_counts().values()) == {1}


def test_remap_drop_missing_counts() -> None:
    samples = [
        Sample(source="a", label=7),
        Sample(source="b", label=1),
        Sample(source="c", label=0, soft=np.array([0.5, 0, 0, 0, 0, 0, 0, 0.5], np.float32)),
    ]
    ds = FerDataset(labels=AFFECTNET_8, samples=samples)
    out = ds.remap(RAFDB_7, drop_missing=True)
    assert [RAFDB_7[s.label] for s in out.samples] == ["happy", "neutral"]
    assert out.skipped == [("a", "label 'contempt' not in target labels")]
    assert out.samples[1].soft[RAFDB_7.index("neutral")] == pytest.approx(1.0)


def test_data_layer_does_not_import_torch() -> None:
    code = "import sys, feredge.data, feredge.data.synth, feredge.data.augment; print('torch' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    assert result.stdout.strip() == "False"
