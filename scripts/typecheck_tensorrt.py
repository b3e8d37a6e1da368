#!/usr/bin/env python3
"""Type-check feredge's TensorRT code against ``tensorrt-stubs`` (TensorRT cannot install here).

Recipe from shared/docs/backends.md: install ``tensorrt-stubs`` with ``--no-deps`` (it depends
on ``tensorrt``) into a temporary directory, copy its ``tensorrt/`` and ``tensorrt_bindings/``
into a stub folder, repair that copy (parameters named ``in``; ``add_scale_nd``'s
``channel_axis`` default; the ``tensorrt_libs`` import and implicit re-exports in
``tensorrt/__init__.pyi``; ``ignore_errors`` for the stub modules), and run mypy with the folder
on ``mypy_path``. Nothing is committed or installed system-wide.

Exit status: mypy's; 3 when the stubs cannot be downloaded (no PyPI access).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKED_PATHS = [
    "feredge/runtimes/tensorrt",  # the device side: engine key, plan, builder, calibrator, CUDA, runner
    "feredge/export/tensorrt",  # the export target, options, fp16 converter, INT8 hook
    "feredge/export/trt_onnx_check.py",
    "feredge/cli/build_cmd.py",
]
STUBS = "tensorrt-stubs"
NO_PYPI = 3

MYPY_INI = """\
[mypy]
mypy_path = {stubs}
python_version = 3.10
follow_imports = silent
warn_unused_ignores = True
warn_redundant_casts = True
disallow_untyped_defs = True
check_untyped_defs = True
no_implicit_optional = True

[mypy-tensorrt.*,tensorrt_bindings.*]
ignore_errors = True

[mypy-tensorrt,tensorrt_bindings]
ignore_errors = True

[mypy-cuda.*,cuda,onnx.*,onnx,onnxconverter_common.*,modelopt.*,torch.*,safetensors.*,cv2.*,openvino.*]
ignore_missing_imports = True
"""


def install_stubs(into: Path) -> Path:
    """pip-install the stubs into ``into``; return the site directory holding them."""
    cmd = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check",
           "--target", str(into), STUBS]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not (into / "tensorrt_bindings" / "tensorrt.pyi").is_file():
        print(f"cannot install {STUBS} from PyPI: {done.stderr.strip().splitlines()[-1:] or done.returncode}")
        sys.exit(NO_PYPI)
    return into


def repair(site: Path, stubs: Path) -> None:
    for package in ("tensorrt", "tensorrt_bindings"):
        shutil.copytree(site / package, stubs / package)
    bindings = stubs / "tensorrt_bindings" / "tensorrt.pyi"
    text = bindings.read_text(encoding="utf-8")
    # 1. ``in`` is a keyword: rename those parameters
    text = re.sub(r"([(,]\s*)in(\s*:)", r"\1in_\2", text)
    # 2. a parameter without default after ones with defaults
    text = text.replace("power: Weights = None, channel_axis: int)", "power: Weights = None, channel_axis: int = 0)")
    bindings.write_text(text, encoding="utf-8")
    init = stubs / "tensorrt" / "__init__.pyi"
    lines = init.read_text(encoding="utf-8").replace("\r\n", "\n").split("\n")
    out = []
    for line in lines:
        # 3. tensorrt_libs is not installed (nor needed for types)
        if "tensorrt_libs" in line and line.startswith("import"):
            continue
        # 4. stubs need explicit re-exports
        match = re.match(r"^from (tensorrt_bindings(?:\.tensorrt)?) import (\w+)$", line)
        out.append(f"from {match.group(1)} import {match.group(2)} as {match.group(2)}" if match else line)
    text = "\n".join(out)
    text = re.sub(r", 'tensorrt_libs'", "", text)
    init.write_text(text, encoding="utf-8")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="trt-typecheck-") as tmp:
        work = Path(tmp)
        site = install_stubs(work / "site")
        stubs = work / "stubs"
        stubs.mkdir()
        repair(site, stubs)
        config = work / "mypy.ini"
        config.write_text(MYPY_INI.format(stubs=stubs), encoding="utf-8")
        # a persistent cache (git-ignored) makes reruns take seconds instead of a minute
        cmd = [sys.executable, "-m", "mypy", "--config-file", str(config), "--cache-dir",
               str(ROOT / ".mypy_cache" / "tensorrt-stubs"), *CHECKED_PATHS]
        done = subprocess.run(cmd, cwd=ROOT, check=False)
        return done.returncode


if __name__ == "__main__":
    sys.exit(main())
