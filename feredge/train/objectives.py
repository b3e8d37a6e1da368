"""Training objectives of the seed papers, by name: what a training step computes.

Each objective takes the model and one batch and returns ``(loss, logits)``; the trainer is the
same loop for all of them. Objectives that keep state (the center loss's class centres) expose
it through ``state_dict`` so it goes into the checkpoint. Training-only parts of a model (CAMs,
embeddings, eigenvalues) are reached through the model's own methods; the deployed graph is
never changed by the choice of objective.

| name | seed | loss |
| --- | --- | --- |
| ce | all | cross-entropy (optionally class-weighted) |
| center | S0 | CE + λ · center loss on the penultimate embedding |
| eac | S2 | CE on the erased image + λ · CAM consistency with its flip |
| ldl | S3 | KL(teacher distribution ‖ student) |
| combo | S3 | α · β-weighted BCE + (1 − α) · dice |
| spd | S4 | CE + μ · eigenvalue regulariser |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from feredge.errors import FeredgeError


@dataclass
class Batch:
    x: torch.Tensor
    y: torch.Tensor
    soft: torch.Tensor  # (N, K) label distribution: teacher's, annotators', or one-hot


@dataclass
class ObjectiveParams:
    class_weights: torch.Tensor | None = None
    center_weight: float = 0.01  # λ of S0's joint loss
    center_beta: float = 0.5  # centre update rate
    eac_weight: float = 5.0  # λ of S2 (the EAC paper's default)
    combo_alpha: float = 0.5
    combo_beta: float = 0.2  # S3's best β on RAF-DB
    spd_weight: float = 0.01  # μ of S4's regulariser


class Objective:
    name = "ce"
    #: whether the batch's x is the EAC erased image whose flip the objective builds itself
    needs_erasing = False

    def __init__(self, model: nn.Module, params: ObjectiveParams) -> None:
        self.model = model
        self.params = params

    def __call__(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.model(batch.x)
        return F.cross_entropy(logits, batch.y, weight=self.params.class_weights), logits

    def after_step(self, batch: Batch) -> None:
        """Updates outside the optimiser (center loss centres)."""

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        pass


def _require(model: nn.Module, method: str, objective: str) -> Callable[..., Any]:
    fn = getattr(model, method, None)
    if not callable(fn):
        raise FeredgeError(f"objective {objective!r} needs a model with {method}(); "
                           f"{type(model).__name__} has none")
    return fn


class CenterObjective(Objective):
    """S0's joint loss. The centres are made on the first batch, when the embedding width is known."""

    name = "center"

    def __init__(self, model: nn.Module, params: ObjectiveParams) -> None:
        super().__init__(model, params)
        self.features = _require(model, "features", self.name)
        self.classifier = _require(model, "classify_features", self.name)
        self.center: Any = None
        self._last: torch.Tensor | None = None

    def _centres(self, num_classes: int, dim: int) -> Any:
        if self.center is None:
            from feredge.models.csam_net import CenterLoss

            self.center = CenterLoss(num_classes, dim, beta=self.params.center_beta)
        return self.center

    def __call__(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.features(batch.x)
        logits = self.classifier(feats)
        self._last = feats.detach()
        centre = self._centres(batch.soft.shape[1], feats.shape[1])
        if centre.centers.device != feats.device:  # made (or restored) on the CPU, training on a GPU
            centre.to(feats.device)
        loss = F.cross_entropy(logits, batch.y, weight=self.params.class_weights)
        return loss + self.params.center_weight * centre(feats, batch.y), logits

    def after_step(self, batch: Batch) -> None:
        if self._last is not None and self.center is not None:
            self.center.update_centers(self._last, batch.y)

    def state_dict(self) -> dict[str, torch.Tensor]:
        return {} if self.center is None else {"center.centers": self.center.centers}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        if "center.centers" in state:
            centres = state["center.centers"]
            self._centres(centres.shape[0], centres.shape[1]).centers.copy_(centres)


class EACObjective(Objective):
    name = "eac"
    needs_erasing = True

    def __call__(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        from feredge.models.eac import eac_consistency_loss

        forward_with_cam = _require(self.model, "forward_with_cam", self.name)
        logits, cams = forward_with_cam(batch.x)
        _, cams_flipped = forward_with_cam(torch.flip(batch.x, dims=(-1,)))
        loss = F.cross_entropy(logits, batch.y, weight=self.params.class_weights)
        return loss + self.params.eac_weight * eac_consistency_loss(cams, cams_flipped), logits


class LDLObjective(Objective):
    name = "ldl"

    def __call__(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        from feredge.models.lfer_ldl import ldl_kl_loss

        logits = self.model(batch.x)
        return ldl_kl_loss(logits, batch.soft), logits


class ComboObjective(Objective):
    name = "combo"

    def __call__(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        from feredge.models.lfer_ldl import combo_loss

        logits = self.model(batch.x)
        return combo_loss(logits, batch.y, alpha=self.params.combo_alpha, beta=self.params.combo_beta), logits


class SPDObjective(Objective):
    name = "spd"

    def __call__(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        forward = _require(self.model, "forward_with_regularizer", self.name)
        logits, reg = forward(batch.x)
        loss = F.cross_entropy(logits, batch.y, weight=self.params.class_weights)
        return loss + self.params.spd_weight * reg, logits


OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls for cls in (Objective, CenterObjective, EACObjective, LDLObjective, ComboObjective, SPDObjective)
}
#: the seed's own objective for each seed model; others train with cross-entropy
DEFAULT_OBJECTIVE = {"csam_net": "center", "eac_resnet50": "eac", "spd_attention": "spd"}


def create_objective(name: str, model: nn.Module, params: ObjectiveParams) -> Objective:
    try:
        cls = OBJECTIVES[name]
    except KeyError:
        raise FeredgeError(f"unknown loss {name!r}; known: {', '.join(OBJECTIVES)}") from None
    return cls(model, params)

