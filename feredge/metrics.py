"""Classification metrics and the confusion-matrix picture (numpy + OpenCV; no torch).

Used by training (per epoch), ``feredge eval`` on checkpoints and on bundles (on a device), and
the regression gates. Hand-written rather than scikit-learn: five formulas over a confusion matrix
do not justify a 40 MB dependency on the device side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from feredge.fileio import write_bytes_atomic


@dataclass(frozen=True)
class ClassificationReport:
    labels: tuple[str, ...]
    samples: int
    accuracy: float
    macro_precision: float
    macro_recall: float
    macro_f1: float
    per_class_recall: dict[str, float]
    per_class_support: dict[str, int]
    confusion: list[list[int]]  # rows: true class, columns: predicted class

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["labels"] = list(self.labels)
        return data

    def summary(self) -> str:
        return (f"accuracy {self.accuracy:.2%}  macro-F1 {self.macro_f1:.3f}  "
                f"macro recall {self.macro_recall:.3f}  ({self.samples} samples)")


def confusion_matrix(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(y_true, np.int64), np.asarray(y_pred, np.int64)), 1)
    return matrix


def classification_report(y_true: np.ndarray, y_pred: np.ndarray, labels: tuple[str, ...]) -> ClassificationReport:
    """Macro averages over the classes present in ``y_true`` (absent classes have no recall)."""
    y_true = np.asarray(y_true)
    y_pred = np.asarray(y_pred)
    matrix = confusion_matrix(y_true, y_pred, len(labels))
    support = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    tp = np.diag(matrix).astype(np.float64)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    f1 = np.divide(2 * precision * recall, precision + recall, out=np.zeros_like(tp),
                   where=(precision + recall) > 0)
    present = support > 0
    return ClassificationReport(
        labels=tuple(labels),
        samples=len(y_true),
        accuracy=float(tp.sum() / max(len(y_true), 1)),
        macro_precision=float(precision[present].mean()) if present.any() else 0.0,
        macro_recall=float(recall[present].mean()) if present.any() else 0.0,
        macro_f1=float(f1[present].mean()) if present.any() else 0.0,
        per_class_recall={name: float(recall[i]) for i, name in enumerate(labels) if present[i]},
        per_class_support={name: int(support[i]) for i, name in enumerate(labels)},
        confusion=matrix.tolist(),
    )


def write_confusion_png(report: ClassificationReport, path: Path, title: str = "") -> Path:
    """A row-normalised confusion matrix with counts, drawn with OpenCV (no plotting stack needed)."""
    matrix = np.asarray(report.confusion, dtype=np.float64)
    rows = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    n, cell, left, top = len(report.labels), 64, 110, 60
    canvas = np.full((top + n * cell + 40, left + n * cell + 20, 3), 255, np.uint8)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(canvas, title or f"accuracy {report.accuracy:.1%}, macro-F1 {report.macro_f1:.3f}", (10, 22), font,
                0.55, (0, 0, 0), 1, cv2.LINE_AA)
    for i in range(n):
        for j in range(n):
            shade = int(255 * (1 - rows[i, j]))
            x0, y0 = left + j * cell, top + i * cell
            cv2.rectangle(canvas, (x0, y0), (x0 + cell, y0 + cell), (255, shade, shade), -1)
            cv2.rectangle(canvas, (x0, y0), (x0 + cell, y0 + cell), (200, 200, 200), 1)
            colour = (255, 255, 255) if rows[i, j] > 0.6 else (0, 0, 0)
            cv2.putText(canvas, str(int(matrix[i, j])), (x0 + 8, y0 + 38), font, 0.5, colour, 1, cv2.LINE_AA)
        cv2.putText(canvas, report.labels[i][:10], (5, top + i * cell + 38), font, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        cv2.putText(canvas, report.labels[i][:7], (left + i * cell + 2, top - 8), font, 0.4, (0, 0, 0), 1,
                    cv2.LINE_AA)
    cv2.putText(canvas, "rows: true class, columns: predicted", (left, top + n * cell + 28), font, 0.45,
                (80, 80, 80), 1, cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", canvas)  # encoded in memory: no path reaches OpenCV
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_bytes_atomic(path, encoded.tobytes())
    return path
