"""Exact time for exports: frame rates (standard timecode rates, NTSC), milliseconds <-> frames by rational
arithmetic, and the names an event gets in a timeline, a chapter list or a subtitle."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from fractions import Fraction

from autotosis.core.timefmt import clock_seconds
from autotosis.detect.segments import Event
from autotosis.labels.values import published_name

# The rates SMPTE timecode (and so EDL) supports; OTIO refuses to write timecode at others.
STANDARD_RATES: tuple[Fraction, ...] = (
    Fraction(24000, 1001),
    Fraction(24),
    Fraction(25),
    Fraction(30000, 1001),
    Fraction(30),
    Fraction(48),
    Fraction(50),
    Fraction(60000, 1001),
    Fraction(60),
)
DEFAULT_RATE = Fraction(30)


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class TimelineRate:
    """The frame rate a source's clips are expressed in, and why, when it is not the source's own."""

    rate: Fraction
    note: str | None = None  # set when the source rate was unknown or not a standard rate


# --------------------------------------------------------------------------- time and names


def timeline_rate(fps: Fraction | None) -> TimelineRate:
    """The rate to express a source's frames in: its own when standard, else the closest standard one.

    A rate within 0.1% of an NTSC rate is that rate; a low rate that divides a standard rate
    (15 -> 30, 12.5 -> 25) goes to that multiple, so every source frame still lands on a
    timeline frame; anything else (a variable frame rate's average) goes to the nearest
    whole-number standard rate.
    """
    if fps is None:
        return TimelineRate(
            DEFAULT_RATE, f"source frame rate unknown: times are given at {_rate_text(DEFAULT_RATE)} fps"
        )
    fps = Fraction(fps)
    if fps in STANDARD_RATES:
        return TimelineRate(fps)
    near_ntsc = [r for r in STANDARD_RATES if r.denominator == 1001 and abs(fps - r) / r < Fraction(1, 1000)]
    multiples = [r for r in STANDARD_RATES if (r / fps).denominator == 1]
    if near_ntsc:  # e.g. 29.97 written as a decimal
        chosen = near_ntsc[0]
    elif multiples:
        chosen = min(multiples)
    else:  # an average of varying frame times: whole-number rates keep timecode simple (non-drop)
        chosen = min((r for r in STANDARD_RATES if r.denominator == 1), key=lambda r: (abs(r - fps), r))
    return TimelineRate(
        chosen,
        f"source frame rate {_rate_text(fps)} fps is not a standard timecode rate (a variable frame rate source "
        f"reports its average): times are given at {_rate_text(chosen)} fps",
    )


def _rate_text(rate: Fraction) -> str:
    if rate.denominator == 1:
        return str(rate.numerator)
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def ms_to_frames(ms: int, rate: Fraction) -> int:
    """The frame boundary nearest to ``ms`` (halves round up), computed exactly."""
    return math.floor(Fraction(int(ms)) * rate / 1000 + Fraction(1, 2))


def frames_to_ms(frames: int, rate: Fraction) -> int:
    """Start of frame ``frames`` in whole milliseconds (nearest)."""
    return math.floor(Fraction(int(frames)) * 1000 / rate + Fraction(1, 2))


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
