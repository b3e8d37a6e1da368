"""The one-pass ONNX layer ranking: the culprit layer first, one OpenVINO op per ONNX layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from feredge.quantize.onnx_noise import OnnxLayerNoise, fake_quant_weight
from feredge.quantize.ptq import PTQ_BACKENDS, Int8Request
from tests.quantize.test_sensitivity import Outlier


@pytest.fixture(scope="module")
def outlier_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("noise") / "outlier.onnx"
    torch.onnx.export(Outlier().eval(), (torch.zeros(2, 1, 12, 12),), str(path), input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "batch"}}, dynamo=False)
    return path


def _batch(n: int = 48) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 1, 12, 12)).astype(np.float32)


def test_fake_quant_weight_is_a_per_channel_symmetric_round_trip() -> None:
    weight = np.array([[1.0, -0.5, 0.25], [100.0, 3.0, -7.0]], np.float32)
    out = fake_quant_weight(weight, 0, overflow_fix=False)
    assert out[0, 0] == pytest.approx(1.0) and out[1, 0] == pytest.approx(100.0)  # each row's max is exact
    assert abs(out[1, 1] - 3.0) <= 100.0 / 127 / 2 + 1e-6  # error within half a step of that row's scale
    assert out[0, 2] == pytest.approx(round(0.25 * 127) / 127)
    fixed = fake_quant_weight(weight, 0, overflow_fix=True)  # 7-bit: half the levels, coarser steps
    assert np.abs(fixed - weight).max() > np.abs(out - weight).max()
    assert fake_quant_weight(weight.T, 1, overflow_fix=False) == pytest.approx(out.T)


def test_the_layer_that_breaks_int8_ranks_first(outlier_onnx: Path) -> None:
    noise = OnnxLayerNoise(outlier_onnx, _batch(), overflow_fix=False)
    layers = noise.layers()
    assert len(layers) == 2  # conv1 and conv2; nothing else has a weight or two computed inputs
    ranking = noise.ranking()
    assert set(ranking) == set(layers)
    culprit = max(ranking, key=ranking.__getitem__)
    assert culprit == layers[1] and ranking[culprit] > 100 * ranking[layers[0]]  # conv2's input scale, see Outlier


def test_ort_and_nncf_rank_the_same_layers_under_their_own_names(outlier_onnx: Path, tmp_path: Path) -> None:
    request = Int8Request(None, (1, 12, 12), outlier_onnx, _batch(), tmp_path)  # type: ignore[arg-type]
    ort_rank = PTQ_BACKENDS["ort"].rank(request, lambda items: items)  # type: ignore[misc]
    nncf_names = PTQ_BACKENDS["nncf"].layers(request)
    nncf_rank = PTQ_BACKENDS["nncf"].rank(request, lambda items: items)  # type: ignore[misc]
    assert len(nncf_names) == len(ort_rank) == 2 and set(nncf_rank) == set(nncf_names)
    # OpenVINO splits conv1's bias into an Add named after the ONNX node; the convolution is the layer
    assert sorted(nncf_rank.values()) == pytest.approx(sorted(ort_rank.values()), rel=1e-6)
    assert sorted(nncf_names) == ["/conv1/Conv/WithoutBiases", "/conv2/Conv"] and sorted(ort_rank) == [
        "/conv1/Conv", "/conv2/Conv"]
    # and NNCF accepts those names: keeping the culprit in float is a real ignored scope
    culprit = max(nncf_rank, key=nncf_rank.__getitem__)
    artifact = PTQ_BACKENDS["nncf"].quantize(request.excluding((culprit,)))
    assert artifact.excluded == [culprit] and artifact.path.is_file()


def test_every_ptq_backend_can_rank_for_a_budget() -> None:
    # ModelOpt ranks in torch (feredge.quantize.layer_noise); the ONNX backends need their own ranking
    assert {name for name, b in PTQ_BACKENDS.items() if b.rank is None} == {"modelopt"}
