"""INT8 in the export: QAT when the checkpoint is a QAT one, post-training quantization otherwise.

The export side of INT8 — staging, manifest entries, the gate and its budgets — over
:mod:`feredge.quantize`, which makes INT8 artifacts from an :class:`~feredge.quantize.ptq.Int8Request`
and knows nothing of bundles.

Called by the ``onnx`` and ``openvino`` targets (:func:`build_onnx_int8`,
:func:`build_openvino_int8`) and, through :func:`int8_onnx`, by the TensorRT target's INT8 hook
(:func:`feredge.export.tensorrt.int8.int8_onnx_for`). One decision for all three:

* a QAT checkpoint (``extra["qat"]``, written by ``feredge qat``) is exported as it is — its
  quantizers and their calibrated ranges become the Q/DQ ONNX; ``--calib`` is then optional;
* otherwise ``--calib DATA`` is required and ``--ptq`` picks the backend (``auto``: NNCF for
  OpenVINO, ONNX Runtime for ONNX, ModelOpt for TensorRT).

Either way the choice is said in one line, the calibration report goes into the bundle
(``calibration.json`` + manifest ``calibration``) and the result into manifest ``int8``.

Which faces gate INT8 parity (:func:`record_int8_parity`): when ``--calib`` is a labelled dataset
with a validation split, that split — the faces the model is meant for — and the manifest gets
FP32 and INT8 accuracy there; the shared real reference faces are then measured for information
only. Why: a model trained on other faces (our synthetic set, a user's own domain) is out of
domain on the reference photos, its top-1 there is often a near-tie, and INT8's agreement on
near-ties measures rounding noise, not deployment fidelity (a synthetic-trained resnet18, TensorRT
PTQ: 98.9 % on its validation faces, 96.2 % on the reference photos). Without a labelled dataset (a folder of
photos, ``reference``, a ``.npy``, a QAT checkpoint alone) the reference faces stay the gate.

Budgets (:mod:`feredge.quantize.sensitivity`): the INT8 gate itself — top-1 agreement with FP32
of at least 98 % on the gate faces — is a budget the export meets by default: when all-INT8 misses
it, the fewest most sensitive layers are kept in float, so ``--precision int8 --calib DATA`` passes
with no other flag. ``--min-agreement`` raises that bar; ``--max-drop`` adds an accuracy budget on
the calibration dataset's validation split. Layers are ranked once, by the output noise each adds
alone on the calibration faces — in torch for ModelOpt and QAT artifacts
(:mod:`feredge.quantize.layer_noise`), in ONNX Runtime for ORT and NNCF
(:mod:`feredge.quantize.onnx_noise`) — and the shortest prefix of the ranking that meets the budget
is searched by re-quantizing with the backend and measuring in the target's runtime. The gate
faces decide when to stop and gate the result, so the gate is then optimistic by construction;
with a labelled dataset the reference-face figure, not used for the choice, stays in the manifest
as an independent check. Layers a QAT checkpoint already keeps in float (``feredge qat
--min-agreement``) are listed first in manifest ``int8.excluded``.

Temporary files (the backends' artifacts) live in the export's scratch directory, removed as soon
as the target has copied what it ships (:meth:`~feredge.export.context.ExportContext.scratch`).
"""

from __future__ import annotations

import copy
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from feredge.errors import FeredgeError
from feredge.quantize.layer_noise import torch_sensitivity
from feredge.quantize.options import int8_options_of, overflow_fix_for
from feredge.quantize.ptq import QDQ_ONNX, Int8Artifact, Int8Request, PtqBackend, qat_artifact, resolve_backend

if TYPE_CHECKING:
    from feredge.backends import ExportTarget
    from feredge.export.context import ExportContext

NEEDS_CALIB = ("--precision int8 needs --calib DATA (a dataset or a folder of face photos) unless --checkpoint "
               "is a QAT checkpoint (made by `feredge qat`)")
QDQ_FILE = "model.qdq.onnx"


GATE_FACES = "int8_gate_faces"  # ExportContext.state key: the in-domain GateFaces, once built


class Int8NeedsCalibration(FeredgeError):
    """Neither a QAT checkpoint nor calibration data: no way to choose INT8 ranges."""


