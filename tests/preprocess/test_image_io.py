"""Every kind of bad image file a user hands us gets a one-line reason naming the file."""

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from feredge.preprocess.image_io import ImageError, iter_video, read_image


def _write_huge_png(path: Path, width: int, height: int) -> None:
    """A real, valid, all-black 8-bit gray PNG, streamed so the test never holds the pixels."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    compressor = zlib.compressobj(9)
    row = b"\x00" * (width + 1)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.fixture
def face_jpeg(tmp_path, astronaut_path) -> Path:
    path = tmp_path / "face.jpg"
    path.write_bytes(astronaut_path.read_bytes())
    return path


def test_zero_byte_file(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.jpg: empty file"):
        read_image(tmp_path / "empty.jpg")


def test_truncated_jpeg(tmp_path, face_jpeg):
    data = face_jpeg.read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match=r"cut\.jpg: truncated JPEG"):
        read_image(tmp_path / "cut.jpg")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("these are not pixels\n")
    with pytest.raises(ImageError, match=r"notes\.jpg: not a readable image"):
        read_image(tmp_path / "notes.jpg")


def test_unsupported_extension(tmp_path):
    (tmp_path / "face.gifx").write_bytes(b"GIF89a")
    with pytest.raises(ImageError, match=r"unsupported extension '\.gifx'"):
        read_image(tmp_path / "face.gifx")


def test_16_bit_png_is_converted_to_8_bit(tmp_path):
    image = np.full((32, 48), 40000, np.uint16)
    cv2.imwrite(str(tmp_path / "deep.png"), image)
    decoded = read_image(tmp_path / "deep.png").image
    assert decoded.dtype == np.uint8 and decoded.shape == (32, 48, 3)
    assert int(decoded[0, 0, 0]) == 40000 >> 8


def test_rgba_png_drops_alpha(tmp_path):
    image = np.zeros((20, 20, 4), np.uint8)
    image[..., 2] = 200
    image[..., 3] = 10
    cv2.imwrite(str(tmp_path / "alpha.png"), image)
    decoded = read_image(tmp_path / "alpha.png").image
    assert decoded.shape == (20, 20, 3) and int(decoded[0, 0, 2]) == 200


def test_grayscale_image_becomes_three_channels(tmp_path):
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((10, 12), 99, np.uint8))
    decoded = read_image(tmp_path / "gray.png").image
    assert decoded.shape == (10, 12, 3) and (decoded == 99).all()


def test_huge_image_is_refused_before_decoding(tmp_path):
    _write_huge_png(tmp_path / "huge.png", 20000, 20000)
    assert (tmp_path / "huge.png").stat().st_size < 2_000_000
    with pytest.raises(ImageError, match=r"huge\.png: image is 20000x20000 \(400 MP\), above the 100 MP limit"):
        read_image(tmp_path / "huge.png")


def test_large_image_is_downscaled_with_a_note(tmp_path):
    _write_huge_png(tmp_path / "big.png", 6000, 3000)
    decoded = read_image(tmp_path / "big.png")
    assert decoded.image.shape[:2] == (2048, 4096)
    assert decoded.scale == pytest.approx(4096 / 6000)
    assert "downscaled from 6000x3000" in decoded.note


def test_video_that_cannot_be_opened(tmp_path):
    (tmp_path / "clip.mp4").write_bytes(b"\x00" * 1000)
    with pytest.raises(ImageError, match=r"clip\.mp4: cannot open video"):
        list(iter_video(tmp_path / "clip.mp4"))


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        read_image(tmp_path / "nope.png")
