"""Commands that make and judge models: train, eval, review, explain."""

from __future__ import annotations

import argparse
import contextlib
from pathlib import Path

from rich.markup import escape

from autotosis.cli.context import Context
from autotosis.cli.labels import load_labels
from autotosis.cli.options import (
    AddCommand,
    add_event_options,
    add_event_rule_options,
    add_frame_options,
    add_output,
    add_scan_options,
    event_settings,
    frame_options,
    scan_options,
)
from autotosis.cli.types import (
    count,
    duration_ms,
    non_negative_float,
    port_number,
    positive_float,
    positive_int,
    probability,
    region,
)
from autotosis.core.errors import ExitStatus, ModelError, UsageError


def cmd_train(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.core.fsutil import check_writable
    from autotosis.training.fit import fit, measure_speed, plan_fit
    from autotosis.training.sampling import is_image_folder
    from autotosis.training.train import TrainConfig, _check_config

    make_frames = _training_data(ctx, args)
    out = Path(args.output)
    folds = args.folds
    if is_image_folder(args.labels) and folds:
        if "folds" in ctx.explicit:
            raise UsageError(
                "--folds is for label files: images of a folder have no times to calibrate events on",
                hint="leave --folds out (or give --folds 0) for a folder of images",
            )
        folds = 0
    config = TrainConfig(
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        weights=args.weights,
        freeze=args.freeze,
        balance=not args.no_balance,
        augment=not args.no_augment,
        mixup=args.mixup,
        val_fraction=args.val_fraction,
        select=args.select,
        seed=args.seed,
        max_frames_per_epoch=args.max_frames,
        threads=args.threads,
        leak_distance=None if args.no_leak_check else args.leak_distance,
        folds=folds,
        hard_negatives=args.hard_negatives,
        audio=args.audio,
        balance_colour=not args.raw_colour,
    )
    _check_config(config)
    resume = Path(args.resume) if args.resume else None
    if resume is not None and not resume.exists():
        raise ModelError(
            f"{resume}: no such file", hint="give the <output stem>.last.pt file an interrupted `train` wrote"
        )
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

            ctx.say(
                f"{run:<12} {m.epoch:>5}  {m.train_loss:10.4f}  {show(m.val_loss, 8, 4)}  {show(m.ap, 6, 3)}  "
                f"{show(m.precision, 9, 3)}  {show(m.recall, 6, 3)}  {show(m.f1, 5, 3)}  {m.images_per_s:5.0f}"
            )

        def on_step(done: int, total: int) -> None:
            progress("train", done, total)

        result = fit(
            frameset,
            config,
            out,
            resume=resume,
            force=args.force,
            plan=plan,
            on_stage=lambda text: ctx.say(text),
            on_epoch=on_epoch,
            on_step=on_step,
        )
    for warning in result.warnings:
        ctx.say(f"[yellow]warning:[/] {escape(warning)}", markup=True)
    _print_fit_summary(ctx, result)
    if result.audio is not None:
        ctx.say(f"sound: {'used' if result.audio.used else 'not used'} ({result.audio.reason})")
    ctx.say(f"wrote {result.train.checkpoint}")
    _export_for_scanning(result.train.checkpoint)
    return ExitStatus.OK


def _export_for_scanning(checkpoint: Path) -> None:
    """The ONNX export that scans of this model run (``predictor.load_predictor``), made now that torch is loaded
    anyway: the first scan need not start a process to make it.  A failure only means that scans use torch."""
    from autotosis.model import onnx_backend

    if onnx_backend.available():
        with contextlib.suppress(ModelError, UsageError):
            onnx_backend.cached_export(checkpoint)


def _print_fit_summary(ctx: Context, result) -> None:
    """What a person can act on: the folds, the chosen rules and why, the clips the model gets most wrong."""
    from rich.table import Table

    from autotosis.core.timefmt import label_time

    if ctx.quiet:
        return
    if result.folds:
        table = Table(title="cross-validation (each fold's clips scored by a model that never saw them)")
        for column in (
            "fold",
            "train clips",
            "scored clips",
            "val loss",
            "frame AP",
            "frame F1",
            "event P",
            "event R",
            "event F1",
        ):
            table.add_column(column, justify="right")
        for f in result.folds:
            table.add_row(
                str(f.fold),
                str(f.train_clips),
                str(f.val_clips),
                f"{f.val_loss:.3f}",
                f"{f.ap:.3f}",
                f"{f.frame.f1:.3f}",
                f"{f.event.precision:.2f}",
                f"{f.event.recall:.2f}",
                f"{f.event.f1:.2f}",
            )
        ctx.console.print(table)
    if result.calibration is not None:
        ctx.say(f"event rules stored in the model: {result.calibration.explain()}")
        ctx.say(f"hard negatives: {result.hard_negatives} frames drawn more often in the final fit")
    elif result.train.history and not result.folds:
        history = result.train.history
        kept = next((m for m in history if m.epoch == result.train.best_epoch), history[-1])
        ctx.say(
            f"kept epoch {kept.epoch} of {len(history)} (validation: F1 {kept.f1:.3f}, precision {kept.precision:.3f}, "
            f"recall {kept.recall:.3f}, {len(result.train.val_clips)} clips)"
        )
    for mistakes in result.mistakes[:5]:
        parts = []
        if mistakes.false_events:
            times = ", ".join(label_time(start) for start, _, _ in mistakes.false_events[:4])
            parts.append(
                f"{len(mistakes.false_events)} confident false positive{'s' if len(mistakes.false_events) > 1 else ''} "
                f"at {times} — add more negatives like these"
            )
        if mistakes.missed:
            times = ", ".join(f"{label_time(s)}-{label_time(e)}" for s, e in mistakes.missed[:4])
            parts.append(
                f"{len(mistakes.missed)} missed highlight{'s' if len(mistakes.missed) > 1 else ''} at {times} — "
                "check these spans, or add more like them"
            )
        ctx.say(f"clip {escape(mistakes.name)}: " + "; ".join(parts))


def _training_data(ctx: Context, args: argparse.Namespace):
    """A function progress -> FrameSet for the label file or image folder in args.labels (config applied)."""
    from autotosis.training.dataset import extract_frames
    from autotosis.training.sampling import folder_frames, is_image_folder, read_image_folder, task_name_for

    frames_dir = Path(args.frames_dir) if args.frames_dir else None
    if is_image_folder(args.labels):
        folder = read_image_folder(args.labels)
        task = args.task or task_name_for(folder.root)
        ctx.apply_config(args, task)
        return lambda progress: folder_frames(
            folder,
            size=args.size,
            region=args.crop,
            crop_borders=args.crop_borders,
            out_dir=frames_dir,
            task=task,
            progress=progress,
        )
    for option, dest in (("--task", "task"), ("--crop", "crop")):
        if dest in ctx.explicit:
            raise UsageError(
                f"{option} is for image folders; a label file names its task ('# task=') and crops (crop=) itself"
            )
    labels = load_labels(ctx, args, args.labels)
    return lambda progress: extract_frames(labels, frames_dir, frame_options(args), progress=progress)


def cmd_eval(ctx: Context, args: argparse.Namespace) -> int:
    import json

    from autotosis.core.fsutil import check_writable, write_text_atomic
    from autotosis.detect.pipeline import event_params, picture_only
    from autotosis.labels.parse import parse_labels
    from autotosis.model.predictor import read_model_info
    from autotosis.training.evaluate import (
        EvalOptions,
        check_label_classes,
        evaluate_units,
        report_json,
        score_image_folder,
        score_labelled_clips,
    )
    from autotosis.training.sampling import is_image_folder, read_image_folder

    model_path = Path(args.model)
    info = read_model_info(model_path)
    ctx.apply_config(args, info.task)
    json_out = Path(args.json) if args.json else None
    if json_out is not None:
        check_writable(json_out, args.force)
    crop_borders = args.crop_borders or info.crop_borders  # frame the clips as in training
    # The events `autotosis events` would find with this model: its calibrated rules unless given here
    # (images are scored by the picture alone: its own rules for a model trained with sound).
    rules = event_params(picture_only(info) if is_image_folder(args.labels) else info, **event_settings(args))
    options = EvalOptions(
        iou=args.iou,
        band_ms=args.band,
        threshold=rules.threshold,
        min_length_ms=rules.min_length_ms,
        merge_gap_ms=rules.merge_gap_ms,
        smooth_ms=rules.smooth_ms,
    )
    with ctx.progress() as progress:
        if is_image_folder(args.labels):
            units = score_image_folder(
                read_image_folder(args.labels), model_path, crop_borders=crop_borders, progress=progress
            )
        else:
            labels = parse_labels(args.labels, check_files=True)
            check_label_classes(labels.class_names(), info.classes, str(labels.path))
            units = score_labelled_clips(
                labels, model_path, scan=scan_options(args), crop_borders=crop_borders, progress=progress
            )
    report = evaluate_units(
        units,
        info.classes,
        options,
        task=info.task,
        model=str(model_path),
        default_threshold=info.threshold,
        class_name=args.class_name,
    )
    _print_eval(ctx, report)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(report_json(report), indent=1), force=args.force)
        ctx.say(f"wrote {json_out}")
    return ExitStatus.OK


