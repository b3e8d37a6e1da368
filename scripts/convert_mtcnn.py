"""Convert facenet-pytorch's MTCNN weights (P/R/O-Net state dicts) to ONNX files shipped in feredge.

Why a script and not a dependency: facenet-pytorch pins an old torch, and the device side must run
without torch at all. The wheel's ``facenet_pytorch/data/{pnet,rnet,onet}.pt`` are plain state dicts
(MIT licence, © 2019 Timothy Esler); they load with ``weights_only=True`` into the three small
networks re-implemented below layer for layer, and are exported once with the TorchScript exporter
(dynamic batch; P-Net also dynamic height/width since it runs fully convolutionally over a pyramid).
Each export is checked against torch with onnxruntime on random inputs before it is written.

Usage::

    pip download --no-deps facenet-pytorch==2.6.0 -d /tmp/fp
    python scripts/convert_mtcnn.py /tmp/fp/facenet_pytorch-2.6.0-py3-none-any.whl

Softmax stays in the graphs (outputs are probabilities), as in the original modules.
"""

from __future__ import annotations

import argparse
import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

OUT_DIR = Path(__file__).resolve().parents[1] / "feredge" / "assets" / "mtcnn"
OPSET = 17


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1, self.conv4_2 = nn.Conv2d(32, 2, 1), nn.Conv2d(32, 4, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1, self.dense5_2 = nn.Linear(128, 2), nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x)).permute(0, 3, 2, 1).reshape(x.shape[0], -1)  # facenet's (W, H, C) flatten
        x = self.prelu4(self.dense4(x))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1, self.dense6_2, self.dense6_3 = nn.Linear(256, 2), nn.Linear(256, 4), nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x)).permute(0, 3, 2, 1).reshape(x.shape[0], -1)
        x = self.prelu5(self.dense5(x))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)


#: name → (module class, example input shape, output names, dynamic axes of the input)
NETS = {
    "pnet": (PNet, (2, 3, 37, 45), ["regression", "probability"], {0: "batch", 2: "height", 3: "width"}),
    "rnet": (RNet, (2, 3, 24, 24), ["regression", "probability"], {0: "batch"}),
    "onet": (ONet, (2, 3, 48, 48), ["regression", "landmarks", "probability"], {0: "batch"}),
}


def _export(name: str, state: dict[str, torch.Tensor]) -> bytes:
    cls, shape, outputs, axes = NETS[name]
    module = cls().eval()
    module.load_state_dict(state)  # strict: every tensor of the wheel is used, none missing
    example = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
    buffer = io.BytesIO()
    dynamic = {"input": axes, **{o: {0: "batch"} for o in outputs}}
    torch.onnx.export(module, (example,), buffer, input_names=["input"], output_names=outputs,
                      dynamic_axes=dynamic, opset_version=OPSET, dynamo=False)
    data = buffer.getvalue()
    _check(name, module, data, shape)
    return data


def _check(name: str, module: nn.Module, data: bytes, shape: tuple[int, ...]) -> None:
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    shapes = [(1, *shape[1:]), (5, *shape[1:])]
    if name == "pnet":
        shapes.append((1, 3, 120, 97))
    for s in shapes:
        x = torch.randn(*s, generator=torch.Generator().manual_seed(1)) * 0.5
        with torch.no_grad():
            want = [t.numpy() for t in module(x)]
        got = session.run(None, {"input": x.numpy()})
        for w, g in zip(want, got, strict=True):
            err = float(np.abs(w - g).max())
            if err > 1e-4:
                raise SystemExit(f"{name}: onnxruntime differs from torch by {err} at input {s}")
    print(f"{name}: onnxruntime matches torch (max error ≤ 1e-4) on {len(shapes)} input shapes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("wheel", type=Path, help="facenet_pytorch-2.6.0-py3-none-any.whl (or an unpacked folder)")
    parser.add_argument("--output", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.wheel
        if root.is_file():
            with zipfile.ZipFile(root) as wheel:
                wheel.extractall(tmp)
            root = Path(tmp)
        args.output.mkdir(parents=True, exist_ok=True)
        for name in NETS:
            state = torch.load(root / "facenet_pytorch" / "data" / f"{name}.pt", weights_only=True, map_location="cpu")
            (args.output / f"{name}.onnx").write_bytes(_export(name, state))
        licence = next(root.glob("facenet_pytorch-*.dist-info/LICENSE*"))
        notice = ("MTCNN weights (pnet/rnet/onet) converted to ONNX by scripts/convert_mtcnn.py from the\n"
                  "facenet-pytorch 2.6.0 wheel (https://github.com/timesler/facenet-pytorch),\n"
                  "originally from https://github.com/kpzhang93/MTCNN_face_detection_alignment.\n"
                  "facenet-pytorch licence follows.\n\n")
        (args.output / "LICENSE").write_text(notice + licence.read_text())
    print(f"wrote {', '.join(f'{n}.onnx' for n in NETS)} and LICENSE to {args.output}")


if __name__ == "__main__":
    main()
