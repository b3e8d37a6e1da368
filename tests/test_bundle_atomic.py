"""Export atomicity (issue 14, class 4): never a moment without a valid bundle at the path, and
the exists/--force decision taken again at the final rename.

Both commit paths are tested: ``renameat2`` (Linux) and the portable fallback (backup + two
renames, recovered by ``Bundle.load`` and the next export). Kills are real: a child process that
``os._exit``s between two steps, with the parent checking what is left on disk.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from feredge import bundle as bundle_mod
from feredge.bundle import Bundle, file_entry, staged_bundle, write_manifest
from feredge.dirswap import RENAME_EXCHANGE, RENAME_NOREPLACE, rename2
from feredge.errors import FeredgeError
from feredge.preprocess.spec import PreprocessSpec

PATHS = ["renameat2", "fallback"]


def write_tiny_bundle(root: Path, marker: str) -> None:
    """A minimal valid bundle (no model: only the manifest machinery is under test)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "payload.txt").write_text(marker)
    spec = PreprocessSpec()
    write_manifest(root, {
        "model": {"name": "tiny"}, "labels": ["a", "b"], "spec": spec.to_dict(), "precision": "fp32",
        "target": "onnx", "input": {"shape": [None, *spec.input_shape]},
        "output": {"shape": [None, 2]}, "files": {"payload.txt": file_entry(root / "payload.txt", "payload")},
    })


def marker(root: Path) -> str:
    bundle = Bundle.load(root)
    return (bundle.root / "payload.txt").read_text()


@pytest.fixture(params=PATHS)
def commit_path(request, monkeypatch) -> str:
    if request.param == "fallback":
        monkeypatch.setattr(bundle_mod, "rename2", lambda *_a: False)
    elif not _renameat2_works():
        pytest.skip("renameat2 is not available here (not Linux, old libc or a file system without it)")
    return request.param


def _renameat2_works() -> bool:
    from feredge.dirswap import _renameat2

    return _renameat2() is not None


def test_renameat2_primitives(tmp_path):
    if not _renameat2_works():
        pytest.skip("renameat2 is not available here")
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f").write_text("a")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "f").write_text("b")
    assert rename2(tmp_path / "a", tmp_path / "b", RENAME_EXCHANGE)
    assert (tmp_path / "a" / "f").read_text() == "b" and (tmp_path / "b" / "f").read_text() == "a"
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileExistsError):  # onto an *empty* directory too, unlike os.rename
        rename2(tmp_path / "a", tmp_path / "empty", RENAME_NOREPLACE)
    assert rename2(tmp_path / "a", tmp_path / "c", RENAME_NOREPLACE)
    assert (tmp_path / "c" / "f").read_text() == "b"


def test_a_new_bundle_is_placed(tmp_path, commit_path):
    with staged_bundle(tmp_path / "out") as staging:
        write_tiny_bundle(staging, "new")
    assert marker(tmp_path / "out") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_force_replaces_and_leaves_nothing_behind(tmp_path, commit_path):
    write_tiny_bundle(tmp_path / "out", "old")
    with staged_bundle(tmp_path / "out", overwrite=True) as staging:
        write_tiny_bundle(staging, "new")
    assert marker(tmp_path / "out") == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_early_check_still_fails_fast(tmp_path, commit_path):
    write_tiny_bundle(tmp_path / "out", "old")
    entered = False
    with pytest.raises(FeredgeError, match="already exists; pass --force"), staged_bundle(tmp_path / "out"):
        entered = True
    assert not entered and marker(tmp_path / "out") == "old"


@pytest.mark.parametrize("appears", ["bundle", "empty directory", "file"])
def test_a_destination_appearing_during_the_export_is_not_replaced(tmp_path, commit_path, appears):
    out = tmp_path / "out"
    with pytest.raises(FeredgeError, match=r"appeared while exporting.*pass --force") as info, \
            staged_bundle(out) as staging:
        write_tiny_bundle(staging, "mine")
        if appears == "bundle":  # another export finished first
            write_tiny_bundle(out, "theirs")
        elif appears == "empty directory":
            out.mkdir()
        else:
            out.write_text("theirs")
    assert "\n" not in str(info.value)
    if appears == "bundle":
        assert marker(out) == "theirs"
    elif appears == "empty directory":
        assert out.is_dir() and not any(out.iterdir())
    else:
        assert out.read_text() == "theirs"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]  # staging removed


