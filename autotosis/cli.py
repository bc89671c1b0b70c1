"""Command-line interface: the only module that prints errors and chooses exit codes."""

from __future__ import annotations

import argparse
import contextlib
import difflib
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from rich.markup import escape

from autotosis import __version__
from autotosis.config import Config, load_config
from autotosis.errors import AutotosisError, DataError, ExitStatus, LabelErrors, ModelError, Terminated, UsageError
from autotosis.progress import JsonLinesProgress, ProgressCallback, RichProgress, no_progress

EXIT_CODES_HELP = """exit status:
  0 ok   1 internal error   2 bad usage/config   3 label file error   4 video/ffmpeg error
  5 model/checkpoint error   6 output exists (use --force)   7 unusable data
  8 batch finished but some VODs failed (see its summary)
  9 a file could not be written or read (disk full, size limit, permissions)
  130 interrupted (Ctrl-C)   143 terminated (SIGTERM; cleaned up as after Ctrl-C)"""


# --------------------------------------------------------------------------- value parsers


def duration_ms(text: str) -> int:
    """A duration or time on the command line: seconds ("2.5") or [h:]mm:ss[.fff]."""
    from autotosis.labels import parse_time

    try:
        return parse_time(str(text).strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a time ({exc}); use seconds like 2.5 or m:ss like 1:05") from None


def _number_type(name: str, convert: Callable[[str], float], accept: Callable[[float], bool], what: str, rule: str):
    """An argparse ``type=``: ``convert`` the text, then check it with ``accept``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{value} {rule}")
        return value

    parse.__name__ = name
    return parse


probability = _number_type("probability", float, lambda v: 0.0 <= v <= 1.0, "a number between 0 and 1", "is outside 0..1")
positive_float = _number_type("positive_float", float, lambda v: v > 0, "a number", "must be greater than 0")
positive_int = _number_type("positive_int", int, lambda v: v > 0, "a whole number", "must be at least 1")
count = _number_type("count", int, lambda v: v >= 0, "a whole number", "must be 0 or more")


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

        return Console(highlight=False, soft_wrap=True, emoji=False)  # ":fire:" in a file name stays text

    def say(self, text: str, *, markup: bool = False) -> None:
        """Print a line; plain text unless ``markup`` (then escape the names in it), so a file
        called "[final] vod.mp4" is printed as it is."""
        if not self.quiet:
            self.console.print(text, markup=markup)

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
    from autotosis.labels import check_labels

    problems = []
    for path in args.files:
        # Every problem in one pass: the clips of the lines that parsed are probed even when other
        # lines have errors, so a span past a clip's end shows up next to a syntax error.
        labels, found = check_labels(path, check_files=True)
        if labels is not None and not args.no_probe and labels.entries:
            try:
                validate_against_media(labels)
            except LabelErrors as exc:
                found += exc.errors
        for note in labels.notes if labels is not None else ():
            print(f"autotosis: {note}", file=sys.stderr)
        if found:
            problems += sorted(found, key=lambda e: (e.line, e.col))
            continue
        spans = sum(len(e.spans) for e in labels.entries)
        origin = "" if labels.task_declared else " (from the file name: any model of one class fits)"
        ctx.say(f"{path}: ok — task {labels.task!r}{origin}, {len(labels.entries)} clips, {spans} spans")
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
        result = lab.import_audacity(source, Path(args.clip), dest, crop=crop, point_window_ms=args.point_window)
    else:
        result = lab.import_data_csv(source, dest)
    for note in result.notes:
        print(f"autotosis: {note}", file=sys.stderr)
    if args.output:
        lab.write_labels(result, dest, force=args.force)
        ctx.say(f"wrote {dest} ({len(result.entries)} clips)")
    else:
        sys.stdout.write(lab.format_labels(result))
    return ExitStatus.OK


def _frame_options(args: argparse.Namespace):
    from autotosis.dataset import FrameOptions

    return FrameOptions(fps=args.fps, size=args.size, band_ms=args.band, crop_borders=args.crop_borders)


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
        table.add_row(escape(clip.clip.name), *(str(counts.get(i, 0)) for i in (*range(len(frameset.classes)), -1)))
    if not ctx.quiet:
        ctx.console.print(table)
        if frameset.clips:
            ctx.say(f"frames stored in {frameset.clips[0].frames_path.parent}")


def cmd_train(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.fit import fit, measure_speed, plan_fit
    from autotosis.fsutil import check_writable
    from autotosis.sampling import is_image_folder
    from autotosis.train import TrainConfig, _check_config

    make_frames = _training_data(ctx, args)
    out = Path(args.output)
    folds = args.folds
    if is_image_folder(args.labels) and folds:
        if "folds" in ctx.explicit:
            raise UsageError("--folds is for label files: images of a folder have no times to calibrate events on",
                             hint="leave --folds out (or give --folds 0) for a folder of images")
        folds = 0
    config = TrainConfig(
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weights=args.weights, freeze=args.freeze,
        balance=not args.no_balance, augment=not args.no_augment, val_fraction=args.val_fraction,
        select=args.select, seed=args.seed, max_frames_per_epoch=args.max_frames, threads=args.threads,
        leak_distance=None if args.no_leak_check else args.leak_distance, folds=folds, hard_negatives=args.hard_negatives,
    )
    _check_config(config)
    resume = Path(args.resume) if args.resume else None
    if resume is not None and not resume.exists():
        raise ModelError(f"{resume}: no such file", hint="give the <output stem>.last.pt file an interrupted `train` wrote")
    if resume is None:
        check_writable(out, args.force)
    with ctx.progress() as progress:
        frameset = make_frames(progress)
        counts = frameset.counts()
        ctx.say("frames: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
        plan = plan_fit(frameset, config, measure_speed(frameset, config))
        ctx.say(f"plan: {plan.describe()}")
        ctx.say("run          epoch  train-loss  val-loss  val-AP  precision  recall     F1  img/s")

        def on_epoch(run: str, m) -> None:
            def show(value: float, width: int, digits: int) -> str:
                return f"{'-':>{width}}" if value != value else f"{value:{width}.{digits}f}"  # NaN: no validation

            ctx.say(f"{run:<12} {m.epoch:>5}  {m.train_loss:10.4f}  {show(m.val_loss, 8, 4)}  {show(m.ap, 6, 3)}  "
                    f"{show(m.precision, 9, 3)}  {show(m.recall, 6, 3)}  {show(m.f1, 5, 3)}  {m.images_per_s:5.0f}")

        def on_step(done: int, total: int) -> None:
            progress("train", done, total)

        result = fit(frameset, config, out, resume=resume, force=args.force, plan=plan,
                     on_stage=lambda text: ctx.say(text), on_epoch=on_epoch, on_step=on_step)
    for warning in result.warnings:
        ctx.say(f"[yellow]warning:[/] {escape(warning)}", markup=True)
    _print_fit_summary(ctx, result)
    ctx.say(f"wrote {result.train.checkpoint}")
    return ExitStatus.OK


def _print_fit_summary(ctx: Context, result) -> None:
    """What a person can act on: the folds, the chosen rules and why, the clips the model gets most wrong."""
    from rich.table import Table

    from autotosis.labels import format_time

    if ctx.quiet:
        return
    if result.folds:
        table = Table(title="cross-validation (each fold's clips scored by a model that never saw them)")
        for column in ("fold", "train clips", "scored clips", "val loss", "frame AP", "frame F1", "event P", "event R", "event F1"):
            table.add_column(column, justify="right")
        for f in result.folds:
            table.add_row(str(f.fold), str(f.train_clips), str(f.val_clips), f"{f.val_loss:.3f}", f"{f.ap:.3f}", f"{f.frame.f1:.3f}",
                          f"{f.event.precision:.2f}", f"{f.event.recall:.2f}", f"{f.event.f1:.2f}")
        ctx.console.print(table)
    if result.calibration is not None:
        ctx.say(f"event rules stored in the model: {result.calibration.explain()}")
        ctx.say(f"hard negatives: {result.hard_negatives} frames drawn more often in the final fit")
    elif result.train.history and not result.folds:
        history = result.train.history
        kept = next((m for m in history if m.epoch == result.train.best_epoch), history[-1])
        ctx.say(f"kept epoch {kept.epoch} of {len(history)} (validation: F1 {kept.f1:.3f}, precision {kept.precision:.3f}, "
                f"recall {kept.recall:.3f}, {len(result.train.val_clips)} clips)")
    for mistakes in result.mistakes[:5]:
        parts = []
        if mistakes.false_events:
            times = ", ".join(format_time(start) for start, _, _ in mistakes.false_events[:4])
            parts.append(f"{len(mistakes.false_events)} confident false positive{'s' if len(mistakes.false_events) > 1 else ''} "
                         f"at {times} — add more negatives like these")
        if mistakes.missed:
            times = ", ".join(f"{format_time(s)}-{format_time(e)}" for s, e in mistakes.missed[:4])
            parts.append(f"{len(mistakes.missed)} missed highlight{'s' if len(mistakes.missed) > 1 else ''} at {times} — "
                         "check these spans, or add more like them")
        ctx.say(f"clip {escape(mistakes.name)}: " + "; ".join(parts))


def _training_data(ctx: Context, args: argparse.Namespace):
    """A function progress -> FrameSet for the label file or image folder in args.labels (config applied)."""
    from autotosis.dataset import extract_frames
    from autotosis.sampling import folder_frames, is_image_folder, read_image_folder, task_name_for

    frames_dir = Path(args.frames_dir) if args.frames_dir else None
    if is_image_folder(args.labels):
        folder = read_image_folder(args.labels)
        task = args.task or task_name_for(folder.root)
        ctx.apply_config(args, task)
        return lambda progress: folder_frames(folder, size=args.size, region=args.crop, crop_borders=args.crop_borders,
                                              out_dir=frames_dir, task=task, progress=progress)
    for option, dest in (("--task", "task"), ("--crop", "crop")):
        if dest in ctx.explicit:
            raise UsageError(f"{option} is for image folders; a label file names its task ('# task=') and crops (crop=) itself")
    labels = _load_labels(ctx, args, args.labels)
    return lambda progress: extract_frames(labels, frames_dir, _frame_options(args), progress=progress)


def cmd_eval(ctx: Context, args: argparse.Namespace) -> int:
    import json

    from autotosis.evaluate import (
        EvalOptions,
        check_label_classes,
        evaluate_units,
        report_json,
        score_image_folder,
        score_labelled_clips,
    )
    from autotosis.fsutil import check_writable, write_text_atomic
    from autotosis.labels import parse_labels
    from autotosis.model import load_checkpoint
    from autotosis.sampling import is_image_folder, read_image_folder
    from autotosis.segments import event_params_for

    model_path = Path(args.model)
    info = load_checkpoint(model_path)[1]
    ctx.apply_config(args, info.task)
    json_out = Path(args.json) if args.json else None
    if json_out is not None:
        check_writable(json_out, args.force)
    crop_borders = args.crop_borders or info.crop_borders  # frame the clips as in training
    # The events `autotosis events` would find with this model: its calibrated rules unless given here.
    rules = event_params_for(info.events, info.threshold, threshold=args.threshold, smooth_ms=args.smooth,
                             min_length_ms=args.min_length, merge_gap_ms=args.merge_gap)
    options = EvalOptions(iou=args.iou, band_ms=args.band, threshold=rules.threshold, min_length_ms=rules.min_length_ms,
                          merge_gap_ms=rules.merge_gap_ms, smooth_ms=rules.smooth_ms)
    with ctx.progress() as progress:
        if is_image_folder(args.labels):
            units = score_image_folder(read_image_folder(args.labels), model_path, crop_borders=crop_borders,
                                       progress=progress)
        else:
            labels = parse_labels(args.labels, check_files=True)
            check_label_classes(labels.class_names(), info.classes, str(labels.path))
            units = score_labelled_clips(labels, model_path, scan=_scan_options(args), crop_borders=crop_borders,
                                         progress=progress)
    report = evaluate_units(units, info.classes, options, task=info.task, model=str(model_path),
                            default_threshold=info.threshold, class_name=args.class_name)
    _print_eval(ctx, report)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(report_json(report), indent=1), force=args.force)
        ctx.say(f"wrote {json_out}")
    return ExitStatus.OK


def _print_eval(ctx: Context, report) -> None:
    from rich.table import Table

    from autotosis.evaluate import worst_first

    if ctx.quiet:
        return

    def ratio(value) -> str:
        return "–" if value is None else f"{value:.3f}"

    for r in report.reports:
        table = Table(title=f"class {r.class_name!r} per clip, worst first (red: F1 below 0.5)",
                      caption="frames: samples counted; P R F1 AP: frame level; events: labelled/found/matched")
        table.add_column("clip", overflow="fold", min_width=16, ratio=1)
        for column in ("line", "frames", "P", "R", "F1", "AP", "events", "event F1"):
            table.add_column(column, justify="right", no_wrap=True)
        for c in worst_first(r.clips):
            bad = (c.event.f1 if c.event is not None else c.frame.f1) < 0.5
            events = "–" if c.event is None else f"{c.events_true}/{c.events_found}/{c.event.tp}"
            table.add_row(escape(c.name), str(c.line or "–"), str(c.counted), ratio(c.frame.precision), ratio(c.frame.recall),
                          ratio(c.frame.f1), ratio(c.average_precision), events,
                          ratio(c.event.f1 if c.event is not None else None), style="red" if bad else None)
        ctx.console.print(table)
    summary = Table(title=f"task {report.task!r}: frames (score >= threshold; within {report.band_ms / 1000:g} s of a span edge "
                          f"or in ~unsure spans not counted) and events (IoU >= {report.iou:g})")
    for column in ("class", "level", "threshold", "P", "R", "F1", "TP", "FP", "FN", "AP", "ECE"):
        summary.add_column(column, justify="left" if column in ("class", "level") else "right", no_wrap=True)
    for r in report.reports:
        for level, m, ap, ece in (("frame", r.frame, ratio(r.average_precision), ratio(r.calibration_error)), ("event", r.event, "", "")):
            if m is None:
                continue
            summary.add_row(escape(r.class_name), level, f"{r.threshold:.2f}", ratio(m.precision), ratio(m.recall), ratio(m.f1),
                            str(m.tp), str(m.fp), str(m.fn), ap, ece)
    summary.caption = ("ECE: expected calibration error of the frame scores (0 = a score of 0.8 is right 80% of the time; "
                       "it says how far scores can be read as probabilities)")
    ctx.console.print(summary)


def cmd_sample(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.sampling import UNSORTED, sample_frames

    out = Path(args.output)
    names = [n.strip() for n in (args.classes or "").split(",") if n.strip()]
    with ctx.progress() as progress:
        result = sample_frames([Path(v) for v in args.videos], args.count, args.seed, out, fmt=args.image_format,
                               force=args.force, progress=progress)
    for name in names:
        (out / name).mkdir(parents=True, exist_ok=True)
    ctx.say(f"wrote {len(result.written)} frames to {result.folder}")
    if result.missing:
        ctx.say(f"[yellow]warning:[/] {result.missing} sampled times had no frame (past a video's last frame)", markup=True)
    ctx.say(f"next: move each image from {UNSORTED}/ into a folder per class ({', '.join(names) or 'e.g. background/, rage/'}) "
            f"and run `autotosis train {out} -o MODEL.pt`")
    return ExitStatus.OK


def cmd_review(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.labels import parse_labels
    from autotosis.model import load_checkpoint
    from autotosis.review import make_review_clips, write_hard_examples

    if not args.videos and not args.hard_negatives:
        raise UsageError("nothing to review: give VIDEOs (with --labels) and/or --hard-negatives LABELS")
    if args.videos and not args.labels:
        raise UsageError("review clips need --labels LABELS: the label file their lines are added to")
    info = load_checkpoint(Path(args.model))[1]
    ctx.apply_config(args, info.task)
    with ctx.progress() as progress:
        if args.videos:
            labels_path = Path(args.labels)
            out_dir = Path(args.output) if args.output else labels_path.parent / "review"
            params = _event_params(args, info.events, info.threshold)
            result = make_review_clips([Path(v) for v in args.videos], Path(args.model), labels_path, out_dir, params,
                                       class_name=args.class_name, iteration=args.iteration, scan=_scan_options(args),
                                       force=args.force, progress=progress)
            for clip in result.clips:
                spans = "  ".join(s.as_text() for s in clip.spans)
                ctx.say(f"{clip.path}  {spans}  (peak {clip.peak:.2f})")
            if result.clips:
                ctx.say(f"review iter{result.iteration}: {len(result.clips)} clips; added their lines to {result.labels} — "
                        "watch each clip, fix or delete its spans, then train again")
            else:
                ctx.say("no events found: nothing to review (lower --threshold?)")
        if args.hard_negatives:
            hard_labels = parse_labels(args.hard_negatives, check_files=True)
            base = Path(args.output) if args.output else hard_labels.path.parent / "review"
            hard = write_hard_examples(hard_labels, Path(args.model), base / "hard-examples", min_confidence=args.min_confidence,
                                       limit=args.max_images, band_ms=args.band, scan=_scan_options(args),
                                       crop_borders=args.crop_borders or info.crop_borders, force=args.force,
                                       progress=progress)
            if hard.sheet is None:
                ctx.say(f"no frame of {hard_labels.path.name} is wrong with confidence {args.min_confidence:.2f} or more")
            else:
                ctx.say(f"wrote {len(hard.images)} confidently wrong frames to {hard.folder} (most confident first by name) "
                        f"and a contact sheet {hard.sheet}")
    return ExitStatus.OK


def _scan_options(args: argparse.Namespace):
    from autotosis.scan import ScanOptions

    from autotosis.coarse import CoarseOptions

    # eval's options have no crop or mode: its clips are scanned densely with their own crops.
    return ScanOptions(fps=args.fps, batch_size=args.batch_size, region=getattr(args, "crop", None),
                       full_frame=getattr(args, "full_frame", False), use_cache=not args.no_cache,
                       mode=getattr(args, "mode", "auto"), coarse=CoarseOptions(threshold=getattr(args, "coarse_threshold", None)),
                       stall_timeout_s=args.stall_timeout)


def _model_task(path: str) -> str:
    from autotosis.model import load_checkpoint

    return load_checkpoint(Path(path))[1].task


def _onnx_predictor(args: argparse.Namespace):
    """onnxruntime in place of torch: with --backend onnx, or by default for an .onnx model file."""
    backend = args.backend or ("onnx" if Path(args.model).suffix.lower() == ".onnx" else "torch")
    if backend != "onnx":
        return None
    import os

    from autotosis.onnx_backend import OnnxPredictor

    # As scan does for torch: on a small machine one inference thread, the other cores decode.
    return OnnxPredictor(Path(args.model), threads=1 if (os.cpu_count() or 1) <= 4 else None)


def cmd_scan(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.fsutil import check_writable
    from autotosis.scan import scan_video
    from autotosis.scores import write_scores

    predictor = _onnx_predictor(args)
    ctx.apply_config(args, predictor.info.task if predictor else _model_task(args.model))
    out = Path(args.output) if args.output else Path.cwd() / f"{Path(args.video).stem}.scores.json"
    check_writable(out, args.force)
    with ctx.progress() as progress:
        scores = scan_video(Path(args.video), Path(args.model), _scan_options(args), progress=progress, predictor=predictor)
    write_scores(scores, out, force=args.force)
    rough = scores.extra.get("coarse")
    how = (f", coarse: {rough['keyframes']} keyframes, {rough['refined_fraction'] * 100:.0f}% of the video decoded densely"
           if rough else "")
    ctx.say(f"scored {len(scores.times_ms)} frames of {args.video} ({scores.duration_ms / 1000:.1f} s{how}); wrote {out}")
    return ExitStatus.OK


def _event_params(args: argparse.Namespace, model_rules: dict | None, model_threshold: float | None):
    """Event settings: the command line's, else the model's calibrated rules (segments.event_params_for)."""
    from autotosis.segments import event_params_for

    if args.top_percent is not None and (args.threshold is not None or args.release is not None):
        raise UsageError("--top-percent selects the best bins instead of thresholding: give it or --threshold/--release, not both",
                         hint="--top-k K keeps the K best moments and honours the threshold first")
    return event_params_for(
        model_rules, model_threshold, threshold=args.threshold, release=args.release, smooth_ms=args.smooth,
        min_length_ms=args.min_length, merge_gap_ms=args.merge_gap, pad_before_ms=args.pad_before,
        pad_after_ms=args.pad_after, max_length_ms=args.max_length, top_k=args.top_k, top_percent=args.top_percent,
    )


def _scores_event_params(args: argparse.Namespace, scores):
    """_event_params with the model's rules as the scan recorded them in the scores."""
    return _event_params(args, scores.extra.get("events"), scores.extra.get("threshold"))


def _event_class(ctx: Context, args: argparse.Namespace, scores) -> str:
    """The class to find events for: --class (checked, with a suggestion), else the first non-background
    class, named when the model has several."""
    wanted = getattr(args, "class_name", None)
    found = [c for c in scores.classes if c != "background"]
    if wanted is not None:
        if wanted not in scores.classes:
            close = difflib.get_close_matches(wanted, scores.classes, n=1)
            raise UsageError(f"--class {wanted!r} is not a class of this model ({', '.join(found)})",
                             hint=f"did you mean {close[0]!r}?" if close else None)
        return wanted
    label = scores.default_class()
    if len(found) > 1:
        ctx.say(f"events for class {label!r}, the first of {', '.join(found)} (--class NAME picks another)")
    return label


def _nothing_found(scores, label: str, params) -> str:
    from autotosis.segments import nothing_found_hint

    return nothing_found_hint(scores.times_ms, scores.column(label), params, scores.step_ms or None)


def _print_events(ctx: Context, events, title: str) -> None:
    from rich.table import Table

    if ctx.quiet:
        return
    table = Table(title=title)
    for column in ("#", "start", "end", "length", "class", "peak", "mean"):
        table.add_column(column, justify="right")
    for i, e in enumerate(events, 1):
        table.add_row(str(i), _clock(e.start_ms), _clock(e.end_ms), f"{e.duration_ms / 1000:.1f}s", escape(e.label), f"{e.peak:.2f}", f"{e.mean:.2f}")
    ctx.console.print(table)


def _clock(ms: int) -> str:
    from autotosis.timefmt import clock_tenths

    return clock_tenths(ms)


def cmd_events(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.fsutil import check_writable
    from autotosis.scores import read_scores
    from autotosis.segments import EventList, events_from_scores, write_events

    scores = read_scores(Path(args.scores))
    ctx.apply_config(args, scores.task or None)
    stem = Path(args.scores).name.removesuffix(".json").removesuffix(".csv").removesuffix(".scores")
    out = Path(args.output) if args.output else Path.cwd() / f"{stem}.events.json"
    check_writable(out, args.force)
    label = _event_class(ctx, args, scores)
    params = _scores_event_params(args, scores)
    events = events_from_scores(scores, label, params)
    write_events(EventList(scores.video, scores.duration_ms, label, params, tuple(events)), out, force=args.force)
    _print_events(ctx, events, f"{len(events)} events in {scores.video.name}")
    if not events:
        ctx.say(f"no events: {_nothing_found(scores, label, params)}")
    ctx.say(f"wrote {out}")
    return ExitStatus.OK


def _render_options(args: argparse.Namespace, **extra):
    from autotosis.render import RenderOptions

    width, height = args.size if args.size else (None, None)
    return RenderOptions(width=width, height=height, fps=args.out_fps, overlay=not args.no_overlay, title=args.title,
                         chapters=getattr(args, "chapters", False), audio_track=args.audio_track, **extra)


def _say_chapters(ctx: Context, result) -> None:
    if result.chapters_text is None:
        return
    ctx.say(f"{len(result.chapters)} chapters muxed into the reel; for a YouTube description: {result.chapters_text}")
    for warning in result.warnings:
        ctx.say(f"[yellow]note:[/] {escape(warning)}", markup=True)


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
    _say_chapters(ctx, result)
    return ExitStatus.OK


def cmd_reel(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.fsutil import check_writable
    from autotosis.render import ReelPart, render_reel
    from autotosis.scan import scan_video
    from autotosis.segments import events_from_scores

    ctx.apply_config(args, _model_task(args.model))
    out = Path(args.output)
    check_writable(out, args.force)
    parts, selections = [], []
    with ctx.progress() as progress:
        for video in args.videos:
            scores = scan_video(Path(video), Path(args.model), _scan_options(args), progress=progress)
            label = _event_class(ctx, args, scores)
            params = _scores_event_params(args, scores)
            events = events_from_scores(scores, label, params)
            _print_events(ctx, events, f"{len(events)} events in {Path(video).name}")
            parts.append(ReelPart(Path(video), tuple(events), scores))
            selections.append((Path(video).name, scores, label, params))
        if not any(part.events for part in parts):
            raise DataError("no events to render", hint="; ".join(f"{name}: {_nothing_found(*rest)}" for name, *rest in selections))
        options = _render_options(args, source_cards=len(args.videos) > 1)
        result = render_reel(parts, out, options, force=args.force, progress=progress)
    ctx.say(f"wrote {result.path} ({sum(len(p.events) for p in parts)} events, {result.duration_ms / 1000:.1f} s)")
    _say_chapters(ctx, result)
    return ExitStatus.OK


def cmd_batch(ctx: Context, args: argparse.Namespace) -> int:
    import os


    from autotosis.batch import MANIFEST_NAME, BatchOptions, collect_inputs, run_batch, summary_table
    from autotosis.engines import import_ray, make_engine
    from autotosis.model import load_checkpoint

    if args.address and args.engine != "ray":
        raise UsageError("--address is for --engine ray")
    if args.engine == "ray":
        import_ray()  # a missing extra is reported now, not after the inputs were checked
    info = load_checkpoint(Path(args.model))[1]
    ctx.apply_config(args, info.task)
    out = Path(args.out)
    sources = collect_inputs(args.inputs, exclude=out)
    cpus = os.cpu_count() or 1
    workers = args.workers or (None if args.address else max(1, cpus // 2))
    share = max(1, cpus // (workers or 1))  # cores per worker on this machine
    # As `scan` does: inference at 2 scores/s is a small part of a scan, the decoder needs the other cores.
    threads = args.threads or (1 if args.address or share <= 4 else share // 4)
    options = BatchOptions(out=out, model=Path(args.model), scan=_scan_options(args), events=_event_params(args, info.events, info.threshold),
                           class_name=args.class_name, render=_render_options(args), order=args.order,
                           max_duration_ms=args.max_duration, force=args.force)

    def engine():
        return make_engine(args.engine, workers=workers, threads=threads, address=args.address)

    def on_item(item) -> None:
        if item.status == "failed":
            ctx.say(f"[red]failed[/] {escape(item.source.name)}: {escape(item.error or '')}", markup=True)
        elif item.status == "done":
            ctx.say(f"[green]done[/] {escape(item.source.name)}: {item.events} event{'' if item.events == 1 else 's'}", markup=True)

    ctx.say(f"{len(sources)} VOD{'' if len(sources) == 1 else 's'} -> {out} ({args.engine} engine)")
    with ctx.progress() as progress:
        result = run_batch(sources, options, engine, progress=progress, on_item=on_item)
    if not ctx.quiet:
        ctx.console.print(summary_table(result))
    if result.failed:
        failed_vods = sum(item.status == "failed" for item in result.items)
        what = [f"{failed_vods} of {len(result.items)} VODs failed"] if failed_vods else []
        what += ["the best-of reel failed"] if result.best_of.status == "failed" else []
        print(f"autotosis: {'; '.join(what)} (errors in the summary and in {result.out / MANIFEST_NAME})", file=sys.stderr)
        return ExitStatus.SOME_FAILED
    return ExitStatus.OK


def short_region(text: str):
    from autotosis.shorts import parse_region

    try:
        return parse_region(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc} (expected x0,y0,x1,y1 as fractions of the frame, or pixels)") from None


def _shorts_options(args: argparse.Namespace, fallback_cam, fallback_what: str):
    from autotosis.shorts import Layout, LengthRules, RegionArg, ShortsOptions

    cam, what = (args.cam, "--cam") if args.cam else (RegionArg(tuple(fallback_cam)) if fallback_cam else None, fallback_what)
    return ShortsOptions(layout=Layout(args.layout), size=args.size, cam=cam, cam_what=what, game=args.game,
                         lengths=LengthRules(args.min, args.max), title=args.title, overlay=not args.no_overlay, fps=args.out_fps,
                         audio_track=args.audio_track)


def cmd_shorts(ctx: Context, args: argparse.Namespace) -> int:
    from rich.table import Table

    from autotosis.scan import scan_video
    from autotosis.scores import read_scores
    from autotosis.segments import events_from_scores, read_events
    from autotosis.shorts import ShortSource, check_sources, render_shorts

    videos = [Path(v) for v in args.videos]
    if args.events:
        if len(videos) != 1:
            raise UsageError("--events holds the events of one video: give exactly one VIDEO", hint="or use --model to scan several")
        events = read_events(Path(args.events))
        scores = read_scores(Path(args.scores)) if args.scores else None
        ctx.apply_config(args, scores.task if scores else None)
        scanned = (scores.extra.get("region") if scores else None) or args.crop
        options = _shorts_options(args, scanned, "the face-cam crop (--crop or the scanned region)")
        check_sources(videos, options)
        sources = [ShortSource(videos[0], tuple(events.events), scores)]
    else:
        from autotosis.model import load_checkpoint

        if args.scores:
            raise UsageError("--scores goes with --events; with --model the videos are scanned (and cached)")
        model_info = load_checkpoint(Path(args.model))[1]
        ctx.apply_config(args, model_info.task)
        options = _shorts_options(args, args.crop or model_info.crop, "the face-cam crop (--crop or the model's)")
        check_sources(videos, options)  # a bad region fails now, not after the scan
        sources = []
    with ctx.progress() as progress:
        if not args.events:
            for video in videos:
                scores = scan_video(video, Path(args.model), _scan_options(args), progress=progress)
                label = _event_class(ctx, args, scores)
                events = events_from_scores(scores, label, _scores_event_params(args, scores))
                sources.append(ShortSource(video, tuple(events), scores))
        result = render_shorts(sources, Path(args.output), options, force=args.force, progress=progress)
    if not ctx.quiet:
        table = Table(title=f"{len(result.shorts)} shorts in {escape(str(result.folder))}")
        for column in ("file", "source", "from", "length", "peak"):
            table.add_column(column, justify="left" if column in ("file", "source") else "right")
        for short in result.shorts:
            w = short.window
            table.add_row(escape(short.file_name), escape(short.source.name), _clock(w.start_ms), f"{w.duration_ms / 1000:.1f}s", f"{w.event.peak:.2f}")
        ctx.console.print(table)
    ctx.say(f"wrote {len(result.shorts)} shorts and the index {result.index_json} (+ .csv)")
    return ExitStatus.OK


def _recorded_video(recorded: Path | None, data_file: Path) -> Path | None:
    """The video a scores or events file names, if it is still there: as written (from here), or beside the file."""
    if recorded is None:
        return None
    candidates = [recorded] if recorded.is_absolute() else [recorded, data_file.parent / recorded]
    return next((c for c in candidates if c.is_file()), None)


def _file_stem(path: str | Path, *endings: str) -> str:
    name = Path(path).name
    for ending in endings:
        name = name.removesuffix(ending)
    return name or "autotosis"


def cmd_export(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis import media
    from autotosis.export import PER_VIDEO_FORMATS, TIMELINE_FORMATS, export_events, parse_formats
    from autotosis.segments import read_events

    formats = parse_formats(args.format)
    if args.video and len(args.video) != len(args.events):
        raise UsageError(f"{len(args.video)} --video for {len(args.events)} events files",
                         hint="give --video once per events file, in the same order, or leave it out")
    timelines = [f for f in formats if f in TIMELINE_FORMATS]
    sources = []
    for i, name in enumerate(args.events):
        events = read_events(Path(name))
        video = Path(args.video[i]) if args.video else None
        if video is None and timelines:  # the frame rate and length come from the video itself
            video = _recorded_video(events.video, Path(name))
            if video is None:
                what = f"its video {events.video} was not found" if events.video else "it names no video"
                raise UsageError(f"{name}: {', '.join(timelines)} need the source video, but {what}",
                                 hint=f"pass --video VIDEO, or export only {', '.join(PER_VIDEO_FORMATS)}")
        sources.append((media.probe(video) if video is not None else None, events))
    base = Path(args.output) if args.output else Path.cwd() / _file_stem(args.events[0], ".json", ".csv", ".events")
    protect = [Path(p) for p in [*args.events, *(args.video or ())]]
    result = export_events(sources, formats, base, name=args.name, force=args.force, protect=protect)
    for warning in result.warnings:
        ctx.say(f"[yellow]note:[/] {escape(warning)}", markup=True)
    for path in result.paths:
        ctx.say(f"wrote {path}")
    return ExitStatus.OK


_SCAN_DESTS = ("fps", "batch_size", "crop", "full_frame", "no_cache", "mode", "coarse_threshold", "stall_timeout")
_EVENT_DESTS = ("class_name", "threshold", "release", "smooth", "min_length", "merge_gap", "pad_before", "pad_after", "max_length",
                "top_k", "top_percent")


def _refuse_unused(ctx: Context, dests: Sequence[str], why: str) -> None:
    """An option that would be silently ignored is a mistake: say so."""
    given = [d for d in dests if d in ctx.explicit]
    if given:
        option = ctx.actions[given[0]].option_strings[0]
        raise UsageError(f"{option} has no effect {why}")


def cmd_report(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis import media
    from autotosis.fsutil import check_writable
    from autotosis.report import write_report
    from autotosis.scan import scan_video
    from autotosis.scores import read_scores
    from autotosis.segments import EventList, events_from_scores, read_events

    if args.model and args.scores:
        raise UsageError("--model and --scores exclude each other", hint="scan VIDEO with --model, or report on an earlier scan with --scores")
    if not args.model and not args.scores:
        raise UsageError("nothing to report on", hint="give VIDEO --model CHECKPOINT, or --scores SCORES")
    if args.model and not args.video:
        raise UsageError("--model needs the VIDEO to scan")
    if args.scores:
        _refuse_unused(ctx, _SCAN_DESTS, "with --scores (the video was scanned already)")
    if args.events:
        _refuse_unused(ctx, _EVENT_DESTS, "with --events (the events are read from the file)")
    stem = Path(args.video).stem if args.video else _file_stem(args.scores, ".json", ".csv", ".scores")
    out = Path(args.output) if args.output else Path.cwd() / f"{stem}.report.html"
    settings: dict[str, object] = {}
    if args.model:
        ctx.apply_config(args, _model_task(args.model))
        settings["model"] = str(args.model)
        settings["scan"] = {"fps": args.fps, "crop": "full frame" if args.full_frame else (args.crop or "the model's")}
    check_writable(out, args.force)  # before the slow part
    with ctx.progress() as progress:
        if args.model:
            scores = scan_video(Path(args.video), Path(args.model), _scan_options(args), progress=progress)
        else:
            scores = read_scores(Path(args.scores))
            ctx.apply_config(args, scores.task or None)
            settings["scores file"] = str(args.scores)
        if args.events:
            events = read_events(Path(args.events))
            settings["events file"] = str(args.events)
        else:
            label = _event_class(ctx, args, scores)
            params = _scores_event_params(args, scores)
            events = EventList(scores.video, scores.duration_ms, label, params, tuple(events_from_scores(scores, label, params)))
        video = Path(args.video) if args.video else _recorded_video(scores.video, Path(args.scores))
        if video is None:
            ctx.say(f"[yellow]note:[/] the scanned video {escape(str(scores.video))} was not found: no thumbnails "
                    "(pass VIDEO to add them)", markup=True)
        else:
            settings["video"] = str(video)
        info = media.probe(video) if video is not None else None
        write_report(scores, events, out, video=info, settings=settings, force=args.force,
                     thumbnails_per_event=args.thumbnails, progress=progress)
    _print_events(ctx, events.events, f"{len(events.events)} events in {scores.video.name}")
    ctx.say(f"wrote {out}")
    return ExitStatus.OK


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.demo import DemoOptions, run_demo

    options = DemoOptions(out=Path(args.out), seed=args.seed, epochs=args.epochs, force=args.force)
    with ctx.progress() as progress:
        run_demo(options, say=lambda text: ctx.say(text, markup=True), progress=progress, console=None if ctx.quiet else ctx.console)
    return ExitStatus.OK


def cmd_export_onnx(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.onnx_backend import export_onnx

    out = Path(args.output)
    info = export_onnx(Path(args.model), out, force=args.force)
    ctx.say(f"wrote {out} (task {info.task!r}, input uint8 RGB N x {info.input_size} x {info.input_size} x 3, "
            f"output softmax over {', '.join(info.classes)})")
    return ExitStatus.OK


def cmd_stills(ctx: Context, args: argparse.Namespace) -> int:
    from rich.table import Table

    from autotosis.stills import StillsOptions, mine_stills

    predictor = None
    if args.model:
        from autotosis.onnx_backend import load_predictor

        predictor = load_predictor(Path(args.model))
        ctx.apply_config(args, predictor.info.task)
    options = StillsOptions(
        count=args.count, every_distinct=args.keyframes, fps=args.fps, dedup=args.dedup, dedup_threshold=args.dedup_threshold,
        diversity_threshold=args.diversity, min_gap_ms=args.min_gap, min_score=args.min_score, class_name=args.class_name,
        region=args.crop, full_frame=args.full_frame, image_format=args.format,
    )
    with ctx.progress() as progress:
        result = mine_stills(Path(args.video), Path(args.output), options, predictor, force=args.force, progress=progress)
    what = "keyframes" if args.fps is None else "frames"
    share = result.dropped / result.decoded if result.decoded else 0.0
    ctx.say(f"decoded {result.decoded} {what}, dropped {result.dropped} near-duplicates ({share:.0%}), "
            f"{len(result.candidates)} distinct")
    if predictor is not None:
        ctx.say(f"{result.eligible} distinct frames scored at least {result.settings['min_score']:.2f} for {result.class_name}")
    if result.stills and not ctx.quiet and not args.keyframes:
        table = Table(title=f"{len(result.stills)} still{'' if len(result.stills) == 1 else 's'}")
        for column in ("#", "time", "score", "size", "file"):
            table.add_column(column, justify="right" if column != "file" else "left")
        for i, still in enumerate(result.stills, 1):
            score = "" if still.score is None else f"{still.score:.3f}"
            table.add_row(str(i), _clock(still.time_ms), score, f"{still.width}x{still.height}", escape(still.path.name))
        ctx.console.print(table)
    noun = "still" if len(result.stills) == 1 else "stills"
    ctx.say(f"wrote {len(result.stills)} {noun} and {result.manifest.name} to {result.manifest.parent}")
    if result.not_grabbed:
        ctx.say(f"[yellow]warning:[/] {result.not_grabbed} chosen frames could not be read at full size and were not "
                "written (the file has no frame at their times)", markup=True)
    return ExitStatus.OK


def cmd_explain(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis import explain
    from autotosis.fsutil import check_writable
    from autotosis.model import load_checkpoint

    if bool(args.audit) == bool(args.input):
        raise UsageError("give IMAGE or VIDEO --at TIME to explain one picture, or --audit LABELS (not both)")
    model, info, _ = load_checkpoint(Path(args.model))
    ctx.apply_config(args, info.task)
    if args.audit:
        with ctx.progress() as progress:
            result = explain.audit_labels(
                model, info, Path(args.audit), frames_dir=Path(args.frames_dir) if args.frames_dir else None, fps=args.fps,
                band_ms=args.band, class_name=args.class_name, border=args.border, layer=args.layer,
                warn_share=args.warn_share, warn_drop=args.warn_drop, max_frames=args.max_frames, progress=progress,
                model_name=str(args.model))
        _say_audit(ctx, result)
        return ExitStatus.OK

    source = Path(args.input)
    video = None
    picture = None if args.at is not None else explain.read_image(source)
    if picture is None:
        from autotosis import media

        video = media.probe(source)
        if args.at is None:
            raise UsageError(f"{source}: a video needs --at TIME (the moment to explain)")
        if not 0 <= args.at < video.duration_ms:
            raise UsageError(f"--at {args.at / 1000:.3f} s is outside the video (0 to {video.duration_ms / 1000:.3f} s)")
        picture = next((frame for _, frame in media.grab_frames(video, [args.at])), None)
        if picture is None:
            raise UsageError(f"{source}: no frame at {args.at / 1000:.3f} s")
    stem = source.stem if args.at is None else f"{source.stem}.{args.at / 1000:.3f}s"
    out = Path(args.output) if args.output else Path.cwd() / f"{stem}.gradcam.png"
    check_writable(out, args.force)
    if video is not None:
        from autotosis.scan import model_region
        from autotosis.scores import ScoreCache

        region = model_region(video, info, region=args.crop, full_frame=args.full_frame, cache=ScoreCache())
    else:
        region = None if args.full_frame else (args.crop or info.crop)
    result = explain.explain_picture(model, info, picture, region=region, class_name=args.class_name, border=args.border,
                                     layer=args.layer)
    explain.write_png(out, explain.overlay(picture, result), force=args.force)
    ctx.say(f"{result.class_name}: {result.probability:.3f}; Grad-CAM ({result.layer}, {result.grid}x{result.grid} cells): "
            f"{_share(result.border_share)} of the heat on the outer {result.border:.0%} border")
    ctx.say(f"wrote {out}")
    return ExitStatus.OK


def _share(value: float) -> str:
    return "n/a (empty heatmap)" if value != value else f"{value:.0%}"


def _say_audit(ctx: Context, result) -> None:
    ctx.say(f"audited {result.frames} {escape(result.which)} from {len(result.val_clips)} clip(s)"
            + (" [yellow](the model was validated on its training clips)[/]" if result.validated_on_training else ""), markup=True)
    ctx.say(f"Grad-CAM ({result.layer}, {result.grid}x{result.grid} cells): {_share(result.mean_share)} of the heat on the outer "
            f"{result.border:.0%} border (median {_share(result.median_share)}; evenly spread heat: {result.even_share:.0%}, "
            f"heat only on the edge cells: {result.edge_share:.0%})"
            + (f"; {result.empty} frame(s) with an empty heatmap left out" if result.empty else ""))
    ctx.say(f"occlusion: mean {result.class_name} score {result.score:.2f}; border greyed out {result.score_border_masked:.2f} "
            f"({-result.border_drop:+.2f}); centre of the same area greyed out {result.score_centre_masked:.2f} ({-result.centre_drop:+.2f})")
    if result.shortcut_likely:
        ctx.say(f"[yellow]warning:[/] a border shortcut is likely: {escape('; '.join(result.reasons))}. Check the clips for "
                "letterbox bars, logos or overlays that come with the highlights, and crop them away (crop=... in the label file).", markup=True)
    else:
        ctx.say("no sign of a border shortcut")


def cmd_live(ctx: Context, args: argparse.Namespace) -> int:
    import json

    from autotosis import media
    from autotosis.live import LiveOptions, check_replay_dir, run_live
    from autotosis.onnx_backend import load_predictor

    predictor = load_predictor(Path(args.model))
    ctx.apply_config(args, predictor.info.task)
    source = media.live_source(args.input, kind=args.input_kind, realtime=not args.no_realtime, framerate=args.framerate)
    replay_dir = Path(args.replay_dir) if args.replay_dir else None
    if replay_dir is not None:
        check_replay_dir(replay_dir, source.label(), args.force)
    threshold = args.threshold if args.threshold is not None else predictor.info.threshold
    options = LiveOptions(
        threshold=threshold, release=args.release, cooldown_ms=args.cooldown, window_ms=args.window, fps=args.fps,
        class_name=args.class_name, region=args.crop, full_frame=args.full_frame, replay_dir=replay_dir,
        replay_before_ms=args.before, replay_after_ms=args.after, segment_ms=args.segment, duration_ms=args.duration,
        print_scores=args.scores, audio_track=args.audio_track,
    )
    console = ctx.console

    def emit(record: dict) -> None:
        # One JSON object per line, flushed at once: the consumer is usually another program.
        if not ctx.quiet:
            console.print(json.dumps(record, ensure_ascii=False), markup=False, highlight=False, emoji=False, soft_wrap=True)
            console.file.flush()

    run_live(source, predictor, options, emit, force=args.force)
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
    g.add_argument("--crop-borders", action="store_true",
                   help="crop letterbox/pillarbox borders (found with ffmpeg cropdetect) away from clips without a crop=, "
                        "so the model cannot learn which sources have black bars; scanning with the model then crops each "
                        "video's own bars the same way")


def _add_scan_options(p: argparse.ArgumentParser, *, new_videos: bool = True, labelled_clips: bool = False) -> None:
    """The scanning options; ``new_videos``: crop and mode choices for videos without labels;
    ``labelled_clips``: clips of a label file are scanned with their own crops (plus --crop-borders)."""
    g = p.add_argument_group("scanning")
    g.add_argument("--fps", type=positive_float, default=2.0, help="scores per second of video (default: 2)")
    g.add_argument("--batch-size", type=positive_int, default=16, help="frames per inference batch (default: 16)")
    g.add_argument("--no-cache", action="store_true", help="always decode again instead of re-using cached scores")
    g.add_argument("--stall-timeout", type=positive_float, default=600.0, metavar="S",
                   help="give up on a video when ffmpeg delivers no frame for S seconds: a hung disk or network share "
                        "(default: 600)")
    if labelled_clips:
        g.add_argument("--crop-borders", action="store_true",
                       help="labelled clips without a crop: crop letterbox borders away, as `train --crop-borders` "
                            "(default: on when the model was trained with it)")
    if not new_videos:
        return
    g.add_argument("--crop", type=region, metavar="x0,y0,x1,y1",
                   help="region to classify (default: the crop the model was trained on; a model trained with --crop-borders: "
                        "the picture inside this video's letterbox bars)")
    g.add_argument("--full-frame", action="store_true", help="classify the whole frame, ignoring the model's crop")
    g.add_argument("--mode", choices=("auto", "dense", "coarse"), default="auto",
                   help="dense: decode and score the whole video; coarse: score the keyframes first, then decode densely "
                        "only around keyframes that might show an event (several times faster on long VODs; can miss an "
                        "event shorter than the keyframe interval); auto: coarse for videos of 10 minutes or more (default)")
    g.add_argument("--coarse-threshold", type=probability, metavar="P",
                   help="coarse mode: keyframes scoring at least P are looked at closely (default: a quarter of the "
                        "model's threshold)")


def _add_event_rule_options(g, what: str) -> None:
    """The event rules training calibrates (segments.CALIBRATED_FIELDS but the threshold): given, or the model's."""
    g.add_argument("--smooth", type=duration_ms, metavar="S",
                   help=f"average the scores over this window before finding {what} (default: the model's calibrated value, else 0)")
    g.add_argument("--min-length", type=duration_ms, metavar="S",
                   help=f"drop {what} shorter than this (default: the model's calibrated value, else 1)")
    g.add_argument("--merge-gap", type=duration_ms, metavar="S",
                   help=f"join {what} closer than this (default: the model's calibrated value, else 2)")


def _add_event_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("events (times in seconds or m:ss)")
    g.add_argument("--class", dest="class_name", metavar="NAME", help="class to find events for (default: the task's class)")
    g.add_argument("--threshold", type=probability,
                   help="start an event when the score reaches this (default: the model's, chosen by cross-validation when "
                        "it was trained; 0.5 for older models)")
    g.add_argument("--release", type=probability, help="hysteresis: stay in an event while the score is above this (default: threshold)")
    _add_event_rule_options(g, "events")
    g.add_argument("--pad-before", type=duration_ms, default=1000, metavar="S", help="lead-in before each event (default: 1)")
    g.add_argument("--pad-after", type=duration_ms, default=1000, metavar="S", help="tail after each event (default: 1)")
    g.add_argument("--max-length", type=duration_ms, metavar="S", help="trim longer events around their peak")
    g.add_argument("--top-k", type=positive_int, metavar="K",
                   help="the K best moments whatever the threshold: events above it with the highest peaks, and when "
                        "fewer than K pass it, the best remaining peaks too")
    g.add_argument("--top-percent", type=positive_float, metavar="P",
                   help="instead of a threshold (not together with --threshold), keep the top P%% of 5-second bins "
                        "(and their neighbours), like the original tool")


def _add_render_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("rendering")
    g.add_argument("--size", type=frame_size, metavar="WxH", help="output size (default: the source's)")
    g.add_argument("--out-fps", type=frame_rate, metavar="FPS", help="output frame rate (default: the source's, at most 60)")
    g.add_argument("--title", metavar="TEXT", help="add a title card with this text")
    g.add_argument("--no-overlay", action="store_true", help="do not draw the confidence text")
    g.add_argument("--chapters", action="store_true",
                   help="make each event a chapter of the reel (players list them; titles like 'rage 0.87 @ 0:12:03') "
                        "and write the same chapters to REEL.youtube.txt for a YouTube description")
    _add_audio_track_option(g, "the reel")


AUDIO_TRACK_HELP = ("{what}'s sound: 'mix' mixes every audio track of the source at its own level, with a limiter "
                    "against clipping (OBS often records the microphone and the game as separate tracks); N takes "
                    "only the Nth audio track, numbered from 1 in the file's order (default: mix)")


def audio_track(text: str) -> int | None:
    """--audio-track: ``mix`` (None) or a track number from 1."""
    from autotosis.render import parse_audio_track

    try:
        return parse_audio_track(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (give mix, or a track number from 1)") from None


def _add_audio_track_option(g, what: str) -> None:
    g.add_argument("--audio-track", type=audio_track, default=None, metavar="N|mix", help=AUDIO_TRACK_HELP.format(what=what))


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

    # The global options are accepted after the command too (`autotosis train ... --debug`);
    # SUPPRESS keeps a command from resetting what was given before it.
    common = argparse.ArgumentParser(add_help=False)
    g = common.add_argument_group("general")
    g.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks and ffmpeg's messages on errors")
    g.add_argument("--progress", choices=("auto", "bar", "json", "none"), default=argparse.SUPPRESS,
                   help="progress display: bar on a terminal (auto), JSON lines on stderr, or none")
    g.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help="print only errors")

    def add(name: str, handler: Callable, help_text: str, description: str, parent=commands) -> argparse.ArgumentParser:
        p = parent.add_parser(name, help=help_text, description=description, formatter_class=formatter, epilog=EXIT_CODES_HELP,
                              parents=[common])
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
            "(start<TAB>end<TAB>text, one file per clip) into the autotosis label format. An Audacity label's text is\n"
            "its class (rage, pog; several classes make a multi-class file; '~' before it = unsure); point labels\n"
            "become --point-window spans. Without -o the result is printed.", labels_commands)
    p.add_argument("source", metavar="SOURCE", help="data.csv or an Audacity label export (.txt)")
    p.add_argument("--format", choices=("auto", "csv", "audacity"), default="auto", help="input format (default: by extension)")
    p.add_argument("--clip", metavar="VIDEO", help="for Audacity tracks: the clip the times refer to")
    p.add_argument("--crop", type=region, metavar="x0,y0,x1,y1", help="for Audacity tracks: face-cam crop to write")
    p.add_argument("--point-window", type=duration_ms, default=2000, metavar="S",
                   help="for Audacity tracks: a point label becomes a span this long centred on it; 0 refuses point "
                        "labels (default: 2)")
    _add_output(p, "label file to write (default: print to stdout)")

    p = add("frames", cmd_frames, "extract training frames from a label file",
            "Decode every labelled clip with ffmpeg (crop + scale in the decoder) into compact uint8 shards.\n"
            "Frames near span edges and inside ~unsure spans are marked ignored. Unchanged clips are re-used.")
    p.add_argument("labels", metavar="LABELS", help="label file")
    p.add_argument("--out", metavar="DIR", help="where shards go (default: .autotosis/frames/TASK beside the label file)")
    _add_frame_options(p)

    p = add("train", cmd_train, "train a classifier from a label file or a folder of images",
            "Train a ResNet18 on the CPU from a label file, using every labelled clip:\n"
            "  1. cross-validation by clip (--folds, default 3): each fold's model trains without some clips and\n"
            "     scores them, so every clip gets scores from a model that never saw it (frames of one clip never\n"
            "     end up on both sides);\n"
            "  2. on those scores the threshold and the event rules (smoothing, minimum length, merge gap) are\n"
            "     chosen where they find the labelled highlights best as events; they are stored in the checkpoint\n"
            "     and `events`, `reel`, `batch` and `shorts` use them unless you give --threshold etc.;\n"
            "  3. frames of the clips' negatives that fooled the fold models (look-alike moments) are drawn\n"
            "     --hard-negatives times as often in the final fit on every clip.\n"
            "Training length is set by the data (3 passes over 2,000 frames, fewer per frame with more: 6,000 to\n"
            "30,000 images; --epochs sets it; each fold model makes as many passes over its clips), with a warm-up\n"
            "and a cosine learning-rate schedule; the end of the schedule is kept. The plan and\n"
            "an estimated time are printed first, then a summary: per-fold table, the chosen rules and why, and the\n"
            "clips the model gets most wrong. With --folds 0, or too few clips, one run with a validation split\n"
            "(--val-fraction) is made instead.\n"
            "A label file with '# classes=a,b' and spans like a:12-18 trains a multi-class model (one run).\n"
            "\n"
            "Instead of a label file, LABELS may be a folder of images (see `autotosis sample`): one sub-folder per\n"
            "class (DIR/background/*.jpg, DIR/rage/*.png, ...; 'background' first, the other classes by name;\n"
            "folders named 'unsorted' or starting with . or _ are skipped). Validation is then split by scene:\n"
            "an image in a sub-folder of its class folder belongs to the scene named by that sub-folder, any other\n"
            "image to the scene named by its file name up to the last '_' (vod1_t000125500.jpg -> vod1, so all\n"
            "frames sampled from one video are one scene); a name without '_' is a scene of its own.\n"
            "\n"
            "Examples: autotosis train labels/rage.txt -o rage.pt\n"
            "          autotosis train studios/ -o studios.pt --crop 0.78,0.13,0.97,0.37")
    p.add_argument("labels", metavar="LABELS", help="label file, or a folder of images with one sub-folder per class")
    _add_output(p, "checkpoint to write (.pt); the last epoch's state also goes to <PATH stem>.last.pt for --resume", required=True)
    g = p.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int,
                   help="passes over the training frames in the final fit (default: set by the data, see above)")
    g.add_argument("--folds", type=int, default=3, metavar="K",
                   help="clip-grouped cross-validation folds that choose the threshold and event rules and find hard "
                        "negatives (default: 3; 0: one run with a validation split)")
    g.add_argument("--hard-negatives", type=positive_float, default=3.0, metavar="X",
                   help="draw negative frames that fooled the fold models X times as often in the final fit "
                        "(default: 3; 1: off)")
    g.add_argument("--batch-size", type=positive_int, default=32, help="(default: 32)")
    g.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (default: 0.001)")
    g.add_argument("--weights", default="none", metavar="none|imagenet|PATH",
                   help="initial weights: none (random), imagenet (torchvision's cached file; nothing is downloaded), or a checkpoint")
    g.add_argument("--freeze", choices=("none", "layer4", "fc"), default="none",
                   help="train everything (none), only layer4 + the classifier (layer4), or only the classifier (fc)")
    g.add_argument("--no-balance", action="store_true", help="sample frames as they come instead of class-balanced")
    g.add_argument("--no-augment", action="store_true", help="turn off the light shift/scale/brightness augmentation")
    g.add_argument("--val-fraction", type=probability, default=0.25,
                   help="with --folds 0: fraction of clips held out for validation (default: 0.25)")
    g.add_argument("--select", choices=("last", "loss", "f1", "precision"), default="last",
                   help="with --folds 0: keep the last epoch (default), or the one with the best validation loss, F1 "
                        "or precision (noisy with few validation clips)")
    g.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives the same model (default: 0)")
    g.add_argument("--max-frames", type=positive_int, metavar="N", help="at most N frames per epoch")
    g.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")
    g.add_argument("--resume", metavar="CHECKPOINT", help="continue an interrupted run from the <output stem>.last.pt it wrote")
    g.add_argument("--frames-dir", metavar="DIR", help="where training frames are cached (see `frames --out`)")
    _add_frame_options(p)
    g = p.add_argument_group("leak guard")
    g.add_argument("--leak-distance", type=int, default=2, metavar="BITS",
                   help="warn when validation frames have a near-duplicate among the training frames: 8x8 average "
                        "hashes at most BITS apart (default: 2; the same scene on both sides makes validation optimistic)")
    g.add_argument("--no-leak-check", action="store_true", help="skip the near-duplicate check")
    g = p.add_argument_group("image folders (DIR/CLASS/*.png|jpg instead of a label file)")
    g.add_argument("--task", metavar="NAME", help="task name (default: the folder's name)")
    g.add_argument("--crop", type=region, metavar="x0,y0,x1,y1", help="region of each image to train on (default: the whole image)")

    p = add("eval", cmd_eval, "measure a model on labelled clips: frame and event precision/recall/F1, per clip",
            "Scan every clip of a label file with the model (scores are cached, so a second run is instant) and\n"
            "compare with the labels, the way training reads them: samples within --band of a span edge and inside\n"
            "~unsure spans are not counted.\n"
            "  frame level: a sample is positive when its score reaches the threshold; precision, recall, F1, and\n"
            "               average precision (AP) over the scores;\n"
            "  event level: events are found as `autotosis events` finds them (without padding) and an event\n"
            "               matches a labelled span when their IoU reaches --iou (one to one); a predicted event\n"
            "               lying mostly in ~unsure spans is not counted.\n"
            "Each clip is scanned with the crop of its label line (the whole frame without one). A per-clip table,\n"
            "worst first, shows which clips fail (red: F1 below 0.5).\n"
            "LABELS may also be a folder of images with one sub-folder per class (as `train` takes it): images get\n"
            "frame-level scores only, per scene, cropped with the model's crop.\n"
            "Example: autotosis eval labels/rage.txt --model rage.pt --json rage-eval.json")
    p.add_argument("labels", metavar="LABELS", help="label file, or a folder of images with one sub-folder per class")
    p.add_argument("--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train`")
    p.add_argument("--json", metavar="FILE", help="also write the full report (totals and every clip) as JSON")
    p.add_argument("--force", action="store_true", help="overwrite the --json file if it exists")
    g = p.add_argument_group("evaluation")
    g.add_argument("--class", dest="class_name", metavar="NAME", help="class to evaluate (default: every class but background)")
    g.add_argument("--threshold", type=probability,
                   help="score threshold for frames and events (default: the model's, as `events` uses it)")
    g.add_argument("--iou", type=probability, default=0.3, help="an event matches a labelled span at this IoU or more (default: 0.3)")
    g.add_argument("--band", type=duration_ms, default=500, metavar="SECONDS",
                   help="samples this close to a span edge are not counted, as in training (default: 0.5)")
    _add_event_rule_options(g, "predicted events")
    _add_scan_options(p, new_videos=False, labelled_clips=True)

    p = add("review", cmd_review, "cut the model's events into review clips and add their lines to the label file",
            "The hard-example loop. For each VIDEO, the model's events (found as `autotosis events` finds them; the\n"
            "padding is the context around each event) are cut into short clips OUT/iterN_<video>_hK.mp4, and a\n"
            "marked section with one line per clip, the predicted spans filled in, is appended to the --labels file\n"
            "(atomically, only if the result parses). Watch each clip, fix or delete its spans (a line without spans\n"
            "says 'no highlight here'), then train again. N counts up from the label file's earlier reviews.\n"
            "\n"
            "--hard-negatives LABELS scans the clips of a label file and saves the frames the model gets wrong with\n"
            "at least --min-confidence into OUT/hard-examples/, full size, named <confidence>_<predicted>-not-<labelled>_\n"
            "<clip>_t<ms>.jpg, plus contact_sheet.jpg (the model's crop outlined).\n"
            "\n"
            "Examples: autotosis review vod7.mp4 --model rage.pt --labels labels/rage.txt --top-k 20\n"
            "          autotosis review --model rage.pt --hard-negatives labels/rage.txt")
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="new videos to cut review clips from")
    p.add_argument("--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train`")
    p.add_argument("--labels", metavar="LABELS", help="label file to add the review clips' lines to")
    p.add_argument("-o", "--output", metavar="DIR", help="folder for review clips and hard-examples/ (default: review/ beside the label file)")
    p.add_argument("--iteration", type=positive_int, metavar="N", help="review round in the clip names (default: one more than the last)")
    p.add_argument("--force", action="store_true", help="overwrite clips and images of the same name")
    g = p.add_argument_group("hard examples")
    g.add_argument("--hard-negatives", metavar="LABELS", help="save confidently wrong frames of this label file's clips")
    g.add_argument("--min-confidence", type=probability, default=0.8, help="only frames the model is at least this sure of (default: 0.8)")
    g.add_argument("--max-images", type=positive_int, default=100, metavar="N", help="at most N images, the most confident (default: 100)")
    g.add_argument("--band", type=duration_ms, default=500, metavar="SECONDS",
                   help="frames this close to a span edge are not judged, as in training (default: 0.5)")
    _add_scan_options(p, labelled_clips=True)
    _add_event_options(p)

    p = add("sample", cmd_sample, "save random frames of videos, to label them by sorting into class folders",
            "Save N random frames of the videos (seeded: the same seed picks the same frames), full size with square\n"
            "pixels, into OUT/unsorted/ as VIDEONAME_tMILLISECONDS.jpg. Longer videos get proportionally more frames.\n"
            "Bootstrap labelling: move each image into a folder per class (OUT/background/, OUT/rage/, ...), then\n"
            "train on the folder; `autotosis train --help` says how images are grouped into scenes for validation.\n"
            "Nothing is written when an image of that name exists (use --force).\n"
            "Example: autotosis sample vod1.mp4 vod2.mp4 -n 500 --seed 1 -o bootstrap --classes background,rage")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("-n", "--count", type=positive_int, default=500, metavar="N", help="how many frames (default: 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed: which frames are picked (default: 0)")
    p.add_argument("-o", "--output", default="samples", metavar="DIR",
                   help="data set folder; images go to DIR/unsorted/ (default: ./samples)")
    p.add_argument("--format", dest="image_format", choices=("jpg", "png"), default="jpg",
                   help="image format: jpg (quality 92, default) or png (lossless, larger)")
    p.add_argument("--classes", metavar="A,B,...", help="also create these (empty) class folders to sort the images into")
    p.add_argument("--force", action="store_true", help="overwrite images of the same name")

    p = add("scan", cmd_scan, "score a video with a trained model",
            "Stream a video through ffmpeg (crop + scale in the decoder, no image files) and score it in batches.\n"
            "Writes times (from presentation timestamps) and a probability per class. Results are cached.")
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train` (or an .onnx export)")
    p.add_argument("--backend", choices=("torch", "onnx"),
                   help="run the model with PyTorch or onnxruntime; onnx needs a file from `autotosis export-onnx` "
                        "(default: onnx for a .onnx model, torch otherwise)")
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

    p = add("batch", cmd_batch, "many VODs: a reel and report each, plus a best-of reel (resumable, parallel, Ray)",
            "Scan every VOD and write its scores, events, reel and HTML report into DIR/<VOD name>/, then cut the best\n"
            "events of all VODs into DIR/best-of.mp4 (a title card names each source; DIR/best-of.json lists the clips).\n"
            "DIR/manifest.jsonl records each VOD's state: run the same command again after Ctrl-C, a crash or kill -9\n"
            "and finished VODs are skipped, unfinished and failed ones redone (their scans come from the score cache).\n"
            "A VOD that fails is recorded with its error and the batch goes on; exit status 8 says some failed.\n"
            "Examples: autotosis batch vods/ --model rage.pt --out highlights --max-duration 10:00\n"
            "          autotosis batch week.txt 'archive/2024-*.mkv' --model rage.pt --out week --order score\n"
            "          autotosis batch /shared/vods --model /shared/rage.pt --out /shared/out --engine ray --address auto")
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="video files, folders (searched recursively), globs (quoted), or .txt files listing these, one a line")
    p.add_argument("--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train`")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (made if missing); the same DIR resumes a batch")
    p.add_argument("--force", action="store_true",
                   help="redo VODs that DIR holds from other settings or another model, and write into folders it did not make")
    g = p.add_argument_group("best-of reel")
    g.add_argument("--order", choices=("time", "score"), default="time",
                   help="time: VOD by VOD in input order (a folder's files sorted by name), each in time order; "
                        "score: highest peak first (default: time)")
    g.add_argument("--max-duration", type=duration_ms, metavar="S",
                   help="longest best-of reel, title cards included: the highest-scoring events that fit are kept "
                        "(default: every event)")
    g = p.add_argument_group("engine")
    g.add_argument("--engine", choices=("local", "ray"), default="local",
                   help="local: a process pool on this machine; ray: Ray tasks on a cluster (--address) or a local "
                        "Ray (needs the batch-ray extra) (default: local)")
    g.add_argument("--workers", type=positive_int, metavar="N",
                   help="VODs processed at once (default: one per 2 CPU cores, so 1 on a 2-core machine: one "
                        "worker's scan already keeps two cores busy, ffmpeg decoding beside torch scoring, and a second "
                        "worker gained nothing there in benchmarks/batch.py; with --address: as many as the cluster's "
                        "CPUs allow)")
    g.add_argument("--threads", type=positive_int, metavar="N",
                   help="torch threads per worker, also the CPUs each Ray task reserves (default: 1, or a quarter of "
                        "a worker's cores where it has more than 4, as `scan` uses: inference is a small part of a scan "
                        "and ffmpeg's decoding needs the other cores)")
    g.add_argument("--address", metavar="ADDR",
                   help="the Ray cluster to run on, e.g. auto or ray://head:10001 (default: start a local Ray); every "
                        "node must see INPUTs, the model and DIR at the same paths (shared storage)")
    _add_scan_options(p)
    _add_event_options(p)
    _add_render_options(p)

    p = add("shorts", cmd_shorts, "vertical shorts (9:16): one MP4 per highlight, face cam stacked over the game",
            "Make one vertical short per event, named so that a folder sorted by name shows the best first\n"
            "(rank_class_score_sourcetime_source.mp4), plus an index (shorts.json, shorts.csv) in the folder.\n"
            "Layouts: stacked = the face cam at full width on top, the gameplay filling the rest (crop-to-fill,\n"
            "never stretched); game = the gameplay only; fit = the gameplay fitted over a blurred, darkened copy.\n"
            "Length control: events closer than --min are merged, longer than --max trimmed around their peak,\n"
            "shorter than --min widened evenly (inside the video). Regions are x0,y0,x1,y1 as fractions of the\n"
            "displayed frame (0.75,0,1,0.3) or whole pixels of it (1440,0,1920,324).\n"
            "Examples: autotosis shorts vod.mp4 --model rage.pt -o shorts/ --top-k 10\n"
            "          autotosis shorts vod.mp4 --events vod.events.json --cam 0.75,0,1,0.3 -o shorts/")
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="CHECKPOINT", help="scan the videos with this model (cached) and find their events")
    source.add_argument("--events", metavar="EVENTS", help="events file from `autotosis events` (one VIDEO)")
    p.add_argument("--scores", metavar="SCORES", help="with --events: scores file, for a per-half-second confidence text")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the shorts and their index")
    p.add_argument("--force", action="store_true", help="overwrite shorts and index files of the same names")
    g = p.add_argument_group("shorts")
    g.add_argument("--layout", choices=("stacked", "game", "fit"), default="stacked", help="picture layout (default: stacked)")
    g.add_argument("--size", type=frame_size, default=(1080, 1920), metavar="WxH", help="output size (default: 1080x1920)")
    g.add_argument("--cam", type=short_region, metavar="x0,y0,x1,y1",
                   help="face-cam region (default: --crop, else the crop the model was trained on)")
    g.add_argument("--game", type=short_region, metavar="x0,y0,x1,y1", help="gameplay region (default: the whole frame)")
    g.add_argument("--min", type=duration_ms, default=15000, metavar="S", help="shortest short in seconds (default: 15)")
    g.add_argument("--max", type=duration_ms, default=59000, metavar="S", help="longest short in seconds (default: 59)")
    g.add_argument("--title", metavar="TEXT", help="title text across the top of every short")
    g.add_argument("--no-overlay", action="store_true", help="do not draw the confidence text")
    g.add_argument("--out-fps", type=frame_rate, metavar="FPS", help="output frame rate (default: the source's, at most 60)")
    _add_audio_track_option(g, "each short")
    _add_scan_options(p)
    _add_event_options(p)

    p = add("export", cmd_export, "write events for editors and viewers (OTIO, EDL, FCPXML, chapters, SRT, JSON, CSV)",
            "Write an events file in one or more formats at once, each beside the -o base path:\n"
            "  otio      OpenTimelineIO (.otio)          edl       CMX 3600 EDL (.edl)\n"
            "  fcpxml    Final Cut Pro XML (.fcpxml)     chapters  ffmetadata (.ffmetadata) + YouTube block (.youtube.txt)\n"
            "  srt       subtitles with the score (.srt) json/csv  the events themselves (.json/.csv)\n"
            "Timelines hold one clip per event, named with its class and score, in whole frames at the source's\n"
            "frame rate (29.97/59.94 stay exact; a variable frame rate source is placed on the nearest standard rate).\n"
            "otio, edl and fcpxml read the video (named in the events file, or --video) for its rate and length.\n"
            "Example: autotosis export vod.events.json --format otio,edl,chapters -o exports/vod")
    p.add_argument("events", nargs="+", metavar="EVENTS",
                   help="events file(s) from `autotosis events`; several go into one timeline (otio, edl, fcpxml only)")
    p.add_argument("-f", "--format", required=True, metavar="LIST",
                   help="comma-separated: otio, edl, fcpxml, chapters, srt, json, csv, or all")
    p.add_argument("--video", action="append", metavar="VIDEO",
                   help="the source video (default: the one named in the events file); once per events file")
    p.add_argument("--name", metavar="TEXT", help="timeline name (default: autotosis highlights)")
    p.add_argument("-o", "--output", metavar="BASE",
                   help="base path; each format adds its ending (default: ./NAME from the first events file)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")

    p = add("report", cmd_report, "write an HTML report: score timeline, event thumbnails, settings",
            "Write one self-contained HTML file (no network, no files beside it): the score timeline with the\n"
            "threshold and events marked, a card per event with thumbnails at its start, peak and end, and the\n"
            "settings used. Either scan VIDEO with a model, or use an earlier scan's scores (and events) file.\n"
            "Examples: autotosis report vod.mp4 --model rage.pt\n"
            "          autotosis report --scores vod.scores.json --events vod.events.json -o vod.html")
    p.add_argument("video", nargs="?", metavar="VIDEO",
                   help="video to scan (with --model) or to take thumbnails from (default: the one the scores name)")
    p.add_argument("--model", metavar="CHECKPOINT", help="checkpoint from `autotosis train`: scan VIDEO now (cached)")
    p.add_argument("--scores", metavar="SCORES", help="scores file from `autotosis scan`, instead of --model")
    p.add_argument("--events", metavar="EVENTS", help="events file from `autotosis events` (default: found from the scores "
                                                      "with the event options below)")
    p.add_argument("--thumbnails", type=count, default=3, metavar="N", help="thumbnails per event, 0 for none (default: 3)")
    _add_output(p, "HTML file to write (default: ./NAME.report.html)")
    _add_scan_options(p)
    _add_event_options(p)

    p = add("demo", cmd_demo, "run the whole loop on generated sample clips",
            "Generate sample stream clips with known highlights, write a rough label file, train, scan a held-out\n"
            "VOD, render reel.mp4 and print frame- and event-level precision/recall/F1.")
    p.add_argument("--out", default="autotosis-demo", metavar="DIR", help="output folder (default: ./autotosis-demo)")
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument("--epochs", type=positive_int, help="training epochs of the final fit (default: set by the data, as `train` does)")
    p.add_argument("--force", action="store_true", help="replace the outputs of an earlier demo run")

    p = add("export-onnx", cmd_export_onnx, "export a checkpoint to ONNX (for onnxruntime and other runtimes)",
            "Export the checkpoint's ResNet18 to ONNX with its preprocessing and softmax inside the graph:\n"
            "input 'frames' is uint8 RGB (N, SIZE, SIZE, 3), output 'probs' the class probabilities. The model's\n"
            "metadata (task, classes, input size, crop, threshold, ...) is stored in the file's metadata_props.\n"
            "Needs the optional extra: pip install 'autotosis[onnx]'.\n"
            "Example: autotosis export-onnx --model rage.pt -o rage.onnx && autotosis scan vod.mp4 --model rage.onnx")
    p.add_argument("--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train`")
    _add_output(p, "ONNX file to write (.onnx)", required=True)

    p = add("stills", cmd_stills, "save the best distinct stills of a video (or every distinct keyframe)",
            "Decode keyframes only (fast), drop frames that look like any frame kept before them (SSIM or a\n"
            "difference hash on small grey frames), score the rest with the model, and save the top ones that are\n"
            "unlike each other and apart in time, at full resolution with square pixels (anamorphic and rotated\n"
            "sources come out as players show them). File names start with the rank (01 = best), then the score and\n"
            "the time, so sorting by name lists the best first; DIR/stills.json lists them all. Without a model, --keyframes saves every\n"
            "distinct keyframe (frames to label).\n"
            "Examples: autotosis stills film.mkv --model hero.pt -o stills --count 80\n"
            "          autotosis stills footage.mp4 --keyframes -o to-label")
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--model", metavar="CHECKPOINT", help="checkpoint from `autotosis train` (or an .onnx export)")
    p.add_argument("--keyframes", action="store_true",
                   help="save every distinct frame instead of the top --count (no model needed; with one, names carry scores)")
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the images and stills.json")
    p.add_argument("--force", action="store_true", help="overwrite images of the same name in DIR")
    g = p.add_argument_group("choosing")
    g.add_argument("--count", type=positive_int, default=50, help="stills to keep (default: 50)")
    g.add_argument("--min-score", type=probability, metavar="P", help="only frames scoring at least this (default: the model's threshold)")
    g.add_argument("--class", dest="class_name", metavar="NAME", help="class to score (default: the task's class)")
    g.add_argument("--min-gap", type=duration_ms, default=2000, metavar="S", help="stills at least this far apart in time (default: 2)")
    g.add_argument("--diversity", type=float, metavar="X",
                   help="stills less similar than this to each other, same scale as --dedup-threshold (default: 0.85)")
    g = p.add_argument_group("decoding and de-duplication")
    g.add_argument("--fps", type=positive_float, metavar="N", help="sample N frames per second instead of keyframes only "
                                                                   "(for sources with rare keyframes)")
    g.add_argument("--dedup", choices=("ssim", "dhash"), default="ssim", help="similarity measure (default: ssim)")
    g.add_argument("--dedup-threshold", type=float, metavar="X",
                   help="drop a frame at least this similar (1 = identical) to any frame kept before it (default: 0.85)")
    g.add_argument("--crop", type=region, metavar="x0,y0,x1,y1", help="region the model scores (default: the model's crop)")
    g.add_argument("--full-frame", action="store_true", help="score the whole frame, ignoring the model's crop")
    g.add_argument("--format", choices=("jpg", "png"), default="jpg", help="image format (default: jpg, quality 95)")

    p = add("explain", cmd_explain, "show what the model looks at (Grad-CAM), or audit it for border shortcuts",
            "Grad-CAM heatmap of the model's class score over a picture, written as PNG (the picture with the heat\n"
            "blended over the region the model sees). A video needs --at TIME.\n"
            "--audit LABELS measures, over the validation frames of the label file (the clip split training used),\n"
            "how much of the heat lies on the outer border, and how much the score drops when the border (or a\n"
            "centred square of the same area) is greyed out; it warns when a shortcut is likely (letterbox bars,\n"
            "a logo or an overlay that happens to come with the highlights).\n"
            "At 128x128, layer4 is a 4x4 grid whose every cell sees the whole input: its maps are coarse;\n"
            "--layer layer3 gives 8x8.\n"
            "Examples: autotosis explain --model rage.pt frame.png\n"
            "          autotosis explain --model rage.pt vod.mp4 --at 1:02:03 -o why.png\n"
            "          autotosis explain --model rage.pt --audit labels/rage.txt")
    p.add_argument("input", nargs="?", metavar="IMAGE|VIDEO", help="picture to explain (a video needs --at)")
    p.add_argument("--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train` (.pt: Grad-CAM needs PyTorch)")
    p.add_argument("--at", type=duration_ms, metavar="TIME", help="for a video: the moment to explain (seconds or [h:]mm:ss)")
    p.add_argument("--audit", metavar="LABELS", help="audit the model on the validation frames of this label file")
    _add_output(p, "PNG to write (default: ./NAME.gradcam.png)")
    g = p.add_argument_group("explaining")
    g.add_argument("--class", dest="class_name", metavar="NAME", help="class to explain (default: the task's class)")
    g.add_argument("--layer", choices=("layer2", "layer3", "layer4"), default="layer4", help="layer the heat is computed on (default: layer4)")
    g.add_argument("--border", type=probability, default=0.1, metavar="F", help="outer fraction of each side counted as border (default: 0.1)")
    g.add_argument("--crop", type=region, metavar="x0,y0,x1,y1", help="region the model sees (default: the model's crop)")
    g.add_argument("--full-frame", action="store_true", help="explain the whole picture, ignoring the model's crop")
    g = p.add_argument_group("audit")
    g.add_argument("--warn-share", type=probability, default=0.5, metavar="F",
                   help="warn when at least this share of the heat is on the border (default: 0.5)")
    g.add_argument("--warn-drop", type=probability, default=0.25, metavar="D",
                   help="warn when greying out the border lowers the mean score at least this much (default: 0.25)")
    g.add_argument("--max-frames", type=positive_int, default=400, metavar="N", help="audit at most N frames, evenly spread (default: 400)")
    g.add_argument("--frames-dir", metavar="DIR", help="where training frames are cached (as for `train`)")
    g.add_argument("--fps", type=positive_float, default=4.0, help="frames per second taken from each clip, as for `train` (default: 4)")
    g.add_argument("--band", type=duration_ms, default=500, metavar="SECONDS", help="span-edge band, as for `train` (default: 0.5)")

    p = add("live", cmd_live, "watch a live source: events as JSON lines, instant replays",
            "Score a source as it plays: a file (played at its own pace), a capture device (/dev/video0, v4l2),\n"
            "a screen (:0.0 or :0.0+X,Y, x11grab) or a stream URL ffmpeg can open (rtmp://, srt://, http://...).\n"
            "The score is averaged over --window; an event fires when it reaches --threshold, at most once per\n"
            "--cooldown, and again only after it fell below --release. Events go to stdout as JSON lines\n"
            "(start, trigger, replay, end; with --scores every score too). With --replay-dir the last --before\n"
            "seconds are kept in a ring of short segments, and each trigger saves [T - before, T + after) as MP4.\n"
            "Stop with Ctrl-C (replays already triggered are still saved).\n"
            "Example: autotosis live --model rage.pt --input /dev/video0 --threshold 0.85 --replay-dir replays")
    p.add_argument("--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train` (or an .onnx export)")
    p.add_argument("--input", required=True, metavar="SOURCE", help="file, /dev/videoN, :DISPLAY[+X,Y], or URL")
    g = p.add_argument_group("source")
    g.add_argument("--input-kind", choices=("file", "v4l2", "x11grab", "url"), help="what SOURCE is (default: guessed from it)")
    g.add_argument("--framerate", type=frame_rate, metavar="FPS", help="capture rate for devices and screens (default: theirs; x11grab 30)")
    g.add_argument("--no-realtime", action="store_true", help="read a file as fast as possible instead of at its own pace")
    g.add_argument("--duration", type=duration_ms, metavar="S", help="stop after this much of the source (default: until it ends)")
    g = p.add_argument_group("detection")
    g.add_argument("--threshold", type=probability, help="fire when the rolling score reaches this (default: the model's)")
    g.add_argument("--release", type=probability, help="re-arm when the rolling score falls below this (default: threshold)")
    g.add_argument("--cooldown", type=duration_ms, default=1000, metavar="S", help="at least this long between events (default: 1)")
    g.add_argument("--window", type=duration_ms, default=500, metavar="S", help="rolling mean over this long (default: 0.5)")
    g.add_argument("--fps", type=positive_float, default=4.0, help="scores per second (default: 4)")
    g.add_argument("--class", dest="class_name", metavar="NAME", help="class to watch for (default: the task's class)")
    g.add_argument("--crop", type=region, metavar="x0,y0,x1,y1", help="region to classify (default: the model's crop)")
    g.add_argument("--full-frame", action="store_true", help="classify the whole frame, ignoring the model's crop")
    g.add_argument("--scores", action="store_true", help="print every score as a JSON line too")
    g = p.add_argument_group("instant replay")
    g.add_argument("--replay-dir", metavar="DIR", help="save a clip around every event here (default: no replays)")
    g.add_argument("--before", type=duration_ms, default=10_000, metavar="S", help="seconds before the event (default: 10)")
    g.add_argument("--after", type=duration_ms, default=5000, metavar="S", help="seconds after the event (default: 5)")
    g.add_argument("--segment", type=duration_ms, default=1000, metavar="S", help="length of the ring's segments (default: 1)")
    g.add_argument("--force", action="store_true", help="overwrite replays of an earlier run in DIR")
    _add_audio_track_option(g, "each replay")
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


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises Terminated (a KeyboardInterrupt) in the main thread while a command runs."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread (e.g. main() called by a test thread)
        return

    def stop(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


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
        with _sigterm_as_interrupt():
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
    except Terminated:
        print("autotosis: terminated", file=sys.stderr)
        return int(ExitStatus.TERMINATED)
    except KeyboardInterrupt:
        print("autotosis: interrupted", file=sys.stderr)
        return int(ExitStatus.INTERRUPTED)
    except BrokenPipeError:
        return int(ExitStatus.OK)
    except OSError as exc:  # the system refused a file operation outside fsutil's atomic writes
        if debug:
            traceback.print_exc()
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"autotosis: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return int(ExitStatus.FILESYSTEM)
    except Exception as exc:  # a bug: short message unless --debug
        if debug:
            traceback.print_exc()
        print(f"autotosis: internal error: {exc.__class__.__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return int(ExitStatus.ERROR)
