"""``feredge models``: the registered models with measured parameters and MACs beside the papers'."""

from __future__ import annotations

import argparse

from feredge.cli.common import add_json_flag, format_table, print_json, progress

NAME = "models"
HELP = "list registered models: seed, input, parameters and MACs (measured vs the paper)"
EXAMPLE = "feredge models --json"

COLUMNS = [("name", "name"), ("seed", "seed"), ("input", "input"), ("params_m", "params M"),
           ("paper_params_m", "paper M"), ("params_diff", "Δ params"), ("macs_m", "MACs M"),
           ("paper_macs_m", "paper MACs M"), ("macs_diff", "Δ MACs"), ("labels", "labels")]


def _diff(measured: float, paper: float | None) -> str | None:
    return None if paper is None else f"{(measured - paper) / paper:+.1%}"


def describe(name: str) -> dict[str, object]:
    from feredge.models import count_macs, count_params, create_model, deploy_graph, get_entry

    entry = get_entry(name)
    model = create_model(name)
    size = entry.paper.input_size or entry.spec.input_size
    params = count_params(deploy_graph(model)) / 1e6
    macs = count_macs(deploy_graph(model), (entry.spec.num_channels, *size)) / 1e6
    return {
        "name": name, "seed": entry.seed, "input": f"{size[0]}x{size[1]} {entry.spec.channels}",
        "params_m": round(params, 3), "paper_params_m": entry.paper.params_m,
        "params_diff": _diff(params, entry.paper.params_m), "macs_m": round(macs, 2),
        "paper_macs_m": entry.paper.paper_macs_m, "macs_diff": _diff(macs, entry.paper.paper_macs_m),
        "paper_flops_m": entry.paper.flops_m, "paper_finding": entry.paper.finding or None,
        "labels": len(entry.labels), "label_names": list(entry.labels), "description": entry.description,
        "spec": entry.spec.to_dict(),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("names", nargs="*", help="only these models (default: all)")
    add_json_flag(parser, "the table")


def run(args: argparse.Namespace) -> int:
    from feredge.models import get_entry, list_models

    names = args.names or list_models()
    for name in names:
        get_entry(name)
    rows = [describe(name) for name in progress(names, total=len(names), desc="counting")]
    if args.json:
        print_json(rows)
    else:
        print(format_table(rows, COLUMNS))
    return 0
