"""Readers of the marks people already have, each giving ``marks.ClipMarks`` for one clip: chapters stored in a
recording (read by ``media.probe.read_chapters``, handed in as values), YouTube-style chapter lists, Twitch stream
markers and clips as saved by the usual downloaders (JSON), and DaVinci Resolve marker EDLs.

Every problem is a LabelError at the file, line and column it comes from (line 0 for a video's chapters).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Protocol

from autotosis.core.edl_markers import RESOLVE_START_TIMECODE, marker_frame, read_marker_edl
from autotosis.core.errors import LabelError, LabelErrors
from autotosis.core.frametime import frames_to_ms, timecode_to_frames
from autotosis.core.timefmt import label_time
from autotosis.labels.marks import ChapterMode, ClipMarks, Mark, clock_ms
from autotosis.labels.parse import _Collector, _read_text, _split_lines

# --------------------------------------------------------------------------- chapters in a recording


class ChapterLike(Protocol):
    """What ``media.probe.MediaChapter`` holds (labels never opens a video itself)."""

    index: int
    start_ms: int
    end_ms: int
    title: str


def chapter_marks(
    video: Path,
    chapters: Sequence[ChapterLike],
    duration_ms: int | None,
    mode: ChapterMode = "auto",
    *,
    clip: Path | None = None,
) -> ClipMarks:
    """Marks from a recording's chapters.

    ``spans``: a chapter with a length is a span, one without a point marker.  ``points``: every chapter is
    a point marker at its start.  ``auto``: as ``spans``, except for chapters that follow each other without
    gaps (each ends where the next begins, as every MP4 chapter list does: an MP4 stores only starts) or a
    lone chapter that runs to the end of the file: those only say where something begins, and become spans
    to the next chapter when their titles name classes (regions: background, rage, background), else
    point markers (OBS's "add chapter marker" hotkey, pressed after the moment).  ``clip`` is the video
    the labels are for when it is not ``video`` itself (default: ``video``; ``duration_ms`` is its length).
    """
    video = Path(video)
    if not chapters:
        raise LabelErrors(
            [
                _file_error(
                    video,
                    "has no chapters",
                    "add chapter markers while recording (OBS: the 'Add Chapter Marker' hotkey, MP4/MKV output), "
                    "or import another source",
                )
            ]
        )
    ordered = sorted(chapters, key=lambda c: (c.start_ms, c.index))
    tiled = len(ordered) > 1 and all(abs(a.end_ms - b.start_ms) <= 1 for a, b in zip(ordered, ordered[1:]))
    lone_to_end = len(ordered) == 1 and duration_ms is not None and ordered[0].end_ms >= duration_ms - 1000
    marks = []
    for chapter in ordered:
        length = chapter.end_ms - chapter.start_ms
        if mode == "points" or length <= 0:
            kind = "point"
        elif mode == "auto" and (tiled or lone_to_end):
            kind = "start"
        else:
            kind = "span"
        marks.append(Mark(kind, chapter.start_ms, chapter.end_ms, chapter.title, f"chapter {chapter.index}"))
    return ClipMarks(Path(clip or video), tuple(marks), duration_ms, f'chapters of "{video.name}"')


def _file_error(path: Path, message: str, hint: str | None = None) -> LabelError:
    """An error about a whole file, or a place in it that has no line (a video's chapter)."""
    return LabelError(path, 0, 0, message, hint)


# --------------------------------------------------------------------------- YouTube chapter lists

_AUDACITY_LINE_RE = re.compile(r"^\s*-?[0-9]+(?:[.,][0-9]*)?\t")


def guess_text_format(path: Path) -> str:
    """``audacity`` or ``youtube`` for a text file, by its first lines (a tab after a number: Audacity)."""
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            head = [handle.readline() for _ in range(200)]
    except OSError:
        return "audacity"  # its importer reports the file
    if any(_AUDACITY_LINE_RE.match(line) for line in head):
        return "audacity"
    if any(_LIST_LINE_RE.match(line.lstrip("\ufeff")) for line in head if line.strip()):
        return "youtube"
    return "audacity"


_LIST_LINE_RE = re.compile(
    r"^(?P<lead>\s*(?:[-*\u2022\u25b6\u25ba>]\s*)?[\[(]?)(?P<time>(?:\d+:)?\d{1,2}:\d{2})(?![\d:])[\])]?"
    r"(?:\s*[-\u2013\u2014:|]\s*|\s+|$)(?P<title>.*)$"
)


def youtube_marks(path: Path, clip: Path, duration_ms: int | None, mode: ChapterMode = "auto") -> ClipMarks:
    """Marks from a YouTube-style chapter list: lines starting with a time (``0:00 Intro``, ``1:02:03 Big
    fight``, ``[12:34] - clutch``); other lines (a video description around the list) are skipped.

    Each line says where something begins: ``spans`` makes it a span to the next line's time (the last to
    the end of the clip), ``points`` a point marker, ``auto`` spans when the titles name classes, else points.
    """
    path = Path(path)
    text, bad_lines, problems = _read_text(path)
    if problems:
        raise LabelErrors(problems)
    errors = _Collector(path)
    found: list[tuple[int, int, int, str]] = []  # (ms, line, col, title)
    skipped = 0
    for lineno, line in enumerate(_split_lines(text), start=1):
        if lineno == 1:
            line = line.lstrip("\ufeff")
        match = _LIST_LINE_RE.match(line)
        if not match:
            skipped += bool(line.strip())
            continue
        col = match.start("time") + 1
        at = clock_ms(match["time"])
        if at is None:
            errors.add(lineno, col, f"bad time {match['time']!r}", "write [h:]mm:ss, e.g. 1:02:03 or 12:34")
            continue
        found.append((at, lineno, col, match["title"].strip()))
    if not found and not errors.errors:
        errors.add(
            1,
            1,
            "no chapter lines found",
            "a chapter list has lines that start with a time, e.g. '0:00 Intro' or '1:02:03 Big fight'",
        )
    errors.raise_if_any()
    found.sort()
    marks = []
    for i, (at, lineno, col, title) in enumerate(found):
        later = [other for other, *_ in found[i + 1 :] if other > at]
        end = later[0] if later else None
        kind = "point" if mode == "points" else ("span" if mode == "spans" else "start")
        marks.append(Mark(kind, at, end, title, f"line {lineno}", lineno, col))
    notes = (f"{skipped} line{'s' if skipped != 1 else ''} without a time at the start skipped",) if skipped else ()
    return ClipMarks(Path(clip), tuple(marks), duration_ms, f'the chapter list "{path.name}"', notes)


# --------------------------------------------------------------------------- Twitch markers and clips (JSON)

TWITCH_SHAPES_HINT = (
    "expected Twitch stream markers or clips as JSON: Helix markers ({'position_seconds': ...}), Helix clips "
    "({'vod_offset': ..., 'duration': ...}), GraphQL clips ({'videoOffsetSeconds': ..., 'durationSeconds': ...}), "
    "video chapters ({'positionMilliseconds'|'startMilliseconds': ...}) or {'offset': seconds} items, at any depth"
)
_TITLE_KEYS = ("description", "title", "name", "label", "text")


def twitch_marks(path: Path, clip: Path, duration_ms: int | None) -> ClipMarks:
    """Marks from a JSON file of Twitch stream markers and/or clips, offsets from the VOD's start.

    Recognised items, found at any depth (``{"data": [...]}``, ``{"markers": [...]}``, a bare list, a
    TwitchDownloader chat file's ``video.chapters``):

    - a stream marker, a point: ``position_seconds`` (Helix Get Stream Markers), ``offset`` or
      ``offset_seconds`` (seconds); its ``description`` (or ``title``) is its title;
    - a clip, a span: ``vod_offset`` + ``duration`` (Helix Get Clips) or ``videoOffsetSeconds`` +
      ``durationSeconds`` (GraphQL: TwitchDownloader, twitch-dl); a clip's title is chosen by whoever made
      it, so it is kept as a comment only; a clip whose ``vod_offset`` is null (its VOD is gone) is skipped;
    - a video chapter: ``positionMilliseconds`` + ``durationMilliseconds`` (twitch-dl) or
      ``startMilliseconds`` + ``lengthMilliseconds`` (TwitchDownloader): a span, a point when it has no length.
    """
    path = Path(path)
    text, _, problems = _read_text(path)
    if problems:
        raise LabelErrors(problems)
    errors = _Collector(path)
    text = text.replace("\ufeff", " ", 1) if text.startswith("\ufeff") else text
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        errors.add(exc.lineno, exc.colno, f"not valid JSON: {exc.msg}", "is it the file the downloader wrote?")
        errors.raise_if_any()
    except RecursionError:
        errors.add(1, 1, "JSON nested too deeply", "is it the file the downloader wrote?")
        errors.raise_if_any()
    where = _json_offsets(text)

    def locate(json_path: tuple) -> tuple[int, int]:
        offset = where.get(json_path, 0)
        line = text.count("\n", 0, offset) + 1
        return line, offset - (text.rfind("\n", 0, offset) + 1) + 1

    marks: list[Mark] = []
    counts = {"marker": 0, "clip": 0, "chapter": 0}
    skipped: list[str] = []
    for json_path, item in _json_objects(data):
        read = _twitch_item(item, json_path, locate, errors)
        if read is None:
            continue
        kind, what, start, end, title, detail, key = read
        counts[what] += 1
        line, col = locate(json_path + (key,))
        origin = f"{what} {counts[what]}"
        if start is None:
            skipped.append(f"{origin}{f' ({detail})' if detail else ''}")
            continue
        marks.append(Mark(kind, start, end, title, origin, line, col, detail))
    if not marks and not skipped and not errors.errors:
        errors.add(1, 1, "no stream markers or clips found", TWITCH_SHAPES_HINT)
    errors.raise_if_any()
    notes = ()
    if skipped:
        notes = (
            f"{len(skipped)} clip{'s' if len(skipped) != 1 else ''} without a VOD offset skipped "
            f"(the VOD was deleted, or the clip is not from it): {', '.join(skipped[:5])}"
            + (" ..." if len(skipped) > 5 else ""),
        )
    return ClipMarks(Path(clip), tuple(marks), duration_ms, f'the Twitch markers/clips file "{path.name}"', notes)


def _twitch_item(item: dict, json_path: tuple, locate, errors: _Collector):
    """(kind, what, start_ms, end_ms, title, detail, key) of a recognised item, None for anything else."""

    def seconds(key: str, *, unit: int = 1000, optional: bool = False) -> int | None:
        value = item.get(key)
        if value is None and optional:
            return None
        number = _number(value)
        if number is None or number < 0:
            line, col = locate(json_path + (key,))
            shown = json.dumps(value)[:40]
            errors.add(
                line,
                col,
                f"{key} is {shown}, not a time",
                f"{key} is a number of {'seconds' if unit == 1000 else 'milliseconds'} from the VOD's start",
            )
            raise _Skip
        return int(round(number * unit))

    ident = str(item.get("id") or item.get("slug") or "")
    title = _title(item)
    try:
        if "vod_offset" in item or "videoOffsetSeconds" in item:
            key, length_key = (
                ("vod_offset", "duration") if "vod_offset" in item else ("videoOffsetSeconds", "durationSeconds")
            )
            detail = " ".join(part for part in (_quoted(title), ident and f"[{ident}]") if part)
            if item.get(key) is None:
                return "span", "clip", None, None, "", detail, key
            start = seconds(key)
            length = seconds(length_key, optional=True)
            if length is None or length <= 0:
                line, col = locate(json_path + (key,))
                errors.add(
                    line,
                    col,
                    f"clip at {label_time(start)} has no {length_key}",
                    f"a clip has {key} and {length_key} (seconds)",
                )
                return None
            return "span", "clip", start, start + length, "", detail, key
        for key, length_key, unit in (
            ("positionMilliseconds", "durationMilliseconds", 1),
            ("startMilliseconds", "lengthMilliseconds", 1),
        ):
            if key in item:
                start = seconds(key, unit=unit)
                length = seconds(length_key, unit=unit, optional=True) or 0
                kind = "span" if length > 0 else "point"
                return kind, "chapter", start, start + length, title, ident and f"[{ident}]", key
        for key in ("position_seconds", "offset", "offset_seconds"):
            if key in item and (key == "position_seconds" or _number(item.get(key)) is not None):
                start = seconds(key)
                return "point", "marker", start, None, title, ident and f"[{ident}]", key
    except _Skip:
        return None
    return None


class _Skip(Exception):
    pass


def _number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def _title(item: dict) -> str:
    for key in _TITLE_KEYS:
        value = item.get(key)
        if isinstance(value, str) and value.strip():
            return " ".join(value.split())
    return ""


def _quoted(text: str) -> str:
    return f'"{text}"' if text else ""


def _json_objects(data, json_path: tuple = ()):
    """Every JSON object (dict) with its path, depth first in file order; a recognised item's insides are
    visited too (harmless: items do not nest)."""
    stack = [(json_path, data)]
    while stack:
        here, value = stack.pop()
        if isinstance(value, dict):
            yield here, value
            children = list(value.items())
        elif isinstance(value, list):
            children = list(enumerate(value))
        else:
            continue
        stack.extend((here + (key,), child) for key, child in reversed(children))


_WS_RE = re.compile(r"[ \t\n\r]*")


def _json_offsets(text: str) -> dict[tuple, int]:
    """Where each value of a valid JSON text starts, by its path (keys and list indexes), as a character
    offset; for errors that point at the line and column of an item."""
    decoder = json.JSONDecoder()
    offsets: dict[tuple, int] = {}
    stack: list[tuple[tuple, int, str]] = []  # (path of the container, next index, kind)
    pos = _WS_RE.match(text, 0).end()
    path: tuple = ()
    while True:
        offsets[path] = pos
        char = text[pos] if pos < len(text) else ""
        if char in "{[":
            close = "}" if char == "{" else "]"
            pos = _WS_RE.match(text, pos + 1).end()
            if text[pos] == close:
                pos += 1
            else:
                stack.append((path, 0, char))
                if char == "{":
                    key, pos = decoder.raw_decode(text, pos)
                    pos = _WS_RE.match(text, pos).end() + 1  # the ':'
                    path = path + (key,)
                else:
                    path = path + (0,)
                pos = _WS_RE.match(text, pos).end()
                continue
        else:
            _, pos = decoder.raw_decode(text, pos)
        # after a value: a ',' continues its container, a closing bracket ends it
        while stack:
            pos = _WS_RE.match(text, pos).end()
            parent, index, kind = stack[-1]
            if text[pos] == ",":
                pos = _WS_RE.match(text, pos + 1).end()
                if kind == "{":
                    key, pos = decoder.raw_decode(text, pos)
                    pos = _WS_RE.match(text, pos).end() + 1
                    path = parent + (key,)
                else:
                    path = parent + (index + 1,)
                stack[-1] = (parent, index + 1, kind)
                pos = _WS_RE.match(text, pos).end()
                break
            pos += 1  # '}' or ']'
            stack.pop()
        else:
            return offsets


# --------------------------------------------------------------------------- Resolve marker EDLs


def resolve_edl_marks(
    path: Path, clip: Path, duration_ms: int | None, rate: Fraction, start_timecode: str | None = None
) -> ClipMarks:
    """Marks from a DaVinci Resolve marker EDL (``export --format markers`` writes one; so does Resolve's
    Timelines > Export > Timeline Markers to EDL).

    A marker's place is its record timecode minus the timeline's start: ``start_timecode``, or by default
    01:00:00:00 (Resolve's) unless a marker lies before it (then 00:00:00:00).  ``rate`` is the timeline's
    frame rate (an EDL does not state it: the video's, as ``export`` chose it).  A marker one frame long or
    less is a point marker; a longer one (``|D:`` frames) a span.  Its name is its title.
    """
    path = Path(path)
    text, _, problems = _read_text(path)
    if problems:
        raise LabelErrors(problems)
    errors = _Collector(path)
    drop, markers, found = read_marker_edl(text)
    for line, col, message in found:
        errors.add(line, col, message, "|D: is the marker's length in frames")
    positions: list[int | None] = []
    for marker in markers:
        try:
            positions.append(marker_frame(marker, rate, drop))
        except ValueError as exc:
            errors.add(marker.line, marker.col, str(exc), "record timecodes are HH:MM:SS:FF at the video's frame rate")
            positions.append(None)
    if not markers and not errors.errors:
        errors.add(1, 1, "no markers found", "a marker EDL has one-frame events, each followed by |C:... |M:... |D:...")
    errors.raise_if_any()
    if start_timecode is not None:
        try:
            start = timecode_to_frames(start_timecode, rate, drop_frame=drop or None)
        except ValueError as exc:
            raise LabelErrors([_file_error(path, f"--timecode-start: {exc}")]) from None
    else:
        start = timecode_to_frames(RESOLVE_START_TIMECODE, rate, drop_frame=drop)
        if any(p is not None and p < start for p in positions):
            start = 0
    marks = []
    for marker, frame in zip(markers, positions):
        if frame is None:
            continue
        if frame < start:
            errors.add(
                marker.line,
                marker.col,
                f"marker {marker.number} at {marker.record_in} is before the timeline's start",
                "give the timeline's start timecode with --timecode-start",
            )
            continue
        begin = frames_to_ms(frame - start, rate)
        length = marker.duration_frames or 1
        kind = "span" if length > 1 else "point"
        end = frames_to_ms(frame - start + length, rate) if kind == "span" else None
        detail = " ".join(part for part in (marker.note and _quoted(marker.note), marker.color) if part)
        marks.append(Mark(kind, begin, end, marker.name, f"marker {marker.number}", marker.line, marker.col, detail))
    errors.raise_if_any()
    return ClipMarks(Path(clip), tuple(marks), duration_ms, f'the marker EDL "{path.name}"')
