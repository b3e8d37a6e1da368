"""Keep third-party chatter out of the user's terminal and out of ``--json`` output.

The toolchains we drive log for their own developers: NNCF logs INFO lines and draws rich progress
bars on **stdout** (which would corrupt ``feredge export --json``), ONNX Runtime's quantizer warns
through the root logger and its C++ core on stderr, and importing ModelOpt makes torch warn that
there is no CUDA. :func:`third_party_output` silences all of that for the duration of a command —
their loggers go to ERROR, their Python warnings are ignored, anything they print on stdout is
dropped — unless ``verbose``, in which case everything is shown, but on stderr, so stdout stays
ours. feredge's own progress bars (tqdm on stderr) and messages are not affected.

Two scopes. The CLI wraps every command in :func:`command_output` (``--verbose`` or not): loggers,
Python warnings (torch, OpenVINO, NNCF), ONNX Runtime's C++ log and OpenCV's own log are quiet for
the whole command, and the choice is remembered. Around a toolchain call that prints on stdout
(an export, QAT, a benchmark's export) :func:`third_party_output` also takes stdout over — with
``verbose=None`` it follows the command's choice, so library code need not be told.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
import warnings
from collections.abc import Iterator

#: loggers of the libraries feredge drives (their children inherit the level)
THIRD_PARTY_LOGGERS = ("nncf", "torch", "modelopt", "onnxruntime", "onnx", "openvino", "onnxscript", "tensorrt")


_state = {"verbose": False}


@contextlib.contextmanager
def command_output(verbose: bool = False) -> Iterator[None]:
    """One command's scope: third-party logs and warnings quiet unless ``verbose``; stdout left alone
    (the command's own results go there). Nested :func:`third_party_output` calls follow ``verbose``."""
    previous = _state["verbose"]
    _state["verbose"] = bool(verbose)
    try:
        with third_party_output(verbose, capture_stdout=False):
            yield
    finally:
        _state["verbose"] = previous


@contextlib.contextmanager
def third_party_output(verbose: bool | None = None, *, capture_stdout: bool = True) -> Iterator[None]:
    """Quiet (default) or verbose-on-stderr third-party output while the block runs; restored after.

    ``verbose=None``: the enclosing command's choice (:func:`command_output`). ``capture_stdout``:
    what the toolchains print on stdout is dropped (quiet) or moved to stderr (verbose)."""
    if verbose is None:
        verbose = _state["verbose"]
    stdout: io.TextIOBase = sys.stderr if verbose else io.StringIO()  # type: ignore[assignment]
    redirect = contextlib.redirect_stdout(stdout) if capture_stdout else contextlib.nullcontext()
    if verbose:
        with _handlers_on_stderr(), redirect:
            yield
        return
    loggers = [logging.getLogger(name) for name in THIRD_PARTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    root = logging.getLogger()
    root_level, guard = root.level, logging.NullHandler()  # a handler, so logging.warning() cannot basicConfig()
    root.addHandler(guard)
    root.setLevel(logging.ERROR)
    ort_severity = _ort_severity(3)
    opencv_level = _opencv_level(2)
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), redirect:
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        root.removeHandler(guard)
        root.setLevel(root_level)
        if ort_severity is not None:
            _ort_severity(ort_severity)
        if opencv_level is not None:
            _opencv_level(opencv_level)


@contextlib.contextmanager
def _handlers_on_stderr() -> Iterator[None]:
    """Point the third-party log handlers bound to stdout at import (NNCF's) at stderr for the block."""
    moved = [(handler, handler.stream) for name in THIRD_PARTY_LOGGERS
             for handler in logging.getLogger(name).handlers
             if isinstance(handler, logging.StreamHandler) and handler.stream in (sys.stdout, sys.__stdout__)]
    for handler, _stream in moved:
        handler.setStream(sys.stderr)
    try:
        yield
    finally:
        for handler, stream in moved:
            handler.setStream(stream)


def _ort_severity(level: int) -> int | None:
    """Set ONNX Runtime's default C++ log severity (3: errors only); returns the previous one (2: its default)."""
    try:
        import onnxruntime as ort
    except ImportError:  # the device side may run without it (OpenVINO only)
        return None
    ort.set_default_logger_severity(level)
    return 2


def _opencv_level(level: int) -> int | None:
    """Set OpenCV's own log level (2: errors only; its default 3 also prints warnings such as a
    codec's or a camera back end's); returns the previous one."""
    try:
        from cv2.utils import logging as cv_logging
    except ImportError:
        return None
    previous = int(cv_logging.getLogLevel())
    cv_logging.setLogLevel(level)
    return previous
