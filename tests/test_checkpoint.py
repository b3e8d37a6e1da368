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


# --- the hook for sections a float build cannot load (QAT) ----------------------------------------

def _save_with(tmp_path, extra):
    entry = get_entry("mini_xception")
    meta = CheckpointMeta("mini_xception", {}, entry.spec, entry.labels, extra=extra)
    return save_checkpoint(tmp_path / "c.safetensors", create_model("mini_xception").state_dict(), meta)


def test_a_registered_section_is_loaded_by_its_loader_and_recorded_in_the_sidecar(tmp_path, monkeypatch):
    import json

    from feredge import checkpoint

    monkeypatch.setattr(checkpoint, "_EXTRA_LOADERS", {})
    calls = []
    checkpoint.register_extra_loader("toy", lambda weights, meta: calls.append((weights, meta.extra)) or "model",
                                     provider="tests.toy")
    path = _save_with(tmp_path, {"toy": {"bits": 4}, "epoch": 3})
    assert json.loads(path.with_suffix(".json").read_text())["loaders"] == {"toy": "tests.toy"}
    model, meta = load_checkpoint(path)
    assert model == "model" and calls == [(path, {"toy": {"bits": 4}, "epoch": 3})]
    assert meta.loaders == {"toy": "tests.toy"}

    monkeypatch.setattr(checkpoint, "_EXTRA_LOADERS", {})  # where the provider was never imported
    with pytest.raises(FeredgeError) as raised:
        load_checkpoint(path)
    assert str(raised.value) == (f"{path}: its 'toy' section is loaded by tests.toy, which is not imported; "
                                 "import tests.toy first")


def test_a_float_checkpoint_sidecar_has_no_loaders_and_two_loaders_are_refused(tmp_path, monkeypatch):
    import json

    from feredge import checkpoint

    monkeypatch.setattr(checkpoint, "_EXTRA_LOADERS", {})
    path = _save_with(tmp_path, {"epoch": 3})
    assert "loaders" not in json.loads(path.with_suffix(".json").read_text())
    for section in ("a", "b"):
        checkpoint.register_extra_loader(section, lambda weights, meta: None, provider=f"tests.{section}")
    with pytest.raises(FeredgeError, match=r"sections a, b each need their own loader"):
        load_checkpoint(_save_with(tmp_path, {"a": {}, "b": {}}))
    with pytest.raises(FeredgeError, match=r"'a' already has a loader \(from tests.a\)"):
        checkpoint.register_extra_loader("a", lambda weights, meta: None, provider="tests.other")


def test_quantize_registers_the_qat_loader_and_checkpoint_does_not_import_quantize():
    import subprocess
    import sys

    code = ("import sys\nimport feredge.checkpoint as c\n"
            "assert not [m for m in sys.modules if m.startswith('feredge.quantize')], 'checkpoint imported quantize'\n"
            "assert c.extra_loaders() == {}\n"
            "import feredge.quantize\n"
            "loader = c.extra_loaders()['qat']\n"
            "assert loader.provider == 'feredge.quantize', loader\n"
            "assert 'torch' not in sys.modules  # registering loads no torch\n"
            "from feredge.quantize.modelopt_qat import QAT_KEY\n"
            "assert QAT_KEY == feredge.quantize.QAT_SECTION == 'qat'\n"
            "print('ok')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
