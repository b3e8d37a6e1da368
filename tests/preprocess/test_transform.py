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
