"""``feredge infer``: images, a directory or a video → one JSON record per face (+ annotated copies)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from feredge.cli.common import ensure_default_bundle, progress

NAME = "infer"
HELP = "detect faces and classify their expressions in images, a directory or a video"
EXAMPLE = "feredge infer photos/ --bundle bundles/default --runtime openvino --json --annotate out/"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="*", type=Path,
                        help="image files, directories of images, or video files (default: the shipped face photo)")
    parser.add_argument("--bundle", type=Path,
                        help="bundle directory (default: the shipped model, exported on first use)")
    parser.add_argument("--runtime", default="auto", help="auto, openvino, onnxruntime or torch (default auto)")
    parser.add_argument("--detector", choices=("haar", "none"), help="override the bundle's detector; "
                        "'none' treats each image as one face crop")
    parser.add_argument("--annotate", type=Path, metavar="DIR", help="write annotated images/videos into DIR")
    parser.add_argument("--every", type=int, default=1, help="video: classify every N-th frame (default 1)")
    parser.add_argument("--threads", type=int, help="runtime threads (default: the runtime's choice)")
    parser.add_argument("--json", action="store_true", help="print one JSON record per face on stdout (JSON lines)")
    parser.add_argument("--output", type=Path, metavar="FILE", help="also write the JSON lines to FILE")


@dataclass
class Tally:
    images: int = 0
    frames: int = 0
    faces: int = 0
    failed: list[str] = field(default_factory=list)


def _expand(sources: list[Path], tally: Tally) -> list[Path]:
    from feredge.preprocess.image_io import is_image_path, is_video_path

    files: list[Path] = []
    for source in sources:
        if source.is_dir():
            found = sorted(p for p in source.iterdir() if p.is_file() and (is_image_path(p) or is_video_path(p)))
            skipped = sorted(p for p in source.iterdir() if p.is_file() and p not in found)
            for path in skipped:
                tally.failed.append(f"{path}: unsupported extension {path.suffix or '(none)'!r}; skipped")
            if not found and not skipped:
                tally.failed.append(f"{source}: directory has no files")
            files.extend(found)
        else:
            files.append(source)
    return files


def _frames(path: Path, every: int) -> Iterator[tuple[int, np.ndarray, float]]:
    from feredge.preprocess.image_io import is_video_path, iter_video, read_image

    if is_video_path(path):
        for index, frame in iter_video(path, every=every):
            yield index, frame, 1.0
    else:
        decoded = read_image(path)
        if decoded.note:
            print(f"note: {path}: {decoded.note}", file=sys.stderr)
        yield 0, decoded.image, decoded.scale


def annotate(image: np.ndarray, faces: list[Any], scale: float = 1.0) -> np.ndarray:
    import cv2

    out = image.copy()
    for face in faces:
        box = face.box.scaled(scale) if scale != 1.0 else face.box
        cv2.rectangle(out, (box.x, box.y), (box.x + box.w, box.y + box.h), (0, 200, 0), 2)
        text = f"{face.label} {face.probability:.0%}"
        y = max(box.y - 6, 14)
        cv2.putText(out, text, (box.x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
        cv2.putText(out, text, (box.x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 255, 0), 1, cv2.LINE_AA)
    return out


class _AnnotatedWriter:
    """Writes an annotated image, or the annotated frames of a video, into the output directory."""

    def __init__(self, directory: Path | None, source: Path) -> None:
        self.directory, self.source, self.video = directory, source, None

    def write(self, frame: np.ndarray, faces: list[Any], scale: float) -> None:
        import cv2

        from feredge.preprocess.image_io import is_video_path

        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        drawn = annotate(frame, faces, scale)
        if not is_video_path(self.source):
            cv2.imwrite(str(self.directory / f"{self.source.stem}.annotated.jpg"), drawn)
            return
        if self.video is None:
            h, w = drawn.shape[:2]
            path = self.directory / f"{self.source.stem}.annotated.mp4"
            self.video = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25.0, (w, h))
        self.video.write(drawn)

    def close(self) -> None:
        if self.video is not None:
            self.video.release()


def run(args: argparse.Namespace) -> int:
    from feredge.calibration.reference import demo_image_path
    from feredge.errors import FeredgeError
    from feredge.runtimes.pipeline import Pipeline

    if args.every < 1:
        raise FeredgeError(f"--every must be at least 1, got {args.every}")
    bundle = args.bundle or ensure_default_bundle(quiet=args.json)
    tally = Tally()
    files = _expand(args.sources or [demo_image_path()], tally)
    sink = open(args.output, "w", encoding="utf-8") if args.output else None  # noqa: SIM115
    try:
        with Pipeline.from_bundle(bundle, runtime=args.runtime, detector=args.detector,
                                  threads=args.threads) as pipeline:
            for path in progress(files, total=len(files), desc="images", enabled=len(files) > 1):
                _process(path, pipeline, args, tally, sink)
    finally:
        if sink:
            sink.close()
    for failure in tally.failed:
        print(f"feredge: error: {failure}", file=sys.stderr)
    summary = (f"{tally.images} file(s), {tally.frames} frame(s), {tally.faces} face(s); "
               f"{len(tally.failed)} failed")
    print(summary, file=sys.stderr)
    return 1 if tally.frames == 0 and tally.failed else 0


def _process(path: Path, pipeline: Any, args: argparse.Namespace, tally: Tally, sink: Any) -> None:
    from feredge.errors import FeredgeError

    writer = _AnnotatedWriter(args.annotate, path)
    frames_before = tally.frames
    try:
        for index, frame, scale in _frames(path, args.every):
            result = pipeline.run(frame, scale=scale)
            tally.frames += 1
            writer.write(frame, result.faces, scale)
            records = [{"source": str(path), "frame": index, **face.to_dict()} for face in result.faces]
            if not records:
                records = [{"source": str(path), "frame": index, "box": None, "label": None, "status": "no_face"}]
            tally.faces += len(result.faces)
            for record in records:
                _emit(record, args.json, sink)
        tally.images += 1
    except FeredgeError as exc:
        if tally.frames > frames_before:
            tally.images += 1
        tally.failed.append(str(exc))
    finally:
        writer.close()


def _emit(record: dict[str, Any], as_json: bool, sink: Any) -> None:
    line = json.dumps(record, sort_keys=True)
    if sink is not None:
        sink.write(line + "\n")
    if as_json:
        print(line)
    elif record.get("status") == "no_face":
        print(f"{record['source']}#{record['frame']}: no face")
    else:
        x, y, w, h = record["box"]
        print(f"{record['source']}#{record['frame']}: face at ({x},{y},{w}x{h}) → "
              f"{record['label']} ({record['probability']:.1%})")
