"""``feredge infer URL``: images downloaded and run like files, bad URLs one line each, streams to OpenCV as URLs."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import cv2
import pytest

from feredge.cli import main
from tests.loopback import Route, refused_url


def _infer(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feredge", "infer", *args], capture_output=True, text=True,
                          cwd=cwd, timeout=600)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("feredge: error:")]


def test_an_image_url_gives_the_happy_face(default_bundle, http_server, tmp_path) -> None:
    url = http_server.url("/astronaut.jpg")
    result = _infer(url, "--bundle", str(default_bundle), "--json", "--annotate", str(tmp_path / "out"),
                    cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 1 and records[0]["source"] == url and records[0]["label"] == "happy"
    assert records[0]["probability"] > 0.9
    assert (tmp_path / "out" / "astronaut.annotated.jpg").is_file()
    assert http_server.requests == [("GET", "/astronaut.jpg")]  # the name said "image": no extra request


def test_a_batch_keeps_the_good_url_and_reports_each_bad_one(default_bundle, http_server, tmp_path) -> None:
    good, missing, refused = http_server.url("/photo"), http_server.url("/missing.jpg"), refused_url()
    result = _infer(good, missing, refused, "--bundle", str(default_bundle), "--json", cwd=tmp_path)
    assert result.returncode == 1  # a URL that failed is worth retrying: the run says so
    assert "Traceback" not in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["source"], r["label"]) for r in records] == [(good, "happy")]  # /photo: image by Content-Type
    errors = _errors(result.stderr)
    assert len(errors) == 2
    assert errors[0] == f"feredge: error: {missing}: HTTP 404 File not found"
    assert errors[1].startswith(f"feredge: error: {refused}: connection refused")


@pytest.fixture
def tiny_bundle_here(tmp_path: Path) -> Path:
    from tests.video.conftest import make_bundle

    return make_bundle(tmp_path / "tiny", detector="mtcnn", max_batch=2)


def test_an_rtsp_url_reaches_opencv_as_the_url_and_a_failed_open_is_one_line(tiny_bundle_here, monkeypatch,
                                                                             capsys) -> None:
    calls: list[tuple[Any, ...]] = []
    real = cv2.VideoCapture

    def spy(*args: Any) -> Any:
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(cv2, "VideoCapture", spy)
    url = "rtsp://127.0.0.1:1/x"
    code = main(["infer", url, "--bundle", str(tiny_bundle_here), "--json"])
    assert code == 1
    assert [call[:2] for call in calls] == [(url, cv2.CAP_FFMPEG)]  # not Path("rtsp:/127.0.0.1:1/x")
    err = capsys.readouterr().err
    assert _errors(err) == [f"feredge: error: {url}: cannot open the stream (unreachable, refused, timed out "
                            "after 10 s, or not a video FFmpeg can read; OPENCV_FFMPEG_LOGLEVEL=16 shows "
                            "FFmpeg's reason)"]


def test_an_http_video_runs_through_the_video_loop(tiny_bundle_here, http_server, tmp_path, capsys) -> None:
    from dataclasses import replace

    from feredge.data.synth.video import write_video
    from tests.video.conftest import SMALL

    video = write_video(tmp_path / "clip.avi", replace(SMALL, frames=8))
    http_server.routes["/cam/clip"] = Route(video.read_bytes(), "video/x-msvideo")  # video by Content-Type
    url = http_server.url("/cam/clip")
    code = main(["infer", url, "--bundle", str(tiny_bundle_here), "--json", "--max-frames", "6",
                 "--tracks", str(tmp_path / "tracks.csv")])
    assert code == 0
    records = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["source"] for r in records} == {url} and sorted({r["frame"] for r in records}) == list(range(6))
    assert {r["track_id"] for r in records} == {1, 2, 3}
    assert (tmp_path / "tracks.csv").read_text().count("\n") == 4  # header + three tracks
