"""The command line as a user meets it: help with examples, one-line errors, partial batches."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from feredge.cli import COMMANDS, main


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "feredge", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=600)


def test_top_level_help_lists_every_command_with_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for command in COMMANDS:
        assert command.NAME in out
        assert command.EXAMPLE in out


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.NAME)
def test_each_command_has_help_with_an_example_and_json(command, capsys):
    with pytest.raises(SystemExit):
        main([command.NAME, "--help"])
    out = capsys.readouterr().out
    assert "example:" in out and command.EXAMPLE in out
    assert "--json" in out


@pytest.fixture
def mixed_dir(tmp_path, astronaut_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    (folder / "face.jpg").write_bytes(astronaut_path.read_bytes())
    cv2.imwrite(str(folder / "blank.png"), np.full((120, 160, 3), 128, np.uint8))
    (folder / "empty.jpg").write_bytes(b"")
    (folder / "notes.jpg").write_text("hello")
    (folder / "readme.txt").write_text("not an image")
    return folder


def test_directory_with_bad_files_processes_the_good_ones(default_bundle, mixed_dir, tmp_path):
    out = tmp_path / "annotated"
    result = _run("infer", str(mixed_dir), "--bundle", str(default_bundle), "--json", "--annotate", str(out))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    by_source = {Path(r["source"]).name: r for r in records}
    assert by_source["face.jpg"]["label"] == "happy"
    assert by_source["blank.png"]["status"] == "no_face"
    assert set(by_source) == {"face.jpg", "blank.png"}
    errors = [line for line in result.stderr.splitlines() if line.startswith("feredge: error:")]
    assert len(errors) == 2
    assert any("empty.jpg: empty file" in e for e in errors)
    assert any("notes.jpg: not a readable image" in e for e in errors)
    assert "readme.txt" not in result.stderr  # a folder's text file is not a failed image: counted as skipped
    assert result.stderr.strip().splitlines()[-1].endswith("2 failed, 1 skipped (not images or videos)")
    assert (out / "face.annotated.jpg").is_file()


def test_a_folder_of_only_other_files_is_one_line(tmp_path):
    (tmp_path / "readme.txt").write_text("no photos here")
    result = _run("infer", str(tmp_path), "--bundle", str(tmp_path / "never-loaded"))
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"feredge: error: {tmp_path}: directory has no images or videos (1 other file(s) skipped)"]


def test_nothing_processable_exits_non_zero_with_one_line(default_bundle, tmp_path):
    (tmp_path / "bad.jpg").write_text("no")
    result = _run("infer", str(tmp_path / "bad.jpg"), "--bundle", str(default_bundle))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "bad.jpg: not a readable image" in result.stderr


def test_infer_on_a_video(default_bundle, tmp_path, astronaut_path):
    frame = cv2.imread(str(astronaut_path))
    writer = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, frame.shape[1::-1])
    for _ in range(4):
        writer.write(frame)
    writer.release()
    result = _run("infer", str(tmp_path / "clip.avi"), "--bundle", str(default_bundle), "--json", "--every", "2")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["frame"] for r in records] == [0, 2]
    assert all(r["label"] == "happy" for r in records)


def test_tampered_bundle_is_a_one_line_error(default_bundle, tmp_path):
    import shutil

    copy = tmp_path / "b"
    shutil.copytree(default_bundle, copy)
    (copy / "model.xml").write_text("<net/>")
    result = _run("infer", "--bundle", str(copy))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"feredge: error: {copy}: model.xml does not match its sha256 in the manifest (tampered?)"]


def test_export_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "existing"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    result = _run("export", "--output", str(target))
    assert result.returncode == 2
    assert "already exists; pass --force" in result.stderr
    assert (target / "mine.txt").read_text() == "keep me"


def test_unknown_model_is_a_one_line_error():
    result = _run("export", "--model", "no_such_net", "--output", "/tmp/never")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("feredge: error: unknown model 'no_such_net'")
    assert "Traceback" not in result.stderr


def test_bench_json_report(default_bundle, tmp_path):
    report_path = tmp_path / "bench.json"
    result = _run("bench", "--bundle", str(default_bundle), "--runtimes", "onnxruntime", "openvino",
                  "--batch", "1", "4", "--iterations", "5", "--warmup", "1", "--json", "--output", str(report_path))
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert json.loads(report_path.read_text()) == report
    cases = {(r["runtime"], r["batch"]) for r in report["results"]}
    assert cases == {("onnxruntime", 1), ("onnxruntime", 4), ("openvino", 1), ("openvino", 4)}
    for row in report["results"]:
        assert 0 < row["min_ms"] <= row["p50_ms"] <= row["p90_ms"] <= row["p99_ms"] <= row["max_ms"]
        assert row["throughput_fps"] == pytest.approx(row["batch"] * 1000 / row["p50_ms"])
    assert {r["precision"] for r in report["results"]} <= {"f32", "fp32"}
