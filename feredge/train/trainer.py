"""The training loop: any registered model, any objective, safetensors checkpoints, exact resume.

Each epoch ends with a validation report and two atomic writes in the run directory:
``last.safetensors`` + ``last.json`` (a normal feredge checkpoint, exportable as is) and
``trainer_state.safetensors`` + ``trainer_state.json`` (optimiser buffers, objective state, epoch,
RNG seeds) — no pickle anywhere, so ``--resume`` reads only tensors and JSON. The best epoch by
validation accuracy (or by the caller's ``score``, e.g. QAT's agreement with the float model) is
copied to ``best.*``. With ``baseline_epoch`` the starting model is evaluated as epoch 0 and
competes for ``best`` (fine-tuning never hands back a model worse than where it started). An
interrupted run loses at most the epoch in progress; the files of the last finished epoch are
never half-written. With a :class:`~feredge.train.distributed.DistContext` (``feredge train --nproc
N``) the same loop runs data-parallel under DDP; feredge/train/distributed.py says what changes
(validation on rank 0 alone, rank 0 alone writes).
"""

from __future__ import annotations

import json
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler, WeightedRandomSampler

from feredge.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from feredge.data.augment import AugmentConfig, Augmenter, balanced_sample_weights, class_loss_weights
from feredge.data.crops import CropSet, make_crops
from feredge.data.formats import load_dataset
from feredge.errors import FeredgeError
from feredge.fileio import atomic_path
from feredge.metrics import ClassificationReport, classification_report
from feredge.preprocess.spec import PreprocessSpec
from feredge.preprocess.transform import normalise
from feredge.train.distributed import DistContext
from feredge.train.objectives import DEFAULT_OBJECTIVE, Batch, ObjectiveParams, create_objective


