"""The real exporter's last steps (issue 14, classes 3 and 4): the staged bundle is loaded the way a
device loads it before it replaces anything, and the exists/--force decision is taken again at the
final rename (another export that finished first is left intact)."""

from __future__ import annotations

import shutil

import pytest

from feredge.bundle import Bundle
from feredge.errors import FeredgeError
from feredge.export import exporter, targets
from feredge.export.exporter import ExportOptions, export


def test_a_bundle_appearing_during_an_export_without_force_is_left_intact(default_bundle, tmp_path, monkeypatch):
    out = tmp_path / "out"
    real_build = targets.build_onnx

    def build_while_another_export_finishes(ctx):
        real_build(ctx)
        shutil.copytree(default_bundle, out)  # the other export wins the race

    # the onnx row names its build "feredge.export.targets:build_onnx", looked up when the export runs
    monkeypatch.setattr(targets, "build_onnx", build_while_another_export_finishes)
    with pytest.raises(FeredgeError, match=r"appeared while exporting .*pass --force") as info:
        export(ExportOptions(target="onnx", output=out))
    assert "\n" not in str(info.value)
    assert Bundle.load(out).roles()["openvino_xml"] == "model.xml"  # theirs, untouched (an openvino bundle)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_target_that_writes_an_unlisted_file_fails_the_export(tmp_path, monkeypatch):
    real_build = targets.build_onnx

    def sloppy(ctx):
        real_build(ctx)
        (ctx.staging / "scratch.tmp").write_bytes(b"left behind")

    monkeypatch.setattr(targets, "build_onnx", sloppy)
    with pytest.raises(FeredgeError, match=r"export wrote an inconsistent bundle.*scratch\.tmp is in the bundle"):
        export(ExportOptions(target="onnx", output=tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_the_model_must_output_one_value_per_label(tmp_path, monkeypatch):
    real = exporter.resolve_source

    def source_with_a_label_too_many(model, checkpoint):
        source = real(model, checkpoint)
        source.labels = (*source.labels, "extra")
        return source

    monkeypatch.setattr(exporter, "resolve_source", source_with_a_label_too_many)
    with pytest.raises(FeredgeError, match="outputs 7 values per face but has 8 labels"):
        export(ExportOptions(target="onnx", output=tmp_path / "out"))
