"""``feredge qat``: float checkpoint → calibrated INT8 fake-quant model → short fine-tune → QAT checkpoint.

The schedule follows NVIDIA's QAT recipe (pytorch-quantization, ModelOpt's predecessor): about
10 % of the original training epochs, starting at 1 % of the original peak learning rate, cosine
decay. An earlier default of 10 % of the peak rate moved the models away from their float selves:
INT8/FP32 agreement fell below what calibration alone gave (93.9–99.3 % against 97.5–100 % for PTQ
on four models). For the same reason BatchNorm statistics are frozen during QAT (the calibrated
activation ranges were measured with them), and the checkpoint kept as ``best`` is the epoch
whose INT8 predictions agree most with the float model on the validation split (``--select
agreement``, ties broken by accuracy), the calibrated model itself competing as epoch 0 — the
goal of QAT is fidelity to the float model; ``--select accuracy`` keeps the most accurate epoch.
Measured with this recipe (``benchmarks/int8_report.md``, 280 test faces): 95.7–100 % agreement,
the calibrated model kept for two of four models.

Mixed precision (``--min-agreement PERCENT``, ``--keep-float LAYER``): before fine-tuning, the
layers that add the most output noise on their own (:mod:`feredge.quantize.layer_noise`, on the
calibration faces) are kept in float until the calibrated model agrees with FP32 on that share of
the validation faces; fine-tuning then trains the mixed model, the checkpoint lists the layers
(``extra["qat"]["excluded"]``) and its Q/DQ ONNX leaves them in float for every runtime. Why: in
compact models a few layers carry most of the INT8 noise (csam_net: one convolution, 42 % of it;
lfer_ldl: a max-pool input and the first convolutions), and QAT fine-tuning on our data did not
remove it — on faces whose FP32 top two are close it moved more decisions than it fixed.

Objectives: the dataset's labels (``objective="ce"``) or distillation from the float checkpoint
itself (``"distill"``: KL to its softmax, the ``ldl`` objective with the checkpoint as teacher;
ModelOpt's quantization-aware distillation). Auxiliary objectives such as center loss need
methods of the original module that the traced QAT graph does not have. The calibration set is
built by the deployment pipeline (:mod:`feredge.calibration.dataset`), from the training split
unless ``--calib`` names other data, and its report is stored in the checkpoint so the export can
put it in the bundle. The Trainer writes ``best``/``last`` QAT checkpoints each epoch; both
restore exactly through :func:`feredge.checkpoint.load_checkpoint`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from feredge.errors import FeredgeError


@dataclass
class QatConfig:
    checkpoint: Path
    data: Path
    format: str = "folder"
    out: Path = Path("runs/qat")
    calib: Path | None = None  # default: the training split of ``data``
    calib_format: str = "auto"
    calib_size: int = 256
    epochs: int | None = None  # default: 10 % of the checkpoint's training epochs (at least 1)
    lr: float | None = None  # default: 1 % of the checkpoint's peak learning rate
    batch_size: int = 64
    optimizer: str | None = None  # default: the checkpoint's
    overflow_fix: bool = True
    threads: int | None = None
    max_minutes: float | None = None
    seed: int = 0
    objective: str = "ce"  # ce (labels) | distill (KL to the float checkpoint's softmax)
    select: str = "agreement"  # which epoch is best: agreement (with FP32 on val) | accuracy
    freeze_bn: bool = True
    keep_float: tuple[str, ...] = ()  # layers kept in float from the start (quantized layer names)
    min_agreement: float | None = None  # percent: keep the most sensitive layers in float until calibration meets it

    def __post_init__(self) -> None:
        # checked when the config is made, so a bad value fails before calibration
        if self.min_agreement is not None and not 0 < self.min_agreement <= 100:
            raise FeredgeError(f"--min-agreement must be a percentage in (0, 100], got {self.min_agreement}")


@dataclass
class QatResult:
    checkpoint: Path
    last: Path
    epochs: int
    lr: float
    calibration: dict[str, Any]
    accuracy: dict[str, float]  # val: fp32, after calibration (ptq), after fine-tuning (qat)
    agreement: dict[str, float]  # val top-1 agreement with FP32: after calibration (ptq), the kept QAT epoch (qat)
    selected_epoch: int  # the epoch kept as best (0: calibration only; fine-tuning did not beat it)
    quantizers: int
    residual_adds: list[str]
    history: list[dict[str, Any]] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)  # layers fine-tuned and exported in float
    budget: dict[str, Any] | None = None  # the --min-agreement search (feredge.quantize.sensitivity)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["checkpoint"], data["last"] = str(self.checkpoint), str(self.last)
        return data


#: QAT's starting learning rate as a fraction of the float run's peak rate (NVIDIA's recipe)
LR_FRACTION = 0.01
SELECTIONS = ("agreement", "accuracy")


def _schedule(cfg: QatConfig, train_config: dict[str, Any]) -> tuple[int, float, str]:
    epochs = cfg.epochs or max(1, round(0.1 * int(train_config.get("epochs") or 10)))
    lr = cfg.lr or LR_FRACTION * float(train_config.get("lr") or 0.01)
    optimizer = cfg.optimizer or str(train_config.get("optimizer") or "sgd")
    if epochs < 1 or lr <= 0:
        raise FeredgeError(f"QAT needs epochs ≥ 1 and lr > 0 (got {epochs}, {lr})")
    return epochs, lr, optimizer


def run_qat(cfg: QatConfig, log: Callable[[str], None] = print, progress: bool = True) -> QatResult:
    import torch

    from feredge.calibration.dataset import build_calibration_set, validation_set
    from feredge.calibration.report import describe
    from feredge.checkpoint import load_checkpoint
    from feredge.quantize.evaluate import accuracy, agreement, torch_logits
    from feredge.quantize.modelopt_qat import is_qat_extra, qat_info, quantize_model, quantizers
    from feredge.train.trainer import TrainConfig, Trainer

    if cfg.objective not in ("distill", "ce"):
        raise FeredgeError(f"unknown QAT objective {cfg.objective!r}; use distill or ce")
    if cfg.select not in SELECTIONS:
        raise FeredgeError(f"unknown QAT selection {cfg.select!r}; use {' or '.join(SELECTIONS)}")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    model, meta = load_checkpoint(cfg.checkpoint)
    if is_qat_extra(meta.extra):
        raise FeredgeError(f"{cfg.checkpoint} is already a QAT checkpoint")
    if meta.spec.input_size[0] != meta.spec.input_size[1]:
        raise FeredgeError("QAT fine-tuning supports square inputs only (the Trainer's input_size)")
    calib = build_calibration_set(cfg.calib or cfg.data, meta.spec, meta.labels,
                                  fmt=cfg.calib_format if cfg.calib else cfg.format, size=cfg.calib_size,
                                  seed=cfg.seed)
    log(f"calibrating on {len(calib)} faces from {calib.origin}")
    val = validation_set(cfg.data, meta.spec, meta.labels, fmt=cfg.format)
    assert val.labels is not None
    fp32_logits = torch_logits(model.eval(), val.batch)
    fp32_acc = accuracy(fp32_logits, val.labels)
    quantized = quantize_model(model, calib.batch, exclude=cfg.keep_float, overflow_fix=cfg.overflow_fix)
    budget = (_agreement_budget(quantized, val.batch, fp32_logits, calib.batch,
                                lambda: torch_logits(model, calib.batch), cfg.min_agreement, log)
              if cfg.min_agreement is not None else None)
    excluded = [*cfg.keep_float, *(budget.excluded if budget else [])]
    budget_report = budget.to_dict() if budget else None
    if excluded:
        log(f"kept in float for fine-tuning and export: {', '.join(excluded)}")
    ptq_logits = torch_logits(quantized, val.batch)
    ptq_acc, ptq_agree = accuracy(ptq_logits, val.labels), agreement(fp32_logits, ptq_logits)
    log(f"val accuracy: fp32 {fp32_acc:.2%}, INT8 after calibration {ptq_acc:.2%} "
        f"(agreement with fp32 {ptq_agree:.2%})")

    def fidelity(candidate: Any) -> float:
        """Agreement with FP32 on val; accuracy only breaks ties (it is < 1e-3 of one face's share)."""
        logits = torch_logits(candidate, val.batch)
        return agreement(fp32_logits, logits) + 1e-4 / len(val.batch) * accuracy(logits, val.labels)

    fp32_run = dict(meta.extra.get("train_config") or {})
    epochs, lr, optimizer = _schedule(cfg, fp32_run)
    report = describe(calib, method="qat").to_dict()
    info = qat_info(quantized, method="qat", overflow_fix=cfg.overflow_fix, calibration=report, excluded=excluded,
                    base_checkpoint=str(cfg.checkpoint),
                    finetune={"epochs": epochs, "lr": lr, "optimizer": optimizer, "data": str(cfg.data),
                              "objective": cfg.objective, "select": cfg.select, "freeze_bn": cfg.freeze_bn,
                              "min_agreement": cfg.min_agreement,
                              "agreement_budget": budget_report})
    distill = cfg.objective == "distill"
    train_cfg = TrainConfig(model=meta.model, data=cfg.data, format=cfg.format, out=cfg.out, epochs=epochs,
                            batch_size=cfg.batch_size, optimizer=optimizer, lr=lr, loss="ldl" if distill else "ce",
                            teacher=cfg.checkpoint if distill else None, temperature=1.0,
                            input_size=meta.spec.input_size[0], model_kwargs=dict(meta.model_kwargs),
                            seed=cfg.seed, threads=cfg.threads, max_minutes=cfg.max_minutes,
                            dropout=fp32_run.get("dropout"),  # the FP32 run's rate
                            freeze_bn=cfg.freeze_bn, baseline_epoch=True)
    result = Trainer(train_cfg, log=log, progress=progress, model=quantized, extra_meta={"qat": info.to_dict()},
                     score=fidelity if cfg.select == "agreement" else None).run()
    best, best_meta = load_checkpoint(result.best)
    best_logits = torch_logits(best, val.batch)
    qat_acc, qat_agree = accuracy(best_logits, val.labels), agreement(fp32_logits, best_logits)
    selected = int(best_meta.extra.get("epoch", -1))
    log(f"kept epoch {selected} by {cfg.select}" + (" (calibration only: fine-tuning did not beat it)"
                                                    if selected == 0 else "")
        + f": val accuracy {qat_acc:.2%} (fp32 {fp32_acc:.2%}), agreement with fp32 {qat_agree:.2%}")
    enabled = sum(1 for q in quantizers(quantized).values() if q.is_enabled)
    return QatResult(result.best, result.last, epochs, lr, {k: v for k, v in report.items() if k != "sources"},
                     {"fp32": fp32_acc, "ptq": ptq_acc, "qat": qat_acc}, {"ptq": ptq_agree, "qat": qat_agree},
                     selected, enabled, info.residual_adds, [asdict(h) for h in result.history], excluded,
                     budget_report)


def _agreement_budget(quantized: Any, batch: Any, fp32_logits: Any, calib: Any, calib_logits: Callable[[], Any],
                      min_agreement: float, log: Callable[[str], None]) -> Any:
    """Keep the calibrated model's most sensitive layers in float until its top-1 agrees with FP32 on
    ``min_agreement`` % of the validation faces ``batch`` — before fine-tuning, so QAT trains the mixed model.

    The export's ``--min-agreement`` search (:mod:`feredge.quantize.sensitivity`) by toggling
    quantizers in torch, layers ranked by the output noise each adds on the calibration faces
    (:mod:`feredge.quantize.layer_noise`; ``calib_logits()``: FP32's there). Why before and not after
    QAT: fine-tuning can only adapt the weights to the quantizers it trains with.
    """
    from feredge.quantize.layer_noise import TorchSensitivity
    from feredge.quantize.sensitivity import fit_budget

    found = TorchSensitivity(quantized, batch, fp32_logits.argmax(1), calib, calib_logits)
    result = fit_budget(found.layers, found.evaluate, 1.0, 100.0 - min_agreement, log=log, metric="agreement",
                        ranking=found.ranking)
    found.keep_float(result.excluded)
    if not result.met:
        raise FeredgeError(f"INT8 agreement with FP32 stays at {result.final_accuracy:.2%} on {len(batch)} "
                           f"validation faces even with {len(result.excluded)} layers in float "
                           f"(--min-agreement {min_agreement:g})")
    return result
