"""Command-line interface: the only module that prints errors and chooses exit codes."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from autotosis import __version__
from autotosis.config import Config, load_config
from autotosis.errors import AutotosisError, ExitStatus, LabelErrors, UsageError
from autotosis.progress import JsonLinesProgress, ProgressCallback, RichProgress, no_progress

EXIT_CODES_HELP = """exit status:
  0 ok   1 internal error   2 bad usage/config   3 label file error   4 video/ffmpeg error
  5 model/checkpoint error   6 output exists (use --force)   7 unusable data   130 interrupted"""


# --------------------------------------------------------------------------- value parsers


def duration_ms(text: str) -> int:
    """A duration or time on the command line: seconds ("2.5") or [h:]mm:ss[.fff]."""
    from autotosis.labels import parse_time

    try:
        return parse_time(str(text).strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time ({exc}); use seconds like 2.5 or m:ss like 1:05") from None


def probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number between 0 and 1") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{value} is outside 0..1")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be greater than 0")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def region(text: str) -> tuple[float, float, float, float]:
    from autotosis.labels import Crop

    try:
        crop = Crop.parse(str(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc} (expected x0,y0,x1,y1 as fractions of the frame)") from None
    return (crop.x0, crop.y0, crop.x1, crop.y1)


def frame_size(text: str) -> tuple[int, int]:
    parts = str(text).lower().split("x")
    try:
        width, height = int(parts[0]), int(parts[1])
        if len(parts) != 2 or width < 16 or height < 16 or width > 8192 or height > 8192:
            raise ValueError
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 1280x720") from None
    return width, height


def frame_rate(text: str) -> Fraction:
    try:
        value = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame rate like 30 or 30000/1001") from None
    if not 1 <= value <= 240:
        raise argparse.ArgumentTypeError(f"{text} fps is outside 1..240")
    return value


# --------------------------------------------------------------------------- context


@dataclass
class Context:
    """What every command gets: console, progress, config and the explicitly given options."""

    debug: bool
    progress_mode: str
    config: Config
    explicit: set[str]
    actions: dict[str, argparse.Action]
    quiet: bool = False
    _reporters: list = field(default_factory=list)

    @property
    def console(self):
        from rich.console import Console

        return Console(highlight=False, soft_wrap=True)

    def say(self, text: str) -> None:
        if not self.quiet:
            self.console.print(text)

    @contextlib.contextmanager
    def progress(self) -> Iterator[ProgressCallback]:
        mode = self.progress_mode
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "none"
        if mode == "none":
            yield no_progress
            return
        reporter = RichProgress() if mode == "bar" else JsonLinesProgress()
        try:
            yield reporter
        finally:
            reporter.close()

    def apply_config(self, args: argparse.Namespace, task: str | None) -> None:
        """Fill options the user did not give from autotosis.toml ([defaults], then [task.NAME])."""
        for key, value in self.config.values_for(task).items():
            action = self.actions.get(key)
            if action is None or key in self.explicit:
                continue
            setattr(args, key, _config_value(self.config, key, value, action))


def _config_value(config: Config, key: str, value: object, action: argparse.Action) -> object:
    where = f"{config.path}: {key}"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise UsageError(f"{where}: expected true or false, got {value!r}")
        return value if isinstance(action, argparse._StoreTrueAction) else not value
    if action.type is None:
        return value
    try:
        return action.type(str(value))
    except argparse.ArgumentTypeError as exc:
        raise UsageError(f"{where}: {exc}") from None


# --------------------------------------------------------------------------- commands


def cmd_labels_check(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.dataset import validate_against_media
    from autotosis.labels import parse_labels

    problems = []
    for path in args.files:
        try:
            labels = parse_labels(path, check_files=True)
            if not args.no_probe:
                validate_against_media(labels)
            spans = sum(len(e.spans) for e in labels.entries)
            ctx.say(f"{path}: ok — task {labels.task!r}, {len(labels.entries)} clips, {spans} spans")
        except LabelErrors as exc:
            problems += exc.errors
    if problems:
        raise LabelErrors(problems)
    return ExitStatus.OK


def cmd_labels_import(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis import labels as lab
    from autotosis.fsutil import check_writable

    source = Path(args.source)
    dest = Path(args.output) if args.output else Path.cwd() / (source.stem + ".txt")
    if args.output:
        check_writable(dest, args.force)
    if not source.exists():
        raise UsageError(f"{source}: no such file")
    if args.format == "audacity" or (args.format == "auto" and source.suffix.lower() != ".csv"):
        if not args.clip:
            raise UsageError("an Audacity label track needs --clip VIDEO (the clip its times refer to)")
        crop = lab.Crop(*args.crop) if args.crop else None
        result = lab.import_audacity(source, Path(args.clip), dest, crop=crop)
    else:
        result = lab.import_data_csv(source, dest)
    if args.output:
        lab.write_labels(result, dest, force=args.force)
        ctx.say(f"wrote {dest} ({len(result.entries)} clips)")
    else:
        sys.stdout.write(lab.format_labels(result))
    return ExitStatus.OK


def _frame_options(args: argparse.Namespace):
    from autotosis.dataset import FrameOptions

    return FrameOptions(fps=args.fps, size=args.size, band_ms=args.band)


def _load_labels(ctx: Context, args: argparse.Namespace, path: str):
    from autotosis.labels import parse_labels

    labels = parse_labels(path, check_files=True)
    ctx.apply_config(args, labels.task)
    return labels


def cmd_frames(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.dataset import extract_frames

    labels = _load_labels(ctx, args, args.labels)
    with ctx.progress() as progress:
        frameset = extract_frames(labels, Path(args.out) if args.out else None, _frame_options(args), progress=progress)
    _print_frameset(ctx, frameset)
    return ExitStatus.OK


def _print_frameset(ctx: Context, frameset) -> None:
    from rich.table import Table

    table = Table(title=f"training frames for task {frameset.task!r}")
    table.add_column("clip")
    for name in (*frameset.classes, "ignored"):
        table.add_column(name, justify="right")
    for clip in frameset.clips:
        counts = clip.counts
        table.add_row(clip.clip.name, *(str(counts.get(i, 0)) for i in (*range(len(frameset.classes)), -1)))
    if not ctx.quiet:
        ctx.console.print(table)
        if frameset.clips:
            ctx.say(f"frames stored in {frameset.clips[0].frames_path.parent}")


def cmd_train(ctx: Context, args: argparse.Namespace) -> int:
    from rich.table import Table

    from autotosis.dataset import extract_frames
    from autotosis.fsutil import check_writable
    from autotosis.train import TrainConfig, train

    labels = _load_labels(ctx, args, args.labels)
    out = Path(args.output)
    if not args.resume:
        check_writable(out, args.force)
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weights=args.weights, freeze=args.freeze,
        balance=not args.no_balance, augment=not args.no_augment, val_fraction=args.val_fraction,
        select=args.select, seed=args.seed, max_frames_per_epoch=args.max_frames, threads=args.threads,
    )
    with ctx.progress() as progress:
        frameset = extract_frames(labels, Path(args.frames_dir) if args.frames_dir else None, _frame_options(args), progress=progress)
        counts = frameset.counts()
        ctx.say("frames: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        ctx.say("epoch  train-loss  val-loss  precision  recall     F1  img/s")

        def on_epoch(m) -> None:
            mark = "  *best" if m.best else ""
            ctx.say(f"{m.epoch:>5}  {m.train_loss:10.4f}  {m.val_loss:8.4f}  {m.precision:9.3f}  {m.recall:6.3f}  {m.f1:5.3f}  {m.images_per_s:5.0f}{mark}")

        def on_step(done: int, total: int) -> None:
            progress("train (this epoch)", done, total)

        result = train(frameset, config, out, resume=Path(args.resume) if args.resume else None, force=args.force,
                       on_epoch=on_epoch, on_step=on_step)
    for warning in result.warnings:
        ctx.say(f"[yellow]warning:[/] {warning}")
    best = next(m for m in result.history if m.epoch == result.best_epoch) if result.history else None
    if best is not None and not ctx.quiet:
        table = Table(title="best checkpoint")
        for column in ("epoch", "precision", "recall", "F1", "val clips"):
            table.add_column(column)
        table.add_row(str(best.epoch), f"{best.precision:.3f}", f"{best.recall:.3f}", f"{best.f1:.3f}", str(len(result.val_clips)))
        ctx.console.print(table)
    ctx.say(f"wrote {result.checkpoint}")
    return ExitStatus.OK


def _scan_options(args: argparse.Namespace):
    from autotosis.scan import ScanOptions

    return ScanOptions(fps=args.fps, batch_size=args.batch_size, region=args.crop, full_frame=args.full_frame,
                       use_cache=not args.no_cache)


def _model_task(path: str) -> str:
    from autotosis.model import load_checkpoint

    return load_checkpoint(Path(path))[1].task


def cmd_scan(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.fsutil import check_writable
    from autotosis.scan import scan_video
    from autotosis.scores import write_scores

    ctx.apply_config(args, _model_task(args.model))
    out = Path(args.output) if args.output else Path.cwd() / f"{Path(args.video).stem}.scores.json"
    check_writable(out, args.force)
    with ctx.progress() as progress:
        scores = scan_video(Path(args.video), Path(args.model), _scan_options(args), progress=progress)
    write_scores(scores, out, force=args.force)
    ctx.say(f"scored {len(scores.times_ms)} frames of {args.video} ({scores.duration_ms / 1000:.1f} s); wrote {out}")
    return ExitStatus.OK


def _event_params(args: argparse.Namespace, scores):
    from autotosis.segments import EventParams

    threshold = args.threshold if args.threshold is not None else float(scores.extra.get("threshold", 0.5) or 0.5)
    return EventParams(
        threshold=threshold, release=args.release, min_length_ms=args.min_length, merge_gap_ms=args.merge_gap,
        pad_before_ms=args.pad_before, pad_after_ms=args.pad_after, max_length_ms=args.max_length,
        top_k=args.top_k, top_percent=args.top_percent,
    )


def _print_events(ctx: Context, events, title: str) -> None:
    from rich.table import Table

    if ctx.quiet:
        return
    table = Table(title=title)
    for column in ("#", "start", "end", "length", "class", "peak", "mean"):
        table.add_column(column, justify="right")
    for i, e in enumerate(events, 1):
        table.add_row(str(i), _clock(e.start_ms), _clock(e.end_ms), f"{e.duration_ms / 1000:.1f}s", e.label, f"{e.peak:.2f}", f"{e.mean:.2f}")
    ctx.console.print(table)


def _clock(ms: int) -> str:
    seconds = ms / 1000
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{int(hours)}:{int(minutes):02d}:{secs:04.1f}" if hours else f"{int(minutes)}:{secs:04.1f}"


def cmd_events(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.fsutil import check_writable
    from autotosis.scores import read_scores
    from autotosis.segments import EventList, events_from_scores, write_events

    scores = read_scores(Path(args.scores))
    ctx.apply_config(args, scores.task or None)
    stem = Path(args.scores).name.removesuffix(".json").removesuffix(".csv").removesuffix(".scores")
    out = Path(args.output) if args.output else Path.cwd() / f"{stem}.events.json"
    check_writable(out, args.force)
    label = args.class_name or scores.default_class()
    params = _event_params(args, scores)
    events = events_from_scores(scores, label, params)
    write_events(EventList(scores.video, scores.duration_ms, label, params, tuple(events)), out, force=args.force)
    _print_events(ctx, events, f"{len(events)} events in {scores.video.name}")
    ctx.say(f"wrote {out}")
    return ExitStatus.OK


def _render_options(args: argparse.Namespace, **extra):
    from autotosis.render import RenderOptions

    width, height = args.size if args.size else (None, None)
    return RenderOptions(width=width, height=height, fps=args.out_fps, overlay=not args.no_overlay, title=args.title, **extra)


def cmd_render(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.render import ReelPart, render_reel
    from autotosis.scores import read_scores
    from autotosis.segments import read_events

    events = read_events(Path(args.events))
    scores = read_scores(Path(args.scores)) if args.scores else None
    ctx.apply_config(args, scores.task if scores else None)
    with ctx.progress() as progress:
        result = render_reel([ReelPart(Path(args.video), tuple(events.events), scores)], Path(args.output),
                             _render_options(args), force=args.force, progress=progress)
    ctx.say(f"wrote {result.path} ({len(events.events)} events, {result.duration_ms / 1000:.1f} s)")
    return ExitStatus.OK


def cmd_reel(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.fsutil import check_writable
    from autotosis.render import ReelPart, render_reel
    from autotosis.scan import scan_video
    from autotosis.segments import events_from_scores

    ctx.apply_config(args, _model_task(args.model))
    out = Path(args.output)
    check_writable(out, args.force)
    parts = []
    with ctx.progress() as progress:
        for video in args.videos:
            scores = scan_video(Path(video), Path(args.model), _scan_options(args), progress=progress)
            label = args.class_name or scores.default_class()
            events = events_from_scores(scores, label, _event_params(args, scores))
            _print_events(ctx, events, f"{len(events)} events in {Path(video).name}")
            parts.append(ReelPart(Path(video), tuple(events), scores))
        options = _render_options(args, source_cards=len(args.videos) > 1)
        result = render_reel(parts, out, options, force=args.force, progress=progress)
    ctx.say(f"wrote {result.path} ({sum(len(p.events) for p in parts)} events, {result.duration_ms / 1000:.1f} s)")
    return ExitStatus.OK


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.demo import DemoOptions, run_demo

    options = DemoOptions(out=Path(args.out), seed=args.seed, epochs=args.epochs, force=args.force)
    with ctx.progress() as progress:
        run_demo(options, say=ctx.say, progress=progress, console=None if ctx.quiet else ctx.console)
    return ExitStatus.OK


# --------------------------------------------------------------------------- parser


def _add_output(p: argparse.ArgumentParser, help_text: str, required: bool = False) -> None:
    p.add_argument("-o", "--output", required=required, metavar="PATH", help=help_text)
    p.add_argument("--force", action="store_true", help="overwrite the output if it exists")


def _add_frame_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("training frames")
    g.add_argument("--fps", type=positive_float, default=4.0, help="frames per second taken from each clip (default: 4)")
    g.add_argument("--size", type=positive_int, default=128, help="frame size in pixels, square (default: 128)")
    g.add_argument("--band", type=duration_ms, default=500, metavar="SECONDS",
                   help="ignore frames this close to a span edge, since hand-marked edges are rough (default: 0.5)")


def _add_scan_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("scanning")
    g.add_argument("--fps", type=positive_float, default=2.0, help="scores per second of video (default: 2)")
    g.add_argument("--batch-size", type=positive_int, default=32, help="frames per inference batch (default: 32)")
    g.add_argument("--crop", type=region, metavar="x0,y0,x1,y1", help="region to classify (default: the crop the model was trained on)")
    g.add_argument("--full-frame", action="store_true", help="classify the whole frame, ignoring the model's crop")
    g.add_argument("--no-cache", action="store_true", help="always decode again instead of re-using cached scores")


def _add_event_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("events (times in seconds or m:ss)")
    g.add_argument("--class", dest="class_name", metavar="NAME", help="class to find events for (default: the task's class)")
    g.add_argument("--threshold", type=probability, help="start an event when the score reaches this (default: the model's, usually 0.5)")
    g.add_argument("--release", type=probability, help="hysteresis: stay in an event while the score is above this (default: threshold)")
    g.add_argument("--min-length", type=duration_ms, default=1000, metavar="S", help="drop events shorter than this (default: 1)")
    g.add_argument("--merge-gap", type=duration_ms, default=2000, metavar="S", help="join events closer than this (default: 2)")
    g.add_argument("--pad-before", type=duration_ms, default=1000, metavar="S", help="lead-in before each event (default: 1)")
    g.add_argument("--pad-after", type=duration_ms, default=1000, metavar="S", help="tail after each event (default: 1)")
    g.add_argument("--max-length", type=duration_ms, metavar="S", help="trim longer events around their peak")
    g.add_argument("--top-k", type=positive_int, metavar="K", help="keep only the K events with the highest peak")
    g.add_argument("--top-percent", type=positive_float, metavar="P",
                   help="instead of a threshold, keep the top P%% of 5-second bins (and their neighbours), like the original tool")


def _add_render_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rendering")
    g.add_argument("--size", type=frame_size, metavar="WxH", help="output size (default: the source's)")
    g.add_argument("--out-fps", type=frame_rate, metavar="FPS", help="output frame rate (default: the source's, at most 60)")
    g.add_argument("--title", metavar="TEXT", help="add a title card with this text")
    g.add_argument("--no-overlay", action="store_true", help="do not draw the confidence text")


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="autotosis",
        description="Find highlights in game-stream videos with a small classifier you train on your own labels, "
                    "and cut them into a reel.\n\nTypical loop: labels check -> train -> reel (or scan -> events -> render).",
        epilog=EXIT_CODES_HELP + "\n\nRun `autotosis COMMAND --help` for a command's options. "
                                 "Defaults may be set in ./autotosis.toml ([defaults] and [task.NAME] tables of option names).",
        formatter_class=formatter,
    )
    parser.add_argument("--version", action="version", version=f"autotosis {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and ffmpeg's messages on errors")
    parser.add_argument("--progress", choices=("auto", "bar", "json", "none"), default="auto",
                        help="progress display: bar on a terminal (auto), JSON lines on stderr, or none")
    parser.add_argument("-q", "--quiet", action="store_true", help="print only errors")
    parser.add_argument("--config", metavar="FILE", help="config file (default: ./autotosis.toml if present)")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    parsers: dict[str, argparse.ArgumentParser] = {}

    def add(name: str, handler: Callable, help_text: str, description: str, parent=commands) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_text, description=description, formatter_class=formatter, epilog=EXIT_CODES_HELP)
        p.set_defaults(handler=handler)
        parsers[name] = p
        return p

    labels = commands.add_parser("labels", help="check or import label files",
                                 description="Work with label files (one line per clip: PATH [crop=x0,y0,x1,y1] START-END ...).")
    labels_commands = labels.add_subparsers(dest="labels_command", metavar="ACTION", required=True)
    p = add("check", cmd_labels_check, "validate label files",
            "Validate label files and report every problem as file:line:col: message.\n"
            "Clips are probed with ffprobe so spans past a clip's end are found too.", labels_commands)
    p.add_argument("files", nargs="+", metavar="FILE", help="label files to check")
    p.add_argument("--no-probe", action="store_true", help="only check syntax and that clips exist (do not open the videos)")
    p = add("import", cmd_labels_import, "convert data.csv or an Audacity label track",
            "Convert the original autotosis data.csv (path \"[x0,y0,x1,y1]\" \"(s,e)\" ...) or an Audacity label track\n"
            "(start<TAB>end<TAB>text, one file per clip) into the autotosis label format.\n"
            "Without -o the result is printed.", labels_commands)
    p.add_argument("source", metavar="SOURCE", help="data.csv or an Audacity label export (.txt)")
    p.add_argument("--format", choices=("auto", "csv", "audacity"), default="auto", help="input format (default: by extension)")
    p.add_argument("--clip", metavar="VIDEO", help="for Audacity tracks: the clip the times refer to")
    p.add_argument("--crop", type=region, metavar="x0,y0,x1,y1", help="for Audacity tracks: face-cam crop to write")
    _add_output(p, "label file to write (default: print to stdout)")

    p = add("frames", cmd_frames, "extract training frames from a label file",
            "Decode every labelled clip with ffmpeg (crop + scale in the decoder) into compact uint8 shards.\n"
            "Frames near span edges and inside ~unsure spans are marked ignored. Unchanged clips are re-used.")
    p.add_argument("labels", metavar="LABELS", help="label file")
    p.add_argument("--out", metavar="DIR", help="where shards go (default: .autotosis/frames/TASK beside the label file)")
    _add_frame_options(p)

    p = add("train", cmd_train, "train a classifier from a label file",
            "Train a ResNet18 on the CPU from a label file. Validation is split by clip (frames of one clip never\n"
            "end up on both sides); the checkpoint with the best validation F1 is kept.\n"
            "Example: autotosis train labels/rage.txt -o rage.pt --epochs 8")
    p.add_argument("labels", metavar="LABELS", help="label file")
    _add_output(p, "checkpoint to write (.pt); the last epoch also goes to PATH.last.pt for --resume", required=True)
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int, default=6, help="passes over the training frames (default: 6)")
    g.add_argument("--batch-size", type=positive_int, default=32, help="(default: 32)")
    g.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (default: 0.001)")
    g.add_argument("--weights", default="none", metavar="none|imagenet|PATH",
                   help="initial weights: none (random), imagenet (torchvision's cached file; nothing is downloaded), or a checkpoint")
    g.add_argument("--freeze", choices=("none", "layer4", "fc"), default="none",
                   help="train everything (none), only layer4 + the classifier (layer4), or only the classifier (fc)")
    g.add_argument("--no-balance", action="store_true", help="sample frames as they come instead of class-balanced")
    g.add_argument("--no-augment", action="store_true", help="turn off the light shift/scale/brightness augmentation")
    g.add_argument("--val-fraction", type=probability, default=0.25, help="fraction of clips held out for validation (default: 0.25)")
    g.add_argument("--select", choices=("f1", "precision"), default="f1", help="keep the epoch with the best validation F1 or precision")
    g.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same model (default: 0)")
    g.add_argument("--max-frames", type=positive_int, metavar="N", help="at most N frames per epoch")
    g.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")
    g.add_argument("--resume", metavar="CHECKPOINT", help="continue an interrupted run from PATH.last.pt")
    g.add_argument("--frames-dir", metavar="DIR", help="where training frames are cached (see `frames --out`)")
    _add_frame_options(p)

    p = add("scan", cmd_scan, "score a video with a trained model",
            "Stream a video through ffmpeg (crop + scale in the decoder, no image files) and score it in batches.\n"
            "Writes times (from presentation timestamps) and a probability per class. Results are cached.")
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train`")
    _add_output(p, "scores file, .json or .csv (default: ./VIDEO-NAME.scores.json)")
    _add_scan_options(p)

    p = add("events", cmd_events, "turn scores into events",
            "Find events in a scores file: threshold with hysteresis, minimum length, merge gap, padding,\n"
            "maximum length, or top-K / top-percent selection. Writes JSON or CSV.")
    p.add_argument("scores", metavar="SCORES", help="scores file from `autotosis scan`")
    _add_output(p, "events file, .json or .csv (default: ./NAME.events.json)")
    _add_event_options(p)

    p = add("render", cmd_render, "cut events into a reel",
            "Cut each event out of the video (seek before input, re-encode), normalise size/fps/audio, overlay the\n"
            "confidence text, optionally add a title card, and join everything into one MP4.")
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("events", metavar="EVENTS", help="events file from `autotosis events`")
    p.add_argument("--scores", metavar="SCORES", help="scores file, for a per-half-second confidence text (default: the event's mean)")
    _add_output(p, "reel to write (.mp4)", required=True)
    _add_render_options(p)

    p = add("reel", cmd_reel, "scan + events + render in one go",
            "Score one or more videos, find their events and render them into one reel.\n"
            "Example: autotosis reel vod1.mp4 vod2.mp4 --model rage.pt -o best.mp4 --top-k 10")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("--model", required=True, metavar="CHECKPOINT")
    _add_output(p, "reel to write (.mp4)", required=True)
    _add_scan_options(p)
    _add_event_options(p)
    _add_render_options(p)

    p = add("demo", cmd_demo, "run the whole loop on generated sample clips",
            "Generate sample stream clips with known highlights, write a rough label file, train, scan a held-out\n"
            "VOD, render reel.mp4 and print frame- and event-level precision/recall/F1.")
    p.add_argument("--out", default="autotosis-demo", metavar="DIR", help="output folder (default: ./autotosis-demo)")
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument("--epochs", type=positive_int, default=5, help="training epochs (default: 5)")
    p.add_argument("--force", action="store_true", help="replace the outputs of an earlier demo run")
    return parser, parsers


def _explicit_options(parser: argparse.ArgumentParser, parsers: dict[str, argparse.ArgumentParser], argv: Sequence[str]) -> set[str]:
    """Names of the options the user actually typed (so config values do not override them)."""
    saved = []
    for p in [parser, *parsers.values()]:
        for action in p._actions:
            saved.append((action, action.default))
            action.default = argparse.SUPPRESS
    try:
        given = parser.parse_args(list(argv))
    finally:
        for action, default in saved:
            action.default = default
    return set(vars(given))


def _check_config_keys(config: Config, parsers: dict[str, argparse.ArgumentParser]) -> None:
    """A key that is no command's option is a typo: say so instead of ignoring it."""
    known = {a.dest for p in parsers.values() for a in p._actions} - {"help", "handler"}
    for section, values in [("defaults", config.defaults), *((f"task.{t}", v) for t, v in config.tasks.items())]:
        for key in values:
            if key not in known:
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean {close[0].replace('_', '-')!r}?" if close else "keys are long option names, e.g. threshold or min-length"
                raise UsageError(f"{config.path}: [{section}] unknown option {key.replace('_', '-')!r}", hint=hint)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, parsers = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, --version, or a usage error (argparse printed it)
        return int(exc.code or 0)
    debug = args.debug
    try:
        config = load_config(Path(args.config) if args.config else None)
        name = args.labels_command if args.command == "labels" else args.command
        actions = {a.dest: a for a in parsers[name]._actions if a.dest not in ("help", "handler")}
        ctx = Context(debug=debug, progress_mode=args.progress, config=config,
                      explicit=_explicit_options(parser, parsers, argv), actions=actions, quiet=args.quiet)
        _check_config_keys(config, parsers)
        ctx.apply_config(args, None)
        return int(args.handler(ctx, args))
    except LabelErrors as exc:
        for error in exc.errors:
            print(f"autotosis: {error}", file=sys.stderr)
        if len(exc.errors) > 1:
            print(f"autotosis: {len(exc.errors)} problems in label files", file=sys.stderr)
        return int(exc.exit_status)
    except AutotosisError as exc:
        print(f"autotosis: error: {exc}", file=sys.stderr)
        if debug:
            stderr_tail = getattr(exc, "stderr_tail", "")
            if stderr_tail:
                print("ffmpeg said:\n" + stderr_tail, file=sys.stderr)
            traceback.print_exc()
        return int(exc.exit_status)
    except KeyboardInterrupt:
        print("autotosis: interrupted", file=sys.stderr)
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitStatus.OK)
    except Exception as exc:  # a bug: short message unless --debug
        if debug:
            traceback.print_exc()
        print(f"autotosis: internal error: {exc.__class__.__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return int(ExitStatus.ERROR)
