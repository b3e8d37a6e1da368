"""Hostile dataset files (issue 14, class 5): bad rows and bad images are skipped items, good ones load.

Corpus written here: FER2013 rows with a pixel that overflows int64, out of 0-255, bytes that are
not UTF-8, a whole latin-1 CSV; a class-per-folder tree holding a truncated JPEG and PNG, a PNG
header claiming 20000x20000, a 16-bit RGBA PNG that decodes to ~760 MiB and a good face under a
non-UTF-8 name; RAF-DB and AffectNet lists with the same kinds of damage.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from feredge.data import load_dataset
from feredge.errors import FeredgeError
from feredge.labels import FER2013_7
from feredge.preprocess.image_io import display_path
from tests.preprocess import hostile_corpus as corpus

ROW = ",".join(["{emotion}", "{pixels}", "Training"])


def _pixels(value: int | str) -> str:
    return " ".join([str(value)] * (48 * 48))


def _fer_csv(path: Path, rows: list[bytes]) -> Path:
    path.write_bytes(b"emotion,pixels,Usage\n" + b"".join(r + b"\n" for r in rows))
    return path


def _row(emotion: int, pixels: str) -> bytes:
    return ROW.format(emotion=emotion, pixels=pixels).encode("utf-8")


def test_fer2013_hostile_rows_are_skipped_with_file_and_line(tmp_path):
    overflow = _pixels(1).replace("1", "9" * 30, 1)  # > int64: OverflowError in numpy
    rows = [
        _row(0, _pixels(10)),  # line 2: good
        _row(1, overflow),  # line 3
        _row(2, _pixels(-1)),  # line 4
        _row(3, _pixels(256)),  # line 5
        _row(4, _pixels(1)).replace(b"Training", b"Train\xffing"),  # line 6: not UTF-8
        _row(5, _pixels(50)),  # line 7: good
    ]
    data = load_dataset("fer2013", _fer_csv(tmp_path / "fer2013.csv", rows), split="train")
    assert [s.label for s in data.samples] == [0, 5]
    assert [int(data.load_image(i)[0, 0]) for i in range(2)] == [10, 50]
    assert data.skipped == [
        ("fer2013.csv:3", "pixel value out of 0-255"),
        ("fer2013.csv:4", "pixel value out of 0-255"),
        ("fer2013.csv:5", "pixel value out of 0-255"),
        ("fer2013.csv:6", "not UTF-8 text"),
    ]


def test_fer2013_latin1_csv_is_one_line_naming_the_reason(tmp_path):
    rows = [_row(0, _pixels(10)).replace(b"Training", "Tr\u00e4ining".encode("latin-1"))] * 3
    with pytest.raises(FeredgeError) as info:
        load_dataset("fer2013", _fer_csv(tmp_path / "fer2013.csv", rows))
    message = str(info.value)
    assert "\n" not in message and "3 skipped: 3x not UTF-8 text" in message


def test_non_utf8_header_is_one_line(tmp_path):
    path = tmp_path / "fer2013.csv"
    path.write_bytes(b"emo\xfftion,pixels,Usage\n0,1,Training\n")
    with pytest.raises(FeredgeError, match=r"missing CSV columns \['emotion'\] \(found \['emo\\\\xfftion'") as info:
        load_dataset("fer2013", path)
    str(info.value).encode("utf-8")


def _good_face(value: int) -> bytes:
    ok, buffer = cv2.imencode(".png", np.full((32, 32, 3), value, np.uint8))
    assert ok
    return buffer.tobytes()


@pytest.fixture
def hostile_folder(tmp_path: Path, astronaut_path: Path) -> Path:
    root = tmp_path / "faces"
    corpus.write(root / "happy" / "good.png", _good_face(40))
    corpus.write(root / "happy" / corpus.non_utf8_name("odd", ".png"), _good_face(80))
    corpus.write(root / "sad" / "cut.jpg", corpus.cut(astronaut_path.read_bytes()))
    corpus.write(root / "sad" / "cut.png", corpus.cut(_good_face(10)))
    corpus.write(root / "sad" / "huge.png", corpus.png_bytes(20000, 20000, pixels=False))
    corpus.write(root / "angry" / "deep.png", corpus.png_bytes(10000, 9900, depth=16, colour=6))
    corpus.write(root / "angry" / "text.jpg", b"not a jpeg")
    return root


def test_folder_loader_reports_bad_images_and_keeps_good_ones(hostile_folder, monkeypatch, opencv_guard):
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("loading a dataset must not decode images")

    with monkeypatch.context() as patch:
        patch.setattr(cv2, "imdecode", refuse)
        data = load_dataset("folder", hostile_folder, labels=FER2013_7)
    odd = display_path("happy/odd" + corpus.NON_UTF8 + ".png")
    assert sorted(s.source for s in data.samples) == ["happy/good.png", odd]
    assert odd == "happy/odd\\xff\\xfe.png"
    assert dict(data.skipped) == {
        "sad/cut.jpg": "truncated JPEG (no end-of-image marker)",
        "sad/cut.png": "truncated PNG (no IEND chunk)",
        "sad/huge.png": "image is 20000x20000 (400 MP), above the 100 MP limit; downscale it first",
        "angry/deep.png": "image is 10000x9900 with 4 channel(s) of 16-bit samples, 755 MiB decoded, above the "
                          "512 MiB limit; downscale it or convert it to 8 bits first",
        "angry/text.jpg": "not a readable image (the contents are not image data)",
    }
    by_source = {s.source: i for i, s in enumerate(data.samples)}
    assert int(data.load_image(by_source[odd])[0, 0, 0]) == 80  # decoded through bytes, guard silent


def test_training_crops_of_a_hostile_folder(hostile_folder, opencv_guard):
    from feredge.data.crops import make_crops
    from feredge.models.registry import get_entry

    data = load_dataset("folder", hostile_folder, labels=FER2013_7)
    crops = make_crops(data, get_entry("mini_xception").spec)
    assert len(crops) == 2 and len(crops.skipped) == 5


def test_image_damaged_after_loading_is_skipped_by_the_decoder(tmp_path):
    """Between load and crop the file changes: the decoder applies the same checks and refuses it."""
    from feredge.data.crops import make_crops
    from feredge.models.registry import get_entry

    root = tmp_path / "faces"
    corpus.write(root / "happy" / "a.png", _good_face(40))
    corpus.write(root / "happy" / "b.png", _good_face(60))
    data = load_dataset("folder", root, labels=FER2013_7)
    (root / "happy" / "b.png").write_bytes(corpus.cut(_good_face(60)))
    crops = make_crops(data, get_entry("mini_xception").spec)
    assert crops.sources == ["happy/a.png"]
    assert crops.skipped == [("happy/b.png", "happy/b.png: truncated PNG (no IEND chunk)")]


def test_rafdb_non_utf8_line_and_truncated_image(tmp_path, astronaut_path):
    root = tmp_path / "basic"
    (root / "EmoLabel").mkdir(parents=True)
    (root / "EmoLabel" / "list_patition_label.txt").write_bytes(
        b"train_00001.jpg 4\ntrain_\xff0002.jpg 5\ntrain_00003.jpg 6\n")
    corpus.write(root / "Image" / "aligned" / "train_00001_aligned.jpg", astronaut_path.read_bytes())
    corpus.write(root / "Image" / "aligned" / "train_00003_aligned.jpg", corpus.cut(astronaut_path.read_bytes()))
    data = load_dataset("rafdb", root, split="train")
    assert [s.source for s in data.samples] == ["train_00001.jpg"]
    assert data.skipped == [("list_patition_label.txt:2", "not UTF-8 text"),
                            ("list_patition_label.txt:3", "truncated JPEG (no end-of-image marker)")]


def test_affectnet_paths_leaving_the_root_and_bad_images(tmp_path):
    root = tmp_path / "AffectNet"
    images = root / "Manually_Annotated_Images"
    corpus.write(images / "1" / "a.png", _good_face(40))
    corpus.write(images / "1" / "huge.png", corpus.png_bytes(20000, 20000, pixels=False))
    corpus.write(tmp_path / "outside.png", _good_face(40))
    header = "subDirectory_filePath,face_x,face_y,face_width,face_height,expression\n"
    rows = ["1/a.png,0,0,32,32,1", "../../outside.png,0,0,32,32,1", f"{tmp_path}/outside.png,0,0,32,32,1",
            "1/huge.png,0,0,32,32,1"]
    (root / "training.csv").write_text(header + "\n".join(rows) + "\n")
    data = load_dataset("affectnet8", root)
    assert [s.source for s in data.samples] == ["1/a.png"]
    assert data.skipped == [("training.csv:3", "image path leaves the image root"),
                            ("training.csv:4", "image path leaves the image root"),
                            ("training.csv:5", "image is 20000x20000 (400 MP), above the 100 MP limit; "
                                               "downscale it first")]


def test_soft_labels_that_are_not_finite_are_skipped(tmp_path):
    root = tmp_path / "faces"
    corpus.write(root / "happy" / "a.png", _good_face(40))
    corpus.write(root / "sad" / "b.png", _good_face(40))
    (root / "soft_labels.csv").write_text("path,happy,sad\nhappy/a.png,nan,1\nsad/b.png,0.2,0.8\n")
    data = load_dataset("folder", root, labels=("happy", "sad"))
    assert data.skipped == [("soft_labels.csv:2", "soft label is not a distribution")]
    soft = {s.source: s.soft for s in data.samples}
    assert soft["happy/a.png"] is None and soft["sad/b.png"] == pytest.approx([0.2, 0.8])
