"""The hostile image corpus (issue 14, classes 1 and 5): each file gives one exact line or a correct image.

Every file is written by the test: non-UTF-8 names, truncated JPEG/PNG/WebP/BMP, a PNG header
claiming 20000x20000 without pixel data, a small 16-bit RGBA PNG that decodes to ~760 MiB.
The probe (datasets, at load time) and the decoder (everything) must give the same answer.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from feredge.errors import FeredgeError
from feredge.preprocess import image_io
from feredge.preprocess.image_io import (
    MAX_DECODED_BYTES,
    ImageError,
    OpenCVName,
    decode_image,
    display_path,
    probe_image,
    read_image,
    write_image,
)
from tests.preprocess import hostile_corpus as corpus
from tests.preprocess.opencv_guard import NON_UTF8, install


@pytest.fixture
def no_decode(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if anything is decoded: refusals must come from the header, before OpenCV."""

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("cv2.imdecode was called for a file that must be refused before decoding")

    monkeypatch.setattr(cv2, "imdecode", refuse)


def test_the_guard_itself_refuses_a_non_utf8_path(monkeypatch, tmp_path):
    guard = install(monkeypatch)
    with pytest.raises(AssertionError, match=r"non-UTF-8 path reached cv2\.imread"):
        cv2.imread(str(tmp_path / f"x{NON_UTF8}.png"))
    assert guard.offences and cv2.imread(str(tmp_path / "absent.png")) is None  # a valid name passes through


HOSTILE = {
    "truncated.jpg": (lambda face: corpus.cut(face), "truncated JPEG (no end-of-image marker)"),
    "decoy_eoi.jpg": (lambda face: corpus.cut(corpus.jpeg_with_decoy_eoi(face), 0.6),
                      "truncated JPEG (no end-of-image marker)"),
    "truncated.png": (lambda _: corpus.cut(corpus.small_png()), "truncated PNG (no IEND chunk)"),
    "no_iend.png": (lambda _: corpus.small_png()[:-12], "truncated PNG (no IEND chunk)"),
    "header_only_20000.png": (lambda _: corpus.png_bytes(20000, 20000, pixels=False),
                              "image is 20000x20000 (400 MP), above the 100 MP limit; downscale it first"),
    "deep_rgba.png": (lambda _: corpus.png_bytes(10000, 9900, depth=16, colour=6),
                      "image is 10000x9900 with 4 channel(s) of 16-bit samples, 755 MiB decoded, above the "
                      "512 MiB limit; downscale it or convert it to 8 bits first"),
    "text.png": (lambda _: b"this is not an image\n", "not a readable image (the contents are not image data)"),
    "empty.jpg": (lambda _: b"", "empty file (0 bytes)"),
}


@pytest.fixture
def face_bytes(astronaut_path: Path) -> bytes:
    return astronaut_path.read_bytes()


@pytest.mark.parametrize("name", sorted(HOSTILE))
@pytest.mark.parametrize("check", [probe_image, decode_image, read_image], ids=lambda f: f.__name__)
def test_hostile_file_is_one_exact_line(name, check, tmp_path, face_bytes, no_decode, opencv_guard):
    make, reason = HOSTILE[name]
    path = corpus.write(tmp_path / corpus.non_utf8_name(Path(name).stem, Path(name).suffix), make(face_bytes))
    with pytest.raises(ImageError) as info:
        check(path)
    shown = display_path(path)
    assert str(info.value) == f"{shown}: {reason}" and info.value.reason == reason
    assert "\\xff\\xfe" in shown and "\n" not in str(info.value)
    str(info.value).encode("utf-8")  # printable anywhere: no surrogate escapes left in the message


def test_decoded_bytes_limit_counts_bytes_not_pixels(tmp_path):
    """The same 99 MP size passes as 8-bit RGB (283 MiB) and fails as 16-bit RGBA (755 MiB)."""
    rgb = corpus.write(tmp_path / "rgb.png", corpus.png_bytes(10000, 9900, colour=2, pixels=False))
    header = probe_image(rgb)
    assert (header.channels, header.sample_bytes) == (3, 1)
    assert header.decoded_bytes == 10000 * 9900 * 3 < MAX_DECODED_BYTES
    deep = corpus.write(tmp_path / "deep.png", corpus.png_bytes(10000, 9900, depth=16, colour=6, pixels=False))
    assert probe_image(deep, max_bytes=2**40).decoded_bytes == 10000 * 9900 * 8
    with pytest.raises(ImageError, match="755 MiB decoded, above the 512 MiB limit"):
        probe_image(deep)
    small_deep = corpus.write(tmp_path / "small_deep.png", corpus.png_bytes(64, 32, depth=16, colour=6))
    with pytest.raises(ImageError, match=r"64x32 with 4 channel\(s\) of 16-bit samples, 0 MiB decoded, above the "
                                         r"0 MiB limit"):
        decode_image(small_deep, max_bytes=64 * 32 * 8 - 1)
    assert decode_image(small_deep, max_bytes=64 * 32 * 8).shape == (32, 64, 4)


