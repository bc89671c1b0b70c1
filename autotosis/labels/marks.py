"""Marks people already have -> label files: the one place where point markers get their window, titles
become classes, marks past a clip's end are refused and each span gets a comment saying where it came from.

A *mark* is what an importer reads from a chapter list, a stream marker or clip, an editor's timeline: a
span, a point (a marker pressed a few seconds *after* the moment), or a start (a chapter or a YouTube line
that only says where something begins).  ``labels_from_marks`` turns the marks of one or more clips into a
``LabelFile`` that ``writer.write_labels`` writes in the usual format.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from autotosis.core.errors import LabelError, LabelErrors
from autotosis.core.region import Region
from autotosis.core.timefmt import label_time
from autotosis.labels.parse import DURATION_TOLERANCE_MS, _Collector, _label_dir, resolve_clip_path
from autotosis.labels.values import ClipEntry, LabelFile, LabelNote, Span, default_task, is_valid_class
from autotosis.labels.writer import new_entry

TitleMode = Literal["auto", "class", "text"]
RestMode = Literal["negative", "unsure"]
ChapterMode = Literal["auto", "spans", "points"]
MarkKind = Literal["span", "point", "start"]

TITLE_MODES: tuple[str, ...] = ("auto", "class", "text")
REST_MODES: tuple[str, ...] = ("negative", "unsure")
CHAPTER_MODES: tuple[str, ...] = ("auto", "spans", "points")

_NEGATIVE_TITLES = {"background"}
_TO_END = 10**15  # an end "to the end of the clip" while the clip's length is unknown


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class MarkerWindow:
    """The span a point marker becomes: from ``before_ms`` before it to ``after_ms`` after it.

    A marker is pressed a few seconds after the moment it marks, so the default reaches mostly back.
    """

    before_ms: int
    after_ms: int

    def __post_init__(self) -> None:
        if self.before_ms < 0 or self.after_ms < 0:
            raise ValueError("a marker window cannot reach a negative time")

    @classmethod
    def centred(cls, length_ms: int) -> MarkerWindow:
        """``length_ms`` centred on the marker (what ``--point-window`` means)."""
        return cls(length_ms // 2, length_ms - length_ms // 2)

    @property
    def empty(self) -> bool:
        return self.before_ms + self.after_ms <= 0

    def describe(self, them: bool = False) -> str:
        """``from 8 s before to 2 s after it`` (``them`` for several markers)."""
        it = "them" if them else "it"
        if self.before_ms == self.after_ms:
            return f"{(self.before_ms + self.after_ms) / 1000:g} s centred on {it}"
        return f"from {self.before_ms / 1000:g} s before to {self.after_ms / 1000:g} s after {it}"


DEFAULT_MARKER_WINDOW = MarkerWindow(8000, 2000)


@dataclass(frozen=True)
class Mark:
    """One mark read from a source, in milliseconds from the start of its clip.

    ``kind``: ``span`` (``start_ms``-``end_ms``), ``point`` (a marker at ``start_ms``; ``end_ms`` is ignored)
    or ``start`` (a chapter or chapter-list line: where something begins; ``end_ms`` is where the next
    begins, None for "to the end of the clip").  ``title`` is the text that may name a class (``rage``,
    ``~`` for unsure); ``origin`` names the mark for comments and errors (``chapter 2``, ``line 4``);
    ``line``/``col`` locate it in the source file (0 when the source has no lines: a video, a timeline).
    """

    kind: MarkKind
    start_ms: int
    end_ms: int | None
    title: str
    origin: str
    line: int = 0
    col: int = 0
    detail: str = ""  # more for the comment only (a clip's title, the marker's note)


@dataclass(frozen=True)
class ClipMarks:
    """The marks of one clip, and what the clip is known to be."""

    clip: Path
    marks: tuple[Mark, ...]
    duration_ms: int | None  # None when the clip could not be opened (its marks are not checked against it)
    what: str  # where the marks came from, for the comment: 'chapters of "vod.mkv"'
    notes: tuple[str, ...] = ()  # skipped items etc., said once as a note


@dataclass(frozen=True)
class MarkOptions:
    window: MarkerWindow = DEFAULT_MARKER_WINDOW
    titles: TitleMode = "auto"
    rest: RestMode = "negative"
    crop: Region | None = None
    window_option: str = "--marker-window BEFORE,AFTER"  # how the user sets the window (for hints)


@dataclass(frozen=True)
class _Piece:
    """A mark turned into a span (ms; end may be _TO_END), before overlaps are resolved."""

    start_ms: int
    end_ms: int
    unsure: bool
    label: str | None
    mark: Mark


# --------------------------------------------------------------------------- marks -> labels


def labels_from_marks(
    source: Path, clips: Sequence[ClipMarks], dest: Path, options: MarkOptions = MarkOptions()
) -> LabelFile:
    """A label file (to be written at ``dest``) with one clip line per ``ClipMarks``.

    - Titles (``options.titles``): ``class`` reads each title as a class name (``rage``; ``~`` before it or
      ``~`` alone = unsure; ``background`` = a negative: no span), ``text`` keeps titles as comments only,
      ``auto`` reads them as classes when every title is one (a single word that is a class name), else as text.
    - Points become ``options.window`` spans; starts (chapter starts, chapter-list lines) become spans up
      to the next start when titles are read as classes (a list of regions such as background, rage,
      background), else points.
    - A mark at or past the clip's end is an error; spans reaching past it end at ``end``.
    - Overlapping spans of one class join; a sure span wins over an unsure one; two classes may not overlap.
    - The rest of each clip is a negative (a clip line is fully labelled), or unsure with ``rest="unsure"``.

    Every problem is collected and raised together as LabelErrors located in ``source``.
    """
    source, dest = Path(source), Path(dest)
    errors = _Collector(source)
    all_marks = [mark for clip in clips for mark in clip.marks]
    class_titles = _titles_are_classes(all_marks, options.titles)
    pieces_of: list[list[_Piece]] = []
    comments_of: list[list[str]] = []
    widened: list[Mark] = []
    for clip in clips:
        pieces, comments = _clip_pieces(clip, class_titles, options, errors, widened)
        pieces_of.append(pieces)
        comments_of.append(comments)
    classes = list(dict.fromkeys(p.label for pieces in pieces_of for p in pieces if p.label and not p.unsure))
    for pieces in pieces_of:
        for i, piece in enumerate(pieces):
            if piece.unsure and piece.label not in classes:
                pieces[i] = replace(piece, label=None)
    if len(classes) > 1:
        for pieces in pieces_of:
            for piece in pieces:
                if piece.label is None and not piece.unsure:
                    mark = piece.mark
                    errors.add(
                        mark.line,
                        mark.col or 1,
                        f"{mark.origin} has no class, but other titles name the classes {', '.join(classes)}",
                        "give it a class as its title (e.g. rage, or ~ for unsure), or read titles as comments "
                        "with --titles text",
                    )
    else:  # one class or none: a binary file, its spans need no class
        pieces_of = [[replace(p, label=None) for p in pieces] for pieces in pieces_of]
    spans_of = [_resolve(pieces, clip.duration_ms, errors) for pieces, clip in zip(pieces_of, clips)]
    errors.raise_if_any()

    dest_dir = _label_dir(dest)
    entries: list[ClipEntry] = []
    seen: dict[Path, str] = {}
    for clip, spans, comments in zip(clips, spans_of, comments_of):
        path = resolve_clip_path(os.getcwd(), str(clip.clip))
        if path in seen:
            raise LabelErrors([_error(source, f"{clip.what} and {seen[path]} are both about {clip.clip}")])
        seen[path] = clip.what
        if options.rest == "unsure":
            spans = _unsure_rest(spans, clip.duration_ms)
            comments.append("the rest of the clip is unsure (--rest unsure), not a negative")
        entry = new_entry(path, dest_dir, options.crop, options.crop, tuple(spans), 1)
        entries.append(replace(entry, comments=tuple(comments)))
    notes = _notes(source, clips, widened, options)
    if len(classes) > 1:
        return LabelFile(
            path=dest,
            task=default_task(dest),
            default_crop=None,
            entries=tuple(entries),
            classes=tuple(classes),
            task_declared=False,
            notes=notes,
        )
    if classes:
        return LabelFile(path=dest, task=classes[0], default_crop=None, entries=tuple(entries), notes=notes)
    return LabelFile(
        path=dest, task=default_task(dest), default_crop=None, entries=tuple(entries), task_declared=False, notes=notes
    )


def _error(source: Path, message: str, hint: str | None = None) -> LabelError:
    return LabelError(source, 0, 0, message, hint)


def split_title(title: str) -> tuple[bool, str]:
    """(unsure, the rest) of a mark's title: ``~`` before it (or the word ``unsure``) marks it unsure."""
    text = " ".join(title.split())
    if text.startswith("~"):
        return True, text[1:].strip()
    if text.lower() == "unsure":
        return True, ""
    return False, text


