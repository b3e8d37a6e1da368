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
