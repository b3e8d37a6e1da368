"""``run_qat`` end to end on a tiny synthetic set: distillation from the float checkpoint, and a bad objective."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from feredge.checkpoint import load_checkpoint
from feredge.data.synth import write_folder
from feredge.errors import FeredgeError
from feredge.quantize.qat import QatConfig, run_qat
from feredge.train.trainer import TrainConfig, Trainer


@pytest.fixture(scope="module")
def float_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("qat")
    data = root / "synth"
    write_folder(data, n_per_class=8, size=48, seed=5, splits={"train": 5, "val": 2, "test": 1})
    cfg = TrainConfig(model="mini_xception", data=data, out=root / "fp32", epochs=1, batch_size=16,
                      optimizer="adamw", lr=1e-3, input_size=48, threads=2, dropout=0.0)
    return data, Trainer(cfg, progress=False, log=lambda _: None).run().best


def test_qat_distils_from_the_float_checkpoint(float_run: tuple[Path, Path], tmp_path: Path) -> None:
    data, ckpt = float_run
    logs: list[str] = []
    result = run_qat(QatConfig(checkpoint=ckpt, data=data, out=tmp_path / "qat", calib_size=16, epochs=1,
                               batch_size=16, threads=2, objective="distill"), log=logs.append, progress=False)
    assert any(f"teacher {ckpt}: distributions for 35 images" in line for line in logs)
    _, meta = load_checkpoint(result.checkpoint)
    assert meta.extra["objective"] == "ldl" and meta.extra["qat"]["finetune"]["objective"] == "distill"
    assert meta.extra["train_config"]["teacher"] == str(ckpt) and meta.extra["train_config"]["dropout"] == 0.0
    assert result.quantizers > 0 and set(result.accuracy) == {"fp32", "ptq", "qat"}


def test_unknown_qat_objective_is_refused_before_any_work(float_run: tuple[Path, Path], tmp_path: Path) -> None:
    data, ckpt = float_run
    with pytest.raises(FeredgeError, match="unknown QAT objective 'kd'"):
        run_qat(QatConfig(checkpoint=ckpt, data=data, out=tmp_path / "x", objective="kd"), progress=False)
    assert not (tmp_path / "x").exists()


def test_qat_keeps_the_epoch_that_agrees_most_with_float_and_freezes_batchnorm(float_run: tuple[Path, Path],
                                                                                tmp_path: Path) -> None:
    from safetensors.torch import load_file

    data, ckpt = float_run
    result = run_qat(QatConfig(checkpoint=ckpt, data=data, out=tmp_path / "qat", calib_size=16, epochs=2,
                               batch_size=16, threads=2, lr=1e-3), log=lambda _: None, progress=False)
    scores = {h["epoch"]: h["score"] for h in result.history}
    assert set(scores) == {0, 1, 2}  # the calibrated model competes as epoch 0
    assert result.selected_epoch == max(scores, key=lambda e: (scores[e], -e))
    assert result.agreement["qat"] == pytest.approx(scores[result.selected_epoch], abs=1e-3)
    assert result.agreement["ptq"] == pytest.approx(scores[0], abs=1e-3)
    _, meta = load_checkpoint(result.checkpoint)
    assert meta.extra["epoch"] == result.selected_epoch and meta.extra["qat"]["finetune"]["select"] == "agreement"
    before, after = load_file(str(ckpt)), load_file(str(result.last))
    stats = [k for k in before if k.endswith(("running_mean", "running_var"))]
    assert stats and all(torch.equal(before[k], after[k]) for k in stats)  # BatchNorm frozen during QAT


def test_default_qat_learning_rate_is_one_percent_of_the_float_peak() -> None:
    from feredge.quantize.qat import _schedule

    cfg = QatConfig(checkpoint=Path("x"), data=Path("y"))
    assert _schedule(cfg, {"epochs": 40, "lr": 0.003, "optimizer": "adamw"}) == (4, pytest.approx(3e-5), "adamw")


def test_min_agreement_is_range_checked_when_the_config_is_made() -> None:
    with pytest.raises(FeredgeError, match=r"--min-agreement must be a percentage in \(0, 100\], got 150"):
        QatConfig(checkpoint=Path("x"), data=Path("y"), min_agreement=150)


@pytest.mark.slow
def test_layers_kept_in_float_stay_float_through_fine_tuning_restore_and_export(
        float_run: tuple[Path, Path], tmp_path: Path) -> None:
    from feredge.export.exporter import ExportOptions, export
    from feredge.quantize.modelopt_qat import quantized_layers, quantizers
    from feredge.quantize.options import Int8Options

    data, ckpt = float_run
    result = run_qat(QatConfig(checkpoint=ckpt, data=data, out=tmp_path / "qat", calib_size=16, epochs=1,
                               batch_size=16, threads=2, keep_float=("conv1",)), log=lambda _: None, progress=False)
    assert result.excluded == ["conv1"] and result.budget is None
    model, meta = load_checkpoint(result.checkpoint)
    assert meta.extra["qat"]["excluded"] == ["conv1"]
    assert [name for name, q in quantizers(model).items() if name.startswith("conv1.") and q.is_enabled] == []
    layers = quantized_layers(model)
    assert "conv1" not in layers and "conv2" in layers
    # the real gate: a 1-epoch model on 35 faces may need more layers in float; the export finds them
    manifest = export(ExportOptions(target="onnx", precision="int8", output=tmp_path / "bundle", max_batch=8,
                                    checkpoint=result.checkpoint, int8=Int8Options(calib=str(data)))).manifest
    kept = manifest["int8"]["agreement_budget"]["excluded"]  # what the gate's budget added
    excluded = manifest["int8"]["excluded"]  # the QAT checkpoint's own first
    assert manifest["int8"]["method"] == "qat" and excluded[0] == "conv1" and sorted(excluded[1:]) == sorted(kept)
    gate = [p for p in manifest["parity"]["results"] if p["precision"] == "int8" and p["gate"]]
    assert gate and all(p["passed"] for p in gate)
    weights = [n for n, q in quantizers(model).items() if n.endswith(".weight_quantizer") and q.is_enabled]
    assert len(weights) == 22  # mini_xception's 23 weighted layers, conv1 not among them
    # the Q/DQ ONNX leaves conv1's weight, and those of the weighted layers the budget kept, in float
    quantized_weights = [n for n in weights if n.rsplit(".", 1)[0] not in kept]
    assert manifest["int8"]["qdq"]["per_channel_weights"] == len(quantized_weights)


@pytest.mark.slow
def test_a_residual_add_kept_in_float_passes_the_tensorrt_checks(float_run: tuple[Path, Path],
                                                                  tmp_path: Path) -> None:
    """TensorRT's Q/DQ rules want both inputs of a residual Add quantized, except where the INT8
    step kept the Add in float on purpose."""
    from feredge.export.exporter import ExportOptions, export
    from feredge.export.trt_onnx_check import check_onnx
    from feredge.quantize.options import Int8Options

    data, ckpt = float_run
    result = run_qat(QatConfig(checkpoint=ckpt, data=data, out=tmp_path / "qat", calib_size=16, epochs=1,
                               batch_size=16, threads=2, keep_float=("residual_add_0",)),
                     log=lambda _: None, progress=False)
    bundle = tmp_path / "trt"
    manifest = export(ExportOptions(target="tensorrt", precision="int8", output=bundle, max_batch=8,
                                    checkpoint=result.checkpoint, int8=Int8Options(calib=str(data)))).manifest
    excluded = manifest["int8"]["excluded"]  # the QAT checkpoint's first, then any the real gate's budget added
    assert excluded[0] == "residual_add_0"
    assert {f.rule for f in check_onnx(bundle / "model.qdq.onnx")} == {"residual-add"}  # without the exemption
    assert check_onnx(bundle / "model.qdq.onnx", excluded) == []
