"""``feredge eval``: accuracy, macro-F1, per-class recall and the confusion matrix (JSON + PNG)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from feredge.cli.args import output_dir
from feredge.cli.common import add_json_flag, print_json
from feredge.fileio import write_text_atomic

NAME = "eval"
HELP = "evaluate a checkpoint or a bundle on a labelled FER dataset; writes JSON and a confusion PNG"
EXAMPLE = "feredge eval runs/lfer/best.safetensors --data data/synth --split test --report-dir reports/lfer"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("artifact", type=Path,
                        help="checkpoint (.safetensors, e.g. runs/x/best.safetensors) or bundle directory")
    parser.add_argument("--data", type=Path, required=True, help="dataset root or CSV")
    parser.add_argument("--format", default="folder", help="dataset format (default folder)")
    parser.add_argument("--split", default="test", help="train, val or test (default test)")
    parser.add_argument("--runtime", default="auto", help="bundle runtime (default auto); checkpoints use torch")
    parser.add_argument("--report-dir", type=output_dir, help="write eval.json and confusion.png here")
    add_json_flag(parser, "the report")


def run(args: argparse.Namespace) -> int:
    from feredge.bench.evaluate import evaluate
    from feredge.metrics import write_confusion_png

    result = evaluate(args.artifact, args.data, fmt=args.format, split=args.split, runtime=args.runtime,
                      progress=True)
    data = result.to_dict()
    if args.report_dir:
        write_text_atomic(args.report_dir / "eval.json", json.dumps(data, indent=2) + "\n")
        write_confusion_png(result.report, args.report_dir / "confusion.png", result.title())
    if args.json:
        print_json(data)
        return 0
    print(f"{args.artifact} on {args.data} [{args.split}] via {result.runtime}: {result.report.summary()}")
    for name, recall in result.report.per_class_recall.items():
        print(f"  {name:<10} recall {recall:.2%}  (n={result.report.per_class_support[name]})")
    if args.report_dir:
        print(f"wrote {args.report_dir / 'eval.json'} and {args.report_dir / 'confusion.png'}")
    return 0
