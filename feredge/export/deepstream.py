"""The ``deepstream`` export target: nvinfer configs for BlazeFace (primary) and the classifier (secondary).

What a Jetson running DeepStream needs from a bundle, in ``deepstream/`` inside it, self-contained so
that the directory can be copied out and run with ``deepstream-app -c deepstream_app_config.txt``:

- ``config_infer_primary_blazeface.txt``: the face detector as primary GIE (full frames, letterboxed
  as MediaPipe trains it: ``maintain-aspect-ratio=1``, ``symmetric-padding=1``, RGB, ``x/127.5 − 1``).
  BlazeFace emits raw SSD anchors (``detections``: anchors × 16 regressors + 1 logit), which none of
  nvinfer's built-in parsers read, so the config names a custom bbox parser
  (``parse-bbox-func-name``/``custom-lib-path``): ``deepstream_options.PARSER_FUNC`` in ``PARSER_LIB``, a
  placeholder that a C++ parser (anchors: :class:`feredge.preprocess.blazeface.AnchorSpec`, decode:
  :func:`feredge.preprocess.blazeface.decode`) must provide; the export says so.
- ``config_infer_secondary_classifier.txt``: the classifier as secondary GIE on the detector's face
  class (``process-mode=2``, ``operate-on-gie-id=1``, ``operate-on-class-ids=0``, ``network-type=1``).
  Its ONNX is the bundle's classifier (fp32 for fp32/fp16 — TensorRT builds fp16 from it with
  ``network-mode=2`` — the Q/DQ ONNX for int8) with a Softmax appended, because nvinfer's default
  classifier parser compares ``classifier-threshold`` with probabilities, not logits.
- ``deepstream_app_config.txt``: N URI sources, nvstreammux ``batch-size=N``, tiled display off,
  fakesink, no OSD: a headless pipeline whose perf counters are the measurement.

Normalisation is derived, not typed: nvinfer computes ``y = net-scale-factor · (x − offsets[c])``
and the spec ``y = (x · scale − mean[c]) / std[c]``, so ``net-scale-factor = scale / std`` (one value:
a spec whose ``std`` differs per channel cannot be expressed and is refused) and
``offsets[c] = mean[c] / scale``. :func:`check_deepstream_dir` re-reads the written files with
:mod:`configparser` and checks them statically: keys against nvinfer's and deepstream-app's key lists,
normalisation numerically against :func:`feredge.preprocess.transform.normalise` on real pixel
values, ``infer-dims``/``output-blob-names`` against the ONNX files, labels against the bundle.

Key lists: DeepStream SDK API reference, ``gstnvinfer_property_parser.h`` (the ``CONFIG_GROUP_INFER_*``
macros, DeepStream 6.4–8.0), and the DeepStream Developer Guide pages "Gst-nvinfer" (table
"Gst-nvinfer Plugin, [property] and [class-attrs-…] group supported keys") and "DeepStream Reference
Application - deepstream-app" (section "Configuration Groups").
"""

from __future__ import annotations

import configparser
import json
import re
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from feredge.errors import FeredgeError
from feredge.export.deepstream_options import DeepStreamOptions, deepstream_options_of
from feredge.export.detector_network import NETWORK_PRECISION
from feredge.preprocess.spec import PreprocessSpec

if TYPE_CHECKING:
    from feredge.export.context import ExportContext

DIRECTORY = "deepstream"
PRIMARY = "config_infer_primary_blazeface.txt"
SECONDARY = "config_infer_secondary_classifier.txt"
APP = "deepstream_app_config.txt"
DETECTOR_LABELS = "labels_detector.txt"
CLASSIFIER_LABELS = "labels_classifier.txt"
CLASSIFIER_ONNX = "classifier.onnx"
PROBABILITIES = "probabilities"
#: file name → manifest role (one role per file: ``Bundle.roles`` maps a role to one file)
ROLES = {PRIMARY: "deepstream_primary_config", SECONDARY: "deepstream_secondary_config", APP: "deepstream_app_config",
         DETECTOR_LABELS: "deepstream_detector_labels", CLASSIFIER_LABELS: "deepstream_classifier_labels",
         CLASSIFIER_ONNX: "deepstream_onnx"}
#: the detector's copy belongs to the detector network: ``detector.`` prefix (feredge.bundle.network_file_role)
DETECTOR_ONNX_ROLE = "detector.deepstream_onnx"

