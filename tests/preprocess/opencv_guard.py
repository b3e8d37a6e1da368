"""A test guard: every OpenCV entry point that takes a path fails the test if given a non-UTF-8 one.

Such a path (a file name whose bytes are not UTF-8, decoded by ``os.fsdecode`` into surrogate
escapes) segfaulted OpenCV; the guard replaces ``cv2.imread``/``imwrite``/``VideoCapture``/
``VideoWriter``/``CascadeClassifier`` by wrappers that record and refuse the call instead of
letting it crash the test process. Offending calls are also kept in ``offences``, in case the code
under test swallowed the AssertionError.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import cv2
import pytest

PATH_APIS = ("imread", "imwrite", "imreadmulti", "haveImageReader", "VideoCapture", "VideoWriter",
             "CascadeClassifier")
NON_UTF8 = os.fsdecode(b"\xff\xfe")  # the bytes FF FE as a file-name fragment


def representable(value: Any) -> bool:
    if not isinstance(value, str):
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class OpenCVGuard:
    def __init__(self) -> None:
        self.offences: list[str] = []
        self.calls: dict[str, int] = {}

    def wrap(self, name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def guarded(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] = self.calls.get(name, 0) + 1
            bad = [a for a in (*args, *kwargs.values()) if not representable(a)]
            if bad:
                self.offences.append(f"cv2.{name}({bad[0]!r})")
                raise AssertionError(f"a non-UTF-8 path reached cv2.{name}: {bad[0]!r}")
            return real(*args, **kwargs)

        return guarded


def install(monkeypatch: pytest.MonkeyPatch) -> OpenCVGuard:
    guard = OpenCVGuard()
    for name in PATH_APIS:
        real = getattr(cv2, name, None)
        if real is not None:
            monkeypatch.setattr(cv2, name, guard.wrap(name, real))
    return guard


@pytest.fixture
def opencv_guard(monkeypatch: pytest.MonkeyPatch) -> OpenCVGuard:
    """Install the guard for one test; the test fails afterwards if anything slipped through."""
    guard = install(monkeypatch)
    yield guard
    assert guard.offences == []
