"""``feredge infer``: images, a directory, videos, a camera or URLs → one JSON record per face (+ annotated copies).

URLs stay strings (:mod:`feredge.cli.sources`): http(s) images are downloaded and decoded like files,
``rtsp://`` and http(s) videos go to OpenCV as the URL; a URL that fails makes the exit status 1.

Images go through :class:`~feredge.runtimes.pipeline.Pipeline` one by one. Videos and cameras go
through :class:`~feredge.video.processor.VideoProcessor`: faces get track ids, probabilities are
smoothed per track, the model re-runs for a track only when needed, decoding/detection/inference
overlap, and the run writes an annotated video, JSON lines with track ids and a per-track CSV.
Ctrl-C (or SIGTERM) during a video stops after the current frame and closes every output cleanly.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from feredge.cli.args import (
    float_in,
    nonnegative_int,
    output_dir,
    output_file,
    positive_float,
    positive_int,
    unit_interval,
)
from feredge.cli.common import progress
from feredge.cli.sources import (
    Source,
    read_source_image,
    source_arg,
    source_bytes,
    source_label,
    source_stem,
    split_sources,
)
from feredge.default_bundle import ensure_default_bundle
from feredge.fileio import LineSink, write_text_atomic
from feredge.progress import echo, note

NAME = "infer"
HELP = "detect faces and classify their expressions in images, a directory or a video"
EXAMPLE = "feredge infer photos/ --bundle bundles/default --runtime openvino --json --annotate out/"
VIDEO_EXAMPLE = ("feredge infer clip.mp4 --detector mtcnn --smoothing 0.5 --reinfer-every 10 --annotate out/ "
                 "--output faces.jsonl --tracks tracks.csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sources", nargs="*", type=source_arg,
                        help="image files, directories of images, video files, or URLs: http(s) images and videos, "
                             "rtsp:// and other streams (default: the shipped face photo)")
    parser.add_argument("--bundle", type=Path,
                        help="bundle directory (default: the shipped model's prebuilt bundle)")
    from feredge.backends import runtime, runtime_names
    from feredge.preprocess.detect import DETECTORS
    from feredge.video.schedule import DetectionSchedule

    names = runtime_names()
    runtimes = ("auto", *names, *(alias for name in names for alias in runtime(name).aliases))
    parser.add_argument("--runtime", default="auto", choices=runtimes, metavar="RUNTIME",
                        help=f"auto (default) or one of {', '.join(names)}")
    parser.add_argument("--server", metavar="HOST:PORT",
                        help="send the images to a Triton serving a feredge repository (feredge serve; its HTTP port) "
                             "instead of running a model here; the same records come back")
    parser.add_argument("--device", help="device for the runtime: cpu, gpu, npu or auto where it has them "
                                         "(default: the runtime's first, cpu except TensorRT)")
    parser.add_argument("--detector", choices=sorted(DETECTORS), help="override the bundle's detector; "
                        "'mtcnn' and 'blazeface*' also find landmarks; 'none' treats each image as one face crop")
    parser.add_argument("--align", choices=("none", "five_point"),
                        help="override the bundle's alignment (five_point needs landmarks: --detector mtcnn)")
    parser.add_argument("--annotate", type=output_dir, metavar="DIR", help="write annotated images/videos into DIR")
    parser.add_argument("--every", type=positive_int, default=1, help="video: classify every N-th frame (default 1)")
    parser.add_argument("--threads", type=positive_int, help="runtime threads (default: the runtime's choice)")
    parser.add_argument("--json", action="store_true", help="print one JSON record per face on stdout (JSON lines)")
    parser.add_argument("--output", type=output_file, metavar="FILE", help="also write the JSON lines to FILE")
    video = parser.add_argument_group("video and camera", f"example: {VIDEO_EXAMPLE}")
    video.add_argument("--camera", type=nonnegative_int, metavar="INDEX", help="read frames from camera INDEX (e.g. 0)")
    video.add_argument("--max-fps", type=positive_float, metavar="F", help="frame budget: process at most F frames per "
                       "second (of video time for files, wall time for cameras); the rest are skipped")
    video.add_argument("--max-frames", type=positive_int, metavar="N", help="stop after N processed frames")
    video.add_argument("--smoothing", type=unit_interval, default=0.5, metavar="ALPHA",
                       help="per-track EMA weight of the newest probabilities, in (0, 1]; 1 = none (default 0.5)")
    video.add_argument("--reinfer-every", type=positive_int, default=10, metavar="K",
                       help="re-run the model for a track at least every K processed frames (default 10)")
    video.add_argument("--box-change", type=float_in(0.0, 1.0, low_open=False), default=0.3, metavar="T",
                       help="… or when its box changed: IoU with the last classified box below 1-T (default 0.3)")
    video.add_argument("--no-skip", action="store_true", help="run the model on every face of every frame")
    video.add_argument("--iou", type=unit_interval, default=0.3, help="tracker: minimum IoU to continue a track (0.3)")
    video.add_argument("--max-missed", type=nonnegative_int, default=10,
                       help="tracker: frames a track survives undetected (default 10)")
    video.add_argument("--detect-gap", type=positive_int, default=DetectionSchedule.k_max, metavar="K",
                       help="adaptive detection: run the detector at most every K frames while faces are tracked "
                            "steadily (k doubles up to K, back to 1 on a new, lost or fast face); 1 = every frame "
                            f"(default {DetectionSchedule.k_max})")
    video.add_argument("--detect-motion", type=positive_float, default=0.2, metavar="M",
                       help="… and detect on the next frame when a face moves more than M × its box size per frame "
                            "(default 0.2)")
    video.add_argument("--detect-width", type=positive_int, metavar="W",
                       help="downscale frames wider than W for detection")
    video.add_argument("--queue", type=positive_int, default=8, help="bounded frame queue length (default 8)")
    video.add_argument("--realtime", action="store_true",
                       help="drop frames when processing falls behind (always on for cameras)")
    video.add_argument("--jobs", type=positive_int, default=2, help="async inference requests in flight (default 2)")
    video.add_argument("--tracks", type=Path, metavar="CSV|DIR",
                       help="per-track summary CSV (a directory with several videos; default: next to --annotate)")
    video.add_argument("--stats", type=output_file, metavar="FILE",
                       help="write run statistics (fps, inferences, dropped and corrupt frames, memory) as JSON")
    video.add_argument("--memory-every", type=nonnegative_int, default=0, metavar="N",
                       help="sample resident memory every N frames into the statistics (default off)")


@dataclass
class Tally:
    images: int = 0
    frames: int = 0
    faces: int = 0
    failed: list[str] = field(default_factory=list)
    url_failures: int = 0  # URLs that could not be fetched, opened or read: the exit status says so
    skipped: int = 0  # files in a directory that are neither images nor videos (notes, sidecars)


def _expand(sources: list[Path | str], tally: Tally) -> list[Source]:
    """Files to process; missing paths and unsupported files become failures before any model work."""
    from feredge.preprocess.image_io import is_image_path, is_video_path

    files: list[Source] = []
    for source in sources:
        if isinstance(source, str):  # a URL (feredge.cli.sources): checked when probed and fetched
            files.append(source)
        elif source.is_dir():
            try:
                entries = sorted(p for p in source.iterdir() if p.is_file())
            except OSError as exc:
                tally.failed.append(f"{source}: cannot list the directory ({exc.strerror})")
                continue
            found = [p for p in entries if is_image_path(p) or is_video_path(p)]
            tally.skipped += len(entries) - len(found)  # a folder's readme.txt is not a failed image
            if not found:
                others = f" ({len(entries)} other file(s) skipped)" if entries else ""
                tally.failed.append(f"{source}: directory has no images or videos{others}")
            files.extend(found)
        elif not source.exists():
            tally.failed.append(f"{source}: no such file or directory")
        else:
            files.append(source)
    return files


def run(args: argparse.Namespace) -> int:
    from feredge.calibration.reference import demo_image_path
    from feredge.errors import FeredgeError
    from feredge.runtimes.pipeline import Pipeline

    tally = Tally()
    if args.camera is not None and args.sources:
        raise FeredgeError("give either --camera or source files, not both")
    files: list[Source] = [args.camera] if args.camera is not None else list(
        _expand(args.sources or [demo_image_path()], tally))
    before = len(tally.failed)
    files, videos = split_sources(files, tally.failed)  # URLs: image or video, asked before any model work
    tally.url_failures += len(tally.failed) - before
    if not files:  # nothing to run on: say so before loading (or exporting) a model
        for failure in tally.failed:
            print(f"feredge: error: {failure}", file=sys.stderr)
        return 1
    if args.server:
        return _run_remote(files, videos, args, tally)
    bundle = args.bundle or ensure_default_bundle(quiet=args.json, runtime=args.runtime)
    sink: LineSink | None = None
    all_stats: list[dict[str, Any]] = []
    interrupted = False
    try:
        with Pipeline.from_bundle(bundle, runtime=args.runtime, detector=args.detector,
                                  threads=args.threads, device=args.device) as pipeline:
            sink = LineSink(args.output) if args.output else None  # opened once the model loaded
            if args.align:
                pipeline.spec = pipeline.spec.replace(alignment=args.align)
            for path in progress(files, total=len(files), desc="images", enabled=len(files) > 1):
                if path in videos:
                    stats = _process_video(path, pipeline, args, tally, sink, several=len(videos) > 1)
                    if stats is not None:
                        all_stats.append(stats.to_dict())
                        interrupted = stats.interrupted
                        if interrupted:
                            break
                else:
                    assert not isinstance(path, int)
                    _process(path, pipeline, args, tally, sink)
    finally:
        if sink:
            sink.close()
        if args.stats and all_stats:
            write_text_atomic(args.stats, json.dumps(all_stats[0] if len(all_stats) == 1 else all_stats,
                                                     indent=2, sort_keys=True, default=str) + "\n")
    for failure in tally.failed:
        print(f"feredge: error: {failure}", file=sys.stderr)
    skipped = f", {tally.skipped} skipped (not images or videos)" if tally.skipped else ""
    note(f"{tally.images} file(s), {tally.frames} frame(s), {tally.faces} face(s); {len(tally.failed)} failed{skipped}")
    if interrupted:
        return 130
    # a URL that failed is worth retrying, so it fails the run even when other sources were processed
    return 1 if (tally.frames == 0 and tally.failed) or tally.url_failures else 0


def _run_remote(files: list[Source], videos: list[Source], args: argparse.Namespace, tally: Tally) -> int:
    """``--server``: each image's encoded bytes to the server's ``pipeline`` model (detector and
    classifier of the served bundle), its records printed as local ones are. Videos and cameras
    run where the frames are (``feredge infer`` without ``--server``): a stream over HTTP would
    re-encode every frame."""
    from feredge.errors import FeredgeError
    from feredge.serve.client import TritonClient

    if videos:
        raise FeredgeError("--server takes images; run videos and cameras locally (without --server)")
    sink = LineSink(args.output) if args.output else None
    try:
        with TritonClient(args.server) as client:
            try:
                live = client.raw.is_server_ready()
            except Exception:  # connection refused, DNS, TLS...: the client library raises its own types
                live = False
            if not live:
                raise FeredgeError(f"no Triton ready at {args.server} (start one with `feredge serve BUNDLE`)")
            for path in progress(files, total=len(files), desc="images", enabled=len(files) > 1):
                assert not isinstance(path, int)
                try:
                    faces = client.faces(source_bytes(path))
                except (FeredgeError, OSError) as exc:
                    tally.failed.append(f"{source_label(path)}: {exc}")
                    tally.url_failures += isinstance(path, str)
                    continue
                records = [{"source": source_label(path), "frame": 0, **face} for face in faces] or [
                    {"source": source_label(path), "frame": 0, "box": None, "label": None, "status": "no_face"}]
                for record in records:
                    _emit(record, args.json, sink)
                tally.images += 1
                tally.frames += 1
                tally.faces += len(faces)
    finally:
        if sink:
            sink.close()
    for failure in tally.failed:
        print(f"feredge: error: {failure}", file=sys.stderr)
    note(f"{tally.images} file(s), {tally.faces} face(s) from {args.server}; {len(tally.failed)} failed")
    return 1 if (tally.images == 0 and tally.failed) or tally.url_failures else 0


def _video_options(args: argparse.Namespace) -> Any:
    from feredge.video.processor import VideoOptions
    from feredge.video.schedule import DetectionSchedule

    return VideoOptions(
        detection=DetectionSchedule(k_max=args.detect_gap, motion=args.detect_motion),
        every=args.every, max_fps=args.max_fps, smoothing=args.smoothing,
        reinfer_every=1 if args.no_skip else args.reinfer_every, box_change=args.box_change, iou_match=args.iou,
        max_missed=args.max_missed, queue_size=args.queue, realtime=True if args.realtime else None,
        jobs=args.jobs, detect_width=args.detect_width, memory_every=args.memory_every, max_frames=args.max_frames,
    )


def _output_path(option: Path | None, annotate: Path | None, stem: str, suffix: str, several: bool) -> Path | None:
    """``option`` as a file for one video, as a directory for several; else next to the annotated video."""
    if option is not None:
        return option / f"{stem}{suffix}" if several or option.is_dir() else option
    return annotate / f"{stem}{suffix}" if annotate is not None else None


def _process_video(source: Source, pipeline: Any, args: argparse.Namespace, tally: Tally, sink: Any,
                   several: bool) -> Any:
    from feredge.errors import FeredgeError
    from feredge.video.console import VideoConsole, expected_frames
    from feredge.video.outputs import AnnotatedVideo, write_track_csv
    from feredge.video.processor import VideoProcessor
    from feredge.video.stream import CaptureSource

    name = source_stem(source)
    try:
        capture = CaptureSource(source)  # a URL goes to OpenCV as the URL string
    except FeredgeError as exc:
        tally.failed.append(str(exc))
        tally.url_failures += isinstance(source, str)
        return None
    processor = VideoProcessor(pipeline, _video_options(args))
    video = AnnotatedVideo(args.annotate / f"{name}.annotated.mp4", capture.fps) if args.annotate else None
    label = capture.name
    console = VideoConsole(label, expected_frames(capture.frame_count, args.every, args.max_frames),
                           json_stdout=args.json, sink=sink)  # a bar, not a line per face per frame

    def on_frame(frame: Any, faces: list[Any]) -> None:
        if video is not None:
            video.write(frame.image, faces)
        base = {"source": label, "frame": frame.index, "timestamp": round(frame.timestamp, 3)}
        console.frame([{**base, **face.to_dict()} for face in faces] or [
            {**base, "box": None, "label": None, "status": "no_face"}])

    restore = _stop_on_signals(processor.stop)
    stats = None
    try:
        stats = processor.run(capture, on_frame)
        tally.images += 1
    except FeredgeError as exc:
        if processor.stats.frames:
            tally.images += 1
        tally.failed.append(str(exc))
        tally.url_failures += isinstance(source, str)
    finally:
        restore()
        console.close()
        if video is not None:
            video.close()
        tracks_path = _output_path(args.tracks, args.annotate, name, ".tracks.csv", several)
        if tracks_path is not None:
            write_track_csv(tracks_path, processor.track_rows(), capture.fps)  # frames are source indices
        tally.frames += processor.stats.frames
        tally.faces += processor.stats.faces
    if stats is not None:
        note(stats.line())
    return stats


def _stop_on_signals(stop: Any) -> Any:
    """SIGINT/SIGTERM → ``stop()`` (finish the frame, close the files); a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, _frame: Any) -> None:
        print("feredge: stopping after the current frame (Ctrl-C again to abort)", file=sys.stderr)
        stop()
        signal.signal(signal.SIGINT, signal.default_int_handler)

    for sig in previous:
        signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def _process(path: Path | str, pipeline: Any, args: argparse.Namespace, tally: Tally, sink: Any) -> None:
    """One image file or URL (videos go through :func:`_process_video`): its faces, records, annotated copy."""
    from feredge.errors import FeredgeError, OutputError
    from feredge.preprocess.image_io import write_image
    from feredge.video.outputs import draw_detections

    frames_before = tally.frames
    label = source_label(path)
    try:
        decoded = read_source_image(path)
        if decoded.note:
            note(f"note: {label}: {decoded.note}")
        result = pipeline.run(decoded.image, scale=decoded.scale)
        tally.frames += 1
        if args.annotate is not None:  # encoded in memory, written by temp-and-rename (write_image)
            write_image(args.annotate / f"{source_stem(path)}.annotated.jpg",
                        draw_detections(decoded.image, result.faces, decoded.scale))
        records = [{"source": label, "frame": 0, **face.to_dict()} for face in result.faces]
        if not records:
            records = [{"source": label, "frame": 0, "box": None, "label": None, "status": "no_face"}]
        tally.faces += len(result.faces)
        for record in records:
            _emit(record, args.json, sink)
        tally.images += 1
    except OutputError:
        raise  # an output that cannot be written ends the run (one line from the CLI boundary)
    except FeredgeError as exc:
        if tally.frames > frames_before:  # classified, then its annotated copy could not be encoded
            tally.images += 1
        tally.failed.append(str(exc))
        tally.url_failures += isinstance(path, str)


def _emit(record: dict[str, Any], as_json: bool, sink: Any) -> None:
    line = json.dumps(record, sort_keys=True)
    if sink is not None:
        sink.write(line)
    if as_json:
        echo(line)
    elif record.get("status") == "no_face":
        echo(f"{record['source']}#{record['frame']}: no face")
    else:
        x, y, w, h = record["box"]
        track = f" track {record['track_id']}" if "track_id" in record else ""
        echo(f"{record['source']}#{record['frame']}:{track} face at ({x},{y},{w}x{h}) → "
             f"{record['label']} ({record['probability']:.1%})")