#: nvinfer ``network-mode`` (NvDsInferNetworkMode)
NETWORK_MODE = {"fp32": 0, "int8": 1, "fp16": 2}
#: nvinfer ``model-color-format`` (NvDsInferFormat) by PreprocessSpec.channels
COLOR_FORMAT = {"rgb": 0, "bgr": 1, "gray": 2}
#: nvinfer ``scaling-filter`` (NvBufSurfTransform_Inter) by PreprocessSpec.interpolation. nearest and
#: bilinear are the same filters; cubic is the GPU's Algo1 (cubic); OpenCV's INTER_AREA has no twin, the
#: GPU's super-sampling (Algo2) is the closest — resized pixels differ slightly, the normalisation does not
SCALING_FILTER = {"nearest": 0, "linear": 1, "cubic": 2, "area": 3}

#: ``[property]`` keys nvinfer reads (gstnvinfer_property_parser.h, CONFIG_GROUP_INFER_*)
NVINFER_PROPERTY_KEYS = frozenset({
    "gie-unique-id", "process-mode", "interval", "labelfile-path", "gpu-id", "secondary-reinfer-interval",
    "output-tensor-meta", "disable-output-host-copy", "enable-dla", "use-dla-core", "batch-size", "network-mode",
    "model-engine-file", "int8-calib-file", "workspace-size", "output-blob-names", "is-classifier", "network-type",
    "force-implicit-batch-dim", "infer-dims", "model-color-format", "scaling-filter", "scaling-compute-hw",
    "net-scale-factor", "offsets", "mean-file", "maintain-aspect-ratio", "symmetric-padding", "custom-lib-path",
    "parse-bbox-func-name", "parse-bbox-instance-mask-func-name", "parse-classifier-func-name",
    "engine-create-func-name", "custom-network-config", "tlt-encoded-model", "tlt-model-key", "onnx-file",
    "uff-file", "uff-input-order", "uff-input-dims", "uff-input-blob-name", "model-file", "proto-file",
    "operate-on-gie-id", "operate-on-class-ids", "filter-out-class-ids", "input-object-min-width",
    "input-object-min-height", "input-object-max-width", "input-object-max-height", "num-detected-classes",
    "cluster-mode", "classifier-threshold", "classifier-async-mode", "classifier-type", "segmentation-threshold",
    "segmentation-output-order", "output-io-formats", "layer-device-precision", "input-tensor-from-meta",
    "output-instance-mask", "enable-dbscan", "parse-func", "crop-objects-to-roi-boundary", "network-input-order",
    "dump-input-tensor", "dump-output-tensor", "overwrite-input-tensor", "ip-tensor-file",
})
#: ``[class-attrs-all]`` / ``[class-attrs-<id>]`` keys (the detector's clustering)
NVINFER_CLASS_ATTRS_KEYS = frozenset({
    "threshold", "pre-cluster-threshold", "post-cluster-threshold", "eps", "group-threshold", "minBoxes",
    "dbscan-min-score", "nms-iou-threshold", "roi-top-offset", "roi-bottom-offset", "detected-min-w",
    "detected-min-h", "detected-max-w", "detected-max-h", "topk",
})
#: deepstream-app groups (a trailing ``%d`` group takes an index) and the keys this generator may write
APP_GROUP_KEYS: dict[str, frozenset[str]] = {
    "application": frozenset({"enable-perf-measurement", "perf-measurement-interval-sec", "gie-kitti-output-dir",
                              "kitti-track-output-dir"}),
    "tiled-display": frozenset({"enable", "rows", "columns", "width", "height", "gpu-id", "nvbuf-memory-type"}),
    "source%d": frozenset({"enable", "type", "uri", "num-sources", "gpu-id", "cudadec-memtype", "nvbuf-memory-type",
                           "latency", "drop-frame-interval", "select-rtp-protocol", "rtsp-reconnect-interval-sec",
                           "camera-id", "camera-width", "camera-height", "camera-fps-n", "camera-fps-d",
                           "camera-v4l2-dev-node", "intra-decode-enable"}),
    "sink%d": frozenset({"enable", "type", "sync", "source-id", "gpu-id", "qos", "nvbuf-memory-type", "codec",
                         "bitrate", "output-file", "container", "enc-type", "rtsp-port", "udp-port", "width",
                         "height"}),
    "osd": frozenset({"enable", "gpu-id", "border-width", "text-size", "text-color", "text-bg-color", "font",
                      "show-clock", "process-mode", "display-text", "display-bbox", "display-mask"}),
    "streammux": frozenset({"gpu-id", "live-source", "batch-size", "batched-push-timeout", "width", "height",
                            "enable-padding", "nvbuf-memory-type", "attach-sys-ts-as-ntp", "config-file",
                            "sync-inputs", "max-latency", "buffer-pool-size"}),
    "primary-gie": frozenset({"enable", "gpu-id", "gie-unique-id", "batch-size", "config-file", "interval",
                              "nvbuf-memory-type", "model-engine-file", "labelfile-path", "plugin-type",
                              "input-tensor-meta", "infer-raw-output-dir", "operate-on-gie-id",
                              "operate-on-class-ids"}),
    "secondary-gie%d": frozenset({"enable", "gpu-id", "gie-unique-id", "batch-size", "config-file", "interval",
                                  "nvbuf-memory-type", "model-engine-file", "labelfile-path", "plugin-type",
                                  "input-tensor-meta", "operate-on-gie-id", "operate-on-class-ids"}),
    "tracker": frozenset({"enable", "tracker-width", "tracker-height", "ll-lib-file", "ll-config-file", "gpu-id",
                          "display-tracking-id"}),
    "tests": frozenset({"file-loop"}),
}
#: what each nvinfer config must say for the pipeline to mean what feredge means
REQUIRED_PRIMARY = ("gie-unique-id", "process-mode", "network-type", "onnx-file", "model-engine-file", "batch-size",
                    "network-mode", "infer-dims", "model-color-format", "net-scale-factor", "offsets",
                    "labelfile-path", "output-blob-names", "num-detected-classes", "parse-bbox-func-name",
                    "custom-lib-path", "maintain-aspect-ratio", "symmetric-padding")
