"""Accuracy of a checkpoint (PyTorch) or a bundle (any runtime) on a labelled dataset.

Both go through the same crops (:func:`feredge.data.crops.make_crops` with the artifact's own
PreprocessSpec), so a bundle's figure and its checkpoint's figure differ only by the runtime and
precision. Evaluating a bundle needs no torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from feredge.data.crops import CropSet, make_crops
from feredge.data.formats import load_dataset
from feredge.errors import FeredgeError
from feredge.metrics import ClassificationReport, classification_report, row_normalised
from feredge.preprocess.spec import PreprocessSpec
from feredge.preprocess.transform import normalise


@dataclass
class Evaluation:
    artifact: str
    runtime: str
    settings: dict[str, Any]
    report: ClassificationReport
    logits: np.ndarray
    skipped: int
    #: what a reader of the figures needs to know: the registered model, the dataset and its split
    model: str = ""
    data: str = ""
    split: str = ""
    fmt: str = ""
    file: str = ""  # the file that ran: a bundle's model.xml / model.onnx, or the checkpoint itself

    def to_dict(self) -> dict[str, Any]:
        return {"artifact": self.artifact, "runtime": self.runtime, "settings": self.settings,
                "skipped": self.skipped, "model": self.model, "data": self.data, "split": self.split,
                "format": self.fmt, "file": self.file, **self.report.to_dict(),
                "confusion_row_normalised": [[round(float(v), 6) for v in row]
                                             for row in row_normalised(self.report.confusion)]}

    def title(self) -> str:
        """The confusion picture's title: model, artifact and runtime; dataset, split and the headline figures."""
        precision = self.settings.get("inference_precision") or self.settings.get("precision") or ""
        from feredge.bench.naming import normalise_precision

        ran = " ".join(p for p in (self.runtime, normalise_precision(precision)) if p)
        where = Path(self.artifact).name
        if self.file and self.file != where:
            where = f"{where}/{self.file}"
        return (f"{self.model or where}: {where} on {ran}\n"
                f"{self.data} [{self.split}]: {self.report.samples} faces, accuracy {self.report.accuracy:.1%}, "
                f"macro-F1 {self.report.macro_f1:.3f}")


def _runner_for(artifact: Path, runtime: str) -> tuple[Any, PreprocessSpec, tuple[str, ...], str, str]:
    """(activated runner, spec, labels, runtime name, model name) for a bundle directory or a checkpoint file."""
    if artifact.is_dir():
        from feredge.bundle import Bundle
        from feredge.runtimes.registry import auto_runtime, resolve_name, runner_class

        bundle = Bundle.load(artifact)
        name = auto_runtime(bundle) if runtime == "auto" else resolve_name(runtime)
        return (runner_class(name).from_bundle(bundle).activate(), bundle.spec, bundle.labels, name,
                bundle.model_name)
    if runtime not in ("auto", "torch"):
        raise FeredgeError(f"{artifact}: a checkpoint runs in torch; export a bundle to evaluate {runtime}")
    from feredge.checkpoint import load_checkpoint
    from feredge.runtimes.torch_runner import TorchRunner

    model, meta = load_checkpoint(artifact)
    return (TorchRunner.from_module(model, meta.spec.input_shape).activate(), meta.spec, meta.labels, "torch",
            meta.model)


def predict(runner: Any, crops: CropSet, spec: PreprocessSpec, batch: int = 32, progress: bool = False) -> np.ndarray:
    from feredge.progress import bar

    limit = min(batch, runner.max_batch or batch)
    starts = range(0, len(crops), limit)
    return np.concatenate([runner.infer(normalise(crops.crops[i : i + limit], spec))
                           for i in bar(starts, desc="evaluating", unit="batch", enabled=progress)])


#: what a checkpoint file is called; a run folder (``feredge train --out``) holds these
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth")


def _not_a_bundle(folder: Path) -> FeredgeError:
    """A folder without manifest.json: a training run (name its checkpoints) or not a bundle at all."""
    found = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix in CHECKPOINT_SUFFIXES
                   and not p.name.startswith("trainer_state"))
    if not found:
        return FeredgeError(f"{folder}: not a bundle (no manifest.json) and holds no checkpoint "
                            f"({', '.join(CHECKPOINT_SUFFIXES)}); pass a bundle directory or a checkpoint file")
    usable = [name for name in found if name.endswith(".safetensors")]
    if not usable:  # .pt / .pth: pickles, which feredge never loads
        return FeredgeError(f"{folder}: not a bundle (no manifest.json); found {', '.join(found)}, which feredge "
                            "does not load (pickle); pass a .safetensors checkpoint from feredge train")
    best = "best.safetensors" if "best.safetensors" in usable else usable[0]
    return FeredgeError(f"{folder}: a folder of checkpoints, not a bundle (no manifest.json); pass one of them, "
                        f"e.g. {folder / best} (found: {', '.join(found)})")


def evaluate(artifact: str | Path, data: str | Path, *, fmt: str = "folder", split: str = "test",
             runtime: str = "auto", progress: bool = False) -> Evaluation:
    artifact = Path(artifact)
    if not artifact.exists():
        raise FeredgeError(f"{artifact}: no such checkpoint or bundle")
    if artifact.is_dir() and not (artifact / "manifest.json").is_file():
        raise _not_a_bundle(artifact)
    runner, spec, labels, name, model = _runner_for(artifact, runtime)
    try:
        crops = make_crops(load_dataset(fmt, data, split=split, labels=labels), spec, progress=progress)
        logits = predict(runner, crops, spec, progress=progress)
    finally:
        runner.deactivate()
    report = classification_report(crops.labels, logits.argmax(1), labels)
    file = runner.model_path.name if artifact.is_dir() else artifact.name
    return Evaluation(str(artifact), name, dict(runner.settings), report, logits, len(crops.skipped), model=model,
                      data=str(data), split=split, fmt=fmt, file=file)
