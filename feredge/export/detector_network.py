"""The face detector as a network of every bundle: copied, converted per target, verified on real photos.

Why in the bundle and not only in the package: a device then runs the detector from the same
verified, hashed directory as the classifier, on the same runtime (a CPU both in OpenVINO), and a
bundle records which detector network its numbers were measured with. The bundle's *default*
detector stays ``spec.detector.name``; ``Pipeline.from_bundle(..., detector="blazeface…")`` picks
this network up (:func:`feredge.preprocess.detect.detector_for_bundle`).

What goes in: the BlazeFace ONNX of the variant named by ``ExportOptions.detector_network``
(shipped in ``feredge/assets/blazeface``, converted from MediaPipe's TFLite and checked against it,
``PROVENANCE.json``), byte for byte, or converted to fp16 (see below); then each runner role the
target lists in :attr:`~feredge.backends.ExportTarget.network_roles` beyond ``onnx`` is built by
:data:`CONVERTERS` (OpenVINO IR for the openvino target).

Precision (:data:`NETWORK_PRECISION`): an fp16 bundle's detector is fp16 like its classifier — the
ONNX converted with float32 inputs and outputs kept (a caller feeds the same views) by the
classifier's converter, :func:`feredge.export.tensorrt.fp16.to_fp16_onnx` (recorded as
``fp16_converter``), the OpenVINO IR saved with fp16 weights. An int8 bundle's detector stays
fp32, recorded with the reason in the network's ``precision_note``: NNCF's INT8 short-range net
took 16.9 ms for a photo's views against f32's 13.4 and its raw outputs left the parity limits on
an AVX2 CPU without VNNI (AMD EPYC, 2026-12-02); the classifier's INT8 is unaffected.

Verification (:func:`detector_parity`), recorded in the network's ``parity`` and a failure aborts
the export: every runtime the network is declared for (:func:`declared_runtimes`) against ONNX Runtime
on the packaged fp32 ONNX (an fp32 bundle's ONNX is that file; its own ONNX Runtime row would compare
a file with itself and is left out), on real one-face photos (the shipped astronaut, scikit-image's cameraman,
matplotlib's Grace Hopper when matplotlib is installed): the raw network output of every view, and
the decoded faces (same count per photo, boxes and keypoints within half a pixel, scores within 1e-3). A runtime the
detector runs with other options (:data:`~feredge.preprocess.blazeface.RUNNER_OPTIONS`: OpenVINO at
the device's own precision, bf16 on a bf16 CPU) is checked a second time as it runs, at
:data:`DEVICE_TOLERANCES`; each row records its options and limits. Where the detector runs whole
pyramid levels (a variant on the same network with
:attr:`~feredge.preprocess.blazeface.BlazeFaceSpec.whole_levels`, as the default detector, on a
runtime that reshapes: OpenVINO compiles the net per level shape), each row has a twin,
``… whole levels (variant)``, on the photos' letterbox and level inputs against ONNX Runtime on a
copy of the packaged ONNX whose height and width are left free (:func:`free_spatial_dims`; a
scratch file, not a bundle member): the same raw outputs and decoded faces at the same limits.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from feredge.backends import network_runtimes
from feredge.bundle import Network, network_file_role, sha256_file
from feredge.errors import FeredgeError
from feredge.preprocess.blazeface import (
    BLAZEFACE_SPECS,
    RUNNER_OPTIONS,
    BlazeFaceDetector,
    models_dir,
    runner_options,
)
from feredge.preprocess.image_io import read_image
from feredge.runtimes.registry import runner_class, runtime_info

if TYPE_CHECKING:
    from feredge.export.context import ExportContext

ROLE = "detector"
#: the runtime every other one is compared with, on the bundle's ONNX — the very file PROVENANCE.json
#: checked against MediaPipe's TFLite interpreter (its sha256 is checked before the copy)
REFERENCE = "onnxruntime"
#: raw output: atol relative to the largest |value| (logits reach ~150): 2e-2 per 100
RAW_ATOL_PER_100 = 2e-2
BOX_ATOL_PX = 0.5
SCORE_ATOL = 1e-3


def declared_runtimes() -> tuple[str, ...]:
    """The runtimes a detector network is verified in and declared for: the rows that say
    ``verifies_networks`` (:data:`feredge.backends.BACKENDS`), :data:`REFERENCE` first. TensorRT's row
    does not: its ONNX passes the static checks, recorded, but the engine build is the classifier's only so far."""
    others = [name for name in network_runtimes() if name != REFERENCE]
    if len(others) == len(network_runtimes()):
        raise FeredgeError(f"the detector network's reference runtime {REFERENCE} does not verify networks "
                           "(a feredge bug: its back-end row)")
    return (REFERENCE, *others)


