"""Shared fixtures: real faces (scikit-image's LFW subset, the shipped photo) and one exported bundle."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from feredge.calibration.reference import demo_image_path, lfw_faces
from tests.loopback import http_server  # noqa: F401 - the loopback HTTP server fixture (URL sources)


@pytest.fixture(scope="session")
def astronaut_path() -> Path:
    return demo_image_path()


@pytest.fixture(scope="session")
def lfw() -> np.ndarray:
    faces = lfw_faces()
    assert faces is not None, "scikit-image (a dev dependency) provides lfw_subset.npy"
    return faces


@pytest.fixture(scope="session")
def default_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped default model exported once per session to an ONNX + OpenVINO bundle."""
    from feredge.export.exporter import ExportOptions, export

    out = tmp_path_factory.mktemp("bundles") / "default"
    export(ExportOptions(target="openvino", output=out))
    return out



#: the only reasons a test may skip: hardware this machine lacks. ``.ci/run`` sets FEREDGE_STRICT_SKIPS=1,
#: and any other skip then fails the run (a missing dependency must fail, never skip).
HARDWARE_SKIP_WORDS = ("tensorrt", "gpu", "cuda")


def _skips_not_for_hardware(config: pytest.Config) -> list[str]:
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    bad = []
    for report in reporter.stats.get("skipped", []) if reporter else []:
        reason = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if not any(word in reason.lower() for word in HARDWARE_SKIP_WORDS):
            bad.append(f"{report.nodeid}: {reason}")
    return bad


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    import os

    if os.environ.get("FEREDGE_STRICT_SKIPS") != "1":
        return
    bad = _skips_not_for_hardware(session.config)
    session.config.stash[_BAD_SKIPS] = bad
    if bad and exitstatus == 0:
        session.exitstatus = 1


_BAD_SKIPS = pytest.StashKey[list]()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, exitstatus: int, config: pytest.Config) -> None:
    bad = config.stash.get(_BAD_SKIPS, [])
    if bad:
        terminalreporter.write_line("FAILED: skips that are not for missing hardware (FEREDGE_STRICT_SKIPS=1):",
                                    red=True)
        for line in bad:
            terminalreporter.write_line(f"  {line}", red=True)


@pytest.fixture
def bundle_copy(default_bundle: Path, tmp_path: Path) -> Path:
    """A writable copy of the default bundle, for tests that tamper with one."""
    target = tmp_path / "copy"
    shutil.copytree(default_bundle, target)
    return target
