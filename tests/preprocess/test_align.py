"""Five-point alignment: landmarks land on the template, crops change measurably, 'none' is untouched."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from feredge.preprocess.align import aligned_crop, similarity, template
from feredge.preprocess.detect import Box
from feredge.preprocess.image_io import read_image
from feredge.preprocess.mtcnn import MTCNNDetector
from feredge.preprocess.spec import DetectorSpec, PreprocessSpec
from feredge.preprocess.transform import crop_faces, square_crop

SPEC = PreprocessSpec(crop_margin=0.1, channels="gray")


@pytest.fixture(scope="module")
def photo_and_rotated(astronaut_path):
    """The photo and a copy rotated 25° about the face, each with its MTCNN box (with landmarks)."""
    image = read_image(astronaut_path).image
    matrix = cv2.getRotationMatrix2D((225, 120), 25, 1.0)
    rotated = cv2.warpAffine(image, matrix, image.shape[1::-1], borderMode=cv2.BORDER_REPLICATE)
    detector = MTCNNDetector(DetectorSpec(name="mtcnn"))
    return (image, detector.detect(image)[0]), (rotated, detector.detect(rotated)[0])


def test_template_is_scaled_into_the_crop_and_shrunk_by_the_margin():
    t = template((112, 112))
    np.testing.assert_allclose(t[0], [38.2946, 51.6963], atol=1e-4)
    small = template((64, 64), margin=0.25)
    centre = np.array([32, 32])
    np.testing.assert_allclose(small - centre, (t * 64 / 112 - centre) / 1.5, atol=1e-4)


def test_landmarks_map_onto_the_template(photo_and_rotated):
    for image, box in photo_and_rotated:
        matrix = similarity(box.landmarks, (64, 64), 0.1)
        points = np.hstack([np.array(box.landmarks), np.ones((5, 1))]) @ matrix.T
        assert np.abs(points - template((64, 64), 0.1)).max() < 4.0
        assert aligned_crop(image, box.landmarks, (64, 48)).shape[:2] == (64, 48)


def test_alignment_undoes_rotation_that_the_plain_crop_keeps(photo_and_rotated):
    (image, box), (rotated, rbox) = photo_and_rotated
    aligned = SPEC.replace(alignment="five_point")
    plain_pair = crop_faces(image, [box], SPEC)[0].astype(float), crop_faces(rotated, [rbox], SPEC)[0].astype(float)
    aligned_pair = (crop_faces(image, [box], aligned)[0].astype(float),
                    crop_faces(rotated, [rbox], aligned)[0].astype(float))
    plain_gap = np.abs(plain_pair[0] - plain_pair[1]).mean()
    aligned_gap = np.abs(aligned_pair[0] - aligned_pair[1]).mean()
    assert aligned_gap < 0.6 * plain_gap  # aligned crops of the upright and rotated face agree far better
    assert np.abs(aligned_pair[1] - plain_pair[1]).mean() > 5  # and alignment measurably changed the crop


def test_alignment_none_ignores_landmarks_and_is_unchanged(photo_and_rotated):
    (image, box), _ = photo_and_rotated
    bare = Box(box.x, box.y, box.w, box.h, box.score)
    with_marks = crop_faces(image, [box], SPEC)
    np.testing.assert_array_equal(with_marks, crop_faces(image, [bare], SPEC))
    gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
    expected = cv2.resize(square_crop(gray, bare, 0.1), (64, 64), interpolation=cv2.INTER_AREA)
    np.testing.assert_array_equal(with_marks[0], expected)
    # five_point without landmarks (Haar boxes) falls back to the plain crop
    np.testing.assert_array_equal(crop_faces(image, [bare], SPEC.replace(alignment="five_point")), with_marks)


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError):
        similarity([(0, 0)] * 3, (64, 64))
