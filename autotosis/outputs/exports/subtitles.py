"""SRT subtitles: one cue per event."""

from __future__ import annotations

from collections.abc import Sequence

from autotosis.core.timefmt import srt_time
from autotosis.detect.segments import Event
from autotosis.outputs.exports.timecode import srt_text

# --------------------------------------------------------------------------- subtitles


def events_srt(events: Sequence[Event]) -> str:
    """SubRip subtitles: one cue per event, ``rage 0.93`` (class and peak score), in time order."""
    cues = []
    for number, event in enumerate(sorted(events, key=lambda e: (e.start_ms, e.end_ms)), 1):
        cues.append(f"{number}\n{srt_time(event.start_ms)} --> {srt_time(event.end_ms)}\n{srt_text(event)}\n")
    return "\n".join(cues)
