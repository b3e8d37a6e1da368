"""Building engines with the local TensorRT: at export when it is there, else on the device.

One code path for TensorRT 10 and 11, chosen by the major version at run time: 11 is strongly
typed only (no FP16/INT8 flags, no calibrators — precision is in the ONNX); 10 takes the
plan's builder flags and, for implicit INT8, an entropy calibrator. Every build reads and
updates a timing cache stored next to the engine, so rebuilds on the same device are fast.
Engines go into the bundle under their :class:`EngineKey` and are recorded in the manifest.
TensorRT works on scratch copies of the caches; a finished build's files are renamed into place
whole, engine first, and only then listed, so a failed or killed build never leaves a truncated
engine (or cache) under a name the manifest lists, nor an unlisted file the bundle would refuse.
"""

from __future__ import annotations

import importlib.util
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from feredge.errors import FeredgeError, MissingBackendError
from feredge.fileio import write_bytes_atomic
from feredge.runtimes.tensorrt.engine_key import (
    CALIBRATION_CACHE_ROLE,
    ENGINE_ROLE,
    TIMING_CACHE_ROLE,
    EngineKey,
)
from feredge.runtimes.tensorrt.plan import BuildPlan, plan_from_manifest
from feredge.runtimes.tensorrt.trtexec import CALIBRATION_CACHE_NAME, TIMING_CACHE_NAME

if TYPE_CHECKING:
    from feredge.bundle import Bundle

TENSORRT_INSTALL = ("TensorRT is not installed: on Jetson use JetPack's TensorRT (python3-libnvinfer); on x86 "
                    "pip install tensorrt --extra-index-url https://pypi.nvidia.com")


def trt_major(version: str) -> int:
    return int(version.split(".")[0])


@dataclass(frozen=True)
class LocalTensorRT:
    version: str
    key: EngineKey
    device: str

    @property
    def major(self) -> int:
        return trt_major(self.version)


def probe_tensorrt() -> tuple[LocalTensorRT | None, str]:
    """The local TensorRT and GPU, or None and why not (never raises for a missing piece)."""
    if importlib.util.find_spec("tensorrt") is None:
        return None, "TensorRT is not installed on this machine"
    from feredge.runtimes.tensorrt import cuda

    try:
        if cuda.gpu_count() < 1:
            return None, "no CUDA GPU is visible on this machine"
        import tensorrt as trt

        capability = cuda.compute_capability(0)
        return LocalTensorRT(trt.__version__, EngineKey.of(capability, trt.__version__), cuda.device_name(0)), ""
    except MissingBackendError as exc:
        return None, str(exc)


def require_tensorrt() -> LocalTensorRT:
    local, reason = probe_tensorrt()
    if local is None:
        raise MissingBackendError(f"cannot build a TensorRT engine: {reason}"
                                  + ("" if "cuda-python" in reason or "GPU" in reason else f" ({TENSORRT_INSTALL})"))
    return local


def build_serialized_engine(onnx_path: Path, plan: BuildPlan, *, timing_cache: Path | None = None,
                            calibration: np.ndarray | None = None, calibration_cache: Path | None = None,
                            log: Callable[[str], None] | None = None) -> bytes:
    """Parse ``onnx_path`` and build an engine for the running TensorRT; update ``timing_cache``."""
    import tensorrt as trt

    say = log or (lambda _text: None)
    major = trt_major(trt.__version__)
    variant = plan.variant(major)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if variant.strongly_typed and major < 11:  # 11: strongly typed is the only mode, the flag is implied
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise FeredgeError(f"TensorRT {trt.__version__} cannot parse {onnx_path.name}: "
                           f"{errors[0].splitlines()[0] if errors else 'unknown error'}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_mb << 20)
    if major < 11:
        for flag in variant.flags:
            config.set_flag(getattr(trt.BuilderFlag, flag))
    if plan.precision == "fp32" and hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # on by default for Ampere+: fp32 parity means fp32
    low, opt, high = plan.profile.shapes(plan.input_shape)
    profile = builder.create_optimization_profile()
    profile.set_shape(plan.input_name, trt.Dims(list(low)), trt.Dims(list(opt)), trt.Dims(list(high)))
    config.add_optimization_profile(profile)
    calibrator: Any = None
    if variant.calibration is not None and major < 11:
        if calibration is None or calibration_cache is None:
            raise FeredgeError("this INT8 plan calibrates on the device but the bundle has no calibration data")
        from feredge.runtimes.tensorrt.calibrator import calibration_batches, make_entropy_calibrator

        size = variant.calibration.batch_size
        calibrator = make_entropy_calibrator(calibration_batches(calibration, size), batch_size=size,
                                             cache_path=calibration_cache)
        fixed = trt.Dims([size, *plan.input_shape])
        calib_profile = builder.create_optimization_profile()
        calib_profile.set_shape(plan.input_name, fixed, fixed, fixed)
        config.set_calibration_profile(calib_profile)
        config.int8_calibrator = calibrator
    cache_bytes = timing_cache.read_bytes() if timing_cache is not None and timing_cache.is_file() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, False)
    say(f"building the TensorRT {trt.__version__} engine ({plan.precision}, batch "
        f"{plan.profile.min}/{plan.profile.opt}/{plan.profile.max}); this can take minutes")
    start = time.perf_counter()
    try:
        serialized = builder.build_serialized_network(network, config)
    finally:
        if calibrator is not None:
            calibrator.free()
    if serialized is None:
        raise FeredgeError(f"TensorRT {trt.__version__} failed to build the engine (see its log above)")
    if timing_cache is not None:
        write_bytes_atomic(timing_cache, bytes(memoryview(config.get_timing_cache().serialize())))
    say(f"built in {time.perf_counter() - start:.0f} s")
    return bytes(memoryview(serialized))


