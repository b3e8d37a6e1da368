"""Hostile command lines: bad arguments, OS errors, odd paths. One line, non-zero exit, nothing half-written."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from feredge.cli import COMMANDS, main
from feredge.fileio import LineSink, atomic_path, new_directory, write_text_atomic


def _one_error_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("feredge: error: "), stderr
    assert "Traceback" not in stderr
    return lines[0]


BAD_ARGUMENTS = [
    (["train", "--model", "mini_xception", "--data", "d", "--batch-size", "0"], "--batch-size: must be at least 1"),
    (["train", "--model", "mini_xception", "--data", "d", "--epochs", "-1"], "--epochs: must be at least 1"),
    (["train", "--model", "mini_xception", "--data", "d", "--lr", "nan"], "--lr: expected a number"),
    (["train", "--model", "mini_xception", "--data", "d", "--dropout", "1"], "--dropout: must be in [0, 1)"),
    (["infer", "--detect-width", "-5"], "--detect-width: must be at least 1, got -5"),
    (["infer", "--camera", "-1"], "--camera: must be at least 0, got -1"),
    (["infer", "--threads", "-1"], "--threads: must be at least 1, got -1"),
    (["infer", "--threads", "two"], "--threads: expected an integer, got 'two'"),
    (["infer", "--smoothing", "0"], "--smoothing: must be in (0, 1]"),
    (["infer", "--max-fps", "inf"], "--max-fps: must be in (0, ∞)"),
    (["data", "synth", "-o", "x", "--per-class", "2"], "--per-class: must be at least 3"),
    (["demo", "--iterations", "0"], "--iterations: must be at least 1"),
]


@pytest.mark.parametrize(("argv", "message"), BAD_ARGUMENTS, ids=lambda v: " ".join(v) if isinstance(v, list) else "")
def test_bad_arguments_fail_at_parse_time_in_one_line(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    line = _one_error_line(capsys.readouterr().err)
    assert message in line
    assert f"see 'feredge {argv[0]} --help'" in line


def test_output_paths_of_the_wrong_kind_are_refused_before_any_work(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    cases = [
        (["infer", "--output", str(tmp_path)], "is a directory; give a file path"),
        (["infer", "--stats", str(tmp_path)], "is a directory; give a file path"),
        (["infer", "--output", str(a_file / "out.jsonl")], "is a file, not a directory"),
        (["infer", "--annotate", str(a_file)], "exists and is not a directory"),
        (["train", "--model", "m", "--data", "d", "--out", str(a_file)], "exists and is not a directory"),
        (["eval", "x", "--data", "d", "--report-dir", str(a_file)], "exists and is not a directory"),
        (["data", "synth", "-o", str(a_file)], "exists and is not a directory"),
        (["data", "synth", "-o", str(a_file / "sub")], "is a file, not a directory"),
    ]
    for argv, message in cases:
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 2, argv
        assert message in _one_error_line(capsys.readouterr().err), argv
    assert a_file.read_text() == "keep me"


OS_ERRORS = [
    (OSError(errno.ENOSPC, "No space left on device", "/out/x"), "free disk space"),
    (PermissionError(errno.EACCES, "Permission denied", "/data/x.png"), "check the permissions"),
    (OSError(errno.EROFS, "Read-only file system", "/ro/x"), "read-only"),
    (IsADirectoryError(errno.EISDIR, "Is a directory", "/tmp"), "give a file path"),
    (NotADirectoryError(errno.ENOTDIR, "Not a directory", "/f/x"), "is a file, not a directory"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.NAME)
@pytest.mark.parametrize(("error", "hint"), OS_ERRORS, ids=lambda v: v.strerror if isinstance(v, OSError) else "")
def test_every_command_turns_os_errors_into_one_line(command, error, hint, monkeypatch, capsys):
    """The boundary in ``feredge.cli.main`` serves every registered command."""

    def failing_run(args):
        raise error

    argv = {"train": ["--model", "m", "--data", "d"], "eval": ["x", "--data", "d"], "data": ["synth", "-o", "o"],
            "build": ["b"], "qat": ["c", "--data", "d"], "serve": ["r"]}.get(command.NAME, [])
    real = main.__globals__["build_parser"]

    def parser_with_failing_handler():
        parser = real()
        for action in parser._subparsers._group_actions:  # the command's own parser, handler swapped
            action.choices[command.NAME].set_defaults(handler=failing_run)
        return parser

    monkeypatch.setitem(main.__globals__, "build_parser", parser_with_failing_handler)
    assert main([command.NAME, *argv]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert error.filename in line and hint in line


def test_json_lines_sink_keeps_only_whole_lines_when_the_disk_fills(tmp_path):
    path = tmp_path / "faces.jsonl"
    sink = LineSink(path)
    sink.write(json.dumps({"frame": 0, "label": "happy"}))
    real_write = sink._handle.write

    def half_then_full(data):
        real_write(bytes(data[: len(data) // 2]))
        raise OSError(errno.ENOSPC, "No space left on device")

    sink._handle.write = half_then_full
    with pytest.raises(OSError) as raised:
        sink.write(json.dumps({"frame": 1, "label": "sad"}))
    assert raised.value.errno == errno.ENOSPC and raised.value.filename == str(path)
    sink.close()
    lines = path.read_text().splitlines()
    assert [json.loads(line)["frame"] for line in lines] == [0]
    assert path.read_text().endswith("\n")


def test_sink_on_a_full_device_reports_enospc():
    sink = LineSink("/dev/full")
    with pytest.raises(OSError) as raised:
        sink.write("{}")
    sink.close()
    assert raised.value.errno == errno.ENOSPC


def test_atomic_writes_leave_the_old_file_when_they_fail(tmp_path):
    target = tmp_path / "eval.json"
    write_text_atomic(target, "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["eval.json"]


def test_new_directory_never_replaces_one_that_filled_meanwhile(tmp_path):
    from feredge.errors import FeredgeError

    dest = tmp_path / "set"
    with pytest.raises(FeredgeError, match="appeared meanwhile"), new_directory(dest) as staging:
        (staging / "a.png").write_bytes(b"new")
        dest.mkdir()
        (dest / "theirs.png").write_bytes(b"theirs")
    assert [p.name for p in dest.iterdir()] == ["theirs.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # staging removed


def _feredge(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "feredge", *args], capture_output=True, cwd=cwd, timeout=600,
                          env={**os.environ, **(env or {})})


def test_non_utf8_names_never_reach_opencv(default_bundle, astronaut_path, tmp_path):
    """Names whose bytes are not UTF-8 once segfaulted OpenCV; now they are read, written and printed."""
    root = os.fsencode(tmp_path)
    source_dir = root + b"/in\xff"
    os.mkdir(source_dir)
    with open(source_dir + b"/face\xfe.jpg", "wb") as handle:
        handle.write(astronaut_path.read_bytes())
    annotate = root + b"/out\xff"
    output = root + b"/faces\xff.jsonl"
    done = subprocess.run([sys.executable, "-m", "feredge", "infer", source_dir, "--bundle", str(default_bundle),
                           "--annotate", annotate, "--output", output], capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert b"Traceback" not in done.stderr
    assert os.listdir(annotate) == [b"face\xfe.annotated.jpg"]
    records = [json.loads(line) for line in Path(os.fsdecode(output)).read_bytes().splitlines()]
    assert [r["label"] for r in records] == ["happy"]
    assert b"face\xfe.jpg" in done.stdout  # printed as the name's own bytes


def test_data_synth_into_a_non_utf8_directory(tmp_path):
    out = os.fsencode(tmp_path) + b"/synth\xff"
    done = subprocess.run([sys.executable, "-m", "feredge", "data", "synth", "-o", out, "--per-class", "3"],
                          capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # 3 per class: one each for train, val and test (80/10/10 % would leave val and test empty)
    assert [len(os.listdir(out + f"/{split}/happy".encode())) for split in ("train", "val", "test")] == [1, 1, 1]


def test_missing_sources_are_reported_before_any_model_work(tmp_path):
    """No bundle named and none exported yet: a missing file must not trigger the default export."""
    done = _feredge("infer", str(tmp_path / "nosuchfile.jpg"), cwd=tmp_path)
    assert done.returncode == 1
    assert b"nosuchfile.jpg: no such file or directory" in done.stderr
    assert b"exporting" not in done.stderr and not (tmp_path / "bundles").exists()


def test_infer_without_torch_or_bundle_says_what_to_install(tmp_path, astronaut_path):
    """The core install (no torch) and an installation that lost the prebuilt bundle: one line on what to do."""
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        sys.modules["torch"] = None  # the core install: no torch
        import feredge.default_bundle, feredge.cli.common
        feredge.default_bundle.SHIPPED_BUNDLE = Path({str(tmp_path / "no-prebuilt")!r})  # package data left out
        from feredge.cli import main
        sys.exit(main(["infer", {str(astronaut_path)!r}]))
    """)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env=env)
    assert done.returncode == 2, done.stderr
    line = _one_error_line(done.stderr)
    assert "pip install 'feredge[train]'" in line and "--bundle" in line


def test_infer_output_on_a_full_disk_is_one_line(default_bundle, astronaut_path):
    done = _feredge("infer", str(astronaut_path), "--bundle", str(default_bundle), "--output", "/dev/full")
    assert done.returncode == 2
    line = _one_error_line(done.stderr.decode())
    assert "/dev/full: No space left on device; free disk space" in line


def test_read_only_target_is_one_line(default_bundle, astronaut_path):
    """/sys is mounted read-only (root cannot write it either)."""
    done = _feredge("infer", str(astronaut_path), "--bundle", str(default_bundle), "--annotate", "/sys/feredge-out")
    assert done.returncode == 2
    assert "/sys/feredge-out" in _one_error_line(done.stderr.decode())
