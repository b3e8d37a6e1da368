"""The Python API: from an image to its faces in three lines.

    import feredge
    model = feredge.load()                      # the shipped model's prebuilt bundle (or load("bundles/x"))
    faces = model.predict("photo.jpg")          # a path, a numpy array (BGR, gray, BGRA) or a PIL image
    faces[0].label, faces[0].probability, faces[0].box

``predict(image, boxes=[(x, y, w, h), ...])`` classifies faces you already found (your own
detector, a tracker) without detecting again; ``predict_batch(images)`` runs several images;
``predict("https://…/photo.jpg")`` downloads the image (size and time limits, the checked decoder).
``stream(source)`` yields per-frame results with track ids for a video file, a camera index or a
URL (``rtsp://``, http(s) video), through the video loop ``feredge infer`` runs
(:class:`feredge.video.processor.VideoProcessor`); ``analyze(source)`` keeps them all as a table
(``to_csv(path)``, ``to_dataframe()`` with pandas if installed), as ``fer``'s ``Video.analyze`` does.
Torch-free: the model runs in the bundle's runtime through :class:`feredge.runtimes.pipeline.Pipeline`.
Why these shapes: ``fer`` users write ``FER().detect_emotions(img)`` and online-emotion-detection
users ``predict_on_boxes(frame, boxes)``; each face carries ``emotions`` too, the key ``fer`` uses.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from feredge.default_bundle import ensure_default_bundle
from feredge.errors import FeredgeError
from feredge.preprocess.boxes import Box
from feredge.preprocess.url import DEFAULT_OPTIONS, UrlOptions
from feredge.runtimes.pipeline import FaceResult, Pipeline

if TYPE_CHECKING:
    from feredge.video.processor import VideoOptions
    from feredge.video.results import FrameStream, VideoResults
    from feredge.video.stream import ReconnectPolicy

ImageInput = Any  # str (a path or an http(s) URL) | Path | np.ndarray | PIL.Image.Image
VideoInput = str | Path | int  # a video file, a URL (rtsp://, http(s) video) or a camera index


class Recognizer:
    """A loaded bundle: :meth:`predict` per image. Close it (or use ``with``) to free the runtime."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.labels = pipeline.labels
        #: timeouts and size limit for URLs given to predict and stream
        self.url_options: UrlOptions = DEFAULT_OPTIONS

    def predict(self, image: ImageInput, boxes: Sequence[Sequence[float]] | None = None) -> list[FaceResult]:
        """The faces of ``image``, largest first (boxes in the image's own pixels). With ``boxes``
        (``(x, y, w, h)`` each), those regions are classified and nothing is detected.

        ``image`` may be an http(s) URL: downloaded within :attr:`url_options` and decoded by the
        checked decoder; a 404, a refused connection or a timeout is a one-line :class:`FeredgeError`.
        """
        bgr, scale = _as_bgr(image, self.url_options)
        if boxes is None:
            return self.pipeline.run(bgr, scale=scale).faces
        return self.pipeline.classify_boxes(bgr, [_box(b, scale) for b in boxes], scale=scale)

    def predict_batch(self, images: Iterable[ImageInput]) -> list[list[FaceResult]]:
        return [self.predict(image) for image in images]

    def stream(self, source: VideoInput, *, options: VideoOptions | None = None, keep_images: bool = True,
               reconnect: ReconnectPolicy | None = None, **settings: Any) -> FrameStream:
        """Per-frame results of a video file, a camera index or a URL, as they are computed.

        Iterate the returned :class:`~feredge.video.results.FrameStream` for
        :class:`~feredge.video.results.FrameResult` (``index``, ``timestamp``, ``faces`` with
        ``track_id``, ``box``, ``label``, ``probabilities``; ``image`` unless ``keep_images=False``).
        ``settings`` are :class:`~feredge.video.processor.VideoOptions` fields (``every``,
        ``max_frames``, ``smoothing``, ``reinfer_every``…) over ``options``; ``reconnect`` how a live
        URL stream is reopened when it drops. The source is opened now: an unreadable file or a
        stream that cannot be opened is a one-line :class:`FeredgeError` here. Use one stream at a
        time per Recognizer (they share its runtime); close it, or use ``with``, when you stop early.
        """
        from feredge.video.results import FrameStream

        return FrameStream(self.pipeline, source, _video_options(options, settings), keep_images=keep_images,
                           url_options=self.url_options, reconnect=reconnect)

    def analyze(self, source: VideoInput, *, options: VideoOptions | None = None, **settings: Any) -> VideoResults:
        """Every frame's results of ``source`` (see :meth:`stream`), kept without images: ``.frames``,
        ``.rows()``, ``.to_csv(path)`` and ``.to_dataframe()`` (one row per face per frame: frame, time,
        track, x, y, w, h, each label's probability, label)."""
        from feredge.video.results import VideoResults

        return VideoResults.collect(self.stream(source, options=options, keep_images=False, **settings))

    def close(self) -> None:
        self.pipeline.close()

    def __enter__(self) -> Recognizer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(bundle: str | Path | None = None, *, runtime: str = "auto", device: str | None = None,
         detector: str | None = None) -> Recognizer:
    """A :class:`Recognizer` for ``bundle`` (default: the shipped model's prebuilt bundle, read from the
    package and never written; a runtime that writes into its bundle, TensorRT, gets a copy in the
    per-user cache: :mod:`feredge.default_bundle`), on ``runtime`` (auto: the best installed one) and
    ``device``; ``detector`` overrides the bundle's face detector (``haar``, ``mtcnn``, ``blazeface``…,
    ``none`` for face crops)."""
    path = Path(bundle) if bundle is not None else ensure_default_bundle(quiet=True, runtime=runtime)
    return Recognizer(Pipeline.from_bundle(path, runtime, detector=detector, device=device))


