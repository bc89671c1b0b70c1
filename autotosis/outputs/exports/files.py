"""Which files an export writes and writing them together: format names, output paths, ``export_events``
(timelines, markers, chapters, SRT, and the events' JSON and CSV)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from autotosis.core.errors import UsageError
from autotosis.core.fsutil import check_writable, write_text_atomic
from autotosis.detect.segments import EventList, write_events
from autotosis.outputs.exports.chapters import chapters_ffmetadata, chapters_youtube, source_chapters
from autotosis.outputs.exports.editors import TIMELINE_FORMATS, build_timeline, timeline_text
from autotosis.outputs.exports.markers import MARKER_SUFFIXES, build_marker_timeline, marker_texts
from autotosis.outputs.exports.subtitles import events_srt

if TYPE_CHECKING:
    from autotosis.media.probe import VideoInfo

PER_VIDEO_FORMATS = ("chapters", "srt", "json", "csv")
# The formats that open the video (its frame rate and length): the timelines and the markers.
VIDEO_FORMATS = (*TIMELINE_FORMATS, "markers")
EXPORT_FORMATS = VIDEO_FORMATS + PER_VIDEO_FORMATS

# File name endings added to the output stem; "chapters" writes two files, "markers" three.
FORMAT_SUFFIXES: dict[str, tuple[str, ...]] = {
    "otio": (".otio",),
    "edl": (".edl",),
    "fcpxml": (".fcpxml",),
    "markers": MARKER_SUFFIXES,
    "chapters": (".ffmetadata", ".youtube.txt"),
    "srt": (".srt",),
    "json": (".json",),
    "csv": (".csv",),
}


@dataclass(frozen=True)
class ExportResult:
    paths: tuple[Path, ...]  # every file written, in format order
    warnings: tuple[str, ...]  # things a person should know (YouTube chapter rules, EDL rate, ...)


# A source video (None when only per-video formats are wanted) and its events.
ExportSource = tuple["VideoInfo | None", EventList]


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

    Timeline formats (otio, edl, fcpxml) and markers take any number of sources and need each video's
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
    video_formats = [f for f in formats if f in VIDEO_FORMATS]
    if video_formats:
        missing = [events for info, events in sources if info is None]
        if missing:
            raise UsageError(
                f"{', '.join(video_formats)} need the source video (for its frame rate and length)",
                hint="pass --video VIDEO, or export only chapters, srt, json or csv",
            )
    timeline_formats = [f for f in formats if f in TIMELINE_FORMATS]
    if "markers" in formats:
        markers = build_marker_timeline([(info, events) for info, events in sources], name)  # type: ignore[misc]
        marker_files, notes = marker_texts(markers)
        warnings += [
            f"{s['video']}: {s['rate_note']}" for s in markers.metadata["autotosis"]["sources"] if s["rate_note"]
        ]
        warnings += notes
        for path, suffix in zip(targets["markers"], MARKER_SUFFIXES):
            texts[path] = marker_files[suffix]
    if timeline_formats:
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
