"""Events -> files for editors and viewers: OTIO, EDL, FCPXML, chapters, SRT, JSON, CSV.

The editor formats are written by OpenTimelineIO and its maintained adapters
(``otio-cmx3600-adapter`` for CMX 3600 EDL, ``otio-fcpx-xml-adapter`` for FCPXML), never by
hand.  One timeline holds one video track with one clip per event; each clip references
its source video (an absolute ``file://`` URL, the whole video as the available range) and
its source range is the event in whole frames at the source's frame rate.

Times stay exact: event bounds are integer milliseconds and become frame numbers by exact
rational arithmetic (``Fraction``), so 29.97 and 59.94 fps sources get NTSC frame counts,
not float drift.  A source whose rate is not a standard timecode rate (a variable frame
rate recording reports its average, e.g. 24.985 fps) is placed on the nearest standard rate
and the timeline's metadata says so.

Chapters come in two forms from one list: ffmetadata (muxed into a rendered reel by
``media.concat_segments(..., chapters_file=...)``) and a YouTube description block.  In the
source video a chapter starts where a highlight starts and lasts until the next one, as
YouTube chapters do; in a reel the chapters are the reel's pieces (see ``reel_chapters``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING

from autotosis.core.errors import DataError, UsageError
from autotosis.core.fsutil import check_writable, write_text_atomic
from autotosis.core.timefmt import clock_seconds, srt_time
from autotosis.detect.segments import Event, EventList, write_events

if TYPE_CHECKING:
    import opentimelineio as otio

    from autotosis.media.probe import VideoInfo

TIMELINE_FORMATS = ("otio", "edl", "fcpxml")
PER_VIDEO_FORMATS = ("chapters", "srt", "json", "csv")
EXPORT_FORMATS = TIMELINE_FORMATS + PER_VIDEO_FORMATS

# File name endings added to the output stem; "chapters" writes two files.
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "otio": (".otio",),
    "edl": (".edl",),
    "fcpxml": (".fcpxml",),
    "chapters": (".ffmetadata", ".youtube.txt"),
    "srt": (".srt",),
    "json": (".json",),
    "csv": (".csv",),
}

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
DROP_FRAME_RATES = (Fraction(30000, 1001), Fraction(60000, 1001))
DEFAULT_RATE = Fraction(30)

YOUTUBE_MIN_CHAPTERS = 3
YOUTUBE_MIN_CHAPTER_MS = 10_000


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class TimelineRate:
    """The frame rate a source's clips are expressed in, and why, when it is not the source's own."""

    rate: Fraction
    note: str | None = None  # set when the source rate was unknown or not a standard rate


@dataclass(frozen=True)
class Chapter:
    start_ms: int
    end_ms: int
    title: str

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms


@dataclass(frozen=True)
class ExportResult:
    paths: tuple[Path, ...]  # every file written, in format order
    warnings: tuple[str, ...]  # things a person should know (YouTube chapter rules, EDL rate, ...)


# A source video (None when only per-video formats are wanted) and its events.
ExportSource = tuple["VideoInfo | None", EventList]


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
    """A class name fit for one line of text: control characters and runs of spaces become one space."""
    return re.sub(r"[\s\x00-\x1f\x7f]+", " ", label).strip() or "event"


def chapter_title(event: Event) -> str:
    """``"rage 0.87"``: the class and the event's mean score."""
    return f"{display_label(event.label)} {event.mean:.2f}"


def clip_name(event: Event) -> str:
    """``"rage 0.87 @ 0:12:03"``: class, mean score and where the event starts in its source (``H:MM:SS``)."""
    return f"{chapter_title(event)} @ {clock_seconds(event.start_ms, hours='always')}"


def srt_text(event: Event) -> str:
    """``"rage 0.87 (peak 0.93)"``: the subtitle shown during an event."""
    return f"{chapter_title(event)} (peak {event.peak:.2f})"


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
            name=f"peak {event.peak:.2f}",
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


def _one_line(text: str) -> str:
    return re.sub(r"[\s\x00-\x1f\x7f]+", " ", text).strip()


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
            f"an EDL has one timecode rate ({_rate_text(rate)} fps, the first video's): "
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
    return Fraction(clip.source_range.duration.rate).limit_denominator(1001)


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


# --------------------------------------------------------------------------- subtitles


def events_srt(events: Sequence[Event]) -> str:
    """SubRip subtitles: one cue per event, ``rage 0.87 (peak 0.93)``, in time order."""
    cues = []
    for number, event in enumerate(sorted(events, key=lambda e: (e.start_ms, e.end_ms)), 1):
        cues.append(f"{number}\n{srt_time(event.start_ms)} --> {srt_time(event.end_ms)}\n{srt_text(event)}\n")
    return "\n".join(cues)


# --------------------------------------------------------------------------- writing files


