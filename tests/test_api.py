"""The three-line Python API: paths, arrays (BGR, gray, BGRA), PIL images, and boxes you already have."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

import feredge
from feredge.errors import FeredgeError


@pytest.fixture(scope="module")
def model(default_bundle: Path):
    with feredge.load(default_bundle, runtime="onnxruntime") as recognizer:
        yield recognizer


def test_three_lines_from_a_photo_to_its_face(model, astronaut_path: Path) -> None:
    faces = model.predict(astronaut_path)
    assert len(faces) == 1 and faces[0].label == "happy" and faces[0].probability > 0.9
    assert faces[0].emotions == faces[0].probabilities and abs(sum(faces[0].emotions.values()) - 1) < 1e-4
    assert model.predict(str(astronaut_path))[0].box == faces[0].box


def test_arrays_gray_alpha_and_pil_give_the_same_face(model, astronaut_path: Path) -> None:
    from PIL import Image

    bgr = cv2.imread(str(astronaut_path))
    reference = model.predict(bgr)[0]
    assert reference.label == "happy"
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    bgra = cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA)
    pil = Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    for image in (bgra, pil):  # the same colour pixels: the same face
        face = model.predict(image)[0]
        assert face.label == reference.label and face.box == reference.box
        assert face.probability == pytest.approx(reference.probability, abs=1e-3)
    for image in (gray, pil.convert("L")):  # the detector sees grey, not colour: a box within a few pixels
        face = model.predict(image)[0]
        assert face.label == reference.label
        assert max(abs(a - b) for a, b in zip(face.box.as_list(), reference.box.as_list(), strict=True)) <= 4
        assert face.probability == pytest.approx(reference.probability, abs=0.02)


def test_given_boxes_are_classified_without_detecting(model, astronaut_path: Path) -> None:
    detected = model.predict(astronaut_path)[0]
    x, y, w, h = detected.box.as_list()
    given = model.predict(astronaut_path, boxes=[(x, y, w, h), (0, 0, 64, 64)])
    assert [f.box.as_list() for f in given] == [[x, y, w, h], [0, 0, 64, 64]]
    assert given[0].label == detected.label and given[0].probability == pytest.approx(detected.probability, abs=1e-5)
    assert model.predict(astronaut_path, boxes=[]) == []
    assert [len(f) for f in model.predict_batch([astronaut_path, cv2.imread(str(astronaut_path))])] == [1, 1]


@pytest.mark.parametrize("bad, match", [(42, "a path, a numpy array or a PIL image"),
                                        ("no/such/photo.jpg", "no such file")])
def test_bad_images_are_one_line_errors(model, bad: object, match: str) -> None:
    with pytest.raises(FeredgeError, match=match):
        model.predict(bad)


@pytest.mark.parametrize("box", [(1, 2, 3), (0, 0, 0, 10), (0, 0, 10, -1)])
def test_bad_boxes_are_one_line_errors(model, astronaut_path: Path, box: tuple) -> None:
    with pytest.raises(FeredgeError, match="box"):
        model.predict(astronaut_path, boxes=[box])


def test_import_feredge_loads_no_runtime() -> None:
    import subprocess
    import sys

    code = "import sys, feredge; assert 'feredge.runtimes' not in sys.modules; assert callable(feredge.load)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0
