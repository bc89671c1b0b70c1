"""The hard-example loop: let the model label new videos, and show where it is wrong.

Review clips: the model's events in new videos are cut into short clips
(``iterN_<video>_hK.mp4``, as the original project named them) and a marked section is
appended to the label file, one line per clip with the predicted spans filled in::

    # --- review iter3: autotosis review, model rage.pt, threshold 0.62 ---
    # The spans are the model's guesses: fix the times, delete wrong spans (a line without
    # spans says "no highlight here"), or delete the line to leave the clip out.
    # default crop=0.78,0.13,0.97,0.37
    review/iter3_vod_h1.mp4  0:01-0:06.5  # vod.mp4 1:02:03-1:02:12, peak 0.93
    # --- end of review iter3 ---

The next ``train`` learns from the corrected lines.  The label file is replaced atomically
and only when the new text parses.

Hard examples: frames of labelled clips the model gets confidently wrong, saved full size as
``<rank>_<confidence>_<what>_<clip>_t<ms>.jpg`` (rank 001 = the most confident mistake, so an
ordinary A-Z listing shows the worst first), plus a contact sheet of all of them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autotosis.core.errors import DataError, LabelErrors, UsageError
from autotosis.core.fsutil import atomic_path, check_writable, safe_stem
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.core.region import Region, as_region
from autotosis.core.timefmt import label_time
from autotosis.detect.segments import Event, EventParams
from autotosis.labels.parse import parse_labels, parse_labels_text
from autotosis.labels.values import LabelFile, Span, match_model_classes
from autotosis.labels.writer import format_clip_line
from autotosis.media import decode, probe

if TYPE_CHECKING:
    from autotosis.detect.scan import ScanOptions

_ITER_RE = re.compile(r"(?:^|[/\\])iter(\d+)_")
_SECTION_RE = re.compile(r"^# --- review iter(\d+)\b", re.MULTILINE)
SHEET_COLUMNS = 4
SHEET_THUMB_WIDTH = 320


# --------------------------------------------------------------------------- review clips


@dataclass(frozen=True)
class ReviewClip:
    path: Path  # the clip written
    video: Path  # where it was cut from
    start_ms: int  # its place in the source video
    end_ms: int
    spans: tuple[Span, ...]  # the predicted spans, relative to the clip
    peak: float


@dataclass(frozen=True)
class ReviewResult:
    iteration: int
    clips: tuple[ReviewClip, ...]
    labels: Path
    lines_added: int


@dataclass(frozen=True)
class ClipWindow:
    """One review clip to cut: a padded event and the unpadded predictions inside it."""

    start_ms: int
    end_ms: int
    spans: tuple[tuple[int, int], ...]  # absolute ms, inside [start, end)
    peak: float


def review_windows(windows: Sequence[Event], cores: Sequence[Event]) -> list[ClipWindow]:
    """Pair each padded event with the unpadded events (cut to it) that it holds."""
    out = []
    for window in windows:
        inside = [
            (max(core.start_ms, window.start_ms), min(core.end_ms, window.end_ms))
            for core in cores
            if core.start_ms < window.end_ms and core.end_ms > window.start_ms
        ]
        out.append(ClipWindow(window.start_ms, window.end_ms, tuple(inside), float(window.peak)))
    return out


def next_iteration(label_text: str, raw_paths: Sequence[str], folder: Path) -> int:
    """One more than the highest iteration in the label file's review sections, its clip names
    and the review folder's file names (1 for the first review)."""
    found = [int(m) for m in _SECTION_RE.findall(label_text)]
    found += [int(m.group(1)) for raw in raw_paths if (m := _ITER_RE.search(raw))]
    if folder.is_dir():
        found += [int(m.group(1)) for name in os.listdir(folder) if (m := _ITER_RE.search(name))]
    return max(found, default=0) + 1


def clip_name(iteration: int, video: Path, number: int) -> str:
    """``iter<N>_<video>_h<K>.mp4``: the original project's names for review clips."""
    return f"iter{iteration}_{safe_stem(video)}_h{number}.mp4"


