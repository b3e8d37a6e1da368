"""Bundles are untrusted: hashes verified, paths confined, manifests validated."""

import json
import shutil
from pathlib import Path

import pytest

from feredge.bundle import Bundle, BundleError, staged_bundle


@pytest.fixture
def bundle_copy(default_bundle, tmp_path) -> Path:
    target = tmp_path / "copy"
    shutil.copytree(default_bundle, target)
    return target


def _edit_manifest(root: Path, edit) -> None:
    manifest = json.loads((root / "manifest.json").read_text())
    edit(manifest)
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_a_fresh_bundle_verifies_and_describes_itself(default_bundle):
    bundle = Bundle.load(default_bundle)
    assert bundle.model_name == "mini_xception"
    assert bundle.labels[3] == "happy"
    assert {"onnx", "openvino_xml", "openvino_bin", "weights"} <= set(bundle.roles())
    assert all(result["passed"] for result in bundle.manifest["parity"]["results"])
    assert {"torch", "onnx", "onnxruntime", "openvino"} <= set(bundle.manifest["toolchain"])


def test_tampered_file_is_refused(bundle_copy):
    with open(bundle_copy / "model.onnx", "ab") as handle:
        handle.write(b"\x00")
    with pytest.raises(BundleError, match=r"model\.onnx does not match its sha256"):
        Bundle.load(bundle_copy)


def test_missing_manifest(bundle_copy):
    (bundle_copy / "manifest.json").unlink()
    with pytest.raises(BundleError, match=r"has no manifest\.json"):
        Bundle.load(bundle_copy)


def test_malformed_manifest(bundle_copy):
    (bundle_copy / "manifest.json").write_text('{"schema_version": 1, "files": ')
    with pytest.raises(BundleError, match="malformed manifest"):
        Bundle.load(bundle_copy)


def test_manifest_missing_keys(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m.pop("labels"))
    with pytest.raises(BundleError, match="lacks labels"):
        Bundle.load(bundle_copy)


def test_newer_schema_is_refused(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m.update(schema_version=99))
    with pytest.raises(BundleError, match="schema 99 is not supported"):
        Bundle.load(bundle_copy)


@pytest.mark.parametrize("name", ["../outside.onnx", "/etc/passwd", "sub/../../x", "C:\\x.onnx"])
def test_paths_escaping_the_bundle_are_refused(bundle_copy, name):
    _edit_manifest(bundle_copy, lambda m: m["files"].update({name: {"role": "onnx", "sha256": "0" * 64}}))
    with pytest.raises(BundleError, match="outside the bundle"):
        Bundle.load(bundle_copy)


def test_symlink_escaping_the_bundle_is_refused(bundle_copy, tmp_path):
    (tmp_path / "secret.txt").write_text("secret")
    (bundle_copy / "link.txt").symlink_to(tmp_path / "secret.txt")
    _edit_manifest(bundle_copy, lambda m: m["files"].update({"link.txt": {"role": "x", "sha256": "0" * 64}}))
    with pytest.raises(BundleError, match="resolves outside the bundle"):
        Bundle.load(bundle_copy)


def test_failed_staging_leaves_the_previous_bundle_intact(tmp_path):
    target = tmp_path / "bundle"
    target.mkdir()
    (target / "keep.txt").write_text("old")
    with pytest.raises(RuntimeError), staged_bundle(target, overwrite=True) as staging:
        (staging / "half.onnx").write_bytes(b"partial")
        raise RuntimeError("export died half-way")
    assert (target / "keep.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle"]
