"""Model-only benchmark matrix: models × precisions × runtimes × batch sizes.

A model comes as a bundle, a registered name or a checkpoint; a name or checkpoint is exported
once per (target, precision) into a work directory (kept, so a rerun reuses it). Each runtime
reads the artifact made for it: OpenVINO the IR of the ``openvino`` target, ONNX Runtime the ONNX
of the ``onnx`` target (its fp16 file is a real fp16 graph; the ``openvino`` target's ONNX stays
fp32), PyTorch eager the fp32 weights. A precision that cannot be produced (an exporter refusing
it, INT8 without a quantizer for that target) becomes a *skipped* row with the exporter's reason.

Every runtime case runs in its own process (:mod:`feredge.bench.worker`) so its peak RSS is its
own; rows carry what actually ran (``settings``), the artifact's size on disk, the model's MACs
and the compute floor at the measured peak rate.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from feredge.bench.variants import DEVICE_DEFAULT
from feredge.bench.worker import CaseResult, CaseSpec, run_case, run_case_subprocess
from feredge.errors import FeredgeError

#: which export target makes the artifact each runtime reads
PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class ModelRef:
    """What to benchmark: exactly one of bundle, checkpoint, or a registered model name."""

    label: str
    name: str | None = None
    checkpoint: Path | None = None
    bundle: Path | None = None
    note: str = ""

    @classmethod
    def parse(cls, text: str) -> ModelRef:
        """``NAME``, ``LABEL=path/to/checkpoint.safetensors`` or a bundle directory / checkpoint path."""
        label, _, value = text.partition("=") if "=" in text else ("", "", text)
        path = Path(value)
        if path.is_dir():
            return cls(label or path.name, bundle=path)
        if path.suffix == ".safetensors":
            if not path.is_file():
                raise FeredgeError(f"{path}: no such checkpoint")
            return cls(label or path.parent.name or path.stem, checkpoint=path)
        return cls(label or value, name=value)


@dataclass
class Skip:
    model: str
    precision: str
    runtime: str
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MatrixConfig:
    precisions: list[str] = field(default_factory=lambda: list(PRECISIONS))
    runtimes: list[str] | None = None  # None: every installed runtime that has an artifact
    batches: list[int] = field(default_factory=lambda: [1, 8])
    warmup: int = 10
    iterations: int = 100
    threads: int | None = None
    isolate: bool = True  # one process per runtime case (per-case peak RSS)
    workdir: Path | None = None
    calib: Path | str | None = None  # INT8 calibration: "reference", a dataset, a photo folder or a .npy
    calib_by_label: dict[str, str] = field(default_factory=dict)  # per-model calibration data, by model label
    min_agreement: float | None = None  # INT8 exports keep sensitive layers in float until this % agreement
    peak_gflops: float | None = None

    def calib_for(self, label: str) -> Path | str | None:
        """A model's INT8 calibration data: its own entry, else the common one. Why per model: a model
        trained on a dataset calibrates (and is gated) on that dataset, the shipped model on real faces."""
        return self.calib_by_label.get(label, self.calib)


def parse_calib(entries: list[str] | None) -> tuple[str | None, dict[str, str]]:
    """``--calib`` entries: ``DATA`` (every model) and ``LABEL=DATA`` (one model) → (common, by label)."""
    common, by_label = None, {}
    for entry in entries or []:
        label, sep, value = entry.partition("=")
        if sep and label and not Path(entry).exists():
            by_label[label] = value
        elif common is None:
            common = entry
        else:
            raise FeredgeError(f"--calib: two common calibration sources ({common}, {entry}); "
                               "give the others as LABEL=DATA")
    return common, by_label


@dataclass
class ModelResult:
    model: str
    model_name: str
    input_shape: list[int]
    macs: int | None
    params: int | None
    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: list[Skip] = field(default_factory=list)
    bundles: dict[str, str] = field(default_factory=dict)  # "target/precision" → path

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["skipped"] = [s.to_dict() for s in self.skipped]
        return data


def runner_role(bundle: Any, runtime: str) -> str | None:
    """The role of the file ``runtime``'s runner loads from ``bundle`` (its row's bundle roles, first match)."""
    from feredge.runtimes.registry import runtime_info

    return next((role for role in runtime_info(runtime).bundle_roles if bundle.has(role)), None)


def artifact_bytes(bundle: Any, runtime: str) -> int:
    """Bytes on disk of the file(s) ``runtime`` loads from ``bundle`` (IR: xml + bin)."""
    role = runner_role(bundle, runtime)
    if role is None:
        return 0
    roles = bundle.roles()
    names = [roles[role]] + ([roles["openvino_bin"]] if role == "openvino_xml" and "openvino_bin" in roles else [])
    return sum(int(bundle.manifest["files"][n].get("bytes", 0)) for n in names)


def model_complexity(bundle: Any) -> tuple[int | None, int | None]:
    """(MACs at batch 1, parameters) of the bundle's model, or (None, None) without torch."""
    try:
        from feredge.models import count_macs, count_params, create_model, deploy_graph
    except ImportError:
        return None, None
    model = create_model(bundle.model_name, **bundle.manifest["model"].get("kwargs", {}))
    graph = deploy_graph(model)
    return int(count_macs(graph, tuple(bundle.spec.input_shape))), int(count_params(model))


