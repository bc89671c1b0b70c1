"""Markers for editors: every event as a marker on the whole source video instead of a cut.

One timeline holds each source video whole (one clip per video, back to back) with a marker per event on
it: the marker spans the event, is named after its class (so ``labels import`` reads the class back) and
its note says the event's score, its peak as every output names it, and where it is
(``rage 0.93, 12:03.0-12:10.2``).  Three files:

- ``.markers.otio``: OpenTimelineIO (markers on the clips, in the source's own time; each keeps the
  event's exact milliseconds in its metadata);
- ``.markers.fcpxml``: Final Cut Pro X, written by OpenTimelineIO's adapter (``editors._fcpxml_text``),
  the note in each marker's ``note`` attribute;
- ``.markers.edl``: DaVinci Resolve's marker EDL (``core/edl_markers.py``), for Timelines > Import >
  Timeline Markers from EDL on a timeline that starts at 01:00:00:00 (Resolve's default) and holds the
  video(s) from its start.  OpenTimelineIO's EDL writer only knows ``* LOC:`` locators, which Resolve
  does not read as markers, so this small fixed format is written here.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from autotosis.core.edl_markers import RESOLVE_START_TIMECODE, EdlMarker, format_marker_edl
from autotosis.core.errors import UsageError
from autotosis.core.frametime import is_drop_frame_rate, ms_to_frames, timecode_to_frames, timeline_rate
from autotosis.core.timefmt import clock_tenths
from autotosis.detect.segments import Event, EventList
from autotosis.outputs.exports.editors import _checked_events, _fcpxml_text, _media_reference, _reel_names
from autotosis.outputs.exports.timecode import _one_line, display_label, event_title

if TYPE_CHECKING:
    import opentimelineio as otio

    from autotosis.media.probe import VideoInfo

MARKER_SUFFIXES = (".markers.edl", ".markers.otio", ".markers.fcpxml")

# One colour per class, in the order the classes first appear; the same in every file.  Red and green are
# left out: FCPXML turns them into to-do markers.
_OTIO_COLORS = ("CYAN", "BLUE", "YELLOW", "PURPLE", "MAGENTA", "ORANGE", "PINK")
_RESOLVE_COLORS = {
    "CYAN": "Cyan",
    "BLUE": "Blue",
    "YELLOW": "Yellow",
    "PURPLE": "Purple",
    "MAGENTA": "Fuchsia",
    "ORANGE": "Sand",
    "PINK": "Pink",
}


def marker_note(event: Event) -> str:
    """``"rage 0.93, 12:03.0-12:10.2"``: what a marker's note says about its event (``event_title``)."""
    return f"{event_title(event)}, {clock_tenths(event.start_ms)}-{clock_tenths(event.end_ms)}"


def build_marker_timeline(
    sources: Sequence[tuple[VideoInfo, EventList]], name: str | None = None
) -> otio.schema.Timeline:
    """One video track holding each source whole, back to back, with a marker per event on its clip."""
    import opentimelineio as otio

    if not sources:
        raise UsageError("nothing to export: no events files given")
    timeline = otio.schema.Timeline(name=_one_line(name) if name else "autotosis markers")
    track = otio.schema.Track(name="markers", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    colors: dict[str, str] = {}
    described = []
    for (info, events), reel in zip(sources, _reel_names([info.path for info, _ in sources])):
        chosen = timeline_rate(info.fps)
        reference = _media_reference(info, chosen)
        reference.name = Path(info.path).name
        clip = otio.schema.Clip(
            name=Path(info.path).stem, media_reference=reference, source_range=reference.available_range
        )
        clip.metadata["cmx_3600"] = {"reel": reel}
        last_frame = round(reference.available_range.duration.value)
        r = float(chosen.rate)
        for event in sorted(_checked_events(info, events), key=lambda e: (e.start_ms, e.end_ms)):
            start = min(ms_to_frames(event.start_ms, chosen.rate), last_frame - 1)
            end = min(max(ms_to_frames(event.end_ms, chosen.rate), start + 1), last_frame)
            color = colors.setdefault(event.label, _OTIO_COLORS[len(colors) % len(_OTIO_COLORS)])
            marker = otio.schema.Marker(
                name=display_label(event.label),
                marked_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(start, r), otio.opentime.RationalTime(end - start, r)
                ),
                color=color,
                comment=marker_note(event),
            )
            marker.metadata["autotosis"] = {
                "label": event.label,
                "peak": float(event.peak),
                "mean": float(event.mean),
                "start_ms": int(event.start_ms),
                "end_ms": int(event.end_ms),
                "peak_ms": int(event.peak_ms),
            }
            clip.markers.append(marker)
        track.append(clip)
        described.append(
            {
                "video": str(Path(info.path).absolute()),
                "timeline_rate": str(chosen.rate),
                "rate_note": chosen.note,
                "events": len(events.events),
            }
        )
    first_rate = timeline_rate(sources[0][0].fps).rate
    timeline.global_start_time = otio.opentime.RationalTime(0, float(first_rate))
    timeline.metadata["autotosis"] = {"format": "autotosis-markers/1", "sources": described}
    return timeline


def marker_texts(timeline: otio.schema.Timeline) -> tuple[dict[str, str], list[str]]:
    """The three files' texts by ending (``.markers.edl``, ``.markers.otio``, ``.markers.fcpxml``) and warnings."""
    import opentimelineio as otio

    texts = {
        ".markers.edl": _resolve_edl(timeline),
        ".markers.otio": otio.adapters.write_to_string(timeline, "otio_json"),
        ".markers.fcpxml": _fcpxml_text(timeline),
    }
    warnings = []
    rates = {source["timeline_rate"] for source in timeline.metadata["autotosis"]["sources"]}
    if len(rates) > 1:
        warnings.append(
            "the marker EDL has one timecode rate (the first video's): markers on videos at other rates are "
            "rounded to its frames; the .markers.otio and .markers.fcpxml keep each rate"
        )
    return texts, warnings


def _resolve_edl(timeline: otio.schema.Timeline) -> str:
    """Resolve's marker EDL: record positions on a timeline starting at 01:00:00:00 holding the clips in order."""
    from fractions import Fraction

    clips = list(timeline.find_clips())
    sources = timeline.metadata["autotosis"]["sources"]
    rate = Fraction(sources[0]["timeline_rate"])
    markers: list[EdlMarker] = []
    offset_ms = 0
    for clip in clips:
        for marker in clip.markers:
            meta = marker.metadata["autotosis"]
            start = ms_to_frames(offset_ms + meta["start_ms"], rate)
            end = max(ms_to_frames(offset_ms + meta["end_ms"], rate), start + 1)
            color = _RESOLVE_COLORS.get(str(marker.color), "Blue")
            markers.append(EdlMarker(start, end - start, marker.name, marker.comment, color))
        offset_ms += round(clip.source_range.duration.to_seconds() * 1000)
    # 01:00:00:00 on a 29.97 timeline is 01:00:00;00 in drop-frame: 107,892 frames, not 108,000
    start_frame = timecode_to_frames(RESOLVE_START_TIMECODE, rate, drop_frame=is_drop_frame_rate(rate))
    return format_marker_edl(timeline.name, markers, rate, start_frame)
