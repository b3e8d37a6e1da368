"""Reports a person reads: rows named by artifact and precision once, no empty lines or columns,
latency plots with shared plain-number axes, confusion matrices normalised, titled and uncut."""

from __future__ import annotations

import re
import subprocess
import sys

import cv2
import numpy as np
import pytest

from feredge.bench.naming import ran_as, row_name
from feredge.bench.report import latency_figure, markdown, plot_latency, shown_columns
from feredge.metrics import classification_report, row_normalised, write_confusion_png

PRECISION_WORDS = re.compile(r"\b(fp32|f32|fp16|f16|bf16|int8)\b")


def _row(model: str, runtime: str, artifact: str, ran: str, p50: float, batch: int = 1, **extra: object) -> dict:
    return {"model": model, "runtime": runtime, "artifact": artifact, "precision": "fp32", "ran_as": ran,
            "variant": "", "batch": batch, "p50_ms": p50, "p90_ms": p50 * 1.2, "p99_ms": p50 * 1.4,
            "mean_ms": p50, "min_ms": p50, "max_ms": p50 * 2, "throughput_fps": 1000.0 / p50, **extra}


@pytest.mark.parametrize(("file", "runtime_says", "runtime", "shown"), [
    ("fp32", "f32", "openvino", "fp32"), ("fp32", "bf16", "openvino", "bf16"),
    ("fp16", "f32", "openvino", "fp32 (fp16 weights)"), ("fp16", "fp16", "onnxruntime", "fp16 (fp32 I/O)"),
    ("int8", "f32", "openvino", "int8"), ("fp32", "fp32", "torch", "fp32")])
def test_the_precision_that_ran_is_named_once(file, runtime_says, runtime, shown):
    assert ran_as(file, runtime_says, runtime) == shown


def test_bench_rows_of_a_bundle_are_named_by_the_file_that_ran_and_one_precision(default_bundle):
    from feredge.bench.model_bench import MatrixConfig, ModelRef, bench_model

    config = MatrixConfig(runtimes=["openvino", "onnxruntime"], batches=[1], warmup=0, iterations=2, isolate=False)
    result = bench_model(ModelRef("m", bundle=default_bundle), config, log=lambda _text: None)
    artifacts = {r["runtime"]: r["artifact"] for r in result.rows}
    assert artifacts == {"openvino": "model.xml", "onnxruntime": "model.onnx"}
    for row in result.rows:
        name = row_name(row)
        assert len(PRECISION_WORDS.findall(name)) == 1, name  # never "fp32 fp32 openvino"
        assert name.startswith(f"{row['runtime']} {row['artifact']} ")