def _titles_are_classes(marks: Sequence[Mark], mode: TitleMode) -> bool:
    if mode != "auto":
        return mode == "class"
    names = [name for name in (split_title(m.title)[1] for m in marks) if name]
    return bool(names) and all(is_valid_class(n) or n.lower() in _NEGATIVE_TITLES for n in names)


def _clip_pieces(
    clip: ClipMarks, class_titles: bool, options: MarkOptions, errors: _Collector, widened: list[Mark]
) -> tuple[list[_Piece], list[str]]:
    """The spans the marks of one clip become (overlaps unresolved) and one comment line per mark."""
    comments: list[str] = []
    pieces: list[_Piece] = []
    widened_before = len(widened)
    duration = clip.duration_ms
    starts_as_spans = class_titles  # a list of regions (background, rage, ...) rather than of moments
    for mark in sorted(clip.marks, key=lambda m: (m.start_ms, m.line, m.col)):
        unsure, name = split_title(mark.title)
        label: str | None = None
        negative = False
        if class_titles and name:
            if name.lower() in _NEGATIVE_TITLES:
                negative = True
            elif is_valid_class(name):
                label = name
            elif not unsure:  # an unsure mark's text may be a comment
                errors.add(
                    mark.line,
                    mark.col or 1,
                    f"the title {name!r} of {mark.origin} is not a class name",
                    "titles name classes (letters, digits, _ and -, starting with a letter; '~' before one = "
                    "unsure; 'background' = a negative); read titles as comments with --titles text",
                )
                continue
        point = mark.kind == "point" or (mark.kind == "start" and not starts_as_spans)
        at = label_time(mark.start_ms)
        if duration is not None and (
            mark.start_ms > duration + DURATION_TOLERANCE_MS or (not point and mark.start_ms >= duration)
        ):
            errors.add(
                mark.line,
                mark.col or 1,
                f"{mark.origin} at {at} is past the end of {_shown(clip.clip)} ({label_time(duration)} long)",
                "is it the right video? times count from the start of the video (the VOD), not of the stream",
            )
            continue
        if point:
            if options.window.empty:
                errors.add(
                    mark.line,
                    mark.col or 1,
                    f"{mark.origin} is a point marker at {at} and marks no span",
                    f"give {options.window_option} (seconds) to turn point markers into spans around them",
                )
                continue
            start = max(0, mark.start_ms - options.window.before_ms)
            end = mark.start_ms + options.window.after_ms
            how = f"marker at {at}"
            widened.append(mark)
        else:
            start, end = mark.start_ms, (_TO_END if mark.end_ms is None else mark.end_ms)
            how = _range_text(start, end)
        if duration is not None:
            end = min(end, duration)
            start = min(start, max(0, duration - 1))
        end = max(end, start + 1)
        title = f" {_quoted(mark.title)}" if mark.title.strip() else ""
        detail = f" ({mark.detail})" if mark.detail else ""
        if negative:
            comments.append(f"  {mark.origin}{title}{detail}: {how}: background (no span)")
            continue
        piece = _Piece(start, end, unsure, label, mark)
        pieces.append(piece)
        comments.append(f"  {mark.origin}{title}{detail}: {how} -> {_piece_text(piece, duration)}")
    how = []
    if any(m.title.strip() for m in clip.marks):
        how.append("titles read as classes" if class_titles else "titles kept as comments")
    if len(widened) > widened_before:
        how.append(f"point markers widened {options.window.describe(them=True)}")
    header = f"from {clip.what} ({'; '.join(how)})" if how else f"from {clip.what}"
    return pieces, [header, *comments]