def _print_eval(ctx: Context, report) -> None:
    from rich.table import Table

    from autotosis.training.evaluate import worst_first

    if ctx.quiet:
        return

    def ratio(value) -> str:
        return "–" if value is None else f"{value:.3f}"

    for r in report.reports:
        table = Table(
            title=f"class {r.class_name!r} per clip, worst first (red: F1 below 0.5)",
            caption="frames: samples counted; P R F1 AP: frame level; events: labelled/found/matched",
        )
        table.add_column("clip", overflow="fold", min_width=16, ratio=1)
        for column in ("line", "frames", "P", "R", "F1", "AP", "events", "event F1"):
            table.add_column(column, justify="right", no_wrap=True)
        for c in worst_first(r.clips):
            bad = (c.event.f1 if c.event is not None else c.frame.f1) < 0.5
            events = "–" if c.event is None else f"{c.events_true}/{c.events_found}/{c.event.tp}"
            table.add_row(
                escape(c.name),
                str(c.line or "–"),
                str(c.counted),
                ratio(c.frame.precision),
                ratio(c.frame.recall),
                ratio(c.frame.f1),
                ratio(c.average_precision),
                events,
                ratio(c.event.f1 if c.event is not None else None),
                style="red" if bad else None,
            )
        ctx.console.print(table)
    summary = Table(
        title=f"task {report.task!r}: frames (score >= threshold; within {report.band_ms / 1000:g} s of a span edge "
        f"or in ~unsure spans not counted) and events (IoU >= {report.iou:g})"
    )
    for column in ("class", "level", "threshold", "P", "R", "F1", "TP", "FP", "FN", "AP", "ECE"):
        summary.add_column(column, justify="left" if column in ("class", "level") else "right", no_wrap=True)
    for r in report.reports:
        for level, m, ap, ece in (
            ("frame", r.frame, ratio(r.average_precision), ratio(r.calibration_error)),
            ("event", r.event, "", ""),
        ):
            if m is None:
                continue
            summary.add_row(
                escape(r.class_name),
                level,
                f"{r.threshold:.2f}",
                ratio(m.precision),
                ratio(m.recall),
                ratio(m.f1),
                str(m.tp),
                str(m.fp),
                str(m.fn),
                ap,
                ece,
            )
    summary.caption = (
        "ECE: expected calibration error of the frame scores (0 = a score of 0.8 is right 80% of the time; "
        "it says how far scores can be read as probabilities)"
    )
    ctx.console.print(summary)