@dataclass
class GateFaces:
    """In-domain faces that gate INT8 agreement: a labelled dataset's validation split."""

    batch: np.ndarray
    labels: np.ndarray
    expected: np.ndarray  # the FP32 deploy graph's logits on ``batch``
    origin: str
    split: str

    def __len__(self) -> int:
        return len(self.batch)

    @property
    def name(self) -> str:
        return f"{self.split} split of {self.origin}"


@dataclass
class Int8Outcome:
    artifact: Int8Artifact
    method: str  # "qat" or the PTQ backend's name
    manifest: dict[str, Any] = field(default_factory=dict)


def _calibration(ctx: ExportContext) -> Any:
    from feredge.calibration.dataset import build_calibration_set

    opts = int8_options_of(ctx.options)
    if opts.calib is None:
        return None
    return build_calibration_set(opts.calib, ctx.source.spec, ctx.source.labels, fmt=opts.calib_format,
                                 size=opts.calib_size, reference=ctx.reference.batch)


def quantize_for(ctx: ExportContext, target: str) -> Int8Outcome:
    """The INT8 artifact for ``ctx``'s model and ``target``, with its reports; see the module doc."""
    from feredge.calibration.report import REPORT_FILE, describe
    from feredge.quantize.modelopt_qat import QAT_KEY, is_qat_extra

    opts = int8_options_of(ctx.options)
    qat = is_qat_extra(ctx.source.extra)
    calib = _calibration(ctx)
    if not qat and calib is None:
        raise Int8NeedsCalibration(NEEDS_CALIB)
    if calib is not None and calib.labels is not None and ctx.state.get(GATE_FACES) is None:
        ctx.state[GATE_FACES] = _gate_faces(ctx, calib.origin, calib.fmt)
    workdir = ctx.scratch("feredge-int8-")
    request = Int8Request(ctx.source.module, tuple(ctx.source.spec.input_shape), ctx.staging / "model.onnx",
                          calib.batch if calib is not None else ctx.reference.batch, workdir,
                          overflow_fix=overflow_fix_for(opts, _row(ctx).overflow_fix),
                          max_batch=ctx.options.max_batch)
    qat_float: list[str] = []  # a QAT checkpoint's own float layers (feredge qat --keep-float/--min-agreement)
    if qat:
        info = ctx.source.extra[QAT_KEY]
        qat_float = list(info.get("excluded") or [])
        kept = f", {len(qat_float)} layer(s) kept in float" if qat_float else ""
        ctx.message(f"int8: QAT checkpoint ({info.get('method', 'qat')}, ModelOpt fake quantization{kept}) → Q/DQ "
                    f"ONNX; no post-training quantization")
        backend: PtqBackend | None = None
        artifact = qat_artifact(request)
        calib_report: dict[str, Any] = dict(info.get("calibration") or {})
    else:
        row = _row(ctx)
        backend = resolve_backend(opts.ptq, target, auto=row.auto_ptq, kinds=row.int8_kinds)
        ctx.message(f"int8: not a QAT checkpoint → post-training quantization with {backend.name} on "
                    f"{len(calib)} calibration faces from {calib.origin}")
        artifact = backend.quantize(request)
        calib_report = describe(calib, method=backend.name).to_dict()
    overflow_fix = ctx.source.extra[QAT_KEY].get("overflow_fix") if qat else request.overflow_fix
    manifest: dict[str, Any] = {"method": "qat" if qat else "ptq", "backend": backend.name if backend else "modelopt",
                                "artifact": artifact.kind, "overflow_fix": overflow_fix, **artifact.details}
    for budget in _budgets(ctx):
        artifact, found = _fit_budget(ctx, target, request, backend, artifact, budget, tuple(artifact.excluded))
        manifest[f"{budget.metric}_budget"] = found
        if found["excluded"]:
            ctx.message(f"int8: kept {len(found['excluded'])} more layer(s) in float to meet {_describe(budget)}: "
                        f"{', '.join(found['excluded'])} "
                        f"(latency {found['latency'].get('ratio', float('nan')):.2f}× the all-INT8 one)")
    manifest.update(artifact.details)  # the shipped artifact's figures (Q/DQ counts...), not all-INT8's
    manifest["excluded"] = [*qat_float, *artifact.excluded]  # the QAT checkpoint's come first
    if calib_report:
        (ctx.staging / REPORT_FILE).write_text(_json(calib_report), encoding="utf-8")
        ctx.add_file(REPORT_FILE, "calibration_report")
        summary = {k: (len(v) if k in ("sources", "skipped") and isinstance(v, list) else v)
                   for k, v in calib_report.items()}
        ctx.manifest_extra["calibration"] = {**summary, "file": REPORT_FILE}
    ctx.manifest_extra["int8"] = manifest
    return Int8Outcome(artifact, "qat" if qat else artifact.method, manifest)