def _range_text(start: int, end: int) -> str:
    return f"{label_time(start)}-{'end' if end >= _TO_END else label_time(end)}"


def _piece_text(piece: _Piece, duration: int | None) -> str:
    end = None if piece.end_ms >= _TO_END or (duration is not None and piece.end_ms >= duration) else piece.end_ms
    return Span(piece.start_ms, end, piece.unsure, piece.label).as_text()


def _quoted(title: str) -> str:
    return '"' + " ".join(title.split()).replace('"', "'") + '"'


def _shown(path: Path) -> str:
    return repr(Path(path).name)


def _resolve(pieces: list[_Piece], duration: int | None, errors: _Collector) -> list[Span]:
    """Sorted, non-overlapping spans: one class's overlapping (or touching) spans join, sure beats unsure,
    two classes overlapping is an error naming both marks."""
    sure: list[_Piece] = []
    for piece in sorted((p for p in pieces if not p.unsure), key=lambda p: (p.start_ms, p.end_ms)):
        last = sure[-1] if sure else None
        apart = last is None or piece.start_ms > last.end_ms
        if last is None or apart or (piece.start_ms == last.end_ms and piece.label != last.label):
            sure.append(piece)
        elif piece.label == last.label:
            sure[-1] = replace(last, end_ms=max(last.end_ms, piece.end_ms))
        else:
            errors.add(
                piece.mark.line,
                piece.mark.col or 1,
                f"{piece.mark.origin} ({piece.label or 'no class'}, {_range_text(piece.start_ms, piece.end_ms)}) "
                f"overlaps {last.mark.origin} ({last.label or 'no class'}, {_range_text(last.start_ms, last.end_ms)})",
                "spans of different classes must not overlap; move a marker, or narrow --marker-window",
            )
    unsure: list[_Piece] = []
    for piece in sorted((p for p in pieces if p.unsure), key=lambda p: (p.start_ms, p.end_ms)):
        last = unsure[-1] if unsure else None
        if last is None or piece.start_ms > last.end_ms:
            unsure.append(piece)
        else:  # unsure spans of two classes that overlap: unsure of both, so of neither in particular
            label = last.label if last.label == piece.label else None
            unsure[-1] = replace(last, end_ms=max(last.end_ms, piece.end_ms), label=label)
    kept_unsure: list[_Piece] = []
    for piece in unsure:  # what no sure span covers
        start = piece.start_ms
        for other in sure:
            if other.end_ms <= start or other.start_ms >= piece.end_ms:
                continue
            if other.start_ms > start:
                kept_unsure.append(replace(piece, start_ms=start, end_ms=other.start_ms))
            start = max(start, other.end_ms)
        if start < piece.end_ms:
            kept_unsure.append(replace(piece, start_ms=start))
    spans = []
    for piece in sorted([*sure, *kept_unsure], key=lambda p: (p.start_ms, p.end_ms)):
        to_end = piece.end_ms >= _TO_END or (duration is not None and piece.end_ms >= duration)
        spans.append(Span(piece.start_ms, None if to_end else piece.end_ms, piece.unsure, piece.label))
    return spans


