"""Video-pipeline figures for benchmarks/video_pipeline.{md,json}: fps with/without track-based
skipping, flicker with/without smoothing, back-pressure drops, and a 10,000-frame memory soak.

Every figure comes from ``feredge infer`` itself (``--stats`` JSON), run as a subprocess on
generated videos (:mod:`feredge.data.synth.video`), so the numbers are what a user's command gets.

    python scripts/video_pipeline.py --bundle bundles/mini_xception-openvino-fp32 --work /tmp/vp-bench
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feredge.data.synth.video import VideoSpec, corrupt_mjpeg_frame, write_video  # noqa: E402

SHORT = VideoSpec(frames=200, width=640, height=360, faces=3, face_size=120, segment=50, seed=0)
SOAK = VideoSpec(frames=10_000, width=480, height=200, faces=3, face_size=96, segment=100, seed=1)


def infer(video: Path, bundle: Path, out: Path, *extra: str) -> dict[str, Any]:
    out.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "feredge", "infer", str(video), "--bundle", str(bundle), "--annotate", str(out),
               "--output", str(out / "faces.jsonl"), "--tracks", str(out / "tracks.csv"),
               "--stats", str(out / "stats.json"), *extra]
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr}")
    stats = json.loads((out / "stats.json").read_text())
    rows = list(csv.DictReader((out / "tracks.csv").open()))
    changes = [len(r["timeline"].split(";")) - 1 for r in rows]
    printable = " ".join(["feredge", "infer", video.name, *extra])
    summary = {
        "command": printable,
        "process_s": round(time.perf_counter() - start, 1),
        "fps": stats["fps"],
        "frames": stats["frames"],
        "faces": stats["faces"],
        "inferences": stats["inferences"],
        "inference_saving": stats["inference_saving"],
        "tracks": stats["tracks"],
        "label_changes_per_track": round(sum(changes) / max(1, len(changes)), 1),
        "stream": stats["stream"],
        "stage_ms_per_frame": {k: round(v / max(1, stats["frames"]), 2) for k, v in stats["stage_ms"].items()},
        "memory": stats["memory"],
        "inference_mode": stats["inference_mode"],
    }
    print(json.dumps(summary), flush=True)
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--work", type=Path, default=Path("/tmp/feredge-video-bench"))
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "video_pipeline.json")
    parser.add_argument("--skip-soak", action="store_true")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    short = write_video(args.work / "short.avi", SHORT)
    report: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "load_avg_at_start": os.getloadavg()},
        "bundle": str(args.bundle),
        "videos": {"short": asdict(SHORT), "soak": asdict(SOAK)},
        "runs": {},
    }
    runs = report["runs"]
    for detector in ("mtcnn", "haar"):
        runs[f"{detector}_skip"] = infer(short, args.bundle, args.work / f"{detector}_skip", "--detector", detector)
        runs[f"{detector}_noskip"] = infer(short, args.bundle, args.work / f"{detector}_noskip", "--detector",
                                           detector, "--no-skip")
    runs["mtcnn_nosmooth"] = infer(short, args.bundle, args.work / "mtcnn_nosmooth", "--detector", "mtcnn",
                                   "--no-skip", "--smoothing", "1")
    runs["mtcnn_realtime"] = infer(short, args.bundle, args.work / "mtcnn_realtime", "--detector", "mtcnn",
                                   "--realtime", "--queue", "4")
    runs["mtcnn_max_fps"] = infer(short, args.bundle, args.work / "mtcnn_max_fps", "--detector", "mtcnn",
                                  "--max-fps", "10")
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    if not args.skip_soak:
        soak = write_video(args.work / "soak.avi", SOAK)
        corrupt_mjpeg_frame(soak, SOAK.frames // 2)
        runs["soak_10k"] = infer(soak, args.bundle, args.work / "soak", "--detector", "mtcnn", "--detect-width",
                                 "320", "--memory-every", "100")
        report["soak_video"] = asdict(replace(SOAK)) | {"corrupt_frame": SOAK.frames // 2}
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
