"""The one checked way untrusted image and video files reach OpenCV, and the way images leave it.

Why not just ``cv2.imread``: it returns ``None`` for every kind of failure, silently decodes a
truncated JPEG into a half-grey picture, hands back 16-bit and 4-channel arrays unchanged, will
allocate gigabytes for a small PNG that claims a huge size, and — like every OpenCV file API —
takes the path as UTF-8: a file name whose bytes are not UTF-8 (``os.fsdecode`` turns them into
surrogate escapes) crashed the process (segfault) in ``imread``/``imwrite``/``VideoCapture``/
``VideoWriter``. Each of those is a case users hit with camera dumps and scraped data, so:

* images are read by Python (any file name works) and decoded from the bytes with
  ``cv2.imdecode``; encoded with ``cv2.imencode`` and written by Python through a temporary file
  and ``os.replace`` (:func:`write_image`), so no image path ever reaches OpenCV;
* before decoding, the header gives the size *and* the array OpenCV will allocate
  (width x height x channels x bytes per sample): :data:`MAX_PIXELS` (100 MP) and
  :data:`MAX_DECODED_BYTES` (512 MiB) are checked, so a 778 KB 16-bit RGBA PNG that decodes to
  gigabytes is refused while an ordinary 8-bit 60 MP photo (180 MB) is not;
* truncation is detected from the container's own end markers (JPEG's end-of-image after the
  scan data, PNG's IEND chunk, the RIFF and BMP size fields) — more robust than OpenCV's warnings,
  which go to stderr and leave a decoded half picture;
* videos need a path (OpenCV has no buffer API for them): :class:`OpenCVName` hands OpenCV the
  path itself when it is valid UTF-8, else a symlink with an ASCII name in a private temporary
  directory. We chose the symlink over refusing such files, so they still play; where no symlink
  can be made the answer is a one-line :class:`ImageError`.

The probe (:func:`probe_image`) applies every check without decoding, so dataset loaders can
report bad files as bad items at load time at the cost of a header read.
"""

from __future__ import annotations

import io
import os
import shutil
import stat
import struct
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import cv2
import numpy as np

from feredge.errors import FeredgeError, OutputError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v"})

# Images above MAX_PIXELS, or whose decoded array would exceed MAX_DECODED_BYTES, are refused
# before decoding (the file itself may not exceed MAX_DECODED_BYTES either: it is read whole).
# Peak memory of a decode is about file + decoded array + the 3 bytes/pixel BGR copy, i.e. at most
# ~1.3 GB at the limits. Images whose longer side exceeds MAX_SIDE are downscaled after decoding
# by read_image (a Haar cascade finds no more faces at 8K than at 4K, only slower).
MAX_PIXELS = 100_000_000
MAX_DECODED_BYTES = 512 * 1024 * 1024
MAX_SIDE = 4096
MIB = 1024 * 1024

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# PNG colour type -> channels of OpenCV's IMREAD_UNCHANGED array. Palette images become BGR, or
# BGRA with a tRNS chunk; gray + alpha becomes BGRA: count the larger, the estimate is an upper bound.
_PNG_CHANNELS = {0: 1, 2: 3, 3: 4, 4: 4, 6: 4}
# Pillow modes whose samples are wider than a byte. Pillow reports a 16-bit RGB(A) PNG as 8-bit
# "RGB(A)", which is why PNG depth is read from IHDR and TIFF depth from its BitsPerSample tag.
_MODE_SAMPLE_BYTES = {"I;16": 2, "I;16B": 2, "I;16L": 2, "I;16N": 2, "I": 4, "F": 4}
_TAIL = 64  # end markers are looked for in the last bytes first (writers may pad after them)


