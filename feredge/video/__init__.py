"""Video and camera streams: tracking, smoothing, async inference, outputs (``feredge infer`` on videos).

Modules: :mod:`~feredge.video.stream` (sources, bounded reader, async model calls),
:mod:`~feredge.video.tracker` (IoU tracks, when to re-run the model), :mod:`~feredge.video.smoothing`
(EMA per track), :mod:`~feredge.video.outputs` (annotated video, JSON lines, track CSV),
:mod:`~feredge.video.processor` (the loop), :mod:`~feredge.video.synthetic` (test videos),
:mod:`~feredge.video.memory` (RSS sampling).
"""
