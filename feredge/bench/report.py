"""Benchmark reports: JSON (everything), Markdown (what a reader needs), PNG plots (matplotlib Agg).

The JSON is the source of truth; the Markdown and the plots are rendered from it alone, so a
report can be re-rendered from a saved JSON (``render(json.load(...), out_dir)``) without rerunning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from feredge.bench.variants import is_device_default

STAGE_COLOURS = {"decode": "#8c8c8c", "detect": "#d62728", "crop": "#ff7f0e", "preprocess": "#bcbd22",
                 "infer": "#1f77b4", "postprocess": "#2ca02c"}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(k)) for k, _ in columns) + " |" for row in rows]
    return [*lines, ""]


LATENCY_COLUMNS = [("model", "model"), ("runtime", "runtime"), ("precision", "artifact"), ("variant", "variant"),
                   ("ran_precision", "ran as"), ("threads", "threads"), ("batch", "batch"), ("p50_ms", "p50 ms"),
                   ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"), ("mean_ms", "mean ms"), ("min_ms", "min ms"),
                   ("max_ms", "max ms"), ("throughput_fps", "faces/s"), ("peak_rss_mb", "peak RSS MB"),
                   ("model_rss_mb", "model RSS MB"), ("size_kb", "size KB"), ("floor_fraction", "of floor")]


def markdown(report: dict[str, Any]) -> str:
    machine = report.get("machine", {})
    out = [f"# feredge bench — {report.get('title', 'benchmark report')}", ""]
    out += [f"Command: `{report.get('command', '')}`  ", f"Created: {report.get('created', '')}  ",
            f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, ISA {machine.get('isa', '?')}; "
            f"load average at start {machine.get('load_start', '?')}, at end {machine.get('load_end', '?')}  ",
            f"OpenVINO CPU default inference precision: {machine.get('openvino_default_precision', '?')} "
            f"({machine.get('openvino_default_note', '')})  ",
            f"Peak fp32 rate: {_fmt(machine.get('peak_gflops'))} GFLOP/s ({machine.get('peak_method', '')})  ",
            f"Memory: {machine.get('memory_method', '')}", ""]
    if report.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    rows = [dict(r, size_kb=(r.get("size_bytes") or 0) / 1024) for r in report.get("results", [])]
    if rows:
        out += ["## Model-only latency", "",
                "p50/p90/p99 over the timed iterations after warm-up; faces/s at p50; 'of floor' = compute "
                "floor (2·MACs·batch at the measured peak) / p50.", ""]
        out += _table(rows, LATENCY_COLUMNS)
    models = report.get("models", [])
    if models:
        out += ["## Models", ""]
        out += _table([{"model": m["model"], "name": m["model_name"], "input": "×".join(map(str, m["input_shape"])),
                        "macs_m": (m.get("macs") or 0) / 1e6, "params_m": (m.get("params") or 0) / 1e6,
                        "note": m.get("note", "")} for m in models],
                      [("model", "label"), ("name", "registered model"), ("input", "input C×H×W"),
                       ("macs_m", "MMACs"), ("params_m", "M params"), ("note", "note")])
    skipped = [s for m in models for s in m.get("skipped", [])]
    if skipped:
        out += ["### Skipped cases", ""] + [f"- {s['model']} {s['precision']} {s['runtime']}: {s['reason']}"
                                            for s in skipped] + [""]
    refs = report.get("references", [])
    if refs:
        out += ["## References measured in the same run", "",
                "Our OpenVINO runner's p50 against OpenVINO's own benchmark_app on the same IR at the same batch, "
                "trials alternating; the ratio is the median of the per-trial ratios.", ""]
        out += _table(refs, [("model", "model"), ("batch", "batch"), ("tool", "reference"),
                             ("reference_median_ms", "reference median ms"), ("ours_p50_ms", "ours p50 ms"),
                             ("ratio", "ours / reference"), ("ratio_min", "ratio of minima"), ("trials", "trials"),
                             ("ratio_trials", "per-trial ratios")])
        commands = sorted({r.get("command", "") for r in refs if r.get("command")})
        out += [f"Reference command: `{c}`" for c in commands[:3]] + [""]
    pipeline = report.get("pipeline", [])
    if pipeline:
        out += ["## Pipeline: where a frame's time goes", "",
                f"Bundle: `{report.get('pipeline_bundle', '')}`; median ms per stage per frame. "
                "End-to-end frames/s = timed frames / wall-clock of the whole timed loop.", ""]
        prow = []
        for case in pipeline:
            row = {"source": case["source"], "kind": case["kind"], "faces": case.get("faces_placed"),
                   "found": case.get("faces_detected_mean"), "frames": case["frames"], "total": case["total_ms"],
                   "fps": case["fps"], "e2e_fps": case.get("e2e_fps"),
                   **{f"s_{k}": v for k, v in case["stage_ms"].items()}}
            prow.append(row)
        stages = list(STAGE_COLOURS)
        out += _table(prow, [("source", "input"), ("kind", "kind"), ("faces", "faces placed"),
                             ("found", "faces found"), ("frames", "frames"),
                             *[(f"s_{s}", f"{s} ms") for s in stages], ("total", "total ms"),
                             ("fps", "frames/s (median frame)"), ("e2e_fps", "end-to-end frames/s")])
    fidelity = report.get("fidelity", [])
    if fidelity:
        out += ["## Fidelity against the FP32 PyTorch reference", ""]
        for result in fidelity:
            ref = result["reference"]
            out += [f"### {result['model']} on {result['data']} [{result['split']}] — reference accuracy "
                    f"{ref['accuracy']:.2%}, macro-F1 {ref['macro_f1']:.3f} ({ref['samples']} samples)", ""]
            frows = [dict(r, worst_recall_delta=min(r["recall_delta"].values()) if r["recall_delta"] else 0.0)
                     for r in result["rows"]]
            out += _table(frows, [("runtime", "runtime"), ("precision", "artifact"), ("ran_precision", "ran as"),
                                  ("accuracy", "accuracy"), ("accuracy_delta", "Δ acc"), ("macro_f1", "macro-F1"),
                                  ("macro_f1_delta", "Δ F1"), ("worst_recall_delta", "worst Δ recall"),
                                  ("top1_agreement", "top-1 agreement"), ("max_logit_error", "max logit err"),
                                  ("mean_logit_error", "mean logit err")])
            for s in result.get("skipped", []):
                out.append(f"- skipped {s['runtime']} {s['precision']}: {s['reason']}")
            out.append("")
    gates = report.get("gates", [])
    if gates:
        failed = [g for g in gates if not g["passed"]]
        out += [f"## Regression gates ({report.get('gates_file', '')}): {len(failed)} failed of {len(gates)}", ""]
        for g in gates:
            status = "SKIP" if g.get("skipped") else ("PASS" if g["passed"] else "**FAIL**")
            out.append(f"- {status} {g['model']} `{g['artifact']}` {g['gate']}: {_fmt(g['value'], 4)} "
                       f"(limit {_fmt(g['limit'], 4)}) {g.get('detail', '')}")
        out.append("")
    recs = report.get("recommendations", [])
    if recs:
        out += ["## Precision advice", ""]
        for r in recs:
            pick = r["precision"] or "none"
            out.append(f"- **{r['model']} / {r['runtime']}: {pick}** — " + "; ".join(r["reasons"]))
        out.append("")
    plots = report.get("plots", [])
    if plots:
        out += ["## Plots", ""] + [f"![{Path(p).stem}]({Path(p).name})" for p in plots] + [""]
    return "\n".join(out)


def plot_latency(rows: list[dict[str, Any]], path: Path, batch: int = 1) -> Path | None:
    """p50 bars with p90 whiskers per runtime/precision, one panel per model, at ``batch``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    chosen = [r for r in rows if int(r["batch"]) == batch]
    models = list(dict.fromkeys(r["model"] for r in chosen))
    if not models:
        return None
    fig, axes = plt.subplots(1, len(models), figsize=(4.2 * len(models), 3.8), squeeze=False)
    for ax, model in zip(axes[0], models, strict=True):
        mine = [r for r in chosen if r["model"] == model]
        labels = [f"{r['runtime']}\n{r['precision']}" + ("\n(dev. default)" if is_device_default(r) else "")
                  for r in mine]
        p50 = [r["p50_ms"] for r in mine]
        err = [max(r["p90_ms"] - r["p50_ms"], 0.0) for r in mine]
        colours = ["#1f77b4" if r["precision"] == "fp32" else "#ff7f0e" if r["precision"] == "fp16" else "#2ca02c"
                   for r in mine]
        ax.bar(range(len(mine)), p50, yerr=[[0] * len(err), err], color=colours, capsize=3)
        ax.set_xticks(range(len(mine)), labels, fontsize=7)
        ax.set_title(f"{model} (batch {batch})", fontsize=9)
        ax.set_ylabel("ms (bar p50, whisker p90)", fontsize=8)
        ax.set_yscale("log")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_stages(cases: list[dict[str, Any]], path: Path) -> Path | None:
    """Stacked horizontal bars: median ms per stage for every pipeline input."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not cases:
        return None
    fig, ax = plt.subplots(figsize=(8.5, 0.45 * len(cases) + 1.6))
    names = [f"{c['source']} ({c.get('faces_placed') or '?'} faces)" for c in cases]
    left = [0.0] * len(cases)
    for stage, colour in STAGE_COLOURS.items():
        values = [c["stage_ms"].get(stage, 0.0) for c in cases]
        ax.barh(names, values, left=left, color=colour, label=stage)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.set_xlabel("median ms per frame")
    ax.invert_yaxis()
    ax.legend(fontsize=7, ncol=6, loc="upper center", bbox_to_anchor=(0.5, -0.18))
    ax.set_title("pipeline stage breakdown", fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def render(report: dict[str, Any], out_dir: Path, stem: str = "bench") -> dict[str, Path]:
    """Write ``stem.json``, ``stem.md`` and the plots into ``out_dir``; returns what was written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    plots = []
    latency = plot_latency(report.get("results", []), out_dir / f"{stem}_latency.png")
    if latency:
        plots.append(str(latency))
    stages = plot_stages(report.get("pipeline", []), out_dir / f"{stem}_stages.png")
    if stages:
        plots.append(str(stages))
    if report.get("fidelity"):
        from feredge.metrics import ClassificationReport, write_confusion_png

        for result in report["fidelity"]:
            for row in result["rows"]:
                name = f"{stem}_confusion_{result['model']}_{row['runtime']}_{row['precision']}.png"
                rep = ClassificationReport(tuple(row["labels"]), row["samples"], row["accuracy"], 0.0, 0.0,
                                           row["macro_f1"], row["per_class_recall"], {}, row["confusion"])
                write_confusion_png(rep, out_dir / name, f"{result['model']} {row['runtime']} {row['precision']}: "
                                    f"acc {row['accuracy']:.1%}, agree {row['top1_agreement']:.1%}")
                written[name] = out_dir / name
    report = dict(report, plots=plots)
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(markdown(report) + "\n", encoding="utf-8")
    written.update({"json": json_path, "md": md_path, **{Path(p).name: Path(p) for p in plots}})
    return written
