"""The device side (preprocess, bundle, runtimes, pipeline, infer/bench) must run without torch."""

import subprocess
import sys
import textwrap


def test_pipeline_runs_a_bundle_with_torch_unimportable(default_bundle, astronaut_path):
    script = textwrap.dedent(f"""
        import sys
        sys.modules["torch"] = None  # any 'import torch' now raises ImportError
        from feredge.runtimes.pipeline import Pipeline
        from feredge.preprocess.image_io import read_image
        from feredge.cli import main
        with Pipeline.from_bundle({str(default_bundle)!r}, runtime="onnxruntime") as p:
            faces = p.run(read_image({str(astronaut_path)!r}).image).faces
        assert [f.label for f in faces] == ["happy"], faces
        assert main(["bench", "--bundle", {str(default_bundle)!r}, "--runtimes", "openvino",
                     "--batch", "1", "--iterations", "2", "--warmup", "0", "--json"]) == 0
        assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_tensorrt_device_package_imports_without_torch_or_the_export_side(default_bundle):
    """Every module of feredge.runtimes.tensorrt imports, and the plan, trtexec lines and pre-flight of a
    bundle are computed, with torch and ModelOpt unimportable and feredge.export blocked; TensorRT
    itself (absent here) is named with what to install."""
    script = textwrap.dedent(f"""
        import importlib, pkgutil, sys
        for name in ("torch", "torchvision", "modelopt", "nncf", "feredge.export", "feredge.quantize"):
            sys.modules[name] = None  # any import of these now raises ImportError
        import feredge.runtimes.tensorrt as package
        names = sorted(m.name for m in pkgutil.iter_modules(package.__path__))
        for name in names:
            importlib.import_module(f"feredge.runtimes.tensorrt.{{name}}")
        assert {{"builder", "calibrator", "cuda", "engine_key", "plan", "profile", "runner", "trtexec"}} <= set(names)
        from feredge.bundle import Bundle
        from feredge.runtimes.tensorrt.builder import probe_tensorrt
        from feredge.runtimes.tensorrt.engine_key import EngineKey, preflight
        from feredge.runtimes.tensorrt.plan import plan_from_manifest
        from feredge.runtimes.tensorrt.trtexec import trtexec_commands
        bundle = Bundle.load({str(default_bundle)!r})
        lines = trtexec_commands(plan_from_manifest(bundle.manifest))
        assert lines["10"].startswith("trtexec --onnx=model.onnx "), lines
        assert preflight(bundle.manifest["files"], EngineKey("87", "10.3.0"), build_allowed=False).action == "refuse"
        from feredge.errors import MissingBackendError
        from feredge.runtimes.registry import is_available, runner_class
        if not is_available("tensorrt"):
            assert probe_tensorrt() == (None, "TensorRT is not installed on this machine")
            try:
                runner_class("tensorrt")
            except MissingBackendError as exc:
                assert "pip install tensorrt" in str(exc) and "cuda-python" in str(exc), exc
            else:
                raise AssertionError("runner_class('tensorrt') without TensorRT must say what to install")
        loaded = [m for m in sys.modules if sys.modules[m] is not None]
        assert not [m for m in loaded if m.split(".")[0] in ("torch", "modelopt", "nncf")], loaded
        assert not [m for m in loaded if m.startswith(("feredge.export", "feredge.quantize"))], loaded
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")


def test_serving_side_imports_without_torch():
    """What the Triton python models and `feredge serve` import runs where torch is absent."""
    script = textwrap.dedent("""
        import sys
        sys.modules["torch"] = None
        sys.modules["onnx"] = None
        import feredge.serve.python_models, feredge.serve.server, feredge.serve.repository, feredge.serve.client
        import feredge.cli.serve_cmd
        assert "torch" not in [m for m in sys.modules if sys.modules[m] is not None]
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
