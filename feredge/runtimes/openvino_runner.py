"""OpenVINO on the CPU.

OpenVINO picks its own inference precision (bf16 on CPUs with AVX-512 BF16 or AMX) unless told;
the runner forces ``f32`` for fp32 bundles so parity means parity, and records the precision that
actually ran. ``inference_precision="device"`` leaves the choice to OpenVINO: the face detector
runs that way (:mod:`feredge.preprocess.blazeface`), verified at the device's precision with its
own tolerances (:mod:`feredge.export.detector_network`).

:meth:`OpenVINORunner.async_queue` adds a non-blocking path for streams (video): several infer
requests in flight through ``ov.AsyncInferQueue``, each submission answered by a
:class:`concurrent.futures.Future`, so the caller decodes and detects the next frame while the
model runs. The synchronous ``infer`` is unchanged.

:meth:`OpenVINORunner.at_shape` gives the same network compiled for another static input shape (a
fully convolutional detector run on a whole pyramid level instead of on tiles; see
:class:`ShapedRequest`).

An ONNX file (a bundle without IR) is checked for external-data paths leaving its directory
before OpenVINO's ONNX front end reads it (:mod:`feredge.runtimes.onnx_external`); an IR's
``.bin`` is the file next to the ``.xml``, which a bundle must list and hash.
"""

from __future__ import annotations

from collections import OrderedDict
from concurrent.futures import Future
from typing import Any

import numpy as np

from feredge.errors import FeredgeError
from feredge.runtimes.base import ImageInput, Runner, ShapedCall, TensorMeta
from feredge.runtimes.onnx_external import check_onnx_file

#: bundle precision → OpenVINO INFERENCE_PRECISION_HINT. fp16 IR stores fp16 weights but the CPU
#: plugin computes in f32 unless asked for bf16/f16; int8 runs the quantized ops whatever the hint.
_PRECISION_HINT = {"fp32": "f32", "fp16": "f32", "int8": "f32"}
#: inputs at least this large are wrapped, not copied: a photo's 21 BlazeFace views are 4 MB, whose
#: copy took ~1 ms; below it the copy into a kept tensor is cheaper than wrapping anew per call
SHARE_INPUT_BYTES = 1 << 20

#: how many static-shape copies of a network :meth:`OpenVINORunner.at_shape` keeps (least recent dropped):
#: a video's frame size needs 1–3 (one per pyramid level), a folder of photos of mixed sizes more
SHAPED_CACHE = 12

#: the ``inference_precision`` option that sets no hint: OpenVINO's own choice for the device
DEVICE_PRECISION = "device"


def _bare_infer(request: Any) -> Any:
    """``request.infer()`` without the Python wrapper of ``openvino.InferRequest``: the compiled binding
    (``openvino._pyopenvino.InferRequest.infer``) with no inputs (they are bound tensors) and the
    outputs returned as views. Why: the wrapper dispatches the (absent) inputs and copies every output
    into an ``OVDict`` per call; on mini-Xception at batch 1 that was 2.5 % of the call (324 vs 332 µs,
    medians of 7 alternating trials of 2000 calls, AMD EPYC AVX2), and our whole call went from 1.056×
    the binding's to 1.037× (interleaved per call; the kept-shape fast path of ``_infer`` then 1.03×).
    Falls back to the wrapper where the binding has another form."""
    import functools

    try:
        from openvino import _pyopenvino

        binding = _pyopenvino.InferRequest.infer
    except (ImportError, AttributeError):
        return request.infer
    if not isinstance(request, _pyopenvino.InferRequest):
        return request.infer
    return functools.partial(binding, request, {}, True, False)  # inputs, share_outputs, decode_strings


