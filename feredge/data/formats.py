"""Loaders for the FER dataset formats the seed papers use, behind one registry.

Every loader reads the files exactly as the datasets ship them and returns samples grouped by split
plus a list of (source, reason) for every row it refused. A malformed row never becomes a sample
with a guessed label: it is skipped and counted, so a user can see "312 rows skipped: bad pixel
count" instead of training on garbage. Whole-dataset problems (missing file, unknown format, empty
split, unreadable file) raise :class:`FeredgeError` with one line.

Hostile input is handled the same way, row by row (a batch with some bad items keeps the good
ones and reports the bad ones): a CSV or list line that is not UTF-8 text is a skipped row ("not
UTF-8 text", with its file and line), not a UnicodeDecodeError for the whole file; a FER2013
pixel that overflows int64 or lies outside 0-255 is a skipped row. Every image file a sample
points at passes :func:`feredge.preprocess.image_io.probe_image` at load time (header, pixel and
decoded-bytes limits, truncation; no decode), so a truncated JPEG or a 400 MP PNG is a skipped
item with its reason, never a sample; decoding later goes through the same checked decoder.
AffectNet paths that leave the image root (absolute, ``..``) are skipped too.

Formats are looked up in :data:`FORMATS` (name -> loader); adding a format is adding an entry.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from feredge.data.records import FerDataset, Sample, canonical_label
from feredge.errors import FeredgeError
from feredge.labels import AFFECTNET_7, AFFECTNET_8, FER2013_7, LABEL_SETS, RAFDB_7
from feredge.preprocess.image_io import ImageError, display_path, probe_image

SPLITS = ("train", "val", "test")
# Split spellings found in the wild, folded to train / val / test.
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "publictest": "val",
    "test": "test",
    "privatetest": "test",
    "testing": "test",
}
FER2013_USAGE = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
FER_SIDE = 48
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff"})

# FER+ vote columns in file order; the first eight are expressions, named as in AFFECTNET_8.
FERPLUS_VOTE_COLUMNS = (
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
)
# AffectNet expression codes 8-10 are not expressions (none, uncertain, no-face).
AFFECTNET_NON_EXPRESSION = {8: "none", 9: "uncertain", 10: "no-face"}


@dataclass
class Loaded:
    """What a format loader hands back before split selection and label remapping."""

    labels: tuple[str, ...]
    by_split: dict[str, list[Sample]] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)

    def add(self, split: str, sample: Sample) -> None:
        self.by_split.setdefault(split, []).append(sample)

    def skip(self, source: str, reason: str) -> None:
        self.skipped.append((source, reason))


Loader = Callable[..., Loaded]


def _require(path: Path, what: str) -> Path:
    if not path.exists():
        raise FeredgeError(f"{what} not found: {path}")
    return path


NOT_UTF8 = "not UTF-8 text"


def _is_text(value: str) -> bool:
    """False for text read with ``surrogateescape`` that held bytes which are not UTF-8."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _open_text(path: Path) -> IO[str]:
    """A dataset text file, opened so that bytes that are not UTF-8 become surrogate escapes.

    Strict decoding would end the whole load in a UnicodeDecodeError at the first bad byte; with
    ``surrogateescape`` each line still parses and the rows holding such bytes are skipped by
    their callers (:func:`_is_text`). OS errors (unreadable file, a folder) are one line.
    """
    try:
        return open(path, newline="", encoding="utf-8-sig", errors="surrogateescape")
    except OSError as exc:
        raise FeredgeError(f"cannot read {display_path(path)}: {exc.strerror or exc}") from None


def _csv_header(reader: Any, path: Path) -> list[str]:
    try:
        return [h.strip() for h in next(reader)]
    except StopIteration:
        raise FeredgeError(f"{display_path(path)}: empty CSV file") from None
    except csv.Error as exc:
        raise FeredgeError(f"{display_path(path)}: unreadable CSV header ({exc})") from None


def _csv_rows(path: Path) -> Iterator[tuple[int, dict[str, str] | None, str]]:
    """(line number, row or None, reason) for each data row; header names are trimmed.

    Rows whose field count differs from the header's are yielded as None with a reason, since
    csv.DictReader would otherwise pad them with None or fold extras into a list silently; so are
    rows holding bytes that are not UTF-8 (see :func:`_open_text`).
    """
    _require(path, "CSV file")
    with _open_text(path) as handle:
        reader = csv.reader(handle)
        header = _csv_header(reader, path)
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error:
                yield reader.line_num, None, "malformed CSV row"
                continue
            except OSError as exc:
                raise FeredgeError(f"cannot read {display_path(path)}: {exc.strerror or exc}") from None
            if not fields or all(not f.strip() for f in fields):
                continue
            if not all(_is_text(f) for f in fields):
                yield reader.line_num, None, NOT_UTF8
                continue
            if len(fields) != len(header):
                yield reader.line_num, None, f"expected {len(header)} fields, got {len(fields)}"
                continue
            yield reader.line_num, dict(zip(header, fields, strict=True)), ""


