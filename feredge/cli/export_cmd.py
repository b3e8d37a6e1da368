"""``feredge export``: a model, checkpoint or the shipped default → verified bundle."""

from __future__ import annotations

import argparse
from pathlib import Path

from feredge.cli.common import add_json_flag, print_json

NAME = "export"
HELP = "export a model to a verified ONNX / OpenVINO / TensorRT-ready / DeepStream bundle"
EXAMPLE = ("feredge export --target openvino --precision fp32 --output bundles/default\n"
           "  feredge export --target openvino --precision int8 --calib photos/ --output bundles/int8\n"
           "  feredge export --target deepstream --precision fp16 --streams 4 --output bundles/ds")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from feredge.backends import export_targets
    from feredge.cli.args import float_in, int_at_least, output_dir, positive_int
    from feredge.quantize.ptq import PTQ_BACKENDS

    targets = [name for t in export_targets() for name in (t.name, *t.aliases)]
    parser.add_argument("--target", default="openvino", choices=targets, help="export format (default openvino)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "fp16", "int8"),
                        help="default fp32 (int8: needs --calib DATA or a QAT checkpoint from `feredge qat`)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="registered model name (default: the shipped mini_xception)")
    source.add_argument("--checkpoint", type=Path, help="feredge checkpoint (.safetensors with .json sidecar)")
    parser.add_argument("--output", "-o", type=output_dir, help="bundle directory (default: the per-user cache, "
                        "$XDG_CACHE_HOME/feredge/VERSION/MODEL-TARGET-PREC, ~/.cache without XDG_CACHE_HOME)")
    parser.add_argument("--max-batch", type=int_at_least(1, 4096), default=64,
                        help="largest batch the bundle accepts (default 64)")
    parser.add_argument("--force", action="store_true", help="replace an existing bundle directory")
    from feredge.preprocess.blazeface import BLAZEFACE_SPECS

    parser.add_argument("--detector-network", default="blazeface", choices=(*BLAZEFACE_SPECS, "none"),
                        help="BlazeFace variant whose network the bundle carries as its detector network, verified "
                             "in ONNX Runtime and OpenVINO (default blazeface: short range; none: no detector "
                             "network). The bundle's default detector is unchanged; --detector picks it at run time")
    int8 = parser.add_argument_group("int8")
    int8.add_argument("--calib", help="calibration data: a dataset (class folders), a folder of face photos, "
                                      "a .npy of prepared faces, or 'reference'")
    int8.add_argument("--calib-format", default="auto",
                      help="auto (default), images, npy, reference, or a dataset format (folder, fer2013, rafdb, ...)")
    int8.add_argument("--calib-size", type=positive_int, default=256,
                      help="calibration faces, class-balanced (default 256)")
    int8.add_argument("--max-drop", type=float_in(0.0, 100.0, low_open=False), metavar="POINTS",
                      help="accuracy budget on the calibration dataset's val split; keeps sensitive layers in float")
    int8.add_argument("--min-agreement", type=float_in(0.0, 100.0), metavar="PERCENT",
                      help="INT8 top-1 agreement with FP32 to reach on the gate faces (the val split of a labelled "
                           "--calib, else the reference faces) by keeping the fewest sensitive layers in float "
                           "(default: the gate's 98)")
    int8.add_argument("--ptq", default="auto", choices=("auto", *PTQ_BACKENDS),
                      help="post-training backend when the checkpoint is not a QAT one (auto: nncf for openvino, "
                           "ort for onnx, modelopt for tensorrt)")
    int8.add_argument("--overflow-fix", dest="overflow_fix", action=argparse.BooleanOptionalAction, default=None,
                      help="PTQ: 7-bit weights so CPUs without VNNI cannot saturate (default: on for openvino/onnx, "
                           "off for tensorrt; see feredge.quantize.config)")
    trt = parser.add_argument_group("tensorrt target")
    trt.add_argument("--min-batch", type=positive_int, help="TensorRT profile: fewest faces per frame (default 1)")
    trt.add_argument("--opt-batch", type=positive_int, help="TensorRT profile: faces per frame to tune for (default 4)")
    trt.add_argument("--workspace-mb", type=int_at_least(16), default=1024,
                     help="TensorRT builder workspace (default 1024)")
    ds = parser.add_argument_group("deepstream target")
    ds.add_argument("--streams", type=int_at_least(1, 256), default=1,
                    help="deepstream-app sources and nvstreammux/primary batch size (default 1)")
    ds.add_argument("--uri", action="append", default=[], metavar="URI",
                    help="a source URI (file://, rtsp://): once for every stream, or once per stream "
                         "(default: DeepStream's sample_720p.mp4)")
    add_json_flag(parser, "the manifest")


def run(args: argparse.Namespace) -> int:
    from feredge.bundle import check_destination

    if args.output is not None:  # before importing the export side (torch) and loading the model
        check_destination(args.output, overwrite=args.force)
    from feredge.export.deepstream_options import DeepStreamOptions
    from feredge.export.exporter import ExportOptions, export
    from feredge.export.tensorrt.options import TrtExportOptions
    from feredge.quantize.options import Int8Options

    int8 = None
    if args.precision == "int8":
        _check_int8_source(args)
        int8 = Int8Options(calib=args.calib, calib_format=args.calib_format, calib_size=args.calib_size,
                           max_drop=args.max_drop, ptq=args.ptq, overflow_fix=args.overflow_fix,
                           min_agreement=args.min_agreement)
    options = ExportOptions(target=args.target, precision=args.precision, output=args.output, model=args.model,
                            checkpoint=args.checkpoint, max_batch=args.max_batch, force=args.force, int8=int8,
                            detector_network=None if args.detector_network == "none" else args.detector_network,
                            tensorrt=TrtExportOptions(min_batch=args.min_batch, opt_batch=args.opt_batch,
                                                      workspace_mb=args.workspace_mb, calib=args.calib),
                            deepstream=DeepStreamOptions(streams=args.streams, uris=tuple(args.uri)))
    from feredge.logs import third_party_output
    from feredge.progress import note

    with third_party_output(args.verbose):
        result = export(options, progress=None if args.json else lambda s: note(f"  {s}..."))
    for message in result.messages:
        note(f"note: {message}")
    if args.json:
        print_json({"bundle": str(result.bundle), "manifest": result.manifest})
        return 0
    print(f"wrote {result.bundle} ({result.manifest['model']['name']}, {result.manifest['target']}, "
          f"{result.manifest['precision']})")
    for parity in result.manifest["parity"]["results"]:
        faces = parity.get("faces", "reference")
        where = "real reference faces" if faces == "reference" else f"faces ({faces})"
        role = "" if parity.get("gate", True) else "  [information; not the gate]"
        print(f"  parity {parity['runtime']:<22} max|Δlogit| {parity['max_abs']:.2e}  "
              f"top-1 agreement {parity['top1_agreement']:.1%}  on {parity['samples']} {where}{role}")
    for role, network in result.manifest.get("networks", {}).items():
        for parity in network.get("parity", ()):
            print(f"  {role} {parity['runtime']:<20} max|Δraw| {parity['max_abs_raw']:.2e}  max|Δbox| "
                  f"{parity['max_abs_box_px']:.2e} px  faces {list(parity['faces'])} on {', '.join(parity['photos'])}")
    return 0


def _check_int8_source(args: argparse.Namespace) -> None:
    """Fail in one line before any export work: INT8 needs calibration data or a QAT checkpoint."""
    from feredge.errors import FeredgeError
    from feredge.export.int8 import NEEDS_CALIB

    if args.calib is not None:
        return
    if args.checkpoint is not None:
        from feredge.checkpoint import read_checkpoint_meta
        from feredge.quantize.modelopt_qat import is_qat_extra

        if is_qat_extra(read_checkpoint_meta(args.checkpoint)[1].extra):
            return
    if args.max_drop is not None:
        raise FeredgeError("--max-drop needs --calib DATA with a labelled validation split")
    raise FeredgeError(NEEDS_CALIB)
