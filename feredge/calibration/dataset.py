"""Calibration sets built by the deployment pipeline itself, from a dataset or a folder of photos.

INT8 scales are only as good as the inputs they were measured on, so calibration faces go
through exactly what the device does: the model's PreprocessSpec (detector, square crop and
margin, resize, colour, normalisation). Two sources:

* a labelled dataset in any :mod:`feredge.data.formats` format (``--calib-format folder`` etc.):
  samples are cropped by :func:`feredge.data.crops.make_crops` (the training crops, which are the
  pipeline's crops) and drawn **class-balanced** — the same number per class where a class has
  enough, so a rare expression's activations still set the ranges;
* ``images``: any folder of photos (no labels), where the spec's own detector finds the faces and
  every detected face is used, largest first, in file order.

Selection is deterministic (a seeded permutation), so a bundle's calibration can be reproduced.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from feredge.errors import FeredgeError
from feredge.preprocess.image_io import display_path
from feredge.preprocess.spec import PreprocessSpec
from feredge.preprocess.transform import normalise

IMAGES_FORMAT = "images"
DEFAULT_SIZE = 256
MAX_NPZ_BYTES = 2 * 2**30  # an .npz member is unpacked whole; 2 GiB is ~130,000 3x64x64 float faces


@dataclass
class CalibrationSet:
    """NCHW float32 faces ready for the model, and where each one came from."""

    batch: np.ndarray
    sources: list[str]
    labels: np.ndarray | None  # (N,) class indices, or None for unlabelled photos
    label_names: tuple[str, ...]
    origin: str  # the path given
    fmt: str
    split: str | None
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.batch)


def _balanced_indices(labels: np.ndarray, num_classes: int, size: int, seed: int) -> np.ndarray:
    """Round-robin over classes (each in a seeded random order) until ``size`` samples are taken."""
    rng = np.random.default_rng(seed)
    pools = [list(rng.permutation(np.flatnonzero(labels == k))) for k in range(num_classes)]
    chosen: list[int] = []
    while len(chosen) < size and any(pools):
        for pool in pools:
            if pool and len(chosen) < size:
                chosen.append(int(pool.pop(0)))
    return np.asarray(sorted(chosen), dtype=np.int64)


def from_dataset(path: Path, spec: PreprocessSpec, labels: tuple[str, ...], *, fmt: str = "folder",
                 split: str = "train", size: int = DEFAULT_SIZE, seed: int = 0,
                 balanced: bool = True) -> CalibrationSet:
    from feredge.data.crops import make_crops
    from feredge.data.formats import load_dataset

    dataset = load_dataset(fmt, path, split=split, labels=labels)
    crops = make_crops(dataset, spec)
    if balanced:
        index = _balanced_indices(crops.labels, len(labels), size, seed)
    else:
        index = np.sort(np.random.default_rng(seed).permutation(len(crops))[:size])
    return CalibrationSet(normalise(crops.crops[index], spec), [crops.sources[i] for i in index],
                          crops.labels[index], tuple(labels), str(path), fmt, split, list(crops.skipped))


def from_images(path: Path, spec: PreprocessSpec, labels: tuple[str, ...], *, size: int = DEFAULT_SIZE,
                seed: int = 0) -> CalibrationSet:
    from feredge.preprocess.detect import create_detector
    from feredge.preprocess.image_io import is_image_path, read_image
    from feredge.preprocess.transform import preprocess_faces

    del seed  # file order; every face is used up to ``size``
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file() and is_image_path(p)) if root.is_dir() else [root]
    if not files:
        raise FeredgeError(f"--calib {display_path(root)}: no images found")
    detector = create_detector(spec.detector)
    batches, sources, skipped = [], [], []
    for file in files:
        if sum(len(b) for b in batches) >= size:
            break
        try:
            decoded = read_image(file)
        except FeredgeError as exc:
            skipped.append((display_path(file), str(exc)))
            continue
        boxes = detector.detect(decoded.image)
        if not boxes:
            skipped.append((display_path(file), "no face detected"))
            continue
        batches.append(preprocess_faces(decoded.image, boxes, spec))
        name = display_path(file.relative_to(root) if root.is_dir() else file.name)
        sources += [f"{name}#{i}" for i in range(len(boxes))]
    if not batches:
        raise FeredgeError(f"--calib {display_path(root)}: no face found in {len(files)} images by the "
                           f"{spec.detector.name} detector")
    batch = np.concatenate(batches)[:size]
    return CalibrationSet(batch, sources[:size], None, tuple(labels), display_path(root), IMAGES_FORMAT, None,
                          skipped)


def build_calibration_set(path: str | Path, spec: PreprocessSpec, labels: tuple[str, ...], *,
                          fmt: str = "auto", split: str = "train", size: int = DEFAULT_SIZE,
                          seed: int = 0, reference: np.ndarray | None = None) -> CalibrationSet:
    """Calibration faces from ``path``. ``fmt="auto"``: a class-per-folder dataset when the folder
    is one (``folder`` format), a ``.npy`` of prepared NCHW faces, ``reference`` for the shared
    reference faces (the shipped photo + LFW), otherwise the photos in the folder (``images``).
    A ``.npz`` holding exactly one such array is accepted like a ``.npy``; neither may hold pickles."""
    if str(path) == "reference" or fmt == "reference":
        batch = reference if reference is not None else _reference(spec)
        return CalibrationSet(batch[:size], [f"reference#{i}" for i in range(min(size, len(batch)))], None,
                              tuple(labels), "reference", "reference", None)
    path = Path(path)
    if path.suffix.lower() in (".npy", ".npz") or fmt in ("npy", "npz"):
        return _warn_if_short(_from_npy(path, spec, labels, size), size)
    if not path.exists():
        raise FeredgeError(f"--calib {display_path(path)}: no such file or folder")
    if size < 1:
        raise FeredgeError(f"calibration size must be at least 1, got {size}")
    if fmt == "auto":
        fmt = "folder" if path.is_dir() and _looks_like_class_folders(path, labels) else IMAGES_FORMAT
    if fmt == IMAGES_FORMAT:
        return _warn_if_short(from_images(path, spec, labels, size=size, seed=seed), size)
    return _warn_if_short(from_dataset(path, spec, labels, fmt=fmt, split=split, size=size, seed=seed), size)


def _warn_if_short(calib: CalibrationSet, size: int) -> CalibrationSet:
    """One warning line when the data held fewer faces than asked: INT8 ranges from 5 faces are not
    the ranges of 256, and a silent shortfall looks like a calibration that went as planned. (The
    fixed ``reference`` set is what it is, 132 faces, and is not warned about.)"""
    if len(calib) < size:
        from feredge.progress import warn

        photos = len({source.split("#", 1)[0] for source in calib.sources})
        where = f" in {photos} photo(s)" if calib.fmt == IMAGES_FORMAT else ""
        skipped = f", {len(calib.skipped)} file(s) skipped" if calib.skipped else ""
        warn(f"--calib {calib.origin}: {len(calib)} calibration face(s){where}{skipped}, fewer than the {size} asked "
             f"(--calib-size); INT8 ranges from few faces may clip real ones")
    return calib


def _looks_like_class_folders(root: Path, labels: tuple[str, ...]) -> bool:
    from feredge.data.records import canonical_label

    names = {canonical_label(n) for n in labels}
    dirs = [p for p in root.iterdir() if p.is_dir()]
    inner = [q for p in dirs for q in p.iterdir() if q.is_dir()]  # root/<split>/<label>
    return any(canonical_label(p.name) in names for p in [*dirs, *inner])


def validation_set(path: str | Path, spec: PreprocessSpec, labels: tuple[str, ...], *, fmt: str = "folder",
                   split: str = "val", size: int = 1000) -> CalibrationSet:
    """Labelled held-out faces for accuracy budgets (``--max-drop``): the dataset's ``split``."""
    if fmt in ("auto", IMAGES_FORMAT):
        fmt = "folder"
    try:
        return from_dataset(Path(path), spec, labels, fmt=fmt, split=split, size=size, balanced=False)
    except FeredgeError as exc:
        raise FeredgeError(f"--max-drop needs labelled validation data ({split} split of {path}): {exc}") from None