def cmd_review(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.detect.pipeline import event_params
    from autotosis.labels.parse import parse_labels
    from autotosis.model.predictor import read_model_info
    from autotosis.workflows.review import make_review_clips, write_hard_examples

    if not args.videos and not args.hard_negatives:
        raise UsageError("nothing to review: give VIDEOs (with --labels) and/or --hard-negatives LABELS")
    if args.videos and not args.labels:
        raise UsageError("review clips need --labels LABELS: the label file their lines are added to")
    if args.serve and not args.videos:
        raise UsageError("--serve reviews VIDEOs: give the videos to review (and --labels)")
    info = read_model_info(Path(args.model))
    ctx.apply_config(args, info.task)
    session = None
    with ctx.progress() as progress:
        if args.videos and args.serve:
            from autotosis.workflows.review_web import open_review

            labels_path = Path(args.labels)
            session = open_review(
                [Path(v) for v in args.videos],
                Path(args.model),
                labels_path,
                Path(args.output) if args.output else labels_path.parent / "review",
                event_params(info, **event_settings(args)),
                class_name=args.class_name,
                iteration=args.iteration,
                scan=scan_options(args),
                near_misses=args.near_misses,
                force=args.force,
                progress=progress,
            )
        elif args.videos:
            labels_path = Path(args.labels)
            out_dir = Path(args.output) if args.output else labels_path.parent / "review"
            params = event_params(info, **event_settings(args))
            result = make_review_clips(
                [Path(v) for v in args.videos],
                Path(args.model),
                labels_path,
                out_dir,
                params,
                class_name=args.class_name,
                iteration=args.iteration,
                scan=scan_options(args),
                force=args.force,
                progress=progress,
            )
            for clip in result.clips:
                spans = "  ".join(s.as_text() for s in clip.spans)
                ctx.say(f"{clip.path}  {spans}  (peak {clip.peak:.2f})")
            if result.clips:
                ctx.say(
                    f"review iter{result.iteration}: {len(result.clips)} clips; added their lines to {result.labels} — "
                    "watch each clip, fix or delete its spans, then train again"
                )
            else:
                ctx.say("no events found: nothing to review (lower --threshold?)")
        if args.hard_negatives:
            hard_labels = parse_labels(args.hard_negatives, check_files=True)
            base = Path(args.output) if args.output else hard_labels.path.parent / "review"
            hard = write_hard_examples(
                hard_labels,
                Path(args.model),
                base / "hard-examples",
                min_confidence=args.min_confidence,
                limit=args.max_images,
                band_ms=args.band,
                scan=scan_options(args),
                crop_borders=args.crop_borders or info.crop_borders,
                force=args.force,
                progress=progress,
            )
            if hard.sheet is None:
                ctx.say(
                    f"no frame of {hard_labels.path.name} is wrong with confidence {args.min_confidence:.2f} or more"
                )
            else:
                ctx.say(
                    f"wrote {len(hard.images)} confidently wrong frames to {hard.folder} "
                    "(most confident first by name) "
                    f"and a contact sheet {hard.sheet}"
                )
    if session is not None:
        if not session.items:
            ctx.say("no events and no near misses found: nothing to review (lower --threshold?)")
            return ExitStatus.OK
        return _serve_review(ctx, session, args.port)
    return ExitStatus.OK


def _serve_review(ctx: Context, session, port: int) -> int:
    """Serve the review page until Ctrl-C (or SIGTERM), then say what was decided."""
    from autotosis.core.errors import Terminated
    from autotosis.workflows.review_web import EVENT, ReviewServer

    def count(n: int, word: str, words: str) -> str:
        return f"{n} {word if n == 1 else words}"

    events = sum(1 for item in session.items if item.kind == EVENT)
    server = ReviewServer(session, port=port)
    status = ExitStatus.OK
    try:
        server.start()
        ctx.say(
            f"review iter{session.iteration}: {count(events, 'event', 'events')} and "
            f"{count(len(session.items) - events, 'near miss', 'near misses')} in "
            f"{count(len(session.videos), 'video', 'videos')}; every decision goes into {session.label_path} at once"
        )
        ctx.say(f"review page: {server.url}  (open it in a browser; Ctrl-C here stops it)")
        while server.wait(0.5):
            pass
    except Terminated:
        status = ExitStatus.TERMINATED
    except KeyboardInterrupt:
        pass  # Ctrl-C is how the page is closed
    finally:
        server.stop()
    summary = session.summary()
    ctx.say(
        f"stopped: {count(summary['decisions'], 'decision', 'decisions')} in {session.label_path} "
        f"({summary['accepted']} accepted, "
        f"{summary['rejected']} rejected, {summary['unsure']} unsure)"
        + (f"; retrain: {summary['retrain']}" if summary["decisions"] else "")
    )
    return status


def cmd_explain(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.core.fsutil import check_writable
    from autotosis.model.model import load_checkpoint
    from autotosis.training import explain

    if bool(args.audit) == bool(args.input):
        raise UsageError("give IMAGE or VIDEO --at TIME to explain one picture, or --audit LABELS (not both)")
    model, info, _ = load_checkpoint(Path(args.model))
    ctx.apply_config(args, info.task)
    if args.audit:
        with ctx.progress() as progress:
            result = explain.audit_labels(
                model,
                info,
                Path(args.audit),
                frames_dir=Path(args.frames_dir) if args.frames_dir else None,
                fps=args.fps,
                band_ms=args.band,
                class_name=args.class_name,
                border=args.border,
                layer=args.layer,
                warn_share=args.warn_share,
                warn_drop=args.warn_drop,
                max_frames=args.max_frames,
                progress=progress,
                model_name=str(args.model),
            )
        _say_audit(ctx, result)
        return ExitStatus.OK

    source = Path(args.input)
    video = None
    picture = None if args.at is not None else explain.read_image(source)
    if picture is None:
        from autotosis.media import decode, probe

        video = probe.probe(source)
        if args.at is None:
            raise UsageError(f"{source}: a video needs --at TIME (the moment to explain)")
        if not 0 <= args.at < video.duration_ms:
            raise UsageError(
                f"--at {args.at / 1000:.3f} s is outside the video (0 to {video.duration_ms / 1000:.3f} s)"
            )
        picture = next((frame for _, frame in decode.grab_frames(video, [args.at])), None)
        if picture is None:
            raise UsageError(f"{source}: no frame at {args.at / 1000:.3f} s")
    stem = source.stem if args.at is None else f"{source.stem}.{args.at / 1000:.3f}s"
    out = Path(args.output) if args.output else Path.cwd() / f"{stem}.gradcam.png"
    check_writable(out, args.force)
    if video is not None:
        from autotosis.detect.scan import model_region
        from autotosis.detect.scores import ScoreCache

        region = model_region(video, info, region=args.crop, full_frame=args.full_frame, cache=ScoreCache())
    else:
        region = None if args.full_frame else (args.crop or info.crop)
    result = explain.explain_picture(
        model, info, picture, region=region, class_name=args.class_name, border=args.border, layer=args.layer
    )
    explain.write_png(out, explain.overlay(picture, result), force=args.force)
    ctx.say(
        f"{result.class_name}: {result.probability:.3f}; Grad-CAM ({result.layer}, {result.grid}x{result.grid} cells): "
        f"{_share(result.border_share)} of the heat on the outer {result.border:.0%} border"
    )
    ctx.say(f"wrote {out}")
    return ExitStatus.OK


def _share(value: float) -> str:
    return "n/a (empty heatmap)" if value != value else f"{value:.0%}"


def _say_audit(ctx: Context, result) -> None:
    ctx.say(
        f"audited {result.frames} {escape(result.which)} from {len(result.val_clips)} clip(s)"
        + (" [yellow](the model was validated on its training clips)[/]" if result.validated_on_training else ""),
        markup=True,
    )
    ctx.say(
        f"Grad-CAM ({result.layer}, {result.grid}x{result.grid} cells): {_share(result.mean_share)} of the heat "
        f"on the outer {result.border:.0%} border (median {_share(result.median_share)}; "
        f"evenly spread heat: {result.even_share:.0%}, "
        f"heat only on the edge cells: {result.edge_share:.0%})"
        + (f"; {result.empty} frame(s) with an empty heatmap left out" if result.empty else "")
    )
    ctx.say(
        f"occlusion: mean {result.class_name} score {result.score:.2f}; "
        f"border greyed out {result.score_border_masked:.2f} ({-result.border_drop:+.2f}); "
        f"centre of the same area greyed out {result.score_centre_masked:.2f} ({-result.centre_drop:+.2f})"
    )
    if result.shortcut_likely:
        ctx.say(
            f"[yellow]warning:[/] a border shortcut is likely: {escape('; '.join(result.reasons))}. "
            "Check the clips for letterbox bars, logos or overlays that come with the highlights, and crop them away "
            "(crop=... in the label file).",
            markup=True,
        )
    else:
        ctx.say("no sign of a border shortcut")


# --------------------------------------------------------------------------- parsers


def _train_parser(commands, add: AddCommand) -> None:
    p = add(
        "train",
        cmd_train,
        "train a classifier from a label file or a folder of images",
        "Train a ResNet18 on the CPU from a label file, using every labelled clip:\n"
        "  1. cross-validation by clip (--folds, default 3): each fold's model trains without some clips and\n"
        "     scores them, so every clip gets scores from a model that never saw it (frames of one clip never\n"
        "     end up on both sides);\n"
        "  2. on those scores the threshold and the event rules (smoothing, minimum length, merge gap) are\n"
        "     chosen where they find the labelled highlights best as events, the threshold no lower than where\n"
        "     those scores make a highlight more likely than not (unless that would lose more than a third of\n"
        "     the highlights); they are stored in the checkpoint and `events`, `reel`, `batch` and `shorts`\n"
        "     use them unless you give --threshold etc.;\n"
        "  3. frames of the clips' negatives that fooled the fold models (look-alike moments) are drawn\n"
        "     --hard-negatives times as often in the final fit on every clip.\n"
        "Training length is set by the data (2 passes over 2,000 frames, fewer per frame with more: 4,000 to\n"
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
        "          autotosis train studios/ -o studios.pt --crop 0.78,0.13,0.97,0.37",
    )
    p.add_argument("labels", metavar="LABELS", help="label file, or a folder of images with one sub-folder per class")
    add_output(
        p,
        "checkpoint to write (.pt); the last epoch's state also goes to <PATH stem>.last.pt for --resume",
        required=True,
    )
    g = p.add_argument_group("training")
    g.add_argument(
        "--epochs",
        type=positive_int,
        help="passes over the training frames in the final fit (default: set by the data, see above)",
    )
    g.add_argument(
        "--folds",
        type=int,
        default=3,
        metavar="K",
        help="clip-grouped cross-validation folds that choose the threshold and event rules and find hard "
        "negatives (default: 3; 0: one run with a validation split)",
    )
    g.add_argument(
        "--hard-negatives",
        type=positive_float,
        default=3.0,
        metavar="X",
        help="draw negative frames that fooled the fold models X times as often in the final fit (default: 3; 1: off)",
    )
    g.add_argument(
        "--audio",
        choices=("auto", "on", "off"),
        default="auto",  # TrainConfig.audio (tests/test_train.py checks they agree)
        help="sound as a second input: a small logistic combiner of the picture's score with audio features "
        "(loudness against the quietest fifth of each file's sound, frequency bands, a few seconds of context), "
        "fitted on the out-of-fold scores, so the mix is learned from the labels; the event rules are calibrated "
        "again on the combined scores (thresholds from 0.8 up). auto (default): used when every clip has sound, "
        "it raises the out-of-fold event F1 by 0.02 or more over the picture alone (its own rules, and refitted "
        "as the mix is) and it lowers the out-of-fold log-loss (sound unrelated to the highlights does not); "
        "on: always (an error when a clip has no sound; needs cross-validation); off: never. "
        "The checkpoint records the choice and `train` prints why; videos without sound are scanned by the "
        "picture alone",
    )
    g.add_argument("--batch-size", type=positive_int, default=32, help="(default: 32)")
    g.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (default: 0.001)")
    g.add_argument(
        "--weights",
        default="none",
        metavar="none|imagenet|PATH",
        help="initial weights: none (random), imagenet (torchvision's cached file; nothing is downloaded), "
        "or a checkpoint",
    )
    g.add_argument(
        "--freeze",
        choices=("none", "layer4", "fc"),
        default="none",
        help="train everything (none), only layer4 + the classifier (layer4), or only the classifier (fc)",
    )
    g.add_argument("--no-balance", action="store_true", help="sample frames as they come instead of class-balanced")
    g.add_argument("--no-augment", action="store_true", help="turn off the light shift/scale/brightness augmentation")
    g.add_argument(
        "--mixup",
        type=non_negative_float,
        default=0.4,  # TrainConfig.mixup (tests/test_train.py checks they agree)
        metavar="ALPHA",
        help="train on blends of pairs of pictures, the labels blended alike (mixup; blend shares drawn from "
        "Beta(ALPHA, ALPHA)); the model leans less on one confident cue of its training rooms, slightly better "
        "on unseen streamers and rooms on average (default: 0.4; 0: off, as models trained before 2026-12-06)",
    )
    g.add_argument(
        "--raw-colour",
        action="store_true",
        help="show the model raw colours; by default each picture's colour is balanced (grey world) so that a "
        "room's tint, a camera's white balance or coloured light do not move the scores. Use it only when the "
        "highlight is a colour change of the whole cropped picture (a red screen flash)",
    )
    g.add_argument(
        "--val-fraction",
        type=probability,
        default=0.25,
        help="with --folds 0: fraction of clips held out for validation (default: 0.25)",
    )
    g.add_argument(
        "--select",
        choices=("last", "loss", "f1", "precision"),
        default="last",
        help="with --folds 0: keep the last epoch (default), or the one with the best validation loss, F1 "
        "or precision (noisy with few validation clips)",
    )
    g.add_argument(
        "--seed",
        type=int,
        default=0,
        help="random seed; the same seed gives the same model on the same machine and --threads (another CPU "
        "code path, e.g. without AVX2, gives a slightly different one) (default: 0)",
    )
    g.add_argument("--max-frames", type=positive_int, metavar="N", help="at most N frames per epoch")
    g.add_argument("--threads", type=positive_int, help="CPU threads for torch (default: torch's choice)")
    g.add_argument(
        "--resume", metavar="CHECKPOINT", help="continue an interrupted run from the <output stem>.last.pt it wrote"
    )
    g.add_argument("--frames-dir", metavar="DIR", help="where training frames are cached (see `frames --out`)")
    add_frame_options(p)
    g = p.add_argument_group("leak guard")
    g.add_argument(
        "--leak-distance",
        type=int,
        default=2,
        metavar="BITS",
        help="warn when validation frames have a near-duplicate among the training frames: 8x8 average "
        "hashes at most BITS apart (default: 2; the same scene on both sides makes validation optimistic)",
    )
    g.add_argument("--no-leak-check", action="store_true", help="skip the near-duplicate check")
    g = p.add_argument_group("image folders (DIR/CLASS/*.png|jpg instead of a label file)")
    g.add_argument("--task", metavar="NAME", help="task name (default: the folder's name)")
    g.add_argument(
        "--crop", type=region, metavar="x0,y0,x1,y1", help="region of each image to train on (default: the whole image)"
    )


def _eval_parser(commands, add: AddCommand) -> None:
    p = add(
        "eval",
        cmd_eval,
        "measure a model on labelled clips: frame and event precision/recall/F1, per clip",
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
        "Example: autotosis eval labels/rage.txt --model rage.pt --json rage-eval.json",
    )
    p.add_argument("labels", metavar="LABELS", help="label file, or a folder of images with one sub-folder per class")
    p.add_argument(
        "--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train` (or an .onnx export)"
    )
    p.add_argument("--json", metavar="FILE", help="also write the full report (totals and every clip) as JSON")
    p.add_argument("--force", action="store_true", help="overwrite the --json file if it exists")
    g = p.add_argument_group("evaluation")
    g.add_argument(
        "--class", dest="class_name", metavar="NAME", help="class to evaluate (default: every class but background)"
    )
    g.add_argument(
        "--threshold",
        type=probability,
        help="score threshold for frames and events (default: the model's, as `events` uses it)",
    )
    g.add_argument(
        "--iou",
        type=probability,
        default=0.3,
        help="an event matches a labelled span at this IoU or more (default: 0.3)",
    )
    g.add_argument(
        "--band",
        type=duration_ms,
        default=500,
        metavar="SECONDS",
        help="samples this close to a span edge are not counted, as in training (default: 0.5)",
    )
    add_event_rule_options(g, "predicted events")
    add_scan_options(p, new_videos=False, labelled_clips=True)


def _review_parser(commands, add: AddCommand) -> None:
    p = add(
        "review",
        cmd_review,
        "cut the model's events into review clips and add their lines to the label file",
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
        "--serve shows the events and the near misses (the best moments just under the threshold) on a local web\n"
        "page instead, each with a snippet and its score curve, to decide with the keyboard: a accept, r reject,\n"
        "u unsure, [ ] and { } move the start and end by 0.5 s, j/k next/previous. Every decision is written to\n"
        "--labels at once (a hand edit of the file is never overwritten); Ctrl-C stops the page.\n"
        "\n"
        "Examples: autotosis review vod7.mp4 --model rage.pt --labels labels/rage.txt --top-k 20\n"
        "          autotosis review vod7.mp4 --model rage.pt --labels labels/rage.txt --serve\n"
        "          autotosis review --model rage.pt --hard-negatives labels/rage.txt",
    )
    p.add_argument("videos", nargs="*", metavar="VIDEO", help="new videos to cut review clips from")
    p.add_argument(
        "--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train` (or an .onnx export)"
    )
    p.add_argument("--labels", metavar="LABELS", help="label file to add the review clips' lines to")
    p.add_argument(
        "-o",
        "--output",
        metavar="DIR",
        help="folder for review clips and hard-examples/ (default: review/ beside the label file)",
    )
    p.add_argument(
        "--iteration",
        type=positive_int,
        metavar="N",
        help="review round in the clip names (default: one more than the last)",
    )
    p.add_argument("--force", action="store_true", help="overwrite clips and images of the same name")
    g = p.add_argument_group("review page")
    g.add_argument(
        "--serve",
        action="store_true",
        help="review the VIDEOs on a local web page (http://127.0.0.1:PORT/) and write each decision at once",
    )
    g.add_argument(
        "--port",
        type=port_number,
        default=0,
        metavar="PORT",
        help="port of the review page on 127.0.0.1 (default: 0 = a free one; the URL is printed)",
    )
    g.add_argument(
        "--near-misses",
        type=count,
        default=5,
        metavar="N",
        help="with --serve: also show each video's N best moments under the threshold (default: 5)",
    )
    g = p.add_argument_group("hard examples")
    g.add_argument(
        "--hard-negatives", metavar="LABELS", help="save confidently wrong frames of this label file's clips"
    )
    g.add_argument(
        "--min-confidence",
        type=probability,
        default=0.8,
        help="only frames the model is at least this sure of (default: 0.8)",
    )
    g.add_argument(
        "--max-images",
        type=positive_int,
        default=100,
        metavar="N",
        help="at most N images, the most confident (default: 100)",
    )
    g.add_argument(
        "--band",
        type=duration_ms,
        default=500,
        metavar="SECONDS",
        help="frames this close to a span edge are not judged, as in training (default: 0.5)",
    )
    add_scan_options(p, labelled_clips=True)
    add_event_options(p)


def _explain_parser(commands, add: AddCommand) -> None:
    p = add(
        "explain",
        cmd_explain,
        "show what the model looks at (Grad-CAM), or audit it for border shortcuts",
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
        "          autotosis explain --model rage.pt --audit labels/rage.txt",
    )
    p.add_argument("input", nargs="?", metavar="IMAGE|VIDEO", help="picture to explain (a video needs --at)")
    p.add_argument(
        "--model",
        required=True,
        metavar="CHECKPOINT",
        help="checkpoint from `autotosis train` (.pt: Grad-CAM needs PyTorch)",
    )
    p.add_argument(
        "--at", type=duration_ms, metavar="TIME", help="for a video: the moment to explain (seconds or [h:]mm:ss)"
    )
    p.add_argument("--audit", metavar="LABELS", help="audit the model on the validation frames of this label file")
    add_output(p, "PNG to write (default: ./NAME.gradcam.png)")
    g = p.add_argument_group("explaining")
    g.add_argument("--class", dest="class_name", metavar="NAME", help="class to explain (default: the task's class)")
    g.add_argument(
        "--layer",
        choices=("layer2", "layer3", "layer4"),
        default="layer4",
        help="layer the heat is computed on (default: layer4)",
    )
    g.add_argument(
        "--border",
        type=probability,
        default=0.1,
        metavar="F",
        help="outer fraction of each side counted as border (default: 0.1)",
    )
    g.add_argument(
        "--crop", type=region, metavar="x0,y0,x1,y1", help="region the model sees (default: the model's crop)"
    )
    g.add_argument("--full-frame", action="store_true", help="explain the whole picture, ignoring the model's crop")
    g = p.add_argument_group("audit")
    g.add_argument(
        "--warn-share",
        type=probability,
        default=0.5,
        metavar="F",
        help="warn when at least this share of the heat is on the border (default: 0.5)",
    )
    g.add_argument(
        "--warn-drop",
        type=probability,
        default=0.25,
        metavar="D",
        help="warn when greying out the border lowers the mean score at least this much (default: 0.25)",
    )
    g.add_argument(
        "--max-frames",
        type=positive_int,
        default=400,
        metavar="N",
        help="audit at most N frames, evenly spread (default: 400)",
    )
    g.add_argument("--frames-dir", metavar="DIR", help="where training frames are cached (as for `train`)")
    g.add_argument(
        "--fps",
        type=positive_float,
        default=4.0,
        help="frames per second taken from each clip, as for `train` (default: 4)",
    )
    g.add_argument(
        "--band", type=duration_ms, default=500, metavar="SECONDS", help="span-edge band, as for `train` (default: 0.5)"
    )


PARSERS = {"train": _train_parser, "eval": _eval_parser, "review": _review_parser, "explain": _explain_parser}


def register(commands, add: AddCommand, name: str) -> None:
    """Add the parser of command ``name`` (a key of PARSERS) to ``commands``."""
    PARSERS[name](commands, add)
