"""Measure SPD-Attention's eigh-free deploy graph against its eigh graph, and the exported graph's parity.

Why: ONNX Runtime, OpenVINO and TensorRT have no eigendecomposition, so ``spd_attention``'s deploy
graph replaces ReEig + LogEig by matmul iterations (``spd_logm_iterative``) and drops ReEig's clamp.
This script shows, on real faces and not only noise, that the swap does not change predictions:

* inputs: scikit-image's LFW faces (``lfw_subset.npy``, 25×25, upscaled to 224) and the astronaut's
  face, each also flipped, shifted, brighter and darker; random-normal inputs as a separate row;
* models: a few random initialisations, one with a 10× sharper attention softmax (more sensitive
  to the log matrices), and optionally one trained briefly (SGD, CE + eq. (8) regulariser) on a
  7-way "which perturbation" task built from other LFW faces (the weights and spectra move);
* per model and input set: top-1 agreement and max relative logit error (deploy vs eigh), the
  spectrum the matrix log sees (condition number, distance of the smallest eigenvalue from ReEig's
  ε, so whether dropping the clamp was exact) and the matrix log's own error on those matrices;
* the matrix log alone on random SPD matrices of condition number 10 … 10⁴ (the model's bound is
  (1+λ)/λ = 1001);
* the ONNX export (the project's exporter chain, opset 18, dynamic batch) of the deploy graph: no
  eigen/SVD op, parity of onnxruntime and OpenVINO (f32 forced) with PyTorch's deploy graph.

Run: ``PYTHONPATH=. python3 scripts/spd_deploy_report.py`` (writes benchmarks/spd_deploy_report.{md,json}).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from feredge.models import count_macs, count_params, create_model, deploy_graph
from feredge.models.spd_attention import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    LOGM_SERIES_TERMS,
    LOGM_SQRT_ITERS,
    SPDAttention,
    spd_logm_eigh,
    spd_logm_iterative,
)

ROOT = Path(__file__).resolve().parents[1]
SIZE = 224
FORBIDDEN_OP_WORDS = ("eig", "svd", "inverse", "det", "loop", "if", "scan")
BATCH = 16


# --------------------------------------------------------------------------------------------------
# Inputs


def _skimage_faces() -> tuple[np.ndarray, np.ndarray]:
    """(100 LFW faces as 25×25 float [0, 1] gray, the astronaut's face as 200×200×3 float [0, 1])."""
    import skimage
    from skimage import data

    lfw = np.load(os.path.join(skimage.data_dir, "lfw_subset.npy"))[:100].astype(np.float32)
    astronaut = data.astronaut()[30:230, 150:350].astype(np.float32) / 255.0
    return lfw, astronaut


def _to_rgb224(images: torch.Tensor) -> torch.Tensor:
    """(N, C, h, w) in [0, 1] → (N, 3, 224, 224) in [0, 1], bilinear (antialiased when shrinking)."""
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    return F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False, antialias=True)


def _normalize(images: torch.Tensor) -> torch.Tensor:
    mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    return (images - mean) / std