def _reference(spec: PreprocessSpec) -> np.ndarray:
    from feredge.calibration.reference import reference_faces

    return reference_faces(spec).batch


def _load_array(path: Path, shown: str) -> np.ndarray:
    """The one array in a ``.npy`` (memory-mapped) or single-array ``.npz``, never unpickled.

    ``np.load(allow_pickle=False)`` refuses pickled data with a ValueError; that and every other
    way a hostile or broken file fails to load (truncated, not NumPy data, a zip that is not an
    npz) becomes one line. Memory-mapping means only the ``size`` faces used are read.
    """
    try:
        loaded = np.load(path, allow_pickle=False, mmap_mode="r")
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                names = list(loaded.files)
                if len(names) != 1:
                    raise FeredgeError(f"--calib {shown}: the .npz holds {len(names)} arrays {names[:5]}; "
                                       "save one (N, C, H, W) float array with np.save")
                unpacked = loaded.zip.getinfo(f"{names[0]}.npy").file_size
                if unpacked > MAX_NPZ_BYTES:  # an npz cannot be memory-mapped: it is unpacked whole
                    raise FeredgeError(f"--calib {shown}: the array unpacks to {unpacked / 2**30:.1f} GiB, above "
                                       f"{MAX_NPZ_BYTES / 2**30:.0f} GiB; save it as .npy (read lazily)")
                return np.asarray(loaded[names[0]])
        return loaded
    except FeredgeError:
        raise
    except ValueError as exc:
        # object arrays need pickle: np.load says so ("pickled"), or its memory map does ("Python objects")
        pickled = "pickle" in str(exc) or "Python objects" in str(exc)
        why = "it holds pickled objects, which are never loaded" if pickled else _one_line(exc)
        raise FeredgeError(f"--calib {shown}: not a plain NumPy array file ({why}); save the faces as "
                           "a float32 (N, C, H, W) array with np.save") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FeredgeError(f"--calib {shown}: cannot read NumPy data ({_one_line(exc)})") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _from_npy(path: Path, spec: PreprocessSpec, labels: tuple[str, ...], size: int) -> CalibrationSet:
    shown = display_path(path)
    if not path.is_file():
        raise FeredgeError(f"--calib {shown}: no such file")
    data = _load_array(path, shown)
    if not (np.issubdtype(data.dtype, np.floating) or np.issubdtype(data.dtype, np.integer)):
        raise FeredgeError(f"--calib {shown}: dtype {data.dtype} is not numeric; save float32 faces")
    if data.ndim != 4 or tuple(data.shape[1:]) != tuple(spec.input_shape):
        raise FeredgeError(f"--calib {shown}: shape {data.shape} is not (N, {', '.join(map(str, spec.input_shape))})")
    if len(data) == 0:
        raise FeredgeError(f"--calib {shown}: holds no faces (shape {data.shape})")
    batch = np.ascontiguousarray(data[:size], dtype=np.float32)
    if not np.isfinite(batch).all():
        raise FeredgeError(f"--calib {shown}: holds NaN or infinite values; calibration needs finite inputs")
    return CalibrationSet(batch, [f"{display_path(path.name)}#{i}" for i in range(len(batch))], None, tuple(labels),
                          shown, "npy", None)
