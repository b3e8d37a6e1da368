"""Options of the ``deepstream`` export target (streams, URIs, batch, parser library), apart from the target.

Its own module so that :mod:`feredge.export.context` can name the type without an import cycle
(the target module itself imports the context's types).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from feredge.errors import FeredgeError

#: the custom bbox parser BlazeFace needs: placeholders, to be built on the device (docs/serving.md)
PARSER_FUNC = "NvDsInferParseCustomBlazeFace"
PARSER_LIB = "/opt/feredge/lib/libnvds_infer_blazeface.so"
#: the stream every DeepStream install ships: a headless pipeline runs out of the box
SAMPLE_URI = "file:///opt/nvidia/deepstream/deepstream/samples/streams/sample_720p.mp4"


@dataclass(frozen=True)
class DeepStreamOptions:
    """The pipeline around the two networks: streams, their URIs, batch sizes, the parser library."""

    streams: int = 1
    uris: tuple[str, ...] = ()  # none: the DeepStream sample stream; one: repeated N times; else N of them
    classifier_batch: int = 16  # faces per secondary-GIE batch (capped by the bundle's max batch)
    muxer_size: tuple[int, int] = (1280, 720)  # nvstreammux output (width, height)
    gpu_id: int = 0
    parser_lib: str = PARSER_LIB
    parser_func: str = PARSER_FUNC

    def __post_init__(self) -> None:
        if not 1 <= self.streams <= 256:
            raise FeredgeError(f"--streams must be between 1 and 256, got {self.streams}")
        if len(self.uris) not in (0, 1, self.streams):
            raise FeredgeError(f"give no --uri, one (used for every stream) or {self.streams} (one per stream), "
                               f"not {len(self.uris)}")
        if self.classifier_batch < 1:
            raise FeredgeError(f"the classifier batch must be at least 1, got {self.classifier_batch}")

    def stream_uris(self) -> tuple[str, ...]:
        if len(self.uris) == self.streams:
            return self.uris
        return (self.uris[0] if self.uris else SAMPLE_URI,) * self.streams


def deepstream_options_of(options: Any) -> DeepStreamOptions:
    return getattr(options, "deepstream", None) or DeepStreamOptions()