def review_section(
    iteration: int,
    clips: Sequence[ReviewClip],
    label_path: Path,
    *,
    model: str,
    threshold: float,
    crop: Region | None,
) -> str:
    """The text appended to the label file for one review run."""
    lines = section_header(
        iteration,
        "autotosis review",
        model=model,
        threshold=threshold,
        crop=crop,
        explanation=(
            "The spans are the model's guesses: fix the times, delete wrong spans (a line without spans says",
            '"no highlight here"), or delete the line to leave the clip out of training.',
        ),
    )
    for clip in clips:
        where = f"{clip.video.name} {label_time(clip.start_ms)}-{label_time(clip.end_ms)}"
        lines.append(
            f"{format_clip_line(clip.path, clip.spans, label_path)}  # {comment_safe(where)}, peak {clip.peak:.2f}"
        )
    lines.append(section_end(iteration))
    return "\n".join(lines) + "\n"


def section_header(
    iteration: int,
    how: str,
    *,
    model: str,
    threshold: float,
    crop: Region | None,
    explanation: Sequence[str] = (),
) -> list[str]:
    """The first lines of a review section: its start marker, comment lines, the crop of its clips."""
    return [
        f"# --- review iter{iteration}: {comment_safe(how)}, model {comment_safe(model)}, "
        f"threshold {threshold:.2f} ---",
        *(f"# {comment_safe(text)}" for text in explanation),
        f"# default crop={as_region(crop).as_text() if crop is not None else 'none'}",
    ]


def section_end(iteration: int) -> str:
    return f"# --- end of review iter{iteration} ---"


def comment_safe(text: str) -> str:
    return text.replace("\n", " ").replace("\r", " ")


