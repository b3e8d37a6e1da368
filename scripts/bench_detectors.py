"""Face detectors compared on real faces that ship in packages: recall, false positives, ms per frame.

Why this set: the machine has no network and no face dataset, but three wheels carry real
photographs of faces — scikit-image (``astronaut``, ``camera``, ``lfw_subset``: 100 real LFW faces,
25×25 grey) and matplotlib (``grace_hopper.jpg``) — and real photographs without people to put them
on (scikit-image ``coffee``, ``rocket``, ``motorcycle_left``, ``chelsea``, ``brick``, ``grass``,
``gravel``, ``hubble_deep_field``; scikit-learn ``china.jpg``, ``flower.jpg`` — scikit-learn comes
with nncf in the ``int8`` extra, matplotlib and scikit-image with ``dev``/``train``). The set is:

* **photos**: the three real photos as shipped, one hand-annotated face each (forehead to chin);
* **composites**: 1280×720 scenes, each a background photo with up to 6 real faces pasted (the
  three portraits' heads with their hair and neck, feathered into the scene, half of them mirrored,
  and LFW faces, these only up to 50 px wide: 2× their 25 px) at one of three face-size ranges
  (28–50, 56–110, 120–220 px wide), rotated by −30…30°, under a per-face
  gain and a per-scene lighting (normal, dark, bright gamma, low contrast); the truth box is the
  pasted face box, same size, around the rotated face centre;
* **synthetic**: frames of :class:`feredge.data.synth.video.SyntheticVideo` (the project's drawn faces;
  truth = the sprite box, which frames the drawn face with background around it);
* **negatives**: every background photo alone, at 1280×720 (any detection is a false positive).

A detection matches a truth box when their IoU is ≥ :data:`MATCH_IOU` (0.3: the detectors frame a
face differently — Haar square and loose, MTCNN tall, BlazeFace square and tight — and 0.3 still
rejects a box on the wrong face or a box the size of a head and shoulders); matching is one-to-one,
best IoU first. Recall = matched truths / truths; false positives = unmatched detections.
Everything is deterministic (seeded); ``--timing`` adds ms per frame at 640×360, 1280×720 and
1920×1080 (median of ``--repeat`` calls after one warm-up, each detector with its default threads
and runtime, as a user runs it: BlazeFace on OpenVINO when installed, every core).

Usage::

    python scripts/bench_detectors.py --out benchmarks/detectors.json          # accuracy only
    python scripts/bench_detectors.py --timing --out benchmarks/detectors.json # + timings (quiet machine!)
    python scripts/bench_detectors.py --save-images /tmp/det                   # the set, with truth drawn
    python scripts/bench_detectors.py --only none --scores 0.6 0.65 0.7 0.75 0.8  # the default's threshold sweep
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from feredge.preprocess.detect import Box, Detector, create_detector
from feredge.preprocess.spec import DetectorSpec

MATCH_IOU = 0.3
LFW_SIDE = 25
CANVAS = (1280, 720)
SIZE_RANGES = {"small": (28, 50), "medium": (56, 110), "large": (120, 220)}
LIGHTINGS = ("normal", "dark", "bright", "low_contrast")
ROTATIONS = (-30, -15, 0, 0, 15, 30)
TIMING_SIZES = ((640, 360), (1280, 720), (1920, 1080))

#: hand-annotated face boxes (x, y, w, h; forehead to chin, cheek to cheek) of the shipped portraits
PORTRAIT_BOXES = {
    "astronaut": (177, 62, 92, 114),
    "camera": (202, 120, 58, 74),
    "grace_hopper": (172, 112, 178, 222),
}
BACKGROUNDS = ("coffee", "rocket", "motorcycle_left", "chelsea", "brick", "grass", "gravel", "hubble_deep_field",
               "china", "flower")


@dataclass
class Sample:
    name: str
    group: str  # photos, composites, synthetic, negatives
    image: np.ndarray  # BGR uint8
    truth: list[tuple[int, int, int, int]] = field(default_factory=list)
    tags: list[dict[str, Any]] = field(default_factory=list)  # per truth: size range, rotation, lighting, source


def _bgr(rgb: np.ndarray) -> np.ndarray:
    if rgb.ndim == 2:
        return cv2.cvtColor(rgb, cv2.COLOR_GRAY2BGR)
    return cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2BGR)


def portraits() -> dict[str, np.ndarray]:
    import matplotlib.cbook
    import skimage.data
    import skimage.io

    hopper = skimage.io.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return {"astronaut": _bgr(skimage.data.astronaut()), "camera": _bgr(skimage.data.camera()),
            "grace_hopper": _bgr(hopper)}


def backgrounds() -> dict[str, np.ndarray]:
    import skimage.data
    from sklearn.datasets import load_sample_image

    out = {}
    for name in BACKGROUNDS:
        if name in ("china", "flower"):
            image = load_sample_image(f"{name}.jpg")
        elif name == "motorcycle_left":
            image = skimage.data.stereo_motorcycle()[0]
        else:
            image = getattr(skimage.data, name)()
        out[name] = _bgr(image if image.dtype == np.uint8 else (np.clip(image, 0, 1) * 255).astype(np.uint8))
    return out


def lfw_faces() -> np.ndarray:
    """The 100 face crops of scikit-image's LFW subset (25×25, grey, uint8, face fills the crop)."""
    import skimage.data

    return (skimage.data.lfw_subset()[:100] * 255).round().astype(np.uint8)


