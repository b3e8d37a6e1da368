"""``feredge bench``: latency matrix, pipeline stages, references, fidelity gates, precision advice.

Plain ``feredge bench --bundle B`` keeps its original meaning (every installed runtime × batch
sizes on one bundle, table + JSON). ``--model`` adds models (registered names, ``LABEL=ckpt``
checkpoints, bundle directories) exported once per precision; ``--pipeline`` times the whole
frame path; ``--references`` adds benchmark_app and the compute floor; ``--data`` measures
fidelity against FP32 PyTorch; ``--gates regression.yaml`` fails (exit 1) on any regression;
``--recommend`` picks the fastest passing precision per runtime; ``--matrix`` turns all of it on.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from feredge.cli.common import add_json_flag, format_table, print_json, progress
from feredge.default_bundle import ensure_default_bundle

NAME = "bench"
HELP = "measure inference latency (p50/p90/p99, throughput) per runtime and batch size"
EXAMPLE = "feredge bench --bundle bundles/default --runtimes openvino onnxruntime --batch 1 8 --json"

COLUMNS = [("model", "model"), ("runtime", "runtime"), ("artifact", "artifact"), ("ran_as", "precision"),
           ("variant", "variant"), ("batch", "batch"), ("p50_ms", "p50 ms"), ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"),
           ("mean_ms", "mean ms"), ("throughput_fps", "faces/s"), ("threads", "threads"),
           ("peak_rss_mb", "peak MB"), ("model_rss_mb", "model MB"), ("floor_fraction", "of floor")]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from feredge.cli.args import float_in, nonnegative_int, output_dir, output_file, positive_float, positive_int

    parser.add_argument("--bundle", type=Path, help="bundle directory (default: the shipped model)")
    parser.add_argument("--runtimes", nargs="+", help="runtimes to measure (default: every installed one "
                        "the bundle has files for)")
    parser.add_argument("--batch", nargs="+", type=positive_int, default=[1, 8], help="batch sizes (default 1 8)")
    parser.add_argument("--iterations", type=positive_int, default=100, help="timed iterations per case (default 100)")
    parser.add_argument("--warmup", type=nonnegative_int, default=10, help="untimed warm-up iterations (default 10)")
    parser.add_argument("--threads", type=positive_int, help="runtime threads (default: the runtime's choice)")
    parser.add_argument("--output", type=output_file, help="write the JSON report to this file too")
    parser.add_argument("--mode", choices=("latency", "throughput"), default="latency",
                        help="latency (default): one synchronous call after another, p50/p90/p99 per call. "
                             "throughput: several requests in flight, inferences/s and faces/s with the latency "
                             "per request; OpenVINO compiles with the THROUGHPUT hint and runs an AsyncInferQueue "
                             "of its OPTIMAL_NUMBER_OF_INFER_REQUESTS, ONNX Runtime runs N threads (one per core) "
                             "on one session with cores/N intra-op threads each; --warmup and --iterations count "
                             "per request in flight (see feredge.bench.throughput)")
    parser.add_argument("--infer-requests", type=positive_int, metavar="N",
                        help="--mode throughput: requests in flight (default: OpenVINO's optimal number; "
                             "ONNX Runtime: one per CPU core)")
    matrix = parser.add_argument_group("matrix")
    matrix.add_argument("--model", nargs="+", default=[], metavar="MODEL",
                        help="registered name, LABEL=checkpoint.safetensors or bundle dir; exported per precision")
    matrix.add_argument("--precisions", nargs="+", choices=("fp32", "fp16", "int8"),
                        help="precisions to export for --model (default fp32 fp16 int8)")
    matrix.add_argument("--matrix", action="store_true",
                        help="everything: references, pipeline, fidelity/gates/advice when --data is given")
    matrix.add_argument("--workdir", type=output_dir, help="where --model bundles are exported (kept and reused)")
    matrix.add_argument("--calib", nargs="+", metavar="[LABEL=]DATA",
                        help="INT8 calibration data: reference, a dataset, a photo folder or a .npy; LABEL=DATA for "
                             "one --model (e.g. reference csam_net=data/synth). A labelled dataset also gates INT8 "
                             "parity on its val split")
    matrix.add_argument("--min-agreement", type=float_in(0.0, 100.0), metavar="PERCENT",
                        help="INT8 exports keep their most sensitive layers in float until top-1 agreement with "
                             "FP32 reaches PERCENT (export --min-agreement); the row says how many")
    matrix.add_argument("--in-process", action="store_true",
                        help="run cases in this process (faster; peak RSS is then not per case)")
    refs = parser.add_argument_group("references")
    refs.add_argument("--references", action="store_true",
                      help="benchmark_app on the same IR (ratio of our runner to it) and the compute floor")
    refs.add_argument("--ref-trials", type=positive_int, default=3,
                      help="alternating trials per comparison (default 3)")
    refs.add_argument("--ref-seconds", type=positive_float, default=5.0, help="seconds per trial side (default 5)")
    pipe = parser.add_argument_group("pipeline")
    pipe.add_argument("--pipeline", action="store_true",
                      help="decode→detect→crop→preprocess→infer→postprocess on astronaut.jpg, 1/4/16-face frames "
                           "and a generated multi-face video")
    pipe.add_argument("--pipeline-iterations", type=positive_int, default=30, help="frames per image case (default 30)")
    pipe.add_argument("--pipeline-faces", nargs="+", type=positive_int, default=[1, 4, 16],
                      help="faces per composed frame/video (square numbers; default 1 4 16)")
    pipe.add_argument("--pipeline-video-frames", type=positive_int, default=24,
                      help="frames per generated video (default 24)")
    pipe.add_argument("--pipeline-warmup", type=nonnegative_int, default=2, help="untimed frames per case (default 2)")
    pipe.add_argument("--pipeline-runtime", default="openvino", help="runtime of the pipeline (default openvino)")
    fid = parser.add_argument_group("fidelity and gates")
    fid.add_argument("--data", type=Path, help="labelled dataset for fidelity against FP32 PyTorch")
    fid.add_argument("--format", default="folder", help="dataset format (default folder)")
    fid.add_argument("--split", default="test", help="dataset split (default test)")
    fid.add_argument("--gates", type=Path, help="regression YAML; exit 1 if any gate fails")
    fid.add_argument("--recommend", action="store_true",
                     help="per runtime, the fastest precision whose fidelity passes the gates (needs --data)")
    parser.add_argument("--report-dir", type=output_dir, help="write JSON, Markdown and PNG plots here")
    parser.add_argument("--report-name", default="bench", help="file stem of the reports (default bench)")
    parser.add_argument("--title", help="report title")
    serve = parser.add_argument_group("serving (a Triton from `feredge serve`)")
    serve.add_argument("--server", metavar="HOST:PORT",
                       help="load-test the served classifier over gRPC instead (closed-loop clients, answers checked "
                            "against this bundle's local logits), beside local in-process inference")
    serve.add_argument("--concurrency", type=positive_int, default=16, help="clients in flight (default 16)")
    serve.add_argument("--requests", type=positive_int, default=2000, help="requests in all (default 2000)")
    add_json_flag(parser, "the report")


def _machine() -> dict[str, Any]:
    from feredge.bench.cpu import cpu_info

    return {**cpu_info(), "cores": os.cpu_count(), "python": platform.python_version(),
            "load_start": _load()}


def _load() -> str:
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "?"


def _serving(args: argparse.Namespace) -> int:
    """``--server``: the served classifier under load, then the same faces locally, one table."""
    from feredge.bundle import Bundle
    from feredge.calibration.reference import reference_faces
    from feredge.runtimes.registry import runner_class
    from feredge.serve.load import load_run, local_run

    bundle_dir = args.bundle or ensure_default_bundle(quiet=args.json, runtime="onnxruntime")
    bundle = Bundle.load(bundle_dir)
    faces = reference_faces(bundle.spec).batch
    with runner_class("onnxruntime").from_bundle(bundle) as runner:
        expected = runner.infer_all(faces)
    results = [load_run(args.server, faces, expected, requests=args.requests, concurrency=args.concurrency),
               local_run(bundle_dir, faces, requests=args.requests)]
    if args.json:
        print_json({"server": args.server, "bundle": str(bundle_dir), "results": [r.to_dict() for r in results]})
    else:
        print(format_table([r.to_dict() for r in results],
                           [("side", "side"), ("requests", "requests"), ("concurrency", "clients"),
                            ("errors", "errors"), ("p50_ms", "p50 ms"), ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"),
                            ("throughput_rps", "requests/s"), ("executions", "executions")]))
    return 1 if results[0].errors else 0


def _throughput(args: argparse.Namespace) -> int:
    """``--mode throughput``: every installed runtime with a throughput method, on one bundle."""
    from feredge.bench.report import shown_columns
    from feredge.bench.throughput import THROUGHPUT_COLUMNS, THROUGHPUT_METHODS, ThroughputConfig, bench_throughput
    from feredge.bundle import Bundle
    from feredge.errors import FeredgeError
    from feredge.runtimes.registry import available_runtimes, resolve_name

    bundle_dir = args.bundle or ensure_default_bundle(quiet=args.json)
    bundle = Bundle.load(bundle_dir)
    if max(args.batch) > bundle.max_batch:
        raise FeredgeError(f"batch {max(args.batch)} exceeds the bundle's max batch {bundle.max_batch}")
    runtimes = ([resolve_name(r) for r in args.runtimes] if args.runtimes
                else [r for r in available_runtimes() if r in THROUGHPUT_METHODS])
    config = ThroughputConfig(tuple(sorted(set(args.batch))), args.iterations, args.warmup, args.threads,
                              args.infer_requests)
    rows = [row.to_dict() for runtime in progress(runtimes, total=len(runtimes), desc="throughput",
                                                  enabled=not args.json)
            for row in bench_throughput(bundle_dir, runtime, config)]
    report: dict[str, Any] = {
        "command": "feredge bench " + " ".join(a for a in sys.argv[1:] if a != "bench"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "mode": "throughput",
        "title": args.title or f"{bundle.model_name} throughput", "machine": _machine(),
        "bundle": str(bundle.root), "model": bundle.model_name,
        "settings": {"warmup": args.warmup, "iterations": args.iterations, "batches": list(config.batches),
                     "threads": args.threads or "runtime default", "per": "request in flight"},
        "results": [], "throughput": rows,
    }
    report["machine"]["load_end"] = _load()
    written = _write_report(report, args)
    if args.json:
        print_json(report)
        return 0
    print(f"{report['title']}: {args.iterations} inferences per request in flight after {args.warmup} warm-up")
    print(format_table(rows, shown_columns(rows, THROUGHPUT_COLUMNS)))
    for path in written.values():
        print(f"wrote {path}")
    return 0


def _validate(args: argparse.Namespace) -> None:
    from feredge.errors import FeredgeError

    if args.iterations < 1 or args.warmup < 0 or min(args.batch) < 1:
        raise FeredgeError("--iterations and --batch must be at least 1, --warmup at least 0")
    if args.recommend and not args.data:
        raise FeredgeError("--recommend needs --data (fidelity is measured on your labelled faces)")
    if args.gates and not args.gates.is_file():
        raise FeredgeError(f"{args.gates}: no such regression file")
    if args.bundle and args.model:
        raise FeredgeError("give --bundle or --model, not both (a bundle directory can be a --model entry)")
    if args.mode == "throughput":
        latency_only = [flag for flag, on in (("--model", args.model), ("--matrix", args.matrix),
                                              ("--pipeline", args.pipeline), ("--references", args.references),
                                              ("--data", args.data), ("--gates", args.gates),
                                              ("--recommend", args.recommend), ("--server", args.server)) if on]
        if latency_only:
            raise FeredgeError(f"--mode throughput measures one bundle (--bundle); {', '.join(latency_only)} "
                               "belong(s) to --mode latency")
    elif args.infer_requests:
        raise FeredgeError("--infer-requests is for --mode throughput")


def run(args: argparse.Namespace) -> int:
    from feredge.bench.model_bench import MatrixConfig, ModelRef, bench_model, device_default_precision, parse_calib
    from feredge.bundle import Bundle
    from feredge.errors import FeredgeError
    from feredge.progress import note

    _validate(args)
    if args.server:
        return _serving(args)
    if args.mode == "throughput":
        return _throughput(args)
    calib, calib_by_label = parse_calib(args.calib)
    references = args.references or args.matrix
    quiet = args.json

    def log(text: str) -> None:
        if not quiet:
            note(text)

    if args.model:
        refs = [ModelRef.parse(m) for m in args.model]
    else:
        bundle_path = args.bundle or ensure_default_bundle(quiet=args.json, runtime=args.runtimes or "auto")
        bundle = Bundle.load(bundle_path)
        if max(args.batch) > bundle.max_batch:
            raise FeredgeError(f"batch {max(args.batch)} exceeds the bundle's max batch {bundle.max_batch}")
        refs = [ModelRef(bundle.model_name, bundle=Path(bundle_path))]
    machine = _machine()
    ov_default = device_default_precision()
    machine["openvino_default_precision"] = ov_default
    amx = "amx_bf16" in machine["isa"]
    machine["openvino_default_note"] = (
        "bf16 default on this CPU (bf16 ISA): the matrix adds an OpenVINO row at the device default"
        if ov_default == "bf16"
        else f"no AMX/bf16 on this CPU{'' if not amx else ' (AMX present)'}, so the default equals forced f32")
    # the peak fp32 rate behind 'of floor': a ~0.2 s matmul, so every run has it, not only --references/--matrix
    from feredge.bench.references import measure_peak_gflops

    rate = measure_peak_gflops(args.threads)
    peak = rate.gflops
    machine.update(peak_gflops=rate.gflops, peak_method=rate.method, peak_threads=rate.threads)
    config = MatrixConfig(precisions=args.precisions or ["fp32", "fp16", "int8"], runtimes=args.runtimes,
                          batches=sorted(set(args.batch)), warmup=args.warmup, iterations=args.iterations,
                          threads=args.threads, isolate=not args.in_process, workdir=args.workdir, calib=calib,
                          calib_by_label=calib_by_label, min_agreement=args.min_agreement, peak_gflops=peak)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
    machine["memory_method"] = ("in-process: peak RSS is not per case" if args.in_process else
                                "one subprocess per runtime case; peak = /proc/self/status VmHWM after a clear_refs "
                                "reset once the back end is imported; 'model MB' = peak - that baseline")
    models = []
    for ref in progress(refs, total=len(refs), desc="models", enabled=not quiet and len(refs) > 1):
        log(f"{ref.label}:")
        models.append(bench_model(ref, config, log=log))
    rows = [row for m in models for row in m.rows]
    report: dict[str, Any] = {
        "command": "feredge " + " ".join(sys.argv[1:]) if sys.argv[0].endswith("feredge") else
        "feredge bench " + " ".join(a for a in sys.argv[1:] if a != "bench"),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "title": args.title or ", ".join(m.model for m in models),
        "machine": machine,
        "settings": {"warmup": args.warmup, "iterations": args.iterations, "batches": config.batches,
                     "threads": args.threads or "runtime default"},
        "models": [m.to_dict() for m in models],
        "results": rows,
        "notes": [],
    }
    if len(refs) == 1 and refs[0].bundle is not None:  # the original single-bundle report keys
        bundle = Bundle.load(refs[0].bundle)
        report.update(bundle=str(bundle.root), model=bundle.model_name, bundle_precision=bundle.precision)
    if references:
        report["references"] = _references(models, args, log)
    if args.pipeline or args.matrix:
        report.update(_pipeline(models, args, log))
    exit_code = 0
    if args.data:
        exit_code = _fidelity(models, config, args, report, log)
    machine["load_end"] = _load()
    _output(report, args)
    return exit_code


def _fp32_bundle(model: Any) -> Path | None:
    for key in ("openvino/fp32", "onnx/fp32"):
        if key in model.bundles:
            return Path(model.bundles[key])
    return Path(next(iter(model.bundles.values()))) if model.bundles else None


def _references(models: list[Any], args: argparse.Namespace, log: Any) -> list[dict[str, Any]]:
    from feredge.bench.references import compare_with_benchmark_app
    from feredge.bundle import Bundle

    out = []
    for model in models:
        path = Path(model.bundles.get("openvino/fp32", "")) if "openvino/fp32" in model.bundles else None
        if path is None or not Bundle.load(path).has("openvino_xml"):
            continue
        log(f"  {model.model}: our OpenVINO runner vs benchmark_app, {args.ref_trials} alternating trials")
        try:
            comparison = compare_with_benchmark_app(model.model, path, batch=1, trials=args.ref_trials,
                                                    seconds=args.ref_seconds, threads=args.threads)
        except RuntimeError as exc:
            out.append({"model": model.model, "batch": 1, "tool": "benchmark_app", "error": str(exc)})
            continue
        out.append(comparison.to_dict())
    return out


def _pipeline(models: list[Any], args: argparse.Namespace, log: Any) -> dict[str, Any]:
    from feredge.bench.pipeline_bench import PipelineConfig, bench_pipeline

    bundle = _fp32_bundle(models[0])
    if bundle is None:
        return {}
    log(f"  pipeline on {bundle} ({args.pipeline_runtime})")
    workdir = (args.workdir / "pipeline") if args.workdir else None
    config = PipelineConfig(faces=tuple(args.pipeline_faces), iterations=args.pipeline_iterations,
                            video_frames=args.pipeline_video_frames, warmup=args.pipeline_warmup,
                            runtime=args.pipeline_runtime, threads=args.threads, workdir=workdir)
    cases = bench_pipeline(bundle, config)
    return {"pipeline_bundle": str(bundle), "pipeline": [c.to_dict() for c in cases]}


def _fidelity(models: list[Any], config: Any, args: argparse.Namespace, report: dict[str, Any], log: Any) -> int:
    from feredge.bench.fidelity import run_fidelity
    from feredge.bench.recommend import recommend
    from feredge.bench.regression import DEFAULTS, ModelGates, RegressionConfig, check_fidelity, check_latency
    from feredge.bench.regression import load_config as load_gates
    from feredge.runtimes.registry import available_runtimes, resolve_name

    runtimes = [resolve_name(r) for r in (args.runtimes or available_runtimes())]
    gates_config = load_gates(args.gates) if args.gates else None
    report["fidelity"], report["gates"], report["recommendations"] = [], [], []
    report["gates_file"] = str(args.gates) if args.gates else "built-in defaults"
    for model in models:
        log(f"  fidelity of {model.model} on {args.data} [{args.split}]")
        result = run_fidelity(model.model, {k: Path(v) for k, v in model.bundles.items()}, runtimes, args.data,
                              fmt=args.format, split=args.split)
        report["fidelity"].append(result.to_dict())
        config_for = gates_config
        if config_for is None or (model.model not in config_for.models and "*" not in config_for.models):
            artifacts = {r.key: dict(DEFAULTS) for r in result.rows}
            config_for = RegressionConfig({model.model: ModelGates(artifacts)}, "built-in defaults")
        skipped = {f"{s.runtime}/{s.precision}": s.reason for s in model.skipped}
        gates = check_fidelity(model.model, result.rows, config_for, skipped)
        gates += check_latency(model.model, model.rows, config_for)
        report["gates"] += [g.to_dict() for g in gates]
        if args.recommend or args.matrix:
            report["recommendations"] += [r.to_dict() for r in recommend(model.model, model.rows, gates)]
    failed = [g for g in report["gates"] if not g["passed"]]
    return 1 if failed and args.gates else 0


def _write_report(report: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``--output`` JSON and ``--report-dir`` renderings; what was rendered, by kind."""
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    written = {}
    if args.report_dir:
        from feredge.bench.report import render

        written = render(report, args.report_dir, args.report_name)
    return written