def append_to_labels(label_path: Path, before: str, section: str) -> str:
    """Append ``section`` to the label file atomically, after checking the result parses.

    ``before`` is the text the section was made for: a file changed meanwhile is not replaced.
    """
    text = before if not before or before.endswith("\n") else before + "\n"
    text += ("\n" if text.strip() else "") + section
    parse_labels_text(text, label_path, check_files=False)
    if label_path.read_text(encoding="utf-8") != before:
        raise DataError(f"{label_path} changed while the review clips were cut", hint="run the review again")
    mode = label_path.stat().st_mode & 0o7777
    with atomic_path(label_path, force=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    os.chmod(label_path, mode)  # the replaced file keeps the user's permissions
    return text


class ReviewConflict(DataError):
    """A review decision refused because the label file was changed by hand in a way it would undo
    (or the file does not parse now): the file is left as it is.  ``line_gone``: the line the review
    wrote for the clip is no longer in the file as written (changed or removed by hand)."""

    def __init__(self, message: str, hint: str | None = None, *, line_gone: bool = False):
        super().__init__(message, hint)
        self.line_gone = line_gone


def merge_review_line(
    text: str,
    label_path: Path,
    *,
    iteration: int,
    header: Sequence[str],
    clip: Path,
    previous: str | None,
    line: str,
) -> str:
    """``text`` (the label file as it is now) with ``line`` for ``clip`` in review section ``iteration``.

    ``previous`` is the line written for the clip before (None: none yet); it is replaced where it still
    stands.  A new line goes just above the section's end marker; the first one makes the section, with
    ``header``, at the end of the file.  Whatever else is in the file stays as it is, byte for byte.
    Raises ReviewConflict, writing nothing, when that would undo a hand edit: the clip's line was changed
    or removed by hand, the clip is listed by a line the review did not write, the section lost its end
    marker, or the file does not parse.
    """
    label_path = Path(label_path)
    name = Path(clip).name
    try:
        current = parse_labels_text(text, label_path, check_files=False)
    except LabelErrors as exc:
        raise ReviewConflict(
            f"{label_path.name} does not parse as it is now ({exc.errors[0]}): nothing was written",
            hint="fix the file, then decide again",
        ) from None
    listed = {entry.path: entry.line for entry in current.entries}
    where = listed.get(Path(os.path.normpath(os.path.abspath(clip))))
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines(keepends=True)
    bare = [raw.rstrip("\r\n") for raw in lines]
    start_re = re.compile(rf"# --- review iter{iteration}\b")
    start = next((i for i, raw in enumerate(bare) if start_re.match(raw)), None)
    end_marker = section_end(iteration)
    end = None
    if start is not None:
        end = next((i for i in range(start + 1, len(bare)) if bare[i].strip() == end_marker), None)
    if previous is not None:
        found = (
            [i for i in range(start + 1, end) if bare[i] == previous] if start is not None and end is not None else []
        )
        if found:
            at = found[0]
            lines[at] = line + (lines[at][len(bare[at]) :] or newline)
        elif where is not None:
            raise ReviewConflict(
                f"line {where} of {label_path.name} ({name}) was changed by hand after the review page wrote it: "
                "the hand edit is kept and this decision was not written",
                hint="change the line in the file, or delete it and decide again here",
                line_gone=True,
            )
        else:
            raise ReviewConflict(
                f"the line for {name} was removed from {label_path.name} by hand: this decision was not written",
                hint="decide again here to add the line back",
                line_gone=True,
            )
    elif where is not None:
        raise ReviewConflict(
            f"{name} is already listed in {label_path.name} (line {where}), by a line this page did not write: "
            "it is kept as it is",
            hint="change that line in the file, or delete it and decide again here",
        )
    elif start is None:
        if lines and not lines[-1].endswith(("\n", "\r")):
            lines[-1] += newline
        if any(raw.strip() for raw in bare):
            lines.append(newline)
        lines += [text_line + newline for text_line in (*header, line, end_marker)]
    elif end is None:
        raise ReviewConflict(
            f"the end of the review section ({end_marker!r}) is missing from {label_path.name}: nothing was written",
            hint=f"put the line {end_marker!r} back after the section's last clip line",
        )
    else:
        lines.insert(end, line + newline)
    merged = "".join(lines)
    parse_labels_text(merged, label_path, check_files=False)  # what is written always parses
    return merged


def make_review_clips(
    videos: Sequence[Path],
    model_path: Path,
    label_path: Path,
    out_dir: Path,
    params: EventParams,
    *,
    class_name: str | None = None,
    iteration: int | None = None,
    scan: ScanOptions | None = None,
    force: bool = False,
    progress: ProgressCallback = no_progress,
) -> ReviewResult:
    """Cut the model's events in ``videos`` into review clips and add their lines to the label file.

    ``params`` makes the clips (its padding is the context around each event); the spans
    written are the same events without padding.  ``scan`` says how the videos are scanned.
    """
    from autotosis.detect.pipeline import detect_events, scan_events
    from autotosis.model.predictor import read_model_info
    from autotosis.outputs.render import ReelPart, RenderOptions, render_reel

    label_path, out_dir = Path(label_path), Path(out_dir)
    labels = parse_labels(label_path, check_files=False)
    before = label_path.read_text(encoding="utf-8")
    info = read_model_info(Path(model_path))
    # Review lines go into the file the model learns from: its classes must be the model's
    # (a binary file without '# task=' fits any model of one class).
    labels = match_model_classes(labels, info.classes, model=str(model_path), exact=True)
    class_name = class_name or info.positive_class()
    if class_name not in info.classes or class_name == "background":
        raise UsageError(
            f"no class {class_name!r} to review", hint=f"the model's classes are {', '.join(info.classes[1:])}"
        )
    span_label = class_name if len(labels.class_names()) > 2 else None
    iteration = iteration or next_iteration(before, [e.raw_path for e in labels.entries], out_dir)
    listed = {e.path: e.line for e in labels.entries}

    plans: list[tuple[Path, ClipWindow, Path]] = []
    for video in videos:
        found = scan_events(video, model_path, scan, class_name=class_name, params=params, progress=progress)
        cores = detect_events(found.scores, class_name, replace(params, pad_before_ms=0, pad_after_ms=0, top_k=None))
        for number, window in enumerate(review_windows(found.events.events, cores.events), start=1):
            target = out_dir / clip_name(iteration, Path(video), number)
            plans.append((Path(video), window, target))
    for _, _, target in plans:
        check_writable(target, force)
        where = Path(os.path.abspath(target))
        if where in listed:
            raise UsageError(
                f"{target} is already listed in {label_path} (line {listed[where]})",
                hint="give another --iteration, or delete that line first",
            )
    made: list[ReviewClip] = []
    try:
        total = sum(w.end_ms - w.start_ms for _, w, _ in plans)
        done = 0
        progress("review clips", 0, total / 1000)
        for video, window, target in plans:
            event = Event(window.start_ms, window.end_ms, class_name, window.peak, window.peak, window.start_ms)
            render_reel([ReelPart(video, (event,), None)], target, RenderOptions(overlay=False), force=force)
            spans = tuple(Span(s - window.start_ms, e - window.start_ms, label=span_label) for s, e in window.spans)
            made.append(ReviewClip(target, video, window.start_ms, window.end_ms, spans, window.peak))
            done += window.end_ms - window.start_ms
            progress("review clips", done / 1000, total / 1000)
        added = 0
        if made:
            section = review_section(
                iteration, made, label_path, model=Path(model_path).name, threshold=params.threshold, crop=info.crop
            )
            append_to_labels(label_path, before, section)
            added = len(made)
    except BaseException:
        for clip in made:  # clips without label lines would only confuse the next run
            clip.path.unlink(missing_ok=True)
        raise
    return ReviewResult(iteration=iteration, clips=tuple(made), labels=label_path, lines_added=added)


# --------------------------------------------------------------------------- hard examples


@dataclass(frozen=True)
class HardExample:
    clip: Path
    time_ms: int
    labelled: str  # the class the label file says
    predicted: str  # the class the model says
    confidence: float  # the model's probability for ``predicted``
    region: Region | None


@dataclass(frozen=True)
class HardResult:
    folder: Path
    images: tuple[Path, ...]
    sheet: Path | None
    examples: tuple[HardExample, ...]


def find_hard_examples(
    units, clips: Sequence[Path], classes: Sequence[str], *, band_ms: int, min_confidence: float, limit: int
) -> list[HardExample]:
    """Samples whose label is known and whose most likely class is another one, at ``min_confidence``
    or more; the most confident first, at most ``limit``."""
    from autotosis.training.evaluate import unit_targets

    found: list[HardExample] = []
    for unit, clip in zip(units, clips):
        targets = unit_targets(unit, classes, band_ms)
        predicted = np.argmax(unit.probs, axis=1)
        confidence = unit.probs[np.arange(len(predicted)), predicted]
        wrong = np.flatnonzero((targets >= 0) & (predicted != targets) & (confidence >= min_confidence))
        for row in wrong:
            found.append(
                HardExample(
                    clip,
                    int(unit.times_ms[row]),
                    classes[int(targets[row])],
                    classes[int(predicted[row])],
                    float(confidence[row]),
                    unit.region,
                )
            )
    found.sort(key=lambda h: (-h.confidence, str(h.clip), h.time_ms))
    return found[:limit]


def hard_example_name(example: HardExample, rank: int, total: int) -> str:
    """``001_0.973_rage-not-background_clip_t000012500.jpg``: the rank (1 = most confident, zero-padded
    to ``total``'s width, at least 3 digits) first, so an ordinary A-Z sort lists the worst mistakes first."""
    what = f"{example.predicted}-not-{example.labelled}"
    return (
        f"{rank:0{max(3, len(str(total)))}d}_{example.confidence:.3f}_{what}_{safe_stem(example.clip)}"
        f"_t{example.time_ms:09d}.jpg"
    )


def write_hard_examples(
    labels: LabelFile,
    model_path: Path,
    out_dir: Path,
    *,
    min_confidence: float = 0.8,
    limit: int = 100,
    band_ms: int = 500,
    scan: ScanOptions | None = None,
    crop_borders: bool = False,
    force: bool = False,
    progress: ProgressCallback = no_progress,
) -> HardResult:
    """Scan the labelled clips, and save the frames the model gets confidently wrong plus a contact sheet."""
    from PIL import Image

    from autotosis.model.predictor import read_model_info
    from autotosis.training.evaluate import score_labelled_clips

    info = read_model_info(Path(model_path))
    labels = match_model_classes(labels, info.classes, model=str(model_path))
    units = score_labelled_clips(labels, Path(model_path), scan=scan, crop_borders=crop_borders, progress=progress)
    examples = find_hard_examples(
        units,
        [e.path for e in labels.entries],
        info.classes,
        band_ms=band_ms,
        min_confidence=min_confidence,
        limit=limit,
    )
    out_dir = Path(out_dir)
    targets = [out_dir / hard_example_name(h, rank, len(examples)) for rank, h in enumerate(examples, 1)]
    sheet_path = out_dir / "contact_sheet.jpg"
    for path in [*targets, *([sheet_path] if examples else [])]:
        check_writable(path, force)
    images: list[tuple[HardExample, Path, np.ndarray]] = []
    progress("hard examples", 0, len(examples))
    by_clip: dict[Path, list[int]] = {}
    for index, example in enumerate(examples):
        by_clip.setdefault(example.clip, []).append(index)
    for clip, indices in by_clip.items():
        times = [examples[i].time_ms for i in indices]
        clip_info = probe.probe(clip)
        frames = dict(decode.grab_frames(clip_info, times))
        for i in indices:
            frame = frames.get(max(0, min(examples[i].time_ms, clip_info.duration_ms - 1)))
            if frame is None:
                continue
            with atomic_path(targets[i], force=force) as tmp:
                Image.fromarray(frame).save(tmp, format="JPEG", quality=92)
            images.append((examples[i], targets[i], frame))
            progress("hard examples", len(images), len(examples))
    order = {id(h): i for i, h in enumerate(examples)}
    images.sort(key=lambda item: order[id(item[0])])
    sheet = None
    if images:
        sheet = sheet_path
        with atomic_path(sheet_path, force=force) as tmp:
            contact_sheet([(h, f) for h, _, f in images]).save(tmp, format="JPEG", quality=88)
    return HardResult(folder=out_dir, images=tuple(p for _, p, _ in images), sheet=sheet, examples=tuple(examples))


def contact_sheet(
    items: Sequence[tuple[HardExample, np.ndarray]], columns: int = SHEET_COLUMNS, thumb_width: int = SHEET_THUMB_WIDTH
):
    """A grid of thumbnails, the model's region outlined, each captioned with what went wrong."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    caption_height = 30
    thumbs = []
    for example, frame in items:
        image = Image.fromarray(frame)
        height = max(1, round(thumb_width * image.height / image.width))
        thumb = image.resize((thumb_width, height), Image.Resampling.BILINEAR)
        if example.region is not None:
            x0, y0, x1, y1 = example.region
            ImageDraw.Draw(thumb).rectangle(
                [x0 * thumb_width, y0 * height, x1 * thumb_width - 1, y1 * height - 1], outline=(255, 220, 0), width=2
            )
        thumbs.append((example, thumb))
    cell_height = max(t.height for _, t in thumbs) + caption_height
    rows = -(-len(thumbs) // columns)
    sheet = Image.new("RGB", (columns * thumb_width, rows * cell_height), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for index, (example, thumb) in enumerate(thumbs):
        x, y = (index % columns) * thumb_width, (index // columns) * cell_height
        sheet.paste(thumb, (x, y))
        first = f"{example.confidence:.2f} {example.predicted}, labelled {example.labelled}"
        second = f"{example.clip.name} {label_time(example.time_ms)}"
        draw.text((x + 4, y + thumb.height + 2), first, fill=(255, 255, 255), font=font)
        draw.text((x + 4, y + thumb.height + 15), second, fill=(180, 180, 180), font=font)
    return sheet
