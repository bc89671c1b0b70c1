"""Chapters from one list in two forms: ffmetadata (muxed into a rendered reel) and a YouTube description block.

In the source video a chapter starts where a highlight starts and lasts until the next one, as YouTube chapters
do; in a reel the chapters are the reel's pieces (``reel_chapters``)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from autotosis.core.errors import UsageError
from autotosis.core.timefmt import clock_seconds
from autotosis.detect.segments import EventList
from autotosis.outputs.exports.timecode import _one_line, chapter_title

YOUTUBE_MIN_CHAPTERS = 3
YOUTUBE_MIN_CHAPTER_MS = 10_000


@dataclass(frozen=True)
class Chapter:
    start_ms: int
    end_ms: int
    title: str

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


# --------------------------------------------------------------------------- chapters


def source_chapters(events: EventList, duration_ms: int | None = None) -> list[Chapter]:
    """Chapters in the source video: "Start", then one per event lasting until the next event.

    ``duration_ms`` (the video's length) defaults to the events file's; the last chapter ends there.
    """
    ordered = sorted(events.events, key=lambda e: (e.start_ms, e.end_ms))
    end_of_video = max([duration_ms or events.duration_ms or 0, *(e.end_ms for e in ordered)])
    chapters = []
    if ordered and ordered[0].start_ms > 0:
        chapters.append(Chapter(0, ordered[0].start_ms, "Start"))
    for i, event in enumerate(ordered):
        end = ordered[i + 1].start_ms if i + 1 < len(ordered) else end_of_video
        if end > event.start_ms:  # a second event starting at the same time would make an empty chapter
            chapters.append(Chapter(event.start_ms, end, chapter_title(event)))
    return chapters


def reel_chapters(pieces: Sequence[tuple[str, int]]) -> list[Chapter]:
    """Chapters of a rendered reel from its pieces ``(title, duration_ms)`` in reel order.

    Pass the pieces' real lengths (render cuts each to whole frames), so chapters do not drift.
    """
    chapters, position = [], 0
    for title, duration in pieces:
        duration = int(duration)
        if duration <= 0:
            raise UsageError(f"reel piece {title!r} has no length ({duration} ms)")
        chapters.append(Chapter(position, position + duration, _one_line(title) or "chapter"))
        position += duration
    return chapters


def _escape_ffmetadata(text: str) -> str:
    """Backslash-escape what ffmetadata treats specially: ``=``, ``;``, ``#``, ``\\`` and newlines."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"([=;#\\\n])", r"\\\1", text)


def chapters_ffmetadata(chapters: Sequence[Chapter]) -> str:
    """An ffmetadata file (``;FFMETADATA1``) with one ``[CHAPTER]`` per chapter, in milliseconds."""
    lines = [";FFMETADATA1"]
    for chapter in chapters:
        if chapter.end_ms <= chapter.start_ms:
            raise UsageError(
                f"chapter {chapter.title!r} ends ({chapter.end_ms} ms) before it starts ({chapter.start_ms} ms)"
            )
        lines += [
            "[CHAPTER]",
            "TIMEBASE=1/1000",
            f"START={int(chapter.start_ms)}",
            f"END={int(chapter.end_ms)}",
            f"title={_escape_ffmetadata(chapter.title)}",
        ]
    return "\n".join(lines) + "\n"


def chapters_youtube(chapters: Sequence[Chapter]) -> tuple[str, list[str]]:
    """A YouTube description chapter block (``0:00 Title`` lines) and the rules it breaks.

    YouTube shows chapters only when the first starts at 0:00, there are at least three,
    and each lasts at least 10 seconds; the text is produced anyway and each broken rule
    comes back as a warning.
    """
    warnings: list[str] = []
    if not chapters:
        return "", ["no chapters: there are no events"]
    hours = "always" if max(c.end_ms for c in chapters) >= 3_600_000 else "auto"
    lines = [f"{clock_seconds(c.start_ms, hours=hours)} {_one_line(c.title) or 'chapter'}" for c in chapters]
    if chapters[0].start_ms >= 1000:
        warnings.append(
            "YouTube needs the first chapter at 0:00; "
            f"the first starts at {clock_seconds(chapters[0].start_ms, hours=hours)}"
        )
    if len(chapters) < YOUTUBE_MIN_CHAPTERS:
        warnings.append(f"YouTube needs at least {YOUTUBE_MIN_CHAPTERS} chapters; there are {len(chapters)}")
    short = [c for c in chapters if c.duration_ms < YOUTUBE_MIN_CHAPTER_MS]
    if short:
        names = ", ".join(
            f"{clock_seconds(c.start_ms, hours=hours)} {_one_line(c.title)!r} ({c.duration_ms / 1000:.1f} s)"
            for c in short[:5]
        )
        more = f" and {len(short) - 5} more" if len(short) > 5 else ""
        warnings.append(
            f"YouTube needs chapters of at least {YOUTUBE_MIN_CHAPTER_MS // 1000} s; shorter: {names}{more}"
        )
    return "\n".join(lines) + "\n", warnings
