"""TensorRT at export time (torch side): the TensorRT-ready ONNX files, their checks, and the build plan.

The device side — engine keys, plan, profile, builder, calibrator, CUDA buffers, ``trtexec``
lines and the runner — lives in :mod:`feredge.runtimes.tensorrt` and imports nothing from here.
This package holds only what an export needs on top of it: the ``tensorrt`` export target
(:mod:`~feredge.export.tensorrt.export_target`), its options, the fp16 ONNX converter and the
INT8 hook that asks :mod:`feredge.quantize` for a Q/DQ ONNX. The export builds the engine itself
only where TensorRT and a GPU are present; otherwise the device does.
"""
