"""INT8 fake quantization with NVIDIA ModelOpt: insert, calibrate, fine-tune, save, restore.

:func:`quantize_model` turns a float model into ModelOpt's fake-quant model following
:mod:`feredge.quantize.config` (residual adds first become quantizable modules, see
:mod:`feredge.quantize.residual`) and calibrates it with a ``forward_loop`` over calibration
faces made by the deployment pipeline. The same call with no fine-tuning is ModelOpt PTQ;
:func:`finetune` then trains it with the ordinary :class:`~feredge.train.trainer.Trainer`
(QAT). Checkpoints are ordinary feredge checkpoints: safetensors weights including every
quantizer's ``_amax`` buffer, and the ModelOpt state as JSON under ``extra["qat"]`` (no pickle,
see :mod:`feredge.quantize.state_codec`). :func:`load_qat_model` rebuilds exactly that model.

The restored module is a :class:`QatGraphModule`: its ``forward`` is the fake-quant model (what
training and evaluation use); its ``deploy()`` is the same weights without fake quantization, so
the exporter's shared float steps (``model.onnx``, the parity reference) stay float and the INT8
artifact is built from the quantizers by :mod:`feredge.export.int8`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import fx, nn

from feredge.errors import FeredgeError
from feredge.quantize.config import (
    MIN_ACTIVATION_AMAX,
    MIN_WEIGHT_AMAX,
    OVERFLOW_FIX_FACTOR,
    modelopt_int8_config,
)
from feredge.quantize.residual import insert_residual_adds, register_with_modelopt, residual_add_names

QAT_SCHEMA = 1
QAT_KEY = "qat"


def _modelopt() -> tuple[Any, Any]:
    try:
        import modelopt.torch.opt as mto
        import modelopt.torch.quantization as mtq
    except ImportError as exc:
        raise FeredgeError(f"INT8 with ModelOpt needs `pip install \"nvidia-modelopt[torch]\" huggingface_hub` "
                           f"({exc}); never the [onnx] extra, it replaces onnxruntime") from None
    register_with_modelopt()
    return mtq, mto


def _float_twin(self: nn.Module) -> nn.Module:
    """The same weights with every quantizer disabled: what ``deploy()`` of a QAT model returns."""
    mtq, _ = _modelopt()
    twin = copy.deepcopy(self)
    mtq.disable_quantizer(twin, "*")
    return twin.eval()


class QatGraphModule(fx.GraphModule):
    """A traced model with quantizable residual adds; ``deploy()`` gives its float twin."""

    deploy = _float_twin


def _with_float_twin(model: nn.Module) -> nn.Module:
    """A model fx could not trace whole (see :mod:`feredge.quantize.residual`) gets the same
    ``deploy()`` as :class:`QatGraphModule` through a subclass made for its class."""
    cls = type(model)
    model.__class__ = type(f"Qat{cls.__name__}", (cls,), {"deploy": _float_twin})
    return model


def prepare(model: nn.Module) -> nn.Module:
    """A traced copy of the float model, with residual adds as modules (no quantizers yet).

    A copy: fx shares submodules with the traced model and ``mtq.quantize`` converts them in
    place, which would silently turn the caller's float model into a fake-quant one.
    """
    from feredge.models import deploy_graph

    was_training = model.training
    traced = insert_residual_adds(deploy_graph(copy.deepcopy(model)))
    prepared = (QatGraphModule(traced, traced.graph) if isinstance(traced, fx.GraphModule)
                else _with_float_twin(traced))
    prepared.train(was_training)
    return prepared


def calibration_loop(batch: np.ndarray, chunk: int = 32) -> Any:
    def forward_loop(model: nn.Module) -> None:
        with torch.no_grad():
            for i in range(0, len(batch), chunk):
                model(torch.from_numpy(np.ascontiguousarray(batch[i : i + chunk])))
    return forward_loop


def quantize_model(model: nn.Module, calib: np.ndarray, *, exclude: Iterable[str] = (),
                   overflow_fix: bool = True) -> nn.Module:
    """Insert INT8 fake quantization and calibrate it (max) on ``calib`` (NCHW float32 faces).

    ``exclude``: module names whose quantizers are disabled (kept in float), e.g. the layers
    :mod:`feredge.quantize.sensitivity` found to cost the most accuracy. ``overflow_fix``: 7-bit
    weight range (:data:`~feredge.quantize.config.OVERFLOW_FIX_FACTOR`).
    """
    mtq, _ = _modelopt()
    if len(calib) == 0:
        raise FeredgeError("calibration set is empty")
    prepared = prepare(model).eval()
    quantized = mtq.quantize(prepared, modelopt_int8_config(), calibration_loop(calib))
    clamp_amax(quantized)
    if overflow_fix:
        mtq.postprocess_amax(quantized, "*weight_quantizer", lambda a: a * OVERFLOW_FIX_FACTOR)
    set_excluded(quantized, exclude)
    return quantized


def clamp_amax(model: nn.Module) -> None:
    """Floor every amax: an all-zero channel must not give a zero/denormal Q/DQ scale."""
    mtq, _ = _modelopt()
    mtq.postprocess_amax(model, "*weight_quantizer", lambda a: torch.clamp(a, min=MIN_WEIGHT_AMAX))
    mtq.postprocess_amax(model, "*input_quantizer", lambda a: torch.clamp(a, min=MIN_ACTIVATION_AMAX))


def quantizers(model: nn.Module) -> dict[str, Any]:
    from modelopt.torch.quantization.nn import TensorQuantizer

    return {name: m for name, m in model.named_modules() if isinstance(m, TensorQuantizer)}


def quantized_layers(model: nn.Module) -> list[str]:
    """Modules with at least one enabled quantizer, in graph order: the units sensitivity works on."""
    layers: list[str] = []
    for name, quantizer in quantizers(model).items():
        layer = name.rsplit(".", 1)[0]
        if quantizer.is_enabled and layer not in layers:
            layers.append(layer)
    return layers


def float_toggle(model: nn.Module) -> tuple[list[str], Callable[[Iterable[str]], None]]:
    """The model's quantized layers, and a function that keeps exactly the named ones in float.

    Sensitivity searches in torch use it: toggling ModelOpt quantizers costs no re-calibration and
    no re-export. Quantizers disabled now (by the config, or layers already kept in float) stay
    disabled whatever is asked.
    """
    enabled = {name for name, q in quantizers(model).items() if q.is_enabled}
    layers = quantized_layers(model)

    def keep_float(excluded: Iterable[str]) -> None:
        names = set(excluded)
        for name, quantizer in quantizers(model).items():
            if name in enabled and name.rsplit(".", 1)[0] not in names:
                quantizer.enable()
            else:
                quantizer.disable()

    return layers, keep_float


def set_excluded(model: nn.Module, exclude: Iterable[str]) -> None:
    """Disable the quantizers of the named modules (and enable nothing else)."""
    names = set(exclude)
    unknown = names - {n.rsplit(".", 1)[0] for n in quantizers(model)}
    if unknown:
        raise FeredgeError(f"no quantized layers named {', '.join(sorted(unknown))}")
    for name, quantizer in quantizers(model).items():
        if name.rsplit(".", 1)[0] in names:
            quantizer.disable()


@dataclass
class QatInfo:
    """What ``extra["qat"]`` of a QAT checkpoint holds."""

    modelopt_state: dict[str, Any]  # JSON form (state_codec)
    residual_adds: list[str]
    method: str = "qat"  # "qat" (fine-tuned) or "ptq" (calibrated only)
    overflow_fix: bool = True
    excluded: list[str] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)
    base_checkpoint: str | None = None
    finetune: dict[str, Any] = field(default_factory=dict)
    schema: int = QAT_SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {"schema": self.schema, "method": self.method, "modelopt_state": self.modelopt_state,
                "residual_adds": self.residual_adds, "overflow_fix": self.overflow_fix, "excluded": self.excluded,
                "calibration": self.calibration, "base_checkpoint": self.base_checkpoint, "finetune": self.finetune}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QatInfo:
        if data.get("schema") != QAT_SCHEMA:
            raise FeredgeError(f"QAT checkpoint schema {data.get('schema')} is not supported (expected {QAT_SCHEMA})")
        return cls(modelopt_state=data["modelopt_state"], residual_adds=list(data.get("residual_adds") or []),
                   method=data.get("method", "qat"), overflow_fix=bool(data.get("overflow_fix", True)),
                   excluded=list(data.get("excluded") or []),
                   calibration=dict(data.get("calibration") or {}), base_checkpoint=data.get("base_checkpoint"),
                   finetune=dict(data.get("finetune") or {}))


def qat_info(model: nn.Module, **kwargs: Any) -> QatInfo:
    from feredge.quantize.state_codec import to_json

    _, mto = _modelopt()
    return QatInfo(modelopt_state=to_json(mto.modelopt_state(model)), residual_adds=residual_add_names(model),
                   **kwargs)


def is_qat_extra(extra: dict[str, Any]) -> bool:
    return isinstance(extra.get(QAT_KEY), dict) and "modelopt_state" in extra[QAT_KEY]


def restore(model: nn.Module, info: QatInfo, state_dict: dict[str, torch.Tensor]) -> nn.Module:
    """``model`` (a fresh float build) → the exact quantized model ``info`` + ``state_dict`` describe."""
    from feredge.quantize.state_codec import from_json

    _, mto = _modelopt()
    prepared = prepare(model)
    if residual_add_names(prepared) != info.residual_adds:
        raise FeredgeError("the model's residual adds differ from the QAT checkpoint's; was the model changed?")
    restored = mto.restore_from_modelopt_state(prepared, from_json(info.modelopt_state))
    missing, unexpected = restored.load_state_dict(state_dict, strict=False)
    if missing or unexpected:
        raise FeredgeError(f"QAT weights do not fit the restored model (missing {sorted(missing)[:3]}, "
                           f"unexpected {sorted(unexpected)[:3]})")
    return restored.eval()


def load_qat_model(weights: Path, meta: Any) -> nn.Module:
    """The loader :mod:`feredge.quantize` registers with :mod:`feredge.checkpoint` for ``extra["qat"]``."""
    from safetensors.torch import load_file

    from feredge.models import create_model

    info = QatInfo.from_dict(meta.extra[QAT_KEY])
    model = create_model(meta.model, **{"num_classes": len(meta.labels), **meta.model_kwargs})
    return restore(model, info, load_file(str(weights)))


def save_qat_checkpoint(path: Path, model: nn.Module, meta: Any, info: QatInfo) -> Path:
    """A QAT checkpoint: ``meta`` (the float checkpoint's, metrics updated) + ``extra["qat"]``."""
    from feredge.checkpoint import CheckpointMeta, save_checkpoint

    extra = {**meta.extra, QAT_KEY: info.to_dict()}
    out = CheckpointMeta(model=meta.model, model_kwargs=dict(meta.model_kwargs), spec=meta.spec, labels=meta.labels,
                         metrics=dict(meta.metrics), data_fingerprint=meta.data_fingerprint, extra=extra)
    return save_checkpoint(path, model.state_dict(), out)
