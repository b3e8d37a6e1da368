"""TensorRT: a TensorRT-ready ONNX at export time, the engine on the device that runs it.

Engines are tied to the TensorRT version and the GPU architecture (TensorRT#2195), and this
project's machines have neither TensorRT nor a GPU, so export writes what to build (the build
plan: profile, precision, flags, ONNX per TensorRT major, equivalent ``trtexec`` lines) and
the device builds on ``feredge build`` or on first load. TensorRT 10 (JetPack 6) and 11
(JetPack 7, strongly typed only) are both handled; the major version is read at run time.

Modules without a TensorRT import (plan, profile, engine_key, trtexec, int8, options) are the
decision logic and are tested here; ``builder``, ``calibrator`` and ``cuda`` touch TensorRT and
CUDA and are type-checked against ``tensorrt-stubs`` (``scripts/typecheck_tensorrt.py``).
"""
