"""Editors' timelines -> marks: what an editor kept of each source (OTIO, CMX 3600 EDL, FCPXML, read by
OpenTimelineIO and its adapters), the markers on whole sources (``export --format markers`` writes such
timelines), and DaVinci Resolve marker EDLs (``core/edl_markers.py``).

A timeline of cuts: each clip's source range on its media file is a positive span of that file; the rest of
the file is a negative (or unsure, ``--rest unsure``).  A timeline whose clips each hold a whole source
(nothing cut away) and carry markers: the markers are the marks (a marker with a length is a span, one
without a point marker), the clips only say which file they are on.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from urllib.parse import unquote, urlparse

from autotosis.core.edl_markers import is_marker_edl
from autotosis.core.errors import LabelError, LabelErrors
from autotosis.core.frametime import exact_rate, ms_to_frames, time_to_ms, timeline_rate
from autotosis.labels.mark_sources import resolve_edl_marks
from autotosis.labels.marks import ClipMarks, Mark
from autotosis.labels.parse import _read_text, resolve_clip_path

TIMELINE_SUFFIXES = (".otio", ".otioz", ".edl", ".fcpxml")
_SUFFIX_HINT = (
    "timelines are read from .otio/.otioz (OpenTimelineIO), .edl (CMX 3600, or a Resolve marker EDL) and .fcpxml "
    "(Final Cut Pro X); export one of those from the editor (FCP 7 / Premiere .xml and AAF are not read)"
)
_FROM_CLIP_RE = re.compile(r"^\*\s*FROM (?:CLIP|FILE):\s*(?P<url>.+?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass(frozen=True)
class ClipFacts:
    """What the importer needs to know about a video (the CLI probes it: labels never opens a video)."""

    duration_ms: int
    fps: Fraction | None


# The facts of a video file, or None when there is no such file.
Facts = Callable[[Path], "ClipFacts | None"]


@dataclass(frozen=True)
class _Source:
    path: Path  # the media file as the timeline names it (resolved against the timeline's folder)
    clips: list  # (number, otio clip) on the timeline's video tracks, in order


def timeline_marks(
    path: Path,
    *,
    clip: Path | None,
    facts: Facts,
    fps: Fraction | None = None,
    timecode_start: str | None = None,
) -> tuple[list[ClipMarks], tuple[str, ...]]:
    """The marks of every source the timeline at ``path`` uses (only ``clip``'s, when given), and notes.

    ``clip`` also says which video a timeline's source is when the timeline's path is stale (moved media:
    a source with the same file name, or the only source).  ``fps`` is an EDL's timecode rate (an EDL does
    not state it; default: the rate ``export`` gives the video).  Problems are LabelErrors at ``path``.
    """
    path = Path(path)
    suffix = _suffix(path)
    if suffix not in TIMELINE_SUFFIXES:
        raise LabelErrors([_error(path, f"{suffix or 'no extension'}: not a timeline format", _SUFFIX_HINT)])
    base = Path(os.path.abspath(path.parent))
    wanted = resolve_clip_path(os.getcwd(), str(clip)) if clip is not None else None
    if suffix == ".edl":
        text, _, problems = _read_text(path)
        if problems:
            raise LabelErrors(problems)
        if is_marker_edl(text):
            return [_marker_edl(path, wanted, facts, fps, timecode_start)], ()
        rate = fps or _edl_rate(path, text, wanted, base, facts)
        timeline = _read(path, lambda otio: otio.adapters.read_from_string(text, "cmx_3600", rate=float(rate)))
    elif suffix == ".fcpxml":
        text = _read_bytes(path).decode("utf-8", errors="replace")
        timeline = _read(path, lambda otio: _fcpxml_reader()(text.encode("utf-8")).to_otio())
    else:
        timeline = _read(path, lambda otio: otio.adapters.read_from_file(str(path)))
    sources = _sources(path, timeline, base)
    notes: list[str] = []
    if wanted is not None:
        sources, notes = _choose(path, sources, wanted)
    out = []
    for source in sources:
        known = facts(source.path)
        if known is None:
            number, first = source.clips[0]
            raise LabelErrors(
                [
                    _error(
                        path,
                        f"clip {number} {first.name!r} refers to {source.path}, which does not exist",
                        "relink the media in the editor and export again, or pass --clip VIDEO to say which video "
                        "it is",
                    )
                ]
            )
        out.append(_source_marks(path, source, known))
    return out, tuple(notes)


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def _error(path: Path, message: str, hint: str | None = None) -> LabelError:
    return LabelError(path, 0, 0, message, hint)


def _read(path: Path, read):
    import opentimelineio as otio

    try:
        return read(otio)
    except Exception as exc:  # the adapters raise anything from OTIOError to KeyError on a broken file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LabelErrors(
            [_error(path, f"cannot read the timeline: {reason}", "is it a complete file the editor exported?")]
        ) from exc


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LabelErrors([_error(path, f"cannot read it: {exc.strerror or exc}")]) from None


def _fcpxml_reader():
    """OpenTimelineIO's FCPXML reader with exact times.

    otio-fcpx-xml-adapter 1.0.0 reads times at ``int(rate)`` frames per second (29.97 as 29), so clips and
    markers of a 29.97 fps FCPXML come back up to a frame early and 0.1% short.  FCPXML times are exact
    rational seconds; this subclass keeps them so, at the format's exact rate.
    """
    import opentimelineio as otio
    from otio_fcpx_xml_adapter import fcpx_xml

    class ExactRateFcpxReader(fcpx_xml.FcpxXml):
        def _exact_rate(self, format_id) -> Fraction:
            total, rate = self._format_frame_duration(format_id)
            return Fraction(rate) / Fraction(total)

        def _exact_time(self, text, rate: Fraction):
            seconds = Fraction(0) if not text or text == "0s" else Fraction(str(text).rstrip("s"))
            return otio.opentime.RationalTime(float(seconds * rate), float(rate))

        def _time_range(self, element, format_id):
            rate = self._exact_rate(format_id)
            return otio.opentime.TimeRange(
                start_time=self._exact_time(element.get("start", "0s"), rate),
                duration=self._exact_time(element.get("duration"), rate),
            )

        def _reference_from_id(self, asset_id, default_format):
            reference = super()._reference_from_id(asset_id, default_format)
            asset = self._asset_by_id(asset_id)
            if isinstance(reference, otio.schema.ExternalReference) and asset is not None:
                rate = self._exact_rate(asset.get("format", default_format))
                reference.available_range = otio.opentime.TimeRange(
                    start_time=self._exact_time(asset.get("start"), rate),
                    duration=self._exact_time(asset.get("duration"), rate),
                )
            return reference

    return ExactRateFcpxReader


def _edl_rate(path: Path, text: str, wanted: Path | None, base: Path, facts: Facts) -> Fraction:
    """An EDL's timecode rate: the rate ``export`` gives the video (``--clip``, else the first source found)."""
    candidates = [wanted] if wanted is not None else []
    candidates += [_url_path(m["url"], base) for m in _FROM_CLIP_RE.finditer(text)]
    for candidate in candidates:
        if candidate is None:
            continue
        known = facts(candidate)
        if known is not None:
            return timeline_rate(known.fps).rate
    raise LabelErrors(
        [
            _error(
                path,
                "an EDL does not say its frame rate, and none of its videos could be opened",
                "pass --fps RATE (e.g. 30 or 30000/1001), or --clip VIDEO",
            )
        ]
    )


