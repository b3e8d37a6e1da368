"""``feredge export``: a model, checkpoint or the shipped default → verified bundle."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from feredge.cli.common import add_json_flag, print_json

NAME = "export"
HELP = "export a model to a verified ONNX / OpenVINO / TensorRT-ready bundle"
EXAMPLE = "feredge export --target openvino --precision fp32 --output bundles/default"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from feredge.export.targets import TARGETS

    targets = [name for t in TARGETS.values() for name in (t.name, *t.aliases)]
    parser.add_argument("--target", default="openvino", choices=targets, help="export format (default openvino)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16"), help="default fp32")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="registered model name (default: the shipped mini_xception)")
    source.add_argument("--checkpoint", type=Path, help="feredge checkpoint (.safetensors with .json sidecar)")
    parser.add_argument("--output", "-o", type=Path, help="bundle directory (default bundles/MODEL-TARGET-PREC)")
    parser.add_argument("--max-batch", type=int, default=64, help="largest batch the bundle accepts (default 64)")
    parser.add_argument("--force", action="store_true", help="replace an existing bundle directory")
    add_json_flag(parser, "the manifest")


def run(args: argparse.Namespace) -> int:
    from feredge.export.exporter import ExportOptions, export

    options = ExportOptions(target=args.target, precision=args.precision, output=args.output, model=args.model,
                            checkpoint=args.checkpoint, max_batch=args.max_batch, force=args.force)
    result = export(options, progress=None if args.json else lambda s: print(f"  {s}...", file=sys.stderr))
    for message in result.messages:
        print(f"note: {message}", file=sys.stderr)
    if args.json:
        print_json({"bundle": str(result.bundle), "manifest": result.manifest})
        return 0
    print(f"wrote {result.bundle} ({result.manifest['model']['name']}, {result.manifest['target']}, "
          f"{result.manifest['precision']})")
    for parity in result.manifest["parity"]["results"]:
        print(f"  parity {parity['runtime']:<22} max|Δlogit| {parity['max_abs']:.2e}  "
              f"top-1 agreement {parity['top1_agreement']:.1%}  on {parity['samples']} real faces")
    return 0