def parse_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """``"otio,edl"`` (or a list of such) -> known format names, in the canonical order; ``all`` means every one."""
    items = [text] if isinstance(text, str) else list(text)
    names = [n.strip().lower() for item in items for n in item.split(",") if n.strip()]
    if "all" in names:
        return EXPORT_FORMATS
    unknown = [n for n in names if n not in EXPORT_FORMATS]
    if unknown:
        raise UsageError(
            f"unknown export format {unknown[0]!r}",
            hint=f"choose from {', '.join(EXPORT_FORMATS)} (comma-separated), or all",
        )
    if not names:
        raise UsageError("no export format given", hint=f"choose from {', '.join(EXPORT_FORMATS)}")
    return tuple(f for f in EXPORT_FORMATS if f in names)


def export_paths(output: Path, formats: Sequence[str]) -> dict[str, tuple[Path, ...]]:
    """Where each format goes: ``output`` plus the format's ending(s).

    With a single one-file format, an ``output`` that already ends in that format's suffix is used as is.
    """
    output = Path(output)
    paths = {}
    for fmt in formats:
        suffixes = FORMAT_SUFFIXES[fmt]
        if len(formats) == 1 and len(suffixes) == 1 and output.name.lower().endswith(suffixes[0]):
            paths[fmt] = (output,)
        else:
            paths[fmt] = tuple(output.with_name(output.name + s) for s in suffixes)
    return paths


def export_events(
    sources: Sequence[ExportSource],
    formats: Sequence[str],
    output: Path,
    *,
    name: str | None = None,
    force: bool = False,
    protect: Sequence[Path] = (),
) -> ExportResult:
    """Write ``formats`` for ``sources`` (pairs of probed video and its events) next to ``output``.

    Timeline formats (otio, edl, fcpxml) take any number of sources and need each video's
    info; per-video formats (chapters, srt, json, csv) take exactly one source.  All files
    are generated first and checked for overwriting, so a refusal writes nothing; each file
    is then written atomically.  ``protect`` lists files (the input) that must never be
    replaced, even with ``force``.
    """
    formats = parse_formats(formats)
    if not sources:
        raise UsageError("nothing to export: no events given")
    targets = export_paths(Path(output), formats)
    _check_targets(targets, protect, force)
    texts: dict[Path, str] = {}
    warnings: list[str] = []
    json_or_csv: dict[Path, EventList] = {}
    timeline_formats = [f for f in formats if f in TIMELINE_FORMATS]
    if timeline_formats:
        missing = [events for info, events in sources if info is None]
        if missing:
            raise UsageError(
                f"{', '.join(timeline_formats)} need the source video (for its frame rate and length)",
                hint="pass --video VIDEO, or export only chapters, srt, json or csv",
            )
        timeline = build_timeline([(info, events) for info, events in sources], name)  # type: ignore[misc]
        warnings += [
            f"{s['video']}: {s['rate_note']}" for s in timeline.metadata["autotosis"]["sources"] if s["rate_note"]
        ]
        if not any(events.events for _, events in sources):
            warnings.append("no events: the timeline is empty")
        for fmt in timeline_formats:
            text, notes = timeline_text(timeline, fmt)
            texts[targets[fmt][0]] = text
            warnings += notes
    per_video = [f for f in formats if f in PER_VIDEO_FORMATS]
    if per_video:
        if len(sources) != 1:
            raise UsageError(
                f"{', '.join(per_video)} describe one video; {len(sources)} were given",
                hint="export them from each events file separately, or choose otio, edl or fcpxml",
            )
        info, events = sources[0]
        if info is not None:
            events = replace(events, video=Path(info.path))
        for fmt in per_video:
            if fmt == "chapters":
                chapters = source_chapters(events, info.duration_ms if info is not None else None)
                ffmetadata_path, youtube_path = targets[fmt]
                texts[ffmetadata_path] = chapters_ffmetadata(chapters)
                texts[youtube_path], notes = chapters_youtube(chapters)
                warnings += notes
            elif fmt == "srt":
                texts[targets[fmt][0]] = events_srt(events.events)
            else:
                json_or_csv[targets[fmt][0]] = events
    written = []
    for fmt in formats:
        for path in targets[fmt]:
            if path in json_or_csv:
                write_events(json_or_csv[path], path, force=force)
            else:
                write_text_atomic(path, texts[path], force=force)
            written.append(path)
    return ExportResult(tuple(written), tuple(warnings))


def _check_targets(targets: dict[str, tuple[Path, ...]], protect: Sequence[Path], force: bool) -> None:
    protected = {Path(p).resolve() for p in protect}
    for paths in targets.values():
        for path in paths:
            if path.resolve() in protected:
                raise UsageError(f"{path}: would overwrite the input", hint="choose another output name with -o")
    for paths in targets.values():
        for path in paths:
            check_writable(path, force)
