"""The names an event gets in a timeline, a chapter list or a subtitle.

Frame rates and milliseconds <-> frames (standard timecode rates, NTSC, exact rational arithmetic) live in
``core/frametime.py``: the importers of editors' timelines use them too."""

from __future__ import annotations

import re

from autotosis.core.timefmt import clock_seconds
from autotosis.detect.segments import Event
from autotosis.labels.values import published_name

# --------------------------------------------------------------------------- names


def display_label(label: str) -> str:
    """A class name as outputs show it: one line (control characters and runs of spaces become one
    space), and ``highlight`` instead of a generic name such as ``labels`` (``published_name``)."""
    return published_name(re.sub(r"[\s\x00-\x1f\x7f]+", " ", label).strip())


def event_title(event: Event) -> str:
    """``"rage 0.93"``: the class and the event's score (its peak, ``Event.score_text``).

    The name of an event in chapters, subtitles and (with where it starts) timeline clips; shorts'
    file names and the report say the same class and number.
    """
    return f"{display_label(event.label)} {event.score_text}"


def chapter_title(event: Event) -> str:
    """``"rage 0.93"``: a chapter in the source video (``event_title``)."""
    return event_title(event)


def clip_name(event: Event) -> str:
    """``"rage 0.93 @ 0:12:03"``: class, score and where the event starts in its source (``H:MM:SS``)."""
    return f"{event_title(event)} @ {clock_seconds(event.start_ms, hours='always')}"


def srt_text(event: Event) -> str:
    """``"rage 0.93"``: the subtitle shown during an event (``event_title``)."""
    return event_title(event)


def _one_line(text: str) -> str:
    return re.sub(r"[\s\x00-\x1f\x7f]+", " ", text).strip()
