"""The OpenCV path guard (tests/preprocess/opencv_guard.py) as a fixture for this folder's tests."""

from tests.preprocess.opencv_guard import opencv_guard  # noqa: F401
