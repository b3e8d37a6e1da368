"""Benchmark building blocks: references, memory, frame composition, report rendering, one CLI run."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from feredge.bench.memory import PeakTracker
from feredge.bench.pipeline_bench import STAGES, compose_frame
from feredge.bench.references import compute_floor_ms, parse_benchmark_app
from feredge.bench.report import render

BENCHMARK_APP_TAIL = """[Step 11/11] Dumping statistics report
[ INFO ] Execution Devices:['CPU']
[ INFO ] Count:            477 iterations
[ INFO ] Duration:         3000.16 ms
[ INFO ] Latency:
[ INFO ]    Median:        6.13 ms
[ INFO ]    Average:       6.09 ms
[ INFO ]    Min:           0.52 ms
[ INFO ]    Max:           18.59 ms
[ INFO ] Throughput:   158.99 FPS
"""


def test_benchmark_app_report_is_parsed():
    stats = parse_benchmark_app(BENCHMARK_APP_TAIL)
    assert stats == {"median_ms": 6.13, "mean_ms": 6.09, "min_ms": 0.52, "max_ms": 18.59, "fps": 158.99,
                     "count": 477.0}


def test_benchmark_app_microsecond_latencies_are_converted():
    tail = BENCHMARK_APP_TAIL.replace("6.13 ms", "467.29 us").replace("0.52 ms", "386.76 us")
    stats = parse_benchmark_app(tail)
    assert stats["median_ms"] == pytest.approx(0.46729) and stats["min_ms"] == pytest.approx(0.38676)
    assert stats["mean_ms"] == 6.09


def test_compute_floor_scales_with_batch_and_rate():
    assert compute_floor_ms(10**9, 1, 2000.0) == pytest.approx(1.0)  # 2 GFLOP at 2000 GFLOP/s
    assert compute_floor_ms(10**9, 4, 1000.0) == pytest.approx(8.0)


def test_peak_tracker_sees_an_allocation():
    tracker = PeakTracker()
    tracker.start()
    block = np.ones(64 * 1024 * 1024 // 8)  # 64 MiB, touched
    usage = tracker.stop()
    del block
    assert usage.peak_mb >= usage.baseline_mb
    if "clear_refs" in usage.method:
        assert usage.model_mb >= 48


@pytest.mark.parametrize("faces", [1, 4, 16])
def test_composed_frames_hold_detectable_real_faces(faces):
    from feredge.preprocess.detect import HaarDetector
    from feredge.preprocess.spec import DetectorSpec

    frame = compose_frame(faces)
    assert frame.shape == (640, 640, 3)
    assert len(HaarDetector(DetectorSpec()).detect(frame)) == faces


def test_faces_per_frame_must_tile_a_square():
    with pytest.raises(ValueError, match="square"):
        compose_frame(3)


def test_report_renders_markdown_json_and_plots(tmp_path):
    row = {"model": "m", "runtime": "openvino", "precision": "fp32", "variant": "", "ran_precision": "f32",
           "threads": 2, "batch": 1, "p50_ms": 1.0, "p90_ms": 1.2, "p99_ms": 1.5, "mean_ms": 1.1, "min_ms": 0.9,
           "max_ms": 2.0, "throughput_fps": 1000.0, "size_bytes": 2048, "peak_rss_mb": 100.0, "model_rss_mb": 20.0}
    case = {"source": "astronaut.jpg", "kind": "image", "faces_placed": 1, "faces_detected_mean": 1.0, "frames": 3,
            "stage_ms": dict.fromkeys(STAGES, 0.5), "total_ms": 3.0, "fps": 333.0, "e2e_fps": 287.5}
    report = {"title": "t", "command": "feredge bench", "machine": {"cpu": "x"}, "results": [row],
              "models": [{"model": "m", "model_name": "m", "input_shape": [1, 8, 8], "macs": 10, "params": 5,
                          "skipped": [{"model": "m", "precision": "int8", "runtime": "openvino", "reason": "no"}]}],
              "pipeline": [case]}
    written = render(report, tmp_path, "r")
    text = written["md"].read_text()
    assert "## Model-only latency" in text and "## Pipeline" in text and "int8 openvino: no" in text
    assert "| end-to-end frames/s |" in text and "| 333 | 288 |" in text  # median-frame rate, then end to end
    assert json.loads(written["json"].read_text())["results"][0]["p50_ms"] == 1.0
    for name in ("r_latency.png", "r_stages.png"):
        assert (tmp_path / name).stat().st_size > 1000


class _StallingStages:
    """Stands in for StagedRunner: reports 1 ms of detect per frame but really takes ~15 ms (untimed
    overhead, as a stall or a slow loop would), so only a wall-clock rate sees the difference."""

    def __init__(self) -> None:
        self.pipeline = type("P", (), {"runner": type("R", (), {"name": "fake", "settings": {}})()})()

    def process(self, image: np.ndarray, timings: dict[str, float]) -> int:
        import time

        time.sleep(0.015)
        timings.update(detect=1.0)
        return 1


def test_pipeline_cases_report_end_to_end_frames_per_second(tmp_path):
    import cv2

    from feredge.bench.pipeline_bench import bench_image, bench_video, write_video

    image = tmp_path / "f.jpg"
    assert cv2.imwrite(str(image), compose_frame(1))
    still = bench_image(_StallingStages(), image, iterations=6, warmup=1)
    video = bench_video(_StallingStages(), write_video(tmp_path / "v.avi", 1, frames=6), warmup=1)
    for case in (still, video):
        assert case.frames == (6 if case is still else 5)
        assert case.fps > 100  # the stage sum misses the stall ...
        assert 20 < case.e2e_fps < 1000 / 15  # ... the end-to-end rate does not
        assert case.e2e_fps == pytest.approx(case.frames / case.wall_s)
        assert case.to_dict()["e2e_fps"] == case.e2e_fps


@pytest.mark.slow
def test_cli_matrix_on_a_bundle_with_pipeline_and_references(default_bundle, tmp_path):
    """One short end-to-end run: subprocess cases, pipeline stages, benchmark_app ratio, reports."""
    result = subprocess.run(
        [sys.executable, "-m", "feredge", "bench", "--bundle", str(default_bundle), "--runtimes", "openvino",
         "--batch", "1", "--iterations", "5", "--warmup", "1", "--pipeline", "--pipeline-iterations", "1",
         "--pipeline-warmup", "1", "--pipeline-faces", "4", "--pipeline-video-frames", "3",
         "--references", "--ref-trials", "1", "--ref-seconds", "1", "--report-dir", str(tmp_path), "--json"],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    (row,) = [r for r in report["results"] if not r["variant"]]
    assert row["ran_precision"] == "f32" and row["peak_rss_mb"] > 0 and row["size_bytes"] > 0
    if report["machine"]["openvino_default_precision"] == "bf16":  # a bf16 CPU adds the device-default row
        (default,) = [r for r in report["results"] if r["variant"]]
        assert default["variant"] == "device default" and default["ran_as"] == default["ran_precision"] == "bf16"
    else:
        assert len(report["results"]) == 1
    assert row["floor_fraction"] > 0
    sources = {(c["source"], c["faces_placed"]) for c in report["pipeline"]}
    assert ("astronaut.jpg", 1) in sources and ("faces04.avi", 4) in sources
    assert all(set(c["stage_ms"]) == set(STAGES) for c in report["pipeline"])
    (ref,) = report["references"]
    assert ref["ratio"] > 0 and ref["tool"] in ("benchmark_app", "openvino-loop")
    assert (tmp_path / "bench.md").is_file() and (tmp_path / "bench_stages.png").is_file()


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_matrix_exports_pass_the_calibration_data_to_int8_only(precision, tmp_path, monkeypatch):
    """The matrix's --calib reaches the exporter's typed INT8 options (a lost --calib made every INT8 cell fail)."""
    from feredge.bench.model_bench import ModelRef, export_bundle

    seen = []
    monkeypatch.setattr("feredge.export.exporter.export", lambda options: seen.append(options))
    out = export_bundle(ModelRef("mx", name="mini_xception"), "openvino", precision, tmp_path, "reference")
    assert out == tmp_path / f"mx-openvino-{precision}"
    (options,) = seen
    assert options.precision == precision and options.model == "mini_xception"
    assert (options.int8.calib if options.int8 else None) == ("reference" if precision == "int8" else None)


def test_calibration_data_per_model_label():
    from feredge.bench.model_bench import MatrixConfig, parse_calib
    from feredge.errors import FeredgeError

    common, by_label = parse_calib(["reference", "csam_net=/data/synth", "lfer_ldl=/data/other"])
    config = MatrixConfig(calib=common, calib_by_label=by_label)
    assert config.calib_for("csam_net") == "/data/synth" and config.calib_for("lfer_ldl") == "/data/other"
    assert config.calib_for("mini_xception") == "reference"
    assert parse_calib(None) == (None, {})
    only, per_label = parse_calib(["a=b"])
    assert MatrixConfig(calib=only, calib_by_label=per_label).calib_for("x") is None
    with pytest.raises(FeredgeError, match="two common calibration sources"):
        parse_calib(["reference", "/data/synth"])


def test_cpu_info_names_the_isa_that_changes_int8_and_bf16_results():
    from feredge.bench.cpu import REPORTED_ISA, cpu_info, has_vnni

    info = cpu_info()
    assert info["cpu"] and (info["isa"] == "?" or set(info["isa"].split()) <= set(REPORTED_ISA))
    assert has_vnni("avx2 avx512f avx512_vnni") and has_vnni("avx2 avx_vnni") and not has_vnni("avx2 avx512f")
