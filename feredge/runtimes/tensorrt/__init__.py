"""TensorRT on the device: engine keys, build plan, batch profile, builder, calibrator, CUDA buffers, runner.

Everything a Jetson (or any NVIDIA GPU) needs to turn a bundle's ONNX into an engine and run it,
with no torch and nothing from :mod:`feredge.export`. Engines are tied to the TensorRT version and
the GPU architecture (TensorRT#2195), so export only writes the build plan (profile, precision,
flags, the ONNX per TensorRT major, equivalent ``trtexec`` lines; :mod:`feredge.export.tensorrt`)
and the device builds on ``feredge build`` or on first load. TensorRT 10 (JetPack 6) and 11
(JetPack 7, strongly typed only) are both handled; the major version is read at run time.

Modules without a TensorRT import (``engine_key``, ``plan``, ``profile``, ``trtexec``) are the
decision logic and are tested on any machine; ``builder``, ``calibrator``, ``cuda`` and
``runner`` import TensorRT and cuda-python only inside functions (importing them without TensorRT
works; using them says what to install) and are type-checked against ``tensorrt-stubs``
(``scripts/typecheck_tensorrt.py``).
"""
