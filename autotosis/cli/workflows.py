"""Commands that run whole workflows: batch (many VODs), demo, live."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.markup import escape

from autotosis.cli.context import Context
from autotosis.cli.options import (
    AddCommand,
    add_audio_track_option,
    add_event_options,
    add_render_options,
    add_scan_options,
    event_settings,
    render_options,
    scan_options,
)
from autotosis.cli.types import duration_ms, frame_rate, positive_float, positive_int, probability, region
from autotosis.core.errors import ExitStatus, UsageError


def default_workers(cpus: int) -> int:
    """VODs at once on this machine: one per two cores, but at least two where there are two cores.

    A VOD's reel and report are single-threaded and a scan leaves some of two cores idle, so on two cores a
    second worker adds VOD-hours per hour: 1.11x for 20 five-minute VODs with today's scan in onnxruntime,
    which keeps both cores busier than the torch scan did (1.85x then; benchmarks/batch.py, BENCHMARKS.md).
    Only two cores were measured; beyond four the rule stays one per two cores (each worker holds ~0.5-0.9 GB).
    """
    return min(max(1, cpus), max(2, cpus // 2))


def cmd_batch(ctx: Context, args: argparse.Namespace) -> int:
    import os

    from autotosis.detect.pipeline import event_params
    from autotosis.model.predictor import read_model_info
    from autotosis.workflows.batch import MANIFEST_NAME, BatchOptions, collect_inputs, run_batch, summary_table
    from autotosis.workflows.engines import import_ray, make_engine

    if args.address and args.engine != "ray":
        raise UsageError("--address is for --engine ray")
    if args.engine == "ray":
        import_ray()  # a missing extra is reported now, not after the inputs were checked
    info = read_model_info(Path(args.model))
    ctx.apply_config(args, info.task)
    out = Path(args.out)
    sources = collect_inputs(args.inputs, exclude=out)
    cpus = os.cpu_count() or 1
    workers = args.workers or (None if args.address else default_workers(cpus))
    share = max(1, cpus // (workers or 1))  # cores per worker on this machine
    # As `scan` does: inference at 2 scores/s is a small part of a scan, the decoder needs the other cores.
    threads = args.threads or (1 if args.address or share <= 4 else share // 4)
    options = BatchOptions(
        out=out,
        model=Path(args.model),
        scan=scan_options(args),
        events=event_params(info, **event_settings(args)),
        class_name=args.class_name,
        render=render_options(args),
        order=args.order,
        max_duration_ms=args.max_duration,
        force=args.force,
        report_clips=not args.no_report_clips,
    )

    def engine():
        return make_engine(args.engine, workers=workers, threads=threads, address=args.address)

    def on_item(item) -> None:
        if item.status == "failed":
            ctx.say(f"[red]failed[/] {escape(item.source.name)}: {escape(item.error or '')}", markup=True)
        elif item.status == "done":
            raised = (
                ""
                if item.raised_from is None
                else f" (threshold {item.threshold_text()}: raised for footage the model scores higher overall "
                "than its training clips)"
            )
            ctx.say(
                f"[green]done[/] {escape(item.source.name)}: {item.events} event{'' if item.events == 1 else 's'}"
                + escape(raised),
                markup=True,
            )

    ctx.say(f"{len(sources)} VOD{'' if len(sources) == 1 else 's'} -> {out} ({args.engine} engine)")
    with ctx.progress() as progress:
        result = run_batch(sources, options, engine, progress=progress, on_item=on_item)
    if not ctx.quiet:
        ctx.console.print(summary_table(result))
    if result.failed:
        failed_vods = sum(item.status == "failed" for item in result.items)
        what = [f"{failed_vods} of {len(result.items)} VODs failed"] if failed_vods else []
        what += ["the best-of reel failed"] if result.best_of.status == "failed" else []
        print(
            f"autotosis: {'; '.join(what)} (errors in the summary and in {result.out / MANIFEST_NAME})", file=sys.stderr
        )
        return ExitStatus.SOME_FAILED
    return ExitStatus.OK


def cmd_demo(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.demo.demo import DemoOptions, run_demo

    options = DemoOptions(out=Path(args.out), seed=args.seed, epochs=args.epochs, force=args.force)
    with ctx.progress() as progress:
        run_demo(
            options,
            say=lambda text: ctx.say(text, markup=True),
            progress=progress,
            console=None if ctx.quiet else ctx.console,
        )
    return ExitStatus.OK


def cmd_live(ctx: Context, args: argparse.Namespace) -> int:
    import json

    from autotosis.detect.pipeline import event_params, picture_only
    from autotosis.media import live
    from autotosis.model.predictor import load_predictor
    from autotosis.workflows.live import LiveOptions, check_replay_dir, run_live

    predictor = load_predictor(Path(args.model))
    ctx.apply_config(args, predictor.info.task)
    source = live.live_source(args.input, kind=args.input_kind, realtime=not args.no_realtime, framerate=args.framerate)
    replay_dir = Path(args.replay_dir) if args.replay_dir else None
    if replay_dir is not None:
        check_replay_dir(replay_dir, source.label(), args.force)
    # Live scores are the picture's alone (no sound combiner): its own rules.
    threshold = event_params(picture_only(predictor.info), threshold=args.threshold).threshold
    options = LiveOptions(
        threshold=threshold,
        release=args.release,
        cooldown_ms=args.cooldown,
        window_ms=args.window,
        fps=args.fps,
        class_name=args.class_name,
        region=args.crop,
        full_frame=args.full_frame,
        replay_dir=replay_dir,
        replay_before_ms=args.before,
        replay_after_ms=args.after,
        segment_ms=args.segment,
        duration_ms=args.duration,
        print_scores=args.scores,
        audio_track=args.audio_track,
    )
    console = ctx.console

    def emit(record: dict) -> None:
        # One JSON object per line, flushed at once: the consumer is usually another program.
        if not ctx.quiet:
            console.print(
                json.dumps(record, ensure_ascii=False), markup=False, highlight=False, emoji=False, soft_wrap=True
            )
            console.file.flush()

    run_live(source, predictor, options, emit, force=args.force)
    return ExitStatus.OK


# --------------------------------------------------------------------------- parsers


def _batch_parser(commands, add: AddCommand) -> None:
    p = add(
        "batch",
        cmd_batch,
        "many VODs: a reel and report each, plus a best-of reel (resumable, parallel, Ray)",
        "Scan every VOD and write its scores, events, reel and HTML report (with a clip per event in\n"
        "report-clips/) into DIR/<VOD name>/, then cut the best\n"
        "events of all VODs into DIR/best-of.mp4 (a title card names each source; DIR/best-of.json lists the clips).\n"
        "DIR/manifest.jsonl records each VOD's state: run the same command again after Ctrl-C, a crash or kill -9\n"
        "and finished VODs are skipped, unfinished and failed ones redone (their scans come from the score cache).\n"
        "A VOD that fails is recorded with its error and the batch goes on; exit status 8 says some failed.\n"
        "Examples: autotosis batch vods/ --model rage.pt --out highlights --max-duration 10:00\n"
        "          autotosis batch week.txt 'archive/2024-*.mkv' --model rage.pt --out week --order score\n"
        "          autotosis batch /shared/vods --model /shared/rage.pt --out /shared/out --engine ray --address auto",
    )
    p.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="video files, folders (searched recursively), globs (quoted), or .txt files listing these, one a line",
    )
    p.add_argument(
        "--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train` (or an .onnx export)"
    )
    p.add_argument(
        "-o",
        "--out",
        "--output",
        dest="out",
        required=True,
        metavar="DIR",
        help="output folder (made if missing); the same DIR resumes a batch",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="redo VODs that DIR holds from other settings or another model, and write into folders it did not make",
    )
    g = p.add_argument_group("best-of reel")
    g.add_argument(
        "--order",
        choices=("time", "score"),
        default="time",
        help="time: VOD by VOD in input order (a folder's files sorted by name), each in time order; "
        "score: highest peak first (default: time)",
    )
    g.add_argument(
        "--max-duration",
        type=duration_ms,
        metavar="S",
        help="longest best-of reel, title cards included: the highest-scoring events that fit are kept "
        "(default: every event)",
    )
    g = p.add_argument_group("engine")
    g.add_argument(
        "--engine",
        choices=("local", "ray"),
        default="local",
        help="local: a process pool on this machine; ray: Ray tasks on a cluster (--address) or a local "
        "Ray (needs the batch-ray extra) (default: local)",
    )
    g.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="VODs processed at once (default: 2 on a machine with 2-4 cores, one per 2 cores beyond, 1 on "
        "one core: on a 2-core machine, 20 five-minute VODs went 1.11x as fast with 2 workers as with 1 "
        "(benchmarks/batch.py); with --address: as many as the cluster's CPUs allow)",
    )
    g.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="torch threads per worker, also the CPUs each Ray task reserves (default: 1, or a quarter of "
        "a worker's cores where it has more than 4, as `scan` uses: inference is a small part of a scan "
        "and ffmpeg's decoding needs the other cores)",
    )
    g.add_argument(
        "--address",
        metavar="ADDR",
        help="the Ray cluster to run on, e.g. auto or ray://head:10001 (default: start a local Ray); every "
        "node must see INPUTs, the model and DIR at the same paths (shared storage)",
    )
    p.add_argument(
        "--no-report-clips",
        action="store_true",
        help="no clip per event beside each VOD's report.html (default: a small MP4 per event in report-clips/)",
    )
    add_scan_options(p)
    add_event_options(p)
    add_render_options(p)


def _demo_parser(commands, add: AddCommand) -> None:
    p = add(
        "demo",
        cmd_demo,
        "run the whole loop on generated sample clips",
        "Generate sample stream clips with known highlights, write a rough label file, train, scan a held-out\n"
        "VOD, render reel.mp4 and print frame- and event-level precision/recall/F1.",
    )
    p.add_argument(
        "-o",
        "--out",
        "--output",
        dest="out",
        default="autotosis-demo",
        metavar="DIR",
        help="output folder (default: ./autotosis-demo)",
    )
    p.add_argument("--seed", type=int, default=0, help="(default: 0)")
    p.add_argument(
        "--epochs",
        type=positive_int,
        help="training epochs of the final fit (default: set by the data, as `train` does)",
    )
    p.add_argument("--force", action="store_true", help="replace the outputs of an earlier demo run")


def _live_parser(commands, add: AddCommand) -> None:
    p = add(
        "live",
        cmd_live,
        "watch a live source: events as JSON lines, instant replays",
        "Score a source as it plays: a file (played at its own pace), a capture device (/dev/video0, v4l2),\n"
        "a screen (:0.0 or :0.0+X,Y, x11grab) or a stream URL ffmpeg can open (rtmp://, srt://, http://...).\n"
        "The score is averaged over --window; an event fires when it reaches --threshold, at most once per\n"
        "--cooldown, and again only after it fell below --release. Events go to stdout as JSON lines\n"
        "(start, trigger, replay, end; with --scores every score too). With --replay-dir the last --before\n"
        "seconds are kept in a ring of short segments, and each trigger saves [T - before, T + after) as MP4.\n"
        "Stop with Ctrl-C (replays already triggered are still saved).\n"
        "Example: autotosis live --model rage.pt --input /dev/video0 --threshold 0.85 --replay-dir replays",
    )
    p.add_argument(
        "--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train` (or an .onnx export)"
    )
    p.add_argument("--input", required=True, metavar="SOURCE", help="file, /dev/videoN, :DISPLAY[+X,Y], or URL")
    g = p.add_argument_group("source")
    g.add_argument(
        "--input-kind", choices=("file", "v4l2", "x11grab", "url"), help="what SOURCE is (default: guessed from it)"
    )
    g.add_argument(
        "--framerate",
        type=frame_rate,
        metavar="FPS",
        help="capture rate for devices and screens (default: theirs; x11grab 30)",
    )
    g.add_argument(
        "--no-realtime", action="store_true", help="read a file as fast as possible instead of at its own pace"
    )
    g.add_argument(
        "--duration", type=duration_ms, metavar="S", help="stop after this much of the source (default: until it ends)"
    )
    g = p.add_argument_group("detection")
    g.add_argument(
        "--threshold", type=probability, help="fire when the rolling score reaches this (default: the model's)"
    )
    g.add_argument(
        "--release", type=probability, help="re-arm when the rolling score falls below this (default: threshold)"
    )
    g.add_argument(
        "--cooldown", type=duration_ms, default=1000, metavar="S", help="at least this long between events (default: 1)"
    )
    g.add_argument(
        "--window", type=duration_ms, default=500, metavar="S", help="rolling mean over this long (default: 0.5)"
    )
    g.add_argument("--fps", type=positive_float, default=4.0, help="scores per second (default: 4)")
    g.add_argument("--class", dest="class_name", metavar="NAME", help="class to watch for (default: the task's class)")
    g.add_argument("--crop", type=region, metavar="x0,y0,x1,y1", help="region to classify (default: the model's crop)")
    g.add_argument("--full-frame", action="store_true", help="classify the whole frame, ignoring the model's crop")
    g.add_argument("--scores", action="store_true", help="print every score as a JSON line too")
    g = p.add_argument_group("instant replay")
    g.add_argument("--replay-dir", metavar="DIR", help="save a clip around every event here (default: no replays)")
    g.add_argument(
        "--before", type=duration_ms, default=10_000, metavar="S", help="seconds before the event (default: 10)"
    )
    g.add_argument("--after", type=duration_ms, default=5000, metavar="S", help="seconds after the event (default: 5)")
    g.add_argument(
        "--segment", type=duration_ms, default=1000, metavar="S", help="length of the ring's segments (default: 1)"
    )
    g.add_argument("--force", action="store_true", help="overwrite replays of an earlier run in DIR")
    add_audio_track_option(g, "each replay")


PARSERS = {"batch": _batch_parser, "demo": _demo_parser, "live": _live_parser}


def register(commands, add: AddCommand, name: str) -> None:
    """Add the parser of command ``name`` (a key of PARSERS) to ``commands``."""
    PARSERS[name](commands, add)