def _row(ctx: ExportContext) -> ExportTarget:
    """The export target's facts from its back-end row (INT8 runtime, PTQ default, artifact kinds, overflow fix)."""
    if ctx.target is None:
        raise FeredgeError("an INT8 export needs its target's row on the export context (a feredge bug)")
    return ctx.target


def _gate_faces(ctx: ExportContext, origin: str, fmt: str) -> GateFaces | None:
    try:
        return _validation_faces(ctx, origin, fmt)
    except FeredgeError as exc:
        ctx.message(f"int8: no in-domain validation faces ({exc}); the real reference faces gate INT8 parity")
        return None


def _validation_faces(ctx: ExportContext, origin: Path | str, fmt: str) -> GateFaces:
    """A labelled dataset's validation split with the FP32 deploy graph's logits on it."""
    from feredge.calibration.dataset import validation_set
    from feredge.models import deploy_graph
    from feredge.quantize.evaluate import torch_logits

    val = validation_set(origin, ctx.source.spec, ctx.source.labels, fmt=fmt)
    assert val.labels is not None and val.split is not None
    expected = torch_logits(deploy_graph(copy.deepcopy(ctx.source.module)), val.batch)
    return GateFaces(val.batch, val.labels, expected, val.origin, val.split)


def record_int8_parity(ctx: ExportContext, runtime: str, logits_of: Any) -> None:
    """INT8 agreement with FP32 on the gate faces (see the module doc), and on the reference faces.

    ``logits_of(batch) -> logits`` runs the INT8 artifact. The in-domain accuracies (FP32 and
    INT8, per runtime) go into manifest ``int8.validation``."""
    from feredge.parity import compare_logits
    from feredge.quantize.evaluate import accuracy

    gate: GateFaces | None = ctx.state.get(GATE_FACES)
    results = [compare_logits(ctx.expected, logits_of(ctx.reference.batch), runtime=runtime, precision="int8",
                              gate=gate is None)]
    if gate is not None:
        logits = logits_of(gate.batch)
        section = ctx.manifest_extra.setdefault("int8", {}).setdefault(
            "validation", {"faces": gate.name, "samples": len(gate.batch),
                           "fp32_accuracy": accuracy(gate.expected, gate.labels), "int8_accuracy": {}})
        section["int8_accuracy"][runtime] = accuracy(logits, gate.labels)
        results.append(compare_logits(gate.expected, logits, runtime=runtime, precision="int8", faces=gate.name))
    for result in results:
        ctx.record_parity(result)  # the budget search met the gate where it measured; this is the shipped file


def _json(data: Any) -> str:
    import json

    return json.dumps(data, indent=2, sort_keys=True, default=str)


@dataclass
class _Budget:
    """One INT8 budget: ``flag``'s ``points`` on ``metric`` over ``batch`` (labels: the truth, or FP32's top-1)."""

    flag: str
    metric: str  # accuracy | agreement
    points: float
    batch: np.ndarray
    labels: np.ndarray
    fp32: float  # the metric for FP32 itself
    origin: str
    split: str | None

    def __len__(self) -> int:
        return len(self.batch)


