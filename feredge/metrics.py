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


def row_normalised(confusion: Any) -> np.ndarray:
    """Each true class's row divided by its count, so row ``i`` is where class ``i``'s faces went and
    the diagonal is each class's recall; a class without faces keeps a row of zeros."""
    matrix = np.asarray(confusion, dtype=np.float64)
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros_like(matrix), where=totals > 0)


_FONT = cv2.FONT_HERSHEY_SIMPLEX
#: light → dark blue (BGR), the cell colour at fraction 0 and 1
_LIGHT, _DARK = np.array([255, 251, 247], np.float64), np.array([107, 48, 8], np.float64)


def _text_width(text: str, scale: float, thickness: int = 1) -> int:
    return int(cv2.getTextSize(text, _FONT, scale, thickness)[0][0])


def _centred(canvas: np.ndarray, text: str, centre_x: int, baseline_y: int, scale: float,
             colour: tuple[int, int, int], thickness: int = 1) -> None:
    cv2.putText(canvas, text, (centre_x - _text_width(text, scale, thickness) // 2, baseline_y), _FONT, scale,
                colour, thickness, cv2.LINE_AA)


def write_confusion_png(report: ClassificationReport, path: Path, title: str = "") -> Path:
    """The confusion matrix as a PNG a reader can take in at a glance, drawn with OpenCV (no plotting stack).

    Row-normalised: each cell is the fraction of the true class's faces predicted as the column's
    class (rows sum to 1, the diagonal is the recall), coloured by that fraction, with its count
    under it; ``n`` on the right is each class's support. Labels are never cut: the cells and
    margins are sized from the widest label. ``title`` (lines split on ``\\n``) should say which
    model, dataset and split; without one the headline figures stand in.
    """
    matrix = np.asarray(report.confusion, dtype=np.int64)
    fractions = row_normalised(matrix)
    labels = [str(label) for label in report.labels]
    n = len(labels)
    label_scale, value_scale, count_scale = 0.5, 0.55, 0.4
    widest = max((_text_width(label, label_scale) for label in labels), default=0)
    cell = max(72, widest + 14)
    left = widest + 24
    support_w = max(_text_width(f"n={int(v)}", label_scale) for v in matrix.sum(axis=1)) + 20 if n else 0
    lines = (title or f"accuracy {report.accuracy:.1%}, macro-F1 {report.macro_f1:.3f}").split("\n")
    footer = "rows: true class (each sums to 1; diagonal = recall); columns: predicted class"
    title_h = 12 + 24 * len(lines)
    top = title_h + 24 + 26  # title, the "predicted" caption, the column labels
    grid_w = left + n * cell + support_w
    width = max(grid_w + 16, *(_text_width(t, 0.55) + 24 for t in lines), _text_width(footer, 0.45) + 24)
    height = top + n * cell + 44
    canvas = np.full((height, width, 3), 255, np.uint8)
    for k, line in enumerate(lines):
        cv2.putText(canvas, line, (12, 28 + 24 * k), _FONT, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    _centred(canvas, "predicted class", left + n * cell // 2, title_h + 18, 0.45, (80, 80, 80))
    for i in range(n):
        _centred(canvas, labels[i], left + i * cell + cell // 2, top - 10, label_scale, (0, 0, 0))
        y0 = top + i * cell
        cv2.putText(canvas, labels[i], (left - 12 - _text_width(labels[i], label_scale), y0 + cell // 2 + 5), _FONT,
                    label_scale, (0, 0, 0), 1, cv2.LINE_AA)
        total = int(matrix[i].sum())
        cv2.putText(canvas, f"n={total}", (left + n * cell + 10, y0 + cell // 2 + 5), _FONT, label_scale,
                    (80, 80, 80), 1, cv2.LINE_AA)
        for j in range(n):
            x0 = left + j * cell
            value = float(fractions[i, j])
            colour = tuple(int(c) for c in np.round(_LIGHT + (_DARK - _LIGHT) * value))
            cv2.rectangle(canvas, (x0, y0), (x0 + cell, y0 + cell), colour, -1)
            cv2.rectangle(canvas, (x0, y0), (x0 + cell, y0 + cell), (210, 210, 210), 1)
            ink = (255, 255, 255) if value > 0.5 else (0, 0, 0) if value > 0 else (150, 150, 150)  # zeros recede
            text = f"{value:.2f}" if total else "-"
            _centred(canvas, text, x0 + cell // 2, y0 + cell // 2 + (0 if total else 5), value_scale, ink,
                     2 if i == j and total else 1)
            if total:
                _centred(canvas, f"({int(matrix[i, j])})", x0 + cell // 2, y0 + cell // 2 + 20, count_scale, ink)
    cv2.putText(canvas, footer, (12, top + n * cell + 28), _FONT, 0.45, (80, 80, 80), 1, cv2.LINE_AA)
    ok, encoded = cv2.imencode(".png", canvas)  # encoded in memory: no path reaches OpenCV
    if not ok:
        raise OSError(f"cannot encode {path}")
    write_bytes_atomic(path, encoded.tobytes())
    return path
