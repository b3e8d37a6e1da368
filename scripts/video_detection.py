"""Adaptive detection on video: recall and false positives against ground truth, k=1 vs adaptive.

Writes benchmarks/video_detection.{json,md}. For each video with per-frame truth boxes and each
detector, the detect/track stage of ``feredge infer`` (:class:`feredge.video.schedule.ScheduledTracker`,
exactly what :class:`~feredge.video.processor.VideoProcessor` runs) is driven frame by frame with
the every-frame schedule (k=1, the behaviour before adaptive detection) and with adaptive ones.
Two ways to count a face as found (one-to-one, greedy, every other output box a false positive):

* ``iou``: an output box overlaps its truth box with IoU ≥ 0.5 — the strict, usual criterion,
  right for ``pasted_real`` whose truth is a face box;
* ``centre``: the output box's centre lies inside the truth box and its area is ¼–2× the truth's —
  convention-free, needed for ``synthetic_3face`` whose truth is the whole drawn sprite (face plus
  margin): MTCNN's tight 68×96 box on a 120×120 sprite has IoU 0.45 while sitting on the face.

Videos (rendered in memory, each frame JPEG-encoded at quality 85 and decoded, as an MJPG file
would be, so the numbers do not depend on the video codecs of the OpenCV build):

* ``synthetic_3face``: :mod:`feredge.data.synth.video`, 300 frames 640×360, 3 cartoon faces of
  120 px drifting — the issue's 3-face video;
* ``pasted_real``: :mod:`feredge.data.synth.pasted`, 300 frames 640×360, the astronaut's real face
  at 4 sizes moving up to ~3 px/frame, one jump across the frame at frame 200, a fourth face walking
  in at frame 150 and out at 260.

Recall, false positives and detector runs are deterministic (same machine, same libraries); the
ms/frame figures are wall times on whatever machine runs this and are provisional when it is shared.

    python scripts/video_detection.py                       # haar, mtcnn, blazeface
    python scripts/video_detection.py --detectors mtcnn --frames 120
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from feredge.data.synth.pasted import PastedFaceVideo, PastedSpec  # noqa: E402
from feredge.data.synth.video import SyntheticVideo, VideoSpec  # noqa: E402
from feredge.preprocess.boxes import Box  # noqa: E402
from feredge.preprocess.detect import create_detector  # noqa: E402
from feredge.preprocess.spec import DetectorSpec  # noqa: E402
from feredge.video.schedule import DetectionSchedule, ScheduledTracker  # noqa: E402
from feredge.video.tracker import iou_matrix  # noqa: E402

IOU_FOUND = 0.5
SCHEDULES: dict[str, DetectionSchedule] = {
    "k=1 (every frame)": DetectionSchedule.every_frame(),
    "adaptive k_max=8": DetectionSchedule(k_max=8),
    "adaptive k_max=16 (default)": DetectionSchedule(),
}


@dataclass
class Clip:
    name: str
    frames: list[np.ndarray]
    truth: list[list[Box]]
    description: str
    criterion: str  # the key of CRITERIA the report leads with


def _jpeg(image: np.ndarray) -> np.ndarray:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 85])
    assert ok
    return cv2.imdecode(data, cv2.IMREAD_COLOR)


def make_clips(frames: int) -> list[Clip]:
    synth = SyntheticVideo(VideoSpec(frames=frames, width=640, height=360, faces=3, face_size=120, seed=0))
    pasted = PastedFaceVideo(PastedSpec(frames=max(frames, 1)))
    return [
        Clip("synthetic_3face", [_jpeg(synth.frame(i)) for i in range(frames)],
             [[Box(*t.box) for t in synth.truth(i)] for i in range(frames)],
             "3 cartoon faces, 120 px, 640x360, drifting (feredge.data.synth.video)", "centre"),
        Clip("pasted_real", [_jpeg(pasted.frame(i)) for i in range(frames)],
             [[Box(*t.box) for t in pasted.truth(i)] for i in range(frames)],
             "the astronaut's face at 4 sizes, moving, a jump at frame 200, a face in at 150 and out at 260 "
             "(feredge.data.synth.pasted)", "iou"),
    ]


def centre_scores(truth: list[Box], found: list[Box]) -> np.ndarray:
    """1 - (centre distance / truth size) where the centre is inside the truth box and areas are ¼–2×, else 0."""
    out = np.zeros((len(truth), len(found)))
    for i, t in enumerate(truth):
        for j, f in enumerate(found):
            cx, cy = f.x + f.w / 2, f.y + f.h / 2
            ratio = (f.w * f.h) / max(1, t.w * t.h)
            if t.x <= cx <= t.x + t.w and t.y <= cy <= t.y + t.h and 0.25 <= ratio <= 2.0:
                out[i, j] = max(1e-3, 1.0 - np.hypot(cx - t.x - t.w / 2, cy - t.y - t.h / 2) / max(t.w, t.h))
    return out


CRITERIA: dict[str, tuple[Callable[[list[Box], list[Box]], np.ndarray], float]] = {
    "iou": (iou_matrix, IOU_FOUND),
    "centre": (centre_scores, 1e-3),
}


def match(truth: list[Box], found: list[Box], criterion: str = "iou") -> tuple[int, int, list[float]]:
    """(faces found, false positives, IoU of each found face), one-to-one greedy by the criterion's score."""
    score_fn, threshold = CRITERIA[criterion]
    scores = score_fn(truth, found)
    overlaps = iou_matrix(truth, found)
    hits: list[float] = []
    used_t: set[int] = set()
    used_f: set[int] = set()
    if scores.size:
        for flat in np.argsort(-scores, axis=None, kind="stable"):
            i, j = divmod(int(flat), len(found))
            if scores[i, j] < threshold:
                break
            if i in used_t or j in used_f:
                continue
            used_t.add(i)
            used_f.add(j)
            hits.append(float(overlaps[i, j]))
    return len(hits), len(found) - len(used_f), hits