class ImageError(FeredgeError):
    """A single input file could not be used; the message names the file and the reason.

    ``reason`` is the message without the file name, for loaders that count bad items by reason.
    """

    def __init__(self, message: str, *, reason: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason or message


def _fail(source: str, reason: str) -> ImageError:
    return ImageError(f"{source}: {reason}", reason=reason)


@dataclass(frozen=True)
class DecodedImage:
    image: np.ndarray  # HxWx3 BGR uint8
    source: str
    original_size: tuple[int, int]  # (width, height) before any downscale
    scale: float = 1.0  # decoded / original; boxes are reported in original coordinates
    note: str = ""


@dataclass(frozen=True)
class ImageHeader:
    """What an image file says about itself, read without decoding any pixel.

    ``channels`` and ``sample_bytes`` describe the array ``cv2.imdecode(..., IMREAD_UNCHANGED)``
    allocates (an upper bound where the header leaves it open), so ``decoded_bytes`` is the memory
    a decode costs, not merely the pixel count.
    """

    format: str
    width: int
    height: int
    channels: int
    sample_bytes: int

    @property
    def pixels(self) -> int:
        return self.width * self.height

    @property
    def decoded_bytes(self) -> int:
        return self.pixels * self.channels * self.sample_bytes


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS


def is_video_path(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def display_path(path: str | os.PathLike[str] | bytes) -> str:
    """``path`` as printable text: bytes that are not UTF-8 shown as ``\\xNN`` escapes.

    A name from ``os.fsdecode`` carries surrogate escapes that cannot be printed to a UTF-8 stream
    or written to a JSON/CSV file opened as UTF-8; messages and records use this form instead.
    """
    text = os.fsdecode(os.fspath(path))
    try:
        raw = text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # lone surrogates not from fsdecode
        return text.encode("utf-8", "backslashreplace").decode("ascii")
    return raw.decode("utf-8", "backslashreplace")


def opencv_safe(path: str | os.PathLike[str]) -> bool:
    """Whether OpenCV can take ``path`` as it is: its text encodes to UTF-8 (no surrogate escapes)."""
    try:
        os.fspath(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class OpenCVName:
    """A name OpenCV's path-only APIs (``VideoCapture``, ``VideoWriter``) can take for ``path``.

    ``name`` is ``str(path)`` when that is valid UTF-8; otherwise a symlink to the absolute path
    with an ASCII name (``media`` + the suffix when the suffix is ASCII) in a private temporary
    directory, removed by :meth:`close`. Opening follows the link, for reading and for writing
    (a dangling link is created through), so OpenCV never sees the undecodable name.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._tmpdir: str | None = None
        text = str(self.path)
        if opencv_safe(text):
            self.name = text
            return
        suffix = self.path.suffix if self.path.suffix.isascii() and opencv_safe(self.path.suffix) else ""
        try:
            self._tmpdir = tempfile.mkdtemp(prefix="feredge-cv-")
            link = os.path.join(self._tmpdir, "media" + suffix)
            os.symlink(os.path.abspath(text), link)
        except OSError as exc:
            self.close()
            raise _fail(display_path(text), f"file name is not UTF-8 and no ASCII alias could be made "
                                            f"for OpenCV ({exc.strerror or exc}); rename the file") from None
        if not opencv_safe(link):
            self.close()
            raise _fail(display_path(text), "file name is not UTF-8 and the temporary directory is not "
                                            "either; rename the file or set TMPDIR to an ASCII path")
        self.name = link

    def close(self) -> None:
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> OpenCVName:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def to_bgr_u8(array: np.ndarray, source: str = "<array>") -> np.ndarray:
    """Any decoded image (gray, BGR, BGRA; uint8 or uint16 or float in [0,1]) as HxWx3 BGR uint8."""
    if array.dtype == np.uint16:
        array = (array >> 8).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.floating):
        array = np.clip(array * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif array.dtype != np.uint8:
        raise _fail(source, f"unsupported pixel type {array.dtype}")
    if array.ndim == 2:
        return cv2.cvtColor(array, cv2.COLOR_GRAY2BGR)
    if array.ndim == 3 and array.shape[2] == 1:
        return cv2.cvtColor(array[:, :, 0], cv2.COLOR_GRAY2BGR)
    if array.ndim == 3 and array.shape[2] == 4:
        return cv2.cvtColor(array, cv2.COLOR_BGRA2BGR)
    if array.ndim == 3 and array.shape[2] == 3:
        return np.ascontiguousarray(array)
    raise _fail(source, f"unsupported image shape {array.shape}")


# --- header and limits ------------------------------------------------------------------------------


def read_header(stream: IO[bytes], source: str) -> ImageHeader:
    """Size, channels and sample width from the file header (Pillow, plus PNG's IHDR and TIFF tags)."""
    from PIL import Image, UnidentifiedImageError

    start = stream.tell()
    head = stream.read(32)
    stream.seek(start)
    # Pillow refuses to even open (header only) images above its own bomb limit; we apply our
    # limits with the size in the message, so lift Pillow's for this header read only.
    saved, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, None
    try:
        with Image.open(stream) as im:
            fmt, (width, height), mode = im.format or "?", im.size, im.mode
            channels = 4 if mode in ("P", "PA", "LA", "La") else max(1, len(im.getbands()))
            sample = _MODE_SAMPLE_BYTES.get(mode, 1)
            if fmt == "TIFF":
                bits, per_pixel = im.tag_v2.get(258), im.tag_v2.get(277)
                bits = bits if isinstance(bits, tuple) else (bits,) if bits else ()
                if bits:
                    sample = max(sample, -(-max(int(b) for b in bits) // 8))
                if per_pixel:
                    channels = max(channels, int(per_pixel))
    except UnidentifiedImageError:
        raise _fail(source, "not a readable image (the contents are not image data)") from None
    except (OSError, SyntaxError, ValueError, struct.error) as exc:  # Pillow's header errors
        raise _fail(source, f"cannot read image header ({exc})") from None
    finally:
        Image.MAX_IMAGE_PIXELS = saved
    if head[:8] == PNG_SIGNATURE and head[12:16] == b"IHDR":
        width, height, depth, colour = struct.unpack(">IIBB", head[16:26])
        channels, sample = _PNG_CHANNELS.get(colour, 4), 2 if depth == 16 else 1
    return ImageHeader(fmt, width, height, channels, sample)


def check_limits(header: ImageHeader, source: str, *, max_pixels: int = MAX_PIXELS,
                 max_bytes: int = MAX_DECODED_BYTES) -> None:
    """Refuse an image whose pixel count or decoded array is above the limits, with both numbers."""
    w, h = header.width, header.height
    if w <= 0 or h <= 0:
        raise _fail(source, f"image header claims a {w}x{h} size")
    if header.pixels > max_pixels:
        raise _fail(source, f"image is {w}x{h} ({header.pixels / 1e6:.0f} MP), above the "
                            f"{max_pixels / 1e6:.0f} MP limit; downscale it first")
    if header.decoded_bytes > max_bytes:
        raise _fail(source, f"image is {w}x{h} with {header.channels} channel(s) of {8 * header.sample_bytes}-bit "
                            f"samples, {header.decoded_bytes / MIB:.0f} MiB decoded, above the "
                            f"{max_bytes / MIB:.0f} MiB limit; downscale it or convert it to 8 bits first")


# --- truncation ------------------------------------------------------------------------------------


def _jpeg_scan_start(data: bytes) -> int | None:
    """Offset of the first start-of-scan marker, walking the header segments by their lengths.

    Walking (instead of searching for FF D9 anywhere) skips an EXIF thumbnail's own end marker.
    Stray bytes between segments are skipped to the next FF, as libjpeg does.
    """
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            nxt = data.find(b"\xff", pos)
            if nxt < 0:
                return None
            pos = nxt
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
        elif marker == 0xDA:
            return pos
        elif 0xD0 <= marker <= 0xD7 or marker in (0x01, 0xD8):  # markers without a length
            pos += 2
        else:
            pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return None


def _png_has_iend(data: bytes) -> bool:
    """Walk the chunks by their lengths; True when an IEND chunk lies wholly inside the data."""
    pos = len(PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] == b"IEND":
            return True
        pos += 12 + length
    return False


def _ends_cleanly(head: bytes, tail: bytes) -> bool:
    """The common case, from the first and last bytes only: the end marker is where it belongs."""
    if head[:2] == b"\xff\xd8":
        return b"\xff\xd9" in tail
    if head[:8] == PNG_SIGNATURE:
        return b"IEND" in tail
    return False


def truncation_reason(data: bytes) -> str | None:
    """Why ``data`` is a cut-off image file, or None. Only formats with an end marker or size field."""
    if data[:2] == b"\xff\xd8":
        if b"\xff\xd9" in data[-_TAIL:]:
            return None
        scan = _jpeg_scan_start(data)
        # trailing data after EOI (e.g. a phone's "motion photo") is fine; no EOI after the scan is not
        if scan is None or data.find(b"\xff\xd9", scan) < 0:
            return "truncated JPEG (no end-of-image marker)"
    elif data[:8] == PNG_SIGNATURE:
        if b"IEND" not in data[-_TAIL:] and not _png_has_iend(data):
            return "truncated PNG (no IEND chunk)"
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        declared = int.from_bytes(data[4:8], "little") + 8
        if declared > len(data):
            return f"truncated WebP ({len(data)} of {declared} bytes)"
    elif data[:2] == b"BM" and len(data) >= 6:
        declared = int.from_bytes(data[2:6], "little")  # 0 in some writers: unknown, not checked
        if declared > len(data):
            return f"truncated BMP ({len(data)} of {declared} bytes)"
    return None


# --- reading ---------------------------------------------------------------------------------------


def _stat_checked(path: Path, source: str, max_bytes: int) -> int:
    try:
        st = path.stat()
    except FileNotFoundError:
        raise _fail(source, "no such file") from None
    except OSError as exc:
        raise _fail(source, f"cannot read ({exc.strerror or exc})") from None
    if path.is_dir():
        raise _fail(source, "is a directory, not an image")
    if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
        raise _fail(source, "not a regular file")
    if st.st_size == 0:
        raise _fail(source, "empty file (0 bytes)")
    if st.st_size > max_bytes:
        raise _fail(source, f"file is {st.st_size / MIB:.0f} MiB, above the {max_bytes / MIB:.0f} MiB limit")
    return st.st_size


def probe_image(path: str | Path, *, source: str | None = None, max_pixels: int = MAX_PIXELS,
                max_bytes: int = MAX_DECODED_BYTES) -> ImageHeader:
    """Every check :func:`decode_image` makes, without decoding: truncation, header, limits.

    Reads the header and the last bytes; the whole file only when its end marker is not in the
    last 64 bytes (data after the marker, or truly truncated).
    """
    path = Path(path)
    source = source or display_path(path)
    size = _stat_checked(path, source, max_bytes)
    try:
        with open(path, "rb") as handle:
            head = handle.read(32)
            handle.seek(max(0, size - _TAIL))
            tail = handle.read()
            if not _ends_cleanly(head, tail):
                handle.seek(0)
                reason = truncation_reason(handle.read())
                if reason:
                    raise _fail(source, reason)
            handle.seek(0)
            header = read_header(handle, source)
            check_limits(header, source, max_pixels=max_pixels, max_bytes=max_bytes)
    except OSError as exc:
        raise _fail(source, f"cannot read ({exc.strerror or exc})") from None
    return header


def decode_image(path: str | Path, *, source: str | None = None, max_pixels: int = MAX_PIXELS,
                 max_bytes: int = MAX_DECODED_BYTES) -> np.ndarray:
    """The checked decoder: OpenCV's ``IMREAD_UNCHANGED`` array of a file, or :class:`ImageError`.

    The file is read by Python and decoded from memory; header limits and truncation are checked
    first. No conversion: gray stays 2-D, 16-bit and alpha stay (see :func:`to_bgr_u8`).
    """
    path = Path(path)
    source = source or display_path(path)
    _stat_checked(path, source, max_bytes)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(source, f"cannot read ({exc.strerror or exc})") from None
    return decode_image_bytes(data, source, max_pixels=max_pixels, max_bytes=max_bytes)


def decode_image_bytes(data: bytes, source: str, *, max_pixels: int = MAX_PIXELS,
                       max_bytes: int = MAX_DECODED_BYTES) -> np.ndarray:
    """:func:`decode_image` for bytes already in memory (a download): the same checks, in the same order."""
    if not data:
        raise _fail(source, "empty (0 bytes)")
    if len(data) > max_bytes:
        raise _fail(source, f"{len(data) / MIB:.0f} MiB, above the {max_bytes / MIB:.0f} MiB limit")
    reason = truncation_reason(data)  # first: a cut-off file's header may be unreadable too
    if reason:
        raise _fail(source, reason)
    header = read_header(io.BytesIO(data), source)
    check_limits(header, source, max_pixels=max_pixels, max_bytes=max_bytes)
    array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if array is None or array.size == 0:
        raise _fail(source, "corrupt or truncated image data")
    return array


def read_image(
    path: str | Path, *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE,
    max_bytes: int = MAX_DECODED_BYTES,
) -> DecodedImage:
    """Decode one image file as BGR uint8 (downscaled above ``max_side``) or raise :class:`ImageError`."""
    path = Path(path)
    source = display_path(path)
    if path.exists() and not path.is_dir() and not is_image_path(path):
        raise _fail(source, f"unsupported extension {display_path(path.suffix) or '(none)'!r}; "
                            f"expected one of {', '.join(sorted(IMAGE_EXTENSIONS))}")
    return _decoded(lambda: decode_image(path, source=source, max_pixels=max_pixels, max_bytes=max_bytes),
                    source, max_side)


def read_image_bytes(
    data: bytes, source: str, *, max_pixels: int = MAX_PIXELS, max_side: int = MAX_SIDE,
    max_bytes: int = MAX_DECODED_BYTES,
) -> DecodedImage:
    """:func:`read_image` for encoded bytes in memory (a download, an upload): same checks, same result."""
    return _decoded(lambda: decode_image_bytes(data, source, max_pixels=max_pixels, max_bytes=max_bytes),
                    source, max_side)


def _decoded(decode: Callable[[], np.ndarray], source: str, max_side: int) -> DecodedImage:
    """The decoder's array as BGR uint8, downscaled above ``max_side`` (boxes map back by ``scale``).

    ``decode`` is called here, not by the caller, so the undecoded-format array (16-bit, alpha) has
    no other reference and is freed before the resize: one full-size array fewer at the peak.
    """
    array = decode()
    image = to_bgr_u8(array, source)
    del array
    h, w = image.shape[:2]
    scale, note = 1.0, ""
    if max(h, w) > max_side:
        scale = max_side / max(h, w)
        image = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
        note = f"downscaled from {w}x{h} to {image.shape[1]}x{image.shape[0]} for detection"
    return DecodedImage(image=image, source=source, original_size=(w, h), scale=scale, note=note)


# --- writing ---------------------------------------------------------------------------------------


def write_file_atomic(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``.

    The file is complete or absent (never half-written), an existing one is replaced only by a
    complete one, and OS errors (full disk, read-only, a directory at ``path``) are one line.
    No fsync: the rename is what makes it atomic for readers; durability across power loss is
    not a goal for annotation outputs.
    """
    from feredge.fileio import write_bytes_atomic

    try:
        write_bytes_atomic(path, data)
    except OSError as exc:
        raise OutputError(f"cannot write {display_path(path)}: {exc.strerror or exc}") from None


def encode_image(image: np.ndarray, extension: str, params: tuple[int, ...] = ()) -> bytes:
    """``cv2.imencode`` with the failure as :class:`ImageError` (unknown extension, bad array)."""
    try:
        ok, buffer = cv2.imencode(extension, image, list(params))
    except cv2.error as exc:
        raise ImageError(f"cannot encode a {image.shape} image as {extension}: {str(exc).strip().splitlines()[-1]}",
                         reason="cannot encode image") from None
    if not ok:
        raise ImageError(f"cannot encode a {image.shape} image as {extension}", reason="cannot encode image")
    return buffer.tobytes()


def write_image(path: str | Path, image: np.ndarray, params: tuple[int, ...] = ()) -> None:
    """Encode ``image`` by the suffix of ``path`` and write it atomically (no path reaches OpenCV)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_EXTENSIONS:
        raise ImageError(f"{display_path(path)}: cannot write an image with extension {display_path(suffix)!r}; "
                         f"use one of {', '.join(sorted(IMAGE_EXTENSIONS))}", reason="unsupported extension")
    write_file_atomic(path, encode_image(image, suffix, params))


# --- video -----------------------------------------------------------------------------------------


def open_capture(path: str | Path) -> tuple[cv2.VideoCapture, OpenCVName]:
    """``cv2.VideoCapture`` of a file through :class:`OpenCVName`; close both when done.

    Raises :class:`ImageError` for a missing file or one OpenCV cannot open.
    """
    path = Path(path)
    source = display_path(path)
    if not path.exists():
        raise _fail(source, "no such file")
    if path.is_dir():
        raise _fail(source, "is a directory, not a video")
    name = OpenCVName(path)
    capture = cv2.VideoCapture(name.name)
    if not capture.isOpened():
        capture.release()
        name.close()
        raise _fail(source, "cannot open video (unsupported codec or not a video file)")
    return capture, name


def iter_video(path: str | Path, *, every: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(frame_index, BGR frame)``; raises :class:`ImageError` if the file cannot be opened."""
    source = display_path(path)
    capture, name = open_capture(path)
    try:
        index = 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % every == 0:
                yield index, to_bgr_u8(frame, f"{source}#{index}")
            index += 1
        if index == 0:
            raise _fail(source, "video has no decodable frames")
    finally:
        capture.release()
        name.close()
