"""Builders for the hostile image corpus the input tests write: every file made here, by the tests.

Each builder returns bytes in a real container format, so without our checks OpenCV would accept
(or half-accept) them: PNGs streamed row by row (a 99 MP 16-bit RGBA PNG is ~780 KB on disk and
~760 MiB decoded), header-only PNGs claiming any size, JPEGs cut short, with a decoy end marker in
an EXIF-like segment, or with data after their end marker.
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

from tests.preprocess.opencv_guard import NON_UTF8

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # colour type -> samples per pixel in the file


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bytes(width: int, height: int, *, depth: int = 8, colour: int = 0, pixels: bool = True) -> bytes:
    """A valid all-zero PNG (streamed: the pixels are never held), or only its header (``pixels=False``)."""
    ihdr = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
    if not pixels:
        return PNG_SIGNATURE + ihdr + png_chunk(b"IEND", b"")
    compressor = zlib.compressobj(1)
    row = b"\x00" * (1 + width * PNG_CHANNELS[colour] * depth // 8)
    body = b"".join(compressor.compress(row) for _ in range(height)) + compressor.flush()
    return PNG_SIGNATURE + ihdr + png_chunk(b"IDAT", body) + png_chunk(b"IEND", b"")


def small_png(value: int = 90, shape: tuple[int, ...] = (24, 32, 3)) -> bytes:
    ok, buffer = cv2.imencode(".png", np.full(shape, value, np.uint8))
    assert ok
    return buffer.tobytes()


def small_jpeg(value: int = 120, shape: tuple[int, ...] = (40, 48, 3)) -> bytes:
    image = np.full(shape, value, np.uint8)
    image[::4] = 255 - value  # some structure, so the scan data is not trivially short
    ok, buffer = cv2.imencode(".jpg", image)
    assert ok
    return buffer.tobytes()


def cut(data: bytes, keep: float = 0.5) -> bytes:
    return data[: int(len(data) * keep)]


def jpeg_with_decoy_eoi(data: bytes) -> bytes:
    """A JPEG with an APP1 segment (where EXIF thumbnails live) right after SOI holding FF D8 ... FF D9.

    Cut short afterwards, a search for FF D9 anywhere still finds the decoy; only a walk of the
    segments sees that no end marker follows the scan data.
    """
    decoy = b"Exif\x00\x00" + b"\xff\xd8" + b"\x00" * 100 + b"\xff\xd9" + b"\x00" * 100
    app1 = b"\xff\xe1" + struct.pack(">H", len(decoy) + 2) + decoy
    return data[:2] + app1 + data[2:]


def with_trailer(data: bytes, size: int = 4096) -> bytes:
    """Data appended after the end marker (phones append a video to "motion photo" JPEGs)."""
    return data + b"ftypmp42" + bytes(size)


def non_utf8_name(stem: str, suffix: str) -> str:
    """``<stem><FF FE bytes><suffix>``: a file name that is not UTF-8, as ``os.fsdecode`` gives it."""
    return f"{stem}{NON_UTF8}{suffix}"


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(os.fsencode(path), "wb") as handle:
        handle.write(data)
    return path
