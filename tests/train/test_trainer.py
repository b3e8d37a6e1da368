"""Training on the synthetic set: checkpoints, exact resume, interruption, every seed objective."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from feredge.checkpoint import load_checkpoint
from feredge.data.synth import write_folder
from feredge.errors import FeredgeError
from feredge.train import objectives as objectives_module
from feredge.train.objectives import OBJECTIVES, Batch, ObjectiveParams, create_objective
from feredge.train.trainer import TrainConfig, Trainer, lr_at


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synth")
    write_folder(root, n_per_class=10, size=48, seed=3, splits={"train": 6, "val": 2, "test": 2})
    return root


def _config(synth: Path, out: Path, **kw) -> TrainConfig:
    base = dict(model="mini_xception", data=synth, out=out, epochs=2, batch_size=16, lr=0.05, input_size=48,
                threads=2)
    base.update(kw)
    return TrainConfig(**base)


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def test_training_writes_checkpoints_that_load_without_pickle(synth, tmp_path):
    result = Trainer(_config(synth, tmp_path / "run"), progress=False, log=lambda _: None).run()
    assert [h.epoch for h in result.history] == [1, 2]
    files = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert files == ["best.json", "best.safetensors", "last.json", "last.safetensors", "trainer_state.json",
                     "trainer_state.safetensors"]
    _, meta = load_checkpoint(result.last)
    assert meta.model == "mini_xception" and meta.spec.input_size == (48, 48)
    assert meta.metrics["epoch"] == 2 and 0.0 <= meta.metrics["val"]["accuracy"] <= 1.0
    assert len(meta.metrics["val"]["confusion"]) == 7
    assert meta.data_fingerprint and meta.extra["objective"] == "ce"
    assert not any(p.suffix in (".pt", ".pth", ".pkl") for p in (tmp_path / "run").iterdir())


def test_resume_continues_exactly_where_the_run_stopped(synth, tmp_path):
    # a step schedule: its rates do not depend on the total epoch count, so 2 + 1 epochs = 3 epochs
    step = {"schedule": "step", "step_size": 2, "gamma": 0.5}
    straight = Trainer(_config(synth, tmp_path / "a", epochs=3, **step), progress=False, log=lambda _: None).run()
    Trainer(_config(synth, tmp_path / "b", epochs=2, **step), progress=False, log=lambda _: None).run()
    resumed = Trainer(_config(synth, tmp_path / "b", epochs=3, resume=True, **step), progress=False,
                      log=lambda _: None).run()
    assert [h.epoch for h in resumed.history] == [1, 2, 3]
    a, b = _weights(straight.last), _weights(resumed.last)
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=1e-5, atol=1e-6)


def test_interrupted_run_keeps_its_last_checkpoint_and_resumes(synth, tmp_path, monkeypatch):
    out = tmp_path / "run"
    Trainer(_config(synth, out, epochs=1), progress=False, log=lambda _: None).run()
    before = (out / "last.safetensors").read_bytes()
    calls = {"n": 0}
    original = objectives_module.Objective.__call__

    def dying(self, batch):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(self, batch)

    monkeypatch.setattr(objectives_module.Objective, "__call__", dying)
    with pytest.raises(KeyboardInterrupt):
        Trainer(_config(synth, out, epochs=3, resume=True), progress=False, log=lambda _: None).run()
    assert (out / "last.safetensors").read_bytes() == before
    monkeypatch.setattr(objectives_module.Objective, "__call__", original)
    result = Trainer(_config(synth, out, epochs=2, resume=True), progress=False, log=lambda _: None).run()
    assert [h.epoch for h in result.history] == [1, 2]


def test_resume_without_a_run_is_a_clear_error(synth, tmp_path):
    with pytest.raises(FeredgeError, match="nothing to resume"):
        Trainer(_config(synth, tmp_path / "none", resume=True), progress=False, log=lambda _: None).run()


def test_ldl_teacher_to_student_end_to_end(synth, tmp_path):
    teacher = Trainer(_config(synth, tmp_path / "teacher", epochs=1), progress=False, log=lambda _: None).run()
    logs: list[str] = []
    student = Trainer(_config(synth, tmp_path / "student", epochs=1, loss="ldl", teacher=teacher.best,
                              temperature=2.0), progress=False, log=logs.append).run()
    assert any("distributions for 42 images" in line for line in logs)
    _, meta = load_checkpoint(student.last)
    assert meta.extra["objective"] == "ldl"
    assert json.loads(json.dumps(meta.extra["train_config"]))["teacher"] == str(teacher.best)


def test_init_pretrained_starts_from_the_shipped_weights(synth, tmp_path):
    from feredge.models import create_model

    shipped = create_model("mini_xception", pretrained=True).state_dict()
    result = Trainer(_config(synth, tmp_path / "ft", epochs=1, lr=0.0, weight_decay=0.0, input_size=None,
                             init="pretrained"), progress=False, log=lambda _: None).run()
    tuned = _weights(result.last)
    # lr 0: every weight is the shipped one (BatchNorm running statistics do move in train mode)
    for key, value in shipped.items():
        if "running" not in key and "num_batches" not in key:
            torch.testing.assert_close(tuned[key], value, rtol=0, atol=0)


def test_init_from_a_checkpoint_continues_its_weights_and_refuses_another_model(synth, tmp_path):
    first = Trainer(_config(synth, tmp_path / "a", epochs=1), progress=False, log=lambda _: None).run()
    again = Trainer(_config(synth, tmp_path / "b", epochs=1, lr=0.0, weight_decay=0.0, init=str(first.best)),
                    progress=False, log=lambda _: None).run()
    a, b = _weights(first.best), _weights(again.last)
    assert all(torch.equal(a[k], b[k]) for k in a if "running" not in k and "num_batches" not in k)
    with pytest.raises(FeredgeError, match="is a mini_xception checkpoint"):
        Trainer(_config(synth, tmp_path / "c", model="lfer_ldl", init=str(first.best)), progress=False,
                log=lambda _: None).run()
    with pytest.raises(FeredgeError, match="ships no pretrained weights"):
        Trainer(_config(synth, tmp_path / "d", model="lfer_ldl", init="pretrained"), progress=False,
                log=lambda _: None).run()


def test_dropout_override_sets_every_rate_and_leaves_the_graph(monkeypatch, synth, tmp_path):
    from torch import nn

    from feredge.train import trainer as trainer_module

    seen: list[float] = []
    original = trainer_module._set_dropout

    def spy(model: nn.Module, rate: float) -> None:
        original(model, rate)
        seen.extend(m.p for m in model.modules() if isinstance(m, nn.Dropout))

    monkeypatch.setattr(trainer_module, "_set_dropout", spy)
    result = Trainer(_config(synth, tmp_path / "run", model="csam_net", epochs=1, dropout=0.0, loss="ce"),
                     progress=False, log=lambda _: None).run()
    assert seen and set(seen) == {0.0}  # csam_net has 4 Dropout layers (0.2 ×3, 0.5)
    _, meta = load_checkpoint(result.last)
    assert meta.extra["train_config"]["dropout"] == 0.0 and meta.model_kwargs == {"input_size": [48, 48]}
    with pytest.raises(FeredgeError, match="--dropout must be in"):
        Trainer(_config(synth, tmp_path / "bad", dropout=1.0), progress=False, log=lambda _: None).run()


def test_ldl_without_teacher_is_refused(synth, tmp_path):
    with pytest.raises(FeredgeError, match="needs --teacher"):
        Trainer(_config(synth, tmp_path / "x", loss="ldl"), progress=False, log=lambda _: None).run()


def test_learning_rate_schedules():
    cfg = TrainConfig(model="m", data=Path("."), epochs=10, lr=0.1, schedule="step", step_size=3, gamma=0.1)
    assert [round(lr_at(cfg, e), 6) for e in (0, 2, 3, 6, 9)] == [0.1, 0.1, 0.01, 0.001, 0.0001]
    cosine = TrainConfig(model="m", data=Path("."), epochs=4, lr=0.1, schedule="cosine")
    assert lr_at(cosine, 0) == pytest.approx(0.1) and lr_at(cosine, 2) == pytest.approx(0.05)


#: objective → (model, input size, learning rate); the meta-test requires every objective here.
#: EAC's consistency term (λ = 5 on raw CAMs) is large on an untrained ResNet-50: a smaller step.
OBJECTIVE_CASES = {
    "ce": ("mini_xception", 48, 1e-2),
    "center": ("csam_net", 48, 1e-2),
    "eac": ("eac_resnet50", 64, 1e-4),
    "ldl": ("lfer_ldl", 64, 1e-2),
    "combo": ("lfer_ldl", 64, 1e-2),
    "spd": ("spd_attention", 64, 1e-2),
}


def test_every_objective_has_a_case():
    from feredge.cli.train_cmd import OBJECTIVE_NAMES

    assert set(OBJECTIVES) == set(OBJECTIVE_CASES) == set(OBJECTIVE_NAMES)


@pytest.mark.parametrize("name", sorted(OBJECTIVE_CASES))
def test_objective_step_reduces_its_loss_on_a_fixed_batch(name):
    from feredge.models import create_model, get_entry

    model_name, size, lr = OBJECTIVE_CASES[name]
    torch.manual_seed(0)
    model = create_model(model_name).train()
    channels = get_entry(model_name).spec.num_channels
    x = torch.randn(4, channels, size, size)
    y = torch.tensor([0, 1, 2, 3])
    soft = torch.softmax(torch.randn(4, 7), dim=1)
    objective = create_objective(name, model, ObjectiveParams())
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    batch = Batch(x, y, soft)
    losses = []
    for _ in range(3):
        loss, logits = objective(batch)
        assert logits.shape == (4, 7) and torch.isfinite(loss)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        objective.after_step(batch)
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0], losses
    state = objective.state_dict()
    if name == "center":
        assert state["center.centers"].abs().sum() > 0  # centres moved towards the features


def test_eval_report_and_picture(synth, tmp_path):
    from feredge.bench.evaluate import evaluate
    from feredge.cli import main

    run = Trainer(_config(synth, tmp_path / "run", epochs=1), progress=False, log=lambda _: None).run()
    assert main(["eval", str(run.best), "--data", str(synth), "--report-dir", str(tmp_path / "rep")]) == 0
    report = json.loads((tmp_path / "rep" / "eval.json").read_text())
    assert report["samples"] == 14 and np.asarray(report["confusion"]).sum() == 14
    import cv2

    picture = cv2.imread(str(tmp_path / "rep" / "confusion.png"))
    assert picture is not None and picture.shape[0] > 300
    # the same checkpoint exported and evaluated through onnxruntime gives the same figures
    from feredge.export.exporter import ExportOptions, export

    bundle = export(ExportOptions(target="onnx", checkpoint=run.best, output=tmp_path / "bundle")).bundle
    through_ort = evaluate(bundle, synth, runtime="onnxruntime")
    assert through_ort.report.confusion == report["confusion"]


def test_score_picks_best_and_the_baseline_epoch_competes(synth, tmp_path):
    """The caller's score picks ``best``; with ``baseline_epoch`` the untouched model is epoch 0."""
    calls: list[bool] = []

    def prefer_the_start(model: torch.nn.Module) -> float:
        calls.append(model.training)
        return 1.0 if len(calls) == 1 else 0.5  # epoch 0 wins: every later epoch scores lower

    trainer = Trainer(_config(synth, tmp_path / "run", baseline_epoch=True, init="pretrained",
                                      input_size=None), progress=False,
                      log=lambda _: None, score=prefer_the_start)
    result = trainer.run()
    assert [h.epoch for h in result.history] == [0, 1, 2] and [h.score for h in result.history] == [1.0, 0.5, 0.5]
    assert calls == [False, False, False]  # scored in eval mode
    pretrained, best = load_checkpoint(result.best)
    assert best.extra["epoch"] == 0
    from feredge.models import create_model

    shipped = create_model("mini_xception", pretrained=True).state_dict()
    for name, value in pretrained.state_dict().items():
        torch.testing.assert_close(value, shipped[name], msg=name)  # epoch 0 is the starting weights
    state = json.loads((tmp_path / "run" / "trainer_state.json").read_text())
    assert state["best_score"] == 1.0


def test_freeze_bn_keeps_running_statistics(synth, tmp_path):
    moving = Trainer(_config(synth, tmp_path / "moving", epochs=1, init="pretrained", input_size=None), progress=False,
                     log=lambda _: None).run()
    frozen = Trainer(_config(synth, tmp_path / "frozen", epochs=1, init="pretrained", freeze_bn=True,
                                     input_size=None),
                     progress=False, log=lambda _: None).run()
    from feredge.models import create_model

    shipped = create_model("mini_xception", pretrained=True).state_dict()
    stats = [k for k in shipped if k.endswith(("running_mean", "running_var"))]
    assert stats
    after_frozen, after_moving = _weights(frozen.last), _weights(moving.last)
    for key in stats:
        torch.testing.assert_close(after_frozen[key], shipped[key], msg=key)
    assert any(not torch.equal(after_moving[key], shipped[key]) for key in stats)
    assert any(not torch.equal(after_frozen[k], shipped[k]) for k in shipped if k.endswith("weight"))  # still trained
