"""Bundle members checked against each other at load, for every runtime (issue 14, class 3).

A manifest whose labels or spec disagree with its model must be refused in one line when a runner
activates it — never an IndexError on the first face or a back-end ValueError. The manifests
edited here stay self-consistent (labels and declared output width, spec and declared input
shape agree), so what refuses them is the runner's check against the model file itself.
Parametrized over the runtime registry; ``RUNTIME_CASES`` must name every registered runtime.
"""

from __future__ import annotations

import json
import shutil
from collections import deque
from pathlib import Path

import numpy as np
import pytest

from feredge.backends import runtime_names
from feredge.bundle import Bundle, BundleError
from feredge.errors import FeredgeError
from feredge.runtimes.base import TIMINGS_WINDOW, Runner, TensorMeta
from feredge.runtimes.registry import is_available, runner_class, runtime_info

TRT_STAND_IN = ("TensorRT is not installed; test_tensorrt_runner_checks_the_bundle_with_a_stand_in_engine runs its "
                "code path (TensorRTRunner.from_bundle → Runner.activate) with the engine replaced")
#: runtime → None (runs here) or why it is skipped on this machine
RUNTIME_CASES: dict[str, str | None] = {
    "torch": None, "onnxruntime": None, "openvino": None,
    "tensorrt": None if is_available("tensorrt") else TRT_STAND_IN,
}


def test_every_registered_runtime_has_a_contract_case():
    assert set(runtime_names()) == set(RUNTIME_CASES)


def _edited_copy(default_bundle: Path, tmp_path: Path, edit) -> Bundle:
    root = tmp_path / "bundle"
    shutil.copytree(default_bundle, root)
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))
    return Bundle.load(root)  # the manifest alone is consistent: loading it succeeds


def _fewer_labels(manifest: dict) -> None:
    manifest["labels"].pop()
    manifest["output"]["shape"] = [None, len(manifest["labels"])]


def _rgb_spec(manifest: dict) -> None:
    manifest["spec"]["channels"] = "rgb"
    manifest["input"]["shape"] = [None, 3, 64, 64]


def _smaller_spec(manifest: dict) -> None:
    manifest["spec"]["input_size"] = [48, 48]
    manifest["input"]["shape"] = [None, 1, 48, 48]


MISMATCHES = {
    "labels": (_fewer_labels, r"manifest lists 6 labels but the model outputs 7 values per face"),
    "channels": (_rgb_spec, r"spec's input \(channels, height, width\) \(3, 64, 64\) does not match the model's "
                            r"input \(batch, 1, 64, 64\)|model cannot run the spec's input \(3, 64, 64\)"),
    "size": (_smaller_spec, r"spec's input \(channels, height, width\) \(1, 48, 48\) does not match the model's "
                            r"input \(batch, 1, 64, 64\)"),
}
#: (runtime, mismatch) → why that runtime cannot see it
CANNOT_SEE = {
    ("torch", "size"): "a safetensors file has no input size and mini_xception is fully convolutional: it runs "
                       "48×48 as well as 64×64 (the bundle's ONNX and IR, which fix 64×64, refuse it)",
}


@pytest.mark.parametrize("mismatch", sorted(MISMATCHES))
@pytest.mark.parametrize("runtime", sorted(RUNTIME_CASES))
def test_members_that_disagree_are_refused_in_one_line(default_bundle, tmp_path, runtime, mismatch):
    if RUNTIME_CASES[runtime]:
        pytest.skip(RUNTIME_CASES[runtime])
    edit, message = MISMATCHES[mismatch]
    bundle = _edited_copy(default_bundle, tmp_path, edit)
    runner = runner_class(runtime).from_bundle(bundle)
    if (runtime, mismatch) in CANNOT_SEE:
        runner.activate().deactivate()  # documented: this runtime cannot know; the others refuse it
        return
    with pytest.raises(BundleError, match=message) as info:
        runner.activate()
    assert "\n" not in str(info.value) and str(bundle.root) in str(info.value)
    assert not runner.is_active


@pytest.mark.parametrize("runtime", sorted(RUNTIME_CASES))
def test_a_consistent_bundle_activates(default_bundle, runtime):
    if RUNTIME_CASES[runtime]:
        pytest.skip(RUNTIME_CASES[runtime])
    with runner_class(runtime).from_bundle(Bundle.load(default_bundle)) as runner:
        assert runner.contract is not None and runner.contract.classes == 7
        assert runner.infer(np.zeros((2, 1, 64, 64), np.float32)).shape == (2, 7)
        assert len(runner.timings) == 1  # the activation probe is not a timed inference