REQUIRED_SECONDARY = ("gie-unique-id", "process-mode", "network-type", "onnx-file", "model-engine-file", "batch-size",
                      "network-mode", "infer-dims", "model-color-format", "net-scale-factor", "offsets",
                      "labelfile-path", "output-blob-names", "operate-on-gie-id", "operate-on-class-ids",
                      "classifier-threshold")


@dataclass(frozen=True)
class Normalisation:
    """nvinfer's input normalisation: ``y = net_scale_factor · (x − offsets[c])`` on planes in ``color_format``."""

    net_scale_factor: float
    offsets: tuple[float, ...]
    color_format: int

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """(N, H, W[, C]) uint8 in the model's channel order → (N, C, H, W) float32, as nvinfer computes it."""
        x = pixels.astype(np.float64)
        if x.ndim == 3:
            x = x[..., None]
        y = self.net_scale_factor * (x - np.asarray(self.offsets, np.float64))
        return np.ascontiguousarray(y.transpose(0, 3, 1, 2)).astype(np.float32)


def classifier_normalisation(spec: PreprocessSpec) -> Normalisation:
    """The spec's ``(x · scale − mean) / std`` as nvinfer's one scale factor and per-channel offsets."""
    stds = set(spec.std)
    if len(stds) != 1:
        raise FeredgeError(f"nvinfer has one net-scale-factor, but the spec's std differs per channel {spec.std}; "
                           "DeepStream cannot normalise this model exactly")
    std = stds.pop()
    means = spec.mean * spec.num_channels if len(spec.mean) == 1 else spec.mean
    return Normalisation(spec.scale / std, tuple(m / spec.scale for m in means), COLOR_FORMAT[spec.channels])


#: BlazeFace (``BlazeFaceDetector.infer``): RGB, ``x / 127.5 − 1`` = ``(1/127.5) · (x − 127.5)``
BLAZEFACE_NORMALISATION = Normalisation(1.0 / 127.5, (127.5, 127.5, 127.5), COLOR_FORMAT["rgb"])


def engine_name(onnx_file: str, batch: int, gpu_id: int, precision: str) -> str:
    """The name nvinfer gives the engine it builds from ``onnx_file`` (and looks for first)."""
    return f"{onnx_file}_b{batch}_gpu{gpu_id}_{precision}.engine"


@dataclass
class Config:
    """One INI file: groups of keys in order, with a header that says why."""

    header: str
    groups: dict[str, dict[str, str]] = field(default_factory=dict)

    def render(self) -> str:
        lines = [f"# {line}" if line else "#" for line in self.header.strip().splitlines()]
        for group, keys in self.groups.items():
            lines += ["", f"[{group}]", *(f"{k}={v}" for k, v in keys.items())]
        return "\n".join(lines) + "\n"


def _fmt(value: float) -> str:
    return repr(float(value))


def _normalisation_keys(norm: Normalisation) -> dict[str, str]:
    return {"net-scale-factor": _fmt(norm.net_scale_factor), "offsets": ";".join(_fmt(v) for v in norm.offsets),
            "model-color-format": str(norm.color_format)}


