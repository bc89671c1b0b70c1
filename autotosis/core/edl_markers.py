"""DaVinci Resolve's marker EDL: the one home of its syntax, written by ``export --format markers`` and read
back by ``labels import``.

Resolve writes (Timelines > Export > Timeline Markers to EDL) and reads (Timelines > Import > Timeline
Markers from EDL) markers as a CMX 3600 EDL whose events are one frame long, each followed by one line::

    TITLE: vod markers
    FCM: NON-DROP FRAME

    001  001      V     C        01:00:05:00 01:00:05:01 01:00:05:00 01:00:05:01
    rage: peak 0.93 |C:ResolveColorBlue |M:rage |D:150

The text before the first ``|`` is the marker's note, ``|C:`` its colour, ``|M:`` its name and ``|D:``
its length in frames.  Times are record timecode: the timeline's start (Resolve's default 01:00:00:00)
plus the position.  A note must not start with a digit (Resolve then reads the line as an event and
drops the marker), and no field may hold a ``|``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

from autotosis.core.frametime import frames_to_timecode, is_drop_frame_rate, timecode_to_frames

# Resolve's marker colours, in the order its marker menu lists them.
RESOLVE_COLORS = (
    "Blue",
    "Cyan",
    "Green",
    "Yellow",
    "Red",
    "Pink",
    "Purple",
    "Fuchsia",
    "Rose",
    "Lavender",
    "Sky",
    "Mint",
    "Lemon",
    "Sand",
    "Cocoa",
    "Cream",
)
RESOLVE_START_TIMECODE = "01:00:00:00"  # where a new Resolve timeline starts

_TC = r"\d\d[:;.]\d\d[:;.]\d\d[:;.]\d\d"
_EVENT_RE = re.compile(
    rf"^\s*(?P<number>\d+)\s+\S+\s+\S+\s+\S+(?:\s+\d+)?\s+(?P<src_in>{_TC})\s+(?P<src_out>{_TC})"
    rf"\s+(?P<rec_in>{_TC})\s+(?P<rec_out>{_TC})\s*$"
)
_FIELD_RE = re.compile(r"\|(?P<key>[A-Z]):(?P<value>[^|]*)")


@dataclass(frozen=True)
class EdlMarker:
    """One marker: its place in frames from the timeline's start, its length in frames (at least 1)."""

    frame: int
    duration_frames: int
    name: str
    note: str = ""
    color: str = "Blue"  # one of RESOLVE_COLORS


@dataclass(frozen=True)
class ReadMarker:
    """A marker as read: record timecode text (the caller knows the rate), its fields, where it was."""

    number: str
    record_in: str
    duration_frames: int | None  # None when the line has no |D:
    name: str
    note: str
    color: str
    line: int
    col: int


def _clean(text: str) -> str:
    return " ".join(text.replace("|", "/").split())


def format_marker_edl(title: str, markers: Sequence[EdlMarker], rate: Fraction, start_frame: int) -> str:
    """The EDL text; ``start_frame`` is the timeline's start timecode in frames (see RESOLVE_START_TIMECODE)."""
    drop = is_drop_frame_rate(rate)
    lines = [f"TITLE: {_clean(title).encode('ascii', 'replace').decode('ascii')}"]
    lines += [f"FCM: {'DROP FRAME' if drop else 'NON-DROP FRAME'}", ""]
    for number, marker in enumerate(sorted(markers, key=lambda m: (m.frame, m.name)), start=1):
        start = start_frame + marker.frame
        tc_in, tc_out = frames_to_timecode(start, rate), frames_to_timecode(start + 1, rate)
        note = _clean(marker.note)
        if note[:1].isdigit():  # Resolve would read the line as an event
            note = "- " + note
        color = marker.color if marker.color in RESOLVE_COLORS else "Blue"
        lines.append(f"{number:03d}  001      V     C        {tc_in} {tc_out} {tc_in} {tc_out}  ")
        lines.append(f"{note} |C:ResolveColor{color} |M:{_clean(marker.name)} |D:{max(1, int(marker.duration_frames))}")
        lines.append("")
    return "\n".join(lines)


def is_marker_edl(text: str) -> bool:
    """Whether an EDL's text holds Resolve marker lines (``|C:`` / ``|M:`` fields after its events)."""
    return any(_FIELD_RE.search(line) and ("|M:" in line or "|C:" in line) for line in text.splitlines())


def read_marker_edl(text: str) -> tuple[bool, list[ReadMarker], list[tuple[int, int, str]]]:
    """(drop-frame per its FCM line, the markers, problems as (line, col, message)) of a marker EDL."""
    drop = False
    markers: list[ReadMarker] = []
    problems: list[tuple[int, int, str]] = []
    pending: tuple[re.Match, int] | None = None  # an event line waiting for its marker line

    def flush(fields: dict[str, str] | None, note: str) -> None:
        nonlocal pending
        if pending is None:
            return
        match, lineno = pending
        fields = fields or {}
        duration: int | None = None
        raw = fields.get("D", "").strip()
        if raw:
            if raw.isdigit():
                duration = int(raw)
            else:
                problems.append((lineno + 1, 1, f"marker length |D:{raw} is not a number of frames"))
        color = fields.get("C", "").strip().removeprefix("ResolveColor")
        markers.append(
            ReadMarker(
                match["number"],
                match["rec_in"],
                duration,
                fields.get("M", "").strip(),
                note.strip(),
                color,
                lineno,
                match.start("rec_in") + 1,
            )
        )
        pending = None

    for lineno, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if stripped.upper().startswith("FCM:"):
            drop = "NON" not in stripped.upper()
            continue
        match = _EVENT_RE.match(line)
        if match:
            flush(None, "")
            pending = (match, lineno)
            continue
        found = {m["key"]: m["value"] for m in _FIELD_RE.finditer(line)}
        if found and pending is not None:
            flush(found, line.split("|", 1)[0])
    flush(None, "")
    return drop, markers, problems


def marker_frame(marker: ReadMarker, rate: Fraction, drop: bool) -> int:
    """The record-in timecode of ``marker`` in frames (ValueError when it is not a timecode at ``rate``)."""
    return timecode_to_frames(marker.record_in, rate, drop_frame=drop or None)
