"""The names an event gets in a timeline, a chapter list or a subtitle.

Frame rates and milliseconds <-> frames (standard timecode rates, NTSC, exact rational arithmetic) live in
``core/frametime.py``: the importers of editors' timelines use them too."""

from __future__ import annotations

import re

from autotosis.core.timefmt import clock_seconds
from autotosis.detect.segments import Event

# --------------------------------------------------------------------------- names


def display_label(label: str) -> str:
    """A class name fit for one line of text: control characters and runs of spaces become one space."""
    return re.sub(r"[\s\x00-\x1f\x7f]+", " ", label).strip() or "event"


def chapter_title(event: Event) -> str:
    """``"rage 0.87"``: the class and the event's mean score."""
    return f"{display_label(event.label)} {event.mean:.2f}"


def clip_name(event: Event) -> str:
    """``"rage 0.87 @ 0:12:03"``: class, mean score and where the event starts in its source (``H:MM:SS``)."""
    return f"{chapter_title(event)} @ {clock_seconds(event.start_ms, hours='always')}"


def srt_text(event: Event) -> str:
    """``"rage 0.87 (peak 0.93)"``: the subtitle shown during an event."""
    return f"{chapter_title(event)} (peak {event.peak:.2f})"


def _one_line(text: str) -> str:
    return re.sub(r"[\s\x00-\x1f\x7f]+", " ", text).strip()
