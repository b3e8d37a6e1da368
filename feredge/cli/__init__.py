"""The ``feredge`` command line: one module per command, registered in :data:`COMMANDS`.

Expected failures print one ``feredge: error: ...`` line and exit 2, with no traceback: a
:class:`FeredgeError`, an OS error (unreadable, read-only, full disk, a directory where a file is
needed; :func:`os_error_line` adds what to do), and a bad argument (one line naming ``--help``
instead of argparse's usage block). Anything else is a bug and keeps its traceback. Every command
has ``--help`` with an example and a ``--json`` output, and takes ``--quiet`` (no notes or progress
bars; errors, warnings and results stay) and ``--verbose`` (the toolchains' own log lines and warnings
on stderr, silenced otherwise: :mod:`feredge.logs`).
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Sequence
from types import ModuleType

import feredge.quantize  # noqa: F401  torch-free; registers the QAT checkpoint loader for eval, train and bench
from feredge.cli import (
    bench_cmd,
    build_cmd,
    data_cmd,
    demo_cmd,
    eval_cmd,
    export_cmd,
    infer_cmd,
    models_cmd,
    qat_cmd,
    serve_cmd,
    train_cmd,
)
from feredge.cli.args import OneLineParser
from feredge.cli.common import add_output_flags
from feredge.errors import FeredgeError
from feredge.version import __version__

#: command modules; each has NAME, HELP, EXAMPLE, add_arguments(parser) and run(args) -> int
COMMANDS: tuple[ModuleType, ...] = (
    demo_cmd,
    export_cmd,
    build_cmd,
    infer_cmd,
    bench_cmd,
    models_cmd,
    data_cmd,
    train_cmd,
    eval_cmd,
    qat_cmd,
    serve_cmd,
)


#: what to do about an OS error, by errno
_OS_HINTS = {
    errno.ENOSPC: "free disk space or write somewhere else",
    errno.EDQUOT: "free disk space or write somewhere else",
    errno.EACCES: "check the permissions or use another path",
    errno.EPERM: "check the permissions or use another path",
    errno.EROFS: "the file system is read-only; write somewhere else",
    errno.EISDIR: "it is a directory; give a file path",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.ENOENT: "check the path",
    errno.EEXIST: "remove it or choose another path",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n)",
}


def os_error_line(exc: OSError) -> str:
    """``PATH: reason; what to do`` for an OS error, from its errno and file names."""
    reason = exc.strerror or exc.__class__.__name__
    names = [os.fsdecode(n) for n in (exc.filename, exc.filename2) if n is not None]
    where = " → ".join(names)
    hint = _OS_HINTS.get(exc.errno or 0)
    return f"{where + ': ' if where else ''}{reason}{'; ' + hint if hint else ''}"


def build_parser() -> argparse.ArgumentParser:
    examples = "\n".join(f"  {cmd.EXAMPLE}" for cmd in COMMANDS)
    parser = OneLineParser(
        prog="feredge",
        description="Facial-expression recognition from training to the edge.",
        epilog=f"examples:\n{examples}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"feredge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS:
        child = sub.add_parser(
            cmd.NAME, help=cmd.HELP, description=cmd.HELP, epilog=f"example:\n  {cmd.EXAMPLE}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog_factory=getattr(cmd, "help_epilog", None),
        )
        cmd.add_arguments(child)
        add_output_flags(child)
        child.set_defaults(handler=cmd.run)
    return parser


def _tolerate_undecodable_names() -> None:
    """File names that are not UTF-8 arrive as surrogate escapes; print them as their bytes, never crash."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="surrogateescape")


def main(argv: Sequence[str] | None = None) -> int:
    _tolerate_undecodable_names()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from feredge.logs import command_output
    from feredge.progress import quiet_mode

    try:
        with quiet_mode(args.quiet), command_output(args.verbose):
            return int(args.handler(args))
    except FeredgeError as exc:
        print(f"feredge: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `feredge infer ... | head`: the reader left; stop quietly
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), sys.stdout.fileno())
        return 141
    except OSError as exc:
        print(f"feredge: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    except UnicodeEncodeError as exc:
        if "surrogate" not in str(exc):
            raise
        print("feredge: error: a file name is not valid UTF-8 and this step cannot use it; rename it",
              file=sys.stderr)
        return 2
    except MemoryError:
        print("feredge: error: out of memory; use smaller inputs or batches", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("feredge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