class OpenVINORunner(Runner):
    name = "openvino"

    def _activate(self) -> TensorMeta:
        import openvino as ov

        if self.model_path.suffix.lower() == ".onnx":
            check_onnx_file(self.model_path)
        core = ov.Core()
        model = core.read_model(str(self.model_path))
        config: dict[str, Any] = {"PERFORMANCE_HINT": self.options.get("hint", "LATENCY")}
        hint = self.options.get("inference_precision") or _PRECISION_HINT.get(
            self.options.get("precision", "fp32"), "f32")
        if hint != DEVICE_PRECISION:
            config["INFERENCE_PRECISION_HINT"] = hint
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        device = self.device.upper()  # OpenVINO's names: CPU, GPU, NPU, AUTO
        if device != "AUTO" and device not in core.available_devices:
            raise FeredgeError(f"OpenVINO has no {device} device here (it has {', '.join(core.available_devices)})")
        self.compiled = core.compile_model(model, device, config)
        self._core, self._model, self._device = core, model, device
        self._precision_config = {k: v for k, v in config.items() if k == "INFERENCE_PRECISION_HINT"}
        self._shaped: OrderedDict[tuple[tuple[int, ...], ImageInput | None], ShapedRequest] = OrderedDict()
        self.request = self.compiled.create_infer_request()
        self._run = _bare_infer(self.request)
        self._tensor = ov.Tensor
        self._input: np.ndarray | None = None  # the input tensor's memory for the last batch shape
        self._output: np.ndarray | None = None  # the output bound for that shape (None: read from the request)
        self._output_batch: int | None = None  # the batch size the output was bound (or found unbindable) for
        self._bound_shape: tuple[int, ...] | None = None  # input kept and output bound for this shape: the fast path
        model_input = self.compiled.input(0)
        partial = model_input.get_partial_shape()
        shape = tuple(int(d.get_length()) if d.is_static else None for d in partial)
        self.settings = {
            "runtime": self.name,
            "version": ov.get_version(),
            "device": device,
            "inference_precision": self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name(),
            "threads": int(self.compiled.get_property("INFERENCE_NUM_THREADS")),
            "hint": str(self.compiled.get_property("PERFORMANCE_HINT")),
            "streams": int(self.compiled.get_property("NUM_STREAMS")),
        }
        return TensorMeta(model_input.get_any_name(), shape, "float32")

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        # The lowest-overhead synchronous path in OpenVINO's Python API: the batch is copied into
        # an input tensor kept for the last batch shape (re-made when the shape changes, so at most
        # one batch of memory is held), then a bare ``infer()`` and one copy of the output.
        # ``request.infer({0: batch})`` builds an input tensor, a dict and an OVDict of every output
        # per call: on mini-Xception (0.3 ms) that was 7 % over a bare ``infer()`` loop, this is
        # 3 % (measured alternating in one process; benchmark_app times the bare call in C++).
        # The output is bound the same way where its shape follows from the batch (a static shape
        # past the batch axis): then no output tensor is looked up per call, only the logits copied
        # out of our own buffer (5 µs of the 11 over a bare call, alternating, mini-Xception), and the
        # call is the compiled binding's own (:func:`_bare_infer`), not the Python wrapper's. A batch of
        # the last kept-and-bound shape (a stream's, a benchmark's) takes the first branch: one slice
        # assignment, the call, one copy (2 µs less a call than the general path, ~0.6 % at batch 1).
        if batch.shape == self._bound_shape:
            self._input[...] = batch  # type: ignore[index]
            self._run()
            return self._output.copy()  # type: ignore[union-attr]
        self._bound_shape = None
        if batch.nbytes >= SHARE_INPUT_BYTES:  # a detector's views: wrap the caller's memory, no copy
            self.request.set_input_tensor(self._tensor(batch, shared_memory=True))
            self._input = None
        elif self._input is None or self._input.shape != batch.shape:
            tensor = self._tensor(np.empty(batch.shape, np.float32))
            self.request.set_input_tensor(tensor)
            self._input = tensor.data
        if self._input is not None:
            np.copyto(self._input, batch)
        if self._output_batch != batch.shape[0]:
            self._bind_output(batch.shape[0])
        self._run()
        if self._output is not None:
            if self._input is not None:
                self._bound_shape = batch.shape
            return self._output.copy()
        return self.request.get_output_tensor(0).data.astype(np.float32)

    def _bind_output(self, batch: int) -> None:
        """Our own output buffer for ``batch`` where the shape past the batch axis is static f32, else
        none (the output is then read from the request: OpenVINO sizes it)."""
        output = self.compiled.output(0)
        partial = output.get_partial_shape()
        self._output, self._output_batch = None, batch
        if (output.get_element_type().get_type_name() == "f32" and partial.rank.is_static
                and all(d.is_static for d in list(partial)[1:])):
            self._output = np.empty((batch, *(int(d.get_length()) for d in list(partial)[1:])), np.float32)
            self.request.set_output_tensor(self._tensor(self._output, shared_memory=True))

    @property
    def reshapes(self) -> bool:
        return True

    def _at_shape(self, shape: tuple[int, ...], image: ImageInput | None) -> ShapedRequest:
        """This network compiled for the static input ``shape`` (N, C, H, W; its own request), with the
        runner's threads and precision; the last :data:`SHAPED_CACHE` are kept.
        With ``image`` the request takes (N, H, W, 3) uint8 BGR pixels and the graph converts them
        (OpenVINO's ``PrePostProcessor``: layout, colour order, ``(x - mean) / scale``), instead of a
        float32 NCHW batch made in numpy. Why static: on the BlazeFace short-range net a model compiled
        with dynamic height and width ran a photo's levels in 1.10× the time of the 21 tiles they
        replace, compiled per shape in 0.69× (alternating, AMD EPYC AVX2); a compile takes ~0.2 s."""
        key = (shape, image)
        shaped = self._shaped.pop(key, None)
        if shaped is None:
            shaped = self._compile_shape(*key)
            while len(self._shaped) >= SHAPED_CACHE:
                self._shaped.popitem(last=False)
        self._shaped[key] = shaped
        return shaped

    def _compile_shape(self, shape: tuple[int, ...], image: ImageInput | None) -> ShapedRequest:
        model = self._model.clone()
        try:
            model.reshape({0: list(shape)})
        except RuntimeError as exc:
            raise FeredgeError(f"{self.model_path.name}: cannot run at input shape {shape}: "
                               f"{str(exc).splitlines()[0]}") from None
        if image is not None:
            import openvino as ov
            from openvino.preprocess import ColorFormat, PrePostProcessor

            ppp = PrePostProcessor(model)
            ppp.input().tensor().set_element_type(ov.Type.u8).set_layout(ov.Layout("NHWC")).set_color_format(
                ColorFormat.BGR)
            ppp.input().model().set_layout(ov.Layout("NCHW"))
            steps = ppp.input().preprocess().convert_element_type(ov.Type.f32)
            if image.rgb:
                steps.convert_color(ColorFormat.RGB)
            steps.mean(image.mean).scale(image.scale)
            model = ppp.build()
        config: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, **self._precision_config}
        if self.threads:
            config["INFERENCE_NUM_THREADS"] = self.threads
        return ShapedRequest(self._core.compile_model(model, self._device, config), shape, image)

    def _deactivate(self) -> None:
        self._shaped.clear()
        del self.request
        del self.compiled

    def async_queue(self, jobs: int = 2) -> OpenVINOAsyncQueue:
        """A pool of ``jobs`` infer requests on this runner's compiled model (see the module docstring)."""
        from feredge.errors import FeredgeError

        if not self.is_active:
            raise FeredgeError(f"{self.name} runner used before activate()")
        return OpenVINOAsyncQueue(self, jobs)