@dataclass(frozen=True)
class Tolerances:
    """Limits of one parity check: raw output (per 100 of its largest value), boxes/keypoints (px), scores."""

    raw_per_100: float = RAW_ATOL_PER_100
    box_px: float = BOX_ATOL_PX
    score: float = SCORE_ATOL


FP32_TOLERANCES = Tolerances()
#: the detector at the device's own precision (OpenVINO bf16 on a bf16 CPU: 8 bits of mantissa).
#: Measured on the three photos (AMD EPYC, avx512_bf16): raw outputs within 7.4 of ~340, boxes 0.7 px,
#: keypoints 1.1 px, scores 2.8e-3, the same faces; the limits leave about 2× of that. Faces are then
#: cropped to 64² from boxes of ~100 px, where 1 px is under one input pixel.
DEVICE_TOLERANCES = Tolerances(raw_per_100=5.0, box_px=2.5, score=6e-3)
#: an fp16 file against the fp32 reference. Measured on the three photos (AMD EPYC, AVX2): ONNX
#: Runtime on the fp16 ONNX within 6.0 of raw outputs up to ~150, boxes 0.008 px, scores 4e-5;
#: OpenVINO's fp16-weight IR (computed in f32) within 0.02, boxes 6e-5 px. The bf16 limits hold both.
FP16_TOLERANCES = DEVICE_TOLERANCES
#: bundle precision → the detector network's files' precision, and their limits (see the module doc)
NETWORK_PRECISION: dict[str, str] = {"fp32": "fp32", "fp16": "fp16", "int8": "fp32"}
PRECISION_TOLERANCES: dict[str, Tolerances] = {"fp32": FP32_TOLERANCES, "fp16": FP16_TOLERANCES}
INT8_NOTE = ("the detector stays fp32 in an int8 bundle: NNCF's INT8 short-range net was slower than f32 "
             "(16.9 vs 13.4 ms for a photo's views) and left the parity limits on an AVX2 CPU without VNNI")


def _onnx_at(source: Path, path: Path, precision: str) -> dict[str, str]:
    """The packaged ONNX as it is (fp32) or converted to fp16 with float32 inputs and outputs kept, by the
    classifier's TensorRT fp16 converter; returns the manifest's record of the converter (none for fp32)."""
    if precision == "fp32":
        shutil.copyfile(source, path)
        return {}
    from feredge.export.tensorrt.fp16 import to_fp16_onnx

    return {"fp16_converter": to_fp16_onnx(source, path)}


def _openvino_ir(onnx_path: Path, staging: Path, stem: str, precision: str) -> dict[str, str]:
    from feredge.export.openvino_export import convert_to_openvino

    convert_to_openvino(onnx_path, staging / f"{stem}.xml", compress_to_fp16=precision == "fp16")
    return {"openvino_xml": f"{stem}.xml", "openvino_bin": f"{stem}.bin"}


#: runner role → how it is made from the packaged fp32 ONNX at a precision (returns runner role → file written)
CONVERTERS: dict[str, Callable[[Path, Path, str, str], dict[str, str]]] = {"openvino_xml": _openvino_ir}


def photos() -> dict[str, np.ndarray]:
    """Real one-face photos that ship in packages, BGR: the astronaut, the cameraman, Grace Hopper."""
    import skimage.data

    from feredge.calibration.reference import demo_image_path

    out = {"astronaut": read_image(demo_image_path()).image,
           "camera": cv2.cvtColor(skimage.data.camera(), cv2.COLOR_GRAY2BGR)}
    try:
        import matplotlib.cbook
    except ImportError:  # matplotlib is a dev dependency: the parity record names the photos it used
        return out
    out["grace_hopper"] = read_image(Path(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))).image
    return out


