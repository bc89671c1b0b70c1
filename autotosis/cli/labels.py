"""Commands for label data: labels check, labels import, frames, sample."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.markup import escape

from autotosis.cli.context import Context
from autotosis.cli.options import AddCommand, add_frame_options, add_output, frame_options
from autotosis.cli.types import duration_ms, frame_rate, marker_window, positive_int, region
from autotosis.core.errors import ExitStatus, LabelErrors, UsageError


def cmd_labels_check(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.labels.parse import check_labels
    from autotosis.training.dataset import validate_against_media

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


IMPORT_FORMATS = ("auto", "csv", "audacity", "chapters", "youtube", "twitch", "timeline")
_VIDEO_SUFFIXES = {".mp4", ".m4v", ".mov", ".mkv", ".webm", ".flv", ".avi", ".ts", ".mts", ".m2ts"}


def cmd_labels_import(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.core.fsutil import check_writable
    from autotosis.labels.writer import format_labels, write_labels

    source = Path(args.source)
    dest = Path(args.output) if args.output else Path.cwd() / (source.stem + ".txt")
    if args.output:
        check_writable(dest, args.force)
    if not source.exists():
        raise UsageError(f"{source}: no such file")
    if args.point_window is not None and args.marker_window is not None:
        raise UsageError("give --marker-window or --point-window, not both")
    fmt = _import_format(source, args.format)
    if fmt == "csv":
        from autotosis.labels.importers import import_data_csv

        result = import_data_csv(source, dest)
    elif fmt == "audacity":
        from autotosis.labels.importers import DEFAULT_POINT_WINDOW_MS, import_audacity

        if not args.clip:
            raise UsageError("an Audacity label track needs --clip VIDEO (the clip its times refer to)")
        result = import_audacity(
            source,
            Path(args.clip),
            dest,
            crop=args.crop,
            point_window_ms=DEFAULT_POINT_WINDOW_MS if args.point_window is None else args.point_window,
            window=args.marker_window,
        )
    else:
        result = _import_marks(source, dest, fmt, args)
    if fmt in ("csv", "audacity") and args.rest == "unsure":
        from autotosis.labels.marks import rest_unsure

        result = rest_unsure(result)
    for note in result.notes:
        print(f"autotosis: {note}", file=sys.stderr)
    if args.output:
        write_labels(result, dest, force=args.force)
        ctx.say(f"wrote {dest} ({len(result.entries)} clips)")
    else:
        sys.stdout.write(format_labels(result))
    return ExitStatus.OK


def _import_format(source: Path, chosen: str) -> str:
    """The importer for ``source``: ``chosen``, or by its ending (a .txt file by its first lines)."""
    if chosen != "auto":
        return chosen
    from autotosis.labels.mark_sources import guess_text_format
    from autotosis.labels.timelines import TIMELINE_SUFFIXES

    suffix = source.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".json":
        return "twitch"
    if suffix in TIMELINE_SUFFIXES:
        return "timeline"
    if suffix in _VIDEO_SUFFIXES:
        return "chapters"
    return guess_text_format(source)


def _import_marks(source: Path, dest: Path, fmt: str, args: argparse.Namespace):
    """Chapters, chapter lists, Twitch markers/clips and timelines: marks -> a label file."""
    from autotosis.labels.mark_sources import chapter_marks, twitch_marks, youtube_marks
    from autotosis.labels.marks import DEFAULT_MARKER_WINDOW, MarkerWindow, MarkOptions, labels_from_marks
    from autotosis.labels.timelines import ClipFacts, timeline_marks
    from autotosis.media import probe

    known: dict[Path, ClipFacts | None] = {}

    def facts(path: Path) -> ClipFacts | None:
        path = Path(path)
        if path not in known:
            if not path.exists():
                known[path] = None
            else:
                info = probe.probe(path)
                known[path] = ClipFacts(info.duration_ms, info.fps)
        return known[path]

    if args.marker_window is not None:
        window, option = args.marker_window, "--marker-window BEFORE,AFTER"
    elif args.point_window is not None:
        window, option = MarkerWindow.centred(args.point_window), "--point-window SECONDS"
    else:
        window, option = DEFAULT_MARKER_WINDOW, "--marker-window BEFORE,AFTER"
    options = MarkOptions(window=window, titles=args.titles, rest=args.rest, crop=args.crop, window_option=option)
    clip = Path(args.clip) if args.clip else None
    notes: tuple[str, ...] = ()
    if fmt == "chapters":
        video = facts(clip or source)
        chapters = probe.read_chapters(source)
        clips = [chapter_marks(source, chapters, video.duration_ms if video else None, args.chapters, clip=clip)]
    elif fmt == "timeline":
        clips, notes = timeline_marks(source, clip=clip, facts=facts, fps=args.fps, timecode_start=args.timecode_start)
    else:
        if clip is None:
            what = "a chapter list" if fmt == "youtube" else "Twitch markers and clips"
            raise UsageError(f"{what} needs --clip VIDEO (the video its times refer to)")
        duration = facts(clip).duration_ms if facts(clip) is not None else None
        if fmt == "youtube":
            clips = [youtube_marks(source, clip, duration, args.chapters)]
        else:
            clips = [twitch_marks(source, clip, duration)]
    result = labels_from_marks(source, clips, dest, options)
    if notes:
        from dataclasses import replace

        from autotosis.labels.values import LabelNote

        result = replace(result, notes=result.notes + tuple(LabelNote(source, 0, 0, n) for n in notes))
    return result


def load_labels(ctx: Context, args: argparse.Namespace, path: str):
    from autotosis.labels.parse import parse_labels

    labels = parse_labels(path, check_files=True)
    ctx.apply_config(args, labels.task)
    return labels


def cmd_frames(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.training.dataset import extract_frames

    labels = load_labels(ctx, args, args.labels)
    with ctx.progress() as progress:
        frameset = extract_frames(labels, Path(args.out) if args.out else None, frame_options(args), progress=progress)
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


def cmd_sample(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.training.sampling import UNSORTED, sample_frames

    out = Path(args.output)
    names = [n.strip() for n in (args.classes or "").split(",") if n.strip()]
    with ctx.progress() as progress:
        result = sample_frames(
            [Path(v) for v in args.videos],
            args.count,
            args.seed,
            out,
            fmt=args.image_format,
            force=args.force,
            progress=progress,
        )
    for name in names:
        (out / name).mkdir(parents=True, exist_ok=True)
    ctx.say(f"wrote {len(result.written)} frames to {result.folder}")
    if result.missing:
        ctx.say(
            f"[yellow]warning:[/] {result.missing} sampled times had no frame (past a video's last frame)", markup=True
        )
    ctx.say(
        f"next: move each image from {UNSORTED}/ into a folder per class "
        f"({', '.join(names) or 'e.g. background/, rage/'}) "
        f"and run `autotosis train {out} -o MODEL.pt`"
    )
    return ExitStatus.OK


# --------------------------------------------------------------------------- parsers


def _labels_parser(commands, add: AddCommand) -> None:
    labels = commands.add_parser(
        "labels",
        help="check or import label files",
        description="Work with label files (one line per clip: PATH [crop=x0,y0,x1,y1] START-END ...).",
    )
    labels_commands = labels.add_subparsers(dest="labels_command", metavar="ACTION", required=True)
    p = add(
        "check",
        cmd_labels_check,
        "validate label files",
        "Validate label files and report every problem as file:line:col: message.\n"
        "Clips are probed with ffprobe so spans past a clip's end are found too.",
        labels_commands,
    )
    p.add_argument("files", nargs="+", metavar="FILE", help="label files to check")
    p.add_argument(
        "--no-probe", action="store_true", help="only check syntax and that clips exist (do not open the videos)"
    )
    p = add(
        "import",
        cmd_labels_import,
        "labels from marks you already have: data.csv, Audacity, chapters, stream markers, timelines",
        "Turn marks you already have into a label file (one comment line says where each span came from):\n"
        '  csv       the original autotosis data.csv (path "[x0,y0,x1,y1]" "(s,e)" ...)\n'
        "  audacity  an Audacity label track (start<TAB>end<TAB>text) for --clip\n"
        "  chapters  the chapters inside an MP4/MKV/MOV recording (OBS writes them): SOURCE is the video\n"
        "  youtube   a chapter list ('0:00 Intro', '1:02:03 Big fight' lines) for --clip\n"
        "  twitch    Twitch stream markers and clips as JSON from the API or a downloader (TwitchDownloader,\n"
        "            twitch-dl): offsets in seconds from the VOD's start, for --clip\n"
        "  timeline  an edited timeline (.otio/.otioz, .edl, .fcpxml): what the editor kept of each source\n"
        "            becomes its spans; markers on whole sources (export --format markers) and Resolve marker\n"
        "            EDLs (.markers.edl, needs --clip) become marks\n"
        "--format auto picks by the ending (.csv, .json, .otio/.edl/.fcpxml, a video; a .txt by its lines).\n"
        "A point marker is pressed a few seconds after the moment: it becomes a span --marker-window BEFORE,AFTER\n"
        "seconds around it (default 8,2; an Audacity point label: 2 s centred). Titles may name the class\n"
        "(rage; '~' = unsure; background = a negative): see --titles. Marks past the video's end are refused.\n"
        "A clip line is fully labelled: what no span covers is a negative (--rest unsure makes it unsure).\n"
        "Without -o the result is printed.\n"
        "Examples: autotosis labels import vod.mkv -o labels/vod.txt\n"
        "          autotosis labels import markers.json --clip vod.mp4 --marker-window 10,2 -o labels/vod.txt",
        labels_commands,
    )
    p.add_argument("source", metavar="SOURCE", help="the file to import (see the formats above)")
    p.add_argument("--format", choices=IMPORT_FORMATS, default="auto", help="input format (default: by its ending)")
    p.add_argument(
        "--clip",
        metavar="VIDEO",
        help="the video the times refer to (Audacity, youtube, twitch, marker EDLs); for a timeline: only this "
        "video's clips, also when the timeline names it by an old path",
    )
    p.add_argument("--crop", type=region, metavar="x0,y0,x1,y1", help="face-cam crop to write on the clip lines")
    p.add_argument(
        "--marker-window",
        type=marker_window,
        metavar="BEFORE,AFTER",
        help="a point marker becomes a span from BEFORE to AFTER seconds around it (default: 8,2; Audacity "
        "point labels: 1,1); 0,0 refuses point markers",
    )
    p.add_argument(
        "--point-window",
        type=duration_ms,
        metavar="S",
        help="a point marker becomes a span S seconds long centred on it (same as --marker-window S/2,S/2; "
        "the default for Audacity point labels is 2); 0 refuses point markers",
    )
    p.add_argument(
        "--titles",
        choices=("auto", "class", "text"),
        default="auto",
        help="chapter, marker and list titles: class = each names its class (rage; ~ before it = unsure; "
        "background = a negative), text = comments only, auto = class when every title is a class name "
        "(default: auto; a Twitch clip's title is always a comment)",
    )
    p.add_argument(
        "--rest",
        choices=("negative", "unsure"),
        default="negative",
        help="what no imported span covers: negative (default; the clip is fully labelled) or unsure (~: "
        "left out of training), e.g. for a VOD where only some highlights were marked",
    )
    p.add_argument(
        "--chapters",
        choices=("auto", "spans", "points"),
        default="auto",
        help="chapters and chapter-list lines: spans (each to where the next begins), points (markers at "
        "their starts) or auto (default: a chapter with a length of its own is a span; back-to-back "
        "chapters, as every MP4 and chapter list has, are regions when their titles name classes, else "
        "point markers)",
    )
    p.add_argument(
        "--fps",
        type=frame_rate,
        metavar="RATE",
        help="an EDL's timecode rate (default: the video's, as export sets it)",
    )
    p.add_argument(
        "--timecode-start",
        metavar="TC",
        help="a marker EDL's timeline start (default: 01:00:00:00, Resolve's, or 00:00:00:00 when a marker is "
        "before it)",
    )
    add_output(p, "label file to write (default: print to stdout)")


def _frames_parser(commands, add: AddCommand) -> None:
    p = add(
        "frames",
        cmd_frames,
        "extract training frames from a label file",
        "Decode every labelled clip with ffmpeg (crop + scale in the decoder) into compact uint8 shards.\n"
        "Frames near span edges and inside ~unsure spans are marked ignored. Unchanged clips are re-used.",
    )
    p.add_argument("labels", metavar="LABELS", help="label file")
    p.add_argument(
        "-o",
        "--out",
        "--output",
        dest="out",
        metavar="DIR",
        help="where shards go (default: .autotosis/frames/TASK beside the label file)",
    )
    add_frame_options(p)


def _sample_parser(commands, add: AddCommand) -> None:
    p = add(
        "sample",
        cmd_sample,
        "save random frames of videos, to label them by sorting into class folders",
        "Save N random frames of the videos (seeded: the same seed picks the same frames), full size with square\n"
        "pixels, into OUT/unsorted/ as VIDEONAME_tMILLISECONDS.jpg. Longer videos get proportionally more frames.\n"
        "Bootstrap labelling: move each image into a folder per class (OUT/background/, OUT/rage/, ...), then\n"
        "train on the folder; `autotosis train --help` says how images are grouped into scenes for validation.\n"
        "Nothing is written when an image of that name exists (use --force).\n"
        "Example: autotosis sample vod1.mp4 vod2.mp4 -n 500 --seed 1 -o bootstrap --classes background,rage",
    )
    p.add_argument("videos", nargs="+", metavar="VIDEO")
    p.add_argument("-n", "--count", type=positive_int, default=500, metavar="N", help="how many frames (default: 500)")
    p.add_argument("--seed", type=int, default=0, help="random seed: which frames are picked (default: 0)")
    p.add_argument(
        "-o",
        "--output",
        default="samples",
        metavar="DIR",
        help="data set folder; images go to DIR/unsorted/ (default: ./samples)",
    )
    p.add_argument(
        "--format",
        dest="image_format",
        choices=("jpg", "png"),
        default="jpg",
        help="image format: jpg (quality 92, default) or png (lossless, larger)",
    )
    p.add_argument(
        "--classes", metavar="A,B,...", help="also create these (empty) class folders to sort the images into"
    )
    p.add_argument("--force", action="store_true", help="overwrite images of the same name")


PARSERS = {"labels": _labels_parser, "frames": _frames_parser, "sample": _sample_parser}


def register(commands, add: AddCommand, name: str) -> None:
    """Add the parser of command ``name`` (a key of PARSERS) to ``commands``."""
    PARSERS[name](commands, add)
