"""Option groups several commands share, each added by one function, and the functions that read them
back into the options of the library (scan, events, rendering, training frames)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any

from autotosis.cli.types import (
    audio_track,
    duration_ms,
    frame_rate,
    frame_size,
    positive_float,
    positive_int,
    probability,
    region,
)
from autotosis.core.errors import UsageError
from autotosis.detect.adapt import ADAPT_MIN_VIDEO_MS

# add(name, handler, help, description, parent=commands) -> the command's parser (see parser.build_parser)
AddCommand = Callable[..., argparse.ArgumentParser]


def add_output(p: argparse.ArgumentParser, help_text: str, required: bool = False) -> None:
    p.add_argument("-o", "--output", required=required, metavar="PATH", help=help_text)
    p.add_argument("--force", action="store_true", help="overwrite the output if it exists")


def add_frame_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training frames")
    g.add_argument(
        "--fps", type=positive_float, default=4.0, help="frames per second taken from each clip (default: 4)"
    )
    g.add_argument("--size", type=positive_int, default=128, help="frame size in pixels, square (default: 128)")
    g.add_argument(
        "--band",
        type=duration_ms,
        default=500,
        metavar="SECONDS",
        help="ignore frames this close to a span edge, since hand-marked edges are rough (default: 0.5)",
    )
    g.add_argument(
        "--crop-borders",
        action="store_true",
        help="crop letterbox/pillarbox borders (found with ffmpeg cropdetect) away from clips without a crop=, "
        "so the model cannot learn which sources have black bars; scanning with the model then crops each "
        "video's own bars the same way",
    )


def add_scan_options(p: argparse.ArgumentParser, *, new_videos: bool = True, labelled_clips: bool = False) -> None:
    """The scanning options; ``new_videos``: crop and mode choices for videos without labels;
    ``labelled_clips``: clips of a label file are scanned with their own crops (plus --crop-borders)."""
    g = p.add_argument_group("scanning")
    g.add_argument("--fps", type=positive_float, default=2.0, help="scores per second of video (default: 2)")
    g.add_argument("--batch-size", type=positive_int, default=16, help="frames per inference batch (default: 16)")
    g.add_argument("--no-cache", action="store_true", help="always decode again instead of re-using cached scores")
    g.add_argument(
        "--stall-timeout",
        type=positive_float,
        default=600.0,
        metavar="S",
        help="give up on a video when ffmpeg delivers no frame for S seconds: a hung disk or network share "
        "(default: 600)",
    )
    if labelled_clips:
        g.add_argument(
            "--crop-borders",
            action="store_true",
            help="labelled clips without a crop: crop letterbox borders away, as `train --crop-borders` "
            "(default: on when the model was trained with it)",
        )
    if not new_videos:
        return
    g.add_argument(
        "--crop",
        type=region,
        metavar="x0,y0,x1,y1",
        help="region to classify (default: the crop the model was trained on; a model trained with --crop-borders: "
        "the picture inside this video's letterbox bars)",
    )
    g.add_argument("--full-frame", action="store_true", help="classify the whole frame, ignoring the model's crop")
    g.add_argument(
        "--mode",
        choices=("auto", "dense", "coarse"),
        default="auto",
        help="dense: decode and score the whole video; coarse: score the keyframes first, then decode densely "
        "only at the edges of stretches of keyframes that might show an event (several times faster on long "
        "VODs; can miss an event shorter than the keyframe interval); auto: coarse for videos of 10 minutes or "
        "more (default)",
    )
    g.add_argument(
        "--coarse-threshold",
        type=probability,
        metavar="P",
        help="coarse mode: keyframes scoring at least P (the score the events read: picture and sound combined "
        "for a model trained with sound) are looked at closely (default: three quarters "
        "of the event threshold: --threshold where the command takes it, else the model's, raised with it "
        "where it is raised for the video)",
    )


def add_event_rule_options(g, what: str) -> None:
    """The event rules training calibrates (segments.CALIBRATED_FIELDS but the threshold): given, or the model's."""
    g.add_argument(
        "--smooth",
        type=duration_ms,
        metavar="S",
        help=f"average the scores over this window before finding {what} "
        "(default: the model's calibrated value, else 0)",
    )
    g.add_argument(
        "--min-length",
        type=duration_ms,
        metavar="S",
        help=f"drop {what} shorter than this (default: the model's calibrated value, else 1)",
    )
    g.add_argument(
        "--merge-gap",
        type=duration_ms,
        metavar="S",
        help=f"join {what} closer than this (default: the model's calibrated value, else 2)",
    )


