"""Hostile ``--calib`` inputs (issue 14, class 6): pickles and broken NumPy files are one line; photo
folders go through the checked decoder (bad files reported, a non-UTF-8 name used)."""

from __future__ import annotations

import pickle
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from feredge.calibration.dataset import build_calibration_set
from feredge.errors import FeredgeError
from feredge.models import get_entry
from tests.preprocess import hostile_corpus as corpus

ENTRY = get_entry("mini_xception")
SHAPE = tuple(ENTRY.spec.input_shape)
PLAIN = "not a plain NumPy array file"


def _pickled_npy(path: Path) -> None:
    np.save(path, np.array([{"boom": 1}, None], dtype=object), allow_pickle=True)


def _raw_pickle(path: Path) -> None:
    path.write_bytes(pickle.dumps({"faces": [1, 2, 3]}))


def _pickled_npz(path: Path) -> None:
    np.savez(path, faces=np.array([{"boom": 1}], dtype=object))


def _two_array_npz(path: Path) -> None:
    np.savez(path, a=np.zeros((1, *SHAPE), np.float32), b=np.zeros(3))


def _truncated_npy(path: Path) -> None:
    np.save(path, np.zeros((4, *SHAPE), np.float32))
    path.write_bytes(corpus.cut(path.read_bytes(), 0.5))


def _not_numpy(path: Path) -> None:
    path.write_bytes(b"PK\x03\x04 definitely not a zip")


def _nan_npy(path: Path) -> None:
    data = np.zeros((2, *SHAPE), np.float32)
    data[1, 0, 0, 0] = np.nan
    np.save(path, data)


def _text_dtype(path: Path) -> None:
    np.save(path, np.full((1, *SHAPE), "a"))


CASES = {
    "pickled.npy": (_pickled_npy, PLAIN + r" \(it holds pickled objects, which are never loaded\)"),
    "raw_pickle.npy": (_raw_pickle, PLAIN + r" \(it holds pickled objects, which are never loaded\)"),
    "pickled.npz": (_pickled_npz, PLAIN + r" \(it holds pickled objects, which are never loaded\)"),
    "two.npz": (_two_array_npz, r"the \.npz holds 2 arrays \['a', 'b'\]"),
    "truncated.npy": (_truncated_npy, PLAIN + "|cannot read NumPy data"),
    "broken.npz": (_not_numpy, "cannot read NumPy data|" + PLAIN),
    "nan.npy": (_nan_npy, "holds NaN or infinite values"),
    "text.npy": (_text_dtype, "dtype <U1 is not numeric"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_hostile_numpy_calibration_is_one_line(name, tmp_path):
    make, pattern = CASES[name]
    path = tmp_path / name
    make(path)
    with pytest.raises(FeredgeError, match=rf"^--calib .*{name}: ({pattern})") as info:
        build_calibration_set(path, ENTRY.spec, ENTRY.labels)
    assert "\n" not in str(info.value)


def test_single_array_npz_is_used(tmp_path):
    np.savez(tmp_path / "faces.npz", faces=np.full((3, *SHAPE), 0.25, np.float32))
    calib = build_calibration_set(tmp_path / "faces.npz", ENTRY.spec, ENTRY.labels, size=2)
    assert calib.batch.shape == (2, *SHAPE) and float(calib.batch.max()) == 0.25
    assert zipfile.is_zipfile(tmp_path / "faces.npz")


def test_pickled_npy_never_runs_its_pickle(tmp_path):
    """A pickle whose load would create a file: refusing must not unpickle (no side effect)."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    np.save(tmp_path / "evil.npy", np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(FeredgeError, match="pickled objects"):
        build_calibration_set(tmp_path / "evil.npy", ENTRY.spec, ENTRY.labels)
    assert not marker.exists()


def test_pickled_npy_through_the_library_has_no_traceback(tmp_path):
    """The calibration loader, run as the CLI would, prints one line (the CLI turns it into its error line)."""
    _pickled_npy(tmp_path / "x.npy")
    code = ("import sys\nfrom feredge.errors import FeredgeError\nfrom feredge.models import get_entry\n"
            "from feredge.calibration.dataset import build_calibration_set\ne = get_entry('mini_xception')\n"
            "try:\n    build_calibration_set(sys.argv[1], e.spec, e.labels)\n"
            "except FeredgeError as exc:\n    print(exc, file=sys.stderr); sys.exit(2)\n")
    result = subprocess.run([sys.executable, "-c", code, str(tmp_path / "x.npy")], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "pickled objects" in result.stderr


def test_photo_folder_reports_bad_files_and_uses_a_non_utf8_name(tmp_path, astronaut_path, opencv_guard):
    folder = tmp_path / "photos"
    face = astronaut_path.read_bytes()
    corpus.write(folder / corpus.non_utf8_name("face", ".jpg"), face)
    corpus.write(folder / "cut.jpg", corpus.cut(face))
    corpus.write(folder / "huge.png", corpus.png_bytes(20000, 20000, pixels=False))
    calib = build_calibration_set(folder, ENTRY.spec, ENTRY.labels)
    assert len(calib) >= 1 and all(s.startswith("face\\xff\\xfe.jpg#") for s in calib.sources)
    reasons = {Path(source).name: reason for source, reason in calib.skipped}
    assert reasons["cut.jpg"].endswith("cut.jpg: truncated JPEG (no end-of-image marker)")
    assert reasons["huge.png"].endswith("huge.png: image is 20000x20000 (400 MP), above the 100 MP limit; "
                                        "downscale it first")
    shutil.rmtree(folder)
