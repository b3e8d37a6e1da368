"""A video run's console: a bar of frames, JSON lines streamed frame by frame, never a line per face otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from feredge.fileio import LineSink
from feredge.video.console import VideoConsole, expected_frames


def test_expected_frames_follows_every_and_max_frames() -> None:
    assert expected_frames(48) == 48 and expected_frames(48, every=5) == 10  # frames 0, 5, ..., 45
    assert expected_frames(48, max_frames=7) == 7 and expected_frames(None, max_frames=7) == 7
    assert expected_frames(None) is None  # a camera: an open-ended bar


def _records(frame: int, faces: int) -> list[dict]:
    base = {"source": "clip.avi", "frame": frame}
    return [{**base, "box": [0, 0, 10, 10], "label": "happy", "track_id": k} for k in range(faces)] or [
        {**base, "box": None, "label": None, "status": "no_face"}]


def test_json_lines_reach_the_file_and_stdout_as_each_frame_finishes(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    sink = LineSink(tmp_path / "faces.jsonl")
    console = VideoConsole("clip.avi", 3, json_stdout=True, sink=sink)
    console.frame(_records(0, 2))
    assert [json.loads(line)["track_id"] for line in (tmp_path / "faces.jsonl").read_text().splitlines()] == [0, 1]
    assert len(capsys.readouterr().out.splitlines()) == 2  # already on stdout: streamed, not kept for the end
    console.frame(_records(1, 0))
    console.close()
    sink.close()
    assert [json.loads(line)["frame"] for line in (tmp_path / "faces.jsonl").read_text().splitlines()] == [0, 0, 1]
    out, err = capsys.readouterr()
    assert json.loads(out)["status"] == "no_face" and err == ""  # stderr is not a terminal here: no bar
    assert (console.frames, console.faces) == (2, 2)


def test_without_json_nothing_per_face_reaches_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    console = VideoConsole("clip.avi", None, json_stdout=False, sink=None)
    for frame in range(5):
        console.frame(_records(frame, 3))
    console.close()
    assert capsys.readouterr() == ("", "")