class ShapedRequest(ShapedCall):
    """One compiled copy of a runner's network at a static input shape, with its own request (called
    through the compiled binding, :func:`_bare_infer`); returns the first output (a copy)."""

    def __init__(self, compiled: Any, shape: tuple[int, ...], image: ImageInput | None) -> None:
        import openvino as ov

        super().__init__(shape, image)
        self.compiled, self._tensor = compiled, ov.Tensor
        self.request = compiled.create_infer_request()
        self._run = _bare_infer(self.request)

    def _infer(self, batch: np.ndarray) -> np.ndarray:
        self.request.set_input_tensor(self._tensor(batch, shared_memory=True))
        self._run()
        return np.array(self.request.get_output_tensor(0).data, dtype=np.float32)


class OpenVINOAsyncQueue:
    """``submit(batch) -> Future[logits]`` over ``ov.AsyncInferQueue``.

    ``submit`` blocks only while all ``jobs`` requests are busy — the natural back-pressure that
    keeps a stream from queueing unbounded work. Each request's output is copied out in the
    callback (the request's buffer is reused by the next job). Batches are checked against the
    model's input metadata as in :meth:`Runner.infer`.
    """

    def __init__(self, runner: OpenVINORunner, jobs: int = 2) -> None:
        import openvino as ov

        self.runner = runner
        self.output = runner.compiled.output(0)
        self.queue = ov.AsyncInferQueue(runner.compiled, max(1, jobs))
        self.queue.set_callback(self._done)

    def submit(self, batch: np.ndarray, *, share: bool = False) -> Future[np.ndarray]:
        """``share``: the request reads ``batch``'s memory instead of a copy — the caller keeps it
        alive and unchanged until the future is done (the detector's views, 4 MB for a photo)."""
        assert self.runner.input_meta is not None
        batch = np.ascontiguousarray(batch)
        self.runner.input_meta.check(batch, self.runner.max_batch)
        future: Future[np.ndarray] = Future()
        future.set_running_or_notify_cancel()
        self.queue.start_async({0: batch}, future, share_inputs=share)
        return future

    def _done(self, request: Any, future: Future[np.ndarray]) -> None:
        try:
            future.set_result(np.asarray(request.get_tensor(self.output).data, dtype=np.float32).copy())
        except Exception as exc:  # surfaced by future.result() in the caller's thread
            future.set_exception(exc)

    def wait_all(self) -> None:
        self.queue.wait_all()