def primary_config(detector: Mapping[str, Any], onnx_file: str, options: DeepStreamOptions,
                   precision: str = "fp32") -> Config:
    """nvinfer config of the BlazeFace network (``detector``: the bundle's ``networks.detector`` spec) at the
    detector's ``precision`` (:data:`feredge.export.detector_network.NETWORK_PRECISION`: fp16 in an fp16
    bundle, fp32 in an int8 one); nvinfer builds fp16 from the fp32 ONNX, as TensorRT 10 does."""
    size = int(detector["input_size"])
    notes = [f"feredge: BlazeFace {detector['name']} ({detector['model']}) as primary GIE, {size}x{size} RGB, "
             "x/127.5 - 1, letterboxed (centred, black).",
             "BlazeFace outputs raw SSD anchors: a custom bbox parser is REQUIRED. parse-bbox-func-name and",
             "custom-lib-path are placeholders; the parser decodes anchors (feredge.preprocess.blazeface: AnchorSpec,",
             f"decode) with strides {list(detector['anchors']['strides'])} and sigmoid(clip(logit, "
             f"+-{detector['raw_score_clip']})).",
             "For the secondary GIE to see feredge's crop, the parser should emit the square box feredge crops",
             "(see the secondary config's crop note). nvinfer clusters with plain NMS (cluster-mode=2); MediaPipe's",
             "weighted NMS belongs in the parser (then cluster-mode=4)."]
    if detector.get("tiles"):
        notes.append(f"tiles {list(detector['tiles'])} of this variant are not reproduced: one full-frame view only "
                     "(tiles would need nvdspreprocess ROIs).")
    property_keys = {
        "gpu-id": str(options.gpu_id), "gie-unique-id": "1", "process-mode": "1", "network-type": "0",
        "onnx-file": onnx_file, "model-engine-file": engine_name(onnx_file, options.streams, options.gpu_id, precision),
        "batch-size": str(options.streams), "network-mode": str(NETWORK_MODE[precision]),
        "infer-dims": f"3;{size};{size}", **_normalisation_keys(BLAZEFACE_NORMALISATION),
        "maintain-aspect-ratio": "1" if detector.get("letterbox", True) else "0", "symmetric-padding": "1",
        "scaling-filter": "1", "labelfile-path": DETECTOR_LABELS, "num-detected-classes": "1",
        "output-blob-names": "detections", "cluster-mode": "2", "parse-bbox-func-name": options.parser_func,
        "custom-lib-path": options.parser_lib,
    }
    class_attrs = {"pre-cluster-threshold": _fmt(detector["score_threshold"]),
                   "nms-iou-threshold": _fmt(detector["nms_threshold"]), "topk": "64"}
    if detector.get("min_face"):
        class_attrs.update({"detected-min-w": str(detector["min_face"]), "detected-min-h": str(detector["min_face"])})
    return Config("\n".join(notes), {"property": property_keys, "class-attrs-all": class_attrs})


def secondary_config(spec: PreprocessSpec, onnx_file: str, precision: str, batch: int,
                     options: DeepStreamOptions) -> Config:
    """nvinfer config of the classifier, on the detector's face class, normalised exactly as ``spec``."""
    norm = classifier_normalisation(spec)
    height, width = spec.input_size
    notes = [f"feredge: the classifier as secondary GIE on the face class of GIE 1; {spec.channels} "
             f"{height}x{width}, (x*{spec.scale:.6g} - mean {list(spec.mean)}) / std {list(spec.std)}",
             "= net-scale-factor*(x - offsets), derived from the bundle's PreprocessSpec.",
             f"Output: softmax probabilities ({PROBABILITIES}), appended to the bundle's logits, so "
             "classifier-threshold is a probability.",
             f"Crop note: feredge crops a square of side max(w, h)*(1 + 2*{spec.crop_margin:g}) around the box "
             "centre; nvinfer scales the object's box as it is.",
             f"interpolation {spec.interpolation!r} -> scaling-filter {SCALING_FILTER[spec.interpolation]}"
             + (" (closest GPU filter, not identical)" if spec.interpolation in ("area", "cubic") else "")]
    if spec.alignment != "none":
        notes.append(f"alignment {spec.alignment!r} is not reproduced by nvinfer (plain box crop).")
    keys = {
        "gpu-id": str(options.gpu_id), "gie-unique-id": "2", "process-mode": "2", "network-type": "1",
        "operate-on-gie-id": "1", "operate-on-class-ids": "0", "onnx-file": onnx_file,
        "model-engine-file": engine_name(onnx_file, batch, options.gpu_id, precision), "batch-size": str(batch),
        "network-mode": str(NETWORK_MODE[precision]), "infer-dims": f"{spec.num_channels};{height};{width}",
        **_normalisation_keys(norm), "maintain-aspect-ratio": "0",
        "scaling-filter": str(SCALING_FILTER[spec.interpolation]), "labelfile-path": CLASSIFIER_LABELS,
        "output-blob-names": PROBABILITIES, "classifier-threshold": "0.0", "classifier-async-mode": "0",
        "input-object-min-width": "16", "input-object-min-height": "16",
    }
    return Config("\n".join(notes), {"property": keys})


