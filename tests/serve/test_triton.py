"""A real Triton (``feredge serve``, a subprocess) on an ``--target triton`` bundle: 100 real faces as
concurrent single requests equal local ONNX Runtime, dynamic batching shows in the statistics, the
pipeline model finds the astronaut's happy face, bad requests are answered, and stopping leaves no
process. No skip: a server that cannot start fails (tritonclient is in the dev extra; the server
binary comes from a full Triton or ``pip install --no-deps nvidia-pytriton==0.7.0``)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from feredge.bundle import Bundle
from feredge.errors import FeredgeError
from feredge.serve.repository import check_repository, parse_config

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def triton_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from feredge.export.exporter import ExportOptions, export

    out = tmp_path_factory.mktemp("triton") / "bundle"
    export(ExportOptions(target="triton", output=out, max_batch=32))
    return out


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def _group_members(pgid: int) -> list[int]:
    members = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(stat.parent.name))
    return members


class Served:
    def __init__(self, process: subprocess.Popen[str], url: str, server_pid: int, lines: list[str],
                 grpc_url: str = "") -> None:
        self.process, self.url, self.server_pid, self.lines = process, url, server_pid, lines
        self.grpc_url = grpc_url


@pytest.fixture(scope="module")
def served(triton_bundle: Path) -> Iterator[Served]:
    http, grpc = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen([sys.executable, "-m", "feredge", "serve", str(triton_bundle), "--http-port", str(http),
                                "--grpc-port", str(grpc)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, env=env)
    lines: list[str] = []
    pid = None
    assert process.stdout is not None
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line.rstrip())
        match = re.match(r"tritonserver pid (\d+) ready", line)
        if match:
            pid = int(match.group(1))
        if line.startswith("models:"):
            break
    if pid is None:
        process.kill()
        pytest.fail("feredge serve did not start a ready Triton:\n" + "\n".join([*lines, process.stdout.read()]))
    served = Served(process, f"127.0.0.1:{http}", pid, lines, f"127.0.0.1:{grpc}")
    yield served
    if process.poll() is None:
        process.kill()


def test_repository_configs_parse_and_match_the_onnx(triton_bundle: Path, tmp_path: Path) -> None:
    bundle = Bundle.load(triton_bundle)  # every repository file is listed and hashed
    results = {r.model: r for r in check_repository(triton_bundle / "triton", bundle.max_batch)}
    assert set(results) == {"classifier", "classifier_onnxruntime", "classifier_openvino", "classifier_tensorrt",
                            "pipeline"}
    assert {results[m].backend for m in results} == {"onnxruntime", "openvino", "tensorrt_plan", "python"}
    for model in ("classifier_onnxruntime", "classifier_openvino", "classifier_tensorrt"):
        assert "inputs/outputs: names, types and dims equal the ONNX" in results[model].checked
        config = parse_config(triton_bundle / "triton" / model / "config.pbtxt")
        assert config.max_batch_size == 32
        assert list(config.dynamic_batching.preferred_batch_size) == [4, 8, 16, 32]
        assert [tuple(t.dims) for t in config.input] == [tuple(bundle.spec.input_shape)]
        assert [tuple(t.dims) for t in config.output] == [(len(bundle.labels),)]
    # a malformed config and wrong dims are refused
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(triton_bundle / "triton", copy)
    path = copy / "classifier_onnxruntime" / "config.pbtxt"
    path.write_text(path.read_text().replace("dims: [ 7 ]", "dims: [ 8 ]"))
    with pytest.raises(FeredgeError, match="differ from the ONNX"):
        check_repository(copy)
    path.write_text("name: \"classifier_onnxruntime\"\nbackend: onnxruntime\n")
    with pytest.raises(FeredgeError, match="not a valid Triton model config"):
        check_repository(copy)


def test_concurrent_faces_equal_local_onnxruntime_and_are_batched(triton_bundle: Path, served: Served) -> None:
    from feredge.calibration.reference import reference_faces
    from feredge.runtimes.onnxruntime_runner import OnnxRuntimeRunner
    from feredge.serve.client import TritonClient

    bundle = Bundle.load(triton_bundle)
    faces = reference_faces(bundle.spec).batch[:100]
    assert len(faces) == 100
    with OnnxRuntimeRunner.from_bundle(bundle) as runner:
        local = runner.infer_all(faces, chunk=32)
    with TritonClient(served.url, concurrency=16) as client:
        before = client.statistics("classifier")
        remote = np.concatenate(client.logits_concurrent([faces[i:i + 1] for i in range(100)]))
        stats = client.statistics("classifier")
    inferences = stats["inferences"] - before["inferences"]
    executions = stats["executions"] - before["executions"]
    assert np.abs(remote - local).max() < 1e-5
    assert (remote.argmax(1) == local.argmax(1)).all()
    assert inferences == 100
    assert executions < inferences, f"no dynamic batching: {executions} executions for {inferences} inferences"
    print(f"100 single requests at concurrency 16: {executions} executions")


def test_pipeline_finds_the_astronauts_happy_face(triton_bundle: Path, served: Served, astronaut_path: Path) -> None:
    from feredge.preprocess.image_io import read_image
    from feredge.runtimes.pipeline import Pipeline
    from feredge.serve.client import TritonClient

    with TritonClient(served.url) as client:
        remote = client.faces(astronaut_path.read_bytes())
    decoded = read_image(astronaut_path)
    with Pipeline.from_bundle(triton_bundle, "onnxruntime") as pipeline:
        local = [f.to_dict() for f in pipeline.run(decoded.image, scale=decoded.scale).faces]
    assert len(remote) == 1 and remote[0]["label"] == "happy"
    assert remote[0]["box"] == local[0]["box"]
    assert abs(remote[0]["probability"] - local[0]["probability"]) < 1e-5


def test_infer_server_prints_the_local_records(triton_bundle: Path, served: Served, astronaut_path: Path,
                                               tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from feredge.cli import main

    garbage = tmp_path / "broken.jpg"
    garbage.write_bytes(b"\xff\xd8 not a jpeg")
    assert main(["infer", str(astronaut_path), str(garbage), "--server", served.url, "--json"]) == 0
    out, err = capsys.readouterr()
    remote = [json.loads(line) for line in out.splitlines()]
    assert main(["infer", str(astronaut_path), "--bundle", str(triton_bundle), "--runtime", "onnxruntime",
                 "--json"]) == 0
    local = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(remote) == len(local) == 1 and remote[0]["label"] == local[0]["label"] == "happy"
    assert remote[0]["box"] == local[0]["box"] and remote[0]["source"] == local[0]["source"]
    assert abs(remote[0]["probability"] - local[0]["probability"]) < 1e-5
    assert "broken.jpg" in err and "1 failed" in err  # the bad file reported, the good one served


def test_bench_server_load_run_has_no_errors_and_sits_beside_local(triton_bundle: Path, served: Served,
                                                                   capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from feredge.cli import main

    assert main(["bench", "--bundle", str(triton_bundle), "--server", served.grpc_url, "--requests", "300",
                 "--concurrency", "8", "--json"]) == 0
    triton, local = json.loads(capsys.readouterr().out)["results"]
    assert triton["side"] == "triton" and triton["requests"] == 300 and triton["errors"] == 0  # answers checked
    assert 0 < triton["executions"] <= 300 and triton["concurrency"] == 8
    assert local["side"] == "local onnxruntime" and local["requests"] == 300
    assert 0 < local["p50_ms"] <= local["p99_ms"] and 0 < triton["p50_ms"] <= triton["p99_ms"]


def test_bench_server_without_a_server_is_one_line(triton_bundle: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from feredge.cli import main

    assert main(["bench", "--bundle", str(triton_bundle), "--server", f"127.0.0.1:{_free_port()}",
                 "--requests", "5"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("feredge: error: no Triton ready at") and "\n" not in err and "Traceback" not in err


def test_bad_requests_are_answered_and_the_server_keeps_serving(served: Served, astronaut_path: Path) -> None:
    from feredge.serve.client import TritonClient

    with TritonClient(served.url) as client:
        with pytest.raises(FeredgeError, match="unexpected shape"):
            client.logits(np.zeros((1, 1, 32, 32), np.float32))
        with pytest.raises(FeredgeError, match="not a decodable image"):
            client.faces(b"\x89PNG garbage, not an image")
        with pytest.raises(FeredgeError, match="empty image"):
            client.faces(b"")
        assert client.logits(np.zeros((2, 1, 64, 64), np.float32)).shape == (2, 7)
        assert len(client.faces(astronaut_path.read_bytes())) == 1


def test_sigterm_stops_the_server_leaving_no_process(served: Served) -> None:
    # last in the module: stops the shared server
    assert _alive(served.server_pid)
    served.process.send_signal(signal.SIGTERM)
    assert served.process.wait(60) == 0
    out = (served.process.stdout.read() if served.process.stdout else "")
    assert "tritonserver stopped (exit 0)" in out
    assert not _alive(served.server_pid)
    assert _group_members(served.server_pid) == []  # the python-backend stubs went with it
