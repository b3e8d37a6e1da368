"""``--target triton``: the bundle (ONNX + OpenVINO IR, verified as for ``--target openvino``) plus a
Triton model repository at ``BUNDLE/triton``, every file listed and hashed like the rest.

Models (names are what clients call):

- ``classifier_onnxruntime``, ``classifier_openvino``: the classifier for Triton's native backends,
  with a copy of the verified file in ``1/``; ``classifier_tensorrt``: ``tensorrt_plan``, whose
  ``1/model.plan`` is built on the serving GPU (``trtexec --onnx=classifier_onnxruntime/1/model.onnx``;
  copy the repository out of the bundle first: a bundle refuses files it does not list).
- ``classifier`` (``python`` backend): feredge's own runner on the bundle — float32 NCHW in,
  ``logits`` and ``probabilities`` out; ``pipeline`` (``python``): one encoded image in (UINT8 bytes), the faces
  as the JSON records of ``feredge infer`` out (UINT8, UTF-8 JSON; detector and classifier of the bundle).

Batched models get ``max_batch_size`` = the bundle's max batch and ``dynamic_batching`` with
preferred sizes; names and dims come from the exported ONNX, and every config is parsed with
Triton's ``ModelConfig`` proto and checked against that ONNX before the bundle is committed.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from feredge.serve.python_models import model_shim
from feredge.serve.repository import (
    CONFIG,
    REPOSITORY_DIR,
    ModelConfig,
    TensorConfig,
    check_repository,
    expected_tensors,
    preferred_sizes,
)

if TYPE_CHECKING:
    from feredge.export.context import ExportContext

#: the repository files' manifest role
TRITON_ROLE = "triton"
#: dynamic batching waits at most this long for a fuller batch (µs): bounded added latency, and long
#: enough for concurrent single requests to meet on a loaded host
MAX_QUEUE_DELAY_US = 10000


def repository_models(ctx: ExportContext) -> list[ModelConfig]:
    max_batch = ctx.options.max_batch
    found = expected_tensors(ctx.staging / "model.onnx")
    assert found is not None
    inputs, outputs, _batched = found
    batching = {"max_batch_size": max_batch, "dynamic_batching": True, "preferred_batch_sizes": preferred_sizes(
        max_batch), "max_queue_delay_us": MAX_QUEUE_DELAY_US}
    native = {"inputs": tuple(inputs), "outputs": tuple(outputs), **batching}
    width = outputs[0].dims
    feredge_io = {"inputs": tuple(inputs),
                  "outputs": (outputs[0], TensorConfig("probabilities", "TYPE_FP32", width)), **batching}
    labels = ",".join(ctx.source.labels)
    return [
        ModelConfig("classifier_onnxruntime", "onnxruntime", instance_kind="KIND_AUTO", files=("model.onnx",),
                    **native),
        ModelConfig("classifier_openvino", "openvino", files=("model.xml", "model.bin"), **native),
        ModelConfig("classifier_tensorrt", "tensorrt", platform="tensorrt_plan", instance_kind="KIND_GPU", **native),
        ModelConfig("classifier", "python", parameters={"bundle": "../..", "runtime": "onnxruntime",
                                                        "labels": labels}, **feredge_io),
        ModelConfig("pipeline", "python", inputs=(TensorConfig("image", "TYPE_UINT8", (-1,)),),
                    outputs=(TensorConfig("faces", "TYPE_UINT8", (-1,)),),
                    parameters={"bundle": "../..", "runtime": "onnxruntime", "detector": "", "labels": labels}),
    ]


def build_triton_repository(ctx: ExportContext) -> None:
    root = ctx.staging / REPOSITORY_DIR
    for model in repository_models(ctx):
        version = root / model.name / "1"
        version.mkdir(parents=True)
        (root / model.name / CONFIG).write_text(model.text(), encoding="utf-8")
        ctx.add_file(f"{REPOSITORY_DIR}/{model.name}/{CONFIG}", TRITON_ROLE)
        for name in model.files:
            shutil.copyfile(ctx.staging / name, version / name)
            ctx.add_file(f"{REPOSITORY_DIR}/{model.name}/1/{name}", TRITON_ROLE)
        if model.backend == "python":
            (version / "model.py").write_text(model_shim(model.name), encoding="utf-8")
            ctx.add_file(f"{REPOSITORY_DIR}/{model.name}/1/model.py", TRITON_ROLE)
        elif not model.files:  # an empty version directory would be an unlisted thing in the bundle
            version.rmdir()
    results = check_repository(root, ctx.options.max_batch)
    ctx.manifest_extra["triton"] = {"repository": REPOSITORY_DIR, "models": [r.to_dict() for r in results]}
    ctx.message(f"Triton repository {REPOSITORY_DIR}/: {', '.join(r.model for r in results)} (configs checked)")
