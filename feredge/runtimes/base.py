"""One interface for every back end, modelled on Polygraphy's ``BaseRunner``.

``activate`` loads (the expensive part, done once), ``infer`` runs one NCHW float32 batch and
returns logits, ``deactivate`` frees. A runner is a context manager. Every ``infer`` checks the
batch against the model's input metadata (rank, channels, size, dtype, batch limit) so a wrong
spec fails with a message instead of a back-end stack trace, and records its wall time, so
benchmarks and pipelines read timings from one place. ``settings`` records what actually ran
(threads, precision): benchmarks report it instead of what was asked for.

A runner made from a bundle (:meth:`Runner.from_bundle`, which every runtime goes through)
checks the bundle's members against each other when it activates: the spec's input shape
against the model's, and the number of labels against the model's output width (one probe
batch through the model, so runtimes without output metadata — torch — and dynamic shapes are
checked the same way). A mismatch is one :class:`~feredge.bundle.BundleError` at load, never an
IndexError on the first face. Activation from a bundle therefore includes one batch-1 inference
(it doubles as the first-inference warm-up; a benchmark's load time includes it).

``timings`` is a bounded window (the last :data:`TIMINGS_WINDOW` calls): a day of video at 30
inferences/s would otherwise hold ~80 MB of floats. :meth:`Runner.reset_timings` clears it and
can widen it for a benchmark that times more calls than that.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from feredge.backends import Backend, runtime
from feredge.errors import FeredgeError

#: how many of the latest ``infer`` wall times a runner keeps (8 bytes each plus deque overhead)
TIMINGS_WINDOW = 10_000


@dataclass(frozen=True)
class BundleContract:
    """What the bundle's manifest promises about its model, checked against the model at activation."""

    root: Path
    input_shape: tuple[int, ...]  # (channels, height, width) from the PreprocessSpec
    classes: int  # len(labels); for a network other than the classifier, its output's last axis
    network: str = "classifier"
    #: one sample's output shape (no batch axis) the manifest declares; None: (classes,) — the classifier's logits
    output_shape: tuple[int, ...] | None = None


def check_threads(threads: object) -> int | None:
    """``threads`` if it is None or a positive int; a one-line error otherwise (``--threads -1``)."""
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise FeredgeError(f"threads must be a positive integer (or omitted for the runtime's default), "
                           f"got {threads!r}")
    return threads


@dataclass(frozen=True)
class TensorMeta:
    name: str
    shape: tuple[int | None, ...]  # None marks a dynamic axis
    dtype: str = "float32"

    def check(self, batch: np.ndarray, max_batch: int | None = None) -> None:
        if batch.dtype != np.dtype(self.dtype):
            raise FeredgeError(f"input {self.name}: expected {self.dtype}, got {batch.dtype}")
        if batch.ndim != len(self.shape):
            raise FeredgeError(f"input {self.name}: expected rank {len(self.shape)}, got shape {batch.shape}")
        for axis, (want, got) in enumerate(zip(self.shape, batch.shape, strict=True)):
            if want is not None and want != got:
                raise FeredgeError(
                    f"input {self.name}: axis {axis} must be {want}, got shape {tuple(batch.shape)}"
                )
        if batch.shape[0] < 1:
            raise FeredgeError(f"input {self.name}: empty batch")
        if max_batch is not None and batch.shape[0] > max_batch:
            raise FeredgeError(f"input {self.name}: batch {batch.shape[0]} exceeds the model's max {max_batch}")


@dataclass(frozen=True)
class ImageInput:
    """uint8 BGR pixels (N, H, W, 3) as a network's float32 input (N, 3, H, W): ``(x - mean) / scale``
    per channel, in RGB order when ``rgb``. What :meth:`Runner.at_shape` can take instead of a batch
    (OpenVINO folds it into the graph; elsewhere :meth:`to_network` does it in numpy)."""

    mean: float
    scale: float
    rgb: bool = True

    def to_network(self, pixels: np.ndarray) -> np.ndarray:
        """One strided copy (colour order and layout) and two in-place steps: x / scale - mean / scale."""
        planes = pixels[..., ::-1] if self.rgb else pixels
        batch = np.ascontiguousarray(planes.transpose(0, 3, 1, 2), dtype=np.float32)
        batch *= np.float32(1.0 / self.scale)
        batch -= np.float32(self.mean / self.scale)
        return batch


