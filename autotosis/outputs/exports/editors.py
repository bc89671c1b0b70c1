"""Timelines for editors: OTIO, CMX 3600 EDL and FCPXML, written by OpenTimelineIO and its maintained adapters.

One timeline holds one video track with one clip per event; each clip references its source video (an absolute
``file://`` URL, the whole video as the available range) and its source range is the event in whole frames at
the source's frame rate."""

from __future__ import annotations

import re
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from autotosis.core.errors import DataError, UsageError
from autotosis.core.frametime import DEFAULT_RATE, TimelineRate, exact_rate, ms_to_frames, rate_text, timeline_rate
from autotosis.detect.segments import Event, EventList
from autotosis.outputs.exports.timecode import _one_line, clip_name

if TYPE_CHECKING:
    import opentimelineio as otio

    from autotosis.media.probe import VideoInfo

TIMELINE_FORMATS = ("otio", "edl", "fcpxml")
DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))


# --------------------------------------------------------------------------- timeline


def build_timeline(sources: Sequence[tuple[VideoInfo, EventList]], name: str | None = None) -> otio.schema.Timeline:
    """One video track, one clip per event, in the order given (source by source).

    Each clip's metadata (``autotosis``) keeps the event's exact millisecond bounds and
    scores; the timeline's metadata lists the sources, their rates and any rate note.
    """
    import opentimelineio as otio

    if not sources:
        raise UsageError("nothing to export: no events files given")
    timeline = otio.schema.Timeline(name=_one_line(name) if name else "autotosis highlights")
    track = otio.schema.Track(name="highlights", kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    reels = _reel_names([info.path for info, _ in sources])
    described = []
    for (info, events), reel in zip(sources, reels):
        chosen = timeline_rate(info.fps)
        reference = _media_reference(info, chosen)
        for event in _checked_events(info, events):
            track.append(_clip(event, info, chosen.rate, reference, reel))
        described.append(
            {
                "video": str(Path(info.path).absolute()),
                "source_fps": None if info.fps is None else str(info.fps),
                "timeline_rate": str(chosen.rate),
                "rate_note": chosen.note,
                "events": len(events.events),
                "reel": reel,
            }
        )
    first_rate = timeline_rate(sources[0][0].fps).rate
    timeline.global_start_time = otio.opentime.RationalTime(0, float(first_rate))
    timeline.metadata["autotosis"] = {"format": "autotosis-timeline/1", "sources": described}
    return timeline


def _checked_events(info: VideoInfo, events: EventList) -> list[Event]:
    """The events, checked against the video they are about to reference."""
    inside = []
    for event in events.events:
        if event.start_ms >= info.duration_ms:
            raise DataError(
                f"{info.path}: event at {event.start_ms / 1000:.1f} s is past the video's end "
                f"({info.duration_ms / 1000:.1f} s)",
                hint="were the events made from another video? pass the right one with --video",
            )
        inside.append(event)
    return inside


def _media_reference(info: VideoInfo, chosen: TimelineRate):
    import opentimelineio as otio

    rate = float(chosen.rate)
    frames = max(1, ms_to_frames(info.duration_ms, chosen.rate))
    return otio.schema.ExternalReference(
        target_url=Path(info.path).absolute().as_uri(),
        available_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(frames, rate)
        ),
        metadata={
            "autotosis": {
                "width": info.width,
                "height": info.height,
                "has_audio": info.has_audio,
                "source_fps": None if info.fps is None else str(info.fps),
                "timeline_rate": str(chosen.rate),
                "rate_note": chosen.note,
            }
        },
    )


def _clip(event: Event, info: VideoInfo, rate: Fraction, reference, reel: str):
    import opentimelineio as otio

    start, end, peak = _frame_bounds(
        event.start_ms, event.end_ms, event.peak_ms, rate, max(1, ms_to_frames(info.duration_ms, rate))
    )
    r = float(rate)
    clip = otio.schema.Clip(
        name=clip_name(event),
        media_reference=reference.clone(),
        source_range=otio.opentime.TimeRange(
            otio.opentime.RationalTime(start, r), otio.opentime.RationalTime(end - start, r)
        ),
    )
    clip.media_reference.name = Path(info.path).name
    clip.metadata["autotosis"] = {
        "label": event.label,
        "peak": float(event.peak),
        "mean": float(event.mean),
        "start_ms": int(event.start_ms),
        "end_ms": int(event.end_ms),
        "peak_ms": int(event.peak_ms),
        "video": str(Path(info.path).absolute()),
    }
    clip.metadata["cmx_3600"] = {"reel": reel}
    # A marker on the best frame: editors show it, and EDL/FCPXML carry it.
    clip.markers.append(
        otio.schema.Marker(
            name=f"peak {event.score_text}",
            marked_range=otio.opentime.TimeRange(otio.opentime.RationalTime(peak, r), otio.opentime.RationalTime(0, r)),
            color=otio.schema.MarkerColor.MAGENTA,
        )
    )
    return clip


