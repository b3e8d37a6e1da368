"""Atomic directory renames that Python's standard library does not offer.

``os.replace`` cannot replace a non-empty directory, and ``os.rename`` silently replaces an
*empty* one, so neither can (a) swap a finished bundle for the previous one with no moment in
between where the path is empty, nor (b) refuse atomically when the destination appeared after
the caller checked. Linux has both in one system call, ``renameat2(2)`` (glibc 2.28+):
``RENAME_EXCHANGE`` swaps two paths atomically, ``RENAME_NOREPLACE`` renames only if the target
does not exist. The stdlib has no binding for it (``os`` exposes ``rename``/``replace`` only),
so it is called through ctypes here. Where it is missing (not Linux, old libc, a file system
that refuses the flags) :func:`rename2` says so and the caller falls back (see
:func:`feredge.bundle.staged_bundle`).
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path

AT_FDCWD = -100
RENAME_NOREPLACE = 1
RENAME_EXCHANGE = 2


@functools.cache
def _renameat2() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):  # libc without renameat2 (glibc < 2.28, some musl)
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def rename2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2(source, target, flags)``: True when done, False when unsupported here.

    Raises ``OSError`` with the call's errno otherwise (``EEXIST`` for ``RENAME_NOREPLACE`` onto
    an existing path, ``ENOENT`` for ``RENAME_EXCHANGE`` with a missing side).
    """
    function = _renameat2()
    if function is None:
        return False
    if function(AT_FDCWD, os.fsencode(source), AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):  # kernel or file system without the flag
        return False
    raise OSError(err, os.strerror(err), str(target))
