"""Time text: the one home for turning integer milliseconds into clock text.

Every formatter here is built on :func:`split`, which divides integer milliseconds by integer
arithmetic. Fields are truncated (rounded down), never rounded: a minutes or seconds field never
reaches 60 (59,960 ms is ``0:59.9``, not ``0:60.0``), a time never prints later than it is, and
the terminal, the HTML report and file names all show the same digits for the same moment.

- :func:`clock` is the general form: ``m:ss`` or ``h:mm:ss`` with 0 to 3 decimals.
- :func:`clock_seconds` (``1:05``), :func:`clock_tenths` (``1:05.4``): what people read
  (terminal tables and messages, report pages, chapter lists, clip names).
- :func:`label_time` (``1:05.432``, trailing zeros trimmed): the label-file syntax, exact and
  round-trip safe with ``labels.parse_time``.
- :func:`name_time` (``0h01m05.432s``): a time inside a file name (no ``:``).
- :func:`srt_time` (``00:01:05,432``): SubRip cue times.

No imports beyond the standard library: any layer may use it.
"""

from __future__ import annotations

from typing import Literal

MS_PER_SECOND = 1000
MS_PER_MINUTE = 60 * MS_PER_SECOND
MS_PER_HOUR = 60 * MS_PER_MINUTE

Hours = Literal["auto", "always"]


def split(ms: int) -> tuple[int, int, int, int]:
    """``(hours, minutes, seconds, millis)`` of a time in whole milliseconds, each field truncated.

    Minutes, seconds and millis are always below 60, 60 and 1000; hours are unbounded.
    Raises ValueError for a negative time.
    """
    ms = int(ms)
    if ms < 0:
        raise ValueError(f"negative time {ms} ms")
    hours, rest = divmod(ms, MS_PER_HOUR)
    minutes, rest = divmod(rest, MS_PER_MINUTE)
    seconds, millis = divmod(rest, MS_PER_SECOND)
    return hours, minutes, seconds, millis


def clock(ms: int, *, decimals: int = 0, hours: Hours = "auto", trim: bool = False) -> str:
    """``m:ss[.f]`` (``h:mm:ss[.f]`` from an hour on, or always with ``hours="always"``).

    ``decimals`` (0 to 3) digits of the second follow a ``.``, truncated, never rounded up.
    ``trim`` drops trailing zeros of that fraction (and the ``.`` when nothing is left).
    Raises ValueError for a negative time.
    """
    if decimals not in (0, 1, 2, 3):
        raise ValueError(f"decimals must be 0, 1, 2 or 3, got {decimals!r}")
    if hours not in ("auto", "always"):
        raise ValueError(f"hours must be 'auto' or 'always', got {hours!r}")
    h, m, s, millis = split(ms)
    text = f"{h}:{m:02d}:{s:02d}" if h or hours == "always" else f"{m}:{s:02d}"
    if decimals:
        fraction = f"{millis:03d}"[:decimals]
        if trim:
            fraction = fraction.rstrip("0")
        if fraction:
            text += "." + fraction
    return text


def clock_seconds(ms: int, *, hours: Hours = "auto") -> str:
    """``m:ss`` (``h:mm:ss``) in whole seconds, rounded down; a negative time shows as ``0:00``."""
    return clock(max(0, int(ms)), hours=hours)


def clock_tenths(ms: int, *, hours: Hours = "auto") -> str:
    """``m:ss.s`` (``h:mm:ss.s``), tenths rounded down: the one form for terminal and report.

    12,960 ms is ``0:12.9`` and 59,960 ms is ``0:59.9``; a negative time shows as ``0:00.0``.
    """
    return clock(max(0, int(ms)), decimals=1, hours=hours)


def label_time(ms: int) -> str:
    """``m:ss[.fff]`` (``h:mm:ss[.fff]`` from an hour on), trailing zeros trimmed: 5200 -> ``0:05.2``.

    The label-file syntax: exact to the millisecond. Raises ValueError for a negative time.
    """
    return clock(ms, decimals=3, trim=True)


def name_time(ms: int, *, millis: bool = True) -> str:
    """``0h12m03.450s`` (or ``0h12m03s`` without ``millis``): a time for file names.

    Sorts and reads well and has no ``:`` (not allowed in every file system).
    A negative time shows as ``0h00m00.000s``.
    """
    h, m, s, rest = split(max(0, int(ms)))
    return f"{h}h{m:02d}m{s:02d}.{rest:03d}s" if millis else f"{h}h{m:02d}m{s:02d}s"


def srt_time(ms: int) -> str:
    """``HH:MM:SS,mmm`` for SubRip cues; a negative time shows as ``00:00:00,000``."""
    h, m, s, millis = split(max(0, int(ms)))
    return f"{h:02d}:{m:02d}:{s:02d},{millis:03d}"
