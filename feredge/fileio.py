"""Writing outputs so that a failure (full disk, kill, read-only target) never leaves half a file.

Whole files go to a temporary sibling and are renamed over the target (``os.replace`` is atomic on
one file system), so the target holds either the old or the new content. Streams of JSON lines
are written a line at a time and cut back to the last whole line when a write fails, so a reader
never sees a partial record.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on failure it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=f".tmp{path.suffix}")
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@contextmanager
def new_directory(path: str | Path) -> Iterator[Path]:
    """Yield a staging directory beside ``path`` that becomes ``path`` when the body succeeds.

    ``path`` must not exist or be an empty directory, checked again at the rename (``rename`` onto
    a non-empty directory fails), so a directory that filled meanwhile is never replaced. On
    failure the staging directory is removed and ``path`` is as it was.
    """
    from feredge.errors import FeredgeError

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.partial-"))
    try:
        yield staging
        try:
            os.rename(staging, path)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR):
                raise FeredgeError(f"{path}: appeared meanwhile and is not empty; nothing was replaced") from None
            raise
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def write_text_atomic(path: str | Path, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


class LineSink:
    """An append-only text file of whole lines: a failed write is cut back to the last complete line."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: IO[bytes] | None = open(self.path, "wb", buffering=0)  # noqa: SIM115
        self._good = 0  # bytes of complete lines written so far

    def write(self, line: str) -> None:
        """Write ``line`` (a newline is added); on an OS error the file keeps only whole lines, then re-raises."""
        if self._handle is None:
            raise ValueError(f"{self.path}: sink is closed")
        data = line.rstrip("\n").encode("utf-8", "surrogateescape") + b"\n"
        try:
            view = memoryview(data)
            while view:
                written = self._handle.write(view)
                if not written:
                    raise OSError(errno.EIO, "short write", str(self.path))
                view = view[written:]
        except OSError as exc:
            self._cut_back()
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        self._good += len(data)

    def _cut_back(self) -> None:
        try:
            assert self._handle is not None
            self._handle.truncate(self._good)
            self._handle.seek(self._good)
        except OSError:
            pass  # the file cannot even be truncated; the caller reports the original error

    def flush(self) -> None:
        """Unbuffered: every write is already with the OS."""

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def __enter__(self) -> LineSink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