def test_tensorrt_runner_checks_the_bundle_with_a_stand_in_engine(default_bundle, tmp_path, monkeypatch):
    """TensorRT cannot run here: its runner's path through from_bundle/activate is run with the
    engine replaced by a stand-in (the engine's input metadata and a 7-wide output)."""
    from feredge.runtimes.tensorrt.runner import TensorRTRunner

    def engine(self):
        self.stand_in = True
        return TensorMeta("input", (None, 1, 64, 64), "float32")

    monkeypatch.setattr(TensorRTRunner, "_activate", engine)
    monkeypatch.setattr(TensorRTRunner, "_infer", lambda self, batch: np.zeros((len(batch), 7), np.float32))
    monkeypatch.setattr(TensorRTRunner, "_deactivate", lambda self: None)
    TensorRTRunner.from_bundle(Bundle.load(default_bundle)).activate()  # consistent: loads
    for mismatch in ("labels", "size"):
        edit, message = MISMATCHES[mismatch]
        bundle = _edited_copy(default_bundle, tmp_path / mismatch, edit)
        with pytest.raises(BundleError, match=message):
            TensorRTRunner.from_bundle(bundle).activate()


# --- the base class on its own: what every runtime inherits -------------------------------------

class _Fake(Runner):
    name = "fake"  # its row: the fake_row fixture

    def __init__(self, *args, out_shape=(1, 7), fail=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.out_shape, self.fail, self.freed = out_shape, fail, 0

    def _activate(self) -> TensorMeta:
        return TensorMeta("input", (None, 1, None, None))  # dynamic size: only the probe can tell

    def _infer(self, batch):
        if self.fail:
            raise RuntimeError("Got invalid dimensions for input\nsecond line")
        return np.zeros((len(batch), *self.out_shape[1:]), np.float32)

    def _deactivate(self):
        self.freed += 1


@pytest.fixture
def fake_row(monkeypatch):
    """The base class's stand-in back end reads its facts from a row like every runner."""
    from feredge.backends import BACKENDS, Backend

    monkeypatch.setitem(BACKENDS, "fake", Backend("fake", "the base class on its own", runner=f"{__name__}:_Fake",
                                                  bundle_roles=("onnx",), bundle_target="onnx"))


@pytest.mark.usefixtures("fake_row")
@pytest.mark.parametrize(("out_shape", "fail", "message"), [
    ((1, 6), False, "lists 7 labels but the model outputs 6 values per face"),
    ((1, 7, 1, 1), False, r"outputs 1 values per face \(output shape \(1, 7, 1, 1\)\)"),
    ((1, 7), True, r"model cannot run the spec's input \(1, 64, 64\) \(Got invalid dimensions for input\)"),
])
def test_the_probe_catches_what_metadata_cannot(default_bundle, out_shape, fail, message):
    runner = _Fake.from_bundle(Bundle.load(default_bundle), out_shape=out_shape, fail=fail)
    with pytest.raises(BundleError, match=message) as info:
        runner.activate()
    assert "\n" not in str(info.value)
    assert runner.freed == 1 and not runner.is_active  # what the back end loaded is freed


@pytest.mark.usefixtures("fake_row")
def test_a_runner_made_from_a_bare_file_has_no_contract(tmp_path):
    runner = _Fake(tmp_path / "model.onnx", out_shape=(1, 3))
    assert runner.activate().is_active and runner.contract is None


# --- threads and the bounded timings window (issue 14, memory and class 6) ----------------------

@pytest.mark.parametrize("threads", [-1, 0, 1.5, "4", True])
@pytest.mark.parametrize("runtime", sorted(runtime_names()))
def test_bad_threads_are_refused_before_loading(tmp_path, runtime, threads):
    cls = runtime_info(runtime).runner_class()  # the class itself: tensorrt's imports without TensorRT
    with pytest.raises(FeredgeError, match=rf"threads must be a positive integer.*got {threads!r}"):
        cls(tmp_path / "missing.onnx", threads=threads)


def test_threads_reach_the_pipeline_validation(default_bundle):
    from feredge.runtimes.pipeline import Pipeline

    with pytest.raises(FeredgeError, match="threads must be a positive integer") as info:
        Pipeline.from_bundle(default_bundle, runtime="onnxruntime", threads=-1)
    assert "cannot load the model" not in str(info.value)


@pytest.mark.usefixtures("fake_row")
def test_timings_keep_a_bounded_window(tmp_path):
    runner = _Fake(tmp_path / "m.onnx").activate()
    batch = np.zeros((1, 1, 8, 8), np.float32)
    for _ in range(TIMINGS_WINDOW + 5):
        runner.infer(batch)
    assert isinstance(runner.timings, deque) and len(runner.timings) == TIMINGS_WINDOW
    assert runner.last_inference_time == runner.timings[-1]
    runner.reset_timings(3)
    assert len(runner.timings) == 0
    for _ in range(5):
        runner.infer(batch)
    assert len(runner.timings) == 3 and np.asarray(runner.timings).shape == (3,)
    with pytest.raises(FeredgeError, match="timings window must be a positive integer"):
        runner.reset_timings(0)
