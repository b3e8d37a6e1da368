"""Regenerate ``benchmarks/int8_report.{md,json}``: QAT and PTQ INT8 against FP32 on the synthetic set.

Per model: a small FP32 checkpoint trained on the synthetic set with the Trainer (the default
mini_xception starts from its shipped FER2013 weights), ``feredge qat`` (ModelOpt, ~10 % of the
epochs), the QAT Q/DQ ONNX run in ONNX Runtime and OpenVINO, the PTQ backends beside it, OpenVINO
FP32 vs INT8 latency measured in the same run, a QAT checkpoint save → restore → identical-output
check, and for the shipped default model the agreement with FP32 on the real reference faces.

    python scripts/int8_report.py                     # all four models (tens of minutes on 2 cores)
    python scripts/int8_report.py --models mini_xception --epochs 2
    python scripts/int8_report.py --data /tmp/synth --checkpoint lfer_ldl=runs/lfer/best.safetensors ...

``--checkpoint NAME=PATH`` starts from an FP32 checkpoint trained elsewhere (the recipes of
``benchmarks/training.md``) instead of the short training run: agreement and drop are only
meaningful for a converged model.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from feredge.bench.cpu import cpu_info
from feredge.bench.latency import measure
from feredge.calibration.dataset import build_calibration_set, from_dataset
from feredge.calibration.reference import reference_faces
from feredge.checkpoint import load_checkpoint, save_checkpoint
from feredge.data.synth import write_folder
from feredge.export.onnx_export import export_onnx
from feredge.export.openvino_export import convert_to_openvino
from feredge.models import create_model, deploy_graph, get_entry
from feredge.quantize.evaluate import accuracy, agreement, runtime_logits, torch_logits
from feredge.quantize.ptq import PTQ_BACKENDS, Int8Request
from feredge.quantize.qat import QatConfig, run_qat
from feredge.quantize.qdq_export import export_qdq_onnx
from feredge.runtimes.openvino_runner import OpenVINORunner
from feredge.train.trainer import TrainConfig, Trainer

MODELS = ("mini_xception", "csam_net", "lfer_ldl", "resnet18")
INPUT = {"mini_xception": 64, "csam_net": 48, "lfer_ldl": 64, "resnet18": 64}


def _train_fp32(name: str, data: Path, work: Path, epochs: int, log: Any) -> Path:
    entry = get_entry(name)
    size = INPUT[name]
    model = create_model(name, pretrained=True) if entry.pretrained is not None else None
    cfg = TrainConfig(model=name, data=data, out=work / name / "fp32", epochs=epochs, optimizer="adamw",
                      lr=1e-3 if model is None else 3e-4, weight_decay=1e-4, loss="ce", input_size=size,
                      batch_size=32, threads=2, seed=0)
    return Trainer(cfg, log=log, progress=False, model=model).run().best


def _latency(path: Path, batch: np.ndarray, precision: str) -> dict[str, Any]:
    with OpenVINORunner(path, precision=precision, threads=2) as runner:
        stats = measure(runner, batch[:8], 1, warmup=20, iterations=200)
    return {"p50_ms": round(stats.p50_ms, 4), "inference_precision": stats.settings["inference_precision"]}


def _row(ref: np.ndarray, labels: np.ndarray, fp32_acc: float, logits: np.ndarray) -> dict[str, float]:
    acc = accuracy(logits, labels)
    return {"accuracy": round(acc, 4), "drop_points": round(100 * (fp32_acc - acc), 2),
            "agreement": round(agreement(ref, logits), 4)}


def evaluate_model(name: str, data: Path, work: Path, epochs: int, log: Any,
                   checkpoint: Path | None = None, qat_objective: str = "ce",
                   qat_select: str = "agreement", qat_min_agreement: float | None = None,
                   overflow_fix: bool = True) -> dict[str, Any]:
    out = work / name
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    fp32_ckpt = checkpoint if checkpoint is not None else _train_fp32(name, data, work, epochs, log)
    model, meta = load_checkpoint(fp32_ckpt)
    model = deploy_graph(model)
    spec, labels = meta.spec, meta.labels
    test = from_dataset(data, spec, labels, split="test", size=10**6, balanced=False)
    assert test.labels is not None
    fp32_logits = torch_logits(model, test.batch)
    fp32_acc = accuracy(fp32_logits, test.labels)
    result: dict[str, Any] = {"model": name, "input": list(spec.input_shape),
                              "fp32": {"checkpoint": str(checkpoint)} if checkpoint else {"epochs": epochs},
                              "test_samples": len(test)}
    result["fp32"]["accuracy"] = round(fp32_acc, 4)
    ref = reference_faces(spec)
    fp32_onnx = out / "fp32.onnx"
    export_onnx(model, tuple(spec.input_shape), fp32_onnx, ref.batch[:16])
    fp32_xml = out / "fp32.xml"
    convert_to_openvino(fp32_onnx, fp32_xml, compress_to_fp16=False)

    # QAT
    qat = run_qat(QatConfig(checkpoint=fp32_ckpt, data=data, out=out / "qat", calib_size=256, threads=2,
                            batch_size=32, objective=qat_objective, select=qat_select,
                            min_agreement=qat_min_agreement, overflow_fix=overflow_fix), log=log, progress=False)
    qat_model, qat_meta = load_checkpoint(qat.checkpoint)
    qdq = out / "qat.qdq.onnx"
    summary = export_qdq_onnx(qat_model, tuple(spec.input_shape), qdq)
    result["qat"] = {"epochs": qat.epochs, "lr": qat.lr, "objective": qat_objective, "select": qat_select,
                     "selected_epoch": qat.selected_epoch, "torch_val_agreement": qat.agreement,
                     "min_agreement": qat_min_agreement, "float_layers": qat.excluded,
                     "history": [{k: h[k] for k in ("epoch", "score", "lr")} | {"val_accuracy": h["val"]["accuracy"]}
                                 for h in qat.history], "torch_val": qat.accuracy,
                     "quantizers": qat.quantizers, "residual_adds": len(qat.residual_adds),
                     "qdq": {k: summary.to_dict()[k] for k in ("quantize_nodes", "per_channel_weights",
                                                               "per_tensor_activations", "quantized_add_inputs",
                                                               "adds", "opset")},
                     "onnxruntime": _row(fp32_logits, test.labels, fp32_acc,
                                         runtime_logits(qdq, test.batch, "onnxruntime")),
                     "openvino": _row(fp32_logits, test.labels, fp32_acc, runtime_logits(qdq, test.batch, "openvino"))}
    # round trip: restore → save → restore gives identical outputs
    again = save_checkpoint(out / "roundtrip", qat_model.state_dict(), qat_meta)
    restored, _ = load_checkpoint(again)
    a, b = torch_logits(qat_model, test.batch[:64]), torch_logits(restored, test.batch[:64])
    result["qat"]["roundtrip_identical"] = bool(np.array_equal(a, b))

    # PTQ backends on the same calibration set (train split, class-balanced)
    calib = build_calibration_set(data, spec, labels, fmt="folder", size=256)
    ptq: dict[str, Any] = {}
    artifacts: dict[str, Path] = {"qat": qdq}
    for backend in PTQ_BACKENDS.values():
        request = Int8Request(model, tuple(spec.input_shape), fp32_onnx, calib.batch, out, overflow_fix=overflow_fix)
        art = backend.quantize(request)
        artifacts[backend.name] = art.path
        row: dict[str, Any] = {"artifact": art.kind}
        runtimes = ("openvino",) if art.kind == "openvino_ir" else ("onnxruntime", "openvino")
        for runtime in runtimes:
            row[runtime] = _row(fp32_logits, test.labels, fp32_acc, runtime_logits(art.path, test.batch, runtime))
        ptq[backend.name] = row
    result["ptq"] = ptq

    # OpenVINO latency, FP32 vs INT8, same run, batch 1
    lat = {"fp32": _latency(fp32_xml, test.batch, "fp32")}
    qat_xml = out / "qat.xml"
    convert_to_openvino(qdq, qat_xml, compress_to_fp16=False)
    lat["int8_qat"] = _latency(qat_xml, test.batch, "int8")
    lat["int8_nncf"] = _latency(artifacts["nncf"], test.batch, "int8")
    for key in ("int8_qat", "int8_nncf"):
        lat[key]["speedup_vs_fp32"] = round(lat["fp32"]["p50_ms"] / lat[key]["p50_ms"], 3)
    result["openvino_latency"] = lat

    if get_entry(name).pretrained is not None:
        result["reference_faces"] = _reference_agreement(name, spec, calib.batch, out)
    result["seconds"] = round(time.time() - t0, 1)
    return result


def _reference_agreement(name: str, spec: Any, calib: np.ndarray, out: Path) -> dict[str, Any]:
    """The shipped model (not fine-tuned) on the real faces: INT8 top-1 agreement with its FP32."""
    ref = reference_faces(spec)
    model = deploy_graph(create_model(name, pretrained=True))
    expected = torch_logits(model, ref.batch)
    onnx_path = out / "shipped.onnx"
    export_onnx(model, tuple(spec.input_shape), onnx_path, ref.batch[:16])
    rows: dict[str, Any] = {"samples": len(ref.batch), "sources": ref.describe()["sources"]}
    for fix in (True, False):
        for backend in PTQ_BACKENDS.values():
            request = Int8Request(model, tuple(spec.input_shape), onnx_path, calib, out / f"ref-{fix}",
                                  overflow_fix=fix)
            request.workdir.mkdir(exist_ok=True)
            art = backend.quantize(request)
            runtimes = ("openvino",) if art.kind == "openvino_ir" else ("onnxruntime", "openvino")
            for runtime in runtimes:
                key = f"{backend.name}/{runtime}/overflow_fix={'on' if fix else 'off'}"
                rows[key] = round(agreement(expected, runtime_logits(art.path, ref.batch, runtime)), 4)
    return rows


def _markdown(report: dict[str, Any]) -> str:
    lines = ["# INT8 report (QAT and PTQ vs FP32, synthetic FER set)", "",
             f"Generated by `{report['command']}` on {report['machine']}.", "",
             ("Weights: 7 of 8 bits (overflow fix, the default for CPU targets) in QAT and PTQ."
              if report.get("overflow_fix", True) else
              "Weights: full 8 bits (`--no-overflow-fix`: TensorRT's default, and right on CPUs with VNNI) in QAT "
              "and PTQ; the real-face section below measures both."), "",
             "Accuracy on the synthetic test split; agreement = INT8 top-1 = FP32 top-1 on the same faces; drop in "
             "points. QAT = ModelOpt fake-quant fine-tuning (objective in the JSON: labels or distillation from the "
             "FP32 checkpoint), exported as one Q/DQ ONNX, run in ONNX Runtime (ORT) and "
             "OpenVINO (OV). PTQ beside it on the same 256 class-balanced calibration faces.", "",
             "QAT kept epoch: the fine-tuning epoch kept by `--select` (agreement with FP32 on the validation split, "
             "the calibrated model competing as epoch 0); 0 means fine-tuning never beat calibration alone. "
             "With `--qat-min-agreement` (`feredge qat --min-agreement`), the layers kept in float before "
             "fine-tuning, ranked by the output noise each adds alone, until the calibrated model agrees with FP32 "
             "on that share of the validation faces; the QAT ONNX keeps them in float for every runtime.", "",
             "| model | FP32 acc | QAT kept epoch | QAT ORT acc / drop / agree | QAT OV acc / drop / agree | "
             "PTQ modelopt OV | PTQ ort ORT | PTQ nncf OV | OV FP32 ms | OV INT8 ms (QAT) | speed-up QAT / NNCF | "
             "round trip |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]

    def fmt(row: dict[str, Any]) -> str:
        return f"{row['accuracy']:.1%} / {row['drop_points']:+.2f} / {row['agreement']:.1%}"

    for r in report["models"]:
        if "error" in r:
            lines.append(f"| {r['model']} | error: {r['error']} |")
            continue
        lat, qat, ptq = r["openvino_latency"], r["qat"], r["ptq"]
        kept = f"{qat.get('selected_epoch', '?')} of {qat['epochs']} (lr {qat['lr']:.2g})"
        if qat.get("min_agreement") is not None:
            kept += f"; {len(qat.get('float_layers') or [])} layers in float"
        cells = [r["model"], f"{r['fp32']['accuracy']:.1%}", kept, fmt(qat["onnxruntime"]), fmt(qat["openvino"]),
                 fmt(ptq["modelopt"]["openvino"]), fmt(ptq["ort"]["onnxruntime"]), fmt(ptq["nncf"]["openvino"]),
                 f"{lat['fp32']['p50_ms']:.3f} ({lat['fp32']['inference_precision']})",
                 f"{lat['int8_qat']['p50_ms']:.3f}",
                 f"{lat['int8_qat']['speedup_vs_fp32']:.2f}× / {lat['int8_nncf']['speedup_vs_fp32']:.2f}×",
                 "identical" if qat["roundtrip_identical"] else "DIFFERS"]
        lines.append("| " + " | ".join(cells) + " |")
    for r in report["models"]:
        if "reference_faces" in r:
            lines += ["", f"## {r['model']} (shipped FER2013 weights) on the real reference faces",
                      f"{r['reference_faces']['samples']} faces ({r['reference_faces']['sources']}); top-1 agreement "
                      "of INT8 PTQ with FP32:", "", "| backend / runtime / overflow fix | agreement |", "| --- | --- |"]
            lines += [f"| {k} | {v:.1%} |" for k, v in r["reference_faces"].items() if "/" in k]
    lines += ["", "Q/DQ structure (QAT ONNX): " + "; ".join(
        f"{r['model']}: {r['qat']['qdq']['quantize_nodes']} Q/DQ pairs, {r['qat']['qdq']['per_channel_weights']} "
        f"per-channel weights, {r['qat']['qdq']['quantized_add_inputs']}/{2 * r['qat']['qdq']['adds']} Add inputs "
        f"quantized, opset {r['qat']['qdq']['opset']}" for r in report["models"] if "qat" in r), "",
        "Notes: latencies are medians of 200 batch-1 runs on a shared 2-core machine (quote ratios). "
        f"{_cpu_note(report)} "
        "'Add inputs quantized' counts every ONNX Add (bias and constant adds included); every "
        "residual tensor+tensor Add has both inputs quantized unless it is one of the layers kept in float. "
        "FP32 checkpoints not given with --checkpoint are "
        "trained for --epochs only: a model near chance accuracy (one predicted class) makes agreement trivially "
        "100 % and a model still learning changes its predictions during QAT fine-tuning, so its QAT agreement with "
        "the FP32 checkpoint is low; pass converged checkpoints (--checkpoint) for figures that test the ≥ 99 % "
        "agreement criterion.", ""]
    return "\n".join(lines)


def _cpu_note(report: dict[str, Any]) -> str:
    from feredge.bench.cpu import has_vnni

    cpu = report.get("cpu") or {}
    if not cpu:
        return "CPU not recorded."
    head = f"CPU: {cpu['cpu']} (ISA {cpu['isa']})."
    if has_vnni(cpu["isa"]):
        return (f"{head} It has VNNI, so INT8 does not saturate here; the overflow fix (7-bit weights, on by "
                "default for CPU targets so that an artifact also runs right on CPUs without VNNI) costs some weight "
                "resolution on this machine — compare the overflow_fix=off rows.")
    return (f"{head} No VNNI: full 8-bit weights saturate in the INT8 kernels, so the overflow fix (7-bit weights) is "
            "on for every CPU artifact; INT8 gains on x86 need VNNI/AMX.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--work", type=Path, default=Path("/tmp/int8_report"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/int8_report"))
    parser.add_argument("--train-per-class", type=int, default=80)
    parser.add_argument("--test-per-class", type=int, default=60)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data", type=Path, help="an existing synthetic set (folder format); default: write one")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="NAME=PATH",
                        help="FP32 checkpoint for a model instead of training one (repeatable)")
    parser.add_argument("--qat-objective", choices=("ce", "distill"), default="ce",
                        help="QAT fine-tuning on labels or distilled from the FP32 checkpoint")
    parser.add_argument("--qat-select", choices=("agreement", "accuracy"), default="agreement",
                        help="which QAT epoch is kept (feredge qat --select)")
    parser.add_argument("--qat-min-agreement", type=float, metavar="PERCENT",
                        help="feredge qat --min-agreement: layers kept in float before fine-tuning")
    parser.add_argument("--no-overflow-fix", dest="overflow_fix", action="store_false",
                        help="full 8-bit weights for QAT and PTQ (TensorRT's default; right on VNNI CPUs)")
    args = parser.parse_args(argv)
    torch.set_num_threads(2)
    checkpoints = dict(item.split("=", 1) for item in args.checkpoint)
    data = args.data or args.work / "synth"
    if args.data is None and not (data / "test").is_dir():
        write_folder(data, args.train_per_class, size=64, seed=0,
                     splits={"train": args.train_per_class, "val": 20, "test": args.test_per_class})

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    report: dict[str, Any] = {"command": "python " + " ".join(["scripts/int8_report.py", *(argv or sys.argv[1:])]),
                              "machine": f"{platform.machine()} {platform.processor() or ''} "
                                         f"{torch.get_num_threads()} threads".strip(), "cpu": cpu_info(),
                              "overflow_fix": args.overflow_fix,
                              "data": ({"path": str(args.data)} if args.data else
                                       {"train_per_class": args.train_per_class, "test_per_class": args.test_per_class,
                                        "size": 64, "seed": 0}), "models": []}
    for name in args.models:
        log(f"=== {name}")
        try:
            ckpt = Path(checkpoints[name]) if name in checkpoints else None
            report["models"].append(evaluate_model(name, data, args.work, args.epochs, log, ckpt,
                                                  args.qat_objective, args.qat_select, args.qat_min_agreement,
                                                  args.overflow_fix))
        except Exception as exc:  # a report with the others beats no report
            report["models"].append({"model": name, "error": f"{exc.__class__.__name__}: {exc}"})
            log(f"{name} failed: {exc}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.with_suffix(".json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        args.out.with_suffix(".md").write_text(_markdown(report), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
