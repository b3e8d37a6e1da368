"""Image → faces → one batch → runner → labels, with per-stage timings.

``Pipeline.from_bundle(path, runtime="auto")`` is the whole device-side API: it reads the
bundle's PreprocessSpec and labels (nothing re-typed), builds the spec's detector — on the
bundle's own detector network, through the classifier's runtime, when the bundle has one for it
(:func:`feredge.preprocess.detect.detector_for_bundle`) — and runs all faces of a frame through
the model as one batch (in chunks of the bundle's max batch).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from feredge.bundle import Bundle
from feredge.mathops import softmax
from feredge.preprocess.detect import Box, Detector, create_detector, detector_for_bundle
from feredge.preprocess.spec import PreprocessSpec
from feredge.preprocess.transform import preprocess_faces
from feredge.runtimes.base import Runner
from feredge.runtimes.registry import auto_runtime, resolve_name, runner_class


@dataclass
class FaceResult:
    box: Box
    label: str
    probability: float
    probabilities: dict[str, float]

    @property
    def emotions(self) -> dict[str, float]:
        """The probabilities under the name the ``fer`` package uses."""
        return self.probabilities

    def to_dict(self) -> dict[str, Any]:
        """The JSON record of the face; ``emotions`` repeats ``probabilities`` (fer's name), kept both ways."""
        probabilities = {k: round(v, 6) for k, v in self.probabilities.items()}
        return {
            "box": self.box.as_list(),
            "label": self.label,
            "probability": round(self.probability, 6),
            "probabilities": probabilities,
            "emotions": probabilities,  # the same dict under the name the fer package's users look for
        }


@dataclass
class FrameResult:
    faces: list[FaceResult]
    timings_ms: dict[str, float] = field(default_factory=dict)


class Pipeline:
    def __init__(self, runner: Runner, spec: PreprocessSpec, labels: tuple[str, ...],
                 detector: Detector | None = None, max_batch: int = 64) -> None:
        self.runner = runner
        self.spec = spec
        self.labels = labels
        self.detector = detector or create_detector(spec.detector)
        self.max_batch = max_batch

    @classmethod
    def from_bundle(cls, path: str | Path | Bundle, runtime: str = "auto", *, detector: str | None = None,
                    threads: int | None = None, **runner_options: Any) -> Pipeline:
        bundle = path if isinstance(path, Bundle) else Bundle.load(path)
        name = auto_runtime(bundle) if runtime == "auto" else resolve_name(runtime)
        runner = runner_class(name).from_bundle(bundle, threads=threads, **runner_options)
        spec = bundle.spec
        if detector is not None:
            spec = spec.replace(detector=replace(spec.detector, name=detector))
        # the bundle's own detector network (verified with it) on the classifier's runtime, when it has one
        # for this detector; else the packaged detector (old bundles, Haar)
        device = {"device": runner_options["device"]} if "device" in runner_options else {}
        faces = detector_for_bundle(bundle, spec.detector, name, threads=threads, **device)
        return cls(runner.activate(), spec, bundle.labels, detector=faces, max_batch=bundle.max_batch)

    def close(self) -> None:
        self.runner.deactivate()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def classify(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for a preprocessed batch of any size, chunked to the model's max batch."""
        return softmax(self.runner.infer_all(batch, chunk=self.max_batch))

    def run(self, image_bgr: np.ndarray, *, scale: float = 1.0) -> FrameResult:
        """Detect, crop, classify every face of one BGR frame; boxes in original coordinates."""
        timings: dict[str, float] = {}
        with _timed(timings, "detect"):
            boxes = self.detector.detect(image_bgr)
        return FrameResult(faces=self._classify_boxes(image_bgr, boxes, scale, timings), timings_ms=timings)

    def classify_boxes(self, image_bgr: np.ndarray, boxes: Sequence[Box], *, scale: float = 1.0) -> list[FaceResult]:
        """The faces in ``boxes`` (pixels of ``image_bgr``) classified without detecting: for
        callers with their own detector or tracker; results in original coordinates."""
        return self._classify_boxes(image_bgr, boxes, scale, {})

    def _classify_boxes(self, image_bgr: np.ndarray, boxes: Sequence[Box], scale: float,
                        timings: dict[str, float]) -> list[FaceResult]:
        with _timed(timings, "preprocess"):
            batch = preprocess_faces(image_bgr, boxes, self.spec)
        faces: list[FaceResult] = []
        if len(batch):
            with _timed(timings, "infer"):
                probs = self.classify(batch)
            with _timed(timings, "postprocess"):
                for box, row in zip(boxes, probs, strict=True):
                    best = int(row.argmax())
                    faces.append(FaceResult(
                        box=box.scaled(1.0 / scale) if scale != 1.0 else box,
                        label=self.labels[best],
                        probability=float(row[best]),
                        probabilities={label: float(p) for label, p in zip(self.labels, row, strict=True)},
                    ))
        return faces


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    start = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + (time.perf_counter() - start) * 1000.0
