"""Third-party log lines and prints stay out of stdout and, by default, out of sight."""

from __future__ import annotations

import logging
import sys
import warnings

import pytest

from feredge.logs import THIRD_PARTY_LOGGERS, third_party_output


def _chatter() -> None:
    logging.getLogger("nncf").warning("nncf says hello")
    logging.getLogger("torch.utils.cpp_extension").warning("No CUDA runtime is found")
    logging.warning("Please consider to run pre-processing before quantization.")  # ORT's quantizer: the root logger
    warnings.warn("a library's FutureWarning", FutureWarning, stacklevel=1)
    print("INFO:nncf:2 ignored nodes were found")  # NNCF's handler and rich bars write on stdout


def test_quiet_by_default_and_restored_after(capsys: pytest.CaptureFixture[str]) -> None:
    levels = {name: logging.getLogger(name).level for name in THIRD_PARTY_LOGGERS}
    handlers = list(logging.getLogger().handlers)
    with third_party_output():
        _chatter()
        print("ours", file=sys.stderr)  # feredge's own messages and bars (stderr) still show
    out, err = capsys.readouterr()
    assert out == "" and err == "ours\n"
    assert {name: logging.getLogger(name).level for name in THIRD_PARTY_LOGGERS} == levels
    assert logging.getLogger().handlers == handlers  # root not configured behind the user's back


def test_verbose_shows_everything_on_stderr_never_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    stream = logging.StreamHandler(sys.stdout)  # NNCF binds its handler to stdout at import
    logger = logging.getLogger("nncf")
    logger.addHandler(stream)
    try:
        with third_party_output(verbose=True), warnings.catch_warnings():
            warnings.simplefilter("always")
            _chatter()
        assert stream.stream is sys.stdout  # put back after the block
    finally:
        logger.removeHandler(stream)
    out, err = capsys.readouterr()
    assert out == ""
    assert "nncf says hello" in err and "INFO:nncf:2 ignored nodes" in err


def test_command_scope_silences_warnings_and_opencv_but_leaves_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    from cv2.utils import logging as cv_logging

    from feredge.logs import command_output

    before = cv_logging.getLogLevel()
    with command_output(verbose=False):
        logging.getLogger("nncf").warning("nncf says hello")
        logging.getLogger("openvino").warning("openvino deprecation")
        warnings.warn("a library's FutureWarning", FutureWarning, stacklevel=1)  # torch, OpenVINO: Python warnings
        print("our result")  # a command's own output on stdout is not taken over
        assert cv_logging.getLogLevel() == cv_logging.LOG_LEVEL_ERROR
        with third_party_output():  # a toolchain call inside follows the command: quiet, stdout dropped
            print("INFO:nncf:inside an export")
    assert cv_logging.getLogLevel() == before
    out, err = capsys.readouterr()
    assert "our result" in out and "nncf" not in out
    assert "FutureWarning" not in err and "nncf says hello" not in err and "openvino" not in err


def test_command_scope_verbose_reaches_nested_toolchain_calls(capsys: pytest.CaptureFixture[str]) -> None:
    from feredge.logs import command_output

    with command_output(verbose=True), third_party_output():
        print("INFO:nncf:shown")  # verbose: toolchain stdout moved to stderr
    out, err = capsys.readouterr()
    assert out == "" and "INFO:nncf:shown" in err
