"""The Python API: from an image to its faces in three lines.

    import feredge
    model = feredge.load()                      # the shipped model's prebuilt bundle (or load("bundles/x"))
    faces = model.predict("photo.jpg")          # a path, a numpy array (BGR, gray, BGRA) or a PIL image
    faces[0].label, faces[0].probability, faces[0].box

``predict(image, boxes=[(x, y, w, h), ...])`` classifies faces you already found (your own
detector, a tracker) without detecting again; ``predict_batch(images)`` runs several images.
Torch-free: the model runs in the bundle's runtime through :class:`feredge.runtimes.pipeline.Pipeline`.
Why these shapes: ``fer`` users write ``FER().detect_emotions(img)`` and online-emotion-detection
users ``predict_on_boxes(frame, boxes)``; each face carries ``emotions`` too, the key ``fer`` uses.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from feredge.errors import FeredgeError
from feredge.preprocess.boxes import Box
from feredge.runtimes.pipeline import FaceResult, Pipeline

ImageInput = Any  # str | Path | np.ndarray | PIL.Image.Image


class Recognizer:
    """A loaded bundle: :meth:`predict` per image. Close it (or use ``with``) to free the runtime."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.labels = pipeline.labels

    def predict(self, image: ImageInput, boxes: Sequence[Sequence[float]] | None = None) -> list[FaceResult]:
        """The faces of ``image``, largest first (boxes in the image's own pixels). With ``boxes``
        (``(x, y, w, h)`` each), those regions are classified and nothing is detected."""
        bgr, scale = _as_bgr(image)
        if boxes is None:
            return self.pipeline.run(bgr, scale=scale).faces
        return self.pipeline.classify_boxes(bgr, [_box(b, scale) for b in boxes], scale=scale)

    def predict_batch(self, images: Iterable[ImageInput]) -> list[list[FaceResult]]:
        return [self.predict(image) for image in images]

    def close(self) -> None:
        self.pipeline.close()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(bundle: str | Path | None = None, *, runtime: str = "auto", device: str | None = None,
         detector: str | None = None) -> Recognizer:
    """A :class:`Recognizer` for ``bundle`` (default: the shipped model's prebuilt bundle, read from the
    package and never written; a runtime that writes into its bundle, TensorRT, gets a copy in the
    per-user cache: :mod:`feredge.default_bundle`), on ``runtime`` (auto: the best installed one) and
    ``device``; ``detector`` overrides the bundle's face detector (``haar``, ``mtcnn``, ``blazeface``…,
    ``none`` for face crops)."""
    from feredge.cli.common import ensure_default_bundle

    path = Path(bundle) if bundle is not None else ensure_default_bundle(quiet=True, runtime=runtime)
    return Recognizer(Pipeline.from_bundle(path, runtime, detector=detector, device=device))


def _as_bgr(image: ImageInput) -> tuple[np.ndarray, float]:
    """(BGR uint8 array, the decoder's scale) for a path, an array or a PIL image."""
    from feredge.preprocess.image_io import read_image, to_bgr_u8

    if isinstance(image, str | Path):
        decoded = read_image(Path(image))  # the checked decoder: size limits, truncation, one-line errors
        return decoded.image, decoded.scale
    if isinstance(image, np.ndarray):
        return to_bgr_u8(image, "<array>"), 1.0
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image: RGB(A) or L → BGR
        mode = "L" if getattr(image, "mode", "") in ("L", "I;16", "I") else "RGB"
        array = np.asarray(image.convert(mode))
        return to_bgr_u8(array if mode == "L" else array[:, :, ::-1], "<PIL image>"), 1.0
    raise FeredgeError(f"predict takes a path, a numpy array or a PIL image, not {type(image).__name__}")


def _box(values: Sequence[float], scale: float) -> Box:
    if len(values) != 4:
        raise FeredgeError(f"a box is (x, y, w, h), got {tuple(values)}")
    x, y, w, h = (float(v) for v in values)
    if w <= 0 or h <= 0:
        raise FeredgeError(f"a box needs a positive width and height, got {tuple(values)}")
    box = Box(round(x), round(y), round(w), round(h))
    return box.scaled(scale) if scale != 1.0 else box