def _marker_edl(
    path: Path, wanted: Path | None, facts: Facts, fps: Fraction | None, timecode_start: str | None
) -> ClipMarks:
    if wanted is None:
        raise LabelErrors(
            [_error(path, "a marker EDL names no video", "pass --clip VIDEO: the video the markers are on")]
        )
    known = facts(wanted)
    rate = fps or (timeline_rate(known.fps).rate if known is not None else None)
    if rate is None:
        raise LabelErrors(
            [
                _error(
                    path,
                    f"a marker EDL does not say its frame rate, and {wanted} does not exist",
                    "pass --fps RATE (the timeline's), or --clip with the video itself",
                )
            ]
        )
    return resolve_edl_marks(path, wanted, known.duration_ms if known else None, rate, timecode_start)


def _url_path(url: str, base: Path) -> Path | None:
    """A media reference's file: ``file://`` URLs (percent-decoded) or plain paths (relative to the timeline)."""
    url = url.strip()
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            return None
        return Path(unquote(parsed.path))
    if parsed.scheme and len(parsed.scheme) > 1:  # http:, s3:, ... (one letter: a Windows drive)
        return None
    return Path(resolve_clip_path(base, url))


def _sources(path: Path, timeline, base: Path) -> list[_Source]:
    import opentimelineio as otio

    if timeline is None:
        raise LabelErrors([_error(path, "holds no timeline (no project, event or clips)")])
    if isinstance(timeline, otio.schema.Timeline):
        timelines = [timeline]
    else:  # an FCPXML library or event: a collection of projects (timelines), or of loose clips
        timelines = list(timeline.find_children(descended_from_type=otio.schema.Timeline, shallow_search=True))
    clips = []
    for one in timelines:
        tracks = list(one.video_tracks()) or list(one.tracks)  # audio clips repeat the video's, or are music
        clips += [clip for track in tracks for clip in track.find_clips()]
    if not timelines and not isinstance(timeline, otio.schema.Timeline):
        clips = list(timeline.find_clips())
    if not clips:
        raise LabelErrors(
            [_error(path, "the timeline is empty: it has no clips", "export the timeline with its clips in it")]
        )
    by_path: dict[Path, _Source] = {}
    for number, clip in enumerate(clips, start=1):
        reference = clip.media_reference
        if isinstance(reference, otio.schema.GeneratorReference):
            continue  # black, bars: no source
        url = getattr(reference, "target_url", None)
        media = _url_path(url, base) if isinstance(url, str) else None
        if media is None:
            what = f"a media reference that is not a file ({url})" if url else "no media file (offline media?)"
            raise LabelErrors(
                [_error(path, f"clip {number} {clip.name!r} has {what}", "relink the media in the editor")]
            )
        by_path.setdefault(media, _Source(media, [])).clips.append((number, clip))
    if not by_path:
        raise LabelErrors([_error(path, "the timeline uses no video file (only generators)")])
    return list(by_path.values())