def run(clip: Clip, detect: Callable[[np.ndarray], list[Box]], schedule: DetectionSchedule) -> dict[str, Any]:
    stage_ms: dict[str, float] = {"flow": 0.0, "detect": 0.0}
    tracker = ScheduledTracker(detect, schedule)
    counts = {c: {"found": 0, "false_positives": 0, "frames_with_every_face": 0, "missed": []} for c in CRITERIA}
    faces = truth_frames = 0
    ious: list[float] = []
    start = time.perf_counter()
    for index, (image, truth) in enumerate(zip(clip.frames, clip.truth, strict=True)):
        mark = time.perf_counter()

        def timed(stage: str) -> None:
            nonlocal mark
            now = time.perf_counter()
            stage_ms[stage] += (now - mark) * 1000.0
            mark = now

        result = tracker.step(image, index, timed)
        faces += len(truth)
        truth_frames += bool(truth)
        for criterion, c in counts.items():
            hit, fp, hit_ious = match(truth, result.boxes, criterion)
            c["found"] += hit
            c["false_positives"] += fp
            c["frames_with_every_face"] += bool(truth) and hit == len(truth)
            if hit < len(truth):
                c["missed"].append(index)
            if criterion == "iou":
                ious.extend(hit_ious)
    wall = (time.perf_counter() - start) * 1000.0
    n = len(clip.frames)
    by_criterion = {criterion: {
        "found": c["found"], "recall": round(c["found"] / faces, 4) if faces else 1.0,
        "false_positives": c["false_positives"], "false_positives_per_frame": round(c["false_positives"] / n, 4),
        "frames_with_every_face": c["frames_with_every_face"], "frames_missing_a_face": _ranges(c["missed"]),
    } for criterion, c in counts.items()}
    return {
        "frames": n, "faces": faces, "frames_with_faces": truth_frames, "criterion": clip.criterion,
        **by_criterion[clip.criterion], "by_criterion": by_criterion,
        "mean_iou_found": round(float(np.mean(ious)), 3) if ious else 0.0,
        "detector_runs": tracker.detections, "detector_runs_by_reason": dict(tracker.scheduler.runs),
        "ms_per_frame": round(wall / n, 2), "detect_ms_per_frame": round(stage_ms["detect"] / n, 2),
        "flow_ms_per_frame": round(stage_ms["flow"] / n, 2),
        "detect_ms_per_run": round(stage_ms["detect"] / max(1, tracker.detections), 2),
    }


def _ranges(indices: list[int]) -> str:
    """``[3, 4, 5, 9]`` → ``"3-5,9"``: where faces went missing, short enough for a table."""
    out: list[str] = []
    for i in indices:
        if out and int(out[-1].split("-")[-1]) == i - 1:
            out[-1] = f"{out[-1].split('-')[0]}-{i}"
        else:
            out.append(str(i))
    return ",".join(out)