@dataclass(frozen=True)
class DetectorParity:
    runtime: str  # what ran (with OpenVINO's inference precision)
    reference: str
    photos: tuple[str, ...]
    views: int
    max_abs_raw: float
    raw_atol: float
    faces: tuple[int, ...]  # faces found per photo, by this runtime
    reference_faces: tuple[int, ...]
    max_abs_box_px: float
    max_abs_keypoint_px: float
    max_abs_score: float
    passed: bool
    reason: str = ""
    gate: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def free_spatial_dims(source: Path, destination: Path) -> Path:
    """A copy of the ONNX ``source`` whose input height and width are free dimensions (any size), and
    so its output's anchor count (ONNX Runtime warns on every call where an output outgrows its declared shape)."""
    import onnx

    model = onnx.load(str(source))
    free = [(model.graph.input[0], 2, "height"), (model.graph.input[0], 3, "width"),
            (model.graph.output[0], 1, "anchors")]
    for value, axis, name in free:
        dim = value.type.tensor_type.shape.dim[axis]
        dim.ClearField("dim_value")
        dim.dim_param = name
    onnx.save(model, str(destination))
    return destination


def detector_parity(reference: BlazeFaceDetector, other: BlazeFaceDetector, images: dict[str, np.ndarray],
                    runtime: str, limits: Tolerances = FP32_TOLERANCES) -> DetectorParity:
    """``other`` against ``reference`` on ``images``: raw outputs of every input, decoded faces. Both
    on whole levels when both run them (:meth:`BlazeFaceDetector.level_views`), else both on tiles
    (every view, with 2× tiles at least)."""
    frames = list(images.values())
    if reference.whole_levels and other.whole_levels:
        crops = [c for image in frames for c in reference.level_views(image)[0]]
        raw_ref, raw_other = (np.concatenate([r[0] for r in d.infer_levels(crops)]) for d in (reference, other))
        ref_faces, other_faces = reference.detect_levels(frames), other.detect_levels(frames)
    else:
        tiled = BlazeFaceDetector(variant=replace(reference.variant, tiles=(2,), whole_levels=False),
                                  runner=reference.runner)
        crops = [c for image in frames for c in tiled.views(image)[0]]
        raw_ref, raw_other = reference.infer(crops), other.infer(crops)
        ref_faces, other_faces = reference.detect_tiles(frames), other.detect_tiles(frames)
    max_raw = float(np.abs(raw_ref - raw_other).max())
    raw_atol = limits.raw_per_100 * max(1.0, float(np.abs(raw_ref).max()) / 100)
    box = point = score = 0.0
    reasons = []
    if max_raw > raw_atol:
        reasons.append(f"raw outputs differ by {max_raw:.3g} (atol {raw_atol:.3g})")
    for name, a, b in zip(images, ref_faces, other_faces, strict=True):
        if len(a) != len(b):
            reasons.append(f"{name}: {len(b)} faces, reference {len(a)}")
            continue
        if len(a):
            box = max(box, float(np.abs(a.boxes - b.boxes).max()))
            point = max(point, float(np.abs(a.keypoints - b.keypoints).max()))
            score = max(score, float(np.abs(a.scores - b.scores).max()))
    if box > limits.box_px or point > limits.box_px:
        reasons.append(f"boxes/keypoints differ by up to {max(box, point):.3g} px (limit {limits.box_px})")
    if score > limits.score:
        reasons.append(f"scores differ by {score:.3g} (limit {limits.score})")
    return DetectorParity(runtime, REFERENCE, tuple(images), len(crops), max_raw, raw_atol,
                          tuple(len(f) for f in other_faces), tuple(len(f) for f in ref_faces), box, point, score,
                          not reasons, "; ".join(reasons))