@dataclass
class TrainConfig:
    model: str
    data: Path
    format: str = "folder"
    out: Path = Path("runs/train")
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 1e-4
    schedule: str = "cosine"  # cosine | step
    step_size: int = 30
    gamma: float = 0.1
    warmup_epochs: int = 0
    loss: str | None = None  # default: the seed's own objective (see DEFAULT_OBJECTIVE)
    input_size: int | None = None  # square override of the model's spec size
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    dropout: float | None = None  # training-time rate for every Dropout layer (inference never drops)
    freeze_bn: bool = False  # BatchNorm keeps its running statistics (QAT: the calibrated ranges assume them)
    baseline_epoch: bool = False  # evaluate the starting model as epoch 0; it competes for best
    init: str | None = None  # "pretrained" (the shipped weights) or a checkpoint path to fine-tune from
    teacher: Path | None = None  # checkpoint whose softened predictions become LDL targets
    temperature: float = 2.0
    balanced: bool = False  # class-balanced sampling (S3 on AffectNet)
    class_weighted: bool = False  # class-weighted cross-entropy (S4 on imbalanced sets)
    train_split: str = "train"
    val_split: str = "val"
    seed: int = 0
    threads: int | None = None
    max_minutes: float | None = None
    resume: bool = False
    #: warn once when validation accuracy is still at chance after this many epochs (or the whole
    #: run, if shorter): 1/classes + CHANCE_MARGIN at best
    chance_epochs: int = 3
    params: ObjectiveParams = field(default_factory=ObjectiveParams)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["params"] = {k: v for k, v in data["params"].items() if k != "class_weights"}
        return json.loads(json.dumps(data, default=str))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_json` (how ``--nproc`` hands its workers the run)."""
        values = dict(data)
        for name in ("data", "out", "teacher"):
            if values.get(name) is not None:
                values[name] = Path(values[name])
        values["params"] = ObjectiveParams(**values.get("params", {}))
        return cls(**values)


class _CropDataset(Dataset):
    """Augmented, normalised tensors from in-memory uint8 crops."""

    def __init__(self, crops: CropSet, spec: PreprocessSpec, augmenter: Augmenter | None, erase_pair: bool) -> None:
        self.crops, self.spec, self.augmenter, self.erase_pair = crops, spec, augmenter, erase_pair
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int, torch.Tensor]:
        image = self.crops.crops[i]
        if self.augmenter is not None:
            image = (self.augmenter.eac_pair(image, i, self.epoch)[0] if self.erase_pair
                     else self.augmenter(image, i, self.epoch))
        x = normalise(image[None], self.spec)[0]
        return torch.from_numpy(x), int(self.crops.labels[i]), torch.from_numpy(self.crops.soft[i])


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    lr: float
    seconds: float
    val: dict[str, Any]
    score: float | None = None  # what picked best when not val accuracy


@dataclass
class _Run:
    """What one training run builds before its first step and carries from epoch to epoch."""

    run_dir: Path
    labels: tuple[str, ...]
    spec: PreprocessSpec
    loss_name: str
    train: CropSet
    val: CropSet
    model: nn.Module
    objective: Any
    optimizer: torch.optim.Optimizer
    data: _CropDataset
    generator: torch.Generator
    loader: DataLoader
    meta: CheckpointMeta
    start_epoch: int = 0
    best_score: float = -math.inf
    history: list[EpochRecord] = field(default_factory=list)
    #: one training step's ``(loss, logits)``: the objective itself, or its DDP-wrapped ObjectiveStep
    step: Callable[[Batch], tuple[torch.Tensor, torch.Tensor]] | None = None
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))


@dataclass
class TrainResult:
    run_dir: Path
    best: Path
    last: Path
    history: list[EpochRecord]
    minutes: float
    stopped_early: bool

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": str(self.run_dir), "best": str(self.best), "last": str(self.last),
                "minutes": round(self.minutes, 2), "stopped_early": self.stopped_early,
                "history": [asdict(h) for h in self.history]}


#: what a run directory holds (the trainer's files and the CLI's history.json): what --force replaces
RUN_FILES = ("best.safetensors", "best.json", "last.safetensors", "last.json", "trainer_state.safetensors",
             "trainer_state.json", "history.json")
#: accuracy points above 1/classes that still count as chance (a 280-face val split moves ±2 points by luck)
CHANCE_MARGIN = 0.05


def claim_run_dir(out: Path, *, resume: bool, force: bool) -> None:
    """Make ``out`` this run's directory, before any work: a folder that holds files is reused only
    to continue it (``resume``) or to start it again (``force``: the run's own files are removed,
    anything else in it is left). Why: a second run into the same folder would silently mix its
    ``best`` with the first run's, and a typo'd ``--out`` would overwrite a finished run."""
    if resume and force:
        raise FeredgeError("give --resume (continue the run in --out) or --force (start it again), not both")
    if resume or not out.is_dir() or not any(out.iterdir()):
        return  # resuming an empty or missing folder: _restore says there is nothing to resume
    if not force:
        raise FeredgeError(f"{out}: the run folder exists and holds files; pass --resume to continue it, "
                           "--force to start it again, or another --out")
    for name in RUN_FILES:
        (out / name).unlink(missing_ok=True)


def at_chance(accuracies: list[float], classes: int, margin: float = CHANCE_MARGIN) -> bool:
    """True when the best of ``accuracies`` is no better than guessing one class (1/classes + margin)."""
    return bool(accuracies) and max(accuracies) <= 1.0 / classes + margin


def lr_at(config: TrainConfig, epoch: int) -> float:
    """Learning rate of ``epoch`` (0-based), a pure function so resuming needs no scheduler state."""
    if epoch < config.warmup_epochs:
        return config.lr * (epoch + 1) / (config.warmup_epochs + 1)
    if config.schedule == "step":
        return config.lr * config.gamma ** (epoch // max(config.step_size, 1))
    if config.schedule == "cosine":
        span = max(config.epochs - config.warmup_epochs, 1)
        return 0.5 * config.lr * (1 + math.cos(math.pi * (epoch - config.warmup_epochs) / span))
    raise FeredgeError(f"unknown schedule {config.schedule!r}; use cosine or step")


def _initial_model(cfg: TrainConfig, entry: Any) -> nn.Module:
    """A fresh model, the shipped weights (``init="pretrained"``) or a checkpoint's weights (fine-tuning).

    A checkpoint must be of the same model and labels: fine-tuning to other classes would silently
    reuse a classifier whose rows mean other expressions.
    """
    from feredge.models import create_model

    if cfg.init is None:
        return create_model(cfg.model, num_classes=len(entry.labels), **cfg.model_kwargs)
    if cfg.init == "pretrained":
        if cfg.model_kwargs:
            raise FeredgeError(f"--init pretrained loads {cfg.model}'s shipped weights at their own input size; "
                               "drop --input-size")
        return create_model(cfg.model, pretrained=True)
    model, meta = load_checkpoint(cfg.init)
    if meta.model != cfg.model or tuple(meta.labels) != tuple(entry.labels):
        raise FeredgeError(f"--init {cfg.init} is a {meta.model} checkpoint with labels {list(meta.labels)}; "
                           f"training {cfg.model} needs {list(entry.labels)}")
    if meta.model_kwargs != cfg.model_kwargs:
        raise FeredgeError(f"--init {cfg.init} was built with {meta.model_kwargs}, this run with "
                           f"{cfg.model_kwargs}; use the checkpoint's input size")
    return model


def _set_dropout(model: nn.Module, rate: float) -> None:
    """Override every dropout rate for this run.

    Why a trainer option and not a model argument: dropout is the identity at inference, so the
    deployed graph and the checkpoint are the same whatever the rate; it only changes how a short
    run trains. On the synthetic set csam_net's paper-style dropout (0.2 after each transition, 0.5
    before the classifier) keeps it at chance for hundreds of steps (benchmarks/training.md).
    """
    if not 0.0 <= rate < 1.0:
        raise FeredgeError(f"--dropout must be in [0, 1), got {rate}")
    for module in model.modules():
        if isinstance(module, nn.modules.dropout._DropoutNd):
            module.p = rate


def _optimizer(config: TrainConfig, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    raise FeredgeError(f"unknown optimizer {config.optimizer!r}; use sgd or adamw")


def _predict(model: nn.Module, crops: CropSet, spec: PreprocessSpec, batch: int = 256) -> np.ndarray:
    model.eval()
    device = next(model.parameters()).device
    outputs = []
    with torch.inference_mode():
        for i in range(0, len(crops), batch):
            outputs.append(model(torch.from_numpy(normalise(crops.crops[i : i + batch], spec)).to(device)).cpu())
    return torch.cat(outputs).float().numpy()


def teacher_distributions(teacher: Path, dataset_split: Any, temperature: float, student_labels: tuple[str, ...],
                          progress: bool) -> tuple[np.ndarray, list[str]]:
    """Per-image label distributions from a teacher checkpoint (S3's LDL), in the student's label order."""
    model, meta = load_checkpoint(teacher)
    if set(meta.labels) != set(student_labels):
        raise FeredgeError(f"teacher labels {list(meta.labels)} do not match the student's {list(student_labels)}")
    crops = make_crops(dataset_split, meta.spec, progress=progress)
    probs = torch.softmax(torch.from_numpy(_predict(model, crops, meta.spec)) / temperature, dim=1).numpy()
    order = [meta.labels.index(name) for name in student_labels]
    return probs[:, order].astype(np.float32), crops.sources


class Trainer:
    def __init__(self, config: TrainConfig, log: Callable[[str], None] = print, progress: bool = True,
                 model: nn.Module | None = None, extra_meta: dict[str, Any] | None = None,
                 score: Callable[[nn.Module], float] | None = None, dist: DistContext | None = None,
                 warn: Callable[[str], None] | None = None) -> None:
        """``model``: start from this module instead of a fresh registry build (fine-tuning, QAT);
        ``extra_meta``: merged into every checkpoint sidecar's ``extra`` (e.g. ``{"qat": {...}}``);
        ``score``: picks ``best`` (higher wins; called with the model in eval mode) instead of
        validation accuracy; ``dist``: this process is one rank of a data-parallel run (its process
        group already initialised): ranks other than 0 neither log nor show progress; ``warn``:
        where a likely problem (accuracy at chance) is said, one line (default: stderr, as
        ``feredge: warning:``)."""
        from feredge.progress import warn as warn_on_stderr

        self.config, self.log, self.progress = config, log, progress
        self.warn = warn or warn_on_stderr
        self.initial_model, self.extra_meta, self.score = model, dict(extra_meta or {}), score
        self.dist = dist
        if dist is not None and not dist.is_main:
            self.log, self.progress, self.warn = (lambda _: None), False, (lambda _: None)

    def run(self) -> TrainResult:
        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        np.random.seed(cfg.seed)
        run = self._prepare()
        started = time.monotonic()
        stopped_early = False
        if cfg.baseline_epoch and run.start_epoch == 0:
            self._finish_epoch(run, 0, [], 0.0, 0.0)
        for epoch in range(run.start_epoch, cfg.epochs):
            lr = lr_at(cfg, epoch)
            epoch_start = time.monotonic()
            losses, stopped_early = self._train_epoch(run, epoch, lr, started)
            self._finish_epoch(run, epoch + 1, losses, lr, time.monotonic() - epoch_start)
            if epoch + 1 == min(cfg.chance_epochs, cfg.epochs):
                self._warn_if_at_chance(run)
            if stopped_early or self._out_of_time(started):
                stopped_early = True
                self.log(f"stopping: --max-minutes {cfg.max_minutes} reached")
                break
        if not run.history:
            raise FeredgeError(f"{run.run_dir}: nothing to train (already at epoch {run.start_epoch} of {cfg.epochs})")
        if self.dist is not None:
            from feredge.train.distributed import check_ranks_agree

            check_ranks_agree(run.model, self.dist)
        return TrainResult(run.run_dir, run.run_dir / "best.safetensors", run.run_dir / "last.safetensors",
                           run.history, (time.monotonic() - started) / 60, stopped_early)

    def _warn_if_at_chance(self, run: _Run) -> None:
        """One line when every trained epoch so far validated at chance: the run is likely wasted."""
        trained = [h.val["accuracy"] for h in run.history if h.epoch > 0]  # not QAT's baseline epoch 0
        classes = len(run.labels)
        if at_chance(trained, classes):
            self.warn(f"validation accuracy is at chance after {len(trained)} epoch(s): best {max(trained):.1%}, "
                      f"guessing one of {classes} classes gives {1 / classes:.1%}; check the labels, or use the "
                      f"model's recipe (feredge train --help) or a lower --lr")

    def _prepare(self) -> _Run:
        """Everything before the first step, in a fixed order (the seeded RNG draws depend on it):
        spec and objective name, crops, teacher targets, model, objective, loader, optimiser, resume."""
        from feredge.models import get_entry

        cfg = self.config
        entry = get_entry(cfg.model)
        spec = entry.spec if cfg.input_size is None else entry.spec.replace(input_size=(cfg.input_size,) * 2)
        if cfg.input_size is not None and entry.sized_by_input:
            cfg.model_kwargs.setdefault("input_size", [cfg.input_size, cfg.input_size])
        loss_name = cfg.loss or DEFAULT_OBJECTIVE.get(cfg.model, "ce")
        if loss_name == "ldl" and cfg.teacher is None:
            raise FeredgeError("--loss ldl needs --teacher CHECKPOINT (the teacher's predictions are the targets)")
        train, val = self._crops(entry.labels, spec)
        params = cfg.params
        if cfg.class_weighted:
            params.class_weights = torch.as_tensor(class_loss_weights(train.labels, len(entry.labels)),
                                                   dtype=torch.float32)
        model = self.initial_model or _initial_model(cfg, entry)
        if cfg.dropout is not None:
            _set_dropout(model, cfg.dropout)
        device = self.dist.device if self.dist is not None else torch.device("cpu")
        if self.dist is not None:
            model.to(device)
            if params.class_weights is not None:
                params.class_weights = params.class_weights.to(device)
        objective = create_objective(loss_name, model, params)
        data, generator, loader = self._loader(train, spec, len(entry.labels), objective.needs_erasing)
        optimizer = _optimizer(cfg, [p for p in model.parameters() if p.requires_grad])
        run = _Run(cfg.out, entry.labels, spec, loss_name, train, val, model, objective, optimizer, data, generator,
                   loader, CheckpointMeta(model=cfg.model, model_kwargs=dict(cfg.model_kwargs), spec=spec,
                                          labels=entry.labels, data_fingerprint=_fingerprint(train, val)),
                   device=device)
        if self.dist is None or self.dist.is_main:
            run.run_dir.mkdir(parents=True, exist_ok=True)
        if cfg.resume:
            run.start_epoch, run.best_score, run.history = self._restore(run.run_dir, model, optimizer, objective)
            self.log(f"resuming {run.run_dir} at epoch {run.start_epoch + 1}/{cfg.epochs}")
        if self.dist is not None:
            from torch.nn.parallel import DistributedDataParallel

            from feredge.train.distributed import ObjectiveStep

            # after --resume: DDP broadcasts rank 0's (restored) parameters and buffers to every rank
            ddp = DistributedDataParallel(ObjectiveStep(model, objective),
                                          device_ids=[device.index] if device.type == "cuda" else None)
            run.step = lambda b: ddp(b.x, b.y, b.soft)
        return run

    def _crops(self, labels: tuple[str, ...], spec: PreprocessSpec) -> tuple[CropSet, CropSet]:
        """Train and val crops; with a teacher, the train crops' soft targets are its distributions."""
        cfg = self.config
        if self.progress:  # the first epoch's bar comes after loading and cropping, which take a while
            from feredge.progress import note

            note(f"loading {cfg.data} ({cfg.format}: {cfg.train_split} and {cfg.val_split} splits)")
        train_split = load_dataset(cfg.format, cfg.data, split=cfg.train_split, labels=labels)
        val_split = load_dataset(cfg.format, cfg.data, split=cfg.val_split, labels=labels)
        train = make_crops(train_split, spec, progress=self.progress)
        val = make_crops(val_split, spec, progress=self.progress)
        if train.skipped:
            self.log(f"train split: {len(train)} samples, {len(train.skipped)} skipped")
        if cfg.teacher is not None:
            soft, sources = teacher_distributions(cfg.teacher, train_split, cfg.temperature, labels, self.progress)
            if sources != train.sources:
                raise FeredgeError("teacher and student crops differ in which samples were usable")
            train.soft = soft
            agreement = float((soft.argmax(1) == train.labels).mean())
            self.log(f"teacher {cfg.teacher}: distributions for {len(soft)} images, "
                     f"argmax agrees with labels on {agreement:.1%}")
        return train, val

    def _loader(self, train: CropSet, spec: PreprocessSpec, classes: int,
                erase_pair: bool) -> tuple[_CropDataset, torch.Generator, DataLoader]:
        """Augmented batches in an order that is a function of (seed, epoch): the generator is reseeded per epoch."""
        cfg = self.config
        augment = AugmentConfig(erase_p=0.0, brightness=0.2, contrast=0.2, saturation=0.0 if spec.channels == "gray"
                                else 0.2)
        data = _CropDataset(train, spec, Augmenter(augment, seed=cfg.seed), erase_pair=erase_pair)
        generator = torch.Generator().manual_seed(cfg.seed)
        sampler: Sampler[int] | None
        if self.dist is not None:
            from feredge.train.distributed import DistributedWeightedSampler

            sampler = (DistributedWeightedSampler(balanced_sample_weights(train.labels, classes).tolist(),
                                                  len(train), self.dist, cfg.seed) if cfg.balanced
                       else DistributedSampler(data, num_replicas=self.dist.world_size, rank=self.dist.rank,
                                               shuffle=True, seed=cfg.seed))
        else:
            sampler = (WeightedRandomSampler(balanced_sample_weights(train.labels, classes).tolist(),
                                             len(train), generator=generator) if cfg.balanced else None)
        per_process = len(sampler) if self.dist is not None and sampler is not None else len(train)
        loader = DataLoader(data, batch_size=cfg.batch_size, shuffle=sampler is None, sampler=sampler,
                            drop_last=per_process > cfg.batch_size, generator=generator)
        return data, generator, loader

    def _train_epoch(self, run: _Run, epoch: int, lr: float, started: float) -> tuple[list[float], bool]:
        """One pass over the loader at ``lr`` (0-based ``epoch``); returns the step losses and whether
        ``--max-minutes`` ran out part-way."""
        from feredge.progress import bar as progress_bar

        cfg = self.config
        for group in run.optimizer.param_groups:
            group["lr"] = lr
        run.data.epoch = epoch
        run.generator.manual_seed(cfg.seed * 100_003 + epoch)  # order depends on (seed, epoch): resume is exact
        set_epoch = getattr(run.loader.sampler, "set_epoch", None)
        if self.dist is not None and set_epoch is not None:
            set_epoch(epoch)  # the distributed samplers' shuffle is a function of (seed, epoch) too
        step = run.step or run.objective
        run.model.train()
        if cfg.freeze_bn:
            for module in run.model.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        losses: list[float] = []
        bar = progress_bar(run.loader, desc=f"epoch {epoch + 1}/{cfg.epochs}", unit="batch", enabled=self.progress)
        for x, y, soft in bar:
            batch = Batch(x.to(run.device), y.to(run.device), soft.to(run.device))
            if self.dist is not None:
                from feredge.train.distributed import maybe_fail_for_test

                maybe_fail_for_test(self.dist)
            loss, _ = step(batch)
            if not torch.isfinite(loss):
                raise FeredgeError(f"loss became {loss.item()} at epoch {epoch + 1}; lower --lr")
            run.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            run.optimizer.step()
            run.objective.after_step(batch)
            losses.append(float(loss.detach()))
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
            if self.dist is not None:
                from feredge.train.distributed import any_rank, average_tensors

                average_tensors(list(run.objective.state_dict().values()), self.dist)  # centres stay equal
                if self.config.max_minutes is not None and any_rank(self._out_of_time(started), self.dist):
                    return self._global_losses(losses), True
            elif self._out_of_time(started):
                return losses, True
        return self._global_losses(losses), False

    def _global_losses(self, losses: list[float]) -> list[float]:
        """The step losses averaged over the ranks (each rank ran the same number of steps)."""
        if self.dist is None:
            return losses
        from feredge.train.distributed import mean_over_ranks

        return mean_over_ranks(losses, self.dist)

    def _finish_epoch(self, run: _Run, epoch: int, losses: list[float], lr: float, seconds: float) -> None:
        """Validate, write ``last`` (and ``best`` when it wins) and the trainer state for ``epoch``.

        Distributed: rank 0 alone validates (the whole val set, the unwrapped model: the same
        report and checkpoint a single process writes) and writes; the other ranks wait and then
        receive its record and best score, so every rank's history is the same.
        """
        if self.dist is None:
            self._validate_and_write(run, epoch, losses, lr, seconds)
            return
        from feredge.train.distributed import from_main, sync_buffers

        sync_buffers(run.model)
        if self.dist.is_main:
            self._validate_and_write(run, epoch, losses, lr, seconds)
        record, best = from_main((run.history[-1], run.best_score) if self.dist.is_main else None, self.dist)
        if not self.dist.is_main:
            run.history.append(record)
            run.best_score = best

    def _validate_and_write(self, run: _Run, epoch: int, losses: list[float], lr: float, seconds: float) -> None:
        cfg, model = self.config, run.model
        report = classification_report(run.val.labels, _predict(model, run.val, run.spec).argmax(1), run.labels)
        score = self.score(model.eval()) if self.score is not None else None
        record = EpochRecord(epoch, float(np.mean(losses)) if losses else float("nan"), lr, seconds,
                             _brief(report), score)
        run.history.append(record)
        shown = f"  score {score:.4f}" if score is not None else ""
        self.log(f"epoch {epoch}/{cfg.epochs}  loss {record.train_loss:.4f}  lr {lr:.3g}  "
                 f"val {report.summary()}{shown}  ({record.seconds:.0f}s)")
        run.meta.metrics = {"epoch": epoch, "val": report.to_dict(), "train_loss": record.train_loss}
        run.meta.extra = {"objective": run.loss_name, "train_config": cfg.to_json(), "epoch": epoch,
                          **self.extra_meta}
        last = save_checkpoint(run.run_dir / "last", model.state_dict(), run.meta)
        value = score if score is not None else report.accuracy
        if value > run.best_score:
            run.best_score = value
            _copy_checkpoint(last, run.run_dir / "best.safetensors")
        self._save_state(run.run_dir, epoch, run.best_score, run.history, run.optimizer, run.objective)

    def _out_of_time(self, started: float) -> bool:
        limit = self.config.max_minutes
        return limit is not None and time.monotonic() - started > limit * 60

    def _save_state(self, run_dir: Path, epoch: int, best_score: float, history: list[EpochRecord],
                    optimizer: torch.optim.Optimizer, objective: Any) -> None:
        from safetensors.torch import save_file

        tensors, scalars = _flatten_optimizer(optimizer)
        tensors.update({f"objective.{k}": v.contiguous() for k, v in objective.state_dict().items()})
        info = {"epoch": epoch, "best_score": best_score, "optimizer": scalars,
                "history": [asdict(h) for h in history], "config": self.config.to_json()}
        # Both written before either is renamed; the tensors are renamed first, then the JSON
        # (the inner context exits first), as the checkpoint writer orders weights and sidecar.
        with atomic_path(run_dir / "trainer_state.json") as tmp_json, \
                atomic_path(run_dir / "trainer_state.safetensors") as tmp:
            save_file(tensors, str(tmp))
            tmp_json.write_text(json.dumps(info), encoding="utf-8")

    def _restore(self, run_dir: Path, model: nn.Module, optimizer: torch.optim.Optimizer,
                 objective: Any) -> tuple[int, float, list[EpochRecord]]:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        state_json = run_dir / "trainer_state.json"
        if not state_json.is_file() or not (run_dir / "last.safetensors").is_file():
            raise FeredgeError(f"{run_dir}: nothing to resume (no last checkpoint and trainer state)")
        restored, meta = load_checkpoint(run_dir / "last.safetensors")
        if meta.model != self.config.model:
            raise FeredgeError(f"{run_dir}: run trained {meta.model}, not {self.config.model}")
        model.load_state_dict(restored.state_dict())
        try:
            info = json.loads(state_json.read_text(encoding="utf-8"))
            tensors = load_file(str(run_dir / "trainer_state.safetensors"))
        except (json.JSONDecodeError, UnicodeDecodeError, SafetensorError, OSError) as exc:
            raise FeredgeError(f"{run_dir}: trainer state unreadable ({exc})") from None
        if info["epoch"] != meta.extra.get("epoch"):
            raise FeredgeError(f"{run_dir}: trainer state (epoch {info['epoch']}) does not match the last checkpoint")
        _load_optimizer(optimizer, tensors, info["optimizer"])
        objective.load_state_dict({k[len("objective."):]: v for k, v in tensors.items() if k.startswith("objective.")})
        history = [EpochRecord(**h) for h in info["history"]]
        best = info["best_score"] if "best_score" in info else info["best_accuracy"]  # runs from before scores
        return int(info["epoch"]), float(best), history


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Optimiser state as named tensors + JSON scalars (its state_dict would need pickle)."""
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {"param_groups": state["param_groups"], "state": {}}
    for pid, entries in state["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{pid}.{key}"] = value.contiguous()
            else:
                scalars["state"].setdefault(str(pid), {})[key] = value
    return tensors, scalars


def _load_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor],
                    scalars: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for pid, entries in scalars["state"].items():
        state.setdefault(int(pid), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": scalars["param_groups"]})


def _copy_checkpoint(weights: Path, target: Path) -> None:
    """The weights, then the sidecar, each copied whole into place (byte-identical to ``last``)."""
    for src, dst in ((weights, target), (weights.with_suffix(".json"), target.with_suffix(".json"))):
        with atomic_path(dst) as tmp:
            shutil.copyfile(src, tmp)


def _fingerprint(*sets: CropSet) -> str:
    import hashlib

    digest = hashlib.sha256()
    for crops in sets:
        digest.update(crops.crops.tobytes())
        digest.update(crops.labels.tobytes())
    return digest.hexdigest()[:16]


def _brief(report: ClassificationReport) -> dict[str, Any]:
    return {"accuracy": report.accuracy, "macro_f1": report.macro_f1, "per_class_recall": report.per_class_recall}
