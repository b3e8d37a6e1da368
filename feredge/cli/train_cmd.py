"""``feredge train``: any registered model on a FER dataset, writing safetensors checkpoints."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from feredge.cli.args import (
    float_in,
    int_at_least,
    nonnegative_float,
    nonnegative_int,
    output_dir,
    positive_float,
    positive_int,
)
from feredge.cli.common import add_json_flag
from feredge.errors import FeredgeError

if TYPE_CHECKING:
    from feredge.train.trainer import TrainConfig

NAME = "train"
HELP = "train a registered model on a FER dataset (checkpoints: safetensors + JSON sidecar)"
EXAMPLE = "feredge train --model lfer_ldl --data data/synth --out runs/lfer"


#: the objective names, spelled out so building the parser needs no torch (the device-side CLI);
#: tests/train/test_trainer.py checks this matches feredge.train.objectives.OBJECTIVES
OBJECTIVE_NAMES = ("ce", "center", "eac", "ldl", "combo", "spd")


#: flags whose default is the model's recipe (feredge.models.registry.TrainDefaults), by dest name
RECIPE_FLAGS = ("epochs", "batch_size", "optimizer", "lr", "weight_decay", "warmup_epochs", "input_size", "dropout",
                "init")
MODEL_DEFAULT = "default: the model's, see below"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name (see feredge models)")
    parser.add_argument("--data", type=Path, required=True, help="dataset root or CSV")
    parser.add_argument("--format", default="folder",
                        help="folder, fer2013, ferplus, rafdb, affectnet, affectnet7, affectnet8 (default folder)")
    parser.add_argument("--out", type=output_dir, default=Path("runs/train"),
                        help="run directory (default runs/train); one that holds files needs --resume or --force")
    parser.add_argument("--force", action="store_true",
                        help="start the run in --out again: its checkpoints, trainer state and history are replaced")
    parser.add_argument("--epochs", type=positive_int, help=MODEL_DEFAULT)
    parser.add_argument("--batch-size", type=positive_int, help=MODEL_DEFAULT)
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), help=MODEL_DEFAULT)
    parser.add_argument("--lr", type=positive_float, help=MODEL_DEFAULT)
    parser.add_argument("--weight-decay", type=nonnegative_float, help=MODEL_DEFAULT)
    parser.add_argument("--schedule", choices=("cosine", "step"), default="cosine")
    parser.add_argument("--step-size", type=positive_int, default=30, help="epochs per ×gamma step (step schedule)")
    parser.add_argument("--gamma", type=positive_float, default=0.1)
    parser.add_argument("--warmup-epochs", type=nonnegative_int, help=MODEL_DEFAULT)
    parser.add_argument("--loss", choices=OBJECTIVE_NAMES, help="objective (default: the seed's own)")
    parser.add_argument("--dropout", type=float_in(0.0, 1.0, low_open=False, high_open=True),
                        help="training-time rate of every Dropout layer (default: the recipe's, else the model's own)")
    parser.add_argument("--init", metavar="pretrained|scratch|CHECKPOINT",
                        help="fine-tune from the model's shipped weights or from a checkpoint of it, or train from "
                             f"random weights (scratch); {MODEL_DEFAULT}")
    parser.add_argument("--teacher", type=Path, help="teacher checkpoint for --loss ldl")
    parser.add_argument("--temperature", type=positive_float, default=2.0, help="teacher softmax temperature (ldl)")
    parser.add_argument("--input-size", type=int_at_least(8),
                        help=f"square input side, overriding the model's spec; {MODEL_DEFAULT}")
    parser.add_argument("--balanced", action="store_true", help="class-balanced sampling")
    parser.add_argument("--class-weighted", action="store_true", help="class-weighted cross-entropy")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    parser.add_argument("--max-minutes", type=positive_float,
                        help="stop after this many minutes (after the current batch)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--nproc", type=positive_int, default=1,
                        help="data-parallel processes on this machine (torchrun + DDP: one GPU each with NCCL, "
                             "else gloo on CPU); --batch-size is per process; rank 0 alone writes (default 1)")
    add_json_flag(parser, "the training history")


def help_epilog() -> str:
    """The per-model defaults table for ``feredge train --help`` (read from the model registry)."""
    try:
        from feredge.models import get_entry, list_models
    except ImportError:  # the device-side install: no torch, no training
        return "per-model defaults: install the training side (pip install 'feredge[train]') to see them"
    from feredge.cli.common import format_table

    rows = []
    for name in list_models():
        d = get_entry(name).train_defaults
        rows.append({"model": name, "epochs": d.epochs, "batch": d.batch_size, "optimizer": d.optimizer,
                     "lr": f"{d.lr:g}", "warmup": d.warmup_epochs, "input": d.input_size or "spec",
                     "dropout": "model" if d.dropout is None else f"{d.dropout:g}", "init": d.init or "scratch",
                     "basis": d.basis})
    table = format_table(rows, [(k, k) for k in ("model", "epochs", "batch", "optimizer", "lr", "warmup", "input",
                                                 "dropout", "init", "basis")])
    table = "\n".join(line.rstrip() for line in table.splitlines())
    return ("per-model defaults, for each flag not given (the model registry's TrainDefaults; measured: "
            f"benchmarks/training.md,\nthe synthetic set on 2 CPU cores; --init scratch for random weights):\n{table}")


def run(args: argparse.Namespace) -> int:
    import os

    from feredge.train.trainer import Trainer, claim_run_dir

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1  # started by torchrun by hand: be one of its ranks
    if not distributed or int(os.environ.get("RANK", "0")) == 0:
        claim_run_dir(args.out, resume=args.resume, force=args.force)  # before any work
    config = _config(args)
    if distributed:
        from feredge.cli.train_worker import run_rank

        return run_rank(config, args.json)
    if args.nproc > 1:
        from feredge.train.distributed import launch

        launch(config.to_json(), args.nproc, as_json=args.json, threads=args.threads, quiet=args.quiet)
        return 0
    from feredge.cli.train_worker import epoch_log, report

    report(Trainer(config, log=epoch_log(args.json)).run(), args.out, args.json)
    return 0


def resolve_recipe(args: argparse.Namespace) -> dict[str, Any]:
    """Each recipe flag's value: the one given, else the model's TrainDefaults (``--init scratch``: none)."""
    from feredge.models import get_entry

    defaults = get_entry(args.model).train_defaults
    values = {name: getattr(args, name) if getattr(args, name) is not None else getattr(defaults, name)
              for name in RECIPE_FLAGS}
    if values["init"] == "scratch":
        values["init"] = None
    if args.init is None and values["init"] == "pretrained" and args.input_size is not None:
        raise FeredgeError(f"{args.model} fine-tunes its shipped weights by default, at their own input size; "
                           "drop --input-size or pass --init scratch")
    taken = [f"--{name.replace('_', '-')} {values[name]}" for name in RECIPE_FLAGS
             if getattr(args, name) is None and getattr(defaults, name) is not None]
    if taken:
        from feredge.progress import note

        note(f"{args.model}'s recipe: {', '.join(taken)} [{defaults.basis}]")
    return values


def _config(args: argparse.Namespace) -> TrainConfig:
    from feredge.train.trainer import TrainConfig

    recipe = resolve_recipe(args)
    return TrainConfig(
        model=args.model, data=args.data, format=args.format, out=args.out,
        schedule=args.schedule, step_size=args.step_size, gamma=args.gamma,
        loss=args.loss, teacher=args.teacher, temperature=args.temperature,
        balanced=args.balanced, class_weighted=args.class_weighted, seed=args.seed, threads=args.threads,
        max_minutes=args.max_minutes, resume=args.resume, **recipe,
    )
