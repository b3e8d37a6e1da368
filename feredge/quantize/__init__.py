"""INT8: ModelOpt QAT, post-training backends (ModelOpt, NNCF, ONNX Runtime), one Q/DQ ONNX.

Makes INT8 artifacts from a request and knows nothing of bundles (the export's INT8 step,
:mod:`feredge.export.int8`, stages them): :mod:`~feredge.quantize.modelopt_qat`
(insert/calibrate/fine-tune/save/restore), :data:`~feredge.quantize.ptq.PTQ_BACKENDS`, the
one-pass layer rankings (:mod:`~feredge.quantize.layer_noise`, :mod:`~feredge.quantize.onnx_noise`)
and the budget search (:mod:`~feredge.quantize.sensitivity`). Imports are lazy: ModelOpt and
NNCF load only when used.

Importing this package registers the QAT checkpoint loader with :mod:`feredge.checkpoint` (which
knows nothing of quantization): a checkpoint with ``extra["qat"]`` is rebuilt with its quantizers
by :func:`~feredge.quantize.modelopt_qat.load_qat_model`. Torch-free until such a load happens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from feredge.checkpoint import CheckpointMeta, register_extra_loader

__all__ = ["QAT_SECTION"]

#: the ``extra`` section of a QAT checkpoint (``modelopt_qat.QAT_KEY``, which imports torch)
QAT_SECTION = "qat"


def _load_qat_checkpoint(weights: Path, meta: CheckpointMeta) -> Any:
    from feredge.quantize.modelopt_qat import load_qat_model

    return load_qat_model(weights, meta)


register_extra_loader(QAT_SECTION, _load_qat_checkpoint, provider=__name__)
