"""The prebuilt default bundle (feredge/assets/default_bundle) and the per-user cache (feredge.default_bundle).

Fast: the shipped bundle verifies and runs with the training side unimportable; the cache follows the
XDG rule; a runtime that writes into its bundle gets a verified cache copy and the package is never
written. Slow: the shipped bundle still matches a fresh export (what scripts/build_default_bundle.py
writes) and PyTorch on the real reference faces; a fresh core-only virtual environment runs it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import feredge
from feredge import default_bundle as db
from feredge.bundle import MANIFEST, Bundle, BundleError, bundle_files
from feredge.version import __version__

ROOT = Path(feredge.__file__).resolve().parents[1]
#: what a Jetson's core install lacks: the training side, and OpenVINO (an extra)
NOT_IN_CORE = ("torch", "torchvision", "safetensors", "onnx", "onnxscript", "modelopt", "nncf", "skimage", "openvino")


def core_env(tmp: Path) -> dict[str, str]:
    """A subprocess environment with its own HOME and XDG cache under ``tmp`` (this checkout importable)."""
    env = dict(os.environ)
    env.update(HOME=str(tmp / "home"), XDG_CACHE_HOME=str(tmp / "cache"),
               PYTHONPATH=os.pathsep.join([str(ROOT), *filter(None, [env.get("PYTHONPATH")])]))
    return env


def run_without_training_side(code: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``code`` with everything the core install lacks made unimportable (``import torch`` raises)."""
    blocked = "\n".join(f"sys.modules[{name!r}] = None" for name in NOT_IN_CORE)
    script = f"import sys\n{blocked}\n{textwrap.dedent(code)}"
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def package_snapshot() -> dict[str, tuple[int, int]]:
    """name → (size, mtime_ns) of every file of the shipped bundle: to show nothing wrote into the package."""
    return {name: ((db.SHIPPED_BUNDLE / name).stat().st_size, (db.SHIPPED_BUNDLE / name).stat().st_mtime_ns)
            for name in bundle_files(db.SHIPPED_BUNDLE)}