def _budgets(ctx: ExportContext) -> list[_Budget]:
    """``--max-drop`` (accuracy on the labelled val split), then agreement on the gate faces: the INT8
    gate's own bar (98 %) unless ``--min-agreement`` sets another — so all-INT8 that misses the gate
    keeps layers in float by default instead of failing."""
    from feredge.parity import TOLERANCES
    from feredge.quantize.evaluate import accuracy

    opts = int8_options_of(ctx.options)
    budgets = []
    if opts.max_drop is not None:
        val: GateFaces | None = ctx.state.get(GATE_FACES)
        if val is None:
            if opts.calib is None:
                raise FeredgeError("--max-drop needs --calib DATA with a labelled validation split")
            val = _validation_faces(ctx, opts.calib, opts.calib_format)
        budgets.append(_Budget("--max-drop", "accuracy", float(opts.max_drop), val.batch, val.labels,
                               accuracy(val.expected, val.labels), val.origin, val.split))
    gate = ctx.state.get(GATE_FACES)
    batch, expected, origin, split = ((gate.batch, gate.expected, gate.origin, gate.split) if gate is not None
                                      else (ctx.reference.batch, ctx.expected, "reference", None))
    percent, flag = ((float(opts.min_agreement), "--min-agreement") if opts.min_agreement is not None
                     else (100.0 * TOLERANCES["int8"].min_agreement, "the INT8 gate"))
    budgets.append(_Budget(flag, "agreement", 100.0 - percent, batch, expected.argmax(1), 1.0, origin, split))
    return budgets


def _fit_budget(ctx: ExportContext, target: str, request: Int8Request, backend: PtqBackend | None,
                artifact: Int8Artifact, budget: _Budget,
                already: tuple[str, ...] = ()) -> tuple[Int8Artifact, dict[str, Any]]:
    """Keep layers in float (beyond ``already``, kept by an earlier budget) until ``budget`` holds."""
    from feredge.quantize.evaluate import accuracy, runtime_logits
    from feredge.quantize.sensitivity import fit_budget

    runtime = _row(ctx).int8_runtime
    made: dict[frozenset[str], Int8Artifact] = {}  # ORT/NNCF: the search's artifacts, so the chosen one is not remade
    if backend is None or backend.name == "modelopt":
        layers, measure, ranking = torch_sensitivity(request, backend is None, budget.batch, budget.labels)
    else:
        layers = backend.layers(request)
        rank = backend.rank
        if rank is None:
            raise FeredgeError(f"the {backend.name} PTQ backend has no layer ranking; it cannot meet an INT8 budget")

        def measure(excluded: frozenset[str]) -> float:
            made[excluded] = found = backend.quantize(request.excluding(excluded))
            return accuracy(runtime_logits(found.path, budget.batch, runtime), budget.labels)

        def ranking() -> dict[str, float]:
            return rank(request, _progress("int8: ranking layers by output noise", len(layers)))

    def evaluate(excluded: frozenset[str]) -> float:
        return measure(excluded | frozenset(already))

    result = fit_budget([name for name in layers if name not in already], evaluate, budget.fp32, budget.points,
                        log=ctx.message, metric=budget.metric, ranking=ranking)
    if result.excluded:
        kept = request.excluding((*already, *result.excluded))
        final = qat_artifact(kept) if backend is None else made.get(frozenset(kept.exclude)) or backend.quantize(kept)
        result.latency = _latency_cost(artifact.path, final.path, budget.batch, runtime)
        result.final_accuracy = accuracy(runtime_logits(final.path, budget.batch, runtime), budget.labels)
        result.met = result.drop_points <= result.max_drop_points + 1e-9
        artifact = final
    if not result.met:
        raise FeredgeError(f"INT8 {budget.metric} stays {result.drop_points:.2f} points below FP32 on {len(budget)} "
                           f"faces even with {len(already) + len(result.excluded)} layers in float "
                           f"({_describe(budget)})")
    return artifact, {**result.to_dict(), "metric": budget.metric,
                      "validation": {"samples": len(budget), "origin": budget.origin, "split": budget.split,
                                     "runtime": runtime}}


def _progress(desc: str, total: int) -> Any:
    """A progress bar (:func:`feredge.progress.bar`) for a loop of ``total`` layers."""
    from feredge.progress import bar

    return lambda items: bar(items, desc=desc, total=total, unit="layer")


def _describe(budget: _Budget) -> str:
    if budget.flag.startswith("--"):
        value = 100.0 - budget.points if budget.metric == "agreement" else budget.points
        return f"{budget.flag} {value:g}"
    return f"{budget.flag} ({100.0 - budget.points:g} % {budget.metric})"


