import cv2
import numpy as np
import pytest

from feredge.preprocess.detect import Box, create_detector
from feredge.preprocess.image_io import read_image
from feredge.preprocess.spec import DetectorSpec, PreprocessSpec
from feredge.preprocess.transform import preprocess_faces, square_crop


def test_haar_finds_the_astronaut_face(astronaut_path):
    image = read_image(astronaut_path).image
    boxes = create_detector(DetectorSpec()).detect(image)
    assert len(boxes) == 1
    box = boxes[0]
    # the face sits around x 175-270, y 65-160 in the 512x512 photo
    assert 150 < box.x < 200 and 50 < box.y < 90 and 80 < box.w < 120


@pytest.mark.parametrize("channels, expected_c", [("gray", 1), ("rgb", 3), ("bgr", 3)])
def test_normalisation_matches_the_spec_formula(channels, expected_c):
    image = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    spec = PreprocessSpec(input_size=(40, 40), channels=channels, scale=1 / 255, mean=(0.5,), std=(0.25,),
                          interpolation="nearest")
    batch = preprocess_faces(image, [Box(0, 0, 40, 40)], spec)
    assert batch.shape == (1, expected_c, 40, 40) and batch.dtype == np.float32
    if channels == "rgb":
        np.testing.assert_allclose(batch[0, 0], (image[:, :, 2] / 255 - 0.5) / 0.25, atol=1e-6)
    if channels == "bgr":
        np.testing.assert_allclose(batch[0, 0], (image[:, :, 0] / 255 - 0.5) / 0.25, atol=1e-6)
    if channels == "gray":
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        np.testing.assert_allclose(batch[0, 0], (gray / 255 - 0.5) / 0.25, atol=1e-6)


# BGR pixel → OpenCV's BT.601 gray level (0.299 R + 0.587 G + 0.114 B, rounded) → the default
# spec's (g / 255 - 0.5) / 0.5, written out as numbers.
DEFAULT_GRAY = [
    ((0, 0, 0), -1.0),  # black: 0
    ((255, 255, 255), 1.0),  # white: 255
    ((0, 0, 255), -0.403922),  # pure red: 76
    ((0, 255, 0), 0.176471),  # pure green: 150
    ((255, 0, 0), -0.772549),  # pure blue: 29
    ((128, 128, 128), 0.003922),  # mid gray: 128
]


def test_default_spec_normalises_gray_by_value():
    """The shipped default (64x64 gray, x / 255, mean 0.5, std 0.5): known pixels give known numbers."""
    spec = PreprocessSpec()
    assert (spec.channels, spec.input_size, spec.mean, spec.std) == ("gray", (64, 64), (0.5,), (0.5,))
    image = np.zeros((64, 64, 3), np.uint8)
    for k, (bgr, _) in enumerate(DEFAULT_GRAY):  # 10-px stripes (the last one 14 px), left to right
        image[:, k * 10 : 64 if k == len(DEFAULT_GRAY) - 1 else (k + 1) * 10] = bgr
    batch = preprocess_faces(image, [Box(0, 0, 64, 64)], spec)  # the whole image, at its own size
    assert batch.shape == (1, 1, 64, 64) and batch.dtype == np.float32
    for k, (_, expected) in enumerate(DEFAULT_GRAY):
        stripe = batch[0, 0, :, k * 10 : k * 10 + 10]
        np.testing.assert_allclose(stripe, expected, atol=1e-6)


def test_crop_that_leaves_the_image_is_edge_padded_and_square():
    image = np.full((50, 80, 3), 7, np.uint8)
    crop = square_crop(image, Box(70, 40, 20, 10), margin=0.5)
    assert crop.shape[:2] == (40, 40)
    assert (crop == 7).all()


def test_all_faces_of_an_image_form_one_batch():
    image = np.zeros((100, 200, 3), np.uint8)
    boxes = [Box(0, 0, 50, 50), Box(100, 10, 60, 60), Box(150, 50, 40, 40)]
    assert preprocess_faces(image, boxes, PreprocessSpec()).shape == (3, 1, 64, 64)
    assert preprocess_faces(image, [], PreprocessSpec()).shape == (0, 1, 64, 64)