def export_bundle(ref: ModelRef, target: str, precision: str, workdir: Path, calib: Path | str | None,
                  min_agreement: float | None = None) -> Path:
    """Export ``ref`` for (target, precision) into ``workdir`` (reused when already there)."""
    from feredge.export.exporter import ExportOptions, export
    from feredge.quantize.options import Int8Options

    out = workdir / f"{ref.label}-{target}-{precision}"
    if (out / "manifest.json").is_file():
        return out
    int8 = (Int8Options(calib=calib, min_agreement=min_agreement) if precision == "int8" and calib is not None
            else None)
    options = ExportOptions(target=target, precision=precision, output=out, force=True, model=ref.name,
                            checkpoint=ref.checkpoint, int8=int8)
    from feredge.logs import third_party_output

    with third_party_output():  # NNCF and the ONNX exporter print on stdout, which may be `bench --json`
        export(options)
    return out


def _installed_runtimes(requested: list[str] | None) -> list[str]:
    from feredge.runtimes.registry import available_runtimes, resolve_name

    names = [resolve_name(n) for n in requested] if requested else available_runtimes()
    return [n for n in names if n != "tensorrt" or requested]


def device_default_precision() -> str | None:
    """OpenVINO CPU's INFERENCE_PRECISION_HINT when nobody sets it (bf16 on AMX CPUs), if installed."""
    try:
        import openvino as ov
    except ImportError:
        return None
    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT").get_type_name()


def _row(model: str, precision: str, case: CaseResult, stats: dict[str, Any], size: int, macs: int | None,
         peak: float | None, variant: str = "", artifact: str = "") -> dict[str, Any]:
    """One timed (case, batch): named by ``artifact`` (the bundle file that ran) and ``ran_as`` (see
    :mod:`feredge.bench.naming`); ``precision`` stays the file's, which gates and advice key on."""
    from feredge.bench.naming import ran_as
    from feredge.bench.references import compute_floor_ms

    settings = stats.get("settings", {})
    ran = settings.get("inference_precision") or settings.get("precision")
    if case.runtime == "onnxruntime" and precision == "fp16" and ran == "fp32":
        ran = "fp16 (fp32 I/O)"  # the runner reads the input type; the fp16 ONNX keeps float32 inputs/outputs
    row = {
        "model": model, "precision": precision, "runtime": case.runtime, "variant": variant,
        "artifact": artifact, "ran_as": ran_as(precision, settings.get("inference_precision") or
                                               settings.get("precision"), case.runtime),
        "ran_precision": ran, "threads": settings.get("threads"),
        **{k: stats[k] for k in ("batch", "iterations", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "min_ms", "max_ms",
                                  "throughput_fps")},
        "size_bytes": size, "load_ms": case.load_ms, "peak_rss_mb": case.memory.get("peak_mb"),
        "model_rss_mb": case.memory.get("model_mb"), "settings": settings,
    }
    if macs and peak:
        floor = compute_floor_ms(macs, stats["batch"], peak)
        row["floor_ms"] = floor
        row["floor_fraction"] = floor / stats["p50_ms"]
    return row