def _latency_cost(all_int8: Path, final: Path, batch: np.ndarray, runtime: str) -> dict[str, Any]:
    from feredge.bench.latency import measure

    stats = {}
    for key, path in (("all_int8", all_int8), ("final", final)):
        stats[key] = _measure(path, batch, runtime, measure)
    return {"runtime": runtime, "batch": 1, "all_int8_p50_ms": stats["all_int8"], "final_p50_ms": stats["final"],
            "ratio": stats["final"] / stats["all_int8"] if stats["all_int8"] else float("nan")}


def _measure(path: Path, batch: np.ndarray, runtime: str, measure: Any) -> float:
    if runtime == "openvino":
        from feredge.runtimes.openvino_runner import OpenVINORunner as Runner
        options: dict[str, Any] = {"precision": "int8"}
    else:
        from feredge.runtimes.onnxruntime_runner import OnnxRuntimeRunner as Runner  # type: ignore[assignment]
        options = {}
    with Runner(path, **options) as runner:
        return float(measure(runner, batch[:8], 1, warmup=5, iterations=30).p50_ms)


# --- the targets' entry points ---------------------------------------------------------------------

def build_onnx_int8(ctx: ExportContext) -> None:
    """``onnx`` target, int8: ``model.onnx`` becomes the Q/DQ ONNX, checked in ONNX Runtime."""
    from feredge.runtimes.onnxruntime_runner import OnnxRuntimeRunner

    outcome = quantize_for(ctx, "onnx")
    shutil.copyfile(outcome.artifact.path, ctx.staging / "model.onnx")
    with OnnxRuntimeRunner(ctx.staging / "model.onnx") as runner:  # one session for both face sets
        record_int8_parity(ctx, f"onnxruntime ({outcome.method})", runner.infer_all)


def build_openvino_int8(ctx: ExportContext) -> None:
    """``openvino`` target, int8: IR from the Q/DQ ONNX (kept as ``model.qdq.onnx``) or from NNCF."""
    from feredge.export.openvino_export import convert_to_openvino
    from feredge.runtimes.openvino_runner import OpenVINORunner

    outcome = quantize_for(ctx, "openvino")
    xml = ctx.staging / "model.xml"
    if outcome.artifact.kind == QDQ_ONNX:
        shutil.copyfile(outcome.artifact.path, ctx.staging / QDQ_FILE)
        ctx.add_file(QDQ_FILE, "qdq_onnx")
        convert_to_openvino(ctx.staging / QDQ_FILE, xml, compress_to_fp16=False)
    else:
        shutil.copyfile(outcome.artifact.path, xml)
        shutil.copyfile(outcome.artifact.path.with_suffix(".bin"), xml.with_suffix(".bin"))
    ctx.add_file("model.xml", "openvino_xml")
    ctx.add_file("model.bin", "openvino_bin")
    with OpenVINORunner(xml, precision="int8") as runner:
        record_int8_parity(ctx, f"openvino ({runner.settings['inference_precision']})", runner.infer_all)


def int8_onnx(ctx: ExportContext, calib: Any = None, *, target: str = "tensorrt") -> Path:
    """A Q/DQ ONNX for ``ctx``'s model (QAT if the checkpoint is one, else ModelOpt/ORT PTQ).

    The TensorRT target's hook calls this. ``calib``: an already built
    :class:`~feredge.calibration.dataset.CalibrationSet` to use instead of ``--calib``. Raises
    :class:`Int8NeedsCalibration` when there is neither a QAT checkpoint nor calibration data, so
    the caller can fall back (TensorRT 10's calibrator) or fail with its own message. The file
    lives in a temporary directory removed at exit: copy it into the bundle.
    """
    if calib is not None:
        from dataclasses import replace

        opts = int8_options_of(ctx.options)
        ctx.options.int8 = replace(opts, calib=calib.origin, calib_format=calib.fmt, calib_size=len(calib))
    outcome = quantize_for(ctx, target)
    if outcome.artifact.kind != QDQ_ONNX:
        raise FeredgeError(f"{outcome.method} produced {outcome.artifact.kind}, not a Q/DQ ONNX")
    return outcome.artifact.path
