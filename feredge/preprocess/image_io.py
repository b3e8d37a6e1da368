"""Decoding untrusted image and video files into BGR uint8 arrays, or a one-line reason why not.

Why not just ``cv2.imread``: it returns ``None`` for every kind of failure, silently decodes a
truncated JPEG into a half-grey picture, hands back 16-bit and 4-channel arrays unchanged, and
will allocate gigabytes for a small PNG that claims a huge size. Each of those is a case users hit
with camera dumps and scraped data, so each gets a named check here. Pillow reads only the header
to learn the size before OpenCV decodes anything (bounded memory).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from feredge.errors import FeredgeError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})

# Images above MAX_PIXELS are refused before decoding; images whose longer side exceeds MAX_SIDE
# are downscaled after decoding (a Haar cascade finds no more faces at 8K than at 4K, only slower).
MAX_PIXELS = 100_000_000
MAX_SIDE = 4096


class ImageError(FeredgeError):
    """A single input file could not be used; the message names the file and the reason."""


@dataclass(frozen=True)
class DecodedImage:
    image: np.ndarray  # HxWx3 BGR uint8
    source: str
    original_size: tuple[int, int]  # (width, height) before any downscale
    scale: float = 1.0  # decoded / original; boxes are reported in original coordinates
    note: str = ""


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def to_bgr_u8(array: np.ndarray, source: str = "<array>") -> np.ndarray:
    """Any decoded image (gray, BGR, BGRA; uint8 or uint16 or float in [0,1]) as HxWx3 BGR uint8."""
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        array = np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise ImageError(f"{source}: unsupported pixel type {array.dtype}")
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    if array.ndim == 3 and array.shape[2] == 1:
        return cv2.cvtColor(array[:, :, 0], cv2.COLOR_GRAY2BGR)
    if array.ndim == 3 and array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    raise ImageError(f"{source}: unsupported image shape {array.shape}")


def _header_size(path: Path) -> tuple[int, int]:
    from PIL import Image, UnidentifiedImageError

    # Pillow refuses to even open (header only) images above its own bomb limit; we apply our
    # limit with the size in the message, so lift Pillow's for this header read only.
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(path) as im:
            return im.size
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not a readable image (contents are not {path.suffix} data)") from None
    except OSError as exc:
        raise ImageError(f"{path}: cannot read image header ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved


def _looks_truncated_jpeg(data: bytes) -> bool:
    # A complete JPEG ends with the EOI marker FF D9; some writers pad with zeros or newlines after it.
    return data[:2] == b"\xff\xd8" and b"\xff\xd9" not in data[-64:]


def read_image(
    path: str | Path, *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE
) -> DecodedImage:
    """Decode one image file as BGR uint8 or raise :class:`ImageError` with a one-line reason."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if path.is_dir():
        raise ImageError(f"{path}: is a directory, not an image")
    if not is_image_path(path):
        raise ImageError(
            f"{path}: unsupported extension {path.suffix or '(none)'!r}; "
            f"expected one of {', '.join(sorted(IMAGE_EXTENSIONS))}"
        )
    size = path.stat().st_size
    if size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    width, height = _header_size(path)
    if width * height > max_pixels:
        raise ImageError(
            f"{path}: image is {width}x{height} ({width * height / 1e6:.0f} MP), above the "
            f"{max_pixels / 1e6:.0f} MP limit; downscale it first"
        )
    data = path.read_bytes()
    if _looks_truncated_jpeg(data):
        raise ImageError(f"{path}: truncated JPEG (no end-of-image marker)")
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.size == 0:
        raise ImageError(f"{path}: corrupt or truncated image data")
    image = to_bgr_u8(array, str(path))
    h, w = image.shape[:2]
    scale, note = 1.0, ""
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        note = f"downscaled from {w}x{h} to {image.shape[1]}x{image.shape[0]} for detection"
    return DecodedImage(image=image, source=str(path), original_size=(w, h), scale=scale, note=note)


def iter_video(path: str | Path, *, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, BGR frame)``; raises :class:`ImageError` if the file cannot be opened."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise ImageError(f"{path}: cannot open video (unsupported codec or not a video file)")
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                yield index, to_bgr_u8(frame, f"{path}#{index}")
            index += 1
        if index == 0:
            raise ImageError(f"{path}: video has no decodable frames")
    finally:
        capture.release()


def video_frame_count(path: str | Path) -> int | None:
    capture = cv2.VideoCapture(str(path))
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    finally:
        capture.release()
    return count if count > 0 else None
