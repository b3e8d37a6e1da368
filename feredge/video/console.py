"""What ``feredge infer`` on a video shows while it runs: a bar of frames, JSON lines as they come.

A clip at 30 fps with three faces would print 90 lines a second if every face of every frame got a
human-readable line; on a terminal that buries everything else, and nobody reads it. So a video run
shows a progress bar of frames (stderr, terminals only, off under ``--quiet``) and, at the end, the
run's one summary line (:meth:`~feredge.video.processor.VideoStats.line`: frames, fps, faces,
inferences, tracks). The records themselves go where they were asked for: ``--json`` on stdout and
``--output FILE``, each frame's lines written and flushed as the frame finishes, so a reader of a
pipe or of the file sees them while the video is still running, never only at the end.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from feredge.progress import bar, echo


def expected_frames(frame_count: int | None, every: int = 1, max_frames: int | None = None) -> int | None:
    """How many frames a run will process: the container's count (when it has one) at every
    ``every``-th frame, at most ``max_frames``; None when unknown (a camera, a stream)."""
    total = None if frame_count is None else -(-frame_count // every)
    if max_frames is not None:
        total = max_frames if total is None else min(total, max_frames)
    return total


class VideoConsole:
    """One video's console: ``frame(records)`` per processed frame, ``close()`` at the end."""

    def __init__(self, name: str, total: int | None, *, json_stdout: bool, sink: Any = None) -> None:
        self.json_stdout, self.sink = json_stdout, sink
        self.frames = self.faces = 0
        self.bar = bar(total=total, desc=name, unit="frame")

    def frame(self, records: list[dict[str, Any]]) -> None:
        """Write one frame's records (JSON lines to ``--output`` and, with ``--json``, stdout) and advance."""
        lines = [json.dumps(record, sort_keys=True) for record in records]
        if self.sink is not None and lines:
            self.sink.write("\n".join(lines))  # one write a frame: the file holds whole frames (and fewer syscalls)
            self.sink.flush()
        if self.json_stdout:
            for line in lines:
                echo(line)
            sys.stdout.flush()
        self.frames += 1
        self.faces += sum(1 for record in records if record.get("box") is not None)
        self.bar.set_postfix(faces=self.faces, refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
