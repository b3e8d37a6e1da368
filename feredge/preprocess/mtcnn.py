"""MTCNN face detector (boxes + 5 landmarks) on onnxruntime, from the shipped ONNX files.

Why MTCNN beside Haar: it finds rotated, partly lit and smaller faces the cascade misses, gives a
confidence per face, and its five landmarks (eyes, nose, mouth corners) let
:mod:`feredge.preprocess.align` rotate every face upright before the crop. The three networks are
facenet-pytorch's weights converted once by ``scripts/convert_mtcnn.py`` into
``feredge/assets/mtcnn/{pnet,rnet,onet}.onnx`` (MIT; notice in ``LICENSE`` there), so detection needs
neither torch nor a download. The cascade logic below follows facenet-pytorch's ``detect_face``
step for step (same pyramid, thresholds, NMS order, box regression and squaring), in numpy;
pyramid resizing uses OpenCV's ``INTER_AREA`` where facenet uses torch's area interpolation (the
same averaging up to rounding at cell borders).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from feredge.errors import FeredgeError
from feredge.preprocess.boxes import Box
from feredge.preprocess.spec import DetectorSpec

#: score thresholds of the three stages and the pyramid step: facenet-pytorch's defaults
THRESHOLDS = (0.6, 0.7, 0.7)
PYRAMID_FACTOR = 0.709


def weights_dir() -> Path:
    return Path(str(resources.files("feredge") / "assets" / "mtcnn"))


def _session(path: Path, threads: int) -> Any:
    import onnxruntime as ort

    if not path.is_file():
        raise FeredgeError(f"MTCNN weights missing: {path} (run scripts/convert_mtcnn.py)")
    options = ort.SessionOptions()
    # The nets are tiny and run on many small inputs: one thread without spinning keeps them from
    # competing with the expression model for the cores.
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, method: str = "union") -> np.ndarray:
    """Indices kept by greedy non-maximum suppression, best score first (MTCNN's +1 pixel areas)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores, kind="stable")
    keep: list[int] = []
    while order.size:
        i = int(order[-1])
        keep.append(i)
        rest = order[:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.asarray(keep, np.int64)


def _square(boxes: np.ndarray) -> np.ndarray:
    """``rerec``: grow each box to a square around its centre."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def _crops(image: np.ndarray, boxes: np.ndarray, size: int) -> np.ndarray:
    """Each box clipped to the image (facenet's ``pad``), resized to size×size, normalised NCHW."""
    h, w = image.shape[:2]
    ints = np.trunc(boxes[:, :4]).astype(np.int64)
    x0 = np.maximum(ints[:, 0], 1) - 1
    y0 = np.maximum(ints[:, 1], 1) - 1
    x1 = np.minimum(ints[:, 2], w)
    y1 = np.minimum(ints[:, 3], h)
    out = np.zeros((len(boxes), size, size, 3), np.float32)
    for k in range(len(boxes)):
        if x1[k] > x0[k] and y1[k] > y0[k]:
            out[k] = cv2.resize(image[y0[k]:y1[k], x0[k]:x1[k]], (size, size), interpolation=cv2.INTER_AREA)
    return ((out - 127.5) * 0.0078125).transpose(0, 3, 1, 2).copy()


class MTCNNDetector:
    """Three-stage cascade; ``detect`` returns boxes with ``landmarks``, sorted largest first.

    ``spec.min_size`` is the smallest face searched for (pixels); the Haar-only settings are ignored.
    """

    def __init__(self, spec: DetectorSpec, *, threads: int = 1, weights: Path | None = None) -> None:
        root = weights or weights_dir()
        self.spec = spec
        self.pnet = _session(root / "pnet.onnx", threads)
        self.rnet = _session(root / "rnet.onnx", threads)
        self.onet = _session(root / "onet.onnx", threads)

    def _scales(self, h: int, w: int) -> list[float]:
        m = 12.0 / max(self.spec.min_size, 12)
        smallest = min(h, w) * m
        scales = []
        while smallest >= 12:
            scales.append(m)
            m *= PYRAMID_FACTOR
            smallest *= PYRAMID_FACTOR
        return scales

    def _stage1(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        found = []
        for scale in self._scales(h, w):
            size = (int(w * scale + 1), int(h * scale + 1))
            resized = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
            x = ((resized - 127.5) * 0.0078125).transpose(2, 0, 1)[None].astype(np.float32)
            reg, prob = self.pnet.run(None, {"input": x})
            ys, xs = np.nonzero(prob[0, 1] >= THRESHOLDS[0])
            if not len(ys):
                continue
            q1 = np.floor((2 * np.stack([xs, ys], 1) + 1) / scale)
            q2 = np.floor((2 * np.stack([xs, ys], 1) + 12) / scale)
            boxes = np.concatenate(
                [q1, q2, prob[0, 1, ys, xs][:, None], reg[0][:, ys, xs].T], axis=1).astype(np.float32)
            found.append(boxes[nms(boxes[:, :4], boxes[:, 4], 0.5)])
        if not found:
            return np.zeros((0, 5), np.float32)
        boxes = np.concatenate(found)
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        regressed = _regress(boxes[:, :4], boxes[:, 5:9])
        return _square(np.concatenate([regressed, boxes[:, 4:5]], axis=1))

    def detect(self, image: np.ndarray) -> list[Box]:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB).astype(np.float32)  # the nets were trained on RGB
        boxes = self._stage1(rgb)
        if not len(boxes):
            return []
        reg, prob = self.rnet.run(None, {"input": _crops(rgb, boxes, 24)})
        keep = prob[:, 1] > THRESHOLDS[1]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        reg = reg[keep]
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes, reg = boxes[pick], reg[pick]
        boxes = _square(np.concatenate([_regress(boxes[:, :4], reg), boxes[:, 4:5]], axis=1))
        if not len(boxes):
            return []
        reg, marks, prob = self.onet.run(None, {"input": _crops(rgb, boxes, 48)})
        keep = prob[:, 1] > THRESHOLDS[2]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        reg, marks = reg[keep], marks[keep]
        w = boxes[:, 2:3] - boxes[:, 0:1] + 1
        h = boxes[:, 3:4] - boxes[:, 1:2] + 1
        points = np.stack([w * marks[:, :5] + boxes[:, 0:1] - 1, h * marks[:, 5:] + boxes[:, 1:2] - 1], axis=2)
        boxes[:, :4] = _regress(boxes[:, :4], reg)
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7, "min")
        return sorted((_to_box(boxes[i], points[i]) for i in pick), key=lambda b: b.w * b.h, reverse=True)


def _to_box(row: np.ndarray, points: np.ndarray) -> Box:
    x0, y0, x1, y1, score = (float(v) for v in row)
    landmarks = tuple((round(float(x), 2), round(float(y), 2)) for x, y in points)
    return Box(round(x0), round(y0), max(1, round(x1 - x0)), max(1, round(y1 - y0)), score, landmarks=landmarks)
