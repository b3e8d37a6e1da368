"""The ``feredge`` command line: one module per command, registered in :data:`COMMANDS`.

Expected failures (:class:`FeredgeError`) print one ``feredge: error: ...`` line and exit 2; no
traceback. Every command has ``--help`` with an example and a ``--json`` output.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from types import ModuleType

from feredge import __version__
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
    train_cmd,
)
from feredge.errors import FeredgeError

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
)


def build_parser() -> argparse.ArgumentParser:
    examples = "\n".join(f"  {cmd.EXAMPLE}" for cmd in COMMANDS)
    parser = argparse.ArgumentParser(
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
        )
        cmd.add_arguments(child)
        child.set_defaults(handler=cmd.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    try:
        return int(args.handler(args))
    except FeredgeError as exc:
        print(f"feredge: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("feredge: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