def test_the_shipped_bundle_is_the_default_export_and_verifies_without_the_training_side(tmp_path: Path) -> None:
    manifest = json.loads((db.SHIPPED_BUNDLE / MANIFEST).read_text(encoding="utf-8"))
    assert (manifest["model"]["name"], manifest["model"]["origin"]) == ("mini_xception", "pretrained")
    assert (manifest["target"], manifest["precision"]) == (db.SHIPPED_TARGET, db.SHIPPED_PRECISION)
    roles = {entry["role"] for entry in manifest["files"].values()}
    assert {"onnx", "openvino_xml", "openvino_bin", "weights", "detector.onnx", "detector.openvino_xml"} <= roles
    assert all(p["passed"] and p["samples"] == 132 for p in manifest["parity"]["results"])
    assert {p["runtime"].split()[0] for p in manifest["parity"]["results"]} == {"onnxruntime", "openvino"}
    assert sorted(bundle_files(db.SHIPPED_BUNDLE)) == sorted([MANIFEST, *manifest["files"]])  # nothing stray
    result = run_without_training_side(f"""
        from feredge.bundle import Bundle
        from feredge.default_bundle import SHIPPED_BUNDLE, default_bundle
        bundle = Bundle.load(SHIPPED_BUNDLE)  # every sha256 checked
        assert default_bundle() == default_bundle("onnxruntime") == SHIPPED_BUNDLE
        from feredge.runtimes.registry import auto_runtime
        assert auto_runtime(bundle) == "onnxruntime", auto_runtime(bundle)
        loaded = [m for m in sys.modules if sys.modules[m] is not None]
        assert not [m for m in loaded if m.split(".")[0] in {NOT_IN_CORE!r}], loaded
        assert not [m for m in loaded if m.startswith("feredge.export")], loaded
        print("ok", bundle.model_name)
    """, tmp_path, core_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["ok", "mini_xception"]


def test_a_tampered_shipped_bundle_is_refused_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / "default_bundle"
    shutil.copytree(db.SHIPPED_BUNDLE, copy)
    with open(copy / "model.onnx", "r+b") as handle:
        handle.seek(200)
        byte = handle.read(1)
        handle.seek(200)
        handle.write(bytes([byte[0] ^ 0xFF]))
    monkeypatch.setattr(db, "SHIPPED_BUNDLE", copy)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # refused where it is opened: what feredge.load() runs, and the cache copy a writing runtime gets
    with pytest.raises(BundleError, match=r"model\.onnx does not match its sha256"):
        feredge.load(runtime="onnxruntime")
    with pytest.raises(BundleError, match=r"model\.onnx does not match its sha256"):
        db.default_bundle("tensorrt")
    assert not (tmp_path / "cache" / "feredge").exists()  # nothing tampered is copied
    monkeypatch.setattr(db, "SHIPPED_BUNDLE", tmp_path / "absent")
    with pytest.raises(BundleError, match="prebuilt default bundle is missing from this installation"):
        db.default_bundle()


@pytest.mark.parametrize("runtime", ["auto", "onnxruntime"])
def test_loading_the_default_bundle_checks_its_hashes_once(runtime: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Choosing the prebuilt bundle reads its manifest; the pipeline that opens it verifies every file, once."""
    checked: list[Path] = []
    real = Bundle.verify

    def counted(self: Bundle) -> None:
        checked.append(self.root)
        real(self)

    monkeypatch.setattr(Bundle, "verify", counted)
    with feredge.load(runtime=runtime) as recognizer:
        assert str(recognizer.pipeline.runner.model_path).startswith(str(db.SHIPPED_BUNDLE))
    assert checked == [db.SHIPPED_BUNDLE]


@pytest.mark.parametrize("xdg, expected", [
    ("/var/cache/u", Path("/var/cache/u")),
    ("relative/dir", None),  # the XDG rule: a relative path is ignored
    ("", None),
    (None, None),
])
def test_the_cache_follows_the_xdg_rule_and_the_version(xdg: str | None, expected: Path | None, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    home = expected or tmp_path / ".cache"
    assert db.cache_home() == home
    assert db.cache_dir() == home / "feredge" / __version__
    assert db.cache_bundle_path("m", "onnx", "int8") == home / "feredge" / __version__ / "m-onnx-int8"


def test_export_without_output_goes_to_the_cache_not_the_working_directory(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from feredge.export.exporter import default_output

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_output("openvino", "mini_xception", "fp32") == (
        tmp_path / "feredge" / __version__ / "mini_xception-openvino-fp32")


def test_a_runtime_that_writes_its_bundle_gets_a_cache_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TensorRT adds its engine to the bundle: it runs a verified copy in the cache, reused while it holds the
    shipped files (with whatever the runtime added), replaced when it does not; the package is not touched."""
    from feredge.backends import BACKENDS

    assert [name for name, row in BACKENDS.items() if row.writes_bundle] == ["tensorrt"]
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    before = package_snapshot()
    copy = db.default_bundle("tensorrt")
    assert copy == tmp_path / "cache" / "feredge" / __version__ / "mini_xception-openvino-fp32"
    shipped = Bundle.load(db.SHIPPED_BUNDLE)
    assert Bundle.load(copy).manifest == shipped.manifest
    assert db.default_bundle(["onnxruntime", "trt"]) == copy  # any of a command's runtimes: an alias too
    assert db.default_bundle(["onnxruntime", "openvino"]) == db.SHIPPED_BUNDLE
    (copy / "engine.plan").write_bytes(b"an engine this device built")
    Bundle.load(copy, verify=False).add_file("engine.plan", "trt_engine", key="sm87-trt10.3")  # as TensorRT does
    assert db.default_bundle("tensorrt") == copy and (copy / "engine.plan").is_file()  # reused, engine kept
    (copy / "model.onnx").write_bytes(b"not the model")
    assert db.default_bundle("tensorrt") == copy
    assert Bundle.load(copy).manifest["files"] == shipped.manifest["files"]  # replaced by a fresh copy
    assert package_snapshot() == before


def test_an_unwritable_cache_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))
    with pytest.raises(BundleError, match=r"cannot write the cache copy of the default bundle.*XDG_CACHE_HOME"):
        db.default_bundle("tensorrt")


