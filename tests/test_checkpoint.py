"""Checkpoints handed to us: safetensors only, and weights that do not fit are one line, not torch's dump."""

from __future__ import annotations

import pytest

from feredge.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from feredge.errors import FeredgeError
from feredge.models import create_model, get_entry


def _save(tmp_path, state):
    entry = get_entry("mini_xception")
    return save_checkpoint(tmp_path / "c.safetensors", state, CheckpointMeta("mini_xception", {}, entry.spec,
                                                                             entry.labels))


def test_round_trip_loads_the_same_weights(tmp_path):
    state = create_model("mini_xception").state_dict()
    model, meta = load_checkpoint(_save(tmp_path, state))
    assert meta.model == "mini_xception"
    name = next(iter(state))
    assert model.state_dict()[name].equal(state[name])


def test_a_tensor_of_the_wrong_shape_is_one_line(tmp_path):
    import torch

    state = create_model("mini_xception").state_dict()
    name = next(k for k, v in state.items() if v.ndim == 4)
    state[name] = torch.zeros(3, 3, 3, 3)
    with pytest.raises(FeredgeError) as raised:
        load_checkpoint(_save(tmp_path, state))
    message = str(raised.value)
    assert "\n" not in message
    assert "1 of the wrong shape" in message and name in message and "(3, 3, 3, 3)" in message


def test_missing_and_unexpected_tensors_are_counted(tmp_path):
    import torch

    state = create_model("mini_xception").state_dict()
    dropped = next(iter(state))
    del state[dropped]
    state["extra.weight"] = torch.zeros(1)
    with pytest.raises(FeredgeError, match=r"1 missing, 1 unexpected"):
        load_checkpoint(_save(tmp_path, state))


def test_a_pickle_renamed_to_safetensors_is_refused(tmp_path):
    import pickle

    path = _save(tmp_path, create_model("mini_xception").state_dict())
    path.write_bytes(pickle.dumps({"weights": [1, 2, 3]}))
    with pytest.raises(FeredgeError):
        load_checkpoint(path)
