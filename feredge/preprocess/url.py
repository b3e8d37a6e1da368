"""Sources named by URL: http(s) images downloaded and decoded like files, videos and streams opened by OpenCV.

Why a module of its own: a URL is not a path. ``Path("rtsp://cam/live")`` collapses the double slash
into ``rtsp:/cam/live``, which no backend can open, so URLs stay strings from the command line to the
backend. Two ways in, decided without downloading where the name says enough:

* **images** (``http(s)://…/photo.jpg``, or a server answering ``Content-Type: image/…``): the bytes
  are downloaded by ``urllib`` with a per-operation timeout, an overall time budget and the
  decoder's own size cap (:data:`~feredge.preprocess.image_io.MAX_DECODED_BYTES`, checked against
  ``Content-Length`` before reading and against the bytes while reading), and then go through the
  same checked decoder as files (:func:`~feredge.preprocess.image_io.read_image_bytes`): the bytes
  are untrusted, a 404 page or an image bomb is refused with one line like a bad file;
* **videos and streams** (``rtsp://``, ``rtmp://``, ``udp://``, ``srt://``…, and http(s) URLs ending in
  a video or playlist extension or served as ``video/…``): the URL string itself is handed to
  ``cv2.VideoCapture`` with the FFmpeg backend and open/read timeouts (:func:`open_stream_capture`);
  reconnecting a dropped live stream is :class:`feredge.video.stream.CaptureSource`'s job.

Messages and records show a URL with its password replaced by ``***`` (:func:`display_url`):
``rtsp://user:secret@cam/`` must not end up in logs and JSON lines.

A stream that cannot be opened is one line from us, so FFmpeg's own log lines (``[tcp @ 0x…]
Connection refused``, printed by the library straight to stderr) are off unless the user set
``OPENCV_FFMPEG_LOGLEVEL`` (OpenCV reads it when FFmpeg is first used; ``16`` shows FFmpeg's
errors, and the message says so), and OpenCV's warnings are raised to errors while the URL opens.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import cv2

from feredge.preprocess.image_io import (
    IMAGE_EXTENSIONS,
    MAX_DECODED_BYTES,
    MAX_PIXELS,
    MAX_SIDE,
    MIB,
    VIDEO_EXTENSIONS,
    DecodedImage,
    ImageError,
    read_image_bytes,
)
from feredge.version import __version__

#: schemes whose URLs are downloaded (images) or handed to OpenCV (videos), by what the URL says
HTTP_SCHEMES = frozenset({"http", "https"})
#: schemes that only ever carry a live audio/video stream: always OpenCV, always live (reconnected)
STREAM_SCHEMES = frozenset({"rtsp", "rtsps", "rtmp", "rtmps", "rtp", "udp", "srt", "tcp", "mms", "mmsh"})
#: http(s) names that are streams even though they are not video containers (HLS, DASH, MJPEG cameras)
STREAM_EXTENSIONS = frozenset({".m3u8", ".mpd", ".mjpg", ".mjpeg", ".ts", ".flv"})
#: Content-Type values (lower case, no parameters) that mean "hand this URL to OpenCV"
VIDEO_CONTENT_TYPES = frozenset({"application/vnd.apple.mpegurl", "application/x-mpegurl", "application/dash+xml",
                                 "multipart/x-mixed-replace", "application/octet-stream+video"})

UrlKind = Literal["image", "video"]
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET; see the module doc
_CHUNK = 1 << 20
#: what urllib raises for a network or server failure (URLError, HTTPError, timeouts and TLS are OSErrors;
#: http.client's IncompleteRead and bad status lines are not; a malformed URL is a ValueError)
_NETWORK_ERRORS = (OSError, http.client.HTTPException, ValueError)


@dataclass(frozen=True)
class UrlOptions:
    """How a URL is fetched or opened.

    ``timeout``: seconds for each network operation (connect, each read; OpenCV's open and read);
    ``total_timeout``: seconds for a whole image download, so a server that drips a byte a second
    cannot hold a batch forever; ``max_bytes``: the largest image accepted, the decoder's file limit.
    """

    timeout: float = 10.0
    total_timeout: float = 120.0
    max_bytes: int = MAX_DECODED_BYTES
    max_pixels: int = MAX_PIXELS
    max_side: int = MAX_SIDE


DEFAULT_OPTIONS = UrlOptions()


def is_url(value: object) -> bool:
    """Whether ``value`` is a URL feredge reads (``scheme://…`` with an http(s) or streaming scheme)."""
    if not isinstance(value, str) or "://" not in value:
        return False
    scheme = value.split("://", 1)[0].lower()
    return scheme in HTTP_SCHEMES or scheme in STREAM_SCHEMES


def display_url(url: str) -> str:
    """``url`` fit for messages and records: a password in it replaced by ``***``."""
    try:
        parts = urlsplit(url)
        if parts.password is None:
            return url
        user = parts.username or ""
        host = parts.hostname or ""
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        netloc = f"{user}:***@{host}" + (f":{parts.port}" if parts.port is not None else "")
    except ValueError:  # a malformed port or bracket: show the URL without anything before the '@'
        head, _, rest = url.partition("://")
        return f"{head}://***@{rest.rsplit('@', 1)[-1]}" if "@" in rest else url
    return urlunsplit(parts._replace(netloc=netloc))


def url_stem(url: str) -> str:
    """A file-name stem for outputs named after the URL (``…/clip.mp4`` → ``clip``; else the host)."""
    stem = PurePosixPath(_url_path(url)).stem
    name = stem or _host(url) or "stream"
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "stream"


def kind_from_name(url: str) -> UrlKind | None:
    """``image`` or ``video`` from the scheme and the path's extension; None when they do not say."""
    scheme = url.split("://", 1)[0].lower()
    if scheme in STREAM_SCHEMES:
        return "video"
    suffix = PurePosixPath(_url_path(url)).suffix.lower()
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    if suffix in VIDEO_EXTENSIONS or suffix in STREAM_EXTENSIONS:
        return "video"
    return None


def kind_from_content_type(content_type: str | None) -> UrlKind:
    """``video`` for a video, playlist or MJPEG Content-Type; everything else is tried as an image."""
    value = (content_type or "").split(";", 1)[0].strip().lower()
    return "video" if value.startswith("video/") or value in VIDEO_CONTENT_TYPES else "image"


def url_kind(url: str, options: UrlOptions = DEFAULT_OPTIONS) -> UrlKind:
    """Image or video: by the name when it says, else by the server's Content-Type (HEAD, then GET's headers).

    Raises :class:`ImageError` when the server cannot be reached or answers with an error.
    """
    kind = kind_from_name(url)
    if kind is not None:
        return kind
    source = display_url(url)
    try:
        with _open(url, options.timeout, method="HEAD") as response:
            return kind_from_content_type(response.headers.get("Content-Type"))
    except urllib.error.HTTPError as exc:
        if exc.code not in (405, 501):  # HEAD not allowed: ask with GET, read only the headers
            raise _network_error(exc, source, options.timeout) from None
    except _NETWORK_ERRORS as exc:
        raise _network_error(exc, source, options.timeout) from None
    try:
        with _open(url, options.timeout) as response:
            return kind_from_content_type(response.headers.get("Content-Type"))
    except _NETWORK_ERRORS as exc:
        raise _network_error(exc, source, options.timeout) from None


def fetch_bytes(url: str, options: UrlOptions = DEFAULT_OPTIONS) -> tuple[bytes, str | None]:
    """The body of ``url`` and its Content-Type, within ``options``' size and time limits, or :class:`ImageError`
    (also when the server answers with a video or stream Content-Type: that body is never read)."""
    source = display_url(url)
    deadline = time.monotonic() + options.total_timeout
    limit = options.max_bytes
    try:
        with _open(url, options.timeout) as response:
            declared = response.headers.get("Content-Length")
            if declared is not None and declared.strip().isdigit() and int(declared) > limit:
                raise ImageError(f"{source}: the server announces {int(declared) / MIB:.0f} MiB, above the "
                                 f"{limit / MIB:.0f} MiB image limit", reason="download above the size limit")
            content_type = response.headers.get("Content-Type")
            if kind_from_content_type(content_type) == "video":  # a stream: never read its body into memory
                raise ImageError(f"{source}: the server sends video ({content_type}), not an image",
                                 reason="video URL given as an image")
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() > deadline:
                    raise ImageError(f"{source}: download took longer than {options.total_timeout:g} s; gave up",
                                     reason="download too slow")
                chunk = response.read(min(_CHUNK, limit + 1 - size))
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    raise ImageError(f"{source}: more than {limit / MIB:.0f} MiB, above the image limit; gave up",
                                     reason="download above the size limit")
    except ImageError:
        raise
    except _NETWORK_ERRORS as exc:
        raise _network_error(exc, source, options.timeout) from None
    return b"".join(chunks), content_type


def read_url_image(url: str, options: UrlOptions = DEFAULT_OPTIONS) -> DecodedImage:
    """Download ``url`` and decode it with the checked decoder, as :func:`~feredge.preprocess.image_io.read_image`
    does a file. A video or stream URL is refused with a line that says where it goes instead."""
    source = display_url(url)
    if kind_from_name(url) == "video":
        raise ImageError(f"{source}: is a video or stream URL, not an image (videos go to infer as sources, "
                         f"or to Recognizer.stream)", reason="video URL given as an image")
    data, _ = fetch_bytes(url, options)
    return read_image_bytes(data, source, max_pixels=options.max_pixels, max_side=options.max_side,
                            max_bytes=options.max_bytes)


def open_stream_capture(url: str, options: UrlOptions = DEFAULT_OPTIONS) -> cv2.VideoCapture:
    """``cv2.VideoCapture(url, CAP_FFMPEG, open/read timeouts)``: the URL string itself, never a path.

    FFmpeg reads rtsp/rtmp/udp/srt/http(s) natively. Raises :class:`ImageError` (one line) when it
    cannot be opened: unreachable, refused, timed out, or nothing FFmpeg can decode.
    """
    milliseconds = max(1, round(options.timeout * 1000))
    params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, milliseconds, cv2.CAP_PROP_READ_TIMEOUT_MSEC, milliseconds]
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(min(level, cv2.utils.logging.LOG_LEVEL_ERROR))
    try:
        capture = cv2.VideoCapture(url, cv2.CAP_FFMPEG, params)
    finally:
        cv2.utils.logging.setLogLevel(level)
    if not capture.isOpened():
        capture.release()
        raise ImageError(f"{display_url(url)}: cannot open the stream (unreachable, refused, timed out after "
                         f"{options.timeout:g} s, or not a video FFmpeg can read; OPENCV_FFMPEG_LOGLEVEL=16 "
                         f"shows FFmpeg's reason)", reason="cannot open stream")
    return capture


def is_live_url(url: str, frame_count: int) -> bool:
    """A live stream (reconnected when it drops, frames dropped when processing falls behind): a streaming
    scheme, or an http(s) video whose container announces no frame count (an MJPEG camera, live HLS)."""
    scheme = url.split("://", 1)[0].lower()
    return scheme in STREAM_SCHEMES or frame_count <= 0


def _url_path(url: str) -> str:
    """The decoded path of ``url``; for a URL ``urlsplit`` refuses (a bad IPv6 bracket), the text after the host."""
    try:
        return unquote(urlsplit(url).path)
    except ValueError:
        rest = url.split("://", 1)[-1]
        return unquote("/" + rest.split("/", 1)[1].split("?", 1)[0].split("#", 1)[0]) if "/" in rest else ""


def _host(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


# --- urllib plumbing ---------------------------------------------------------------------------------


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """Follow redirects to http(s) only: an untrusted server must not send us to ftp:// or file://."""

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        if urlsplit(newurl).scheme.lower() not in HTTP_SCHEMES:
            raise urllib.error.HTTPError(newurl, code, f"redirect to a non-http URL refused ({newurl})",
                                         headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_HttpOnlyRedirects())


def _open(url: str, timeout: float, method: str = "GET") -> Any:
    scheme = url.split("://", 1)[0].lower()
    if scheme not in HTTP_SCHEMES:
        raise ValueError(f"not an http(s) URL: {scheme}://")
    request = urllib.request.Request(url, method=method, headers={"User-Agent": f"feredge/{__version__}"})
    return _OPENER.open(request, timeout=timeout)


def _network_error(exc: BaseException, source: str, timeout: float) -> ImageError:
    """One :class:`ImageError` line for what urllib, http.client, ssl or socket raised."""
    reason = exc.reason if isinstance(exc, urllib.error.URLError) and not isinstance(
        exc, urllib.error.HTTPError) else exc
    if isinstance(exc, urllib.error.HTTPError):
        text = f"HTTP {exc.code} {exc.reason}".strip()
    elif isinstance(reason, TimeoutError):  # socket.timeout is TimeoutError
        text = f"timed out after {timeout:g} s"
    elif isinstance(reason, ConnectionRefusedError):
        text = "connection refused (is the server running, and is this the right port?)"
    elif isinstance(reason, socket.gaierror):
        text = "cannot resolve the host name"
    elif isinstance(reason, ssl.SSLError | ssl.CertificateError):
        text = f"TLS error ({getattr(reason, 'reason', None) or reason})"
    elif isinstance(reason, http.client.HTTPException | ConnectionError):
        text = f"the server broke off the connection ({type(reason).__name__})"
    elif isinstance(reason, OSError):
        text = f"cannot connect ({reason.strerror or reason})"
    elif isinstance(exc, ValueError):
        text = f"not a valid URL ({exc})"
    else:
        text = str(reason)
    return ImageError(f"{source}: {text}", reason=text)