def add_event_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("events (times in seconds or m:ss)")
    g.add_argument(
        "--class", dest="class_name", metavar="NAME", help="class to find events for (default: the task's class)"
    )
    g.add_argument(
        "--threshold",
        type=probability,
        help="start an event when the score reaches this (default: the model's, chosen by cross-validation when "
        f"it was trained, and raised for a video of {ADAPT_MIN_VIDEO_MS // 60_000} minutes or more that the model "
        "scores higher overall than its training clips, e.g. an unfamiliar room; 0.5 for older models)",
    )
    g.add_argument(
        "--release",
        type=probability,
        help="hysteresis: stay in an event while the score is above this (default: threshold)",
    )
    add_event_rule_options(g, "events")
    g.add_argument(
        "--pad-before", type=duration_ms, default=1000, metavar="S", help="lead-in before each event (default: 1)"
    )
    g.add_argument(
        "--pad-after", type=duration_ms, default=1000, metavar="S", help="tail after each event (default: 1)"
    )
    g.add_argument("--max-length", type=duration_ms, metavar="S", help="trim longer events around their peak")
    g.add_argument(
        "--top-k",
        type=positive_int,
        metavar="K",
        help="the K best moments whatever the threshold: events above it with the highest peaks, and when "
        "fewer than K pass it, the best remaining peaks too",
    )
    g.add_argument(
        "--top-percent",
        type=positive_float,
        metavar="P",
        help="instead of a threshold (not together with --threshold), keep the top P%% of 5-second bins "
        "(and their neighbours), like the original tool",
    )


def add_render_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rendering")
    g.add_argument("--size", type=frame_size, metavar="WxH", help="output size (default: the source's)")
    g.add_argument(
        "--out-fps", type=frame_rate, metavar="FPS", help="output frame rate (default: the source's, at most 60)"
    )
    g.add_argument("--title", metavar="TEXT", help="add a title card with this text")
    g.add_argument("--no-overlay", action="store_true", help="do not draw the confidence text")
    g.add_argument(
        "--chapters",
        action="store_true",
        help="make each event a chapter of the reel (players list them; titles like 'rage 0.87 @ 0:12:03') "
        "and write the same chapters to REEL.youtube.txt for a YouTube description",
    )
    add_audio_track_option(g, "the reel")


AUDIO_TRACK_HELP = (
    "{what}'s sound: 'mix' mixes every audio track of the source at its own level, with a limiter "
    "against clipping (OBS often records the microphone and the game as separate tracks); N takes "
    "only the Nth audio track, numbered from 1 in the file's order (default: mix)"
)


def add_audio_track_option(g, what: str) -> None:
    g.add_argument(
        "--audio-track", type=audio_track, default=None, metavar="N|mix", help=AUDIO_TRACK_HELP.format(what=what)
    )


def frame_options(args: argparse.Namespace):
    from autotosis.training.dataset import FrameOptions

    return FrameOptions(fps=args.fps, size=args.size, band_ms=args.band, crop_borders=args.crop_borders)


def scan_options(args: argparse.Namespace):
    from autotosis.detect.coarse import CoarseOptions
    from autotosis.detect.scan import ScanOptions

    # A command that finds events with a threshold given here has the coarse scan work towards that threshold
    # (its candidate level follows it), not the model's (calibrated, adapted to the video); ranked events
    # (--top-percent) keep the model's levels, not raised.
    given = getattr(args, "threshold", None)
    rough = CoarseOptions(
        threshold=getattr(args, "coarse_threshold", None),
        interior_threshold=given,
        adapt_levels=given is None and getattr(args, "top_percent", None) is None,
    )
    # eval's options have no crop or mode: its clips are scanned densely with their own crops.
    return ScanOptions(
        fps=args.fps,
        batch_size=args.batch_size,
        region=getattr(args, "crop", None),
        full_frame=getattr(args, "full_frame", False),
        use_cache=not args.no_cache,
        mode=getattr(args, "mode", "auto"),
        coarse=rough,
        stall_timeout_s=args.stall_timeout,
    )


# EventParams field <- the option's dest; a command without an option passes None for it (not given).
_EVENT_SETTINGS = {
    "threshold": "threshold",
    "release": "release",
    "smooth_ms": "smooth",
    "min_length_ms": "min_length",
    "merge_gap_ms": "merge_gap",
    "pad_before_ms": "pad_before",
    "pad_after_ms": "pad_after",
    "max_length_ms": "max_length",
    "top_k": "top_k",
    "top_percent": "top_percent",
}


def event_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The event settings given on the command line (None: not given), for ``pipeline.detect_events`` and
    ``pipeline.event_params``: they decide, with the model's calibrated rules, what applies."""
    given = {name: getattr(args, dest, None) for name, dest in _EVENT_SETTINGS.items()}
    if given["top_percent"] is not None and (given["threshold"] is not None or given["release"] is not None):
        raise UsageError(
            "--top-percent selects the best bins instead of thresholding: give it or --threshold/--release, not both",
            hint="--top-k K keeps the K best moments and honours the threshold first",
        )
    return given


def render_options(args: argparse.Namespace, **extra):
    from autotosis.outputs.render import RenderOptions

    width, height = args.size if args.size else (None, None)
    return RenderOptions(
        width=width,
        height=height,
        fps=args.out_fps,
        overlay=not args.no_overlay,
        title=args.title,
        chapters=getattr(args, "chapters", False),
        audio_track=args.audio_track,
        **extra,
    )
