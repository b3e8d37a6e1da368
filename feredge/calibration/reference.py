"""Reference face batches built by the deployment pipeline itself.

Export parity, calibration and benchmarks need real faces, prepared exactly as the device will
prepare them. The shipped photo (``feredge/assets/astronaut.jpg``, public domain) goes through
the spec's detector and crop; deterministic variations of it (flips, shifts, zoom, rotation,
brightness, blur) widen the set without any download. When scikit-image is installed its
``lfw_subset.npy`` adds 100 different real faces (already crops, so no detector).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from feredge.preprocess.detect import Box, create_detector
from feredge.preprocess.image_io import read_image, to_bgr_u8
from feredge.preprocess.spec import DetectorSpec, PreprocessSpec
from feredge.preprocess.transform import preprocess_faces, square_crop


def demo_image_path() -> Path:
    """The shipped face photo used by the README's demo and as the default ``infer`` source."""
    return Path(str(resources.files("feredge") / "assets" / "astronaut.jpg"))


@dataclass(frozen=True)
class ReferenceSet:
    batch: np.ndarray  # (N, C, H, W) float32
    sources: tuple[str, ...]

    def describe(self) -> dict[str, object]:
        counts: dict[str, int] = {}
        for source in self.sources:
            key = source.split("#")[0]
            counts[key] = counts.get(key, 0) + 1
        return {"samples": len(self.sources), "sources": counts}


def _variants(face: np.ndarray, count: int, rng: np.random.Generator) -> list[np.ndarray]:
    h, w = face.shape[:2]
    out = [face, cv2.flip(face, 1)]
    while len(out) < count:
        angle = rng.uniform(-12, 12)
        zoom = rng.uniform(0.9, 1.1)
        shift = rng.uniform(-0.06, 0.06, size=2) * (w, h)
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, zoom)
        matrix[:, 2] += shift
        img = cv2.warpAffine(face, matrix, (w, h), borderMode=cv2.BORDER_REFLECT)
        img = cv2.convertScaleAbs(img, alpha=rng.uniform(0.75, 1.25), beta=rng.uniform(-20, 20))
        if rng.random() < 0.3:
            img = cv2.GaussianBlur(img, (3, 3), 0)
        out.append(img if rng.random() < 0.5 else cv2.flip(img, 1))
    return out[:count]


def lfw_faces() -> np.ndarray | None:
    """scikit-image's 100 LFW face crops as BGR uint8, or None without scikit-image."""
    try:
        import skimage
    except ImportError:
        return None
    path = Path(skimage.__file__).parent / "data" / "lfw_subset.npy"
    if not path.is_file():
        return None
    faces = np.load(path, allow_pickle=False)[:100]
    return np.stack([to_bgr_u8(face.astype(np.float32)) for face in faces])


def reference_faces(spec: PreprocessSpec, *, variants: int = 32, include_lfw: bool = True,
                    seed: int = 0) -> ReferenceSet:
    """Real-face inputs for parity checks, prepared through ``spec`` exactly as a device would."""
    rng = np.random.default_rng(seed)
    decoded = read_image(demo_image_path())
    boxes = create_detector(replace(spec.detector, name="haar")).detect(decoded.image)
    if not boxes:
        raise RuntimeError("the shipped demo face was not detected; the Haar cascade is broken")
    # crop generously first, so variations rotate real context into view, then let the spec crop
    face = square_crop(decoded.image, boxes[0], 0.5)
    inner = Box(face.shape[1] // 4, face.shape[0] // 4, face.shape[1] // 2, face.shape[0] // 2)
    batches = [preprocess_faces(v, [inner], spec) for v in _variants(face, variants, rng)]
    sources = [f"astronaut.jpg#{i}" for i in range(len(batches))]
    lfw = lfw_faces() if include_lfw else None
    if lfw is not None:
        crop_spec = spec.replace(detector=DetectorSpec(name="none"), crop_margin=0.0)
        for i, img in enumerate(lfw):
            batches.append(preprocess_faces(img, [Box(0, 0, img.shape[1], img.shape[0])], crop_spec))
            sources.append(f"lfw_subset.npy#{i}")
    return ReferenceSet(np.concatenate(batches).astype(np.float32), tuple(sources))
