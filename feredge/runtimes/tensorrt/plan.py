"""The build plan: everything a device needs to turn the bundle's ONNX into an engine.

Recorded in the manifest under ``tensorrt`` at export and read back by ``feredge build`` and the
runner. TensorRT 10 and 11 need different inputs for the same precision (11 is strongly typed
only: FP16 is an fp16 ONNX, INT8 a Q/DQ ONNX; 10 keeps the FP16/INT8 builder flags and the
entropy calibrator), so the plan holds one :class:`TrtVariant` per major version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from feredge.errors import FeredgeError
from feredge.runtimes.tensorrt.profile import BatchProfile, batch_profile

SUPPORTED_MAJORS = (10, 11)
#: the builder's workspace memory pool when the export gave none (``--workspace-mb``)
DEFAULT_WORKSPACE_MB = 1024


@dataclass(frozen=True)
class Calibration:
    """TensorRT 10 implicit INT8: entropy calibration on the device from data shipped in the bundle."""

    data: str  # bundle file: float32 NCHW array of calibration faces
    batch_size: int = 8
    algorithm: str = "entropy2"  # IInt8EntropyCalibrator2

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data, "batch_size": self.batch_size, "algorithm": self.algorithm}


@dataclass(frozen=True)
class TrtVariant:
    """How one TensorRT major builds this bundle, or why it cannot (``unsupported``)."""

    onnx: str | None
    flags: tuple[str, ...] = ()  # BuilderFlag names: FP16, INT8 (TensorRT 10 only)
    strongly_typed: bool = False
    calibration: Calibration | None = None
    unsupported: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"onnx": self.onnx, "flags": list(self.flags), "strongly_typed": self.strongly_typed}
        if self.calibration is not None:
            out["calibration"] = self.calibration.to_dict()
        if self.unsupported:
            out["unsupported"] = self.unsupported
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrtVariant:
        calib = data.get("calibration")
        return cls(data.get("onnx"), tuple(data.get("flags", ())), bool(data.get("strongly_typed", False)),
                   Calibration(**calib) if calib else None, str(data.get("unsupported", "")))


@dataclass(frozen=True)
class BuildPlan:
    precision: str
    input_name: str
    input_shape: tuple[int, ...]  # per sample, e.g. (1, 64, 64)
    profile: BatchProfile
    variants: dict[int, TrtVariant]
    workspace_mb: int = DEFAULT_WORKSPACE_MB
    timing_cache: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def variant(self, major: int) -> TrtVariant:
        """The variant for a running TensorRT major; a newer major than known uses the newest plan."""
        if major < min(SUPPORTED_MAJORS):
            raise FeredgeError(f"TensorRT {major} is not supported (feredge builds with TensorRT "
                               f"{' or '.join(map(str, SUPPORTED_MAJORS))})")
        known = max(m for m in self.variants if m <= major) if any(m <= major for m in self.variants) else None
        if known is None:
            raise FeredgeError(f"the bundle has no TensorRT {major} build plan")
        chosen = self.variants[known]
        if chosen.unsupported or chosen.onnx is None:
            raise FeredgeError(f"this {self.precision} bundle cannot be built with TensorRT {major}: "
                               f"{chosen.unsupported or 'no ONNX for it'}")
        return chosen

    def to_dict(self) -> dict[str, Any]:
        return {"precision": self.precision, "input": self.input_name, "input_shape": list(self.input_shape),
                "profile": self.profile.to_dict(),
                "shapes": {k: list(v) for k, v in zip(("min", "opt", "max"), self.profile.shapes(self.input_shape),
                                                      strict=True)},
                "workspace_mb": self.workspace_mb, "timing_cache": self.timing_cache,
                "variants": {str(k): v.to_dict() for k, v in sorted(self.variants.items())}, **self.extra}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildPlan:
        known = {"precision", "input", "input_shape", "profile", "shapes", "workspace_mb", "timing_cache", "variants"}
        return cls(str(data["precision"]), str(data.get("input", "input")), tuple(int(d) for d in data["input_shape"]),
                   BatchProfile.from_dict(data["profile"]),
                   {int(k): TrtVariant.from_dict(v) for k, v in data["variants"].items()},
                   int(data.get("workspace_mb", DEFAULT_WORKSPACE_MB)), bool(data.get("timing_cache", True)),
                   {k: v for k, v in data.items() if k not in known})


def default_variants(precision: str, onnx: str, *, fp16_onnx: str | None = None, qdq_onnx: str | None = None,
                     calibration: Calibration | None = None) -> dict[int, TrtVariant]:
    """Per-major variants for a precision, given the ONNX files the bundle carries.

    fp32: the fp32 ONNX everywhere. fp16: TensorRT 10 builds the fp32 ONNX with the FP16 flag (it
    keeps sensitive layers in fp32 itself); TensorRT 11 builds the fp16 ONNX, strongly typed.
    int8: a Q/DQ ONNX serves both (10 with INT8+FP16 flags so unquantized layers may use fp16);
    calibration data alone serves only TensorRT 10 (entropy calibrator), 11 needs Q/DQ.
    """
    if precision == "fp32":
        return {10: TrtVariant(onnx), 11: TrtVariant(onnx, strongly_typed=True)}
    if precision == "fp16":
        # without an fp16 ONNX (bundles of other targets) TensorRT 11 runs the types the ONNX has
        return {10: TrtVariant(onnx, ("FP16",)), 11: TrtVariant(fp16_onnx or onnx, strongly_typed=True)}
    if precision == "int8":
        if qdq_onnx is not None:
            return {10: TrtVariant(qdq_onnx, ("INT8", "FP16")), 11: TrtVariant(qdq_onnx, strongly_typed=True)}
        if calibration is not None:
            return {10: TrtVariant(onnx, ("INT8", "FP16"), calibration=calibration),
                    11: TrtVariant(None, strongly_typed=True,
                                   unsupported="TensorRT 11 has no calibrators; INT8 needs a Q/DQ ONNX "
                                               "(QAT checkpoint or PTQ)")}
        raise FeredgeError("INT8 needs --calib or a QAT checkpoint")
    raise FeredgeError(f"TensorRT precision must be fp32, fp16 or int8, not {precision!r}")


def plan_from_manifest(manifest: dict[str, Any]) -> BuildPlan:
    """The bundle's recorded plan, or a default one for bundles exported for another target.

    An OpenVINO or ONNX bundle still carries the verified ONNX, so a device with TensorRT can
    build from it: fp32/fp16 as above; an int8 bundle's ONNX is taken to be Q/DQ.
    """
    recorded = manifest.get("tensorrt")
    if isinstance(recorded, dict) and "variants" in recorded:
        return BuildPlan.from_dict(recorded)
    roles = {entry.get("role"): name for name, entry in manifest["files"].items() if isinstance(entry, dict)}
    if "onnx" not in roles:
        raise FeredgeError("the bundle has no ONNX file to build a TensorRT engine from")
    precision = str(manifest.get("precision", "fp32"))
    onnx = roles["onnx"]
    variants = default_variants(precision, onnx, fp16_onnx=roles.get("trt_onnx"),
                                qdq_onnx=onnx if precision == "int8" else None)
    spec_input = manifest.get("input", {})
    shape = tuple(int(d) for d in spec_input.get("shape", [None, 1, 64, 64])[1:])
    return BuildPlan(precision, str(spec_input.get("name", "input")), shape,
                     batch_profile(int(spec_input.get("max_batch", 64))), variants)