def app_config(options: DeepStreamOptions, classifier_batch: int) -> Config:
    """deepstream-app: N URI sources → nvstreammux (batch N) → BlazeFace → classifier → fakesink, headless."""
    width, height = options.muxer_size
    groups: dict[str, dict[str, str]] = {
        "application": {"enable-perf-measurement": "1", "perf-measurement-interval-sec": "5"},
        "tiled-display": {"enable": "0"},
    }
    for index, uri in enumerate(options.stream_uris()):
        groups[f"source{index}"] = {"enable": "1", "type": "3", "uri": uri, "num-sources": "1",
                                    "gpu-id": str(options.gpu_id), "cudadec-memtype": "0"}
    groups.update({
        "sink0": {"enable": "1", "type": "1", "sync": "0", "source-id": "0", "gpu-id": str(options.gpu_id)},
        "osd": {"enable": "0"},
        "streammux": {"gpu-id": str(options.gpu_id), "live-source": "0", "batch-size": str(options.streams),
                      "batched-push-timeout": "40000", "width": str(width), "height": str(height),
                      "enable-padding": "0"},
        "primary-gie": {"enable": "1", "gpu-id": str(options.gpu_id), "gie-unique-id": "1",
                        "batch-size": str(options.streams), "config-file": PRIMARY},
        "secondary-gie0": {"enable": "1", "gpu-id": str(options.gpu_id), "gie-unique-id": "2",
                           "batch-size": str(classifier_batch), "operate-on-gie-id": "1",
                           "operate-on-class-ids": "0", "config-file": SECONDARY},
        "tracker": {"enable": "0"},
        "tests": {"file-loop": "0"},
    })
    header = (f"feredge: {options.streams} stream(s), headless (tiled display off, fakesink type=1, no OSD);\n"
              "perf counters every 5 s. Sources type=3 are URIs (file://, rtsp://). Run: deepstream-app -c " + APP)
    return Config(header, groups)


# --- the ONNX side ----------------------------------------------------------------------------------


def append_softmax(source: Path, destination: Path) -> None:
    """``source`` (one output: logits) with ``Softmax(axis=1)`` appended as output :data:`PROBABILITIES`."""
    import onnx
    from onnx import helper

    model = onnx.load(str(source))
    graph = model.graph
    if len(graph.output) != 1:
        raise FeredgeError(f"{source.name}: expected one output (logits), found {len(graph.output)}")
    logits = graph.output[0]
    graph.node.append(helper.make_node("Softmax", [logits.name], [PROBABILITIES], axis=1, name="feredge_softmax"))
    probs = onnx.ValueInfoProto()
    probs.CopyFrom(logits)
    probs.name = PROBABILITIES
    graph.output.remove(logits)
    graph.output.append(probs)
    onnx.checker.check_model(model)
    onnx.save(model, str(destination))


def onnx_io(path: Path) -> tuple[tuple[str, tuple[int | None, ...]], tuple[str, tuple[int | None, ...]]]:
    """(input name, shape), (output name, shape) of a one-input one-output ONNX; ``None`` for a symbolic dim."""
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in initializers]

    def shape(value: Any) -> tuple[int | None, ...]:
        return tuple(d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim)

    return (inputs[0].name, shape(inputs[0])), (graph.output[0].name, shape(graph.output[0]))


