"""One rank of ``feredge train --nproc N``: ``python -m feredge.cli.train_worker CONFIG.json [--json] [--quiet]``.

Started by :func:`feredge.train.distributed.launch` (torchrun's agent) with torchrun's
environment, or reached from ``feredge train`` when torchrun started that command by hand. Rank
0 writes ``history.json`` and prints what a single-process ``feredge train`` prints; a failure
becomes one line in the launcher's error directory and a non-zero exit (no traceback here).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from feredge.cli.common import print_json
from feredge.fileio import write_text_atomic

if TYPE_CHECKING:
    from feredge.train.trainer import TrainConfig, TrainResult


def report(result: TrainResult, out: Path, as_json: bool) -> None:
    """``history.json`` in the run directory and the closing line (or the JSON) on stdout."""
    write_text_atomic(out / "history.json", json.dumps(result.to_dict(), indent=2) + "\n")
    if as_json:
        print_json(result.to_dict())
    else:
        best = max(h.val["accuracy"] for h in result.history)
        print(f"done in {result.minutes:.1f} min; best val accuracy {best:.2%}; checkpoints {result.best}, "
              f"{result.last}")


def epoch_log(as_json: bool) -> Callable[[str], None]:
    """Where the per-epoch lines go: stdout (the run's story), stderr under --json, nowhere under --quiet."""
    from feredge.progress import note

    return note if as_json else _print_unless_quiet


def _print_unless_quiet(text: str) -> None:
    from feredge.progress import echo, is_quiet

    if not is_quiet():
        echo(text)


def run_rank(config: TrainConfig, as_json: bool) -> int:
    """Train as the rank torchrun's environment names; the exit status."""
    from torch.distributed.elastic.multiprocessing.api import SignalException

    from feredge.train.distributed import DistContext, report_failure, silence_other_ranks
    from feredge.train.trainer import Trainer

    ctx = DistContext.from_env()
    if ctx is None:
        print("feredge: error: not started by torchrun (no WORLD_SIZE > 1); use feredge train --nproc N",
              file=sys.stderr)
        return 2
    silence_other_ranks(ctx)
    try:
        ctx.init()
        result = Trainer(config, log=epoch_log(as_json), dist=ctx).run()
        if ctx.is_main:
            report(result, config.out, as_json)
        return 0
    except SignalException as exc:  # the agent stopping this rank (another failed, or the run was interrupted)
        return 128 + int(exc.sigval)
    except (Exception, KeyboardInterrupt) as exc:  # every failure becomes this rank's one line
        return report_failure(ctx, exc)
    finally:
        ctx.close()


def main(argv: list[str] | None = None) -> int:
    from feredge.progress import quiet_mode
    from feredge.train.trainer import TrainConfig

    args = list(sys.argv[1:] if argv is None else argv)
    as_json, quiet = "--json" in args, "--quiet" in args
    paths = [a for a in args if a not in ("--json", "--quiet")]
    if len(paths) != 1:
        print("usage: python -m feredge.cli.train_worker CONFIG.json [--json] [--quiet]", file=sys.stderr)
        return 2
    config = TrainConfig.from_json(json.loads(Path(paths[0]).read_text(encoding="utf-8")))
    with quiet_mode(quiet):
        return run_rank(config, as_json)


if __name__ == "__main__":
    sys.exit(main())
