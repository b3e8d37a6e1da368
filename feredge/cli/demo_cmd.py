"""``feredge demo``: the README's main job on the embedded default, end to end.

Exports the shipped model to an ONNX + OpenVINO bundle, classifies the shipped face photo with
it (annotated image written), and benchmarks every installed runtime — the whole flow a new user
should see work before reading further. Where the training side (torch) is not installed — the
core install a device gets — or ``--bundle`` names one, the export step is left out and the
prebuilt default bundle (or the named one) is run as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from feredge.cli import bench_cmd, export_cmd, infer_cmd
from feredge.cli.args import OneLineParser, output_dir, positive_int
from feredge.cli.common import add_output_flags
from feredge.default_bundle import ensure_default_bundle

NAME = "demo"
HELP = "export the shipped model, run it on the shipped face photo, and benchmark the runtimes"
EXAMPLE = "feredge demo --output feredge-demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", type=output_dir, default=Path("feredge-demo"),
                        help="directory for the bundle, annotated image and reports (default feredge-demo)")
    parser.add_argument("--bundle", type=Path, help="run this bundle instead of exporting one (default: export the "
                        "shipped model when torch is installed, else run its prebuilt bundle)")
    parser.add_argument("--iterations", type=positive_int, default=50, help="bench iterations per case (default 50)")
    parser.add_argument("--json", action="store_true", help="print each step's results as JSON")


def run(args: argparse.Namespace) -> int:
    import importlib.util

    steps: list[tuple[Any, list[str]]] = []
    if args.bundle is not None:
        bundle = args.bundle
    elif importlib.util.find_spec("torch") is None:
        bundle = ensure_default_bundle(quiet=args.json)
        print(f"note: the training side (torch) is not installed: no export step; running the prebuilt bundle "
              f"{bundle}", file=sys.stderr)
    else:
        bundle = args.output / "bundle"
        steps.append((export_cmd, ["--target", "openvino", "--output", str(bundle), "--force"]))
    steps += [
        (infer_cmd, ["--bundle", str(bundle), "--annotate", str(args.output), "--output",
                     str(args.output / "faces.jsonl")]),
        (bench_cmd, ["--bundle", str(bundle), "--iterations", str(args.iterations), "--output",
                     str(args.output / "bench.json")]),
    ]
    shared = (["--json"] if args.json else []) + (["--quiet"] if args.quiet else []) + (
        ["--verbose"] if args.verbose else [])
    for module, argv in steps:
        parser = OneLineParser(prog=f"feredge {module.NAME}")
        module.add_arguments(parser)
        add_output_flags(parser)  # as the CLI gives every command
        print(f"$ feredge {module.NAME} {' '.join(argv)}")
        code = module.run(parser.parse_args(argv + shared))
        if code:
            return code
    print(f"demo outputs in {args.output}/ (annotated image: {args.output}/astronaut.annotated.jpg)")
    return 0
