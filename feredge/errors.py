"""One exception type for every expected, user-facing failure.

The CLI turns a :class:`FeredgeError` into a single line on stderr and a non-zero exit, with no
traceback; anything else is a bug and keeps its traceback.
"""


class FeredgeError(Exception):
    """An expected failure with a message fit for one line: what failed and why."""


class MissingBackendError(FeredgeError):
    """An optional back end (torch, OpenVINO, TensorRT, ...) is not installed."""


class OutputError(FeredgeError):
    """An output could not be written (full disk, read-only, no permission): ends the command, unlike a bad input."""
