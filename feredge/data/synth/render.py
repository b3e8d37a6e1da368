"""Many samples at once, in worker processes when that pays, in index order either way."""

from __future__ import annotations

from concurrent.futures import ProcessPoolExecutor

import numpy as np

from feredge.data.synth.config import SynthConfig
from feredge.data.synth.sample import synth_sample

Rendered = list[tuple[np.ndarray, np.ndarray | None]]


def render_batch(args: tuple[list[int], int, int, SynthConfig, int]) -> Rendered:
    """(image, soft label or None when not blended) for each index; runs in worker processes."""
    indices, seed, size, config, stream = args
    out = []
    for i in indices:
        s = synth_sample(i, seed, size, config, stream)
        out.append((s.image, s.soft if s.blend is not None else None))
    return out


def render_all(
    indices: list[int], seed: int, size: int, config: SynthConfig, stream: int, workers: int
) -> Rendered:
    """:func:`render_batch` over ``indices``, split across ``workers`` processes; results in index order."""
    if workers <= 1 or len(indices) < 64:  # a process pool costs more than it saves below this
        return render_batch((indices, seed, size, config, stream))
    chunks = [indices[k::workers] for k in range(workers)]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        parts = list(pool.map(render_batch, [(c, seed, size, config, stream) for c in chunks]))
    results: Rendered = [None] * len(indices)  # type: ignore[list-item]
    for k, part in enumerate(parts):
        for j, item in enumerate(part):
            results[k + j * workers] = item
    return results
