"""Building into a bundle without TensorRT: the serialized engine is stood in for, the file handling is real.

What is checked is what ``build_into_bundle`` does around TensorRT: where the engine goes, how it is
listed, and that a write that fails half-way (here: a file-size limit, the same ``EFBIG``/``ENOSPC``
path as a full disk) leaves the engine the manifest already lists whole and nothing half-written.
"""

from __future__ import annotations

import errno
import resource
import shutil
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from feredge.bundle import Bundle
from feredge.errors import FeredgeError
from feredge.runtimes.tensorrt.builder import LocalTensorRT, build_into_bundle
from feredge.runtimes.tensorrt.engine_key import EngineKey

ORIN = LocalTensorRT("10.3.0", EngineKey("87", "10.3.0"), "Orin")


@pytest.fixture
def bundle_root(default_bundle: Path, tmp_path: Path) -> Path:
    root = tmp_path / "bundle"
    shutil.copytree(default_bundle, root)
    return root


def _stand_in(monkeypatch: pytest.MonkeyPatch, blob: bytes, *, fail: bool = False) -> list[Path]:
    """TensorRT's part: update the timing cache it is given (as the real build does), then return ``blob``
    or, with ``fail``, raise half-way as a failed build does. Returns the timing cache paths it was given."""
    given: list[Path] = []

    def build(_onnx: Path, _plan: object, *, timing_cache: Path | None = None, **_kwargs: object) -> bytes:
        assert timing_cache is not None
        given.append(timing_cache)
        timing_cache.write_bytes(timing_cache.read_bytes() + b"+" if timing_cache.is_file() else b"timing")
        if fail:
            raise FeredgeError("TensorRT 10.3.0 failed to build the engine (see its log above)")
        return blob

    monkeypatch.setattr("feredge.runtimes.tensorrt.builder.build_serialized_engine", build)
    return given


@contextmanager
def _file_size_limit(nbytes: int) -> Iterator[None]:
    """Writes past ``nbytes`` fail with EFBIG (SIGXFSZ ignored), for this process, inside the block only."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (nbytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def test_the_engine_lands_under_its_key_and_is_listed(bundle_root, monkeypatch):
    given = _stand_in(monkeypatch, b"engine v1" * 100)
    built = build_into_bundle(Bundle.load(bundle_root), ORIN)
    assert built.engine == "engines/sm87-trt10.3.0/model.engine" and built.key == ORIN.key
    assert built.timing_cache == "engines/sm87-trt10.3.0/timing.cache" and built.calibration_cache is None
    assert not given[0].is_relative_to(bundle_root)  # TensorRT wrote its cache outside the bundle
    bundle = Bundle.load(bundle_root)  # verifies every listed sha256, and that nothing is unlisted
    entry = bundle.manifest["files"][built.engine]
    assert (entry["role"], entry["key"], entry["device"], entry["bytes"]) == ("trt_engine", "sm87-trt10.3.0",
                                                                               "Orin", 900)
    assert bundle.manifest["files"][built.timing_cache]["role"] == "trt_timing_cache"
    assert (bundle_root / built.timing_cache).read_bytes() == b"timing"
    assert bundle.manifest["tensorrt"]["status"] == "built"
    assert bundle.manifest["tensorrt"]["engines"] == {"sm87-trt10.3.0": built.engine}


def test_a_rebuild_that_fails_half_way_keeps_the_listed_engine_whole(bundle_root, monkeypatch):
    _stand_in(monkeypatch, b"engine v1" * 100)
    built = build_into_bundle(Bundle.load(bundle_root), ORIN)
    engine = bundle_root / built.engine
    _stand_in(monkeypatch, b"\x01" * (1 << 20))  # v2: larger than the limit below
    with _file_size_limit(64 << 10), pytest.raises(OSError) as raised:
        build_into_bundle(Bundle.load(bundle_root), ORIN)
    assert raised.value.errno == errno.EFBIG
    assert engine.read_bytes() == b"engine v1" * 100
    assert (engine.parent / "timing.cache").read_bytes() == b"timing"  # the listed cache is untouched too
    assert sorted(p.name for p in engine.parent.iterdir()) == ["model.engine", "timing.cache"]  # no temporaries
    Bundle.load(bundle_root)  # still consistent: every listed sha256 is its file's, nothing unlisted


def test_a_rebuild_reads_the_listed_timing_cache_and_updates_it(bundle_root, monkeypatch):
    _stand_in(monkeypatch, b"engine v1")
    build_into_bundle(Bundle.load(bundle_root), ORIN)
    _stand_in(monkeypatch, b"engine v2")
    built = build_into_bundle(Bundle.load(bundle_root), ORIN)
    assert (bundle_root / built.timing_cache).read_bytes() == b"timing+"  # the copy TensorRT got was the bundle's
    assert (bundle_root / built.engine).read_bytes() == b"engine v2"
    Bundle.load(bundle_root)


def test_a_failed_build_leaves_the_bundle_as_it_was(bundle_root, monkeypatch):
    before = (bundle_root / "manifest.json").read_bytes()
    _stand_in(monkeypatch, b"", fail=True)  # TensorRT fails after updating its timing cache
    with pytest.raises(FeredgeError, match="failed to build"):
        build_into_bundle(Bundle.load(bundle_root), ORIN)
    assert (bundle_root / "manifest.json").read_bytes() == before
    assert not (bundle_root / "engines").exists()
    Bundle.load(bundle_root)


def test_a_first_build_that_fails_lists_no_engine(bundle_root, monkeypatch):
    _stand_in(monkeypatch, b"\x01" * (1 << 20))
    with _file_size_limit(64 << 10), pytest.raises(OSError):
        build_into_bundle(Bundle.load(bundle_root), ORIN)
    bundle = Bundle.load(bundle_root)
    assert not bundle.has("trt_engine") and "tensorrt" not in bundle.manifest
    directory = bundle_root / ORIN.key.directory()
    assert not directory.exists() or list(directory.iterdir()) == []