def test_with_force_a_bundle_appearing_meanwhile_is_replaced(tmp_path, commit_path):
    out = tmp_path / "out"
    with staged_bundle(out, overwrite=True) as staging:
        write_tiny_bundle(staging, "mine")
        write_tiny_bundle(out, "theirs")
    assert marker(out) == "mine"


def test_a_failed_body_touches_nothing(tmp_path, commit_path):
    write_tiny_bundle(tmp_path / "out", "old")
    with pytest.raises(RuntimeError), staged_bundle(tmp_path / "out", overwrite=True) as staging:
        write_tiny_bundle(staging, "half")
        raise RuntimeError("export died half-way")
    assert marker(tmp_path / "out") == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


# --- kills between steps (child processes) ---------------------------------------------------------

#: where the child dies → the markers a valid bundle at the path may carry afterwards
KILL_POINTS = {
    "in the body": ("renameat2", {"old"}),
    "after the exchange, before removing the old bundle": ("renameat2", {"new"}),
    "fallback: old moved aside, new not yet in place": ("fallback", {"old"}),
    "fallback: new in place, backup not yet removed": ("fallback", {"new"}),
}

CHILD = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    sys.path.insert(0, {tests!r})
    from test_bundle_atomic import write_tiny_bundle
    from feredge import bundle as b

    point, out = {point!r}, Path({out!r})
    def die(*_a, **_k):
        os._exit(9)
    if point.startswith("fallback"):
        b.rename2 = lambda *_a: False
        real_rename, real_replace = os.rename, os.replace
        if point.startswith("fallback: old moved aside"):
            b.os.rename = die  # the second rename (staging -> destination)
        else:
            b._remove = lambda path: die() if ".old-" in path.name else None
    elif point.startswith("after the exchange"):
        b._remove = die
    with b.staged_bundle(out, overwrite=True) as staging:
        write_tiny_bundle(staging, "new")
        if point == "in the body":
            die()
    print("not killed")
""")


@pytest.mark.parametrize("point", sorted(KILL_POINTS))
def test_a_kill_at_any_step_leaves_a_valid_bundle(tmp_path, point):
    path, allowed = KILL_POINTS[point]
    if path == "renameat2" and not _renameat2_works():
        pytest.skip("renameat2 is not available here")
    out = tmp_path / "out"
    write_tiny_bundle(out, "old")
    script = CHILD.format(tests=str(Path(__file__).parent), point=point, out=str(out))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert done.returncode == 9, done.stdout + done.stderr
    if point.startswith("fallback: old moved aside"):  # the window the fallback cannot close ...
        assert not out.exists() and any(".out.old-" in p.name for p in tmp_path.iterdir())
    assert marker(out) in allowed  # Bundle.load restores a backup the fallback left aside
    # the next export cleans up what the dead one left (its staging dir once stale) and works
    for leftover in tmp_path.iterdir():
        os.utime(leftover, (0, 0))
    with staged_bundle(out, overwrite=True) as staging:
        write_tiny_bundle(staging, "next")
    assert marker(out) == "next"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_the_next_export_restores_an_interrupted_swap_before_its_check(tmp_path):
    """Killed between the fallback's two renames: no bundle at the path, a backup beside it."""
    out = tmp_path / "out"
    write_tiny_bundle(tmp_path / ".out.old-999999999-x", "old")  # a PID that cannot be alive
    assert not out.exists()
    with pytest.raises(FeredgeError, match="already exists"), staged_bundle(out):
        pass
    assert marker(out) == "old"


def test_a_live_exports_backup_is_left_alone(tmp_path):
    backup = tmp_path / f".out.old-{os.getpid()}-x"
    write_tiny_bundle(backup, "old")
    with pytest.raises(FeredgeError, match="not a bundle directory"):
        Bundle.load(tmp_path / "out")
    assert backup.is_dir()


@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_force_does_not_replace_a_file_or_a_symlink(tmp_path, kind):
    out = tmp_path / "out"
    if kind == "file":
        out.write_text("not a bundle")
    else:
        write_tiny_bundle(tmp_path / "real", "real")
        out.symlink_to(tmp_path / "real", target_is_directory=True)
    with pytest.raises(FeredgeError, match="exists and is not a bundle directory"), \
            staged_bundle(out, overwrite=True):
        pass
    assert out.is_symlink() if kind == "symlink" else out.read_text() == "not a bundle"