def _frame_bounds(start_ms: int, end_ms: int, peak_ms: int, rate: Fraction, last_frame: int) -> tuple[int, int, int]:
    """First frame, one past the last frame, and the peak frame of an event: at least one frame, inside the video."""
    start = min(ms_to_frames(start_ms, rate), last_frame - 1)
    end = min(max(ms_to_frames(end_ms, rate), start + 1), last_frame)
    peak = min(max(ms_to_frames(peak_ms, rate), start), end - 1)
    return start, end, peak


def _reel_names(paths: Sequence[Path]) -> list[str]:
    """EDL reel names: up to 8 letters/digits from each file's name, unique per distinct file."""
    names: dict[Path, str] = {}
    for path in paths:
        key = Path(path).absolute()
        if key in names:
            continue
        base = re.sub(r"[^A-Za-z0-9]", "", Path(path).stem).upper()[:8] or "AX"
        candidate, n = base, 1
        while candidate in names.values():
            n += 1
            candidate = base[: 8 - len(str(n))] + str(n)
        names[key] = candidate
    return [names[Path(p).absolute()] for p in paths]


def timeline_text(timeline: otio.schema.Timeline, fmt: str) -> tuple[str, list[str]]:
    """The timeline written by OpenTimelineIO as ``otio``, ``edl`` or ``fcpxml``, plus warnings."""
    import opentimelineio as otio

    if fmt == "otio":
        return otio.adapters.write_to_string(timeline, "otio_json"), []
    if fmt == "edl":
        return _edl_text(timeline)
    if fmt == "fcpxml":
        return _fcpxml_text(timeline), []
    raise UsageError(f"not a timeline format: {fmt!r}", hint=f"one of {', '.join(TIMELINE_FORMATS)}")


def _edl_text(timeline: otio.schema.Timeline) -> tuple[str, list[str]]:
    import opentimelineio as otio

    sources = timeline.metadata.get("autotosis", {}).get("sources") or []
    clips = [c.clone() for c in timeline.find_clips()]
    rates = [Fraction(s["timeline_rate"]) for s in sources] or [_clip_rate(c) for c in clips] or [DEFAULT_RATE]
    rate = rates[0]
    fcm = "FCM: DROP FRAME" if rate in DROP_FRAME_RATES else "FCM: NON-DROP FRAME"
    if not clips:  # the adapter fails on an empty track; an EDL with no events is just its header
        return f"TITLE: {_edl_safe(timeline.name)}\n{fcm}\n", []
    warnings = []
    if any(r != rate for r in rates):
        warnings.append(
            f"an EDL has one timecode rate ({rate_text(rate)} fps, the first video's): "
            "clips from videos at other rates are rounded to its frames; use otio or fcpxml to keep each rate"
        )
    for clip in clips:
        clip.name = _edl_safe(clip.name)
        if clip.source_range.duration.rate != float(rate):
            _move_to_rate(clip, rate)
    edl = otio.adapters.write_to_string(
        _with_clips(timeline, clips, _edl_safe(timeline.name)), "cmx_3600", rate=float(rate)
    )
    # The adapter leaves out the frame-count mode; editors assume non-drop without it.
    title, sep, body = edl.partition("\n\n")
    edl = f"{title}\n{fcm}\n\n{body}" if title.startswith("TITLE:") and sep else f"{fcm}\n\n{edl}"
    return edl, warnings


def _clip_rate(clip) -> Fraction:
    # OTIO stores rates as doubles; NTSC rates come back as their exact x/1001 fractions.
    return exact_rate(clip.source_range.duration.rate)


def _move_to_rate(clip, rate: Fraction) -> None:
    """Re-express a clip at another frame rate from its exact millisecond bounds.

    Converting source in/out and record in/out separately would round them differently and
    leave source and record durations unequal, which EDL readers reject.
    """
    import opentimelineio as otio

    r = float(rate)
    meta = clip.metadata["autotosis"]
    reference = clip.media_reference
    last_frame = max(1, round(reference.available_range.duration.rescaled_to(r).value))
    reference.available_range = otio.opentime.TimeRange(
        otio.opentime.RationalTime(0, r), otio.opentime.RationalTime(last_frame, r)
    )
    start, end, peak = _frame_bounds(meta["start_ms"], meta["end_ms"], meta["peak_ms"], rate, last_frame)
    clip.source_range = otio.opentime.TimeRange(
        otio.opentime.RationalTime(start, r), otio.opentime.RationalTime(end - start, r)
    )
    for marker in clip.markers:
        marker.marked_range = otio.opentime.TimeRange(
            otio.opentime.RationalTime(peak, r), otio.opentime.RationalTime(0, r)
        )


