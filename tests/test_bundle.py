"""Bundles are untrusted: hashes verified, paths confined, manifests validated."""

from pathlib import Path

import pytest

from feredge.bundle import Bundle, BundleError, staged_bundle
from tests.bundle_edit import edit_manifest as _edit_manifest


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


# --- every file listed: what a runtime reads implicitly is hashed too (issue 14, class 3) -----------

def _rehash(root: Path, name: str) -> None:
    from feredge.bundle import file_entry

    def edit(manifest):
        manifest["files"][name] = file_entry(root / name, manifest["files"][name]["role"])
    _edit_manifest(root, edit)


def test_the_openvino_bin_is_listed_with_its_role(default_bundle):
    files = Bundle.load(default_bundle).manifest["files"]
    assert files["model.bin"]["role"] == "openvino_bin"
    assert files["model.xml"]["role"] == "openvino_xml"


def test_a_tampered_bin_is_refused(bundle_copy):
    data = bytearray((bundle_copy / "model.bin").read_bytes())
    data[len(data) // 2] ^= 0x40  # one weight's bit: enough to change an answer, not the file size
    (bundle_copy / "model.bin").write_bytes(bytes(data))
    with pytest.raises(BundleError, match=r"model\.bin does not match its sha256") as info:
        Bundle.load(bundle_copy)
    assert "\n" not in str(info.value)


def test_an_old_bundle_without_the_bin_entry_is_refused_with_a_re_export_hint(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m["files"].pop("model.bin"))
    with pytest.raises(BundleError, match=r"model\.bin, which OpenVINO reads with model\.xml, is not listed.*"
                                          r"re-export the bundle"):
        Bundle.load(bundle_copy)


def test_a_bin_that_is_neither_listed_nor_present_is_refused(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m["files"].pop("model.bin"))
    (bundle_copy / "model.bin").unlink()
    with pytest.raises(BundleError, match=r"manifest does not list model\.bin, which OpenVINO reads with model\.xml"):
        Bundle.load(bundle_copy)


@pytest.mark.parametrize("name", ["extra.onnx", "sub/dir/model.bin", ".hidden", "engines/x/model.engine"])
def test_an_unlisted_file_is_refused(bundle_copy, name):
    (bundle_copy / name).parent.mkdir(parents=True, exist_ok=True)
    (bundle_copy / name).write_bytes(b"not in the manifest")
    with pytest.raises(BundleError, match=rf"{name.replace('.', chr(92) + '.')} is in the bundle but not in its "
                                          "manifest.*remove it or re-export"):
        Bundle.load(bundle_copy)


def test_an_unlisted_symlink_is_refused_even_to_a_directory(bundle_copy, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    (bundle_copy / "linked").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(BundleError, match="linked is in the bundle but not in its manifest"):
        Bundle.load(bundle_copy)


def test_a_file_added_through_add_file_is_listed_and_loads(bundle_copy):
    (bundle_copy / "engines" / "k").mkdir(parents=True)
    (bundle_copy / "engines" / "k" / "model.engine").write_bytes(b"engine bytes")
    Bundle.load(bundle_copy, verify=False).add_file("engines/k/model.engine", "trt_engine", key="k")
    bundle = Bundle.load(bundle_copy)
    assert bundle.roles()["trt_engine"] == "engines/k/model.engine"
    (bundle_copy / "engines" / "k" / "model.engine").write_bytes(b"swapped")
    with pytest.raises(BundleError, match="does not match its sha256"):
        Bundle.load(bundle_copy)


def test_a_leftover_manifest_temporary_is_tolerated(bundle_copy):
    # _write_json_atomic's temporary, left by a process killed mid-write: nothing reads it
    (bundle_copy / ".manifest-abc123.json").write_text("{")
    Bundle.load(bundle_copy)


def test_labels_disagreeing_with_the_declared_output_are_refused(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m["labels"].pop())
    with pytest.raises(BundleError, match="output width 7 disagrees with its 6 labels"):
        Bundle.load(bundle_copy)


@pytest.mark.parametrize("labels", [[], ["happy", "happy"], ["a", 3], "happy"])
def test_malformed_labels_are_refused(bundle_copy, labels):
    _edit_manifest(bundle_copy, lambda m: m.update(labels=labels))
    with pytest.raises(BundleError, match="labels must be a non-empty list of distinct names"):
        Bundle.load(bundle_copy)


def test_a_spec_disagreeing_with_the_declared_input_is_refused(bundle_copy):
    _edit_manifest(bundle_copy, lambda m: m["spec"].update(input_size=[48, 48]))
    with pytest.raises(BundleError, match=r"input shape \[None, 1, 64, 64\] disagrees with the spec's \[1, 48, 48\]"):
        Bundle.load(bundle_copy)


def test_a_directory_that_cannot_be_listed_is_refused(bundle_copy, monkeypatch):
    # root reads anything (CI runs as root), so the listing failure is injected
    import errno
    import os

    real_walk = os.walk

    def walk(top, onerror=None, followlinks=False):
        yield from real_walk(top, onerror=onerror, followlinks=followlinks)
        onerror(PermissionError(errno.EACCES, "Permission denied", str(bundle_copy / "engines")))

    monkeypatch.setattr("feredge.bundle.os.walk", walk)
    with pytest.raises(BundleError, match=r"cannot list .*engines \(Permission denied\)"):
        Bundle.load(bundle_copy)


def test_a_files_precision_is_recorded_and_inferred_for_older_manifests():
    from feredge.bundle import Bundle

    def bundle(target: str, precision: str, files: dict) -> Bundle:
        return Bundle(Path("."), {"target": target, "precision": precision, "files": files})

    files = {"model.onnx": {"role": "onnx"}, "model.xml": {"role": "openvino_xml"},
             "weights.safetensors": {"role": "weights"}, "model.qdq.onnx": {"role": "qdq_onnx"}}
    ov = bundle("openvino", "int8", files)
    assert [ov.role_precision(r) for r in ("onnx", "openvino_xml", "weights", "qdq_onnx")] == [
        "fp32", "int8", "fp32", "int8"]
    onnx = bundle("onnx", "int8", {"model.onnx": {"role": "onnx"}})
    assert onnx.role_precision("onnx") == "int8"  # the onnx target's model.onnx is the artifact
    recorded = bundle("openvino", "fp16", {"model.onnx": {"role": "onnx", "precision": "fp16"}})
    assert recorded.role_precision("onnx") == "fp16"  # what the export wrote wins
