"""argparse value types: durations, numbers with a range, regions, sizes, frame rates, audio tracks, marker windows."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from fractions import Fraction

from autotosis.core.region import Region, RegionArg, parse_region_arg


def duration_ms(text: str) -> int:
    """A duration or time on the command line: seconds ("2.5") or [h:]mm:ss[.fff]."""
    from autotosis.labels.parse import parse_time

    try:
        return parse_time(str(text).strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time ({exc}); use seconds like 2.5 or m:ss like 1:05"
        ) from None


def _number_type(name: str, convert: Callable[[str], float], accept: Callable[[float], bool], what: str, rule: str):
    """An argparse ``type=``: ``convert`` the text, then check it with ``accept``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"{value} {rule}")
        return value

    parse.__name__ = name
    return parse


probability = _number_type(
    "probability", float, lambda v: 0.0 <= v <= 1.0, "a number between 0 and 1", "is outside 0..1"
)


positive_float = _number_type("positive_float", float, lambda v: v > 0, "a number", "must be greater than 0")


non_negative_float = _number_type(
    "non_negative_float", float, lambda v: v >= 0 and v != float("inf"), "a number", "must be 0 or more (and finite)"
)


positive_int = _number_type("positive_int", int, lambda v: v > 0, "a whole number", "must be at least 1")


count = _number_type("count", int, lambda v: v >= 0, "a whole number", "must be 0 or more")


port_number = _number_type(
    "port_number", int, lambda v: 0 <= v <= 65535, "a port number", "is not a port (0 to 65535; 0 picks a free one)"
)


def region(text: str) -> Region:
    try:
        return Region.parse(str(text))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc} (expected x0,y0,x1,y1 as fractions of the frame)") from None


def frame_size(text: str) -> tuple[int, int]:
    parts = str(text).lower().split("x")
    try:
        width, height = int(parts[0]), int(parts[1])
        if len(parts) != 2 or width < 16 or height < 16 or width > 8192 or height > 8192:
            raise ValueError
    except (ValueError, IndexError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a size like 1280x720") from None
    return width, height


def frame_rate(text: str) -> Fraction:
    try:
        value = Fraction(str(text))
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a frame rate like 30 or 30000/1001") from None
    if not 1 <= value <= 240:
        raise argparse.ArgumentTypeError(f"{text} fps is outside 1..240")
    return value


def short_region(text: str) -> RegionArg:
    try:
        return parse_region_arg(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r}: {exc} (expected x0,y0,x1,y1 as fractions of the frame, or pixels)"
        ) from None


def audio_track(text: str) -> int | None:
    """--audio-track: ``mix`` (None) or a track number from 1."""
    from autotosis.outputs.render import parse_audio_track

    try:
        return parse_audio_track(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (give mix, or a track number from 1)") from None


def marker_window(text: str):
    """``BEFORE,AFTER`` seconds (or m:ss) around a point marker -> ``labels.marks.MarkerWindow``."""
    from autotosis.labels.marks import MarkerWindow
    from autotosis.labels.parse import parse_time

    parts = str(text).split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"{text!r} is not BEFORE,AFTER (seconds before and after a marker, e.g. 8,2)")
    try:
        before, after = (parse_time(part.strip()) for part in parts)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc} (write BEFORE,AFTER in seconds, e.g. 8,2)") from None
    return MarkerWindow(before, after)
