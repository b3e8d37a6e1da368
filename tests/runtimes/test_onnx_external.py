"""ONNX external data is untrusted (issue 14, point 5): no runtime may follow it out of a bundle.

The wire-format walker (:mod:`feredge.runtimes.onnx_external`) is checked against the ``onnx``
package's own view of the same models, then the runners and ``Bundle.load`` are given models whose
external data stays inside, leaves the directory, or is not listed in the manifest.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, external_data_helper, helper, numpy_helper

from feredge.bundle import Bundle, BundleError, file_entry
from feredge.errors import FeredgeError
from feredge.runtimes.onnx_external import external_tensors
from feredge.runtimes.registry import runner_class

ONNX_RUNNERS = ["onnxruntime", "openvino"]  # the runners that read .onnx files by name


def _with_external(model: onnx.ModelProto, location: str) -> onnx.ModelProto:
    external_data_helper.convert_model_to_external_data(model, all_tensors_to_one_file=True, location=location,
                                                        size_threshold=0, convert_attribute=True)
    return model


def _nested_model() -> onnx.ModelProto:
    """Tensors in every place the walker must look: initializer, Constant attribute, If branches."""
    def const(name, value):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.array(value, np.float32),
                                                                                     name=f"{name}_t"))
    branch = lambda tag, v: helper.make_graph(  # noqa: E731
        [const(f"{tag}_c", [v])], f"{tag}_graph", [], [helper.make_tensor_value_info(f"{tag}_c", TensorProto.FLOAT,
                                                                                     [1])])
    nodes = [const("k", [2.0]), helper.make_node("Mul", ["x", "k"], ["y0"]),
             helper.make_node("Add", ["y0", "bias"], ["y1"]),
             helper.make_node("If", ["cond"], ["z"], then_branch=branch("then", 1.0), else_branch=branch("else", 2.0)),
             helper.make_node("Add", ["y1", "z"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])],
                              initializer=[numpy_helper.from_array(np.array([0.5], np.float32), "bias"),
                                           numpy_helper.from_array(np.array(True), "cond")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_the_walker_finds_what_onnx_finds():
    model = _with_external(_nested_model(), "weights.data")
    expected = {t.name: {e.key: e.value for e in t.external_data}["location"]
                for t in external_data_helper._get_all_tensors(model) if external_data_helper.uses_external_data(t)}
    assert set(expected) == {"bias", "cond", "k_t", "then_c_t", "else_c_t"}
    found = {t.tensor: t.location for t in external_tensors(model.SerializeToString())}
    assert found == expected


def test_a_model_without_external_data_has_none(default_bundle):
    assert external_tensors((default_bundle / "model.onnx").read_bytes()) == []


def test_malformed_bytes_raise_value_error_only(default_bundle):
    data = (default_bundle / "model.onnx").read_bytes()
    rng = random.Random(0)
    outcomes = set()
    for _ in range(300):
        cut = data[: rng.randrange(1, len(data))]
        noisy = bytearray(data)
        for _ in range(8):
            noisy[rng.randrange(len(noisy))] = rng.randrange(256)
        for blob in (cut, bytes(noisy), rng.randbytes(rng.randrange(1, 64))):
            try:
                external_tensors(blob)
                outcomes.add("parsed")
            except ValueError:
                outcomes.add("refused")
    assert "refused" in outcomes  # truncations are detected, and nothing else escaped the loop


def _external_onnx(directory: Path, default_bundle: Path, location: str, data_at: Path | None = None) -> Path:
    """The default model with its weights in ``location``; the data written to ``data_at`` if given."""
    directory.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(default_bundle / "model.onnx"))
    onnx.save_model(model, str(directory / "model.onnx"), save_as_external_data=True, all_tensors_to_one_file=True,
                    location="weights.data", size_threshold=1024)  # small shape tensors stay inline
    proto = onnx.load(str(directory / "model.onnx"), load_external_data=False)
    for tensor in external_data_helper._get_all_tensors(proto):
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = location
    (directory / "model.onnx").write_bytes(proto.SerializeToString())
    if data_at is not None:
        data_at.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(directory / "weights.data", data_at)
    return directory / "model.onnx"


@pytest.mark.parametrize("runtime", ONNX_RUNNERS)
def test_external_data_inside_the_directory_runs(default_bundle, tmp_path, runtime):
    path = _external_onnx(tmp_path / "m", default_bundle, "weights.data")
    with runner_class(runtime)(path) as runner:
        assert runner.infer(np.zeros((1, 1, 64, 64), np.float32)).shape == (1, 7)


@pytest.mark.parametrize("location", ["../secret.data", "/tmp/secret.data", "sub/../../secret.data"])
@pytest.mark.parametrize("runtime", ONNX_RUNNERS)
def test_external_data_leaving_the_directory_is_refused(default_bundle, tmp_path, runtime, location):
    target = tmp_path / "secret.data" if not location.startswith("/") else Path(location)
    path = _external_onnx(tmp_path / "m", default_bundle, location, data_at=target)
    try:
        with pytest.raises(FeredgeError, match=r"reads external data from .*outside the model's directory") as info:
            runner_class(runtime)(path).activate()
        assert "\n" not in str(info.value)
    finally:
        if location.startswith("/"):
            target.unlink(missing_ok=True)


def test_a_symlink_that_leads_external_data_out_is_refused(default_bundle, tmp_path):
    path = _external_onnx(tmp_path / "m", default_bundle, "weights.data", data_at=tmp_path / "outside.data")
    (tmp_path / "m" / "weights.data").symlink_to(tmp_path / "outside.data")
    with pytest.raises(FeredgeError, match="resolves outside the model's directory"):
        runner_class("onnxruntime")(path).activate()


# --- in a bundle: inside, listed and hashed -------------------------------------------------------

def _bundle_with_external(default_bundle: Path, tmp_path: Path, location: str, list_data: bool,
                          data_at: Path | None = None) -> Path:
    root = tmp_path / "bundle"
    shutil.copytree(default_bundle, root)
    _external_onnx(root, default_bundle, location, data_at=data_at)
    manifest = json.loads((root / "manifest.json").read_text())
    manifest["files"]["model.onnx"] = file_entry(root / "model.onnx", "onnx")
    if list_data:
        manifest["files"]["weights.data"] = file_entry(root / "weights.data", "onnx_external_data")
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


def test_listed_external_data_in_a_bundle_loads_and_runs(default_bundle, tmp_path):
    root = _bundle_with_external(default_bundle, tmp_path, "weights.data", list_data=True)
    with runner_class("onnxruntime").from_bundle(Bundle.load(root)) as runner:
        assert runner.infer(np.zeros((1, 1, 64, 64), np.float32)).shape == (1, 7)


def test_unlisted_external_data_in_a_bundle_is_refused(default_bundle, tmp_path):
    root = _bundle_with_external(default_bundle, tmp_path, "weights.data", list_data=False)
    with pytest.raises(BundleError, match=r"weights\.data, which model\.onnx reads as external data, is not listed"):
        Bundle.load(root)


def test_listed_external_data_that_is_missing_is_refused(default_bundle, tmp_path):
    root = _bundle_with_external(default_bundle, tmp_path, "weights.data", list_data=False,
                                 data_at=tmp_path / "elsewhere.data")
    with pytest.raises(BundleError, match=r"manifest does not list weights\.data, which model\.onnx reads"):
        Bundle.load(root)


def test_external_data_escaping_a_bundle_is_refused(default_bundle, tmp_path):
    root = _bundle_with_external(default_bundle, tmp_path, "../secret.data", list_data=False,
                                 data_at=tmp_path / "secret.data")
    with pytest.raises(BundleError, match=r"reads external data from '\.\./secret\.data', outside"):
        Bundle.load(root)
