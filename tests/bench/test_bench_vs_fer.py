"""scripts/bench_vs_fer.py without the fer venv: its inputs, its face matching, its summary and report."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_vs_fer.py"


@pytest.fixture(scope="module")
def bvf():
    spec = importlib.util.spec_from_file_location("bench_vs_fer", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_vs_fer"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("bench_vs_fer", None)


def test_matching_is_one_to_one_and_counts_extra_boxes(bvf):
    truth = [[[0, 0, 100, 100], [200, 0, 100, 100]], [[0, 0, 100, 100]]]
    found = [[[5, 5, 100, 100], [10, 0, 90, 90], [400, 300, 50, 50]],  # two boxes on face 1, one stray
             [[0, 0, 100, 100]]]
    result = bvf.score(truth, found)
    assert result["recall"] == pytest.approx(2 / 3)  # face 2 of frame 0 missed
    assert result["extra_boxes"] == 2  # the duplicate and the stray
    assert result["frames_with_every_face"] == pytest.approx(0.5)
    assert result["faces_found_per_frame"] == pytest.approx(2.0)
    assert bvf.iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)


def test_inputs_hold_three_real_faces_where_the_truth_says(bvf, tmp_path):
    from feredge.preprocess.detect import HaarDetector
    from feredge.preprocess.spec import DetectorSpec

    inputs = bvf.make_inputs(tmp_path, frames=4)
    frame = cv2.imread(str(inputs.frame))
    assert frame.shape == (360, 640, 3)
    capture = cv2.VideoCapture(str(inputs.video))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == 4 and len(inputs.truth["video"]) == 4
    assert all(len(faces) == 3 for faces in inputs.truth["video"])
    boxes = [[round(v) for v in b.as_list()] for b in HaarDetector(DetectorSpec()).detect(frame)]
    result = bvf.score(inputs.truth["frame"], [boxes])
    assert result["recall"] == 1.0 and result["extra_boxes"] == 0
    assert inputs.truth["video"][0] == inputs.truth["frame"][0]
    assert inputs.truth["video"][3] != inputs.truth["video"][0]  # the faces move


def _row(side, case, trial, rate):
    return {"side": side, "case": case, "trial": trial, "rate": rate, "ms_per_frame_median": 1000 / rate,
            "faces_found_per_frame": 3.0, "recall": 1.0, "frames_with_every_face": 1.0, "extra_boxes": 0,
            "process_s": 2.0, "labels": [["happy"]]}


def test_summary_takes_the_median_of_per_trial_ratios_and_the_report_marks_smoke_runs(bvf):
    rows = [_row("fer", "photo", 0, 10.0), _row("feredge", "photo", 0, 30.0),
            _row("fer", "photo", 1, 5.0), _row("feredge", "photo", 1, 20.0),
            _row("fer", "photo", 2, 10.0), _row("feredge", "photo", 2, 10.0)]
    (entry,) = bvf.summarise(rows)
    assert entry["ratio_trials"] == [3.0, 4.0, 1.0] and entry["ratio_feredge_over_fer"] == 3.0
    assert entry["fer"]["rate_median"] == 10.0 and entry["feredge"]["rate_median"] == 20.0
    report = {"smoke": True, "command": "python scripts/bench_vs_fer.py --trials 1", "created": "now",
              "machine": {"cpu": "x", "cores": 2, "isa": "avx2", "python": "3.11", "load_start": "5.0 4.0 3.0",
                          "load_end": "6.0 5.0 4.0"},
              "settings": {"trials": 3, "frames": 30, "iterations": 10, "warmup": 3},
              "versions": {"fer": "25.10.3"}, "feredge_settings": {"runtime": "openvino", "detector": "haar"},
              "summary": [entry], "inputs": {"photo": "astronaut"}, "calls": ["a"], "out_json": "/x/r.json"}
    text = bvf.markdown(report)
    assert "SMOKE RUN, loaded machine" in text and "load average 5.0 4.0 3.0 at start" in text
    assert "| astronaut photo | images/s | 10 | 20 | **3.00×** |" in text
    assert "SMOKE" not in bvf.markdown({**report, "smoke": False})