def _edl_safe(text: str) -> str:
    # EDL comments are plain ASCII lines: drop what tools choke on.
    return _one_line(text).encode("ascii", "replace").decode("ascii")


def _with_clips(timeline: otio.schema.Timeline, clips: list, name: str) -> otio.schema.Timeline:
    """A copy of ``timeline`` named ``name`` whose only track holds ``clips``."""
    import opentimelineio as otio

    copy = otio.schema.Timeline(
        name=name, global_start_time=timeline.global_start_time, metadata=dict(timeline.metadata)
    )
    track = otio.schema.Track(name="highlights", kind=otio.schema.TrackKind.Video)
    for clip in clips:
        track.append(clip)
    copy.tracks.append(track)
    return copy


# FCP X names its standard formats; other sizes are described by width and height alone.
_FCP_SIZES = {(1280, 720): "720p", (1920, 1080): "1080p", (3840, 2160): "2160p"}


def _fcp_format_name(width: int, height: int, rate: Fraction) -> str | None:
    size = _FCP_SIZES.get((width, height))
    if size is None:
        return None
    code = str(rate.numerator) if rate.denominator == 1 else f"{float(rate):.2f}".replace(".", "")
    return f"FFVideoFormat{size}{code}"


def _fcpxml_text(timeline: otio.schema.Timeline) -> str:
    """FCPXML by the adapter, with its frame-rate table and ffprobe call replaced.

    otio-fcpx-xml-adapter 1.0.0 looks frame durations up with ``int(rate)`` (so 29.97 and
    59.94 get an empty ``frameDuration``) and runs ffprobe itself to name formats.  The
    subclass below gives it exact frame durations and the size we already know, and names
    the asset after its file; everything else is the adapter's own output.
    """
    clips = [c.clone() for c in timeline.find_clips()]
    for clip in clips:
        # The adapter builds XPath queries from clip names; an apostrophe would break them.
        clip.name = _one_line(clip.name).replace("'", "\u2019")
    return _fcpxml_writer()(_with_clips(timeline, clips, _one_line(timeline.name).replace("'", "\u2019"))).to_xml()


def _fcpxml_writer():
    from otio_fcpx_xml_adapter import fcpx_xml

    class ExactRateFcpxWriter(fcpx_xml.FcpxOtio):
        @staticmethod
        def _framerate_to_frame_duration(framerate) -> str:
            duration = 1 / Fraction(float(framerate)).limit_denominator(1001)
            return f"{duration.numerator}/{duration.denominator}s"

        def _clip_format_name(self, clip) -> str:
            info = _reference_info(clip)
            if not info:
                return ""
            return _fcp_format_name(info["width"], info["height"], Fraction(info["timeline_rate"])) or ""

        def _find_or_create_format_from(self, clip):
            element = super()._find_or_create_format_from(clip)
            info = _reference_info(clip)
            if info:
                element.set("width", str(info["width"]))
                element.set("height", str(info["height"]))
            if not element.get("name"):
                element.attrib.pop("name", None)
            return element

        def _element_for_item(self, item, lane, ref_only=False, compound=False):
            # The adapter writes a marker's name (value) but not its comment: FCPXML's note attribute.
            element = super()._element_for_item(item, lane, ref_only, compound)
            if element is not None:
                for marker_element, marker in zip(element.findall("marker"), item.markers):
                    comment = _one_line(getattr(marker, "comment", "") or "")
                    if comment:
                        marker_element.set("note", comment)
            return element

        def _create_asset_element(self, clip, format_element):
            asset = super()._create_asset_element(clip, format_element)
            info = _reference_info(clip)
            if info and clip.media_reference.name:
                asset.set("name", clip.media_reference.name)
            if info and info.get("has_audio"):
                asset.set("hasAudio", "1")
            return asset

    return ExactRateFcpxWriter


def _reference_info(clip) -> dict:
    reference = getattr(clip, "media_reference", None)  # the adapter also asks about stacks and tracks
    if reference is None or reference.is_missing_reference:
        return {}
    info = reference.metadata.get("autotosis")
    return dict(info) if info else {}
