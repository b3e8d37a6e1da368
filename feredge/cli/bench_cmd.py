"""``feredge bench``: latency of a bundle on every installed runtime, batch 1 and 8 by default."""

from __future__ import annotations

import argparse
import json
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

from feredge.cli.common import add_json_flag, ensure_default_bundle, format_table, print_json, progress

NAME = "bench"
HELP = "measure inference latency (p50/p90/p99, throughput) per runtime and batch size"
EXAMPLE = "feredge bench --bundle bundles/default --runtimes openvino onnxruntime --batch 1 8 --json"

COLUMNS = [("runtime", "runtime"), ("precision", "precision"), ("batch", "batch"), ("p50_ms", "p50 ms"),
           ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"), ("mean_ms", "mean ms"), ("throughput_fps", "faces/s"),
           ("threads", "threads")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bundle", type=Path, help="bundle directory (default: the shipped model)")
    parser.add_argument("--runtimes", nargs="+", help="runtimes to measure (default: every installed one "
                        "the bundle has files for)")
    parser.add_argument("--batch", nargs="+", type=int, default=[1, 8], help="batch sizes (default 1 8)")
    parser.add_argument("--iterations", type=int, default=100, help="timed iterations per case (default 100)")
    parser.add_argument("--warmup", type=int, default=10, help="untimed warm-up iterations (default 10)")
    parser.add_argument("--threads", type=int, help="runtime threads (default: the runtime's choice)")
    parser.add_argument("--output", type=Path, help="write the JSON report to this file too")
    add_json_flag(parser, "the report")


def run(args: argparse.Namespace) -> int:
    from feredge.bench.latency import measure
    from feredge.bundle import Bundle
    from feredge.calibration.reference import reference_faces
    from feredge.errors import FeredgeError
    from feredge.runtimes.registry import available_runtimes, resolve_name, runner_class

    if args.iterations < 1 or args.warmup < 0 or min(args.batch) < 1:
        raise FeredgeError("--iterations and --batch must be at least 1, --warmup at least 0")
    bundle = Bundle.load(args.bundle or ensure_default_bundle(quiet=args.json))
    if max(args.batch) > bundle.max_batch:
        raise FeredgeError(f"batch {max(args.batch)} exceeds the bundle's max batch {bundle.max_batch}")
    if args.runtimes:
        names = [resolve_name(n) for n in args.runtimes]
    else:
        names = [n for n in available_runtimes()
                 if any(bundle.has(role) for role in runner_class(n).bundle_roles)]
    samples = reference_faces(bundle.spec, include_lfw=False).batch
    rows = []
    cases = [(name, batch) for name in names for batch in args.batch]
    runners = {}
    try:
        for name, batch in progress(cases, total=len(cases), desc="bench"):
            if name not in runners:
                runners[name] = runner_class(name).from_bundle(bundle, threads=args.threads).activate()
            stats = measure(runners[name], samples, batch, warmup=args.warmup, iterations=args.iterations)
            row = stats.to_dict()
            row["precision"] = stats.settings.get("inference_precision") or stats.settings.get("precision")
            row["threads"] = stats.settings.get("threads")
            rows.append(row)
    finally:
        for runner in runners.values():
            runner.deactivate()
    report = {
        "command": "feredge " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("feredge") else "feredge bench",
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "bundle": str(bundle.root),
        "model": bundle.model_name,
        "bundle_precision": bundle.precision,
        "machine": {"cpu": platform.processor() or platform.machine(), "python": platform.python_version()},
        "results": rows,
    }
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if args.json:
        print_json(report)
    else:
        print(f"{bundle.model_name} ({bundle.root}), {args.iterations} iterations after {args.warmup} warm-up")
        print(format_table(rows, COLUMNS))
    return 0