def _need_columns(path: Path, columns: Sequence[str]) -> None:
    with _open_text(path) as handle:
        header = _csv_header(csv.reader(handle), path)
    missing = [c for c in columns if c not in header]
    if missing:
        shown = [display_path(h) for h in header]
        raise FeredgeError(f"{display_path(path)}: missing CSV columns {missing} (found {shown})")


def _parse_int(text: str | None) -> int | None:
    try:
        return int(str(text).strip())
    except ValueError:
        return None


def _parse_pixels(text: str) -> tuple[np.ndarray | None, str]:
    """48x48 uint8 image from FER2013's space-separated ints, or None and why not."""
    try:
        values = np.array(text.split(), dtype=np.int64)
    except OverflowError:  # a digit string too long for int64: certainly not a 0-255 pixel
        return None, "pixel value out of 0-255"
    except ValueError:
        return None, "non-integer pixel value"
    if values.size != FER_SIDE * FER_SIDE:
        return None, f"bad pixel count {values.size} (expected {FER_SIDE * FER_SIDE})"
    if values.min() < 0 or values.max() > 255:
        return None, "pixel value out of 0-255"
    return values.astype(np.uint8).reshape(FER_SIDE, FER_SIDE), ""


def _fer2013_rows(path: Path) -> Iterator[tuple[str, str | None, int | None, np.ndarray | None, str]]:
    """(source, split, emotion, image, skip reason) per data row of a FER2013 CSV, in file order."""
    _need_columns(path, ("emotion", "pixels", "Usage"))
    for line, row, reason in _csv_rows(path):
        source = f"{path.name}:{line}"
        if row is None:
            yield source, None, None, None, reason
            continue
        split = FER2013_USAGE.get(row["Usage"].strip())
        if split is None:
            yield source, None, None, None, f"unknown Usage '{row['Usage'].strip()}'"
            continue
        emotion = _parse_int(row["emotion"])
        if emotion is None:
            yield source, split, None, None, "non-integer emotion"
            continue
        image, why = _parse_pixels(row["pixels"])
        yield source, split, emotion, image, why


def load_fer2013(path: Path, **_: Any) -> Loaded:
    """FER2013 CSV ``emotion,pixels,Usage``: 48x48 gray images in memory, FER2013_7 labels."""
    csv_path = _require(_find_file(path, ("fer2013.csv",)), "FER2013 CSV")
    out = Loaded(FER2013_7)
    for source, split, emotion, image, reason in _fer2013_rows(csv_path):
        if reason or split is None or image is None or emotion is None:
            out.skip(source, reason)
        elif not 0 <= emotion < len(FER2013_7):
            out.skip(source, f"emotion {emotion} out of range 0-{len(FER2013_7) - 1}")
        else:
            out.add(split, Sample(source=source, label=emotion, image=image))
    return out


def _find_file(path: Path, names: Sequence[str]) -> Path:
    """``path`` itself when it is a file, else the first of ``names`` found inside the folder."""
    if path.is_dir():
        for name in names:
            for candidate in (path / name, path / Path(name).stem / name):
                if candidate.is_file():
                    return candidate
        raise FeredgeError(f"none of {list(names)} found in {path}")
    return path