def softmax_check(logits_onnx: Path, probs_onnx: Path, batch: np.ndarray) -> dict[str, Any]:
    """The appended Softmax against numpy's softmax of the source ONNX's logits, same runtime, same faces."""
    import onnxruntime as ort

    def run(path: Path) -> np.ndarray:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return np.concatenate([session.run(None, {name: batch[i:i + 16]})[0] for i in range(0, len(batch), 16)])

    logits, probs = run(logits_onnx).astype(np.float64), run(probs_onnx).astype(np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    expected = shifted / shifted.sum(axis=1, keepdims=True)
    max_abs = float(np.abs(probs - expected).max())
    agree = float((probs.argmax(1) == logits.argmax(1)).mean())
    passed = max_abs <= 1e-5 and agree == 1.0
    return {"faces": len(batch), "max_abs_probability": max_abs, "top1_agreement": agree, "passed": passed}


# --- the static check -------------------------------------------------------------------------------


def read_ini(path: Path) -> configparser.ConfigParser:
    """An nvinfer/deepstream-app file as GLib's key file reads it (keys case-sensitive, no interpolation)."""
    parser = configparser.ConfigParser(interpolation=None, strict=True, delimiters=("=",), comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(path.read_text(encoding="utf-8"), source=str(path))
    except configparser.Error as exc:
        raise FeredgeError(f"{path.name}: not a valid key file: {exc}".splitlines()[0]) from None
    return parser


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.split(";") if v.strip())


def sample_pixels(channels: int, size: int = 8, seed: int = 0) -> np.ndarray:
    """Every uint8 value in every channel (plus random ones): (N, size, size[, C]) for the normalisation check."""
    every = np.arange(256, dtype=np.uint8).reshape(4, size, size) if size == 8 else None
    rng = np.random.default_rng(seed)
    random = rng.integers(0, 256, (4, size, size), dtype=np.uint8)
    gray = np.concatenate([every, random]) if every is not None else random
    if channels == 1:
        return gray
    return np.stack([np.roll(gray, c * 37) for c in range(channels)], axis=-1)  # channels differ per pixel


def normalisation_error(keys: Mapping[str, str], expected: Normalisation | PreprocessSpec) -> float:
    """Largest |nvinfer's normalisation from ``keys`` − feredge's| over :func:`sample_pixels` (inf: wrong format)."""
    from feredge.preprocess.transform import normalise

    fmt = int(keys["model-color-format"])
    want_fmt = expected.color_format if isinstance(expected, Normalisation) else COLOR_FORMAT[expected.channels]
    channels = 1 if fmt == 2 else 3
    offsets = _floats(keys["offsets"])
    if fmt != want_fmt or len(offsets) != channels:
        return float("inf")
    pixels = sample_pixels(channels)
    got = Normalisation(float(keys["net-scale-factor"]), offsets, fmt).apply(pixels)
    want = expected.apply(pixels) if isinstance(expected, Normalisation) else normalise(pixels, expected)
    return float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())


#: float32 rounding of values up to ~|2|: a derived normalisation is exact up to this
NORMALISATION_ATOL = 1e-5


def _group_kind(group: str) -> str:
    return re.sub(r"\d+$", "%d", group) if re.search(r"\d+$", group) else group


def _check_nvinfer(path: Path, required: Sequence[str], findings: list[str]) -> configparser.ConfigParser:
    ini = read_ini(path)
    if not ini.has_section("property"):
        findings.append(f"{path.name}: no [property] group")
        return ini
    for group in ini.sections():
        known = NVINFER_PROPERTY_KEYS if group == "property" else \
            NVINFER_CLASS_ATTRS_KEYS if re.fullmatch(r"class-attrs-(all|\d+)", group) else None
        if known is None:
            findings.append(f"{path.name}: unknown group [{group}]")
            continue
        findings += [f"{path.name}: [{group}] unknown nvinfer key {k!r}" for k in ini[group] if k not in known]
    findings += [f"{path.name}: [property] lacks {k}" for k in required if k not in ini["property"]]
    return ini


def _check_files(directory: Path, name: str, keys: Mapping[str, str], findings: list[str]) -> None:
    for key in ("onnx-file", "labelfile-path", "config-file"):
        if key in keys and not (directory / keys[key]).is_file():
            findings.append(f"{name}: {key} {keys[key]} does not exist")


def _check_dims(name: str, keys: Mapping[str, str], onnx_path: Path, output_width: int | None,
                findings: list[str]) -> None:
    (_, in_shape), (out_name, out_shape) = onnx_io(onnx_path)
    dims = tuple(int(v) for v in keys["infer-dims"].split(";"))
    if tuple(in_shape[1:]) != dims:
        findings.append(f"{name}: infer-dims {list(dims)} but {onnx_path.name} takes {list(in_shape[1:])}")
    if keys["output-blob-names"].split(";") != [out_name]:
        findings.append(f"{name}: output-blob-names {keys['output-blob-names']} but {onnx_path.name} outputs "
                        f"{out_name}")
    if output_width is not None and out_shape[-1] != output_width:
        findings.append(f"{name}: {onnx_path.name} outputs {out_shape[-1]} values, expected {output_width}")
    batch = int(keys["batch-size"])
    if in_shape[0] is not None and in_shape[0] < batch:
        findings.append(f"{name}: batch-size {batch} but {onnx_path.name} has a fixed batch of {in_shape[0]}")


