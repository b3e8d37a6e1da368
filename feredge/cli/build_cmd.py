"""``feredge build``: build the bundle's engine for this device (TensorRT), stored in the bundle.

Engines depend on the GPU and the TensorRT version, so they are built where they run — a Jetson
builds its own. The engine lands in ``engines/sm<XY>-trt<version>/model.engine`` and in the
manifest; the runner then loads it without building. An engine that already matches this
device is kept unless ``--force``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from feredge.cli.common import add_json_flag, print_json

NAME = "build"
HELP = "build the bundle's TensorRT engine for this GPU and TensorRT version"
EXAMPLE = "feredge build bundles/mini_xception-tensorrt-fp16 --target trt"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", type=Path, help="bundle directory (exported with any target that has an ONNX)")
    parser.add_argument("--target", default="tensorrt", choices=("tensorrt", "trt", "engine"),
                        help="what to build (only tensorrt needs a device-side build)")
    parser.add_argument("--force", action="store_true", help="rebuild even if an engine for this device exists")
    parser.add_argument("--print-trtexec", action="store_true",
                        help="print the equivalent trtexec command line for this TensorRT and exit")
    add_json_flag(parser, "the built engine's key and path")


def run(args: argparse.Namespace) -> int:
    from feredge.bundle import Bundle
    from feredge.runtimes.tensorrt.builder import build_into_bundle, require_tensorrt
    from feredge.runtimes.tensorrt.engine_key import preflight
    from feredge.runtimes.tensorrt.plan import plan_from_manifest
    from feredge.runtimes.tensorrt.trtexec import trtexec_commands

    bundle = Bundle.load(args.bundle)
    if args.print_trtexec:
        for major, line in trtexec_commands(plan_from_manifest(bundle.manifest)).items():
            print(f"# TensorRT {major}\n{line}")
        return 0
    local = require_tensorrt()
    decision = preflight(bundle.manifest["files"], local.key, build_allowed=True)
    if decision.action == "load" and not args.force:
        result = {"key": str(local.key), "engine": decision.engine, "built": False}
        if args.json:
            print_json(result)
        else:
            print(f"{bundle.root}: engine {local.key} already matches this device ({decision.engine}); "
                  "--force rebuilds it")
        return 0
    quiet = bool(args.json)
    from feredge.progress import note

    built = build_into_bundle(bundle, local, log=None if quiet else lambda text: note(f"  {text}"))
    if args.json:
        print_json({"key": str(built.key), "engine": built.engine, "built": True, "device": local.device})
    else:
        print(f"built {bundle.root / built.engine} for {local.device} ({built.key})")
    return 0