@dataclass(frozen=True)
class BuiltEngine:
    key: EngineKey
    engine: str  # bundle-relative file names
    timing_cache: str | None
    calibration_cache: str | None


def build_into_directory(root: Path, manifest: dict[str, Any], local: LocalTensorRT,
                         log: Callable[[str], None] | None = None) -> BuiltEngine:
    """Build the manifest's plan under ``root/engines/<key>/`` (a bundle or a staging directory).

    TensorRT reads and writes its timing and calibration caches in a scratch directory, not in
    ``root``: a build takes minutes and the calibrator writes its cache half-way, so a build that
    fails or is killed leaves ``root`` as it was (a bundle refuses unlisted files and stale hashes).
    Only a finished build is installed, engine first, each file renamed into place whole.
    """
    from feredge.bundle import safe_member

    plan = plan_from_manifest(manifest)
    variant = plan.variant(local.major)
    assert variant.onnx is not None
    key = local.key
    directory = key.directory()
    timing = f"{directory}/{TIMING_CACHE_NAME}" if plan.timing_cache else None
    calibration = calib_cache = None
    if variant.calibration is not None and local.major < 11:
        calibration = np.load(safe_member(root, variant.calibration.data), allow_pickle=False)
        calib_cache = f"{directory}/{CALIBRATION_CACHE_NAME}"
    with tempfile.TemporaryDirectory(prefix="feredge-trt-") as tmp:
        scratch: dict[str, Path] = {}
        for name in (n for n in (timing, calib_cache) if n):
            scratch[name] = Path(tmp) / PurePosixPath(name).name
            if (existing := safe_member(root, name)).is_file():  # a rebuild starts from this device's caches
                shutil.copyfile(existing, scratch[name])
        blob = build_serialized_engine(
            safe_member(root, variant.onnx), plan, timing_cache=scratch.get(timing) if timing else None,
            calibration=calibration, calibration_cache=scratch.get(calib_cache) if calib_cache else None, log=log)
        # a rebuild (--force, a new TensorRT point release) replaces an engine the manifest already
        # lists: the old file stays whole until the new one is
        write_bytes_atomic(root / key.engine_path(), blob)
        installed = {name for name, path in scratch.items() if path.is_file()}
        for name in sorted(installed):
            write_bytes_atomic(root / name, scratch[name].read_bytes())
    return BuiltEngine(key, key.engine_path(), timing if timing in installed else None,
                       calib_cache if calib_cache in installed else None)


def build_into_bundle(bundle: Bundle, local: LocalTensorRT | None = None,
                      log: Callable[[str], None] | None = None) -> BuiltEngine:
    """Build for this device and record the engine (role ``trt_engine``, with its key) in the bundle."""
    local = local or require_tensorrt()
    try:
        built = build_into_directory(bundle.root, bundle.manifest, local, log)
    except PermissionError as exc:
        raise FeredgeError(f"{bundle.root}: cannot write the engine into the bundle ({exc.strerror}); "
                           f"run `feredge build` where the bundle is writable") from None
    record_built(bundle, built, local)
    return built


def record_built(bundle: Bundle, built: BuiltEngine, local: LocalTensorRT) -> None:
    extra = {"key": str(built.key), "tensorrt": local.version, "sm": built.key.sm, "device": local.device}
    bundle.add_file(built.engine, ENGINE_ROLE, **extra)
    if built.timing_cache:
        bundle.add_file(built.timing_cache, TIMING_CACHE_ROLE, key=str(built.key))
    if built.calibration_cache:
        bundle.add_file(built.calibration_cache, CALIBRATION_CACHE_ROLE, key=str(built.key))
    section = dict(bundle.manifest.get("tensorrt", {}))
    engines = dict(section.get("engines", {}))
    engines[str(built.key)] = built.engine
    section.update(status="built", engines=engines)
    bundle.update_manifest(tensorrt=section)
