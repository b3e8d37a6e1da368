"""Data layer: FER dataset loaders, a synthetic FER set and numpy augmentations.

Imports numpy and OpenCV only; torch is imported lazily by :meth:`FerDataset.to_torch`, so the
loaders and the synthetic set work (and are tested) on machines without torch.
"""

from feredge.data.augment import AugmentConfig, Augmenter, balanced_sample_weights
from feredge.data.formats import FORMATS, load_dataset
from feredge.data.records import FaceRecord, FerDataset, Sample, canonical_label
from feredge.data.synth import SynthConfig, generate, synth_sample, write_fer2013_csv, write_folder

__all__ = [
    "FORMATS",
    "AugmentConfig",
    "Augmenter",
    "FaceRecord",
    "FerDataset",
    "Sample",
    "SynthConfig",
    "balanced_sample_weights",
    "canonical_label",
    "generate",
    "load_dataset",
    "synth_sample",
    "write_fer2013_csv",
    "write_folder",
]
