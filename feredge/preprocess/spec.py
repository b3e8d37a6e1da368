"""The preprocessing contract that travels with every checkpoint and bundle.

Training, calibration, evaluation and every runtime build their input tensors from one
:class:`PreprocessSpec` through one implementation (:mod:`feredge.preprocess.transform`), so a
model never sees inputs prepared differently from the ones it was trained on. The spec is frozen
and JSON round-trippable; ``schema_version`` lets an older bundle be read by a newer feredge.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from feredge.errors import FeredgeError

SCHEMA_VERSION = 1

CHANNELS = ("gray", "rgb", "bgr")
INTERPOLATIONS = ("area", "linear", "cubic", "nearest")
ALIGNMENTS = ("none", "five_point")
LAYOUTS = ("NCHW",)


@dataclass(frozen=True)
class DetectorSpec:
    """Which face detector finds the crops, and its settings.

    ``name`` is a key of :data:`feredge.preprocess.detect.DETECTORS`; ``none`` means the image is
    already a face crop. The default is ``blazeface_short_tiled``: MediaPipe's short-range BlazeFace
    (shipped in the package) over the whole frame and over tiles of ½, ¼, ⅙ and ⅛ of its short side, so
    the smallest face found is a fixed fraction of the frame. Why it and not Haar (the default until
    2026-12-02) or MTCNN, on ``benchmarks/detectors.md``'s real-face set: recall 0.966 / 0.961
    (seed 0 / held-out seed 1) against Haar's 0.324 / 0.344 and MTCNN's 0.926 / 0.961, false faces
    3 / 2 against Haar's 14 / 20 and MTCNN's 16 / 12, and the shipped photo several times faster
    than Haar (``benchmarks/pipeline_vs_fer.md``); five landmarks per face come with it.

    The Haar settings below apply when ``name`` is ``haar``: OpenCV's usual ones with a minimum
    face of 24 px or 1/12 of the frame's short side, whichever is larger, searched on the frame
    scaled to a short side of at most 720 px (the cascade scans every scale from the minimum face
    up, so a fixed 24 px on a large frame spends most of its time on faces too small to classify).
    ``min_face_fraction=0`` and ``detect_short_side=0`` restore the full-frame search.
    """

    name: str = "blazeface_short_tiled"
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size: int = 24
    #: Haar: the smallest face searched for is also this fraction of the frame's short side (a face
    #: of 1/12 of a 640×360 frame is 30 px; smaller faces carry little expression at a 64-px input)
    min_face_fraction: float = 1 / 12
    #: Haar: detect on the frame scaled down so its short side is at most this (0: never), boxes
    #: scaled back — the cascade's cost grows with the pixels it scans, not with the faces
    detect_short_side: int = 720


@dataclass(frozen=True)
class PreprocessSpec:
    """How a face image becomes one row of the model's NCHW float32 input.

    Order of operations: detect → expand box by ``crop_margin`` (fraction of the box side, each
    way) → square crop → (align) → resize to ``input_size`` with ``interpolation`` → convert to
    ``channels`` → ``x * scale`` → ``(x - mean) / std`` per channel → ``layout``.
    """

    input_size: tuple[int, int] = (64, 64)  # (height, width)
    channels: str = "gray"
    scale: float = 1.0 / 255.0
    mean: tuple[float, ...] = (0.5,)
    std: tuple[float, ...] = (0.5,)
    layout: str = "NCHW"
    interpolation: str = "area"
    crop_margin: float = 0.0
    alignment: str = "none"
    detector: DetectorSpec = field(default_factory=DetectorSpec)
    schema_version: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        object.__setattr__(self, "input_size", tuple(int(v) for v in self.input_size))
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))
        problems = []
        if len(self.input_size) != 2 or min(self.input_size) < 8:
            problems.append(f"input_size must be (height, width) of at least 8, got {self.input_size}")
        if self.channels not in CHANNELS:
            problems.append(f"channels must be one of {CHANNELS}, got {self.channels!r}")
        if self.interpolation not in INTERPOLATIONS:
            problems.append(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")
        if self.alignment not in ALIGNMENTS:
            problems.append(f"alignment must be one of {ALIGNMENTS}, got {self.alignment!r}")
        if self.layout not in LAYOUTS:
            problems.append(f"layout must be one of {LAYOUTS}, got {self.layout!r}")
        if len(self.mean) not in (1, self.num_channels) or len(self.std) not in (1, self.num_channels):
            problems.append(f"mean/std need 1 or {self.num_channels} values")
        if any(s <= 0 for s in self.std):
            problems.append("std values must be positive")
        if not 0.0 <= self.crop_margin <= 1.0:
            problems.append(f"crop_margin must be in [0, 1], got {self.crop_margin}")
        if self.schema_version > SCHEMA_VERSION:
            problems.append(
                f"spec schema {self.schema_version} is newer than this feredge ({SCHEMA_VERSION}); upgrade feredge"
            )
        if problems:
            raise FeredgeError("invalid PreprocessSpec: " + "; ".join(problems))

    @property
    def num_channels(self) -> int:
        return 1 if self.channels == "gray" else 3

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """Shape of one sample, without the batch axis (C, H, W)."""
        return (self.num_channels, *self.input_size)

    def replace(self, **changes: Any) -> PreprocessSpec:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["input_size"] = list(self.input_size)
        data["mean"] = list(self.mean)
        data["std"] = list(self.std)
        return data

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        if not isinstance(data, dict):
            raise FeredgeError(f"PreprocessSpec must be a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise FeredgeError(f"PreprocessSpec has unknown fields {unknown}")
        kwargs = dict(data)
        detector = kwargs.get("detector", {})
        if isinstance(detector, dict):
            try:
                kwargs["detector"] = DetectorSpec(**detector)
            except TypeError as exc:
                raise FeredgeError(f"invalid detector settings: {exc}") from None
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise FeredgeError(f"invalid PreprocessSpec: {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> PreprocessSpec:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise FeredgeError(f"PreprocessSpec is not valid JSON: {exc}") from None
        return cls.from_dict(data)