def test_load_predicts_from_the_prebuilt_bundle_without_the_training_side(tmp_path: Path,
                                                                         astronaut_path: Path) -> None:
    """The README's three lines, plus an array and given boxes, in a core install: nothing written anywhere."""
    work = tmp_path / "work"
    work.mkdir()
    before = package_snapshot()
    result = run_without_training_side(f"""
        import cv2
        import feredge
        m = feredge.load()
        faces = m.predict({str(astronaut_path)!r})
        assert [f.label for f in faces] == ["happy"] and faces[0].probability > 0.9, faces
        assert m.pipeline.runner.name == "onnxruntime", m.pipeline.runner.name
        frame = cv2.imread({str(astronaut_path)!r})
        same = m.predict(frame)
        assert [f.box for f in same] == [f.box for f in faces], same
        x, y, w, h = faces[0].box.as_list()
        boxed = m.predict(frame, boxes=[(x, y, w, h)])
        assert [f.label for f in boxed] == ["happy"] and abs(boxed[0].probability - faces[0].probability) < 1e-5
        from feredge.default_bundle import SHIPPED_BUNDLE
        assert str(m.pipeline.runner.model_path).startswith(str(SHIPPED_BUNDLE)), m.pipeline.runner.model_path
        loaded = [name for name in sys.modules if sys.modules[name] is not None]
        assert not [n for n in loaded if n.split(".")[0] in ("torch", "openvino")], loaded
        print("ok", faces[0].box.as_list())
    """, work, core_env(tmp_path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok [")
    assert list(work.iterdir()) == []
    assert not (tmp_path / "cache" / "feredge").exists() and not (tmp_path / "home").exists()
    assert package_snapshot() == before


@pytest.mark.slow
def test_the_shipped_bundle_matches_a_fresh_export_and_torch_on_real_faces(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What scripts/build_default_bundle.py would write today: same model, spec, labels, contract and files;
    the shipped ONNX (ONNX Runtime) and IR (OpenVINO) within the fp32 gate of PyTorch and of the fresh ONNX
    on the 132 real reference faces. An installation without the prebuilt bundle exports this into the cache."""
    from feredge.calibration.reference import reference_faces
    from feredge.export.onnx_export import torch_logits
    from feredge.models import create_model, deploy_graph
    from feredge.parity import compare_logits
    from feredge.runtimes.registry import runner_class

    shipped = Bundle.load(db.SHIPPED_BUNDLE)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(db, "SHIPPED_BUNDLE", tmp_path / "not-installed")
    fresh_path = db.ensure_default_bundle(quiet=True)
    assert fresh_path == tmp_path / "cache" / "feredge" / __version__ / "mini_xception-openvino-fp32"
    fresh = Bundle.load(fresh_path)
    for key in ("model", "labels", "spec", "precision", "target", "input", "output", "schema_version"):
        assert shipped.manifest[key] == fresh.manifest[key], key
    assert ({n: e["role"] for n, e in shipped.manifest["files"].items()}
            == {n: e["role"] for n, e in fresh.manifest["files"].items()})
    assert shipped.manifest["networks"].keys() == fresh.manifest["networks"].keys()
    assert (shipped.manifest["networks"]["detector"]["spec"] == fresh.manifest["networks"]["detector"]["spec"])

    faces = reference_faces(shipped.spec).batch
    model = create_model(shipped.model_name, pretrained=True)
    expected = torch_logits(deploy_graph(model), faces)

    def logits(bundle: Bundle, runtime: str) -> np.ndarray:
        with runner_class(runtime).from_bundle(bundle) as runner:
            return runner.infer_all(faces)

    fresh_onnx = logits(fresh, "onnxruntime")
    for runtime in ("onnxruntime", "openvino"):
        got = logits(shipped, runtime)
        for reference, what in ((expected, "torch"), (fresh_onnx, "fresh export")):
            parity = compare_logits(reference, got, runtime=runtime)
            assert parity.passed and parity.samples == 132, (runtime, what, parity)
    assert db.ensure_default_bundle(quiet=True) == fresh_path  # exported once, then reused


def _pip_reaches_an_index(python: Path, scratch: Path) -> bool:
    probe = subprocess.run([str(python), "-m", "pip", "download", "--quiet", "--no-deps", "--dest", str(scratch),
                            "tqdm>=4.60"], capture_output=True, text=True, timeout=180)
    return probe.returncode == 0


@pytest.mark.slow
def test_a_fresh_core_install_runs_the_default_model(tmp_path: Path, astronaut_path: Path) -> None:
    """A new virtual environment, `pip install feredge` with its declared core dependencies only (no extras:
    no torch, no OpenVINO — a Jetson's install), then `feredge infer` and the three lines from a fresh
    directory: the wheel carries the prebuilt bundle (package data) and nothing is written where it runs."""
    source = tmp_path / "src"  # a copy: pip builds in the source tree (build/, *.egg-info)
    source.mkdir()
    shutil.copy(ROOT / "pyproject.toml", source)
    shutil.copy(ROOT / "README.md", source)
    shutil.copytree(ROOT / "feredge", source / "feredge", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=120)
    python = tmp_path / "venv" / "bin" / "python"
    if not _pip_reaches_an_index(python, tmp_path / "probe"):
        pytest.skip("pip cannot reach a package index (nor the local one) to install the core dependencies")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(HOME=str(tmp_path / "home"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", str(source)], env=env,
                             capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(astronaut_path, work / "astronaut.jpg")
    check = subprocess.run([str(python), "-c", "import importlib.util as u, feredge; "
                            "print(feredge.__file__, [m for m in ('torch', 'openvino') if u.find_spec(m)])"],
                           cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert check.returncode == 0, check.stderr
    where, missing = check.stdout.split(" ", 1)
    assert where.startswith(str(tmp_path / "venv")) and missing.strip() == "[]", check.stdout  # installed, core only
    infer = subprocess.run([str(tmp_path / "venv" / "bin" / "feredge"), "infer", "astronaut.jpg"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=300)
    assert infer.returncode == 0, infer.stderr
    assert "astronaut.jpg#0: face at" in infer.stdout and "→ happy" in infer.stdout, infer.stdout
    api = subprocess.run([str(python), "-c", "import feredge; m = feredge.load(); "
                          "print([f.label for f in m.predict('astronaut.jpg')])"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert api.returncode == 0, api.stderr
    assert api.stdout.strip() == "['happy']"
    assert sorted(p.name for p in work.iterdir()) == ["astronaut.jpg"]
    assert not (tmp_path / "cache" / "feredge").exists()
