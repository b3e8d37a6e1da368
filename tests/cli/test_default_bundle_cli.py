"""The commands with no bundle named: the prebuilt default bundle, read-only; inputs checked before any model work.

Every run is a subprocess in a fresh working directory with HOME and XDG_CACHE_HOME of its own, so
"writes nothing" is checked where a user would look: the working directory, the cache, the package.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from feredge.cli import main
from tests.test_default_bundle import core_env, package_snapshot, run_without_training_side

CLI = "import runpy\nsys.argv = ['feredge', *{argv!r}]\nrunpy.run_module('feredge', run_name='__main__')\n"


def cli_without_training_side(argv: list[str], cwd: Path, tmp: Path):
    """``python -m feredge ARGV`` with torch, OpenVINO and the rest of the training side unimportable."""
    return run_without_training_side(CLI.format(argv=argv), cwd, core_env(tmp))


def fresh_dir(tmp: Path, name: str, astronaut: Path | None = None) -> Path:
    work = tmp / name
    work.mkdir()
    if astronaut is not None:
        shutil.copy(astronaut, work / "astronaut.jpg")
    return work


def test_infer_in_two_fresh_directories_writes_nothing_anywhere(tmp_path: Path, astronaut_path: Path) -> None:
    import subprocess
    import sys

    before = package_snapshot()
    for name in ("first", "second"):
        work = fresh_dir(tmp_path, name)
        result = subprocess.run([sys.executable, "-m", "feredge", "infer", str(astronaut_path), "--json"], cwd=work,
                                env=core_env(tmp_path), capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        assert [r["label"] for r in records] == ["happy"] and records[0]["probability"] > 0.9, records
        assert list(work.iterdir()) == [], f"{name}: infer wrote {sorted(p.name for p in work.iterdir())}"
        assert "exporting" not in result.stderr
    assert not (tmp_path / "cache" / "feredge").exists()  # the prebuilt bundle ran as it is: no copy, no export
    assert package_snapshot() == before


def test_infer_runs_the_prebuilt_bundle_without_the_training_side(tmp_path: Path, astronaut_path: Path) -> None:
    work = fresh_dir(tmp_path, "work", astronaut_path)
    result = cli_without_training_side(["infer", "astronaut.jpg"], work, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("astronaut.jpg#0: face at (") and "→ happy (" in result.stdout, result.stdout
    assert "ModuleNotFoundError" not in result.stderr and "Traceback" not in result.stderr
    assert sorted(p.name for p in work.iterdir()) == ["astronaut.jpg"]


def test_bench_and_demo_run_the_prebuilt_bundle_without_the_training_side(tmp_path: Path) -> None:
    work = fresh_dir(tmp_path, "work")
    bench = cli_without_training_side(["bench", "--batch", "1", "--iterations", "2", "--warmup", "0", "--json"], work,
                                      tmp_path)
    assert bench.returncode == 0, bench.stderr
    report = json.loads(bench.stdout)
    assert {r["runtime"] for r in report["models"][0]["rows"]} == {"onnxruntime"}, report["models"][0]["rows"]
    assert list(work.iterdir()) == []
    demo = cli_without_training_side(["demo", "--iterations", "2", "--output", "out"], work, tmp_path)
    assert demo.returncode == 0, demo.stderr
    assert "no export step; running the prebuilt bundle" in demo.stderr and "→ happy" in demo.stdout
    assert sorted(p.name for p in (work / "out").iterdir()) == ["astronaut.annotated.jpg", "bench.json", "faces.jsonl"]


def test_a_missing_input_fails_at_once_without_touching_a_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    from feredge.cli import infer_cmd
    from feredge.runtimes.pipeline import Pipeline

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("a model was resolved or loaded for an input that does not exist")

    monkeypatch.setattr(infer_cmd, "ensure_default_bundle", forbidden)
    monkeypatch.setattr(Pipeline, "from_bundle", forbidden)
    monkeypatch.chdir(tmp_path)
    assert main(["infer", "nosuchfile.jpg"]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["feredge: error: nosuchfile.jpg: no such file or directory"]
    assert captured.out == "" and list(tmp_path.iterdir()) == []


def test_export_into_a_taken_directory_is_refused_before_the_model_loads(tmp_path: Path) -> None:
    """Refused with torch unimportable: the check comes before the export side is even imported."""
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("keep me")
    result = cli_without_training_side(["export", "--output", str(taken)], tmp_path, tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"feredge: error: {taken}: already exists; pass --force to replace it"]
    assert sorted(p.name for p in taken.iterdir()) == ["mine.txt"]


def test_the_export_api_refuses_a_taken_output_before_loading_the_model(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    from feredge.errors import FeredgeError
    from feredge.export import exporter

    def forbidden(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the model was loaded for a destination that is taken")

    monkeypatch.setattr(exporter, "resolve_source", forbidden)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FeredgeError, match="already exists; pass --force"):
        exporter.export(exporter.ExportOptions(output=tmp_path))
    with pytest.raises(FeredgeError, match="is not a bundle directory"):
        exporter.export(exporter.ExportOptions(output=tmp_path / "file", force=True))
