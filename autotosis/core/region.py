"""Regions of a frame: the one type for a crop box, and the one place its text is read and written.

A ``Region`` is a box in fractions of the (displayed) frame: left, top, right, bottom, each in
0..1 with ``x0 < x1`` and ``y0 < y1``.  Label lines (``crop=x0,y0,x1,y1``), ``--crop``, a model's
crop, the part of a video a scan looked at (a scores file's ``"region"``) and the letterbox
borders found in a video are all Regions.  A Region is a tuple, so every file that holds one
(JSON ``[x0, y0, x1, y1]``, checkpoints, cache keys) keeps its format, and it compares equal to
the plain tuple of its four numbers.

``RegionArg`` is a region as a user typed it for ``shorts`` (``--cam``, ``--game``): fractions or
whole pixels of the displayed frame, checked against a video's frame only once it is known.

Only the standard library: any layer may use it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

# A decimal number as label files and --crop write it (no sign: a fraction of the frame is never negative).
_FRACTION_RE = re.compile(r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


class RegionError(ValueError):
    """A bad region; ``part`` is the 0-based index of the offending number, if one is to blame."""

    def __init__(self, reason: str, part: int | None = None):
        super().__init__(reason)
        self.part = part


class _Box(NamedTuple):
    x0: float
    y0: float
    x1: float
    y1: float


class Region(_Box):
    """A part of the frame as fractions: left, top, right, bottom (checked when made)."""

    __slots__ = ()

    def __new__(cls, x0: float, y0: float, x1: float, y1: float) -> Region:
        values = (float(x0), float(y0), float(x1), float(y1))
        for index, value in enumerate(values):
            if not 0.0 <= value <= 1.0:  # also false for NaN
                raise RegionError(f"{value} is outside 0..1", index)
        if values[0] >= values[2]:
            raise RegionError(f"x0 ({values[0]}) must be less than x1 ({values[2]})", 2)
        if values[1] >= values[3]:
            raise RegionError(f"y0 ({values[1]}) must be less than y1 ({values[3]})", 3)
        return super().__new__(cls, *values)

    # Printed as the plain tuple it is, as regions were printed before they had a type of their own.
    __repr__ = tuple.__repr__

    @classmethod
    def parse(cls, text: str) -> Region:
        """Read ``x0,y0,x1,y1``; raises RegionError (a ValueError) saying what is wrong."""
        parts = text.split(",")
        if len(parts) != 4:
            raise RegionError(f"expected 4 comma-separated numbers, got {len(parts)}")
        values = []
        for index, part in enumerate(parts):
            number = part.strip()
            if not _FRACTION_RE.fullmatch(number):
                raise RegionError(f"{number!r} is not a number", index)
            values.append(float(number))
        return cls(*values)

    def as_text(self) -> str:
        """``x0,y0,x1,y1``, each the shortest text that reads back as the same number (``parse`` undoes it)."""
        return ",".join(_shortest_decimal(v) for v in self)


def as_region(value: object) -> Region | None:
    """None, or the Region of four numbers in any sequence (a JSON list, a plain tuple, a Region)."""
    if value is None:
        return None
    if isinstance(value, Region):
        return value
    x0, y0, x1, y1 = value  # type: ignore[misc]
    return Region(x0, y0, x1, y1)


def is_region(value: object) -> bool:
    """Whether ``value`` (as JSON holds it) is None (the whole frame) or a usable ``[x0, y0, x1, y1]``."""
    if value is None:
        return True
    return (
        isinstance(value, list)
        and len(value) == 4
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1 for v in value)
        and value[0] < value[2]
        and value[1] < value[3]
    )


def crop_pixels(
    region: Region | tuple[float, float, float, float], width: int, height: int
) -> tuple[int, int, int, int]:
    """(w, h, x, y) in whole pixels of a ``width`` x ``height`` picture: the one rounding of decoding,
    image data sets, explanations and the sample generator's face cam."""
    x0, y0, x1, y1 = region
    x = min(max(int(math.floor(x0 * width)), 0), width - 1)
    y = min(max(int(math.floor(y0 * height)), 0), height - 1)
    w = max(1, min(int(round((x1 - x0) * width)), width - x))
    h = max(1, min(int(round((y1 - y0) * height)), height - y))
    return w, h, x, y


def _shortest_decimal(value: float) -> str:
    """Shortest text that reads back as the same float, without exponent ("0.7833", "1")."""
    text = format(Decimal(repr(float(value))), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


# --------------------------------------------------------------------------- as typed for shorts


@dataclass(frozen=True)
class RegionArg:
    """A region as the user gave it: fractions of the frame, or pixels of the displayed frame."""

    values: tuple[float, float, float, float]  # x0, y0, x1, y1
    pixels: bool = False

    def text(self) -> str:
        return ",".join(f"{v:g}" for v in self.values)


def parse_region_arg(text: str) -> RegionArg:
    """``x0,y0,x1,y1``: whole numbers with one above 1 are pixels, anything else fractions.

    Only the syntax is checked here; whether the region fits a frame depends on the video
    (see ``shorts.region_rect``).  Raises ValueError saying what is wrong.
    """
    parts = [p.strip() for p in str(text).split(",")]
    if len(parts) != 4:
        raise ValueError(f"expected 4 comma-separated numbers, got {len(parts)}")
    values = []
    for part in parts:
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"{part!r} is not a number") from None
        if not math.isfinite(value):
            raise ValueError(f"{part!r} is not a finite number")
        values.append(value)
    pixels = all(re.fullmatch(r"-?\d+", p) for p in parts) and any(v > 1 for v in values)
    return RegionArg((values[0], values[1], values[2], values[3]), pixels)
