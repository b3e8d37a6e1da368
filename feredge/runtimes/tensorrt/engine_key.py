"""Engine keys and the pre-flight check that decides load, build or refuse — without TensorRT.

A serialized engine runs only on the GPU architecture and TensorRT version that built it
("Version tag does not match", TensorRT#2195); loading any other one fails deep inside TensorRT
or crashes. So every engine is stored under a key of both (``engines/sm87-trt10.3.0/model.engine``)
and, before deserializing, :func:`preflight` compares the bundle's engines with the running
(sm, TensorRT). The decision is a pure function of the manifest entries, so it is tested here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ENGINE_ROLE = "trt_engine"
TIMING_CACHE_ROLE = "trt_timing_cache"
CALIBRATION_CACHE_ROLE = "trt_calibration_cache"
_KEY = re.compile(r"^sm(\d+)-trt(\d+(?:\.\d+)*)$")


@dataclass(frozen=True, order=True)
class EngineKey:
    sm: str  # compute capability without the dot: "87" for Orin, "90" for H100
    trt_version: str  # "10.3.0"

    @classmethod
    def of(cls, compute_capability: tuple[int, int], trt_version: str) -> EngineKey:
        major, minor = compute_capability
        return cls(f"{major}{minor}", trt_version)

    @classmethod
    def parse(cls, text: str) -> EngineKey | None:
        match = _KEY.match(text)
        return cls(match.group(1), match.group(2)) if match else None

    @property
    def trt_major(self) -> int:
        return int(self.trt_version.split(".")[0])

    def __str__(self) -> str:
        return f"sm{self.sm}-trt{self.trt_version}"

    def directory(self) -> str:
        return f"engines/{self}"

    def engine_path(self) -> str:
        return f"{self.directory()}/model.engine"


def key_of_entry(name: str, entry: Mapping[str, Any]) -> EngineKey | None:
    """The key recorded with a manifest file entry, else the one in its ``engines/<key>/`` path."""
    recorded = entry.get("key")
    if isinstance(recorded, str) and (key := EngineKey.parse(recorded)):
        return key
    parts = name.split("/")
    return EngineKey.parse(parts[1]) if len(parts) >= 3 and parts[0] == "engines" else None


def engine_entries(files: Mapping[str, Any]) -> dict[EngineKey, str]:
    """key → engine file name, for every ``trt_engine`` entry of a manifest's ``files``."""
    out: dict[EngineKey, str] = {}
    for name, entry in files.items():
        if isinstance(entry, Mapping) and entry.get("role") == ENGINE_ROLE and (key := key_of_entry(name, entry)):
            out[key] = name
    return out


Action = Literal["load", "build", "refuse"]


@dataclass(frozen=True)
class Preflight:
    action: Action
    reason: str
    engine: str | None = None  # file to load (action "load")
    key: EngineKey | None = None  # key of the engine to load or build


def _describe(found: dict[EngineKey, str], running: EngineKey) -> str:
    if not found:
        return "the bundle has no TensorRT engine yet"
    same_gpu = [k for k in found if k.sm == running.sm]
    if same_gpu:
        return (f"the bundle's engine for sm{running.sm} was built with TensorRT {same_gpu[0].trt_version}, "
                f"this device runs TensorRT {running.trt_version} (stale)")
    return (f"the bundle's engines ({', '.join(map(str, sorted(found)))}) were built for another GPU, "
            f"this device is {running} (foreign)")


def preflight(files: Mapping[str, Any], running: EngineKey, *, build_allowed: bool) -> Preflight:
    """Load the engine whose key matches the running GPU and TensorRT; otherwise build or refuse.

    Never loads a stale (other TensorRT) or foreign (other GPU) engine: that is what crashes.
    """
    found = engine_entries(files)
    if running in found:
        return Preflight("load", f"engine {running} matches this device", found[running], running)
    why = _describe(found, running)
    if build_allowed:
        return Preflight("build", f"{why}; building one for {running}", None, running)
    return Preflight("refuse", f"{why}; building is disabled (--no-build): run `feredge build BUNDLE --target trt` "
                               f"on this device", None, running)
