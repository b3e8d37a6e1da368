"""What ``feredge infer`` takes as a source: a path, a camera index, or a URL kept as a string.

Why: argparse's ``type=Path`` turned ``rtsp://cam/live`` into ``rtsp:/cam/live`` (a path with the
double slash collapsed), which reached OpenCV as a file name that did not exist. :func:`source_arg`
keeps URLs as they were typed; :func:`split_sources` decides image or video per URL (by its name,
else by asking the server for its Content-Type, before any model work, like a missing file); the
helpers below let the command treat a URL like a file everywhere else (records, output names,
``--server``'s bytes). The fetching and opening themselves live in :mod:`feredge.preprocess.url`.
"""

from __future__ import annotations

from pathlib import Path

from feredge.preprocess.image_io import DecodedImage, is_video_path, read_image
from feredge.preprocess.url import (
    DEFAULT_OPTIONS,
    UrlOptions,
    display_url,
    fetch_bytes,
    is_url,
    read_url_image,
    url_kind,
    url_stem,
)

Source = Path | str | int  # a file or directory, a URL, a camera index


def source_arg(text: str) -> Path | str:
    """argparse type for a source: a URL stays the string it is (see the module doc), anything else a Path."""
    return text if is_url(text) else Path(text)


def split_sources(files: list[Source], failed: list[str], options: UrlOptions = DEFAULT_OPTIONS
                  ) -> tuple[list[Source], list[Source]]:
    """(the sources to process, those of them that are videos); URLs the server refuses go to ``failed``."""
    from feredge.errors import FeredgeError

    kept: list[Source] = []
    videos: list[Source] = []
    for source in files:
        if isinstance(source, str):
            try:
                video = url_kind(source, options) == "video"
            except FeredgeError as exc:
                failed.append(str(exc))
                continue
        else:
            video = isinstance(source, int) or is_video_path(source)
        kept.append(source)
        if video:
            videos.append(source)
    return kept, videos


def source_label(source: Source) -> str:
    """The ``source`` field of a record: the path as given, a URL without its password."""
    return display_url(source) if isinstance(source, str) else str(source)


def source_stem(source: Source) -> str:
    """The stem of output files named after the source (annotated copies, track CSVs)."""
    if isinstance(source, int):
        return f"camera{source}"
    return url_stem(source) if isinstance(source, str) else source.stem


def read_source_image(source: Path | str, options: UrlOptions = DEFAULT_OPTIONS) -> DecodedImage:
    """An image file through the checked decoder, or an image URL downloaded then decoded the same way."""
    return read_url_image(source, options) if isinstance(source, str) else read_image(source)


def source_bytes(source: Path | str, options: UrlOptions = DEFAULT_OPTIONS) -> bytes:
    """The encoded bytes of an image file or URL (``--server`` sends them as they are). A file's OS
    error is raised as it is; a URL's failure as a :class:`FeredgeError` with the reason only (the
    caller names the source, as it does for a file)."""
    if not isinstance(source, str):
        return source.read_bytes()
    from feredge.errors import FeredgeError
    from feredge.preprocess.image_io import ImageError

    try:
        return fetch_bytes(source, options)[0]
    except ImageError as exc:
        raise FeredgeError(exc.reason) from None