def _output(report: dict[str, Any], args: argparse.Namespace) -> None:
    written = _write_report(report, args)
    if args.json:
        print_json(report)
        return
    from feredge.bench.report import shown_columns

    iterations = report["settings"]["iterations"]
    print(f"{report['title']}: {iterations} iterations after {report['settings']['warmup']} warm-up")
    print(format_table(report["results"], shown_columns(report["results"], COLUMNS)))
    for skip in (s for m in report["models"] for s in m["skipped"]):
        print(f"skipped: {skip['model']} {skip['precision']} {skip['runtime']}: {skip['reason']}")
    for ref in report.get("references", []):
        if "ratio" in ref:
            print(f"{ref['model']}: our OpenVINO p50 {ref['ours_p50_ms']:.3g} ms vs {ref['tool']} median "
                  f"{ref['reference_median_ms']:.3g} ms at batch {ref['batch']}: ratio {ref['ratio']:.3f} "
                  f"(median of {ref['trials']} trials)")
    for case in report.get("pipeline", []):
        stages = "  ".join(f"{k} {v:.3g}" for k, v in case["stage_ms"].items())
        print(f"pipeline {case['source']} ({case['faces_placed']} faces, found {case['faces_detected_mean']:.3g}): "
              f"{case['total_ms']:.3g} ms/frame = {stages}; end to end {case.get('e2e_fps', 0.0):.3g} frames/s")
    from feredge.bench.regression import GateResult

    for gate in report.get("gates", []):
        if not gate["passed"] or args.gates:
            print(GateResult(**gate).line())
    for rec in report.get("recommendations", []):
        pick = rec["precision"] or "none"
        print(f"advice {rec['model']} {rec['runtime']}: {pick} — " + "; ".join(rec["reasons"]))
    for path in written.values():
        print(f"wrote {path}")
