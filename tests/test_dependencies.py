"""Every dependency feredge declares is installed at a declared version and imports.

The suite runs on the README's install (``pip install -e ".[dev]"``). A dependency that is declared
but does not import (ModelOpt 0.47 imports ``requests`` without declaring it) must fail here, not
make other tests skip: that is how a broken INT8 install once passed CI.
"""

from __future__ import annotations

import importlib
import importlib.metadata as metadata

import pytest
from packaging.requirements import Requirement

#: declared distribution → the module(s) feredge imports from it. A new dependency without an entry
#: fails test_every_declared_dependency_has_an_import_entry.
IMPORTS: dict[str, tuple[str, ...]] = {
    "numpy": ("numpy",),
    "opencv-python-headless": ("cv2",),
    "pillow": ("PIL.Image",),
    "tqdm": ("tqdm",),
    "pyyaml": ("yaml",),
    "onnxruntime": ("onnxruntime",),
    "openvino": ("openvino",),
    "torch": ("torch",),
    "torchvision": ("torchvision",),
    "safetensors": ("safetensors.torch", "safetensors.numpy"),
    "onnx": ("onnx",),
    "onnxscript": ("onnxscript",),
    "onnxconverter-common": ("onnxconverter_common",),
    "scikit-image": ("skimage.data",),
    "nvidia-modelopt": ("modelopt.torch.quantization", "modelopt.torch.opt"),
    "huggingface-hub": ("huggingface_hub",),
    "requests": ("requests",),
    "nncf": ("nncf", "nncf.openvino"),
    "pytest": ("pytest",),
    "ruff": ("ruff",),
    "mypy": ("mypy.api",),
    "h5py": ("h5py",),
    "matplotlib": ("matplotlib.pyplot",),
    "tritonclient": ("tritonclient.http", "tritonclient.grpc.model_config_pb2"),
}


def _canonical(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def declared(extras: tuple[str, ...] = ("dev",)) -> list[Requirement]:
    """feredge's requirements for the install with ``extras``, following ``feredge[...]`` self-references."""
    requirements = [Requirement(text) for text in metadata.requires("feredge") or ()]
    active, pending = set(), list(extras)
    while pending:
        extra = pending.pop()
        if extra in active:
            continue
        active.add(extra)
        for req in requirements:
            if _canonical(req.name) == "feredge" and req.marker is not None and req.marker.evaluate({"extra": extra}):
                pending.extend(req.extras)
    chosen = []
    for req in requirements:
        if _canonical(req.name) == "feredge":
            continue
        if req.marker is None or any(req.marker.evaluate({"extra": extra}) for extra in active):
            chosen.append(req)
    return chosen


DECLARED = declared()


def test_the_dev_install_declares_the_back_ends():
    names = {_canonical(req.name) for req in DECLARED}
    assert {"torch", "openvino", "nvidia-modelopt", "nncf", "requests", "scikit-image"} <= names


def test_every_declared_dependency_has_an_import_entry():
    missing = sorted(_canonical(req.name) for req in DECLARED if _canonical(req.name) not in IMPORTS)
    assert not missing, f"add the import name of {missing} to IMPORTS"


@pytest.mark.parametrize("requirement", DECLARED, ids=lambda req: _canonical(req.name))
def test_declared_dependency_is_installed_and_imports(requirement: Requirement):
    version = metadata.version(requirement.name)  # PackageNotFoundError: not installed
    assert requirement.specifier.contains(version, prereleases=True), f"{requirement.name} {version} ∉ {requirement}"
    for module in IMPORTS.get(_canonical(requirement.name), ()):
        importlib.import_module(module)


def test_exporting_install_ships_the_gate_faces():
    """The INT8 gate measures on LFW faces; they come with the install that exports, not a dev extra."""
    train = {_canonical(req.name) for req in declared(("train",))}
    assert "scikit-image" in train
    from feredge.calibration.reference import lfw_faces

    faces = lfw_faces()
    assert faces is not None and len(faces) >= 100