def test_cli_table_names_rows_by_artifact_and_hides_empty_columns(default_bundle):
    result = subprocess.run([sys.executable, "-m", "feredge", "bench", "--bundle", str(default_bundle), "--runtimes",
                             "onnxruntime", "--batch", "1", "--iterations", "2", "--warmup", "0", "--in-process"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    header, _rule, row = result.stdout.splitlines()[1:4]
    columns = re.split(r"\s{2,}", header.strip())
    assert columns[:4] == ["model", "runtime", "artifact", "precision"] and "ran as" not in columns
    assert "variant" not in columns  # no row has one on ONNX Runtime
    assert "of floor" in columns  # the peak rate is measured outside --matrix too (torch is installed)
    cells = re.split(r"\s{2,}", row.strip())
    assert cells[2:4] == ["model.onnx", "fp32"] and "-" not in cells


def test_markdown_has_no_empty_peak_line_or_floor_column():
    report = {"title": "t", "machine": {"cpu": "x"}, "results": [_row("m", "openvino", "model.xml", "fp32", 0.5)]}
    text = markdown(report)
    assert "Peak" not in text and "GFLOP/s ()" not in text and "of floor" not in text
    assert "| model.xml | fp32 |" in text and "| fp32 | fp32 |" not in text
    report["machine"].update(peak_gflops=120.5, peak_method="measured")
    report["results"][0]["floor_fraction"] = 0.25
    text = markdown(report)
    assert "Peak fp32 rate: 120 GFLOP/s (measured)" in text and "| of floor |" in text and "| 0.25 |" in text


def test_shown_columns_drop_only_columns_without_any_value():
    columns = [("a", "A"), ("b", "B"), ("c", "C")]
    assert shown_columns([{"a": 1, "b": None, "c": ""}, {"a": 2, "b": float("nan")}], columns) == [("a", "A")]
    assert shown_columns([], columns) == columns


def _tick_texts(fig, axis: str) -> list[str]:
    fig.canvas.draw()
    out = []
    for ax in fig.axes:
        labels = ax.get_yticklabels() if axis == "y" else ax.get_xticklabels()
        out += [t.get_text() for t in labels if t.get_text()]
    return out


@pytest.mark.parametrize("spread", [3.0, 40.0])  # linear axis within a decade, log beyond
def test_latency_plot_shares_a_plain_number_y_axis_across_compared_bundles(spread, tmp_path):
    rows = [_row("bundle-a", "openvino", "model.xml", "fp32", 0.3), _row("bundle-a", "onnxruntime", "model.onnx",
                                                                           "fp32", 0.3 * spread),
            _row("bundle-b", "openvino", "model.xml", "int8", 0.2), _row("bundle-b", "torch", "weights.safetensors",
                                                                       "fp32", 0.25),
            _row("bundle-b", "openvino", "model.xml", "fp32", 9.0, batch=8)]
    fig = latency_figure(rows)
    first, second = fig.axes
    assert first.get_shared_y_axes().joined(first, second)
    assert first.get_ylim() == second.get_ylim()
    assert first.get_yscale() == ("log" if spread > 10 else "linear")
    ticks = _tick_texts(fig, "y")
    assert len(ticks) >= 2
    for text in ticks:
        assert re.fullmatch(r"\d+(\.\d+)?", text), f"not a plain number: {text!r}"
    labels = _tick_texts(fig, "x")
    assert labels == ["openvino model.xml fp32", "onnxruntime model.onnx fp32", "openvino model.xml int8",
                      "torch weights.safetensors fp32"]  # batch 1 only: the smallest batch measured
    assert all(t.get_rotation() > 0 for ax in fig.axes for t in ax.get_xticklabels())
    path = plot_latency(rows, tmp_path / "latency.png")
    assert path is not None and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _report(labels: tuple[str, ...], pairs: list[tuple[int, int]]):
    y_true, y_pred = zip(*pairs, strict=True)
    return classification_report(np.array(y_true), np.array(y_pred), labels)


def test_confusion_rows_are_normalised_per_true_class():
    report = _report(("angry", "happy", "surprise"), [(0, 0), (0, 1), (0, 1), (1, 1), (1, 1)])  # no surprise faces
    fractions = row_normalised(report.confusion)
    assert ((fractions >= 0) & (fractions <= 1)).all()
    np.testing.assert_allclose(fractions.sum(axis=1), [1.0, 1.0, 0.0])  # the empty row stays empty
    np.testing.assert_allclose(np.diag(fractions)[:2], [report.per_class_recall["angry"],
                                                        report.per_class_recall["happy"]])


def test_confusion_png_is_titled_normalised_and_keeps_full_labels(tmp_path, monkeypatch):
    labels = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "contempt")
    pairs = [(i, i) for i in range(8) for _ in range(3)] + [(5, 6), (5, 6), (2, 5)]
    report = _report(labels, pairs)
    drawn: list[tuple[str, tuple[int, int], float, int]] = []
    real = cv2.putText

    def recording(image, text, org, font, scale, colour, thickness=1, line=8):
        drawn.append((text, org, scale, thickness))
        return real(image, text, org, font, scale, colour, thickness, line)

    monkeypatch.setattr(cv2, "putText", recording)
    title = "mini_xception: b/model.xml on openvino fp32\ndata/synth [test]: 27 faces"
    path = write_confusion_png(report, tmp_path / "c.png", title)
    image = cv2.imdecode(np.frombuffer(path.read_bytes(), np.uint8), cv2.IMREAD_COLOR)
    texts = [t for t, *_ in drawn]
    assert title.split("\n") == texts[:2]  # the title: model, artifact, runtime; dataset and split
    for label in labels:
        assert texts.count(label) == 2  # row and column, whole ("surprise", not "surpris")
    for text, (x, y), scale, thickness in drawn:  # nothing runs off the picture
        width = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)[0][0]
        assert x >= 0 and x + width <= image.shape[1] and 0 < y <= image.shape[0], text
    surprise = row_normalised(report.confusion)[5]
    assert f"{surprise[5]:.2f}" in texts and f"{surprise[6]:.2f}" in texts and "(2)" in texts  # fraction, count
    assert {"0.60", "0.40", "0.75", "0.25", "1.00"} <= set(texts)  # surprise 3/5, 2/5; fear 3/4, 1/4; the rest 3/3
    assert "3" not in texts and "(3)" in texts  # cells are fractions, their counts in brackets
