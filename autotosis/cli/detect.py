"""Commands that find highlights: scan (video -> scores) and events (scores -> events), and the
event helpers the commands that go on from there share."""

from __future__ import annotations

import argparse
import difflib
from pathlib import Path

from rich.markup import escape

from autotosis.cli.context import Context, counted
from autotosis.cli.options import (
    AddCommand,
    add_event_options,
    add_output,
    add_scan_options,
    event_settings,
    scan_options,
)
from autotosis.core.errors import ExitStatus, UsageError
from autotosis.core.timefmt import clock_tenths


def model_task(path: str) -> str:
    """The task of the model file at ``path`` (.pt or .onnx), read without loading the network."""
    from autotosis.model.predictor import read_model_info

    return read_model_info(Path(path)).task


def cmd_scan(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.core.fsutil import check_writable
    from autotosis.detect.scan import scan_video
    from autotosis.detect.scores import write_scores

    ctx.apply_config(args, model_task(args.model))
    out = Path(args.output) if args.output else Path.cwd() / f"{Path(args.video).stem}.scores.json"
    check_writable(out, args.force)
    with ctx.progress() as progress:
        scores = scan_video(
            Path(args.video), Path(args.model), scan_options(args), progress=progress, backend=args.backend
        )
    write_scores(scores, out, force=args.force)
    rough = scores.scan.coarse
    how = (
        f", coarse: {rough.keyframes} keyframes, {rough.refined_fraction * 100:.0f}% of the video decoded densely"
        if rough
        else ""
    )
    sound = scores.scan.audio
    if sound.get("used"):
        how += "; picture and sound combined (the model's audio combiner)"
    elif sound:
        how += f"; {sound.get('why', 'sound not used')}"
    ctx.say(
        f"scored {len(scores.times_ms)} frames of {args.video} ({scores.duration_ms / 1000:.1f} s{how}); wrote {out}"
    )
    return ExitStatus.OK


def event_class(ctx: Context, args: argparse.Namespace, scores) -> str:
    """The class to find events for: --class (checked, with a suggestion), else the first non-background
    class, named when the model has several."""
    wanted = getattr(args, "class_name", None)
    found = [c for c in scores.classes if c != "background"]
    if wanted is not None:
        if wanted not in scores.classes:
            close = difflib.get_close_matches(wanted, scores.classes, n=1)
            raise UsageError(
                f"--class {wanted!r} is not a class of this model ({', '.join(found)})",
                hint=f"did you mean {close[0]!r}?" if close else None,
            )
        return wanted
    label = scores.default_class()
    if len(found) > 1:
        ctx.say(f"events for class {label!r}, the first of {', '.join(found)} (--class NAME picks another)")
    return label


def nothing_found(scores, label: str, params) -> str:
    from autotosis.detect.segments import nothing_found_hint

    return nothing_found_hint(scores.times_ms, scores.column(label), params, scores.step_ms or None)


def say_adaptation(ctx: Context, found, video_name: str) -> None:
    """Say where the model's calibrated threshold was raised for a video (``detect.adapt``), and why."""
    if found.adaptation is not None:
        ctx.say(f"{video_name}: {found.adaptation.describe()}")


def say_coarse_limit(ctx: Context, scores, found) -> None:
    """Say where a coarse scan looked closely only at keyframes scoring above the threshold now in use (a lower
    ``--threshold`` than the scan knew): an event scoring below its candidate level at its keyframes can be missed."""
    rough = scores.scan.coarse
    if rough is None or found.params.top_percent is not None or found.params.threshold >= rough.threshold:
        return
    ctx.say(
        f"note: {scores.video.name} was scanned coarse-to-fine, looking closely only where keyframes scored "
        f"{rough.threshold:.2f} or more; with threshold {found.params.threshold:.2f} an event that scores less at "
        "its keyframes can be missed: `scan --mode dense` (or a lower --coarse-threshold) sees everything"
    )


def print_events(ctx: Context, events, title: str) -> None:
    from rich.table import Table

    if ctx.quiet:
        return
    table = Table(title=title)
    for column in ("#", "start", "end", "length", "class", "peak", "mean"):
        table.add_column(column, justify="right")
    for i, e in enumerate(events, 1):
        table.add_row(
            str(i),
            clock_tenths(e.start_ms),
            clock_tenths(e.end_ms),
            f"{e.duration_ms / 1000:.1f}s",
            escape(e.label),
            f"{e.peak:.2f}",
            f"{e.mean:.2f}",
        )
    ctx.console.print(table)


def cmd_events(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.core.fsutil import check_writable
    from autotosis.detect.pipeline import detect_events
    from autotosis.detect.scores import read_scores
    from autotosis.detect.segments import write_events

    scores = read_scores(Path(args.scores))
    ctx.apply_config(args, scores.task or None)
    stem = Path(args.scores).name.removesuffix(".json").removesuffix(".csv").removesuffix(".scores")
    out = Path(args.output) if args.output else Path.cwd() / f"{stem}.events.json"
    check_writable(out, args.force)
    found = detect_events(scores, event_class(ctx, args, scores), **event_settings(args))
    write_events(found, out, force=args.force)
    say_adaptation(ctx, found, scores.video.name)
    say_coarse_limit(ctx, scores, found)
    print_events(ctx, found.events, f"{counted(len(found.events), 'event')} in {scores.video.name}")
    if not found.events:
        ctx.say(f"no events: {nothing_found(scores, found.label, found.params)}")
    ctx.say(f"wrote {out}")
    return ExitStatus.OK


# --------------------------------------------------------------------------- parsers


def _scan_parser(commands, add: AddCommand) -> None:
    p = add(
        "scan",
        cmd_scan,
        "score a video with a trained model",
        "Stream a video through ffmpeg (crop + scale in the decoder, no image files) and score it in batches.\n"
        "Writes times (from presentation timestamps) and a probability per class. Results are cached.",
    )
    p.add_argument("video", metavar="VIDEO")
    p.add_argument(
        "--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train` (or an .onnx export)"
    )
    p.add_argument(
        "--backend",
        choices=("torch", "onnx"),
        help="run the model with PyTorch (torch) or onnxruntime (onnx: a file from `autotosis export-onnx`); "
        "default: onnxruntime when installed, for a .pt checkpoint through its export made once and kept in "
        "the cache (faster, half the memory), else PyTorch",
    )
    add_output(p, "scores file, .json or .csv (default: ./VIDEO-NAME.scores.json)")
    add_scan_options(p)


def _events_parser(commands, add: AddCommand) -> None:
    p = add(
        "events",
        cmd_events,
        "turn scores into events",
        "Find events in a scores file: threshold with hysteresis, minimum length, merge gap, padding,\n"
        "maximum length, or top-K / top-percent selection. Writes JSON or CSV.",
    )
    p.add_argument("scores", metavar="SCORES", help="scores file from `autotosis scan`")
    add_output(p, "events file, .json or .csv (default: ./NAME.events.json)")
    add_event_options(p)


PARSERS = {"scan": _scan_parser, "events": _events_parser}


def register(commands, add: AddCommand, name: str) -> None:
    """Add the parser of command ``name`` (a key of PARSERS) to ``commands``."""
    PARSERS[name](commands, add)
