"""Commands that make things from events: render, reel, shorts, export, report, stills."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

from rich.markup import escape

from autotosis.cli.context import Context, counted
from autotosis.cli.detect import event_class, model_task, nothing_found, print_events, say_adaptation
from autotosis.cli.options import (
    AddCommand,
    add_audio_track_option,
    add_event_options,
    add_output,
    add_render_options,
    add_scan_options,
    event_settings,
    render_options,
    scan_options,
)
from autotosis.cli.types import (
    count,
    duration_ms,
    frame_rate,
    frame_size,
    positive_float,
    positive_int,
    probability,
    region,
    short_region,
)
from autotosis.core.errors import DataError, ExitStatus, UsageError
from autotosis.core.timefmt import clock_tenths


def _say_chapters(ctx: Context, result) -> None:
    if result.chapters_text is None:
        return
    chapters = counted(len(result.chapters), "chapter")
    ctx.say(f"{chapters} muxed into the reel; for a YouTube description: {result.chapters_text}")
    for warning in result.warnings:
        ctx.say(f"[yellow]note:[/] {escape(warning)}", markup=True)


def cmd_render(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.detect.scores import read_scores
    from autotosis.detect.segments import read_events
    from autotosis.outputs.render import ReelPart, render_reel

    events = read_events(Path(args.events))
    scores = read_scores(Path(args.scores)) if args.scores else None
    ctx.apply_config(args, scores.task if scores else None)
    with ctx.progress() as progress:
        result = render_reel(
            [ReelPart(Path(args.video), tuple(events.events), scores)],
            Path(args.output),
            render_options(args),
            force=args.force,
            progress=progress,
        )
    ctx.say(f"wrote {result.path} ({counted(len(events.events), 'event')}, {result.duration_ms / 1000:.1f} s)")
    _say_chapters(ctx, result)
    return ExitStatus.OK


def cmd_reel(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.core.fsutil import check_writable
    from autotosis.detect.pipeline import detect_events
    from autotosis.detect.scan import scan_video
    from autotosis.outputs.render import ReelPart, render_reel

    ctx.apply_config(args, model_task(args.model))
    out = Path(args.output)
    check_writable(out, args.force)
    parts, selections = [], []
    with ctx.progress() as progress:
        for video in args.videos:
            scores = scan_video(Path(video), Path(args.model), scan_options(args), progress=progress)
            found = detect_events(scores, event_class(ctx, args, scores), **event_settings(args))
            say_adaptation(ctx, found, Path(video).name)
            print_events(ctx, found.events, f"{counted(len(found.events), 'event')} in {Path(video).name}")
            parts.append(ReelPart(Path(video), found.events, scores))
            selections.append((Path(video).name, scores, found.label, found.params))
        if not any(part.events for part in parts):
            raise DataError(
                "no events to render", hint="; ".join(f"{name}: {nothing_found(*rest)}" for name, *rest in selections)
            )
        options = render_options(args, source_cards=len(args.videos) > 1)
        result = render_reel(parts, out, options, force=args.force, progress=progress)
    event_count = counted(sum(len(p.events) for p in parts), "event")
    ctx.say(f"wrote {result.path} ({event_count}, {result.duration_ms / 1000:.1f} s)")
    _say_chapters(ctx, result)
    return ExitStatus.OK


def _shorts_options(args: argparse.Namespace, fallback_cam, fallback_what: str):
    from autotosis.core.region import RegionArg
    from autotosis.outputs.shorts import Layout, LengthRules, ShortsOptions

    cam, what = (
        (args.cam, "--cam") if args.cam else (RegionArg(tuple(fallback_cam)) if fallback_cam else None, fallback_what)
    )
    return ShortsOptions(
        layout=Layout(args.layout),
        size=args.size,
        cam=cam,
        cam_what=what,
        game=args.game,
        lengths=LengthRules(args.min, args.max),
        title=args.title,
        overlay=args.overlay,
        fps=args.out_fps,
        audio_track=args.audio_track,
    )


def cmd_shorts(ctx: Context, args: argparse.Namespace) -> int:
    from rich.table import Table

    from autotosis.detect.pipeline import detect_events
    from autotosis.detect.scan import scan_video
    from autotosis.detect.scores import read_scores
    from autotosis.detect.segments import read_events
    from autotosis.outputs.shorts import ShortSource, check_sources, render_shorts

    videos = [Path(v) for v in args.videos]
    if args.events:
        if len(videos) != 1:
            raise UsageError(
                "--events holds the events of one video: give exactly one VIDEO", hint="or use --model to scan several"
            )
        events = read_events(Path(args.events))
        scores = read_scores(Path(args.scores)) if args.scores else None
        ctx.apply_config(args, scores.task if scores else None)
        scanned = (scores.scan.region if scores else None) or args.crop
        options = _shorts_options(args, scanned, "the face-cam crop (--crop or the scanned region)")
        check_sources(videos, options)
        sources = [ShortSource(videos[0], tuple(events.events), scores)]
    else:
        from autotosis.model.predictor import read_model_info

        if args.scores:
            raise UsageError("--scores goes with --events; with --model the videos are scanned (and cached)")
        model_info = read_model_info(Path(args.model))
        ctx.apply_config(args, model_info.task)
        options = _shorts_options(args, args.crop or model_info.crop, "the face-cam crop (--crop or the model's)")
        check_sources(videos, options)  # a bad region fails now, not after the scan
        sources = []
    with ctx.progress() as progress:
        if not args.events:
            for video in videos:
                scores = scan_video(video, Path(args.model), scan_options(args), progress=progress)
                found = detect_events(scores, event_class(ctx, args, scores), **event_settings(args))
                say_adaptation(ctx, found, video.name)
                sources.append(ShortSource(video, found.events, scores))
        result = render_shorts(sources, Path(args.output), options, force=args.force, progress=progress)
    if not ctx.quiet:
        table = Table(title=f"{counted(len(result.shorts), 'short')} in {escape(str(result.folder))}")
        for column in ("file", "source", "from", "length", "peak"):
            table.add_column(column, justify="left" if column in ("file", "source") else "right")
        for short in result.shorts:
            w = short.window
            table.add_row(
                escape(short.file_name),
                escape(short.source.name),
                clock_tenths(w.start_ms),
                f"{w.duration_ms / 1000:.1f}s",
                w.event.score_text,
            )
        ctx.console.print(table)
    for warning in result.warnings:
        ctx.say(f"[yellow]warning:[/] {escape(warning)}", markup=True)
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
    from autotosis.detect.segments import read_events
    from autotosis.media import probe
    from autotosis.outputs.exports.files import PER_VIDEO_FORMATS, VIDEO_FORMATS, export_events, parse_formats

    formats = parse_formats(args.format)
    if args.video and len(args.video) != len(args.events):
        raise UsageError(
            f"{len(args.video)} --video for {len(args.events)} events files",
            hint="give --video once per events file, in the same order, or leave it out",
        )
    timelines = [f for f in formats if f in VIDEO_FORMATS]
    sources = []
    for i, name in enumerate(args.events):
        events = read_events(Path(name))
        video = Path(args.video[i]) if args.video else None
        if video is None and timelines:  # the frame rate and length come from the video itself
            video = _recorded_video(events.video, Path(name))
            if video is None:
                what = f"its video {events.video} was not found" if events.video else "it names no video"
                raise UsageError(
                    f"{name}: {', '.join(timelines)} need the source video, but {what}",
                    hint=f"pass --video VIDEO, or export only {', '.join(PER_VIDEO_FORMATS)}",
                )
        sources.append((probe.probe(video) if video is not None else None, events))
    base = Path(args.output) if args.output else Path.cwd() / _file_stem(args.events[0], ".json", ".csv", ".events")
    protect = [Path(p) for p in [*args.events, *(args.video or ())]]
    result = export_events(sources, formats, base, name=args.name, force=args.force, protect=protect)
    for warning in result.warnings:
        ctx.say(f"[yellow]note:[/] {escape(warning)}", markup=True)
    for path in result.paths:
        ctx.say(f"wrote {path}")
    return ExitStatus.OK


_SCAN_DESTS = ("fps", "batch_size", "crop", "full_frame", "no_cache", "mode", "coarse_threshold", "stall_timeout")


_EVENT_DESTS = (
    "class_name",
    "threshold",
    "release",
    "smooth",
    "min_length",
    "merge_gap",
    "pad_before",
    "pad_after",
    "max_length",
    "top_k",
    "top_percent",
)


def _refuse_unused(ctx: Context, dests: Sequence[str], why: str) -> None:
    """An option that would be silently ignored is a mistake: say so."""
    given = [d for d in dests if d in ctx.explicit]
    if given:
        option = ctx.actions[given[0]].option_strings[0]
        raise UsageError(f"{option} has no effect {why}")


def cmd_report(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.core.fsutil import check_writable
    from autotosis.detect.pipeline import detect_events
    from autotosis.detect.scan import scan_video
    from autotosis.detect.scores import read_scores
    from autotosis.detect.segments import read_events
    from autotosis.media import probe
    from autotosis.outputs.report import clips_folder, write_report

    if args.model and args.scores:
        raise UsageError(
            "--model and --scores exclude each other",
            hint="scan VIDEO with --model, or report on an earlier scan with --scores",
        )
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
        ctx.apply_config(args, model_task(args.model))
        settings["model"] = str(args.model)
        settings["scan"] = {"fps": args.fps, "crop": "full frame" if args.full_frame else (args.crop or "the model's")}
    check_writable(out, args.force)  # before the slow part
    if not args.no_clips:
        check_writable(clips_folder(out), args.force)  # an earlier report's clips
    with ctx.progress() as progress:
        if args.model:
            scores = scan_video(Path(args.video), Path(args.model), scan_options(args), progress=progress)
        else:
            scores = read_scores(Path(args.scores))
            ctx.apply_config(args, scores.task or None)
            settings["scores file"] = str(args.scores)
        if args.events:
            events = read_events(Path(args.events))
            settings["events file"] = str(args.events)
        else:
            events = detect_events(scores, event_class(ctx, args, scores), **event_settings(args))
            say_adaptation(ctx, events, scores.video.name)
        video = Path(args.video) if args.video else _recorded_video(scores.video, Path(args.scores))
        if video is None:
            ctx.say(
                f"[yellow]note:[/] the scanned video {escape(str(scores.video))} was not found: no thumbnails "
                "(pass VIDEO to add them)",
                markup=True,
            )
        else:
            settings["video"] = str(video)
        info = probe.probe(video) if video is not None else None
        write_report(
            scores,
            events,
            out,
            video=info,
            settings=settings,
            force=args.force,
            thumbnails_per_event=args.thumbnails,
            clips=not args.no_clips,
            progress=progress,
        )
    print_events(ctx, events.events, f"{counted(len(events.events), 'event')} in {scores.video.name}")
    folder = clips_folder(out)
    made_clips = not args.no_clips and info is not None and events.events
    ctx.say(f"wrote {out}" + (f" and its clips in {folder}{os.sep} (keep them together)" if made_clips else ""))
    return ExitStatus.OK


def cmd_stills(ctx: Context, args: argparse.Namespace) -> int:
    from rich.table import Table

    from autotosis.outputs.stills import StillsOptions, mine_stills

    predictor = None
    if args.model:
        from autotosis.model.predictor import load_predictor

        predictor = load_predictor(Path(args.model))
        ctx.apply_config(args, predictor.info.task)
    options = StillsOptions(
        count=args.count,
        every_distinct=args.keyframes,
        fps=args.fps,
        dedup=args.dedup,
        dedup_threshold=args.dedup_threshold,
        diversity_threshold=args.diversity,
        min_gap_ms=args.min_gap,
        min_score=args.min_score,
        class_name=args.class_name,
        region=args.crop,
        full_frame=args.full_frame,
        image_format=args.format,
    )
    with ctx.progress() as progress:
        result = mine_stills(
            Path(args.video), Path(args.output), options, predictor, force=args.force, progress=progress
        )
    what = "keyframes" if args.fps is None else "frames"
    share = result.dropped / result.decoded if result.decoded else 0.0
    ctx.say(
        f"decoded {result.decoded} {what}, dropped {result.dropped} near-duplicates ({share:.0%}), "
        f"{len(result.candidates)} distinct"
    )
    if predictor is not None:
        ctx.say(
            f"{result.eligible} distinct frames scored at least {result.settings['min_score']:.2f} "
            f"for {result.class_name}"
        )
    if result.stills and not ctx.quiet and not args.keyframes:
        table = Table(title=f"{len(result.stills)} still{'' if len(result.stills) == 1 else 's'}")
        for column in ("#", "time", "score", "size", "file"):
            table.add_column(column, justify="right" if column != "file" else "left")
        for i, still in enumerate(result.stills, 1):
            score = "" if still.score is None else f"{still.score:.3f}"
            table.add_row(
                str(i), clock_tenths(still.time_ms), score, f"{still.width}x{still.height}", escape(still.path.name)
            )
        ctx.console.print(table)
    noun = "still" if len(result.stills) == 1 else "stills"
    ctx.say(f"wrote {len(result.stills)} {noun} and {result.manifest.name} to {result.manifest.parent}")
    if result.not_grabbed:
        ctx.say(
            f"[yellow]warning:[/] {result.not_grabbed} chosen frames could not be read at full size and were not "
            "written (the file has no frame at their times)",
            markup=True,
        )
    return ExitStatus.OK


# --------------------------------------------------------------------------- parsers


def _render_parser(commands, add: AddCommand) -> None:
    p = add(
        "render",
        cmd_render,
        "cut events into a reel",
        "Cut each event out of the video (seek before input, re-encode), normalise size/fps/audio, overlay the\n"
        "confidence text, optionally add a title card, and join everything into one MP4.",
    )
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("events", metavar="EVENTS", help="events file from `autotosis events`")
    p.add_argument(
        "--scores",
        metavar="SCORES",
        help="scores file, for a per-half-second confidence text (default: the event's peak score throughout)",
    )
    add_output(p, "reel to write (.mp4)", required=True)
    add_render_options(p)


def _reel_parser(commands, add: AddCommand) -> None:
    p = add(
        "reel",
        cmd_reel,
        "scan + events + render in one go",
        "Score one or more videos, find their events and render them into one reel.\n"
        "Example: autotosis reel vod1.mp4 vod2.mp4 --model rage.pt -o best.mp4 --top-k 10",
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument(
        "--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train` (or an .onnx export)"
    )
    add_output(p, "reel to write (.mp4)", required=True)
    add_scan_options(p)
    add_event_options(p)
    add_render_options(p)


def _shorts_parser(commands, add: AddCommand) -> None:
    p = add(
        "shorts",
        cmd_shorts,
        "vertical shorts (9:16): one MP4 per highlight, face cam stacked over the game",
        "Make one vertical short per event, named so that a folder sorted by name shows the best first\n"
        "(rank_class_score_sourcetime_source.mp4: the class is the model's task, 'highlight' when that is a\n"
        "generic word such as 'labels'; the score is the event's peak, the number its exports show too),\n"
        "plus an index (shorts.json, shorts.csv) in the folder. The picture carries no score unless\n"
        "--overlay is given; a --title and the --overlay score are kept inside the part of the frame that\n"
        "Shorts/TikTok/Reels leave uncovered (not the top 8%, the right 15% or the bottom 20%).\n"
        "Layouts: stacked = the face cam at full width on top, the gameplay filling the rest (crop-to-fill,\n"
        "never stretched); game = the gameplay only; fit = the gameplay fitted over a blurred, darkened copy.\n"
        "Length control: events closer than --min are merged, longer than --max trimmed around their peak,\n"
        "shorter than --min widened evenly (inside the video). Regions are x0,y0,x1,y1 as fractions of the\n"
        "displayed frame (0.75,0,1,0.3) or whole pixels of it (1440,0,1920,324).\n"
        "Examples: autotosis shorts vod.mp4 --model rage.pt -o shorts/ --top-k 10\n"
        "          autotosis shorts vod.mp4 --events vod.events.json --cam 0.75,0,1,0.3 -o shorts/",
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--model",
        metavar="CHECKPOINT",
        help="scan the videos with this model (.pt or .onnx; cached) and find their events",
    )
    source.add_argument("--events", metavar="EVENTS", help="events file from `autotosis events` (one VIDEO)")
    p.add_argument(
        "--scores",
        metavar="SCORES",
        help="with --events: scores file, for a per-half-second --overlay score (default: the event's peak throughout)",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the shorts and their index")
    p.add_argument("--force", action="store_true", help="overwrite shorts and index files of the same names")
    g = p.add_argument_group("shorts")
    g.add_argument(
        "--layout", choices=("stacked", "game", "fit"), default="stacked", help="picture layout (default: stacked)"
    )
    g.add_argument(
        "--size", type=frame_size, default=(1080, 1920), metavar="WxH", help="output size (default: 1080x1920)"
    )
    g.add_argument(
        "--cam",
        type=short_region,
        metavar="x0,y0,x1,y1",
        help="face-cam region (default: --crop, else the crop the model was trained on)",
    )
    g.add_argument(
        "--game", type=short_region, metavar="x0,y0,x1,y1", help="gameplay region (default: the whole frame)"
    )
    g.add_argument(
        "--min", type=duration_ms, default=15000, metavar="S", help="shortest short in seconds (default: 15)"
    )
    g.add_argument("--max", type=duration_ms, default=59000, metavar="S", help="longest short in seconds (default: 59)")
    g.add_argument(
        "--title",
        metavar="TEXT",
        help="title text at the top of every short, wrapped to fit, below the apps' top bar (default: none)",
    )
    g.add_argument(
        "--overlay",
        action="store_true",
        help="draw the model's score (e.g. 'rage: 0.87', every half second) at the bottom left of the text-safe "
        "area, to check the model; off by default, as a short for posting carries no score",
    )
    # The default since shorts lost the score overlay; still accepted so older scripts keep working.
    g.add_argument("--no-overlay", action="store_true", help=argparse.SUPPRESS)
    g.add_argument(
        "--out-fps", type=frame_rate, metavar="FPS", help="output frame rate (default: the source's, at most 60)"
    )
    add_audio_track_option(g, "each short")
    add_scan_options(p)
    add_event_options(p)


def _export_parser(commands, add: AddCommand) -> None:
    p = add(
        "export",
        cmd_export,
        "write events for editors and viewers (OTIO, EDL, FCPXML, markers, chapters, SRT, JSON, CSV)",
        "Write an events file in one or more formats at once, each beside the -o base path:\n"
        "  otio      OpenTimelineIO (.otio)          edl       CMX 3600 EDL (.edl)\n"
        "  fcpxml    Final Cut Pro XML (.fcpxml)     chapters  ffmetadata (.ffmetadata) "
        "+ YouTube block (.youtube.txt)\n"
        "  markers   every event as a marker on the whole video, the peak score in its note:\n"
        "            DaVinci Resolve marker EDL (.markers.edl: Timelines > Import > Timeline Markers from EDL,\n"
        "            on a timeline starting at 01:00:00:00 with the video at its start), OTIO (.markers.otio)\n"
        "            and FCPXML (.markers.fcpxml)\n"
        "  srt       subtitles with the score (.srt) json/csv  the events themselves (.json/.csv)\n"
        "Timelines hold one clip per event, named with its class and score, in whole frames at the source's\n"
        "frame rate (29.97/59.94 stay exact; a variable frame rate source is placed on the nearest standard rate).\n"
        "otio, edl, fcpxml and markers read the video (named in the events file, or --video) for its rate and\n"
        "length. `autotosis labels import` reads timelines and markers back as labels.\n"
        "Example: autotosis export vod.events.json --format otio,edl,chapters -o exports/vod",
    )
    p.add_argument(
        "events",
        nargs="+",
        metavar="EVENTS",
        help="events file(s) from `autotosis events`; several go into one timeline (otio, edl, fcpxml, markers only)",
    )
    p.add_argument(
        "-f",
        "--format",
        required=True,
        metavar="LIST",
        help="comma-separated: otio, edl, fcpxml, markers, chapters, srt, json, csv, or all",
    )
    p.add_argument(
        "--video",
        action="append",
        metavar="VIDEO",
        help="the source video (default: the one named in the events file); once per events file",
    )
    p.add_argument("--name", metavar="TEXT", help="timeline name (default: autotosis highlights)")
    p.add_argument(
        "-o",
        "--output",
        metavar="BASE",
        help="base path; each format adds its ending (default: ./NAME from the first events file)",
    )
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


def _report_parser(commands, add: AddCommand) -> None:
    p = add(
        "report",
        cmd_report,
        "write an HTML report: score timeline, a clip and thumbnails per event, settings",
        "Write an HTML report (it loads nothing from the network): the score timeline with the threshold and\n"
        "events marked, the frame with the part the model scored outlined, a card per event with a small\n"
        "playable clip and thumbnails at the start, peak and end of the moment itself (without the padding),\n"
        "and the settings used. The clips (MP4) go into a folder beside the page named after it\n"
        "(vod.report.html -> vod.report-clips/): move the two together; --no-clips makes one self-contained\n"
        "file. Either scan VIDEO with a model, or use an earlier scan's scores (and events) file.\n"
        "Examples: autotosis report vod.mp4 --model rage.pt\n"
        "          autotosis report --scores vod.scores.json --events vod.events.json -o vod.html",
    )
    p.add_argument(
        "video",
        nargs="?",
        metavar="VIDEO",
        help="video to scan (with --model) or to take thumbnails from (default: the one the scores name)",
    )
    p.add_argument(
        "--model",
        metavar="CHECKPOINT",
        help="checkpoint from `autotosis train` (or an .onnx export): scan VIDEO now (cached)",
    )
    p.add_argument("--scores", metavar="SCORES", help="scores file from `autotosis scan`, instead of --model")
    p.add_argument(
        "--events",
        metavar="EVENTS",
        help="events file from `autotosis events` (default: found from the scores with the event options below)",
    )
    p.add_argument(
        "--thumbnails", type=count, default=3, metavar="N", help="thumbnails per event, 0 for none (default: 3)"
    )
    p.add_argument(
        "--no-clips",
        action="store_true",
        help="no clip per event: the report is then one self-contained HTML file (default: a small MP4 per event "
        "in NAME-clips/ beside the report)",
    )
    add_output(p, "HTML file to write (default: ./NAME.report.html)")
    add_scan_options(p)
    add_event_options(p)


def _stills_parser(commands, add: AddCommand) -> None:
    p = add(
        "stills",
        cmd_stills,
        "save the best distinct stills of a video (or every distinct keyframe)",
        "Decode keyframes only (fast), drop frames that look like any frame kept before them (SSIM or a\n"
        "difference hash on small grey frames), score the rest with the model, and save the top ones that are\n"
        "unlike each other and apart in time, at full resolution with square pixels (anamorphic and rotated\n"
        "sources come out as players show them). File names start with the rank (01 = best), then the score and\n"
        "the time, so sorting by name lists the best first; DIR/stills.json lists them all. "
        "Without a model, --keyframes saves every\n"
        "distinct keyframe (frames to label).\n"
        "Examples: autotosis stills film.mkv --model hero.pt -o stills --count 80\n"
        "          autotosis stills footage.mp4 --keyframes -o to-label",
    )
    p.add_argument("video", metavar="VIDEO")
    p.add_argument("--model", metavar="CHECKPOINT", help="checkpoint from `autotosis train` (or an .onnx export)")
    p.add_argument(
        "--keyframes",
        action="store_true",
        help="save every distinct frame instead of the top --count (no model needed; with one, names carry scores)",
    )
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="folder for the images and stills.json")
    p.add_argument("--force", action="store_true", help="overwrite images of the same name in DIR")
    g = p.add_argument_group("choosing")
    g.add_argument("--count", type=positive_int, default=50, help="stills to keep (default: 50)")
    g.add_argument(
        "--min-score",
        type=probability,
        metavar="P",
        help="only frames scoring at least this (default: the model's threshold)",
    )
    g.add_argument("--class", dest="class_name", metavar="NAME", help="class to score (default: the task's class)")
    g.add_argument(
        "--min-gap",
        type=duration_ms,
        default=2000,
        metavar="S",
        help="stills at least this far apart in time (default: 2)",
    )
    g.add_argument(
        "--diversity",
        type=float,
        metavar="X",
        help="stills less similar than this to each other, same scale as --dedup-threshold (default: 0.85)",
    )
    g = p.add_argument_group("decoding and de-duplication")
    g.add_argument(
        "--fps",
        type=positive_float,
        metavar="N",
        help="sample N frames per second instead of keyframes only (for sources with rare keyframes)",
    )
    g.add_argument("--dedup", choices=("ssim", "dhash"), default="ssim", help="similarity measure (default: ssim)")
    g.add_argument(
        "--dedup-threshold",
        type=float,
        metavar="X",
        help="drop a frame at least this similar (1 = identical) to any frame kept before it (default: 0.85)",
    )
    g.add_argument(
        "--crop", type=region, metavar="x0,y0,x1,y1", help="region the model scores (default: the model's crop)"
    )
    g.add_argument("--full-frame", action="store_true", help="score the whole frame, ignoring the model's crop")
    g.add_argument("--format", choices=("jpg", "png"), default="jpg", help="image format (default: jpg, quality 95)")


PARSERS = {
    "render": _render_parser,
    "reel": _reel_parser,
    "shorts": _shorts_parser,
    "export": _export_parser,
    "report": _report_parser,
    "stills": _stills_parser,
}


def register(commands, add: AddCommand, name: str) -> None:
    """Add the parser of command ``name`` (a key of PARSERS) to ``commands``."""
    PARSERS[name](commands, add)
