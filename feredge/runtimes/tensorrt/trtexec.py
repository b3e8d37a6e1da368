"""The ``trtexec`` command line equivalent to a build plan, for users who build by hand.

TensorRT 10 takes ``--fp16``/``--int8`` (and ``--calib=<cache>`` for implicit INT8, a cache that
``feredge build`` writes); TensorRT 11 removed those flags: precision comes from the ONNX's
types and Q/DQ nodes, so its line only names the ONNX, shapes, workspace and timing cache.
"""

from __future__ import annotations

import shlex

from feredge.runtimes.tensorrt.plan import BuildPlan, TrtVariant

ENGINE_NAME = "model.engine"
TIMING_CACHE_NAME = "timing.cache"
CALIBRATION_CACHE_NAME = "calibration.cache"


def _dims(shape: tuple[int, ...]) -> str:
    return "x".join(str(d) for d in shape)


def trtexec_command(plan: BuildPlan, major: int, *, engine: str = ENGINE_NAME,
                    timing_cache: str = TIMING_CACHE_NAME, calibration_cache: str = CALIBRATION_CACHE_NAME) -> str:
    """One shell line; raises :class:`FeredgeError` when this major cannot build the plan."""
    variant: TrtVariant = plan.variant(major)
    low, opt, high = plan.profile.shapes(plan.input_shape)
    name = plan.input_name
    args = ["trtexec", f"--onnx={variant.onnx}", f"--saveEngine={engine}",
            f"--minShapes={name}:{_dims(low)}", f"--optShapes={name}:{_dims(opt)}",
            f"--maxShapes={name}:{_dims(high)}", f"--memPoolSize=workspace:{plan.workspace_mb}M"]
    if plan.timing_cache:
        args.append(f"--timingCacheFile={timing_cache}")
    if major < 11:
        if variant.strongly_typed:
            args.append("--stronglyTyped")
        args += [f"--{flag.lower()}" for flag in variant.flags]
        if variant.calibration is not None:
            args.append(f"--calib={calibration_cache}")
    return shlex.join(args)


def trtexec_commands(plan: BuildPlan) -> dict[str, str]:
    """``{"10": line, "11": line}``; a major that cannot build the plan maps to its reason."""
    from feredge.errors import FeredgeError

    lines: dict[str, str] = {}
    for major in sorted(plan.variants):
        try:
            lines[str(major)] = trtexec_command(plan, major)
        except FeredgeError as exc:
            lines[str(major)] = f"# not buildable: {exc}"
    return lines