def load_ferplus(path: Path, votes: str | Path | None = None, **_: Any) -> Loaded:
    """FER2013 pixels + FER+ ``fer2013new.csv`` votes -> soft labels over AFFECTNET_8 names.

    The vote file lists the FER2013 rows in the same order, so rows are joined by position; a
    length mismatch means the two files do not belong together and raises. The distribution is the
    eight expression votes normalised (unknown and NF votes excluded); the hard label is its
    argmax. Rows whose largest vote is NF (not a face) or unknown, or with no expression votes, are
    skipped: they carry no usable expression.
    """
    fer_path = _require(_find_file(path, ("fer2013.csv",)), "FER2013 CSV")
    vote_path = Path(votes) if votes is not None else fer_path.parent / "fer2013new.csv"
    _require(vote_path, "FER+ vote file (fer2013new.csv)")
    _need_columns(vote_path, ("Usage", "Image name", *FERPLUS_VOTE_COLUMNS))
    fer_rows = list(_fer2013_rows(fer_path))
    vote_rows = list(_csv_rows(vote_path))
    if len(fer_rows) != len(vote_rows):
        raise FeredgeError(
            f"{vote_path.name} has {len(vote_rows)} rows but {fer_path.name} has {len(fer_rows)}; "
            "they must list the same images in the same order"
        )
    names = tuple(canonical_label(c) for c in FERPLUS_VOTE_COLUMNS[:8])
    order = [names.index(n) for n in AFFECTNET_8]  # file column -> AFFECTNET_8 position
    out = Loaded(AFFECTNET_8)
    for (source, split, _emotion, image, reason), (line, vote, vote_reason) in zip(
        fer_rows, vote_rows, strict=True
    ):
        vote_source = f"{vote_path.name}:{line}"
        if reason or image is None or split is None:
            out.skip(source, reason)
            continue
        if vote is None:
            out.skip(vote_source, vote_reason)
            continue
        counts = [_parse_int(vote[c]) for c in FERPLUS_VOTE_COLUMNS]
        if any(c is None or c < 0 for c in counts):
            out.skip(vote_source, "vote is not a non-negative integer")
            continue
        vote_split = FER2013_USAGE.get(vote["Usage"].strip())
        if vote_split != split:
            out.skip(vote_source, "Usage differs between fer2013.csv and fer2013new.csv")
            continue
        arr = np.array(counts, dtype=np.float32)
        expr = arr[:8][order]
        if expr.sum() <= 0:
            out.skip(vote_source, "no expression votes")
            continue
        if arr[9] >= arr[:9].max():
            out.skip(vote_source, "NF (not a face) is the majority vote")
            continue
        if arr[8] > expr.max():
            out.skip(vote_source, "unknown is the majority vote")
            continue
        soft = expr / expr.sum()
        name = vote["Image name"].strip() or source
        out.add(split, Sample(source=name, label=int(np.argmax(soft)), image=image, soft=soft))
    return out


def _image_ok(out: Loaded, source: str, image: Path) -> bool:
    """Whether ``image`` can become a sample; if not, it is skipped with the probe's reason."""
    if not image.is_file():
        out.skip(source, "missing image")
        return False
    try:
        probe_image(image, source=source)
    except ImageError as exc:
        out.skip(source, exc.reason)
        return False
    return True


def _split_from_name(name: str) -> str | None:
    return SPLIT_ALIASES.get(name.split("_", 1)[0].lower())


def load_rafdb(path: Path, **_: Any) -> Loaded:
    """RAF-DB basic: ``EmoLabel/list_patition_label.txt`` + ``Image/aligned/*_aligned.jpg``.

    Labels 1-7 follow RAFDB_7 (1 = surprise). The split comes from the file-name prefix
    (``train_`` / ``test_``), as in the official list.
    """
    root = Path(path)
    list_path = root / "EmoLabel" / "list_patition_label.txt"
    _require(list_path, "RAF-DB label list (EmoLabel/list_patition_label.txt)")
    image_dir = root / "Image" / "aligned"
    out = Loaded(RAFDB_7)
    with _open_text(list_path) as handle:
        for line_no, line in enumerate(handle, 1):
            if not line.strip():
                continue
            source = f"{list_path.name}:{line_no}"
            if not _is_text(line):
                out.skip(source, NOT_UTF8)
                continue
            parts = line.split()
            if len(parts) != 2:
                out.skip(source, "expected '<file> <label>'")
                continue
            name, label_text = parts
            label = _parse_int(label_text)
            if label is None or not 1 <= label <= len(RAFDB_7):
                out.skip(source, f"label '{label_text}' out of range 1-{len(RAFDB_7)}")
                continue
            split = _split_from_name(name)
            if split is None:
                out.skip(source, "file name has no train_/test_ prefix")
                continue
            stem, suffix = Path(name).stem, Path(name).suffix or ".jpg"
            image = image_dir / f"{stem}_aligned{suffix}"
            if _image_ok(out, source, image):
                out.add(split, Sample(source=name, label=label - 1, path=image))
    return out