def add_detector_network(ctx: ExportContext, name: str) -> None:
    """Put BlazeFace variant ``name``'s network into the staged bundle (files, conversions, parity, entry)."""
    from feredge.export.trt_onnx_check import SOURCE, check_onnx

    try:
        variant = BLAZEFACE_SPECS[name]
    except KeyError:
        raise FeredgeError(f"no BlazeFace detector named {name!r}; known: {', '.join(sorted(BLAZEFACE_SPECS))}") \
            from None
    source = models_dir() / variant.model
    provenance = json.loads((models_dir() / "PROVENANCE.json").read_text(encoding="utf-8"))
    record = next(m for m in provenance["models"].values() if m["file"] == variant.model)
    if sha256_file(source) != record["sha256"]:
        raise FeredgeError(f"{source}: does not match its sha256 in PROVENANCE.json (modified asset?)")
    stem = f"detector_{Path(variant.model).stem}"
    precision = NETWORK_PRECISION[ctx.options.precision]
    files = {"onnx": f"{stem}.onnx"}
    converter = _onnx_at(source, ctx.staging / files["onnx"], precision)
    target_roles = ctx.target.network_roles if ctx.target is not None else ("onnx",)
    for role in target_roles:
        if role != "onnx":
            files.update(CONVERTERS[role](source, ctx.staging, stem, precision))
    for role, file in files.items():
        ctx.add_file(file, network_file_role(ROLE, role), precision=precision)
    images = photos()
    reference = BlazeFaceDetector(variant=variant, runner=runner_class(REFERENCE)(source, threads=1))
    # the variant on this network that runs whole levels (the default detector on the short-range net): its
    # path is checked too, against ONNX Runtime at free height and width
    levels_variant = next((v for v in BLAZEFACE_SPECS.values()
                           if v.whole_levels and v.tiles and v.same_network(variant)), None)
    levels_reference: BlazeFaceDetector | None = None
    parity = []
    runtimes = declared_runtimes()
    try:
        for runtime in runtimes if precision != "fp32" else runtimes[1:]:
            cls = runner_class(runtime)
            role = next(r for r in runtime_info(runtime).bundle_roles if r in files)
            # the file's own precision, then the options the detector really runs with (OpenVINO: the device's)
            checks = [({"precision": precision}, PRECISION_TOLERANCES[precision])]
            if RUNNER_OPTIONS.get(runtime):
                checks.append((runner_options(runtime, {"precision": precision}), DEVICE_TOLERANCES))
            ran_as: set[str] = set()
            for options, limits in checks:
                runner = cls(ctx.staging / files[role], threads=1, **options)
                other = BlazeFaceDetector(variant=variant, runner=runner)
                ran = runtime if "inference_precision" not in runner.settings else \
                    f"{runtime} ({runner.settings['inference_precision']})"
                ran += "" if precision == "fp32" else f", {precision} file"
                if ran in ran_as:  # the device's precision is f32 here: already checked at the fp32 limits
                    other.runner.deactivate()
                    continue
                ran_as.add(ran)
                results = [detector_parity(reference, other, images, ran, limits)]
                if levels_variant is not None and runner.reshapes:
                    if levels_reference is None:
                        levels_reference = BlazeFaceDetector(variant=levels_variant, runner=runner_class(REFERENCE)(
                            free_spatial_dims(source, ctx.scratch("feredge-detector-") / source.name), threads=1))
                    on_levels = BlazeFaceDetector(variant=levels_variant, runner=runner)
                    results.append(detector_parity(levels_reference, on_levels, images,
                                                   f"{ran}, whole levels ({levels_variant.name})", limits))
                other.runner.deactivate()
                for result in results:
                    parity.append({**result.to_dict(), "file": files[role], "options": options,
                                   "limits": asdict(limits)})
                    if not result.passed:
                        raise FeredgeError(f"detector network parity failed in {result.runtime}: {result.reason}")
    finally:  # the runners closed and the free-size ONNX copy removed, also when a check failed
        reference.runner.deactivate()
        if levels_reference is not None:
            levels_reference.runner.deactivate()
        ctx.remove_scratch()
    findings = [str(f) for f in check_onnx(ctx.staging / files["onnx"])]
    anchors = variant.anchors.centres(variant.input_size)
    network = Network(
        role=ROLE, kind="blazeface", spec=variant.to_dict(), files=files,
        input={"name": "input", "shape": [None, 3, variant.input_size, variant.input_size], "dtype": "float32",
               "layout": "NCHW", "color": "RGB", "scale": "x / 127.5 - 1", "max_batch": None},
        output={"name": "detections", "shape": [None, len(anchors), 17]},
        parity=tuple(parity), runtimes=runtimes)
    note = {"precision_note": INT8_NOTE} if ctx.options.precision == "int8" else {}
    ctx.networks[ROLE] = {**network.to_manifest(), "precision": precision, **converter, **note,
                          "source": {"asset": f"feredge/assets/blazeface/{variant.model}", "sha256": record["sha256"],
                                     "converted_from": record["source_file"],
                                     "check_vs_tflite": record["check_vs_tflite"]},
                          "tensorrt_onnx_check": {"findings": findings, "rules": SOURCE}}
