"""``--target deepstream``: nvinfer and deepstream-app configs, checked statically and numerically.

DeepStream cannot run here; what can be checked is that the files say what feredge means: keys nvinfer
and deepstream-app read, normalisation equal to the spec's on every pixel value, dims and output names
equal to the ONNX files', the labels, the batch sizes of N streams, and a bundle that still loads.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from feredge.errors import FeredgeError
from feredge.export import deepstream as ds
from feredge.export.deepstream_options import PARSER_FUNC, SAMPLE_URI, DeepStreamOptions
from feredge.preprocess.spec import PreprocessSpec

STREAMS = 3


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from feredge.export.exporter import ExportOptions, export

    out = tmp_path_factory.mktemp("ds") / "bundle"
    export(ExportOptions(target="ds", output=out, max_batch=8,
                         deepstream=DeepStreamOptions(streams=STREAMS, uris=("rtsp://cam/a",))))
    return out


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_bundle_loads_and_its_deepstream_dir_passes_the_check(bundle: Path) -> None:
    from feredge.bundle import Bundle

    loaded = Bundle.load(bundle)  # every generated file listed and hashed
    assert loaded.manifest["target"] == "deepstream"
    assert ds.check_deepstream_dir(bundle / "deepstream", loaded.spec, loaded.labels, "fp32", STREAMS) == []
    section = loaded.manifest["deepstream"]
    assert section["streams"] == STREAMS and section["classifier_batch"] == 8  # min(16, --max-batch 8)
    assert section["softmax_check"]["passed"] and section["softmax_check"]["max_abs_probability"] < 1e-5
    detector = loaded.network("detector")  # the copy in deepstream/ is the bundle's detector network, byte for byte
    assert _sha(bundle / "deepstream" / "detector_short_range.onnx") == _sha(loaded.network_path(detector, "onnx"))


def test_the_configs_parse_and_use_only_known_keys(bundle: Path) -> None:
    d = bundle / "deepstream"
    p = ds.read_ini(d / ds.PRIMARY)["property"]
    s = ds.read_ini(d / ds.SECONDARY)["property"]
    app = ds.read_ini(d / ds.APP)
    assert set(p) <= ds.NVINFER_PROPERTY_KEYS and set(s) <= ds.NVINFER_PROPERTY_KEYS
    assert (p["process-mode"], p["network-type"], p["batch-size"], p["network-mode"]) == ("1", "0", "3", "0")
    assert (s["process-mode"], s["network-type"], s["operate-on-gie-id"], s["operate-on-class-ids"]) == \
        ("2", "1", p["gie-unique-id"], "0")
    assert s["model-engine-file"] == "classifier.onnx_b8_gpu0_fp32.engine"
    assert p["parse-bbox-func-name"] == PARSER_FUNC
    assert p["custom-lib-path"].endswith(".so") and p["maintain-aspect-ratio"] == "1"
    sources = [g for g in app.sections() if g.startswith("source")]
    assert len(sources) == STREAMS and {app[g]["uri"] for g in sources} == {"rtsp://cam/a"}
    assert app["streammux"]["batch-size"] == str(STREAMS) and app["primary-gie"]["batch-size"] == str(STREAMS)
    assert app["tiled-display"]["enable"] == "0" and app["sink0"]["type"] == "1"  # headless: fakesink
    assert (d / s["labelfile-path"]).read_text().strip() == "angry;disgust;fear;happy;sad;surprise;neutral"


def test_dims_and_output_names_equal_the_onnx_files(bundle: Path) -> None:
    import onnxruntime as ort

    from feredge.bundle import Bundle
    from feredge.calibration.reference import reference_faces

    d = bundle / "deepstream"
    s = ds.read_ini(d / ds.SECONDARY)["property"]
    p = ds.read_ini(d / ds.PRIMARY)["property"]
    (_, cin), (cout, cshape) = ds.onnx_io(d / s["onnx-file"])
    (_, din), (dout, dshape) = ds.onnx_io(d / p["onnx-file"])
    assert s["infer-dims"] == ";".join(map(str, cin[1:])) == "1;64;64" and cout == s["output-blob-names"]
    assert p["infer-dims"] == ";".join(map(str, din[1:])) == "3;128;128" and dout == p["output-blob-names"]
    assert cshape[-1] == 7 and dshape[-1] == 17
    faces = reference_faces(Bundle.load(bundle).spec, include_lfw=False).batch
    probs = ort.InferenceSession(str(d / "classifier.onnx")).run(None, {"input": faces})[0]
    logits = ort.InferenceSession(str(bundle / "model.onnx")).run(None, {"input": faces})[0]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(1) == logits.argmax(1)).all()


@pytest.mark.parametrize("spec", [
    PreprocessSpec(),  # gray, (x/255 - 0.5) / 0.5
    PreprocessSpec(channels="rgb", mean=(0.485, 0.456, 0.406), std=(0.25,)),
    PreprocessSpec(channels="bgr", scale=1.0, mean=(104.0, 117.0, 123.0), std=(1.0, 1.0, 1.0)),
    PreprocessSpec(channels="rgb", input_size=(96, 112), mean=(0.5,), std=(0.2, 0.2, 0.2)),
], ids=["gray", "rgb-imagenet-mean", "bgr-caffe", "rgb-nonsquare"])
def test_nvinfer_normalisation_equals_feredge_transform_on_every_pixel_value(spec: PreprocessSpec) -> None:
    from feredge.preprocess.transform import normalise

    config = ds.secondary_config(spec, "c.onnx", "fp16", 4, DeepStreamOptions())
    keys = config.groups["property"]
    assert keys["model-color-format"] == str({"rgb": 0, "bgr": 1, "gray": 2}[spec.channels])
    assert keys["infer-dims"] == f"{spec.num_channels};{spec.input_size[0]};{spec.input_size[1]}"
    assert keys["network-mode"] == "2" and keys["model-engine-file"] == "c.onnx_b4_gpu0_fp16.engine"
    pixels = ds.sample_pixels(spec.num_channels)
    assert set(np.unique(pixels)) == set(range(256))  # every uint8 value goes through
    scale, offsets = float(keys["net-scale-factor"]), [float(v) for v in keys["offsets"].split(";")]
    x = pixels.astype(np.float64)[..., None] if pixels.ndim == 3 else pixels.astype(np.float64)
    nvinfer = (scale * (x - np.asarray(offsets))).transpose(0, 3, 1, 2)  # what nvinfer computes, by hand
    np.testing.assert_allclose(nvinfer, normalise(pixels, spec), atol=1e-5)
    assert ds.normalisation_error(keys, spec) < 1e-5


def test_blazeface_normalisation_equals_the_detector_code() -> None:
    from feredge.preprocess.blazeface import SHORT_RANGE, BlazeFaceDetector
    from feredge.runtimes.base import TensorMeta

    class Echo:  # a runner that returns its input: what BlazeFaceDetector.infer feeds the network
        model_path = Path("echo.onnx")
        input_meta = TensorMeta("input", (None, 3, SHORT_RANGE.input_size, SHORT_RANGE.input_size))

        def __init__(self) -> None:
            self.settings: dict[str, object] = {}  # one stream, as every Runner reports

        def activate(self) -> Echo:
            return self

        def infer(self, batch: np.ndarray) -> np.ndarray:
            return batch

    pixels = ds.sample_pixels(3)  # RGB planes for nvinfer; the detector reads BGR
    fed = BlazeFaceDetector(variant=SHORT_RANGE, runner=Echo()).infer(list(pixels[..., ::-1]))  # type: ignore[arg-type]
    keys = ds.primary_config(SHORT_RANGE.to_dict(), "d.onnx", DeepStreamOptions()).groups["property"]
    assert keys["model-color-format"] == "0"
    got = ds.Normalisation(float(keys["net-scale-factor"]), tuple(float(v) for v in keys["offsets"].split(";")),
                           0).apply(pixels)
    np.testing.assert_allclose(got, fed, atol=1e-6)


@pytest.mark.parametrize("bundle_precision", ["fp32", "fp16", "int8"])
def test_the_primary_gie_runs_the_detector_at_its_networks_precision(bundle_precision: str) -> None:
    from feredge.export.detector_network import NETWORK_PRECISION
    from feredge.preprocess.blazeface import SHORT_RANGE

    precision = NETWORK_PRECISION[bundle_precision]
    keys = ds.primary_config(SHORT_RANGE.to_dict(), "d.onnx", DeepStreamOptions(), precision).groups["property"]
    assert keys["network-mode"] == {"fp32": "0", "fp16": "2"}[precision]  # int8 bundles: an fp32 detector
    assert keys["model-engine-file"].endswith(f"_{precision}.engine")


def test_a_spec_nvinfer_cannot_express_is_refused() -> None:
    with pytest.raises(FeredgeError, match="one net-scale-factor"):
        ds.classifier_normalisation(PreprocessSpec(channels="rgb", std=(0.229, 0.224, 0.225)))


@pytest.mark.parametrize("edit, finding", [
    (("secondary", "offsets=127.5", "offsets=128.0"), "normalisation differs"),
    (("secondary", "model-color-format=2", "model-color-format=0"), "normalisation differs"),
    (("secondary", "infer-dims=1;64;64", "infer-dims=1;48;48"), "infer-dims"),
    (("secondary", "classifier-threshold=0.0", "classifier-treshold=0.0"), "unknown nvinfer key 'classifier-treshold'"),
    (("primary", "net-scale-factor=0.00784313725490196", "net-scale-factor=0.00392156862745098"),
     "BlazeFace's x/127.5-1"),
    (("secondary", "process-mode=2", "process-mode=1"), "process-mode=1"),
    (("app", "live-source=0\nbatch-size=3", "live-source=0\nbatch-size=1"), "should equal the 3 sources"),
    (("app", "[osd]", "[on-screen]"), "unknown deepstream-app group"),
    (("labels", "neutral", "calm"), "labels"),
    (("secondary", "model-engine-file=classifier.onnx_b8_gpu0_fp32.engine", "model-engine-file=c.engine"),
     "rebuild the engine"),
])
def test_the_check_finds_what_is_wrong(bundle: Path, tmp_path: Path, edit: tuple[str, str, str], finding: str) -> None:
    from feredge.bundle import Bundle

    d = tmp_path / "deepstream"
    shutil.copytree(bundle / "deepstream", d)
    name = {"primary": ds.PRIMARY, "secondary": ds.SECONDARY, "app": ds.APP, "labels": ds.CLASSIFIER_LABELS}[edit[0]]
    text = (d / name).read_text()
    assert edit[1] in text
    (d / name).write_text(text.replace(edit[1], edit[2]))
    loaded = Bundle.load(bundle)
    findings = ds.check_deepstream_dir(d, loaded.spec, loaded.labels, "fp32", STREAMS)
    assert any(finding in f for f in findings), findings


def test_options_are_checked_in_one_line() -> None:
    assert DeepStreamOptions(streams=2).stream_uris() == (SAMPLE_URI, SAMPLE_URI)
    assert DeepStreamOptions(streams=2, uris=("a", "b")).stream_uris() == ("a", "b")
    with pytest.raises(FeredgeError, match="one per stream"):
        DeepStreamOptions(streams=3, uris=("a", "b"))
    with pytest.raises(FeredgeError, match="--streams"):
        DeepStreamOptions(streams=0)


def test_the_target_needs_a_detector_network(tmp_path: Path) -> None:
    from feredge.export.exporter import ExportOptions, export

    with pytest.raises(FeredgeError, match="needs a detector network"):
        export(ExportOptions(target="deepstream", output=tmp_path / "b", detector_network=None))
    assert not (tmp_path / "b").exists()


def test_the_cli_writes_n_streams(tmp_path: Path) -> None:
    from feredge.cli import main

    out = tmp_path / "cli"
    assert main(["export", "--target", "deepstream", "--streams", "2", "--uri", "file:///a.mp4", "--uri",
                 "file:///b.mp4", "--max-batch", "4", "-o", str(out)]) == 0
    app = ds.read_ini(out / "deepstream" / ds.APP)
    assert [app[f"source{i}"]["uri"] for i in range(2)] == ["file:///a.mp4", "file:///b.mp4"]
    assert app["streammux"]["batch-size"] == "2"