def _affectnet(path: Path, view: tuple[str, ...], image_root: str | Path | None = None) -> Loaded:
    """AffectNet CSV(s) with expression codes 0-10, kept as AFFECTNET_8 or AFFECTNET_7 indices.

    ``path`` is a CSV (split from its name: training / validation) or a folder with
    ``training.csv`` and ``validation.csv``. Images are relative to ``image_root`` (default: the
    folder's ``Manually_Annotated_Images`` when present, else the CSV's folder). The face box is
    kept on each sample so a trainer can crop it.
    """
    path = _require(Path(path), "AffectNet path")
    if path.is_dir():
        csvs = [p for p in (path / "training.csv", path / "validation.csv") if p.is_file()]
        if not csvs:
            raise FeredgeError(f"no training.csv or validation.csv in {path}")
    else:
        csvs = [path]
    out = Loaded(view)
    for csv_path in csvs:
        split = SPLIT_ALIASES.get(csv_path.stem.lower(), "all")
        if image_root is not None:
            root = Path(image_root)
        elif (csv_path.parent / "Manually_Annotated_Images").is_dir():
            root = csv_path.parent / "Manually_Annotated_Images"
        else:
            root = csv_path.parent
        columns = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "expression")
        _need_columns(csv_path, columns)
        for line, row, reason in _csv_rows(csv_path):
            source = f"{csv_path.name}:{line}"
            if row is None:
                out.skip(source, reason)
                continue
            code = _parse_int(row["expression"])
            if code is None or not 0 <= code <= 10:
                out.skip(source, f"expression '{row['expression']}' out of range 0-10")
                continue
            if code in AFFECTNET_NON_EXPRESSION:
                out.skip(source, f"expression {code} ({AFFECTNET_NON_EXPRESSION[code]}) is not a class")
                continue
            if code >= len(view):
                out.skip(source, f"expression {code} ({AFFECTNET_8[code]}) not in the {len(view)}-class view")
                continue
            x, y, w, h = (_parse_int(row[c]) for c in columns[1:5])
            if x is None or y is None or w is None or h is None or w <= 0 or h <= 0:
                out.skip(source, "bad face box")
                continue
            rel = row["subDirectory_filePath"].strip()
            if Path(rel).is_absolute() or ".." in Path(rel).parts:
                out.skip(source, "image path leaves the image root")
                continue
            image = root / rel
            if _image_ok(out, source, image):
                out.add(split, Sample(source=rel, label=code, path=image, box=(x, y, w, h)))
    return out


def load_affectnet7(path: Path, image_root: str | Path | None = None, **_: Any) -> Loaded:
    """AffectNet 7-class view: contempt and codes 8-10 dropped."""
    return _affectnet(path, AFFECTNET_7, image_root)


def load_affectnet8(path: Path, image_root: str | Path | None = None, **_: Any) -> Loaded:
    """AffectNet 8-class view: codes 8-10 dropped."""
    return _affectnet(path, AFFECTNET_8, image_root)


def load_affectnet(
    path: Path, labels: Sequence[str] | None = None, image_root: str | Path | None = None, **_: Any
) -> Loaded:
    """AffectNet, 8-class view unless the requested labels have no contempt (then 7-class)."""
    has_contempt = labels is None or "contempt" in {canonical_label(n) for n in labels}
    return _affectnet(path, AFFECTNET_8 if has_contempt else AFFECTNET_7, image_root)


def _guess_label_set(names: set[str], root: Path) -> tuple[str, ...]:
    for candidate in LABEL_SETS.values():
        if names <= {canonical_label(n) for n in candidate}:
            return candidate
    raise FeredgeError(
        f"folder names {sorted(names)} in {root} match no known label set; pass labels=[...] explicitly"
    )


def _read_soft_labels(root: Path, labels: tuple[str, ...], out: Loaded) -> dict[str, np.ndarray]:
    """Optional ``soft_labels.csv`` (``path,<label>...``) next to a class-per-folder tree."""
    path = root / "soft_labels.csv"
    if not path.is_file():
        return {}
    table: dict[str, np.ndarray] = {}
    index = {canonical_label(n): k for k, n in enumerate(labels)}
    for line, row, reason in _csv_rows(path):
        source = f"{path.name}:{line}"
        if row is None:
            out.skip(source, reason)
            continue
        soft = np.zeros(len(labels), dtype=np.float32)
        try:
            for column, value in row.items():
                if column in ("path", "split"):
                    continue
                k = index.get(canonical_label(column))
                if k is None:
                    raise ValueError(f"column '{column}' is not a label")
                soft[k] = float(value)
        except ValueError as exc:
            out.skip(source, f"bad soft label ({exc})")
            continue
        if not np.isfinite(soft).all() or soft.min() < 0 or soft.sum() <= 0:
            out.skip(source, "soft label is not a distribution")
            continue
        table[row.get("path", "").strip()] = soft / soft.sum()
    return table


