"""Benchmark reports: JSON (everything), Markdown (what a reader needs), PNG plots (matplotlib Agg).

The JSON is the source of truth; the Markdown and the plots are rendered from it alone, so a
report can be re-rendered from a saved JSON (``render(json.load(...), out_dir)``) without rerunning.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

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


def _has_value(value: Any) -> bool:
    return value is not None and value != "" and not (isinstance(value, float) and value != value)


def shown_columns(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The columns at least one row has a value in: a column of '-' (no floor without --matrix's peak,
    no variant) tells the reader nothing. With no rows every column stays (an empty table keeps its header)."""
    if not rows:
        return columns
    return [(k, h) for k, h in columns if any(_has_value(r.get(k)) for r in rows)]


def _table(rows: list[dict[str, Any]], columns: list[tuple[str, str]]) -> list[str]:
    lines = ["| " + " | ".join(h for _, h in columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(k)) for k, _ in columns) + " |" for row in rows]
    return [*lines, ""]


#: a row is named by the file that ran and the precision that ran (feredge.bench.naming), each once
LATENCY_COLUMNS = [("model", "model"), ("runtime", "runtime"), ("artifact", "artifact"), ("ran_as", "precision"),
                   ("variant", "variant"), ("threads", "threads"), ("batch", "batch"), ("p50_ms", "p50 ms"),
                   ("p90_ms", "p90 ms"), ("p99_ms", "p99 ms"), ("mean_ms", "mean ms"), ("min_ms", "min ms"),
                   ("max_ms", "max ms"), ("throughput_fps", "faces/s"), ("peak_rss_mb", "peak RSS MB"),
                   ("model_rss_mb", "model RSS MB"), ("size_kb", "size KB"), ("floor_fraction", "of floor")]


def markdown(report: dict[str, Any]) -> str:
    machine = report.get("machine", {})
    out = [f"# feredge bench — {report.get('title', 'benchmark report')}", ""]
    out += [f"Command: `{report.get('command', '')}`  ", f"Created: {report.get('created', '')}  ",
            f"Machine: {machine.get('cpu', '?')}, {machine.get('cores', '?')} cores, ISA {machine.get('isa', '?')}; "
            f"load average at start {machine.get('load_start', '?')}, at end {machine.get('load_end', '?')}  ",
            *([f"OpenVINO CPU default inference precision: {machine['openvino_default_precision']} "
               f"({machine.get('openvino_default_note') or '?'})  "] if machine.get("openvino_default_precision")
              else []),
            *([f"Peak fp32 rate: {_fmt(machine['peak_gflops'])} GFLOP/s ({machine.get('peak_method') or '?'})  "]
              if _has_value(machine.get("peak_gflops")) else []),
            *([f"Memory: {machine['memory_method']}"] if machine.get("memory_method") else []), ""]
    if report.get("notes"):
        out += ["## Notes", ""] + [f"- {n}" for n in report["notes"]] + [""]
    rows = [dict(r, size_kb=(r.get("size_bytes") or 0) / 1024, ran_as=r.get("ran_as") or r.get("precision"))
            for r in report.get("results", [])]
    if rows:
        columns = shown_columns(rows, LATENCY_COLUMNS)
        floor = ("; 'of floor' = compute floor (2·MACs·batch at the measured peak) / p50"
                 if ("floor_fraction", "of floor") in columns else "")
        out += ["## Model-only latency", "",
                f"p50/p90/p99 over the timed iterations after warm-up; faces/s at p50{floor}.", ""]
        out += _table(rows, columns)
    throughput = report.get("throughput", [])
    if throughput:
        from feredge.bench.throughput import THROUGHPUT_COLUMNS

        methods = dict.fromkeys(f"{r['runtime']}: {r['method']}" for r in throughput)
        out += ["## Throughput (several requests in flight)", "",
                "Inferences/s = completed requests / wall time of the timed run; faces/s = inferences/s × batch; "
                "latency is per request, with the others in flight. How each runtime keeps requests in flight:", "",
                *[f"- {m}" for m in methods], ""]
        out += _table(throughput, shown_columns(throughput, THROUGHPUT_COLUMNS))
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
            frows = [dict(r, file=r.get("file") or None, ran_as=r.get("ran_as") or r["precision"]) for r in frows]
            out += _table(frows, shown_columns(frows, [("runtime", "runtime"), ("file", "artifact"),
                                                       ("ran_as", "precision"),
                                  ("accuracy", "accuracy"), ("accuracy_delta", "Δ acc"), ("macro_f1", "macro-F1"),
                                  ("macro_f1_delta", "Δ F1"), ("worst_recall_delta", "worst Δ recall"),
                                  ("top1_agreement", "top-1 agreement"), ("max_logit_error", "max logit err"),
                                  ("mean_logit_error", "mean logit err")]))
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


#: bar colour by the precision that ran (its first word: "fp32 (fp16 weights)" is fp32)
PRECISION_COLOURS = {"fp32": "#1f77b4", "bf16": "#9467bd", "fp16": "#ff7f0e", "int8": "#2ca02c"}


def plain_number(value: float, _position: Any = None) -> str:
    """A tick label as a plain decimal (``0.2``, ``5``, ``0.00005``), never ``2×10⁰`` or ``5e-05``."""
    return np.format_float_positional(float(value), precision=4, unique=True, trim="-")


