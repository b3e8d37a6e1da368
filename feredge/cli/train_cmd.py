"""``feredge train``: any registered model on a FER dataset, writing safetensors checkpoints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from feredge.train.trainer import TrainConfig

NAME = "train"
HELP = "train a registered model on a FER dataset (checkpoints: safetensors + JSON sidecar)"
EXAMPLE = "feredge train --model lfer_ldl --data data/synth --input-size 64 --epochs 10 --out runs/lfer"


#: the objective names, spelled out so building the parser needs no torch (the device-side CLI);
#: tests/train/test_trainer.py checks this matches feredge.train.objectives.OBJECTIVES
OBJECTIVE_NAMES = ("ce", "center", "eac", "ldl", "combo", "spd")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="registered model name (see feredge models)")
    parser.add_argument("--data", type=Path, required=True, help="dataset root or CSV")
    parser.add_argument("--format", default="folder",
                        help="folder, fer2013, ferplus, rafdb, affectnet, affectnet7, affectnet8 (default folder)")
    parser.add_argument("--out", type=output_dir, default=Path("runs/train"), help="run directory (default runs/train)")
    parser.add_argument("--epochs", type=positive_int, default=10)
    parser.add_argument("--batch-size", type=positive_int, default=64)
    parser.add_argument("--optimizer", choices=("sgd", "adamw"), default="sgd")
    parser.add_argument("--lr", type=positive_float, default=0.01)
    parser.add_argument("--weight-decay", type=nonnegative_float, default=1e-4)
    parser.add_argument("--schedule", choices=("cosine", "step"), default="cosine")
    parser.add_argument("--step-size", type=positive_int, default=30, help="epochs per ×gamma step (step schedule)")
    parser.add_argument("--gamma", type=positive_float, default=0.1)
    parser.add_argument("--warmup-epochs", type=nonnegative_int, default=0)
    parser.add_argument("--loss", choices=OBJECTIVE_NAMES, help="objective (default: the seed's own)")
    parser.add_argument("--dropout", type=float_in(0.0, 1.0, low_open=False, high_open=True),
                        help="training-time rate of every Dropout layer (default: the model's own)")
    parser.add_argument("--init", metavar="pretrained|CHECKPOINT",
                        help="fine-tune: start from the model's shipped weights or from a checkpoint of it")
    parser.add_argument("--teacher", type=Path, help="teacher checkpoint for --loss ldl")
    parser.add_argument("--temperature", type=positive_float, default=2.0, help="teacher softmax temperature (ldl)")
    parser.add_argument("--input-size", type=int_at_least(8), help="square input side, overriding the model's spec")
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


def run(args: argparse.Namespace) -> int:
    import os

    from feredge.train.trainer import Trainer

    config = _config(args)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # started by torchrun by hand: be one of its ranks
        from feredge.cli.train_worker import run_rank

        return run_rank(config, args.json)
    if args.nproc > 1:
        from feredge.train.distributed import launch

        launch(config.to_json(), args.nproc, as_json=args.json, threads=args.threads)
        return 0
    log = (lambda text: print(text, file=sys.stderr)) if args.json else print
    from feredge.cli.train_worker import report

    report(Trainer(config, log=log).run(), args.out, args.json)
    return 0


def _config(args: argparse.Namespace) -> TrainConfig:
    from feredge.train.trainer import TrainConfig

    return TrainConfig(
        model=args.model, data=args.data, format=args.format, out=args.out, epochs=args.epochs,
        batch_size=args.batch_size, optimizer=args.optimizer, lr=args.lr, weight_decay=args.weight_decay,
        schedule=args.schedule, step_size=args.step_size, gamma=args.gamma, warmup_epochs=args.warmup_epochs,
        loss=args.loss, input_size=args.input_size, init=args.init, dropout=args.dropout, teacher=args.teacher,
        temperature=args.temperature,
        balanced=args.balanced, class_weighted=args.class_weighted, seed=args.seed, threads=args.threads,
        max_minutes=args.max_minutes, resume=args.resume,
    )
