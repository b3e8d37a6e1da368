"""Images by URL: downloaded within limits, decoded by the checked decoder, every failure one line."""

from __future__ import annotations

import numpy as np
import pytest

from feredge.cli.sources import source_arg
from feredge.preprocess.image_io import ImageError, read_image, read_image_bytes
from feredge.preprocess.url import (
    UrlOptions,
    display_url,
    is_url,
    kind_from_name,
    read_url_image,
    url_kind,
    url_stem,
)
from tests.loopback import Route, refused_url

MIB = 1024 * 1024


def test_a_downloaded_photo_decodes_exactly_as_the_file(http_server, astronaut_path) -> None:
    downloaded = read_url_image(http_server.url("/astronaut.jpg"))
    local = read_image(astronaut_path)
    assert downloaded.source == http_server.url("/astronaut.jpg")
    assert downloaded.original_size == local.original_size and np.array_equal(downloaded.image, local.image)


def _error(url: str, options: UrlOptions | None = None) -> str:
    with pytest.raises(ImageError) as caught:
        read_url_image(url, options or UrlOptions())
    message = str(caught.value)
    assert "\n" not in message and message.startswith(display_url(url) + ": ")
    return message


def test_not_found_not_an_image_and_refused_are_one_line_each(http_server) -> None:
    assert "HTTP 404" in _error(http_server.url("/missing.jpg"))
    assert "not a readable image" in _error(http_server.url("/notimage.jpg"))  # the checked decoder said so
    assert "connection refused" in _error(refused_url())
    assert "not a valid URL" in _error("http://[::1/x.jpg")


def test_a_server_that_does_not_answer_times_out(http_server) -> None:
    http_server.routes["/slow.jpg"] = Route(b"", "image/jpeg", delay=3.0)
    assert "timed out after 0.3 s" in _error(http_server.url("/slow.jpg"), UrlOptions(timeout=0.3))


def test_the_size_cap_holds_for_announced_and_unannounced_lengths(http_server) -> None:
    body = b"\xff\xd8" + bytes(2 * MIB)
    http_server.routes["/announced.jpg"] = Route(b"", "image/jpeg", headers={"Content-Length": str(10 * MIB)})
    http_server.routes["/unannounced.jpg"] = Route(body, "image/jpeg", send_length=False)
    small = UrlOptions(max_bytes=MIB)
    assert "announces 10 MiB, above the 1 MiB image limit" in _error(http_server.url("/announced.jpg"), small)
    assert "more than 1 MiB" in _error(http_server.url("/unannounced.jpg"), small)


def test_a_redirect_away_from_http_is_refused(http_server) -> None:
    http_server.routes["/moved.jpg"] = Route(status=302, headers={"Location": "ftp://127.0.0.1:1/x.jpg"})
    http_server.routes["/file.jpg"] = Route(status=302, headers={"Location": "file:///etc/passwd"})
    assert "redirect to a non-http URL refused" in _error(http_server.url("/moved.jpg"))  # urllib would follow it
    assert "HTTP 302" in _error(http_server.url("/file.jpg"))  # urllib itself refuses this one


def test_a_video_content_type_is_not_read_as_an_image(http_server) -> None:
    http_server.routes["/cam"] = Route(bytes(MIB), "multipart/x-mixed-replace; boundary=frame")
    assert "the server sends video" in _error(http_server.url("/cam"))
    assert "video or stream URL" in _error("rtsp://127.0.0.1:1/live")


def test_kind_by_name_asks_nobody_and_by_content_type_asks_head_then_get(http_server) -> None:
    http_server.routes["/clip"] = Route(b"RIFF", "video/x-msvideo")
    http_server.routes["/nohead"] = Route(b"x", "image/png", head_status=405)
    assert url_kind(http_server.url("/a/b.JPG")) == "image" and url_kind("rtsp://cam/live") == "video"
    assert url_kind(http_server.url("/clip.mp4")) == "video" and url_kind("https://h/live.m3u8") == "video"
    assert http_server.requests == []
    assert url_kind(http_server.url("/photo")) == "image" and url_kind(http_server.url("/clip")) == "video"
    assert url_kind(http_server.url("/nohead")) == "image"
    assert http_server.requests == [("HEAD", "/photo"), ("HEAD", "/clip"), ("HEAD", "/nohead"), ("GET", "/nohead")]
    with pytest.raises(ImageError, match="HTTP 404"):
        url_kind(http_server.url("/gone"))


def test_urls_stay_strings_and_passwords_stay_out_of_messages() -> None:
    assert source_arg("rtsp://user:pw@cam:554/live/ch1?x=1") == "rtsp://user:pw@cam:554/live/ch1?x=1"
    assert str(source_arg("photos//a.jpg")) == "photos/a.jpg"  # a path is still a Path
    assert is_url("HTTPS://h/x") and is_url("rtmp://h/app") and not is_url("file:///x.jpg")
    assert not is_url("c:/x.jpg") and not is_url(42)
    assert display_url("rtsp://user:pw@cam:554/live?x=1") == "rtsp://user:***@cam:554/live?x=1"
    assert display_url("http://h/x.jpg") == "http://h/x.jpg"
    assert kind_from_name("http://h/photo") is None and kind_from_name("udp://239.0.0.1:1234") == "video"
    assert url_stem("http://h/a/clip%20x.mp4") == "clip_x" and url_stem("rtsp://cam:554/") == "cam"


def test_bytes_in_memory_get_the_file_checks(astronaut_path) -> None:
    data = astronaut_path.read_bytes()
    assert np.array_equal(read_image_bytes(data, "upload").image, read_image(astronaut_path).image)
    with pytest.raises(ImageError, match="upload: truncated JPEG"):
        read_image_bytes(data[: len(data) // 2], "upload")
    with pytest.raises(ImageError, match="upload: empty"):
        read_image_bytes(b"", "upload")
    with pytest.raises(ImageError, match="above the 0 MiB limit"):
        read_image_bytes(data, "upload", max_bytes=1000)