def _cover(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize-and-centre-crop to exactly ``size`` (width, height)."""
    w, h = size
    scale = max(w / image.shape[1], h / image.shape[0])
    resized = cv2.resize(image, (math.ceil(image.shape[1] * scale), math.ceil(image.shape[0] * scale)),
                         interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    y0, x0 = (resized.shape[0] - h) // 2, (resized.shape[1] - w) // 2
    return resized[y0:y0 + h, x0:x0 + w].copy()


def _light(image: np.ndarray, mode: str) -> np.ndarray:
    x = image.astype(np.float32)
    if mode == "dark":
        x = x * 0.4
    elif mode == "bright":
        x = 255.0 * (x / 255.0) ** 0.55
    elif mode == "low_contrast":
        x = 128.0 + (x - 128.0) * 0.45
    return np.clip(x, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class FacePatch:
    """A real face with context: the image, its face box inside it, how much of it may be pasted."""

    source: str
    image: np.ndarray
    box: tuple[int, int, int, int]
    context: float  # patch side / face side


def face_patches() -> list[FacePatch]:
    patches = [FacePatch(name, image, PORTRAIT_BOXES[name], 1.7) for name, image in portraits().items()]
    for i, face in enumerate(lfw_faces()):
        patches.append(FacePatch(f"lfw{i:03d}", _bgr(face), (1, 1, 23, 23), 1.0))
    return patches


def _mirrored(patch: FacePatch) -> FacePatch:
    x, y, w, h = patch.box
    return replace(patch, image=np.ascontiguousarray(patch.image[:, ::-1]), box=(patch.image.shape[1] - x - w, y, w, h))


def _paste(canvas: np.ndarray, patch: FacePatch, face_w: int, angle: float, gain: float,
           centre: tuple[float, float]) -> tuple[int, int, int, int]:
    """Paste ``patch`` so its face is ``face_w`` wide, rotated by ``angle``° about its face centre at
    ``centre``, feathered by an elliptical mask; returns the truth box (x, y, w, h)."""
    fx, fy, fw, fh = patch.box
    scale = face_w / fw
    cx, cy = fx + fw / 2, fy + fh / 2
    half = max(fw, fh) * patch.context / 2
    # source region around the face (clipped), with an alpha ellipse inscribed in it
    x0, y0 = max(0, round(cx - half)), max(0, round(cy - half))
    x1, y1 = min(patch.image.shape[1], round(cx + half)), min(patch.image.shape[0], round(cy + half))
    region = patch.image[y0:y1, x0:x1].astype(np.float32) * gain
    alpha = np.zeros(region.shape[:2], np.float32)
    rx, ry = (x1 - x0) / 2, (y1 - y0) / 2
    cv2.ellipse(alpha, (round(rx), round(ry)), (max(1, round(rx * 0.92)), max(1, round(ry * 0.92))), 0, 0, 360,
                1.0, -1)
    feather = max(1, int(min(rx, ry) * 0.25)) | 1
    alpha = cv2.GaussianBlur(alpha, (feather, feather), 0) if patch.context > 1 else np.ones_like(alpha)
    matrix = cv2.getRotationMatrix2D((cx - x0, cy - y0), angle, scale)
    matrix[:, 2] += np.array(centre) - (cx - x0, cy - y0)
    h, w = canvas.shape[:2]
    warped = cv2.warpAffine(region, matrix, (w, h), flags=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    mask = cv2.warpAffine(alpha, matrix, (w, h), flags=cv2.INTER_LINEAR)[..., None]
    canvas[:] = np.clip(canvas * (1 - mask) + warped * mask, 0, 255).astype(np.uint8)
    bw, bh = fw * scale, fh * scale
    return round(centre[0] - bw / 2), round(centre[1] - bh / 2), round(bw), round(bh)


def composites(per_background: int = 3, faces: int = 6, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    patches = face_patches()
    portraits_, lfw = patches[:3], patches[3:]
    out = []
    scenes = [(bg, img) for bg, img in backgrounds().items() if bg != "hubble_deep_field"]
    for k, (bg, image) in enumerate(scenes):
        for j in range(per_background):
            size_name = list(SIZE_RANGES)[(k + j) % len(SIZE_RANGES)]
            lighting = LIGHTINGS[(k * per_background + j) % len(LIGHTINGS)]
            canvas = _cover(image, CANVAS)
            lo, hi = SIZE_RANGES[size_name]
            placed: list[tuple[float, float, float]] = []
            truth, tags = [], []
            for i in range(faces):
                face_w = int(rng.integers(lo, hi + 1))
                # LFW crops are 25 px: pasted at most 2× up (larger they are blur, not faces)
                if i < 3 or face_w > 2 * LFW_SIDE or rng.random() < 0.4:
                    patch = portraits_[int(rng.integers(3))] if i >= 3 else portraits_[i]
                    if rng.random() < 0.5:
                        patch = _mirrored(patch)
                else:
                    patch = lfw[int(rng.integers(len(lfw)))]
                angle = float(ROTATIONS[int(rng.integers(len(ROTATIONS)))])
                gain = float(rng.choice([0.7, 1.0, 1.25]))
                radius = face_w * patch.context * 0.75 + 4
                for _ in range(200):  # rejection sampling: faces (with context) never overlap
                    c = (float(rng.uniform(radius, CANVAS[0] - radius)), float(rng.uniform(radius, CANVAS[1] - radius)))
                    if all(math.dist(c, p[:2]) > radius + p[2] for p in placed):
                        break
                else:
                    continue
                placed.append((*c, radius))
                truth.append(_paste(canvas, patch, face_w, angle, gain, c))
                tags.append({"size": size_name, "rotation": abs(angle), "lighting": lighting,
                             "source": "lfw" if patch.source.startswith("lfw") else patch.source})
            out.append(Sample(f"{bg}_{j}_{size_name}_{lighting}", "composites", _light(canvas, lighting), truth, tags))
    return out


def synthetic(frames: Sequence[int] = (0, 40, 80, 120, 160)) -> list[Sample]:
    from feredge.data.synth.video import SyntheticVideo, VideoSpec

    out = []
    for spec in (VideoSpec(), VideoSpec(width=1280, height=720, faces=6, face_size=96, seed=1)):
        video = SyntheticVideo(spec)
        for i in frames:
            truth = [t.box for t in video.truth(i)]
            out.append(Sample(f"synth_{spec.width}x{spec.height}_{i}", "synthetic", video.frame(i), truth,
                              [{"source": "synthetic"} for _ in truth]))
    return out


def build_set(seed: int = 0) -> list[Sample]:
    photos = [Sample(name, "photos", image, [PORTRAIT_BOXES[name]], [{"source": name}])
              for name, image in portraits().items()]
    negatives = [Sample(f"negative_{name}", "negatives", _cover(image, CANVAS))
                 for name, image in backgrounds().items()]
    return photos + composites(seed=seed) + synthetic() + negatives


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - w * h
    return w * h / union if union > 0 else 0.0


def match(truth: Sequence[Sequence[float]], found: Sequence[Box]) -> tuple[list[bool], int]:
    """Which truths were found (one-to-one, best IoU first) and how many detections matched nothing."""
    pairs = sorted(((iou(t, d.as_list()), i, j) for i, t in enumerate(truth) for j, d in enumerate(found)),
                   reverse=True)
    hit, used = [False] * len(truth), [False] * len(found)
    for value, i, j in pairs:
        if value < MATCH_IOU:
            break
        if not hit[i] and not used[j]:
            hit[i] = used[j] = True
    return hit, used.count(False)


def detectors(scores: Sequence[float] = ()) -> dict[str, Callable[[], Detector]]:
    """Detector label → how to build it: the registry's names, one threshold variant of the tiles, the
    default (``blazeface_short_tiled``: whole pyramid levels on OpenVINO) on its tile path
    (``…_tiles``: what ONNX Runtime and TensorRT run), and the default at each of ``scores``
    (``--scores``: how its threshold was chosen)."""
    from feredge.preprocess.blazeface import BLAZEFACE_SPECS, BlazeFaceDetector, packaged_runtime

    tiled = BLAZEFACE_SPECS["blazeface_tiled"]
    out: dict[str, Callable[[], Detector]] = {
        name: (lambda name=name: create_detector(DetectorSpec(name=name)))  # type: ignore[misc]
        for name in ("haar", "mtcnn", "blazeface", "blazeface_full", "blazeface_tiled", "blazeface_short_tiled")
    }
    out["blazeface_tiled_s0.45"] = lambda: BlazeFaceDetector(variant=replace(tiled, score_threshold=0.45))
    default = BLAZEFACE_SPECS["blazeface_short_tiled"]
    # the default's tile path (what ONNX Runtime and TensorRT run), on the same runtime as the default's levels
    out["blazeface_short_tiled_tiles"] = lambda: BlazeFaceDetector(variant=replace(default, whole_levels=False),
                                                                   runtime=packaged_runtime())
    for score in scores:
        out[f"blazeface_short_tiled_s{score:g}"] = lambda score=score: BlazeFaceDetector(  # type: ignore[misc]
            variant=replace(default, score_threshold=score), runtime=packaged_runtime())
    return out


def evaluate(detector: Detector, samples: Sequence[Sample]) -> dict[str, Any]:
    totals: dict[str, list[int]] = {}  # key → [found, truths]
    fps: dict[str, int] = {}
    per_image = {}

    def add(key: str, ok: bool) -> None:
        entry = totals.setdefault(key, [0, 0])
        entry[0] += ok
        entry[1] += 1

    for s in samples:
        found = detector.detect(s.image)
        hit, fp = match(s.truth, found)
        fps[s.group] = fps.get(s.group, 0) + fp
        per_image[s.name] = {"found": sum(hit), "truths": len(hit), "false_positives": fp}
        for ok, tag in zip(hit, s.tags, strict=True):
            add("all", ok)
            add(f"group:{s.group}", ok)
            for key in ("size", "rotation", "lighting", "source"):
                if key in tag:
                    add(f"{key}:{tag[key]}", ok)
    recall = {k: {"found": v[0], "truths": v[1], "recall": round(v[0] / v[1], 4)} for k, v in sorted(totals.items())}
    return {"recall": recall, "false_positives": {**fps, "all": sum(fps.values())}, "images": per_image}


def timing(detector: Detector, samples: Sequence[Sample], repeat: int) -> dict[str, float]:
    """Median ms per ``detect`` call on a composite resized to each of :data:`TIMING_SIZES`."""
    base = next(s.image for s in samples if s.group == "composites" and "medium" in s.name)
    out = {}
    for w, h in TIMING_SIZES:
        frame = cv2.resize(base, (w, h), interpolation=cv2.INTER_AREA if w < base.shape[1] else cv2.INTER_LINEAR)
        detector.detect(frame)
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            detector.detect(frame)
            times.append((time.perf_counter() - start) * 1000)
        out[f"{w}x{h}"] = round(statistics.median(times), 2)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--timing", action="store_true", help="also time each detector (needs a quiet machine)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0, help="composites' layout seed (another seed: a held-out set)")
    parser.add_argument("--only", nargs="*", help="detector labels to run (default: all)")
    parser.add_argument("--scores", nargs="*", type=float, default=[],
                        help="also run the default BlazeFace variant at these score thresholds (its threshold sweep)")
    parser.add_argument("--save-images", type=Path, help="write every image of the set with its truth boxes")
    args = parser.parse_args()
    samples = build_set(args.seed)
    if args.save_images:
        args.save_images.mkdir(parents=True, exist_ok=True)
        for s in samples:
            image = s.image.copy()
            for x, y, w, h in s.truth:
                cv2.rectangle(image, (x, y), (x + w, y + h), (0, 255, 0), 2)
            cv2.imwrite(str(args.save_images / f"{s.name}.png"), image)
    counts = {g: sum(len(s.truth) for s in samples if s.group == g) for g in ("photos", "composites", "synthetic")}
    print(f"{len(samples)} images, truths: {counts}, negatives: {sum(s.group == 'negatives' for s in samples)}")
    results: dict[str, Any] = {"match_iou": MATCH_IOU, "seed": args.seed, "images": len(samples), "truths": counts,
                               "detectors": {}}
    for label, make in detectors(args.scores).items():
        swept = label.startswith("blazeface_short_tiled_s")  # --scores rows run whatever --only says
        if args.only and label not in args.only and not swept:
            continue
        detector = make()
        entry = evaluate(detector, samples)
        if args.timing:
            entry["ms_per_frame"] = timing(detector, samples, args.repeat)
        results["detectors"][label] = entry
        r = entry["recall"]
        print(f"{label:26s} recall {r['all']['recall']:.3f} ({r['all']['found']}/{r['all']['truths']})  "
              f"photos {r['group:photos']['recall']:.2f} composites {r['group:composites']['recall']:.3f} "
              f"synthetic {r['group:synthetic']['recall']:.2f}  FP {entry['false_positives']}"
              + (f"  ms {entry['ms_per_frame']}" if args.timing else ""))
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