def check_deepstream_dir(directory: Path, spec: PreprocessSpec, labels: Sequence[str], precision: str,
                         streams: int | None = None) -> list[str]:
    """Everything wrong with a generated DeepStream directory, as one line each (empty: it passes)."""
    findings: list[str] = []
    primary = _check_nvinfer(directory / PRIMARY, REQUIRED_PRIMARY, findings)
    secondary = _check_nvinfer(directory / SECONDARY, REQUIRED_SECONDARY, findings)
    app = read_ini(directory / APP)
    for group in app.sections():
        known = APP_GROUP_KEYS.get(_group_kind(group))
        if known is None:
            findings.append(f"{APP}: unknown deepstream-app group [{group}]")
            continue
        findings += [f"{APP}: [{group}] unknown key {k!r}" for k in app[group] if k not in known]
    if findings:
        return findings
    p, s = primary["property"], secondary["property"]
    for name, keys in ((PRIMARY, p), (SECONDARY, s)):
        _check_files(directory, name, keys, findings)
    for group in ("primary-gie", "secondary-gie0"):
        _check_files(directory, APP, app[group], findings)
    if findings:
        return findings
    if (error := normalisation_error(p, BLAZEFACE_NORMALISATION)) > NORMALISATION_ATOL:
        findings.append(f"{PRIMARY}: normalisation differs from BlazeFace's x/127.5-1 by {error:.3g}")
    if (error := normalisation_error(s, spec)) > NORMALISATION_ATOL:
        findings.append(f"{SECONDARY}: normalisation differs from the bundle's PreprocessSpec by {error:.3g}")
    _check_dims(PRIMARY, p, directory / p["onnx-file"], 17, findings)
    _check_dims(SECONDARY, s, directory / s["onnx-file"], len(labels), findings)
    if int(s["network-mode"]) != NETWORK_MODE[precision]:
        findings.append(f"{SECONDARY}: network-mode {s['network-mode']} but the bundle is {precision} "
                        f"({NETWORK_MODE[precision]})")
    expected_pairs = {("process-mode", "2"), ("network-type", "1"), ("operate-on-gie-id", p["gie-unique-id"]),
                      ("operate-on-class-ids", "0")}
    findings += [f"{SECONDARY}: {k}={s.get(k)} (expected {v})" for k, v in sorted(expected_pairs) if s.get(k) != v]
    if p.get("process-mode") != "1" or p.get("network-type") != "0":
        findings.append(f"{PRIMARY}: must be a primary detector (process-mode=1, network-type=0)")
    read_labels = (directory / s["labelfile-path"]).read_text(encoding="utf-8").strip().split(";")
    if read_labels != list(labels):
        findings.append(f"{SECONDARY}: labels {read_labels} differ from the bundle's {list(labels)}")
    for name, keys in ((PRIMARY, p), (SECONDARY, s)):
        mode = {v: k for k, v in NETWORK_MODE.items()}[int(keys["network-mode"])]
        want = engine_name(keys["onnx-file"], int(keys["batch-size"]), int(keys.get("gpu-id", "0")), mode)
        if keys["model-engine-file"] != want:
            findings.append(f"{name}: model-engine-file {keys['model-engine-file']} is not the name nvinfer "
                            f"builds ({want}): every start would rebuild the engine")
    mux = app["streammux"]
    sources = [g for g in app.sections() if _group_kind(g) == "source%d" and app[g].get("enable") == "1"]
    if streams is not None and len(sources) != streams:
        findings.append(f"{APP}: {len(sources)} sources, expected {streams}")
    if int(mux["batch-size"]) != len(sources) or int(app["primary-gie"]["batch-size"]) != len(sources):
        findings.append(f"{APP}: streammux/primary-gie batch-size {mux['batch-size']}/"
                        f"{app['primary-gie']['batch-size']} should equal the {len(sources)} sources")
    if int(p["batch-size"]) != len(sources):
        findings.append(f"{PRIMARY}: batch-size {p['batch-size']} should equal the {len(sources)} sources")
    if app["tiled-display"].get("enable") != "0" or app["sink0"].get("type") != "1":
        findings.append(f"{APP}: not headless (tiled-display enable=0 and sink0 type=1 fakesink expected)")
    return findings


# --- the export target ------------------------------------------------------------------------------


def _detector_variant(ctx: ExportContext) -> Any:
    from feredge.preprocess.blazeface import BLAZEFACE_SPECS

    name = ctx.options.detector_network
    if not name:
        raise FeredgeError("--target deepstream needs a detector network for its primary GIE; "
                           "drop --detector-network none")
    if name not in BLAZEFACE_SPECS:
        raise FeredgeError(f"no BlazeFace detector named {name!r}; known: {', '.join(sorted(BLAZEFACE_SPECS))}")
    return BLAZEFACE_SPECS[name]