def _choose(path: Path, sources: list[_Source], wanted: Path) -> tuple[list[_Source], list[str]]:
    """The sources that are ``wanted``: the same path, else the same file name, else the only source."""
    same = [s for s in sources if s.path == wanted]
    if not same:
        same = [s for s in sources if s.path.name == wanted.name]
    notes = []
    if not same and len(sources) == 1:
        same = sources
        notes.append(f"the timeline's only source {sources[0].path} was taken as {wanted}")
    if not same:
        listed = ", ".join(str(s.path) for s in sources[:5]) + (" ..." if len(sources) > 5 else "")
        raise LabelErrors([_error(path, f"no clip of the timeline uses {wanted}", f"its sources are {listed}")])
    clips = sorted((pair for s in same for pair in s.clips), key=lambda pair: pair[0])
    others = [s for s in sources if s not in same]
    if others:
        notes.append(f"clips of {len(others)} other source{'s' if len(others) != 1 else ''} left out")
    return [_Source(wanted, clips)], notes


def _ms(time) -> int:
    return time_to_ms(time.value, time.rate)


def _media_start_ms(clip) -> int:
    available = getattr(clip.media_reference, "available_range", None)
    return _ms(available.start_time) if available is not None else 0


def _whole(clip) -> bool:
    """Whether the clip holds its whole source (within a frame): nothing of it was cut away."""
    available = getattr(clip.media_reference, "available_range", None)
    if available is None:
        return False
    kept = clip.trimmed_range()
    frame = max(1, time_to_ms(1, kept.duration.rate))
    return (
        abs(_ms(kept.start_time) - _ms(available.start_time)) <= frame
        and abs(_ms(kept.end_time_exclusive()) - _ms(available.end_time_exclusive())) <= frame
    )


def _exact(metadata, start, end) -> tuple[int, int] | None:
    """The exact millisecond bounds autotosis stored with a clip or marker, while the editor kept its frames."""
    meta = metadata.get("autotosis") if metadata is not None else None
    try:
        start_ms, end_ms = int(meta["start_ms"]), int(meta["end_ms"])
    except (TypeError, KeyError, ValueError):
        return None
    rate = exact_rate(start.rate)
    if ms_to_frames(start_ms, rate) == round(start.value) and ms_to_frames(end_ms, rate) == round(
        end.rescaled_to(start.rate).value
    ):
        return start_ms, end_ms
    return None


def _label_of(metadata) -> str:
    meta = metadata.get("autotosis") if metadata is not None else None
    label = meta.get("label") if hasattr(meta, "get") else None
    return label if isinstance(label, str) else ""


def _source_marks(path: Path, source: _Source, known: ClipFacts) -> ClipMarks:
    markers_mode = all(_whole(clip) for _, clip in source.clips) and any(clip.markers for _, clip in source.clips)
    marks: list[Mark] = []
    for number, clip in source.clips:
        offset = _media_start_ms(clip)
        name = " ".join((clip.name or "").split())
        if markers_mode:
            for index, marker in enumerate(clip.markers, start=1):
                marked = marker.marked_range
                start, end = marked.start_time, marked.end_time_exclusive()
                exact = _exact(marker.metadata, start, end) if offset == 0 else None
                start_ms, end_ms = exact or (max(0, _ms(start) - offset), max(0, _ms(end) - offset))
                kind = "span" if end_ms > start_ms and _ms(marked.duration) > 0 else "point"
                comment = " ".join((getattr(marker, "comment", "") or "").split())
                marks.append(
                    Mark(
                        kind,
                        start_ms,
                        end_ms if kind == "span" else None,
                        marker.name or "",
                        f"marker {index} on clip {number}",
                        detail=f'"{comment}"' if comment else "",
                    )
                )
            continue
        kept = clip.trimmed_range()
        start, end = kept.start_time, kept.end_time_exclusive()
        exact = _exact(clip.metadata, start, end) if offset == 0 else None
        start_ms, end_ms = exact or (max(0, _ms(start) - offset), max(0, _ms(end) - offset))
        if end_ms <= start_ms:
            continue
        marks.append(
            Mark(
                "span", start_ms, end_ms, _label_of(clip.metadata), f"clip {number}", detail=f'"{name}"' if name else ""
            )
        )
    what = f'{"the markers in" if markers_mode else "what was kept in"} the timeline "{path.name}"'
    return ClipMarks(source.path, tuple(marks), known.duration_ms, what)