def write_markdown(report: dict[str, Any], path: Path) -> None:
    lines = [
        "# Adaptive detection on video: recall vs detecting every frame",
        "",
        f"Produced by `python scripts/video_detection.py` ({report['machine']['platform']}, "
        f"{report['machine']['cpus']} CPUs, load average at start {report['machine']['load_avg_at_start']}). "
        "Raw figures: [`video_detection.json`](video_detection.json).",
        "",
        "A truth face is *found* (one-to-one) by an output box of the detect/track stage of `feredge infer` "
        f"(`ScheduledTracker`): on `pasted_real` (truth = the face box) when IoU ≥ {IOU_FOUND}; on "
        "`synthetic_3face` (truth = the whole 120 px sprite, face plus margin) when the box's centre is inside "
        "the sprite and its area ¼–2× the sprite's (MTCNN's tight box on a sprite has IoU 0.45); the JSON has "
        "both criteria for both videos. Any other output box is a false positive. "
        "**Recall, false positives and detector runs are deterministic; the ms columns are "
        "provisional** (wall time on a shared machine: other sessions were running).",
        "",
        "Schedules: `k=1` runs the detector on every frame (as before this change); `adaptive` runs it on the "
        "first frame, then every k-th frame with k doubling (1, 2, 4, 8, …) up to k_max while each detection "
        "confirms every tracked box, and on the next frame after a new or lost face, a tracked box that "
        "drifted (1 - IoU > 0.35 against its detection) or a face moving faster than 0.2 × its box per frame. "
        "Between detections boxes are carried by pyramidal Lucas–Kanade flow on corners inside each box "
        "(velocity as the initial guess, forward–backward check).",
        "",
    ]
    lines += ["## Summary: the default adaptive schedule against every frame", "",
              "| video | detector | recall k=1 → adaptive | false pos./frame k=1 → adaptive "
              "| detector runs k=1 → adaptive |",
              "|---|---|---|---|---|"]
    for clip in report["clips"]:
        rows = {(row["detector"], row["schedule"]): row["result"] for row in clip["runs"]}
        for detector in dict.fromkeys(row["detector"] for row in clip["runs"]):
            every = rows.get((detector, "k=1 (every frame)"))
            adaptive = rows.get((detector, "adaptive k_max=16 (default)"))
            if every and adaptive:
                lines.append(f"| {clip['name']} | {detector} | {every['recall']:.4f} → {adaptive['recall']:.4f} | "
                             f"{every['false_positives_per_frame']:.3f} → "
                             f"{adaptive['false_positives_per_frame']:.3f} | "
                             f"{every['detector_runs']} → {adaptive['detector_runs']} |")
    lines += ["", "Adaptive recall can exceed k=1's: a face the detector misses on some frames "
              "is carried by the flow and held for up to 3 detections, where "
              "detecting every frame simply loses it on that frame. Misses common to every schedule are the "
              "detector's (e.g. `pasted_real` frames 166–190: the 72 px face half inside the left edge). "
              "Cost (provisional): the flow takes a few ms per frame; it pays off for detectors slower than that "
              "(Haar, MTCNN) and is slower than BlazeFace's own detection on this machine — compare detector runs.",
              ""]
    for clip in report["clips"]:
        criterion = clip["runs"][0]["result"]["criterion"] if clip["runs"] else "iou"
        lines += [f"## {clip['name']}: {clip['description']}", "", f"Found by: `{criterion}`.", "",
                  "| detector | schedule | recall | frames with every face | false pos. / frame | detector runs "
                  "| mean IoU | frames missing a face | ms/frame* | detect ms/frame* | flow ms/frame* |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for row in clip["runs"]:
            r = row["result"]
            lines.append(
                f"| {row['detector']} | {row['schedule']} | {r['recall']:.4f} | {r['frames_with_every_face']}/"
                f"{r['frames_with_faces']} | {r['false_positives_per_frame']:.3f} | {r['detector_runs']} | "
                f"{r['mean_iou_found']:.3f} | {r['frames_missing_a_face'] or '—'} | {r['ms_per_frame']} | "
                f"{r['detect_ms_per_frame']} | {r['flow_ms_per_frame']} |")
        lines.append("")
    lines += ["\\* provisional: wall-clock on a shared 2-core machine; compare detector runs for the saving.", ""]
    path.write_text("\n".join(lines), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detectors", nargs="+", default=["blazeface_short_tiled", "haar", "mtcnn"])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "video_detection.json")
    args = parser.parse_args()
    clips = make_clips(args.frames)
    report: dict[str, Any] = {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version(),
                    "opencv": cv2.__version__, "load_avg_at_start": [round(x, 2) for x in os.getloadavg()]},
        "iou_found": IOU_FOUND,
        "schedules": {name: asdict(s) for name, s in SCHEDULES.items()},
        "clips": [],
    }
    for clip in clips:
        entry: dict[str, Any] = {"name": clip.name, "description": clip.description, "runs": []}
        for detector_name in args.detectors:
            detector = create_detector(DetectorSpec(name=detector_name))
            for schedule_name, schedule in SCHEDULES.items():
                result = run(clip, detector.detect, schedule)
                print(json.dumps({"clip": clip.name, "detector": detector_name, "schedule": schedule_name,
                                  **result}), flush=True)
                entry["runs"].append({"detector": detector_name, "schedule": schedule_name, "result": result})
        report["clips"].append(entry)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_markdown(report, args.output.with_suffix(".md"))
    print(f"wrote {args.output} and {args.output.with_suffix('.md')}")


if __name__ == "__main__":
    main()
