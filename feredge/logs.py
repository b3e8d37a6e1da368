"""Keep third-party chatter out of the user's terminal and out of ``--json`` output.

The toolchains we drive log for their own developers: NNCF logs INFO lines and draws rich progress
bars on **stdout** (which would corrupt ``feredge export --json``), ONNX Runtime's quantizer warns
through the root logger and its C++ core on stderr, and importing ModelOpt makes torch warn that
there is no CUDA. :func:`third_party_output` silences all of that for the duration of a command —
their loggers go to ERROR, their Python warnings are ignored, anything they print on stdout is
dropped — unless ``verbose``, in which case everything is shown, but on stderr, so stdout stays
ours. feredge's own progress bars (tqdm on stderr) and messages are not affected.
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


@contextlib.contextmanager
def third_party_output(verbose: bool = False) -> Iterator[None]:
    """Quiet (default) or verbose-on-stderr third-party output while the block runs; restored after."""
    stdout: io.TextIOBase = sys.stderr if verbose else io.StringIO()  # type: ignore[assignment]
    if verbose:
        with _handlers_on_stderr(), contextlib.redirect_stdout(stdout):
            yield
        return
    loggers = [logging.getLogger(name) for name in THIRD_PARTY_LOGGERS]
    levels = [logger.level for logger in loggers]
    root = logging.getLogger()
    root_level, guard = root.level, logging.NullHandler()  # a handler, so logging.warning() cannot basicConfig()
    root.addHandler(guard)
    root.setLevel(logging.ERROR)
    ort_severity = _ort_severity(3)
    try:
        for logger in loggers:
            logger.setLevel(logging.ERROR)
        with warnings.catch_warnings(), contextlib.redirect_stdout(stdout):
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
        root.removeHandler(guard)
        root.setLevel(root_level)
        if ort_severity is not None:
            _ort_severity(ort_severity)


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
