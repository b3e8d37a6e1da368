"""``feredge data synth``: write the synthetic FER set in the real formats (folder, FER2013 CSV)."""

from __future__ import annotations

import argparse

from feredge.cli.args import int_at_least, output_dir
from feredge.cli.common import add_json_flag, print_json
from feredge.fileio import new_directory

NAME = "data"
HELP = "generate the synthetic FER set (class-per-folder and FER2013-CSV formats)"
EXAMPLE = "feredge data synth --output data/synth --per-class 400 --size 64"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("synth",), help="what to do (synth: write the synthetic set)")
    parser.add_argument("--output", "-o", type=output_dir, required=True, help="directory to write")
    parser.add_argument("--per-class", type=int_at_least(3), default=400, help="images per expression (default 400)")
    parser.add_argument("--size", type=int_at_least(32), default=64, help="image side in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument("--format", choices=("folder", "fer2013"), default="folder",
                        help="folder: OUTPUT/<split>/<label>/*.png; fer2013: OUTPUT/fer2013.csv (48x48 gray)")
    add_json_flag(parser, "split counts")


def run(args: argparse.Namespace) -> int:
    from feredge.data.synth import write_fer2013_csv, write_folder
    from feredge.data.synth.splits import DEFAULT_SPLITS, nonempty_split_counts
    from feredge.errors import FeredgeError
    from feredge.progress import warn

    if args.output.exists() and any(args.output.iterdir()):
        raise FeredgeError(f"{args.output}: exists and is not empty; choose a new directory")
    splits, adjusted = nonempty_split_counts(args.per_class)
    if adjusted:  # e.g. --per-class 5: 10 % val/test rounds to 0 images, a set nothing can be validated on
        shares = " / ".join(f"{100 * v:.0f} %" for v in DEFAULT_SPLITS.values())
        warn(f"--per-class {args.per_class}: {shares} ({'/'.join(DEFAULT_SPLITS)}) would leave a split empty; "
             f"writing {' / '.join(f'{n} {name}' for name, n in splits.items())} per class")
    with new_directory(args.output) as staging:  # a failed or killed run leaves no half-written set
        if args.format == "folder":
            counts = write_folder(staging, n_per_class=args.per_class, size=args.size, seed=args.seed,
                                  splits=splits, progress=True)
        else:
            counts = write_fer2013_csv(staging / "fer2013.csv", n_per_class=args.per_class, seed=args.seed,
                                       splits=splits, progress=True)
    if args.json:
        print_json({"output": str(args.output), "splits": counts})
    else:
        splits = ", ".join(f"{k} {v}" for k, v in counts.items())
        print(f"wrote {sum(counts.values())} images to {args.output} ({splits})")
    return 0