def _nice_below(value: float) -> float:
    """The largest 1-2-5 number (…, 0.2, 0.5, 1, 2, 5, 10, …) at or below ``value`` (> 0)."""
    exponent = 10.0 ** np.floor(np.log10(value))
    return float(next((m * exponent for m in (5.0, 2.0, 1.0) if m * exponent <= value), exponent / 2))


def _bar_label(row: dict[str, Any]) -> str:
    from feredge.bench.naming import row_name

    return row_name(dict(row, ran_as=row.get("ran_as") or row.get("precision"), model=None))


def latency_figure(rows: list[dict[str, Any]], batch: int | None = None) -> Any:
    """The latency plot as a matplotlib Figure (``None`` without rows): p50 bars with p90 whiskers per
    row (named by runtime, artifact and precision), one panel per model at ``batch`` (default: the
    smallest batch measured).

    The panels share one y axis, so models compare by bar height; the axis is linear unless the
    bars span a decade or more (then log, ticks at 1-2-5), and every tick is a plain number."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, LogLocator, MaxNLocator, NullFormatter

    if batch is None and rows:
        batch = min(int(r["batch"]) for r in rows)
    chosen = [r for r in rows if int(r["batch"]) == batch]
    models = list(dict.fromkeys(r["model"] for r in chosen))
    if not models:
        return None
    per_model = [[r for r in chosen if r["model"] == m] for m in models]
    widths = [max(len(mine), 1) for mine in per_model]
    fig, axes = plt.subplots(1, len(models), figsize=(max(4.5, 0.75 * sum(widths) + 1.6 * len(models)), 4.8),
                             squeeze=False, sharey=True, gridspec_kw={"width_ratios": widths})
    low = min(float(r["p50_ms"]) for r in chosen)
    high = max(float(max(r["p90_ms"], r["p50_ms"])) for r in chosen)
    log = low > 0 and high / low >= 10
    for ax, model, mine in zip(axes[0], models, per_model, strict=True):
        p50 = [float(r["p50_ms"]) for r in mine]
        err = [max(float(r["p90_ms"]) - float(r["p50_ms"]), 0.0) for r in mine]
        colours = [PRECISION_COLOURS.get(str(r.get("ran_as") or r.get("precision") or "").split(" ")[0], "#7f7f7f")
                   for r in mine]
        ax.bar(range(len(mine)), p50, yerr=[[0] * len(err), err], color=colours, capsize=3, width=0.7)
        for x, (value, extra) in enumerate(zip(p50, err, strict=True)):
            top = value + extra
            ax.annotate(plain_number(float(f"{value:.3g}")), (x, top), xytext=(0, 3), textcoords="offset points",
                        ha="center", va="bottom", fontsize=7)
        ax.set_xticks(range(len(mine)), [_bar_label(r) for r in mine], rotation=35, ha="right",
                      rotation_mode="anchor", fontsize=7)
        ax.set_title(str(model), fontsize=9)
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
    first = axes[0][0]
    if log:
        for ax in axes[0]:
            ax.set_yscale("log")
        first.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
        first.yaxis.set_minor_formatter(NullFormatter())
        first.set_ylim(_nice_below(low / 1.1), high * 1.6)  # the axis starts at a labelled 1-2-5 tick
    else:
        first.yaxis.set_major_locator(MaxNLocator(6))
        first.set_ylim(0, high * 1.15)
    first.yaxis.set_major_formatter(FuncFormatter(plain_number))
    first.set_ylabel("latency, ms (bar p50, whisker p90)", fontsize=8)
    fig.suptitle(f"model-only latency at batch {batch}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_latency(rows: list[dict[str, Any]], path: Path, batch: int | None = None) -> Path | None:
    """:func:`latency_figure` written to ``path`` (PNG); None when there is nothing to plot."""
    fig = latency_figure(rows, batch)  # selects the Agg back end before pyplot is imported here
    if fig is None:
        return None
    import matplotlib.pyplot as plt

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
        from feredge.bench.naming import normalise_precision
        from feredge.metrics import ClassificationReport, write_confusion_png

        for result in report["fidelity"]:
            for row in result["rows"]:
                name = f"{stem}_confusion_{result['model']}_{row['runtime']}_{row['precision']}.png"
                rep = ClassificationReport(tuple(row["labels"]), row["samples"], row["accuracy"], 0.0, 0.0,
                                           row["macro_f1"], row["per_class_recall"], {}, row["confusion"])
                artifact = Path(str(row.get("artifact") or "")).name
                if row.get("file"):
                    artifact = f"{artifact}/{row['file']}" if artifact else str(row["file"])
                ran = row.get("ran_as") or normalise_precision(row.get("ran_precision") or row["precision"])
                write_confusion_png(rep, out_dir / name,
                                    f"{result['model']}: {artifact + ' ' if artifact else ''}on {row['runtime']} "
                                    f"{ran}\n{result.get('data', '')} [{result.get('split', '')}]: "
                                    f"{row['samples']} faces, accuracy {row['accuracy']:.1%}, "
                                    f"agreement with fp32 PyTorch {row['top1_agreement']:.1%}")
                written[name] = out_dir / name
    report = dict(report, plots=plots)
    json_path = out_dir / f"{stem}.json"
    json_path.write_text(json.dumps(report, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    md_path = out_dir / f"{stem}.md"
    md_path.write_text(markdown(report) + "\n", encoding="utf-8")
    written.update({"json": json_path, "md": md_path, **{Path(p).name: Path(p) for p in plots}})
    return written