class ShapedCall(ABC):
    """One input shape of a network (see :meth:`Runner.at_shape`): ``infer`` takes exactly that shape and
    dtype — (N, C, H, W) float32, or with an :class:`ImageInput` (N, H, W, C) uint8 pixels."""

    def __init__(self, shape: tuple[int, ...], image: ImageInput | None) -> None:
        self.image = image
        self.shape = (shape[0], shape[2], shape[3], shape[1]) if image is not None else shape
        self.dtype = np.dtype(np.uint8 if image is not None else np.float32)

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if batch.shape != self.shape or batch.dtype != self.dtype:
            raise FeredgeError(f"input {batch.dtype}{list(batch.shape)} is not the compiled "
                               f"{self.dtype}{list(self.shape)}")
        return self._infer(np.ascontiguousarray(batch))

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray: ...


def check_device(device: str | None, runner: type[Runner]) -> str:
    """``device`` lower-cased, or the runner's default (the first of its row's devices); one the runner
    cannot take is an error."""
    devices = runner.row().devices
    if device is None:
        return devices[0]
    key = str(device).lower()
    if key not in devices:
        raise FeredgeError(f"runtime {runner.name} runs on {', '.join(devices)}, not {device!r}")
    return key


class Runner(ABC):
    """Base class of the back-end adapters; subclasses implement the three ``_`` hooks.

    A runner's facts (the bundle roles it reads, the devices it takes) are its back-end row's
    (:data:`feredge.backends.BACKENDS`, found by :attr:`name`), not class attributes of its own."""

    #: the back end's name: the key of its row
    name: ClassVar[str]

    def __init__(self, model_path: str | Path, *, threads: int | None = None, max_batch: int | None = None,
                 device: str | None = None, **options: Any) -> None:
        self.model_path = Path(model_path)
        self.device = check_device(device, type(self))
        self.threads = check_threads(threads)
        self.max_batch = max_batch
        self.options = options
        self.input_meta: TensorMeta | None = None
        self.settings: dict[str, Any] = {}
        self.timings: deque[float] = deque(maxlen=TIMINGS_WINDOW)
        self.contract: BundleContract | None = None  # set by from_bundle
        self.is_active = False
        self._checked: tuple[tuple[int, ...], np.dtype] | None = None  # the last input shape/dtype accepted

    @classmethod
    def row(cls) -> Backend:
        """This runner's back-end row (an unregistered name is an error)."""
        return runtime(cls.name)

    @classmethod
    def from_bundle(cls, bundle: Any, network: str = "classifier", **options: Any) -> Runner:
        """A runner for one network of ``bundle`` (the classifier unless ``network`` names another role,
        e.g. ``detector``), from the first of its row's bundle roles the network has a file for."""
        roles = cls.row().bundle_roles
        if network == "classifier":
            for role in roles:
                if bundle.has(role):
                    options.setdefault("max_batch", bundle.max_batch)
                    # fp16/int8 files keep float32 I/O: the precision a runner reports comes from the bundle's
                    # record of the file it loads (an INT8 OpenVINO bundle's model.onnx is the fp32 ONNX)
                    options.setdefault("precision", bundle.role_precision(role))
                    runner = cls._from_bundle_file(bundle, role, **options)
                    runner.contract = BundleContract(Path(bundle.root), tuple(bundle.spec.input_shape),
                                                     len(bundle.labels))
                    return runner
            raise FeredgeError(
                f"{bundle.root}: no file for runtime {cls.name} (needs one of: {', '.join(roles)})"
            )
        net = bundle.network(network)
        if net.runtimes and cls.name not in net.runtimes:
            raise FeredgeError(f"{bundle.root}: the {network} network was verified for {', '.join(net.runtimes)}, "
                               f"not {cls.name}")
        for role in roles:
            if net.has(role):
                options.setdefault("max_batch", net.max_batch)
                options.setdefault("precision", bundle.file_precision_of(net.files[role]))
                runner = cls._from_network_file(bundle, net, role, **options)
                out = net.output_shape
                runner.contract = BundleContract(Path(bundle.root), net.input_shape, out[-1] if out else 0,
                                                 network=network, output_shape=out)
                return runner
        raise FeredgeError(f"{bundle.root}: the {network} network has no file for runtime {cls.name} "
                           f"(needs one of: {', '.join(roles)}; has: {', '.join(sorted(net.files))})")

    @classmethod
    def _from_bundle_file(cls, bundle: Any, role: str, **options: Any) -> Runner:
        return cls(bundle.path(role), **options)

    @classmethod
    def _from_network_file(cls, bundle: Any, network: Any, role: str, **options: Any) -> Runner:
        """A runner for a network other than the classifier (a plain model file: no weights to rebuild)."""
        return cls(bundle.network_path(network, role), **options)

    def activate(self) -> Runner:
        if not self.is_active:
            self._checked = None
            try:
                self.input_meta = self._activate()
            except FeredgeError:
                raise
            except Exception as exc:  # a back end rejecting the file: report it in one line
                reason = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else exc.__class__.__name__
                raise FeredgeError(f"{self.model_path}: {self.name} cannot load the model ({reason})") from None
            try:
                self._check_contract()
            except BaseException:
                self._deactivate()
                raise
            self.is_active = True
        return self

    def _check_contract(self) -> None:
        """The bundle's spec and labels against the model that was just loaded (see the module doc)."""
        from feredge.bundle import BundleError

        contract, meta = self.contract, self.input_meta
        if contract is None or meta is None:
            return
        expected = (None, *contract.input_shape)
        what = "the spec's input (channels, height, width)" if contract.network == "classifier" else \
            f"the {contract.network} network's declared input"
        if len(meta.shape) != len(expected) or any(
                have is not None and have != want for have, want in zip(meta.shape[1:], expected[1:], strict=True)):
            raise BundleError(f"{contract.root}: {what} {contract.input_shape} "
                              f"does not match the model's input {_shape(meta.shape)}; the bundle's members "
                              "disagree, re-export it")
        probe = np.zeros((1, *contract.input_shape), dtype=meta.dtype)
        try:
            out = np.asarray(self._infer(probe))
        except FeredgeError:
            raise
        except Exception as exc:  # the back end refusing the spec's shape (a dynamic axis it cannot take)
            reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else exc.__class__.__name__
            raise BundleError(f"{contract.root}: the model cannot run the spec's input {contract.input_shape} "
                              f"({reason}); re-export the bundle") from None
        if contract.output_shape is not None:
            if out.shape[1:] != contract.output_shape:
                raise BundleError(f"{contract.root}: the {contract.network} network's manifest declares output "
                                  f"{_shape((None, *contract.output_shape))} but the model outputs "
                                  f"{_shape(out.shape)}; re-export the bundle")
            return
        if out.ndim != 2 or out.shape != (1, contract.classes):
            width = out.shape[-1] if out.ndim else "no"
            raise BundleError(f"{contract.root}: the manifest lists {contract.classes} labels but the model "
                              f"outputs {width} values per face (output shape {_shape(out.shape)}); "
                              "re-export the bundle")

    def reset_timings(self, window: int | None = None) -> None:
        """Forget the recorded timings; ``window`` (if given) becomes the number of calls kept."""
        if window is not None and (isinstance(window, bool) or not isinstance(window, int) or window < 1):
            raise FeredgeError(f"timings window must be a positive integer, got {window!r}")
        self.timings = deque(maxlen=window or self.timings.maxlen or TIMINGS_WINDOW)

    def deactivate(self) -> None:
        if self.is_active:
            self._deactivate()
            self.is_active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        if not self.is_active:
            raise FeredgeError(f"{self.name} runner used before activate()")
        assert self.input_meta is not None
        if (batch.shape, batch.dtype) != self._checked:  # a stream repeats one shape: check it once
            self.input_meta.check(batch, self.max_batch)
            self._checked = (batch.shape, batch.dtype)
        start = time.perf_counter()
        logits = self._infer(np.ascontiguousarray(batch))
        self.timings.append(time.perf_counter() - start)
        return logits

    @property
    def reshapes(self) -> bool:
        """Whether :meth:`at_shape` can run this network at input shapes other than its file's."""
        return False

    def at_shape(self, shape: tuple[int, ...], *, image: ImageInput | None = None) -> ShapedCall:
        """The network at the static input ``shape`` (N, C, H, W) — a fully convolutional detector on a whole
        pyramid level — where :attr:`reshapes`; with ``image`` the call takes (N, H, W, 3) uint8 pixels."""
        if not self.is_active:
            raise FeredgeError(f"{self.name} runner used before activate()")
        if not self.reshapes:
            raise FeredgeError(f"{self.name}: {self.model_path.name} runs only at its own input shape")
        return self._at_shape(tuple(int(v) for v in shape), image)

    def _at_shape(self, shape: tuple[int, ...], image: ImageInput | None) -> ShapedCall:
        raise NotImplementedError  # runners whose reshapes is True give their own

    def infer_all(self, batch: np.ndarray, chunk: int = 16) -> np.ndarray:
        """Logits for a batch of any size, run in chunks of ``chunk`` (at most the model's max batch)."""
        size = min(chunk, self.max_batch) if self.max_batch else chunk
        return np.concatenate([self.infer(batch[i : i + size]) for i in range(0, len(batch), size)])

    @property
    def last_inference_time(self) -> float | None:
        return self.timings[-1] if self.timings else None

    @abstractmethod
    def _activate(self) -> TensorMeta: ...

    @abstractmethod
    def _infer(self, batch: np.ndarray) -> np.ndarray: ...

    def _deactivate(self) -> None:  # noqa: B027  (optional hook)
        pass


def _shape(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("batch" if i == 0 and d is None else "?" if d is None else str(d)
                           for i, d in enumerate(shape)) + ")"