def _shift(images: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Translate with edge replication (a detector's box being off by a few pixels)."""
    pad = (max(dx, 0), max(-dx, 0), max(dy, 0), max(-dy, 0))
    padded = F.pad(images, pad, mode="replicate")
    h, w = images.shape[-2:]
    top, left = max(-dy, 0), max(-dx, 0)
    return padded[..., top : top + h, left : left + w]


PERTURBATIONS = {
    "original": lambda x: x,
    "hflip": lambda x: x.flip(-1),
    "shift (+12, -9) px": lambda x: _shift(x, 12, -9),
    "brightness ×1.3": lambda x: (x * 1.3).clamp(0, 1),
    "brightness ×0.7 - 0.05": lambda x: (x * 0.7 - 0.05).clamp(0, 1),
}

# Labels of the brief training task: which of these was applied (7 classes, like RAF-DB's 7).
TRAIN_TRANSFORMS = [
    lambda x: x,
    lambda x: x.flip(-1),
    lambda x: _shift(x, 20, 0),
    lambda x: (x * 1.4).clamp(0, 1),
    lambda x: (x * 0.6).clamp(0, 1),
    lambda x: x.flip(-2),
    lambda x: F.avg_pool2d(x, 9, stride=1, padding=4, count_include_pad=False),
]


def build_inputs(first_eval_face: int) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Held-out evaluation sets (normalised, 224) and the raw [0, 1] training faces before them."""
    lfw, astronaut = _skimage_faces()
    lfw_t = _to_rgb224(torch.from_numpy(lfw).unsqueeze(1))
    astro_t = _to_rgb224(torch.from_numpy(astronaut).permute(2, 0, 1).unsqueeze(0))
    faces = torch.cat([lfw_t[first_eval_face:], astro_t])
    sets = {f"faces: {name}": _normalize(fn(faces)) for name, fn in PERTURBATIONS.items()}
    sets["random normal N(0, 1)"] = torch.randn(32, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(7))
    return sets, lfw_t[:first_eval_face]


# --------------------------------------------------------------------------------------------------
# Models


def brief_train(
    model: SPDAttention, faces: torch.Tensor, steps: int, batch: int, seed: int
) -> dict[str, Any]:
    """A few SGD steps (CE + 0.01·eq. (8)) on a 7-way perturbation task, random crops as in training."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.cat([_normalize(fn(faces)) for fn in TRAIN_TRANSFORMS])
    labels = torch.arange(len(TRAIN_TRANSFORMS)).repeat_interleave(len(faces))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()
    losses, regs = [], []
    start = time.perf_counter()
    for _ in range(steps):
        idx = torch.randperm(len(images), generator=gen)[:batch]
        logits, reg = model.forward_with_regularizer(images[idx])
        loss = F.cross_entropy(logits, labels[idx]) + 0.01 * reg
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
        regs.append(reg.item())
    model.eval()
    with torch.no_grad():
        sub = torch.arange(0, len(images), max(1, len(images) // 28))  # ~28 images spread over the classes
        acc = float((model(images[sub]).argmax(1) == labels[sub]).float().mean())
    return {
        "steps": steps,
        "batch": batch,
        "train_images": len(images),
        "seconds": round(time.perf_counter() - start, 1),
        "loss_first_last": [round(losses[0], 4), round(losses[-1], 4)],
        "eig_regularizer_first_last": [round(regs[0], 4), round(regs[-1], 4)],
        "train_accuracy_after_28": round(acc, 4),
    }


@torch.no_grad()
def compare_model(
    model: SPDAttention, sets: dict[str, torch.Tensor], attention_scale: float = 1.0
) -> dict[str, Any]:
    """Deploy (iterative log, no clamp) vs eigh graph, sharing the backbone pass for speed.

    Both heads are fed the same BiMap outputs; :func:`check_end_to_end` confirms on a subset that the
    real deploy module gives the same logits as this shortcut. ``attention_scale`` multiplies the
    attention MLP's last layer (a sharper softmax over views, so the logits depend more strongly
    on the log matrices: a harder test of the same backbone).
    """
    model.eval()
    eps = model.reeig_eps
    last = model.attention[-1]
    assert isinstance(last, torch.nn.Linear)
    saved = (last.weight.clone(), last.bias.clone())
    last.weight.mul_(attention_scale)
    last.bias.mul_(attention_scale)
    try:
        return _compare(model, sets, eps)
    finally:
        last.weight.copy_(saved[0])
        last.bias.copy_(saved[1])


def _compare(model: SPDAttention, sets: dict[str, torch.Tensor], eps: float) -> dict[str, Any]:
    rows = {}
    for name, x in sets.items():
        ref, dep, spd_all, attn_all = [], [], [], []
        for i in range(0, len(x), BATCH):
            spd, vecs = model._spd_and_vectors(x[i : i + BATCH])
            log_ref, _ = spd_logm_eigh(spd, eps)
            log_dep = spd_logm_iterative(spd)
            logits_ref, attn = model._head(log_ref, vecs)
            ref.append(logits_ref)
            dep.append(model._head(log_dep, vecs)[0])
            spd_all.append(spd)
            attn_all.append(attn)
        ref_t, dep_t, spd_t, attn_t = torch.cat(ref), torch.cat(dep), torch.cat(spd_all), torch.cat(attn_all)
        sigma = torch.linalg.eigvalsh(spd_t.double())
        exact_log, _ = spd_logm_eigh(spd_t.double(), 0.0)
        log_err = (spd_logm_iterative(spd_t).double() - exact_log).abs().amax((-2, -1))
        rel_logit = (dep_t - ref_t).abs().amax(1) / ref_t.abs().amax(1)
        rows[name] = {
            "n": len(x),
            "top1_agreement": float((ref_t.argmax(1) == dep_t.argmax(1)).float().mean()),
            "max_rel_logit_err": float(rel_logit.max()),
            "mean_rel_logit_err": float(rel_logit.mean()),
            "max_abs_logit_err": float((dep_t - ref_t).abs().max()),
            "max_rel_logm_err": float((log_err / exact_log.abs().amax((-2, -1))).max()),
            "cond_max": float((sigma[..., -1] / sigma[..., 0]).max()),
            "cond_median": float((sigma[..., -1] / sigma[..., 0]).median()),
            "sigma_min": float(sigma[..., 0].min()),
            "sigma_max": float(sigma[..., -1].max()),
            "min_sigma_over_eps": float(sigma[..., 0].min() / eps),
            "clamp_active_fraction": float((sigma[..., 0] < eps).double().mean()),
            "attention_max_weight_mean": float(attn_t.amax(1).mean()),
            "logit_range": [float(ref_t.min()), float(ref_t.max())],
        }
    return rows


@torch.no_grad()
def check_end_to_end(model: SPDAttention, x: torch.Tensor) -> dict[str, float]:
    """The real deploy module (fixed crops, frozen BiMap, iterative log) vs the eigh model, end to end."""
    model.eval()
    ref = model(x)
    dep = deploy_graph(model)(x)
    return {
        "n": len(x),
        "top1_agreement": float((ref.argmax(1) == dep.argmax(1)).float().mean()),
        "max_rel_logit_err": float(((dep - ref).abs().amax(1) / ref.abs().amax(1)).max()),
    }


# --------------------------------------------------------------------------------------------------
# Matrix log alone


def random_spd(n: int, d: int, cond: float, gen: torch.Generator) -> torch.Tensor:
    """SPD matrices with eigenvalues log-uniform in [1, cond] (both ends present), random scale."""
    q, _ = torch.linalg.qr(torch.randn(n, d, d, dtype=torch.float64, generator=gen))
    e = torch.exp(torch.rand(n, d, dtype=torch.float64, generator=gen) * math.log(cond))
    e[:, 0], e[:, 1] = 1.0, cond
    e = e * torch.exp(3.0 * torch.randn(n, 1, dtype=torch.float64, generator=gen))
    return (q * e.unsqueeze(-2)) @ q.transpose(-1, -2)


def logm_accuracy(d: int, conds: tuple[float, ...]) -> list[dict[str, Any]]:
    gen = torch.Generator().manual_seed(3)
    rows = []
    for cond in conds:
        x = random_spd(2000, d, cond, gen)
        exact, _ = spd_logm_eigh(x)
        scale = exact.abs().amax((-2, -1))
        it32 = spd_logm_iterative(x.float()).double()
        it64 = spd_logm_iterative(x)
        eigh32, _ = spd_logm_eigh(x.float())
        rows.append(
            {
                "cond": cond,
                "iterative_f32_max_rel_err": float(((it32 - exact).abs().amax((-2, -1)) / scale).max()),
                "iterative_f64_max_rel_err": float(((it64 - exact).abs().amax((-2, -1)) / scale).max()),
                "eigh_f32_max_rel_err": float(((eigh32.double() - exact).abs().amax((-2, -1)) / scale).max()),
            }
        )
    return rows


# --------------------------------------------------------------------------------------------------
# Export and runtimes


def export_and_check(model: SPDAttention, x: torch.Tensor, workdir: Path) -> dict[str, Any]:
    """Export the deploy graph with the project's exporter chain; ORT and OpenVINO f32 parity vs torch."""
    import onnx
    import onnxruntime as ort
    import openvino as ov

    from feredge.export.onnx_export import DEFAULT_OPSET, EXPORTERS, INPUT_NAME

    deploy = deploy_graph(model)
    with torch.no_grad():
        expected = torch.cat([deploy(x[i : i + BATCH]) for i in range(0, len(x), BATCH)]).numpy()
    rejected: dict[str, str] = {}
    for name, exporter in EXPORTERS.items():
        start = time.perf_counter()
        try:
            data = exporter(deploy, (3, SIZE, SIZE), 64, DEFAULT_OPSET)
        except Exception as exc:  # try the next exporter, as feredge.export does
            rejected[name] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
            continue
        export_s = time.perf_counter() - start
        proto = onnx.load_from_string(data)
        onnx.checker.check_model(proto)
        ops = Counter(f"{n.domain + '::' if n.domain else ''}{n.op_type}" for n in proto.graph.node)
        bad = sorted(op for op in ops if any(w in op.lower() for w in FORBIDDEN_OP_WORDS))
        path = workdir / "spd_attention_deploy.onnx"
        path.write_bytes(data)

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        ort_out = np.concatenate(
            [sess.run(None, {INPUT_NAME: x[i : i + BATCH].numpy()})[0] for i in range(0, len(x), BATCH)]
        )
        core = ov.Core()
        compiled = core.compile_model(core.read_model(str(path)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
        ov_out = np.concatenate([compiled(x[i : i + BATCH].numpy())[0] for i in range(0, len(x), BATCH)])
        one = x[:1].numpy()
        timing = {
            "onnxruntime_ms_batch1": _median_ms(lambda s=sess, o=one: s.run(None, {INPUT_NAME: o})),
            "openvino_f32_ms_batch1": _median_ms(lambda c=compiled, o=one: c(o)),
        }
        result = {
            "exporter": name,
            "rejected_exporters": rejected,
            "opset": DEFAULT_OPSET,
            "export_seconds": round(export_s, 1),
            "onnx_bytes": len(data),
            "nodes": sum(ops.values()),
            "op_histogram": dict(ops.most_common()),
            "forbidden_ops": bad,
            "dynamic_batch": not proto.graph.input[0].type.tensor_type.shape.dim[0].HasField("dim_value"),
            "n_inputs_checked": len(x),
            "onnxruntime_max_abs_diff": float(np.abs(ort_out - expected).max()),
            "openvino_f32_max_abs_diff": float(np.abs(ov_out - expected).max()),
            "onnxruntime_top1_agreement": float((ort_out.argmax(1) == expected.argmax(1)).mean()),
            "openvino_top1_agreement": float((ov_out.argmax(1) == expected.argmax(1)).mean()),
            "openvino_version": ov.get_version(),
            "onnxruntime_version": ort.__version__,
            "latency": timing,
        }
        result["parity_passed"] = (
            result["onnxruntime_max_abs_diff"] <= 1e-4
            and result["openvino_f32_max_abs_diff"] <= 1e-4
            and not bad
        )
        return result
    return {"exporter": None, "rejected_exporters": rejected, "parity_passed": False}


def _median_ms(fn: Any, runs: int = 15) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(1000 * float(np.median(times)), 2)


# --------------------------------------------------------------------------------------------------
# Report


def _pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def write_markdown(report: dict[str, Any], path: Path) -> None:
    cfg = report["config"]
    lines = [
        "# SPD-Attention: eigh-free deploy graph vs the eigh graph",
        "",
        f"Command: `{report['command'].strip()}`  ",
        f"Machine: {report['machine']}; torch {report['versions']['torch']}; "
        f"total {report['seconds']:.0f} s.",
        "",
        "Written by `scripts/spd_deploy_report.py`; figures below are that run's (see the JSON beside).",
        "",
        "## What the deploy graph does",
        "",
        f"- LogEig: inverse scaling and squaring. `a = {cfg['logm_prescale']}·X/‖X‖_F` (eigenvalues in "
        f"(0, {cfg['logm_prescale']}]), {len(cfg['logm_sqrt_iters'])} successive coupled Newton–Schulz "
        f"square roots with {', '.join(map(str, cfg['logm_sqrt_iters']))} iterations "
        f"({sum(cfg['logm_sqrt_iters'])} in all, about {cfg['logm_matmuls']} matmuls of d×d), then "
        f"`log a = 2^m·asinh((Y − Z)/2)` with Y = a^(1/2^m), Z = a^(−1/2^m) from the last iteration and "
        f"{cfg['logm_series_terms']} terms of the asinh series (Horner), plus "
        f"`log(‖X‖_F/{cfg['logm_prescale']})·I`. Only MatMul/Mul/Add/Sub/Div/Sqrt/Log, fixed counts, "
        "no inverse.",
        "- ReEig's clamp `max(ε, σ)` is dropped. With BiMap's W kept semi-orthogonal, the smallest "
        f"eigenvalue is ≥ λ·tr(Cov) (λ = {cfg['cov_lambda']}), so the clamp (ε = {cfg['reeig_eps']}) can "
        "act only if "
        "tr(Cov) < ε/λ; the `min σ/ε` column shows how far real inputs are from that (clamp-active "
        "fraction 0 ⇒ the omission is exact).",
        f"- Crops: {cfg['num_crops']} fixed corner crops of side {cfg['crop_side']} (area ratio "
        f"{cfg['crop_ratio']}) sliced from the 224×224 input inside the graph, not resized.",
        f"- Model: {report['params']:,} parameters, {report['macs'] / 1e9:.2f} GMACs at 224 (batch 1, "
        "`count_macs`; face + 4 crops through ResNet-18, the SPD head is negligible).",
        "",
        "## Deploy vs eigh (PyTorch, float32; eigh in float64)",
        "",
        "Held-out inputs: LFW faces (scikit-image `lfw_subset.npy`, 25×25 upscaled to 224) not used in "
        "the brief training, plus the astronaut's face; each perturbed. Relative logit error per sample = "
        "max|Δlogit| / max|logit|; the table gives its maximum over the set.",
        "",
        "| model | input set | n | top-1 agreement | max rel logit err | max abs logit err "
        "| max rel logm err | cond max | min σ/ε | clamp active |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model_name, entry in report["models"].items():
        for set_name, r in entry["sets"].items():
            lines.append(
                f"| {model_name} | {set_name} | {r['n']} | {_pct(r['top1_agreement'])} | "
                f"{r['max_rel_logit_err']:.2e} | {r['max_abs_logit_err']:.2e} | "
                f"{r['max_rel_logm_err']:.2e} | "
                f"{r['cond_max']:.1f} | {r['min_sigma_over_eps']:.3g} | {_pct(r['clamp_active_fraction'])} |"
            )
    s = report["summary"]
    lines += [
        "",
        f"**All face inputs, all models: top-1 agreement {_pct(s['faces_top1_agreement'])} "
        f"({s['faces_n']} predictions), max relative logit error {s['faces_max_rel_logit_err']:.2e}. "
        f"Random-normal inputs: agreement {_pct(s['noise_top1_agreement'])}, max rel err "
        f"{s['noise_max_rel_logit_err']:.2e}.** Target ≥ 99.5 %: "
        f"{'met' if s['faces_top1_agreement'] >= 0.995 else 'NOT met'}.",
        "",
        "End to end (the real deploy module with its own fixed crops, on the first face batch): "
        + "; ".join(
            f"{k}: agreement {_pct(v['end_to_end']['top1_agreement'])}, max rel err "
            f"{v['end_to_end']['max_rel_logit_err']:.2e}"
            for k, v in report["models"].items()
            if v["end_to_end"]
        )
        + ".",
    ]
    if report.get("training"):
        t = report["training"]
        lines += [
            "",
            f"Brief training: {t['steps']} SGD steps of batch {t['batch']} (lr 0.01, momentum 0.9, random "
            f"crops) on {t['train_images']} images (7 perturbations of LFW faces not in the held-out set, "
            f"label = which perturbation); loss {t['loss_first_last'][0]} → {t['loss_first_last'][1]}, "
            f"eq. (8) regulariser {t['eig_regularizer_first_last'][0]} → {t['eig_regularizer_first_last'][1]}"
            f", accuracy afterwards on ~28 of its training images {_pct(t['train_accuracy_after_28'])} "
            "(chance 14 %: the point is moved weights and spectra, not a useful classifier); "
            f"{t['seconds']} s (shared CPU).",
        ]
    lines += [
        "",
        "## Matrix log alone (d = 16, 2000 random SPD matrices per row, vs float64 eigh)",
        "",
        "Max relative error = max|Δ| / max|log X| per matrix, maximum over matrices. The model's "
        f"condition number is provably ≤ (1+λ)/λ = {(1 + cfg['cov_lambda']) / cfg['cov_lambda']:.0f}.",
        "",
        "| condition number | iterative, float32 | iterative, float64 | eigh, float32 |",
        "| --- | --- | --- | --- |",
    ]
    for r in report["logm_accuracy"]:
        lines.append(
            f"| {r['cond']:g} | {r['iterative_f32_max_rel_err']:.2e} | "
            f"{r['iterative_f64_max_rel_err']:.2e} | {r['eigh_f32_max_rel_err']:.2e} |"
        )
    lines += ["", "## Exported deploy graph (ONNX opset 18, dynamic batch)", ""]
    for model_name, e in report["exports"].items():
        if e.get("exporter") is None:
            lines.append(f"- {model_name}: export FAILED: {e['rejected_exporters']}")
            continue
        lines += [
            f"- **{model_name}**: exporter `{e['exporter']}` ({e['export_seconds']} s), {e['nodes']} nodes, "
            f"dynamic batch {e['dynamic_batch']}, eigen/SVD/inverse/control-flow ops: "
            f"{e['forbidden_ops'] or 'none'}. On {e['n_inputs_checked']} inputs (faces spread over all "
            f"perturbations + 16 random-normal) vs "
            f"PyTorch's deploy graph: onnxruntime {e['onnxruntime_version']} max abs diff "
            f"{e['onnxruntime_max_abs_diff']:.2e}, OpenVINO {e['openvino_version']} (f32 forced) "
            f"{e['openvino_f32_max_abs_diff']:.2e} (gate 1e-4: {'pass' if e['parity_passed'] else 'FAIL'}); "
            f"top-1 agreement ORT {_pct(e['onnxruntime_top1_agreement'])}, "
            f"OV {_pct(e['openvino_top1_agreement'])}. Batch-1 median latency (noisy shared 2-core machine): "
            f"ORT {e['latency']['onnxruntime_ms_batch1']} ms, "
            f"OpenVINO f32 {e['latency']['openvino_f32_ms_batch1']} ms.",
            f"  Ops: {', '.join(f'{k} {v}' for k, v in e['op_histogram'].items())}.",
        ]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="random initialisations")
    parser.add_argument("--train-steps", type=int, default=8, help="brief training steps (0 = skip)")
    parser.add_argument("--train-batch", type=int, default=4)
    parser.add_argument("--train-faces", type=int, default=70, help="LFW faces 0..k-1 train, rest evaluate")
    parser.add_argument("--parity-inputs", type=int, default=48, help="inputs for the ORT/OpenVINO check")
    parser.add_argument("--markdown-only", action="store_true", help="rewrite the .md from the .json")
    parser.add_argument("--max-per-set", type=int, default=0, help="cap each input set (smoke runs)")
    parser.add_argument("--no-export", action="store_true", help="skip the ONNX/ORT/OpenVINO part")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "spd_deploy_report")
    args = parser.parse_args(argv)
    if args.markdown_only:
        write_markdown(json.loads(args.out.with_suffix(".json").read_text()), args.out.with_suffix(".md"))
        return 0

    start = time.perf_counter()
    torch.manual_seed(0)
    sets, train_faces = build_inputs(args.train_faces)
    if args.max_per_set:
        sets = {k: v[: args.max_per_set] for k, v in sets.items()}
    first_faces = next(iter(sets.values()))[:BATCH]

    models: dict[str, SPDAttention] = {}
    for seed in args.seeds:
        torch.manual_seed(seed)
        models[f"init seed {seed}"] = create_model("spd_attention").eval()  # type: ignore[assignment]
    training = None
    if args.train_steps > 0:
        torch.manual_seed(100)
        trained: SPDAttention = create_model("spd_attention")  # type: ignore[assignment]
        training = brief_train(trained, train_faces, args.train_steps, args.train_batch, seed=100)
        models[f"briefly trained ({args.train_steps} steps)"] = trained
        print("trained:", training, flush=True)

    report: dict[str, Any] = {
        "command": "PYTHONPATH=. python3 scripts/spd_deploy_report.py "
        + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:])).rstrip(),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs (shared)",
        "versions": {"torch": torch.__version__},
        "config": {},
        "models": {},
        "training": training,
        "exports": {},
    }
    base = next(iter(models.values()))
    report["config"] = {
        "num_crops": base.num_crops,
        "crop_ratio": base.crop_ratio,
        "crop_side": round(math.sqrt(base.crop_ratio) * SIZE),
        "spd_dim": base.spd_dim,
        "cov_lambda": base.cov_lambda,
        "reeig_eps": base.reeig_eps,
        "logm_sqrt_iters": list(LOGM_SQRT_ITERS),
        "logm_series_terms": LOGM_SERIES_TERMS,
        "logm_prescale": 2.0,
        "logm_matmuls": sum(3 * k - 2 for k in LOGM_SQRT_ITERS) + LOGM_SERIES_TERMS + 1,
    }
    report["params"] = count_params(base)
    report["macs"] = count_macs(base, (3, SIZE, SIZE))

    variants: list[tuple[str, SPDAttention, float]] = [(name, m, 1.0) for name, m in models.items()]
    first = f"init seed {args.seeds[0]}"
    variants.insert(1, (f"{first}, attention ×10", models[first], 10.0))
    for name, model, scale in variants:
        t0 = time.perf_counter()
        rows = compare_model(model, sets, attention_scale=scale)
        end_to_end = check_end_to_end(model, first_faces) if scale == 1.0 else None
        report["models"][name] = {"sets": rows, "end_to_end": end_to_end}
        print(f"{name}: {time.perf_counter() - t0:.0f} s", json.dumps(rows, indent=None)[:300], flush=True)

    report["logm_accuracy"] = logm_accuracy(base.spd_dim, (10.0, 100.0, 1001.0, 1e4))

    all_rows = [(k, r) for m in report["models"].values() for k, r in m["sets"].items()]
    face_rows = [r for k, r in all_rows if k.startswith("faces")]
    noise_rows = [r for k, r in all_rows if not k.startswith("faces")]

    def _agg(rows: list[dict[str, Any]]) -> tuple[float, float, int]:
        n = sum(r["n"] for r in rows)
        agreement = sum(r["top1_agreement"] * r["n"] for r in rows) / n
        return agreement, max(r["max_rel_logit_err"] for r in rows), n

    fa, fe, fn = _agg(face_rows)
    na, ne, _ = _agg(noise_rows)
    report["summary"] = {
        "faces_top1_agreement": fa,
        "faces_max_rel_logit_err": fe,
        "faces_n": fn,
        "noise_top1_agreement": na,
        "noise_max_rel_logit_err": ne,
        "cond_max_all": max(r["cond_max"] for r in face_rows + noise_rows),
        "min_sigma_over_eps_all": min(r["min_sigma_over_eps"] for r in face_rows + noise_rows),
    }

    if not args.no_export:
        # The trained model if there is one (its weights are furthest from init), else the first seed.
        export_name = list(models)[-1]
        export_models = {export_name: models[export_name]}
        face_inputs = torch.cat([v for k, v in sets.items() if k.startswith("faces")])
        noise_inputs = sets["random normal N(0, 1)"]
        pick = torch.linspace(0, len(face_inputs) - 1, args.parity_inputs).long()
        parity_inputs = torch.cat([face_inputs[pick], noise_inputs[:16]])
        with tempfile.TemporaryDirectory() as tmp:
            for name, model in export_models.items():
                report["exports"][name] = export_and_check(model, parity_inputs, Path(tmp))
                shown = {k: v for k, v in report["exports"][name].items() if k != "op_histogram"}
                print("export", name, shown, flush=True)

    report["seconds"] = time.perf_counter() - start
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    write_markdown(report, args.out.with_suffix(".md"))
    print(f"wrote {args.out.with_suffix('.md')} and .json in {report['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