def _copy_detector(variant: Any, destination: Path) -> None:
    """The shipped fp32 BlazeFace ONNX, checked against PROVENANCE.json (the bytes an fp32 bundle's detector gets;
    in an fp16 bundle nvinfer builds fp16 from it, ``network-mode=2``, as TensorRT 10 builds from an fp32 ONNX)."""
    from feredge.bundle import sha256_file
    from feredge.preprocess.blazeface import models_dir

    source = models_dir() / variant.model
    provenance = json.loads((models_dir() / "PROVENANCE.json").read_text(encoding="utf-8"))
    record = next(m for m in provenance["models"].values() if m["file"] == variant.model)
    if sha256_file(source) != record["sha256"]:
        raise FeredgeError(f"{source}: does not match its sha256 in PROVENANCE.json (modified asset?)")
    shutil.copyfile(source, destination)


def build_deepstream(ctx: ExportContext) -> None:
    """TensorRT-ready ONNX and its checks (the tensorrt target's), then ``deepstream/`` checked statically."""
    from feredge.export.tensorrt.export_target import QDQ_ONNX, build_tensorrt

    options = deepstream_options_of(ctx.options)
    variant = _detector_variant(ctx)
    precision = ctx.options.precision
    build_tensorrt(ctx)
    source_onnx = ctx.staging / ("model.onnx" if precision != "int8" else QDQ_ONNX)
    if not source_onnx.is_file():
        raise FeredgeError("DeepStream INT8 needs a Q/DQ ONNX (a QAT checkpoint or PTQ from --calib DATA); "
                           "nvinfer cannot use feredge's calibration faces")
    out = ctx.staging / DIRECTORY
    out.mkdir()
    append_softmax(source_onnx, out / CLASSIFIER_ONNX)
    softmax = softmax_check(source_onnx, out / CLASSIFIER_ONNX, ctx.reference.batch)
    if not softmax["passed"]:
        raise FeredgeError(f"{CLASSIFIER_ONNX}: appended softmax differs from the logits' softmax "
                           f"({softmax['max_abs_probability']:.3g})")
    detector_onnx = f"detector_{Path(variant.model).stem}.onnx"
    _copy_detector(variant, out / detector_onnx)
    (out / DETECTOR_LABELS).write_text("face\n", encoding="utf-8")
    (out / CLASSIFIER_LABELS).write_text(";".join(ctx.source.labels) + "\n", encoding="utf-8")
    batch = min(options.classifier_batch, ctx.options.max_batch)
    configs = {PRIMARY: primary_config(variant.to_dict(), detector_onnx, options, NETWORK_PRECISION[precision]),
               SECONDARY: secondary_config(ctx.source.spec, CLASSIFIER_ONNX, precision, batch, options),
               APP: app_config(options, batch)}
    for name, config in configs.items():
        (out / name).write_text(config.render(), encoding="utf-8")
    findings = check_deepstream_dir(out, ctx.source.spec, ctx.source.labels, precision, options.streams)
    if findings:
        more = f" (+{len(findings) - 1} more)" if len(findings) > 1 else ""
        raise FeredgeError(f"generated DeepStream configs fail their check (a feredge bug): {findings[0]}{more}")
    for name, role in ROLES.items():
        ctx.add_file(f"{DIRECTORY}/{name}", role, precision="fp32" if name == DETECTOR_LABELS else precision)
    ctx.add_file(f"{DIRECTORY}/{detector_onnx}", DETECTOR_ONNX_ROLE, precision="fp32")
    ctx.manifest_extra["deepstream"] = {
        "directory": DIRECTORY, "app_config": f"{DIRECTORY}/{APP}", "streams": options.streams,
        "primary": f"{DIRECTORY}/{PRIMARY}", "secondary": f"{DIRECTORY}/{SECONDARY}",
        "classifier_batch": batch, "softmax_check": softmax,
        "static_check": {"passed": True, "normalisation_atol": NORMALISATION_ATOL},
        "custom_parser": {"parse-bbox-func-name": options.parser_func, "custom-lib-path": options.parser_lib,
                          "status": "placeholder: build a BlazeFace bbox parser library on the device"},
    }
    ctx.message(f"DeepStream: BlazeFace needs a custom bbox parser; {PRIMARY} names {options.parser_func} in "
                f"{options.parser_lib} (placeholder). nvinfer builds both engines on the device at first start, "
                f"next to the ONNX: run a copy of {DIRECTORY}/ (docs/serving.md)")
