"""Hostile video input and output (issue 14, classes 1, 2 and 6): non-UTF-8 names, ``--camera -1``,
a truncated MJPG AVI (missing frames counted apart from corrupt ones), a full disk under JSON lines."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from feredge.data.synth.video import VideoSpec, corrupt_mjpeg_frame, write_video
from feredge.errors import FeredgeError
from feredge.preprocess.image_io import display_path, iter_video
from feredge.video import outputs
from feredge.video.outputs import AnnotatedVideo, JsonLines, TrackRow, write_track_csv
from feredge.video.processor import VideoStats
from feredge.video.smoothing import TrackHistory
from feredge.video.stream import CaptureSource, StreamStats, check_camera_index
from tests.preprocess.hostile_corpus import non_utf8_name
from tests.video.test_synthetic_and_outputs import _face

CLIP = VideoSpec(frames=40, width=160, height=120, faces=1, face_size=48, segment=10, seed=5)


def _read_all(path: Path) -> tuple[list[int], StreamStats]:
    source = CaptureSource(path)
    stats = StreamStats()
    try:
        indices = [frame.index for frame in source.frames(stats)]
    finally:
        source.close()
    return indices, stats


def _announced(path: Path) -> int | None:
    """Frames the container announces, as the reader sees them (what ``missing`` is counted against)."""
    source = CaptureSource(path)
    try:
        return source.frame_count
    finally:
        source.close()


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_video(tmp_path_factory.mktemp("hostile") / "clip.avi", CLIP)


def _truncated_copy(clip: Path, folder: Path, keep: float, corrupt: int | None = None) -> Path:
    path = folder / "cut.avi"
    path.write_bytes(clip.read_bytes())
    if corrupt is not None:
        corrupt_mjpeg_frame(path, corrupt)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def test_truncated_avi_reports_missing_frames_not_corrupt_ones(clip, tmp_path):
    path = _truncated_copy(clip, tmp_path, 0.5)
    assert _announced(path) == CLIP.frames  # the header still announces every frame
    indices, stats = _read_all(path)
    assert 0 < stats.read < CLIP.frames and indices == list(range(stats.read))
    assert stats.corrupt == 0 and stats.missing == CLIP.frames - stats.read


def test_truncated_avi_with_a_corrupt_frame_counts_both(clip, tmp_path):
    path = _truncated_copy(clip, tmp_path, 0.6, corrupt=5)
    indices, stats = _read_all(path)
    assert stats.corrupt == 1 and 5 not in indices and indices[:5] == [0, 1, 2, 3, 4]
    assert stats.read + stats.corrupt + stats.missing == CLIP.frames and stats.missing > 0
    line = VideoStats(source="cut.avi", stream=stats).line()
    assert f"corrupt 1, missing {stats.missing}" in line


def test_complete_avi_has_nothing_missing(clip):
    indices, stats = _read_all(clip)
    assert indices == list(range(CLIP.frames)) and (stats.corrupt, stats.missing) == (0, 0)


@pytest.mark.parametrize("index", [-1, -7, True, "0", 1.5])
def test_bad_camera_index_is_one_line_and_never_reaches_opencv(index, monkeypatch):
    def refuse(*_: object) -> None:
        raise AssertionError("cv2.VideoCapture must not be called for a bad camera index")

    monkeypatch.setattr(cv2, "VideoCapture", refuse)
    with pytest.raises(FeredgeError, match=r"^--camera (must be 0 or above|takes a camera index)") as info:
        check_camera_index(index)
    assert "\n" not in str(info.value)
    if isinstance(index, int) and not isinstance(index, bool):
        with pytest.raises(FeredgeError, match="--camera must be 0 or above"):
            CaptureSource(index)
    assert check_camera_index(0) == 0 and check_camera_index(np.int64(3)) == 3


def test_non_utf8_video_name_plays_through_an_alias(clip, tmp_path, opencv_guard):
    folder = tmp_path / non_utf8_name("dir", "")
    folder.mkdir()
    path = folder / non_utf8_name("clip", ".avi")
    path.write_bytes(clip.read_bytes())
    indices, stats = _read_all(path)
    assert indices == list(range(CLIP.frames)) and stats.missing == 0
    assert [i for i, _ in iter_video(path, every=10)] == [0, 10, 20, 30]
    assert _announced(path) == CLIP.frames
    assert CaptureSource(path).name == display_path(path) and "\\xff\\xfe" in display_path(path)
    assert opencv_guard.calls["VideoCapture"] >= 3


def test_annotated_video_under_a_non_utf8_name_is_written_then_renamed(tmp_path, opencv_guard):
    folder = tmp_path / non_utf8_name("out", "")
    path = folder / non_utf8_name("annotated", ".avi")
    video = AnnotatedVideo(path, fps=10)
    for _ in range(4):
        video.write(np.zeros((64, 80, 3), np.uint8), [_face(1, 0.7)])
        assert not path.exists()  # only the finished video appears under its name
    video.close()
    assert sorted(os.listdir(folder)) == [path.name]
    indices, _ = _read_all(path)
    assert indices == [0, 1, 2, 3] and opencv_guard.calls["VideoWriter"] == 1


def test_annotated_video_where_a_file_blocks_the_folder_is_one_line(tmp_path):
    (tmp_path / "file").write_text("x")
    video = AnnotatedVideo(tmp_path / "file" / "a.avi", fps=10)
    with pytest.raises(FeredgeError, match=r"^cannot write .*a\.avi: (File exists|Not a directory)$"):
        video.write(np.zeros((8, 8, 3), np.uint8), [])
    video.close()


def _records(n: int, frame: int) -> list[dict]:
    return [{"frame": frame, "track_id": k, "label": "happy", "pad": "x" * 200} for k in range(n)]


def test_full_disk_mid_write_leaves_only_whole_lines(tmp_path, monkeypatch):
    path = tmp_path / "faces.jsonl"
    sink = JsonLines.open(path)
    sink.write_frame(_records(2, 0))
    real_write, calls = os.write, []

    def short_then_full(fd: int, data: bytes) -> int:  # the kernel writes part, then the disk is full
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[: len(data) // 3]))
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(outputs.os, "write", short_then_full)
    with pytest.raises(FeredgeError) as info:
        sink.write_frame(_records(3, 1))
    assert str(info.value) == (f"cannot write {path}: No space left on device; it keeps the 2 complete "
                               "record(s) written before")
    monkeypatch.undo()
    sink.write_frame(_records(1, 2))  # space again: the file goes on from the last whole frame
    sink.close()
    text = path.read_text()
    assert text.endswith("\n") and [json.loads(line)["frame"] for line in text.splitlines()] == [0, 0, 2]


def test_dev_full_is_one_line():
    sink = JsonLines.open(Path("/dev/full"))
    with pytest.raises(FeredgeError, match=r"^cannot write /dev/full: No space left on device; it keeps the 0 "):
        sink.write_frame(_records(1, 0))
    sink.close()


def test_text_stream_failure_is_one_line():
    class Full:
        name = "<stdout>"

        def write(self, _: str) -> int:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

        def flush(self) -> None:
            pass

    with pytest.raises(FeredgeError, match=r"^cannot write <stdout>: No space left on device$"):
        JsonLines(Full()).write_frame(_records(1, 0))  # type: ignore[arg-type]


def test_json_lines_with_a_non_utf8_source_stay_ascii(tmp_path):
    sink = JsonLines.open(tmp_path / "f.jsonl")
    sink.write_frame([{"source": non_utf8_name("clip", ".avi")}])
    sink.close()
    assert json.loads((tmp_path / "f.jsonl").read_bytes().decode("ascii"))["source"].startswith("clip")


def test_track_csv_onto_a_directory_is_one_line_and_keeps_it(tmp_path):
    (tmp_path / "t.csv").mkdir()
    history = TrackHistory(0, 0)
    history.observe(0, "happy")
    with pytest.raises(FeredgeError, match=r"cannot write .*t\.csv: Is a directory"):
        write_track_csv(tmp_path / "t.csv", [TrackRow(1, history)], fps=25)
    assert (tmp_path / "t.csv").is_dir() and sorted(os.listdir(tmp_path)) == ["t.csv"]


def _infer(*args: str | Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    from tests.video.test_video_cli import _cmd, _env

    return subprocess.run(_cmd(*map(str, args)), capture_output=True, text=True, errors="replace", env=_env(),
                          cwd=cwd, timeout=300)


def test_cli_video_with_non_utf8_names_runs_and_writes_every_output(clip, tmp_path, tiny_bundle):
    path = tmp_path / non_utf8_name("clip", ".avi")
    path.write_bytes(clip.read_bytes())
    out = tmp_path / non_utf8_name("out", "")
    result = _infer(path, "--bundle", tiny_bundle, "--annotate", out, "--output", out / "faces.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    stem = Path(path).stem
    assert sorted(os.listdir(out)) == sorted([f"{stem}.annotated.mp4", f"{stem}.tracks.csv", "faces.jsonl"])
    frames, _ = _read_all(out / f"{stem}.annotated.mp4")
    assert len(frames) == CLIP.frames
    records = [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]
    assert {r["frame"] for r in records} == set(range(CLIP.frames))
    assert {r["source"] for r in records} == {display_path(path)}


def test_cli_truncated_video_reports_missing_frames(clip, tmp_path, tiny_bundle):
    path = _truncated_copy(clip, tmp_path, 0.5)
    result = _infer(path, "--bundle", tiny_bundle, cwd=tmp_path)
    _, stats = _read_all(path)
    assert result.returncode == 0 and f"corrupt 0, missing {stats.missing}," in result.stderr
    assert stats.missing > 0


def test_cli_negative_camera_is_one_error_line(tmp_path, tiny_bundle):
    result = _infer("--camera", "-1", "--bundle", tiny_bundle, cwd=tmp_path)
    errors = [line for line in result.stderr.splitlines() if line.startswith("feredge: error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr  # refused when parsed
    assert errors == ["feredge: error: argument --camera: must be at least 0, got -1 (see 'feredge infer --help')"]