def bench_model(ref: ModelRef, config: MatrixConfig, log: Callable[[str], None] | None = None) -> ModelResult:
    from feredge.bundle import Bundle
    from feredge.progress import bar
    from feredge.runtimes.registry import resolve_name, runtime_info

    say = log or (lambda text: print(text, file=sys.stderr))
    workdir = config.workdir or Path(tempfile.mkdtemp(prefix="feredge-bench-"))
    runtimes = _installed_runtimes(config.runtimes)
    cache: dict[tuple[str, str], Path | Skip] = {}

    def bundle_for(target: str, precision: str) -> Path | Skip:
        if ref.bundle is not None:
            return ref.bundle
        if target == "onnx" and precision == "fp32" and ("openvino", "fp32") in cache:
            found = cache["openvino", "fp32"]  # the openvino target's model.onnx is the fp32 ONNX
            if not isinstance(found, Skip):
                return found
        key = (target, precision)
        if key not in cache:
            say(f"  exporting {ref.label} → {target} {precision}")
            try:
                cache[key] = export_bundle(ref, target, precision, workdir, config.calib_for(ref.label),
                                           config.min_agreement)
            except FeredgeError as exc:
                cache[key] = Skip(ref.label, precision, target, f"export {target} {precision}: {exc}")
        return cache[key]

    skips: list[Skip] = []
    result: ModelResult | None = None
    precisions = [Bundle.load(ref.bundle).precision] if ref.bundle is not None else config.precisions
    ov_default = device_default_precision()
    cases = [(precision, runtime) for precision in precisions for runtime in runtimes]
    for precision, runtime in bar(cases, desc=f"bench {ref.label}", unit="case"):
        name = resolve_name(runtime)
        target = runtime_info(name).bundle_target
        if name == "torch" and precision != "fp32":
            skips.append(Skip(ref.label, precision, name, "PyTorch eager runs the fp32 weights only (its fp32 "
                              "row is the reference)"))
            continue
        found = bundle_for(target, precision)
        if isinstance(found, Skip):
            skips.append(Skip(ref.label, precision, name, found.reason))
            continue
        bundle = Bundle.load(found)
        if result is None:
            macs, params = model_complexity(bundle)
            result = ModelResult(ref.label, bundle.model_name, list(bundle.spec.input_shape), macs, params)
        result.bundles[f"{target}/{precision}"] = str(found)
        role = runner_role(bundle, name)
        if role is None:
            skips.append(Skip(ref.label, precision, name, f"bundle {found} has no file for {name}"))
            continue
        ran = bundle.role_precision(role)  # the row names the file that ran (an INT8 IR's bundle: fp32 ONNX)
        artifact = bundle.roles()[role]
        batches = [b for b in config.batches if b <= bundle.max_batch]
        variants: list[tuple[str, str | None]] = [("", None)]
        kept_float = bundle.manifest.get("int8", {}).get("excluded") or []
        if kept_float and ran == "int8":  # mixed precision (the gate's layer search): say so in the row
            variants = [(f"{len(kept_float)} layers kept in float", None)]
        if name == "openvino" and ran == "fp32" and ov_default and ov_default != "f32":
            variants.append((DEVICE_DEFAULT, ov_default))  # see feredge.bench.variants; "ran as" says which
        for variant, hint in variants:
            spec = CaseSpec(str(found), name, batches, config.warmup, config.iterations, config.threads, hint)
            say(f"  {ref.label} {name} {artifact}{' [' + variant + ']' if variant else ''}: batches {batches}")
            case = run_case_subprocess(spec) if config.isolate else _in_process(spec)
            if case.error:
                skips.append(Skip(ref.label, precision, name, f"run failed: {case.error}"))
                continue
            size = artifact_bytes(bundle, name)
            for stats in case.latency:
                result.rows.append(_row(ref.label, ran, case, stats, size, result.macs, config.peak_gflops,
                                        variant, artifact))
    if result is None:
        raise FeredgeError(f"{ref.label}: nothing could be benchmarked: " + "; ".join(s.reason for s in skips[:3]))
    result.skipped.extend(skips)
    return result


def _in_process(spec: CaseSpec) -> CaseResult:
    try:
        return run_case(spec)
    except FeredgeError as exc:
        return CaseResult(runtime=spec.runtime, error=str(exc))
