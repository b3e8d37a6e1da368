"""Export: model → verified ONNX → OpenVINO IR / TensorRT-ready ONNX → bundle (torch side)."""
