"""The synthetic set in memory, as a :class:`~feredge.data.records.FerDataset`."""

from __future__ import annotations

from feredge.data.records import FerDataset, Sample
from feredge.data.synth.config import SynthConfig
from feredge.data.synth.expressions import SYNTH_LABELS
from feredge.data.synth.sample import synth_sample


def generate(
    n: int,
    seed: int = 0,
    size: int = 64,
    config: SynthConfig | None = None,
    stream: int = 0,
    start: int = 0,
    split: str = "all",
) -> FerDataset:
    """``n`` in-memory samples (indices ``start .. start+n-1``; labels cycle, so classes balance).

    The images are already face crops, so no box is attached (a box means "crop me" to the
    data layer); :func:`synth_sample` reports the face box for detection checks.
    """
    config = config or SynthConfig()
    samples = []
    for i in range(start, start + n):
        s = synth_sample(i, seed, size, config, stream)
        soft = s.soft if s.blend is not None else None
        samples.append(Sample(source=f"synth:{seed}:{stream}:{i}", label=s.label, image=s.image, soft=soft))
    return FerDataset(labels=SYNTH_LABELS, samples=samples, split=split, name="synth")