def test_file_larger_than_the_limit_is_refused_before_reading(tmp_path, no_decode):
    path = corpus.write(tmp_path / "big.png", corpus.small_png())
    with pytest.raises(ImageError, match=r"big\.png: file is 0 MiB, above the 0 MiB limit"):
        decode_image(path, max_bytes=100)


def test_complete_files_with_trailing_data_decode(tmp_path, face_bytes, opencv_guard):
    """End markers followed by more data (motion photos, padding) are complete, not truncated."""
    jpeg = corpus.write(tmp_path / corpus.non_utf8_name("motion", ".jpg"), corpus.with_trailer(face_bytes))
    png = corpus.write(tmp_path / "padded.png", corpus.with_trailer(corpus.small_png(77)))
    decoy = corpus.write(tmp_path / "decoy_complete.jpg", corpus.jpeg_with_decoy_eoi(face_bytes))
    assert probe_image(jpeg).width == read_image(jpeg).original_size[0] > 0
    assert (decode_image(png) == 77).all() and probe_image(png).channels == 3
    np.testing.assert_array_equal(read_image(decoy).image, read_image(jpeg).image)


def test_truncated_webp_and_bmp(tmp_path, no_decode):
    ok, webp = cv2.imencode(".webp", np.full((16, 16, 3), 50, np.uint8))
    ok2, bmp = cv2.imencode(".bmp", np.full((16, 16, 3), 50, np.uint8))
    assert ok and ok2
    webp_path = corpus.write(tmp_path / "cut.webp", corpus.cut(webp.tobytes(), 0.7))
    bmp_path = corpus.write(tmp_path / "cut.bmp", corpus.cut(bmp.tobytes(), 0.7))
    with pytest.raises(ImageError, match=r"cut\.webp: truncated WebP \(\d+ of \d+ bytes\)"):
        decode_image(webp_path)
    with pytest.raises(ImageError, match=r"cut\.bmp: truncated BMP \(\d+ of \d+ bytes\)"):
        probe_image(bmp_path)


def test_non_utf8_name_decodes_through_bytes(tmp_path, face_bytes, opencv_guard):
    path = corpus.write(tmp_path / corpus.non_utf8_name("face", ".jpg"), face_bytes)
    decoded = read_image(path)
    reference = cv2.imdecode(np.frombuffer(face_bytes, np.uint8), cv2.IMREAD_COLOR)
    np.testing.assert_array_equal(decoded.image, reference)
    assert decoded.source == display_path(path) and decoded.source.endswith("face\\xff\\xfe.jpg")


def test_write_image_encodes_in_memory_and_replaces_atomically(tmp_path, opencv_guard):
    folder = tmp_path / corpus.non_utf8_name("out", "")
    folder.mkdir()
    target = folder / corpus.non_utf8_name("annotated", ".png")
    image = np.full((12, 20, 3), 33, np.uint8)
    write_image(target, image)
    np.testing.assert_array_equal(decode_image(target), image)
    assert sorted(os.listdir(folder)) == [target.name]


def test_write_image_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "a.jpg"
    target.write_bytes(b"old")

    def full_disk(*_: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(image_io.os, "replace", full_disk)
    with pytest.raises(FeredgeError, match=r"^cannot write .*a\.jpg: No space left on device$"):
        write_image(target, np.zeros((8, 8, 3), np.uint8))
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["a.jpg"]


def test_write_image_to_a_directory_or_unknown_extension_is_one_line(tmp_path):
    (tmp_path / "x.png").mkdir()
    with pytest.raises(FeredgeError, match=r"cannot write .*x\.png: Is a directory"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ImageError, match=r"cannot write an image with extension '\.gifx'"):
        write_image(tmp_path / "x.gifx", np.zeros((4, 4, 3), np.uint8))
    assert sorted(os.listdir(tmp_path)) == ["x.png"]


def test_opencv_name_aliases_only_undecodable_paths(tmp_path):
    plain = tmp_path / "plain.avi"
    with OpenCVName(plain) as name:
        assert name.name == str(plain)
    odd = corpus.write(tmp_path / corpus.non_utf8_name("clip", ".avi"), b"data")
    with OpenCVName(odd) as name:
        alias = name.name
        alias.encode("utf-8")
        assert alias.endswith("media.avi") and Path(alias).read_bytes() == b"data"
    assert not Path(alias).exists() and not Path(alias).parent.exists()


def test_display_path_escapes_undecodable_bytes():
    assert display_path(os.fsdecode(b"a\xff\xfe.jpg")) == "a\\xff\\xfe.jpg"
    assert display_path("caf\u00e9.jpg") == "caf\u00e9.jpg"
    assert display_path(b"b\xff.png") == "b\\xff.png"


@pytest.mark.parametrize("check", [probe_image, decode_image], ids=lambda f: f.__name__)
def test_a_fifo_named_like_an_image_is_refused_without_blocking(check, tmp_path):
    os.mkfifo(tmp_path / "pipe.jpg")
    with pytest.raises(ImageError, match=r"pipe\.jpg: not a regular file$"):
        check(tmp_path / "pipe.jpg")
