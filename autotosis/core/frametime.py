"""Frames and frame rates: exact milliseconds <-> frames by rational arithmetic, the standard timecode rates,
and the rate a source is expressed in on a timeline.

Shared by the exports for editors (``outputs/exports``) and the importers that read editors' timelines and
marker lists back (``labels``); no imports beyond the standard library, so any layer may use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

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


def timeline_rate(fps: Fraction | None) -> TimelineRate:
    """The rate to express a source's frames in: its own when standard, else the closest standard one.

    A rate within 0.1% of an NTSC rate is that rate; a low rate that divides a standard rate
    (15 -> 30, 12.5 -> 25) goes to that multiple, so every source frame still lands on a
    timeline frame; anything else (a variable frame rate's average) goes to the nearest
    whole-number standard rate.
    """
    if fps is None:
        return TimelineRate(
            DEFAULT_RATE, f"source frame rate unknown: times are given at {rate_text(DEFAULT_RATE)} fps"
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
        f"source frame rate {rate_text(fps)} fps is not a standard timecode rate (a variable frame rate source "
        f"reports its average): times are given at {rate_text(chosen)} fps",
    )


def rate_text(rate: Fraction) -> str:
    if rate.denominator == 1:
        return str(rate.numerator)
    return f"{float(rate):.3f}".rstrip("0").rstrip(".")


def ms_to_frames(ms: int, rate: Fraction) -> int:
    """The frame boundary nearest to ``ms`` (halves round up), computed exactly."""
    return math.floor(Fraction(int(ms)) * rate / 1000 + Fraction(1, 2))


def frames_to_ms(frames: int, rate: Fraction) -> int:
    """Start of frame ``frames`` in whole milliseconds (nearest)."""
    return math.floor(Fraction(int(frames)) * 1000 / rate + Fraction(1, 2))


def exact_rate(rate: float | Fraction) -> Fraction:
    """A frame rate stored as a float (OpenTimelineIO keeps doubles) as the exact fraction it stands for:
    29.97002997... -> 30000/1001, 25.0 -> 25."""
    return Fraction(rate).limit_denominator(1001)


def time_to_ms(value: float | Fraction, rate: float | Fraction) -> int:
    """``value`` frames (not necessarily whole) at ``rate`` as the nearest whole millisecond (halves round up)."""
    return math.floor(Fraction(value) * 1000 / exact_rate(rate) + Fraction(1, 2))


# --------------------------------------------------------------------------- SMPTE timecode text


def is_drop_frame_rate(rate: Fraction) -> bool:
    """29.97 and 59.94 fps: the rates whose timecode drops frame numbers to stay on the clock."""
    return rate in (Fraction(30000, 1001), Fraction(60000, 1001))


def frames_to_timecode(frames: int, rate: Fraction, *, drop_frame: bool | None = None) -> str:
    """``HH:MM:SS:FF`` (``HH:MM:SS;FF`` in drop-frame) for a frame count at ``rate``.

    Drop-frame (the default at 29.97 and 59.94) skips frame numbers 0 and 1 (0-3 at 59.94) at the
    start of every minute except each tenth, as SMPTE 12M does.
    """
    frames = int(frames)
    if frames < 0:
        raise ValueError(f"negative frame count {frames}")
    nominal = round(rate)
    drop = is_drop_frame_rate(rate) if drop_frame is None else drop_frame
    if drop:
        dropped = round(nominal / 15)  # 2 at 29.97, 4 at 59.94
        per_ten = nominal * 600 - dropped * 9
        per_minute = nominal * 60 - dropped
        tens, rest = divmod(frames, per_ten)
        frames += dropped * 9 * tens
        if rest > dropped:
            frames += dropped * ((rest - dropped) // per_minute)
    seconds, ff = divmod(frames, nominal)
    minutes, ss = divmod(seconds, 60)
    hh, mm = divmod(minutes, 60)
    return f"{hh:02d}:{mm:02d}:{ss:02d}{';' if drop else ':'}{ff:02d}"


def timecode_to_frames(text: str, rate: Fraction, *, drop_frame: bool | None = None) -> int:
    """The frame count of ``HH:MM:SS:FF`` (``;`` or ``.`` before the frames means drop-frame) at ``rate``.

    ValueError when ``text`` is not a timecode at that rate.
    """
    parts = text.strip().replace(";", ":").replace(".", ":").split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a timecode (HH:MM:SS:FF)")
    hh, mm, ss, ff = (int(p) for p in parts)
    nominal = round(rate)
    if mm >= 60 or ss >= 60 or ff >= nominal:
        raise ValueError(f"{text!r} is not a timecode at {rate_text(rate)} fps")
    drop = (";" in text or "." in text) if drop_frame is None else drop_frame
    drop = drop and is_drop_frame_rate(rate)
    frames = ((hh * 60 + mm) * 60 + ss) * nominal + ff
    if drop:
        minutes = hh * 60 + mm
        frames -= round(nominal / 15) * (minutes - minutes // 10)
    return frames
