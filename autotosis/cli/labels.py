"""Commands for label data: labels check, labels import, frames, sample."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.markup import escape

from autotosis.cli.context import Context
from autotosis.cli.options import AddCommand, add_frame_options, add_output, frame_options
from autotosis.cli.types import duration_ms, positive_int, region
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


def cmd_labels_import(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.core.fsutil import check_writable
    from autotosis.labels.importers import import_audacity, import_data_csv
    from autotosis.labels.writer import format_labels, write_labels

    source = Path(args.source)
    dest = Path(args.output) if args.output else Path.cwd() / (source.stem + ".txt")
    if args.output:
        check_writable(dest, args.force)
    if not source.exists():
        raise UsageError(f"{source}: no such file")
    if args.format == "audacity" or (args.format == "auto" and source.suffix.lower() != ".csv"):
        if not args.clip:
            raise UsageError("an Audacity label track needs --clip VIDEO (the clip its times refer to)")
        result = import_audacity(source, Path(args.clip), dest, crop=args.crop, point_window_ms=args.point_window)
    else:
        result = import_data_csv(source, dest)
    for note in result.notes:
        print(f"autotosis: {note}", file=sys.stderr)
    if args.output:
        write_labels(result, dest, force=args.force)
        ctx.say(f"wrote {dest} ({len(result.entries)} clips)")
    else:
        sys.stdout.write(format_labels(result))
    return ExitStatus.OK


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
        "convert data.csv or an Audacity label track",
        'Convert the original autotosis data.csv (path "[x0,y0,x1,y1]" "(s,e)" ...) or an Audacity label track\n'
        "(start<TAB>end<TAB>text, one file per clip) into the autotosis label format. An Audacity label's text is\n"
        "its class (rage, pog; several classes make a multi-class file; '~' before it = unsure); point labels\n"
        "become --point-window spans. Without -o the result is printed.",
        labels_commands,
    )
    p.add_argument("source", metavar="SOURCE", help="data.csv or an Audacity label export (.txt)")
    p.add_argument(
        "--format", choices=("auto", "csv", "audacity"), default="auto", help="input format (default: by extension)"
    )
    p.add_argument("--clip", metavar="VIDEO", help="for Audacity tracks: the clip the times refer to")
    p.add_argument("--crop", type=region, metavar="x0,y0,x1,y1", help="for Audacity tracks: face-cam crop to write")
    p.add_argument(
        "--point-window",
        type=duration_ms,
        default=2000,
        metavar="S",
        help="for Audacity tracks: a point label becomes a span this long centred on it; 0 refuses point "
        "labels (default: 2)",
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
        "--out", metavar="DIR", help="where shards go (default: .autotosis/frames/TASK beside the label file)"
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