def rest_unsure(labels: LabelFile) -> LabelFile:
    """``labels`` with what no span of a clip covers marked unsure (``--rest unsure`` for any importer)."""
    entries = []
    for entry in labels.entries:
        spans = tuple(_unsure_rest(list(entry.spans), None))
        comments = (*entry.comments, "the rest of the clip is unsure (--rest unsure), not a negative")
        entries.append(replace(entry, spans=spans, comments=comments))
    return replace(labels, entries=tuple(entries))


def _unsure_rest(spans: list[Span], duration: int | None) -> list[Span]:
    """``spans`` with every stretch between them (and before the first, after the last) as an unsure span."""
    out: list[Span] = []
    position = 0
    for span in spans:
        if span.start_ms > position:
            out.append(Span(position, span.start_ms, True))
        out.append(span)
        if span.end_ms is None:
            return out
        position = span.end_ms
    if duration is None or position < duration:
        out.append(Span(position, None, True))
    return out


def _notes(
    source: Path, clips: Sequence[ClipMarks], widened: Sequence[Mark], options: MarkOptions
) -> tuple[LabelNote, ...]:
    notes = []
    if widened:
        first = widened[0]
        many = len(widened) != 1
        notes.append(
            LabelNote(
                source,
                first.line,
                first.col or 1,
                f"{len(widened)} point marker{'s' if many else ''} became {'spans' if many else 'a span'} "
                f"{options.window.describe(them=many)}",
                f"{options.window_option} sets the window in seconds",
            )
        )
    for clip in clips:
        if clip.duration_ms is None:
            notes.append(
                LabelNote(
                    source,
                    0,
                    0,
                    f"{clip.clip} could not be opened: the times were not checked against its length",
                )
            )
        notes += [LabelNote(source, 0, 0, text) for text in clip.notes]
    return tuple(notes)


# --------------------------------------------------------------------------- small shared readers

_CLOCK_RE = re.compile(r"(?:(?P<h>\d+):)?(?P<m>\d{1,2}):(?P<s>\d{2})(?:\.(?P<f>\d{1,3}))?")


def clock_ms(text: str) -> int | None:
    """``[h:]mm:ss[.fff]`` as milliseconds, None when ``text`` is not such a time."""
    match = _CLOCK_RE.fullmatch(text.strip())
    if not match or int(match["s"]) >= 60 or (match["h"] is not None and int(match["m"]) >= 60):
        return None
    hours = int(match["h"] or 0)
    millis = int((match["f"] or "").ljust(3, "0"))
    return ((hours * 60 + int(match["m"])) * 60 + int(match["s"])) * 1000 + millis
