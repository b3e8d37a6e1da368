"""``feredge infer`` on videos: outputs, corrupt frames, Ctrl-C leaves complete files, camera errors."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2

from feredge.data.synth.video import write_video
from tests.video.conftest import SMALL

ROOT = Path(__file__).resolve().parents[2]


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "feredge", "infer", *args]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def _check_outputs(out: Path, stem: str, frames: int) -> list[dict]:
    records = [json.loads(line) for line in (out / "faces.jsonl").read_text().splitlines()]
    assert {r["frame"] for r in records} and all("track_id" in r or r.get("status") == "no_face" for r in records)
    processed = len({r["frame"] for r in records})
    assert processed == frames
    rows = list(csv.DictReader((out / "tracks.csv").open()))
    assert rows and all(r["dominant"] and int(r["frames_seen"]) > 0 and r["timeline"] for r in rows)
    capture = cv2.VideoCapture(str(out / f"{stem}.annotated.mp4"))
    assert capture.isOpened()
    assert int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) == processed
    ok, image = capture.read()
    assert ok and image.shape[:2] == (SMALL.height, SMALL.width)
    return records


def test_video_run_writes_all_outputs_and_counts_the_corrupt_frame(tiny_bundle, corrupt_video, tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        _cmd(str(corrupt_video), "--bundle", str(tiny_bundle), "--annotate", str(out), "--output",
             str(out / "faces.jsonl"), "--tracks", str(out / "tracks.csv"), "--stats", str(out / "stats.json"),
             "--smoothing", "0.4", "--reinfer-every", "6"),
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env())
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    records = _check_outputs(out, "corrupt", SMALL.frames - 1)
    assert 20 not in {r["frame"] for r in records}
    stats = json.loads((out / "stats.json").read_text())
    assert stats["stream"]["corrupt"] == 1 and stats["frames"] == SMALL.frames - 1
    assert stats["tracks"] == 3 and 0 < stats["inferences"] < stats["faces"]
    assert "corrupt 1" in result.stderr and "fps" in result.stderr


def test_ctrl_c_leaves_complete_outputs(tiny_bundle, tmp_path):
    video = write_video(tmp_path / "long.avi", replace(SMALL, frames=2000))
    out = tmp_path / "out"
    process = subprocess.Popen(
        _cmd(str(video), "--bundle", str(tiny_bundle), "--annotate", str(out), "--output", str(out / "faces.jsonl"),
             "--tracks", str(out / "tracks.csv"), "--stats", str(out / "stats.json")),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=tmp_path, env=_env())
    jsonl = out / "faces.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not jsonl.exists() or jsonl.read_text().count("\n") < 30):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stderr
    stats = json.loads((out / "stats.json").read_text())
    assert stats["interrupted"] and 10 <= stats["frames"] < 2000
    _check_outputs(out, "long", stats["frames"])


def test_camera_errors_are_one_line(tiny_bundle, capsys):
    from feredge.cli import main

    assert main(["infer", "x.avi", "--camera", "0", "--bundle", str(tiny_bundle)]) == 2
    assert "either --camera or source files" in capsys.readouterr().err
    assert main(["infer", "--camera", "97", "--bundle", str(tiny_bundle), "--runtime", "onnxruntime"]) == 1
    err = capsys.readouterr().err
    assert "feredge: error: camera:97: cannot open camera" in err and "Traceback" not in err


def test_video_on_the_console_is_a_summary_not_a_line_per_face(tiny_bundle, small_video, tmp_path):
    result = subprocess.run(_cmd(str(small_video), "--bundle", str(tiny_bundle), "--max-frames", "12"),
                            capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env())
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""  # records only where asked (--json, --output)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 2, lines  # the video's summary, then the run's
    assert "12 frame(s) at" in lines[0] and "track(s)" in lines[0] and "face(s) seen" in lines[0]
    quiet = subprocess.run(_cmd(str(small_video), "--bundle", str(tiny_bundle), "--max-frames", "12", "--json", "-q"),
                           capture_output=True, text=True, timeout=300, cwd=tmp_path, env=_env())
    assert quiet.returncode == 0 and quiet.stderr == ""
    records = [json.loads(line) for line in quiet.stdout.splitlines()]
    assert len({r["frame"] for r in records}) == 12 and any("track_id" in r for r in records)