def load_folder(path: Path, labels: Sequence[str] | None = None, **_: Any) -> Loaded:
    """Class-per-folder images: ``root/<split>/<label>/*`` or ``root/<label>/*`` (split "all").

    Labels come from folder names, matched by name (case-insensitive, "anger" = "angry") against
    ``labels``; without ``labels`` the first known label set containing every folder name is used.
    Images in a folder that is not a label are skipped and counted. An optional
    ``soft_labels.csv`` at the root (written by the synthetic set) adds soft labels by path.
    """
    root = _require(Path(path), "image folder")
    if not root.is_dir():
        raise FeredgeError(f"not a folder: {root}")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir())
    split_dirs = {SPLIT_ALIASES[p.name.lower()]: p for p in subdirs if p.name.lower() in SPLIT_ALIASES}
    layout = split_dirs if split_dirs else {"all": root}
    class_dirs = {split: sorted(p for p in base.iterdir() if p.is_dir()) for split, base in layout.items()}
    names = {canonical_label(p.name) for dirs in class_dirs.values() for p in dirs}
    label_set = _guess_label_set(names, root) if labels is None else tuple(labels)
    index = {canonical_label(n): k for k, n in enumerate(label_set)}
    out = Loaded(label_set)
    soft_table = _read_soft_labels(root, label_set, out)
    for split, dirs in class_dirs.items():
        for class_dir in dirs:
            label = index.get(canonical_label(class_dir.name))
            for image in sorted(class_dir.iterdir()):
                if image.suffix.lower() not in IMAGE_SUFFIXES or not image.is_file():
                    continue
                rel = image.relative_to(root).as_posix()
                source = display_path(rel)
                if label is None:
                    out.skip(source, f"folder '{display_path(class_dir.name)}' is not a label")
                    continue
                if _image_ok(out, source, image):
                    out.add(split, Sample(source=source, label=label, path=image, soft=soft_table.get(rel)))
    return out


FORMATS: dict[str, Loader] = {
    "fer2013": load_fer2013,
    "ferplus": load_ferplus,
    "rafdb": load_rafdb,
    "affectnet": load_affectnet,
    "affectnet7": load_affectnet7,
    "affectnet8": load_affectnet8,
    "folder": load_folder,
}


def _summary(skipped: list[tuple[str, str]]) -> str:
    if not skipped:
        return "nothing skipped"
    counts: dict[str, int] = {}
    for _, reason in skipped:
        counts[reason] = counts.get(reason, 0) + 1
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:3]
    return f"{len(skipped)} skipped: " + "; ".join(f"{n}x {r}" for r, n in top)


def load_dataset(
    fmt: str,
    path: str | Path,
    split: str | None = None,
    labels: Sequence[str] | None = None,
    drop_missing: bool = False,
    **options: Any,
) -> FerDataset:
    """Load one split (or all splits, split name "all") of a dataset in format ``fmt``.

    ``labels``: the label list the caller's model uses; the dataset is remapped to it by name
    (raising if a dataset class has no match, unless ``drop_missing``). For ``folder`` it is also
    the list the folder names are validated against. Extra ``options`` go to the loader
    (``votes=`` for ferplus, ``image_root=`` for affectnet). ``skipped`` lists the refused rows of
    the whole source, not only of the chosen split: a refused row often has no trustworthy split.
    """
    loader = FORMATS.get(fmt)
    if loader is None:
        raise FeredgeError(f"unknown dataset format '{fmt}' (known: {', '.join(sorted(FORMATS))})")
    path = Path(path)
    _require(path, f"{fmt} dataset")
    loaded = loader(path, labels=labels, **options)
    if split is None:
        samples = [s for part in loaded.by_split.values() for s in part]
        split_name = "all"
    else:
        split_name = SPLIT_ALIASES.get(split.lower(), split.lower())
        if split_name not in loaded.by_split and split_name not in SPLITS and split_name != "all":
            raise FeredgeError(f"unknown split '{split}' (use train, val or test)")
        samples = loaded.by_split.get(split_name, [])
    if not samples:
        found = ", ".join(f"{k}={len(v)}" for k, v in sorted(loaded.by_split.items())) or "none"
        raise FeredgeError(
            f"no samples in split '{split_name}' of {fmt} dataset {path} "
            f"(splits found: {found}; {_summary(loaded.skipped)})"
        )
    dataset = FerDataset(
        labels=loaded.labels, samples=samples, split=split_name, skipped=list(loaded.skipped), name=fmt
    )
    if labels is not None and tuple(labels) != loaded.labels:
        dataset = dataset.remap(labels, drop_missing=drop_missing)
    return dataset
