"""``feredge qat``: INT8 quantization-aware fine-tuning of a checkpoint with NVIDIA ModelOpt."""

from __future__ import annotations

import argparse
from pathlib import Path

from feredge.cli.common import add_json_flag, print_json

NAME = "qat"
HELP = "INT8 quantization-aware training: calibrate + fine-tune a checkpoint (ModelOpt), write a QAT checkpoint"
EXAMPLE = "feredge qat runs/train/best.safetensors --data data/fer --out runs/qat --min-agreement 99"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=Path, help="float feredge checkpoint (.safetensors with .json sidecar)")
    parser.add_argument("--data", type=Path, required=True, help="training dataset (train and val splits)")
    parser.add_argument("--format", default="folder", help="dataset format (default folder)")
    parser.add_argument("--out", type=Path, default=Path("runs/qat"), help="run directory (default runs/qat)")
    parser.add_argument("--calib", type=Path, help="calibration data (default: the training split of --data)")
    parser.add_argument("--calib-format", default="auto", help="auto, images, npy, or a dataset format")
    parser.add_argument("--calib-size", type=int, default=256, help="calibration faces, class-balanced (default 256)")
    parser.add_argument("--epochs", type=int, help="fine-tuning epochs (default 10%% of the checkpoint's, ≥ 1)")
    parser.add_argument("--lr", type=float, help="starting learning rate (default 1%% of the checkpoint's peak rate)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--objective", choices=("ce", "distill"), default="ce",
                        help="ce: the dataset's labels (default); distill: match the float checkpoint's softmax")
    parser.add_argument("--select", choices=("agreement", "accuracy"), default="agreement",
                        help="which epoch to keep: the one agreeing most with the float model on val (default; "
                             "the calibrated model competes as epoch 0) or the most accurate")
    parser.add_argument("--no-freeze-bn", dest="freeze_bn", action="store_false",
                        help="let BatchNorm statistics move during fine-tuning (default: frozen)")
    parser.add_argument("--min-agreement", type=float, metavar="PERCENT",
                        help="before fine-tuning, keep the most sensitive layers in float until the calibrated "
                             "model's top-1 agrees with the float model on PERCENT %% of val (e.g. 99)")
    parser.add_argument("--keep-float", nargs="+", default=[], metavar="LAYER",
                        help="layers to keep in float (names as `feredge qat --json` or the export manifest's "
                             "int8.excluded list them)")
    parser.add_argument("--threads", type=int, help="torch threads")
    parser.add_argument("--max-minutes", type=float, help="stop fine-tuning after this many minutes")
    parser.add_argument("--no-overflow-fix", dest="overflow_fix", action="store_false",
                        help="full 8-bit weights (only for TensorRT or VNNI CPUs)")
    add_json_flag(parser, "the QAT result")


def run(args: argparse.Namespace) -> int:
    from feredge.quantize.qat import QatConfig, run_qat

    cfg = QatConfig(checkpoint=args.checkpoint, data=args.data, format=args.format, out=args.out, calib=args.calib,
                    calib_format=args.calib_format, calib_size=args.calib_size, epochs=args.epochs, lr=args.lr,
                    batch_size=args.batch_size, overflow_fix=args.overflow_fix, threads=args.threads,
                    max_minutes=args.max_minutes, objective=args.objective, select=args.select,
                    freeze_bn=args.freeze_bn, keep_float=tuple(args.keep_float), min_agreement=args.min_agreement)
    from feredge.logs import third_party_output

    with third_party_output(args.verbose):
        result = run_qat(cfg, log=_log, progress=not args.json)
    if args.json:
        print_json(result.to_dict())
        return 0
    acc = result.accuracy
    print(f"wrote {result.checkpoint} (QAT, {result.quantizers} quantizers incl. {len(result.residual_adds)} "
          f"residual adds; {result.epochs} epochs at lr {result.lr:g})")
    agree = result.agreement
    print(f"  val accuracy: fp32 {acc['fp32']:.2%}  INT8 calibrated {acc['ptq']:.2%}  INT8 QAT {acc['qat']:.2%}")
    print(f"  agreement with fp32: calibrated {agree['ptq']:.2%}  QAT {agree['qat']:.2%} "
          f"(kept epoch {result.selected_epoch} of {result.epochs}, by {args.select})")
    if result.excluded:
        print(f"  kept in float: {', '.join(result.excluded)}")
    print(f"  export: feredge export --checkpoint {result.checkpoint} --precision int8 --target openvino")
    return 0


def _log(text: str) -> None:
    from feredge.progress import note

    note(text)
