#!/usr/bin/env python3
"""Soak a runner with many calls and record its resident memory: "bounded memory" measured, not assumed.

A day of video is millions of inferences; anything a runner keeps per call (it once kept every
call's time) grows without bound. This runs ``--calls`` batch-1 inferences of the default bundle's
classifier on a real face (the shipped photo through the bundle's own detector and preprocessing)
per runtime, samples RSS every ``--every`` calls, and writes the samples, the growth after warm-up
and a least-squares slope to ``benchmarks/runner_memory.{json,md}``.

Example: ``python scripts/runner_memory.py --calls 1000000 --runtimes onnxruntime openvino``
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def face_batch(bundle_path: Path) -> np.ndarray:
    from feredge.bundle import Bundle
    from feredge.calibration.reference import demo_image_path
    from feredge.preprocess.detect import create_detector
    from feredge.preprocess.image_io import read_image
    from feredge.preprocess.transform import preprocess_faces

    spec = Bundle.load(bundle_path).spec
    image = read_image(demo_image_path()).image
    boxes = create_detector(spec.detector).detect(image)
    batch = preprocess_faces(image, boxes, spec)
    if len(batch) == 0:
        raise SystemExit("no face found in the shipped photo")
    return np.ascontiguousarray(batch[:1])


def soak(bundle_path: Path, runtime: str, calls: int, every: int, warmup: int) -> dict[str, object]:
    from tqdm import tqdm

    from feredge.bundle import Bundle
    from feredge.runtimes.registry import runner_class
    from feredge.video.memory import rss_mb

    batch = face_batch(bundle_path)
    samples: list[tuple[int, float]] = []
    with runner_class(runtime).from_bundle(Bundle.load(bundle_path)) as runner:
        start = time.perf_counter()
        for call in tqdm(range(1, calls + 1), desc=runtime, file=sys.stderr, mininterval=2.0):
            runner.infer(batch)
            if call % every == 0 or call == warmup:
                samples.append((call, float(rss_mb() or 0.0)))
        seconds = time.perf_counter() - start
        kept = len(runner.timings)
    after = [(c, m) for c, m in samples if c >= warmup]
    x = np.array([c for c, _ in after], float)
    y = np.array([m for _, m in after], float)
    slope = float(np.polyfit(x / 1e6, y, 1)[0]) if len(after) >= 2 else float("nan")
    return {"runtime": runtime, "calls": calls, "seconds": round(seconds, 1),
            "us_per_call": round(seconds / calls * 1e6, 1), "timings_kept": kept,
            "rss_mb_at_warmup": round(after[0][1], 1), "rss_mb_at_end": round(after[-1][1], 1),
            "growth_mb_after_warmup": round(after[-1][1] - after[0][1], 2),
            "slope_mb_per_million_calls": round(slope, 2), "samples": samples}


def markdown(report: dict[str, object]) -> str:
    rows = report["rows"]
    assert isinstance(rows, list)
    lines = [
        "# Runner memory over many calls",
        "",
        f"`{report['command']}` — {report['date']}, {report['cpu']} ({report['isa']}), bundle `{report['bundle']}`.",
        "",
        f"Batch-1 calls on one real face; RSS sampled every {report['every']:,} calls; growth and slope are "
        f"measured from call {report['warmup']:,} (allocator pools and the runtimes' first requests settle "
        "before it). `timings kept` is the length of `Runner.timings` at the end (a bounded window).",
        "",
        "| runtime | calls | µs/call | timings kept | RSS at warm-up (MB) | RSS at end (MB) | growth (MB) | "
        "slope (MB / 10⁶ calls) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(f"| {row['runtime']} | {row['calls']:,} | {row['us_per_call']} | {row['timings_kept']:,} | "
                     f"{row['rss_mb_at_warmup']} | {row['rss_mb_at_end']} | {row['growth_mb_after_warmup']} | "
                     f"{row['slope_mb_per_million_calls']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     epilog="example: python scripts/runner_memory.py --calls 1000000")
    parser.add_argument("--bundle", type=Path, help="bundle (default: the shipped model, exported on first use)")
    parser.add_argument("--runtimes", nargs="+", default=["onnxruntime", "openvino"])
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--every", type=int, default=50_000)
    parser.add_argument("--warmup", type=int, default=50_000)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "runner_memory")
    args = parser.parse_args()

    from feredge.bench.cpu import cpu_info
    from feredge.default_bundle import ensure_default_bundle

    bundle = args.bundle or ensure_default_bundle()
    rows = [soak(bundle, runtime, args.calls, args.every, args.warmup) for runtime in args.runtimes]
    report = {"command": "python scripts/runner_memory.py " + " ".join(sys.argv[1:]),
              "date": time.strftime("%Y-%m-%d"), **cpu_info(), "bundle": str(bundle), "every": args.every,
              "warmup": args.warmup, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