def _video_options(options: VideoOptions | None, settings: dict[str, Any]) -> VideoOptions:
    from feredge.video.processor import VideoOptions

    base = options or VideoOptions()
    known = {f.name for f in dataclasses.fields(base)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise FeredgeError(f"unknown stream setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return dataclasses.replace(base, **settings)


def _as_bgr(image: ImageInput, url_options: UrlOptions = DEFAULT_OPTIONS) -> tuple[np.ndarray, float]:
    """(BGR uint8 array, the decoder's scale) for a path, a URL, an array or a PIL image."""
    from feredge.preprocess.image_io import read_image, to_bgr_u8
    from feredge.preprocess.url import is_url, read_url_image

    if isinstance(image, str) and is_url(image):
        downloaded = read_url_image(image, url_options)
        return downloaded.image, downloaded.scale
    if isinstance(image, str | Path):
        decoded = read_image(Path(image))  # the checked decoder: size limits, truncation, one-line errors
        return decoded.image, decoded.scale
    if isinstance(image, np.ndarray):
        return to_bgr_u8(image, "<array>"), 1.0
    if hasattr(image, "convert") and hasattr(image, "size"):  # a PIL image: RGB(A) or L → BGR
        mode = "L" if getattr(image, "mode", "") in ("L", "I;16", "I") else "RGB"
        array = np.asarray(image.convert(mode))
        return to_bgr_u8(array if mode == "L" else array[:, :, ::-1], "<PIL image>"), 1.0
    raise FeredgeError(f"predict takes a path, a URL, a numpy array or a PIL image, not {type(image).__name__}")


def _box(values: Sequence[float], scale: float) -> Box:
    if len(values) != 4:
        raise FeredgeError(f"a box is (x, y, w, h), got {tuple(values)}")
    x, y, w, h = (float(v) for v in values)
    if w <= 0 or h <= 0:
        raise FeredgeError(f"a box needs a positive width and height, got {tuple(values)}")
    box = Box(round(x), round(y), round(w), round(h))
    return box.scaled(scale) if scale != 1.0 else box
