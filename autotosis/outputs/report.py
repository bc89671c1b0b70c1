"""Scores + events -> an HTML report, with a small playable clip per event beside it.

The page loads nothing from the network and runs no script.  The score timeline is inline SVG
(polyline, threshold line, shaded events, m:ss axis); every event has a card with its clip and
thumbnails (inline base64 JPEG, grabbed with ``decode.grab_frame``) at the start, peak and end of
the moment itself (the unpadded edges: the padding around an event is often a black or unrelated
frame); one larger frame shows the part of the picture the model scored as a rectangle; the
settings used are listed in a table of names and values.

Clips: one MP4 per event (H.264 + AAC, at most 480 px, ``encode.cut_preview``) in a folder named
after the report (``vod.report.html`` -> ``vod.report-clips/``), referenced by relative URLs, so
the page plays them from the file system and after the report and its folder are moved together.
``clips=False`` leaves them out, and the page is then one self-contained file.

Every string that came from outside (file names, class names, labels, settings) goes
through ``html.escape`` (and file names in URLs through ``urllib.parse.quote`` first), so a
class called ``<script>`` is shown, never run.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, is_dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

import numpy as np

from autotosis import __version__
from autotosis.core.errors import UsageError
from autotosis.core.fsutil import atomic_dir, check_writable, write_text_atomic
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.core.region import Region, crop_pixels
from autotosis.core.timefmt import clock_seconds, clock_tenths  # clock_tenths: event times, as in the terminal
from autotosis.detect.scores import Scores
from autotosis.detect.segments import Event, EventList, EventParams, moment_edges
from autotosis.outputs.exports.timecode import display_label

if TYPE_CHECKING:
    from autotosis.media.probe import VideoInfo

MAX_PLOT_POINTS = 4000  # a 4-hour scan at 10 scores/s is 144k samples; the browser needs far fewer
THUMBNAIL_WIDTH = 240  # an event thumbnail's longer side, in pixels (landscape: its width)
FRAME_BOX = (480, 360)  # the frame showing the scanned region fits in this (width, height)
JPEG_QUALITY = 80
CLIP_MAX_MS = 60_000  # a longer event's clip is the minute around its peak
CLIPS_SUFFIX = "-clips"  # vod.report.html -> vod.report-clips/
REGION_COLOUR = "#ff2bd6"  # the scanned region's rectangle: a magenta rarely seen in game footage

# Plot geometry in SVG user units (the SVG scales to the page width).
PLOT_WIDTH = 1200
PLOT_HEIGHT = 300
MARGIN_LEFT = 48
MARGIN_RIGHT = 40  # room for the last time label
MARGIN_TOP = 26  # event numbers sit above the plot, where the score line cannot hide them
MARGIN_BOTTOM = 36

MIN_EVENT_WIDTH = 4.0

_TICK_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400)


@dataclass(frozen=True)
class Thumbnail:
    role: str  # "start", "peak", "end" or "at"
    time_ms: int
    score: float
    jpeg: bytes
    width: int = THUMBNAIL_WIDTH
    height: int = 0  # 0: not known (the page then sizes it from the picture alone)


@dataclass(frozen=True)
class Clip:
    """An event's preview clip: its file (in the clips folder) and the part of the video it shows."""

    file_name: str
    start_ms: int
    end_ms: int
    width: int
    height: int


@dataclass(frozen=True)
class RegionFrame:
    """One full frame with the part the model scored (``region``: None = the whole frame)."""

    thumbnail: Thumbnail
    region: Region | None
    frame_size: tuple[int, int]  # the video's displayed size (square pixels), for the caption
    where: str  # which frame it is, in words


# --------------------------------------------------------------------------- time text


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


# --------------------------------------------------------------------------- plot data


def downsample(
    times_ms: np.ndarray, values: np.ndarray, max_points: int = MAX_PLOT_POINTS
) -> tuple[np.ndarray, np.ndarray]:
    """At most ``max_points`` points that keep every bucket's lowest and highest value, in time order.

    Averaging would flatten a one-sample spike, which is exactly what a highlight looks like.
    """
    times = np.asarray(times_ms, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    n = len(times)
    if n <= max_points:
        return times, values
    buckets = max(1, max_points // 2)
    size = math.ceil(n / buckets)
    padded = np.concatenate([values, np.full(buckets * size - n, np.nan)]).reshape(buckets, size)
    offsets = np.arange(buckets) * size
    lows = offsets + np.nanargmin(padded, axis=1)
    highs = offsets + np.nanargmax(padded, axis=1)
    keep = np.unique(np.concatenate([lows, highs]))
    return times[keep], values[keep]


def _tick_step_s(duration_ms: int, max_ticks: int = 12) -> int:
    seconds = max(1, duration_ms / 1000)
    return next((s for s in _TICK_STEPS_S if seconds / s <= max_ticks), _TICK_STEPS_S[-1])


# --------------------------------------------------------------------------- SVG


def _x(ms: float, duration_ms: int) -> float:
    return MARGIN_LEFT + (PLOT_WIDTH - MARGIN_LEFT - MARGIN_RIGHT) * (ms / max(1, duration_ms))


def _y(score: float) -> float:
    return MARGIN_TOP + (PLOT_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM) * (1.0 - min(max(score, 0.0), 1.0))


def score_plot_svg(
    scores: Scores,
    column: str | None,
    events: Sequence[Event],
    threshold: float | None,
    release: float | None,
    duration_ms: int,
) -> str:
    """The score timeline as an inline SVG element (id ``score-plot``)."""
    parts = [
        f'<svg id="score-plot" class="score-plot" viewBox="0 0 {PLOT_WIDTH} {PLOT_HEIGHT}" role="img" '
        f'aria-label="{_e(f"score of {column} over time" if column else "score over time")}" '
        f'xmlns="http://www.w3.org/2000/svg">',
        f'<rect class="plot-bg" x="{MARGIN_LEFT}" y="{MARGIN_TOP}" width="{PLOT_WIDTH - MARGIN_LEFT - MARGIN_RIGHT}" '
        f'height="{PLOT_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM}"/>',
    ]
    parts += _grid(duration_ms)
    last_number_x = -math.inf
    for number, event in enumerate(events, 1):
        x0, x1 = _x(event.start_ms, duration_ms), _x(event.end_ms, duration_ms)
        width = max(x1 - x0, MIN_EVENT_WIDTH)  # a 20 s event in a 4-hour VOD is still visible
        tooltip = (
            f"#{number} {display_label(event.label)} {clock_tenths(event.start_ms)}–{clock_tenths(event.end_ms)} "
            f"peak {event.score_text}"
        )
        centre = x0 + width / 2
        # Numbers of events closer than a label's width would overprint each other: show the first.
        label = (
            f'<text class="event-number" x="{centre:.1f}" y="{MARGIN_TOP - 8}">{number}</text>'
            if centre - last_number_x >= 18
            else ""
        )
        if label:
            last_number_x = centre
        parts.append(
            f'<a href="#event-{number}"><rect class="event-span" x="{x0:.1f}" y="{MARGIN_TOP}" width="{width:.1f}" '
            f'height="{PLOT_HEIGHT - MARGIN_TOP - MARGIN_BOTTOM}"><title>{_e(tooltip)}</title></rect>{label}</a>'
        )
    if column is not None and len(scores.times_ms):
        values = np.nan_to_num(scores.column(column).astype(np.float64), nan=0.0)
        times, values = downsample(scores.times_ms, values)
        points = " ".join(f"{_x(t, duration_ms):.1f},{_y(v):.1f}" for t, v in zip(times.tolist(), values.tolist()))
        parts.append(f'<polyline class="score-line" points="{points}"/>')
    else:
        parts.append(f'<text class="plot-empty" x="{PLOT_WIDTH / 2}" y="{PLOT_HEIGHT / 2}">no score samples</text>')
    if threshold is not None:
        parts.append(_level_line("threshold-line", threshold, f"threshold {threshold:.2f}"))
    if release is not None and threshold is not None and release != threshold:
        parts.append(_level_line("release-line", release, f"release {release:.2f}"))
    parts.append("</svg>")
    return "\n".join(parts)


def _grid(duration_ms: int) -> list[str]:
    left, right = MARGIN_LEFT, PLOT_WIDTH - MARGIN_RIGHT
    bottom = PLOT_HEIGHT - MARGIN_BOTTOM
    parts = []
    for level in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = _y(level)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{right}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis-label y-label" x="{left - 6}" y="{y + 4:.1f}">{level:.2f}</text>')
    step_ms = _tick_step_s(duration_ms) * 1000
    hours = "always" if duration_ms >= 3_600_000 else "auto"  # axis labels: whole seconds
    for tick in range(0, duration_ms + 1, step_ms):
        x = _x(tick, duration_ms)
        parts.append(f'<line class="tick" x1="{x:.1f}" y1="{bottom}" x2="{x:.1f}" y2="{bottom + 5}"/>')
        parts.append(
            f'<text class="axis-label x-label" x="{x:.1f}" y="{bottom + 20}">{clock_seconds(tick, hours=hours)}</text>'
        )
    return parts


def _level_line(css_class: str, level: float, label: str) -> str:
    y = _y(level)
    return (
        f'<line class="{css_class}" x1="{MARGIN_LEFT}" y1="{y:.1f}" x2="{PLOT_WIDTH - MARGIN_RIGHT}" y2="{y:.1f}"/>'
        f'<text class="level-label {css_class}-label" x="{PLOT_WIDTH - MARGIN_RIGHT - 4}" y="{y - 5:.1f}">'
        f"{_e(label)}</text>"
    )


# --------------------------------------------------------------------------- thumbnails


def thumbnail_times(
    event: Event, count: int, frame_ms: int = 40, params: EventParams | None = None
) -> list[tuple[str, int]]:
    """``(role, time)`` pairs: the peak for one, start and peak for two, start/peak/end (+ evenly spaced) for more.

    Start and end are the moment's own edges (``segments.moment_edges``: without the padding,
    which often shows a black or unrelated frame); the end thumbnail is one frame before the
    moment's end, which is the first frame after it.
    """
    if count <= 0:
        return []
    first, end = moment_edges(event, params)
    last = max(first, end - max(1, frame_ms))
    peak = min(max(event.peak_ms, first), last)
    if count == 1:
        return [("peak", peak)]
    if count == 2:
        return [("start", first), ("peak", peak)]
    chosen = [("start", first), ("peak", peak), ("end", last)]
    extra = count - 3
    for i in range(1, extra + 1):
        chosen.append(("at", int(first + (last - first) * i / (extra + 1))))
    order = {"start": 0, "peak": 1, "at": 2, "end": 3}  # where times coincide (a moment that peaks at its start)
    return sorted(chosen, key=lambda item: (item[1], order[item[0]]))


def fit_width(video: VideoInfo, box_width: int, box_height: int) -> int:
    """The even width at which the video's picture (square pixels) fits in ``box_width`` x ``box_height``."""
    aspect = video.display_aspect if video.height else 16 / 9
    width = min(float(box_width), box_height * aspect)
    return max(2, int(round(width / 2)) * 2)


def _jpeg(frame: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame), "RGB").save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def _frame_ms(video: VideoInfo) -> int:
    return int(math.ceil(1000 / float(video.fps))) if video.fps else 40


def _thumbnail(video: VideoInfo, role: str, time_ms: int, score: float, width: int) -> Thumbnail:
    from autotosis.media import decode

    frame = decode.grab_frame(video, time_ms, width)
    return Thumbnail(role, time_ms, score, _jpeg(frame), int(frame.shape[1]), int(frame.shape[0]))


def _score_at(scores: Scores, column: str | None, time_ms: int) -> float:
    return float(scores.score_at(column, np.array([time_ms]))[0]) if column is not None else float("nan")


def event_thumbnails(
    video: VideoInfo,
    event: Event,
    scores: Scores,
    column: str | None,
    count: int,
    params: EventParams | None = None,
) -> list[Thumbnail]:
    """Thumbnails of one event (``thumbnail_times``), each at most THUMBNAIL_WIDTH on its longer side."""
    width = fit_width(video, THUMBNAIL_WIDTH, THUMBNAIL_WIDTH)
    return [
        _thumbnail(video, role, time_ms, _score_at(scores, column, time_ms), width)
        for role, time_ms in thumbnail_times(event, count, _frame_ms(video), params)
    ]


def region_frame(video: VideoInfo, events: Sequence[Event], scores: Scores, column: str | None) -> RegionFrame:
    """The frame at the best event's peak (or the middle of the video) with the scan's region."""
    if events:
        number, best = max(enumerate(events, 1), key=lambda item: (item[1].score, -item[0]))
        time_ms, where = best.peak_ms, f"the peak of event #{number}"
    else:
        time_ms, where = max(0, video.duration_ms // 2), "the middle of the video"
    time_ms = max(0, min(time_ms, video.duration_ms - _frame_ms(video)))
    width = fit_width(video, *FRAME_BOX)
    thumb = _thumbnail(video, "frame", time_ms, _score_at(scores, column, time_ms), width)
    display_width = max(1, int(round(video.width * float(video.sar))))
    return RegionFrame(thumb, scores.scan.region, (display_width, video.height), where)


def _region_recorded(scores: Scores) -> bool:
    return "region" in scores.scan.to_dict()


# --------------------------------------------------------------------------- clips


def clips_folder(out: Path) -> Path:
    """Where a report's clips go: a folder beside it named after it (``vod.report-clips``)."""
    out = Path(out)
    return out.with_name(out.stem + CLIPS_SUFFIX)


def clip_window(event: Event, duration_ms: int | None = None, max_ms: int = CLIP_MAX_MS) -> tuple[int, int]:
    """The part of the video an event's clip shows: the whole (padded) event, or ``max_ms`` around its peak."""
    start, end = event.start_ms, event.end_ms
    if duration_ms:  # scores a little longer than the video (a misreported length) must not cut past its end
        start = min(start, max(0, duration_ms - 1000))
        end = max(start + 1, min(end, duration_ms))
    if end - start > max_ms:
        start = min(max(start, event.peak_ms - max_ms // 2), end - max_ms)
        end = start + max_ms
    return start, end


def _clip_size(video: VideoInfo) -> tuple[int, int]:
    """The size ffmpeg gives a preview of ``video`` (``encode.cut_preview``), for the page's layout hints."""
    from autotosis.media.encode import PREVIEW_MAX_SIZE

    width, height = max(2, int(round(video.width * float(video.sar) / 2)) * 2), max(2, video.height)
    scale = min(Fraction(1), Fraction(PREVIEW_MAX_SIZE, width), Fraction(PREVIEW_MAX_SIZE, height))
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def clip_name(number: int, total: int) -> str:
    return f"event-{number:0{max(2, len(str(total)))}d}.mp4"


def _url_part(name: str) -> str:
    """One path segment of a relative URL: every byte but letters, digits and ``_.-~`` percent-encoded."""
    return quote(name, safe="", errors="surrogateescape")


def _make_clips(video: VideoInfo, events: Sequence[Event], folder: Path, progress: ProgressCallback) -> list[Clip]:
    from autotosis.media import encode

    size = _clip_size(video)
    clips = []
    for number, event in enumerate(events, 1):
        progress("clips", number - 1, len(events))
        start, end = clip_window(event, video.duration_ms)
        name = clip_name(number, len(events))
        encode.cut_preview(video, start, end - start, folder / name)
        clips.append(Clip(name, start, end, *size))
    progress("clips", len(events), len(events))
    return clips


# --------------------------------------------------------------------------- HTML


_CSS = """
:root { --bg:#101217; --panel:#1a1d25; --ink:#e7e9ee; --muted:#9aa1b1; --line:#2b303c; --accent:#4fc3f7;
        --event:#ffb74d; --threshold:#ef5350; --region:REGION; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); \\
font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header, main, footer { max-width: 1240px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; overflow-wrap: anywhere; }
h2 { font-size: 18px; margin: 28px 0 10px; }
.summary { color: var(--muted); margin: 0; }
.summary b { color: var(--ink); font-weight: 600; }
.panel { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px; }
.score-plot { width: 100%; height: auto; display: block; }
.score-plot .plot-bg { fill: #13161d; }
.score-plot .grid { stroke: var(--line); stroke-width: 1; }
.score-plot .tick { stroke: var(--muted); stroke-width: 1; }
.score-plot .axis-label { fill: var(--muted); font-size: 12px; }
.score-plot .y-label { text-anchor: end; }
.score-plot .x-label { text-anchor: middle; }
.score-plot .score-line { fill: none; stroke: var(--accent); stroke-width: 1.5; vector-effect: non-scaling-stroke; }
.score-plot .event-span { fill: var(--event); fill-opacity: .22; stroke: var(--event); stroke-opacity: .6; }
.score-plot .event-number { fill: var(--event); font-size: 11px; text-anchor: middle; font-weight: 600; }
.score-plot .threshold-line { stroke: var(--threshold); stroke-width: 1.5; stroke-dasharray: 6 4; }
.score-plot .release-line { stroke: var(--threshold); stroke-opacity: .6; stroke-width: 1; stroke-dasharray: 2 4; }
.score-plot .level-label { fill: var(--threshold); font-size: 12px; text-anchor: end; }
.score-plot .plot-empty { fill: var(--muted); font-size: 16px; text-anchor: middle; }
.legend { color: var(--muted); font-size: 13px; margin: 8px 4px 0; }
.legend span { margin-right: 18px; }
.swatch { display: inline-block; width: 18px; height: 10px; margin-right: 6px; vertical-align: middle; \\
border-radius: 2px; }
.region-frame { margin: 0; }
.frame-box { position: relative; display: inline-block; max-width: 100%; vertical-align: top; }
.frame-box img { display: block; width: auto; height: auto; max-width: 100%; max-height: 360px; border-radius: 6px; \\
background: #000; }
.frame-box svg { position: absolute; left: 0; top: 0; width: 100%; height: 100%; overflow: visible; }
.region-shadow { fill: none; stroke: #000; stroke-opacity: .7; stroke-width: 5; vector-effect: non-scaling-stroke; }
.region-rect { fill: none; stroke: var(--region); stroke-width: 3; vector-effect: non-scaling-stroke; }
.region-frame figcaption { color: var(--muted); font-size: 13px; margin-top: 6px; }
.region-frame figcaption b { color: var(--region); }
.events { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(560px, 100%), 1fr)); gap: 14px; }
.event-card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; \\
min-width: 0; }
.event-card:target { border-color: var(--event); }
.event-card h3 { margin: 0 0 2px; font-size: 16px; overflow-wrap: anywhere; }
.event-card h3 .number { color: var(--event); margin-right: 6px; }
.event-card .times, .event-card .scores { margin: 0; color: var(--muted); font-size: 13px; }
.event-card .scores b, .event-card .times b { color: var(--ink); font-weight: 500; }
.clip { margin: 10px 0 0; }
.clip video { display: block; width: auto; height: auto; max-width: 100%; max-height: 360px; background: #000; \\
border-radius: 6px; }
.clip figcaption { color: var(--muted); font-size: 12px; margin-top: 3px; }
.clip a { color: var(--accent); }
.thumbs { display: flex; flex-wrap: wrap; gap: 8px; margin-top: 10px; align-items: flex-start; }
.thumbs figure { margin: 0; flex: 0 1 auto; min-width: 0; max-width: calc((100% - 16px) / 3); }
.thumbs img { display: block; width: auto; height: auto; max-width: 100%; max-height: 200px; border-radius: 6px; \\
background: #000; }
.thumbs figcaption { color: var(--muted); font-size: 12px; margin-top: 3px; }
.note { color: var(--muted); font-style: italic; }
table.settings { border-collapse: collapse; width: 100%; font-size: 13px; table-layout: fixed; }
table.settings th, table.settings td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); \\
vertical-align: top; overflow-wrap: anywhere; }
table.settings th { color: var(--muted); font-weight: 500; width: 34%; }
table.settings td { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; }
table.settings tr.group th { color: var(--ink); font-weight: 600; padding-top: 12px; }
table.settings .depth-1 th { padding-left: 28px; }
table.settings .depth-2 th { padding-left: 46px; }
table.settings .depth-3 th { padding-left: 64px; }
footer { color: var(--muted); font-size: 12px; padding: 28px 20px 32px; }
""".replace("REGION", REGION_COLOUR)


def _score_css_colour(score: float) -> str:
    if math.isnan(score):
        return "#9aa1b1"
    from autotosis.outputs.render import score_colour

    return "#" + score_colour(score)


def _data_url(thumb: Thumbnail) -> str:
    return "data:image/jpeg;base64," + base64.b64encode(thumb.jpeg).decode("ascii")


def _size_attributes(width: int, height: int) -> str:
    return f' width="{int(width)}"' + (f' height="{int(height)}"' if height > 0 else "")


def _thumbs_html(number: int, thumbs: Sequence[Thumbnail]) -> list[str]:
    lines = ['<div class="thumbs">']
    for thumb in thumbs:
        score = (
            ""
            if math.isnan(thumb.score)
            else f' · <b style="color:{_score_css_colour(thumb.score)}">{thumb.score:.2f}</b>'
        )
        caption = f"{_e(thumb.role)} {_e(clock_tenths(thumb.time_ms))}{score}"
        alt = f"frame at {clock_tenths(thumb.time_ms)} ({thumb.role}) of event {number}"
        lines.append(
            f'<figure class="thumb {_e(thumb.role)}"><img src="{_data_url(thumb)}" alt="{_e(alt)}"'
            f"{_size_attributes(thumb.width, thumb.height)}><figcaption>{caption}</figcaption></figure>"
        )
    lines.append("</div>")
    return lines


def _clip_html(number: int, clip: Clip, folder_url: str, poster: Thumbnail | None) -> str:
    url = f"{folder_url}/{_url_part(clip.file_name)}"
    span = f"{clock_tenths(clip.start_ms)} – {clock_tenths(clip.end_ms)}"
    # The peak's thumbnail until it plays: the clip's first frame is the padding's, often black.
    poster_attribute = "" if poster is None else f' poster="{_data_url(poster)}"'
    return (
        f'<figure class="clip"><video class="event-clip" controls preload="metadata" src="{_e(url)}"'
        f"{poster_attribute}{_size_attributes(clip.width, clip.height)}>"
        f'<a href="{_e(url)}">clip of event {number}</a></video>'
        f'<figcaption>clip {_e(span)} · <a href="{_e(url)}">{_e(clip.file_name)}</a></figcaption></figure>'
    )


def _event_card(
    number: int,
    event: Event,
    thumbs: Sequence[Thumbnail] | None,
    params: EventParams | None = None,
    clip: Clip | None = None,
    folder_url: str = "",
) -> str:
    first, end = moment_edges(event, params)
    moment = (
        ""
        if (first, end) == (event.start_ms, event.end_ms)
        else f" · moment <b>{_e(clock_tenths(first))} – {_e(clock_tenths(end))}</b> (without the padding)"
    )
    lines = [
        f'<article class="event-card" id="event-{number}">',
        f'<h3><span class="number">#{number}</span>{_e(display_label(event.label))}</h3>',
        f'<p class="times">{_e(clock_tenths(event.start_ms))} – {_e(clock_tenths(event.end_ms))} '
        f"({event.duration_ms / 1000:.1f} s){moment}</p>",
        # The event's number (its peak, as in every other output) first; the mean only as a detail.
        f'<p class="scores">peak <b style="color:{_score_css_colour(event.score)}">{event.score_text}</b> at '
        f"{_e(clock_tenths(event.peak_ms))} · mean <b>{event.mean:.2f}</b></p>",
    ]
    if clip is not None:
        poster = next((t for t in thumbs or () if t.role == "peak"), None)
        lines.append(_clip_html(number, clip, folder_url, poster))
    if thumbs is None:
        lines.append('<p class="note">no video given: thumbnails and clips skipped</p>')
    elif thumbs:
        lines += _thumbs_html(number, thumbs)
    lines.append("</article>")
    return "\n".join(lines)


def _region_html(frame: RegionFrame | None, scores: Scores, video: VideoInfo | None) -> str:
    if frame is None:
        what = (
            "the whole frame"
            if scores.scan.region is None
            else f"the region {scores.scan.region.as_text()} (fractions of the frame)"
        )
        if not _region_recorded(scores):
            what = "a part of the frame these scores do not record"
        return f'<p class="note">The model scored {_e(what)}; no video given: no frame to show it on.</p>'
    thumb = frame.thumbnail
    parts = [
        '<figure class="region-frame" id="region-frame"><div class="frame-box">',
        f'<img src="{_data_url(thumb)}" alt="{_e(f"frame at {clock_tenths(thumb.time_ms)}")}"'
        f"{_size_attributes(thumb.width, thumb.height)}>",
    ]
    if frame.region is not None:
        x0, y0, x1, y1 = frame.region
        w, h = thumb.width, thumb.height
        box = f'x="{x0 * w:.2f}" y="{y0 * h:.2f}" width="{(x1 - x0) * w:.2f}" height="{(y1 - y0) * h:.2f}"'
        parts.append(
            f'<svg viewBox="0 0 {w} {h}" preserveAspectRatio="none" aria-hidden="true" '
            f'xmlns="http://www.w3.org/2000/svg"><rect class="region-shadow" {box}/>'
            f'<rect class="region-rect" id="region-rect" {box}/></svg>'
        )
        pw, ph, px, py = crop_pixels(frame.region, *frame.frame_size)
        what = (
            f"the model scored <b>the outlined part</b> of the picture: {_e(frame.region.as_text())} as fractions "
            f"of the frame, {pw}x{ph} px at ({px}, {py}) of {frame.frame_size[0]}x{frame.frame_size[1]}"
        )
    elif _region_recorded(scores):
        what = "the model scored the whole frame"
    else:
        what = "these scores do not record which part of the frame was scored (an older scores file, or CSV)"
    parts.append("</div>")
    parts.append(f"<figcaption>{what} · frame at {_e(clock_tenths(thumb.time_ms))}, {_e(frame.where)}</figcaption>")
    parts.append("</figure>")
    return "".join(parts)


# --------------------------------------------------------------------------- settings


def _setting_name(key: object) -> str:
    text = str(key)
    for suffix in ("_ms", "_s"):
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
    return text.replace("_", " ")


def _number_text(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _setting_value(key: object, value: object) -> str:
    """One setting as people read it: seconds for ``*_ms`` numbers, yes/no, lists joined by commas."""
    name = str(key)
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)) and name.endswith("_ms"):
        return f"{value / 1000:g} s"
    if isinstance(value, (int, float)) and name.endswith("_s"):
        return f"{value:g} s"
    if isinstance(value, float):
        return _number_text(value)
    if isinstance(value, (str, Path, Fraction)):
        return str(value)
    if isinstance(value, (list, tuple)) and all(not isinstance(v, (dict, list, tuple)) for v in value):
        return ", ".join(_setting_value("", v) for v in value) if value else "none"
    return str(value)


def _as_mapping(value: object) -> Mapping | None:
    if isinstance(value, Mapping):
        return value
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in fields(value)}
    if isinstance(value, (list, tuple)) and value and any(isinstance(v, (Mapping, list, tuple)) for v in value):
        return {str(i): v for i, v in enumerate(value, 1)}
    return None


def setting_rows(settings: Mapping[str, object], depth: int = 0) -> list[tuple[int, str, str | None]]:
    """``(depth, name, value)`` rows of a settings table; a group (a nested mapping) has value None."""
    rows: list[tuple[int, str, str | None]] = []
    for key, value in settings.items():
        nested = _as_mapping(value)
        if nested is not None and not isinstance(value, Region):
            rows.append((depth, _setting_name(key), None))
            rows += setting_rows(nested, depth + 1) if nested else [(depth + 1, "(empty)", "none")]
        else:
            rows.append((depth, _setting_name(key), _setting_value(key, value)))
    return rows


def _settings_table(settings: Mapping[str, object]) -> str:
    if not settings:
        return '<p class="note">no settings recorded</p>'
    rows = []
    for depth, name, value in setting_rows(settings):
        level = f"depth-{min(depth, 3)}"
        if value is None:
            rows.append(f'<tr class="group {level}"><th colspan="2">{_e(name)}</th></tr>')
        else:
            rows.append(f'<tr class="{level}"><th>{_e(name)}</th><td>{_e(value)}</td></tr>')
    return '<table class="settings">\n' + "\n".join(rows) + "\n</table>"


def _scan_record(scores: Scores) -> dict[str, object]:
    """What the scores say about how the video was scanned, for the settings table."""
    scan = scores.scan
    record: dict[str, object] = {}
    if scan.mode:
        record["mode"] = scan.mode
    if scan.fps:
        record["scores per second"] = scan.fps
    if _region_recorded(scores):
        record["region"] = "whole frame" if scan.region is None else scan.region.as_text()
    if scan.threshold is not None:
        record["model threshold"] = scan.threshold
    return record


# --------------------------------------------------------------------------- page


def _plot_column(scores: Scores, events: EventList) -> str | None:
    if events.label in scores.classes:
        return events.label
    return scores.default_class() if scores.classes else None


def _report_duration(scores: Scores, events: EventList, video: VideoInfo | None) -> int:
    candidates = [scores.duration_ms, events.duration_ms, video.duration_ms if video is not None else 0]
    if len(scores.times_ms):
        candidates.append(int(scores.times_ms[-1]) + max(1, int(scores.step_ms or 0)))
    candidates += [e.end_ms for e in events.events]
    return max(1, *(int(c or 0) for c in candidates))


def report_html(
    scores: Scores,
    events: EventList,
    *,
    video: VideoInfo | None,
    settings: Mapping[str, object],
    thumbnails: Sequence[Sequence[Thumbnail]] | None,
    clips: Sequence[Clip] | None = None,
    clips_url: str = "",
    frame: RegionFrame | None = None,
) -> str:
    """The report page.

    ``thumbnails`` holds one list per event (None: no video, none taken); ``clips`` one clip per
    event (None: no clips), each at ``clips_url/FILE`` (``clips_url`` already URL-encoded);
    ``frame`` is the frame that shows the scanned region.
    """
    column = _plot_column(scores, events)
    duration_ms = _report_duration(scores, events, video)
    params = events.params
    threshold = None if params.top_percent is not None else params.threshold
    release = None if params.top_percent is not None else params.release_level
    name = (video.path if video is not None else scores.video or events.video or Path("video")).name
    count = len(events.events)
    summary = [
        f"class <b>{_e(column if column is not None else events.label)}</b>",
        f"length <b>{_e(clock_seconds(duration_ms))}</b>",
        f"<b>{count}</b> event{'s' if count != 1 else ''}",
        f"<b>{len(scores.times_ms)}</b> scores every {_e(scores.step_ms)} ms",
    ]
    if threshold is not None:
        summary.append(f"threshold <b>{threshold:.2f}</b>")
    else:
        summary.append(f"top <b>{_e(params.top_percent)}%</b> of {_e(params.bin_ms // 1000)} s bins")
    if count:
        cards = "\n".join(
            _event_card(
                i,
                e,
                None if thumbnails is None else thumbnails[i - 1],
                params,
                None if clips is None else clips[i - 1],
                clips_url,
            )
            for i, e in enumerate(events.events, 1)
        )
        events_html = f'<div class="events">\n{cards}\n</div>'
    else:
        events_html = (
            '<p class="note" id="no-events">No events were found with these settings: '
            "try a lower threshold, or check the score timeline above.</p>"
        )
    all_settings = dict(settings)
    all_settings.setdefault("event parameters", {k: v for k, v in asdict(params).items() if v is not None})
    if scores.task:
        all_settings.setdefault("task", scores.task)
    if scores.model:
        all_settings.setdefault("model fingerprint", scores.model)
    all_settings.setdefault("classes", list(scores.classes))
    record = _scan_record(scores)
    if record:
        all_settings.setdefault("scan as recorded with the scores", record)
    legend = (
        '<p class="legend"><span><i class="swatch" style="background:#4fc3f7"></i>score</span>'
        '<span><i class="swatch" style="background:#ffb74d;opacity:.6"></i>events (click to jump to the card)</span>'
        + ('<span><i class="swatch" style="background:#ef5350"></i>threshold</span>' if threshold is not None else "")
        + "</p>"
    )
    footer = (
        "the clips are in the folder beside this page, which must move with it; nothing is loaded from the network."
        if clips
        else "this page is self-contained: it loads nothing from the network."
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="autotosis {_e(__version__)}">
<title>{_e(name)} — autotosis report</title>
<style>{_CSS}</style>
</head>
<body>
<header>
<h1>{_e(name)}</h1>
<p class="summary">{" · ".join(summary)}</p>
</header>
<main>
<section id="timeline">
<h2>Score timeline</h2>
<div class="panel">
{score_plot_svg(scores, column, events.events, threshold, release, duration_ms)}
{legend}
</div>
</section>
<section id="region">
<h2>What the model looked at</h2>
<div class="panel">
{_region_html(frame, scores, video)}
</div>
</section>
<section id="events">
<h2>Events ({count})</h2>
{events_html}
</section>
<section id="settings">
<h2>Settings</h2>
<div class="panel">
{_settings_table(all_settings)}
</div>
</section>
</main>
<footer>made by autotosis {_e(__version__)} — {footer}</footer>
</body>
</html>
"""


def write_report(
    scores: Scores,
    events: EventList,
    out: Path,
    *,
    video: VideoInfo | None,
    settings: Mapping[str, object],
    force: bool,
    thumbnails_per_event: int = 3,
    clips: bool = True,
    progress: ProgressCallback = no_progress,
) -> Path:
    """Write the HTML report to ``out`` (atomically) and return its path.

    ``video`` (probed) is where thumbnails, the region frame and clips come from; None leaves
    them out.  With ``clips`` (and a video, and events) each event gets a preview clip in
    ``clips_folder(out)``: the clips are made in a temporary folder beside it, which replaces the
    folder only when all are done, and the page is written after it.  ``settings`` is shown as a
    table, with the events' parameters and the scores' task, model and scan record added.
    """
    out = Path(out)
    check_writable(out, force)  # before the slow part
    if thumbnails_per_event < 0:
        raise UsageError(f"thumbnails per event must be 0 or more, got {thumbnails_per_event}")
    folder = clips_folder(out)
    make_clips = clips and video is not None and bool(events.events)
    if make_clips:
        check_writable(folder, force)
    column = _plot_column(scores, events)
    thumbnails: list[list[Thumbnail]] | None = None
    frame = None
    if video is not None:
        thumbnails = []
        total = len(events.events)
        for i, event in enumerate(events.events):
            progress("thumbnails", i, total)
            thumbnails.append(event_thumbnails(video, event, scores, column, thumbnails_per_event, events.params))
        progress("thumbnails", total, total)
        frame = region_frame(video, events.events, scores, column)
    if not make_clips:
        page = report_html(scores, events, video=video, settings=settings, thumbnails=thumbnails, frame=frame)
        write_text_atomic(out, page, force=force)
        return out
    assert video is not None
    with atomic_dir(folder, force) as work:
        made = _make_clips(video, events.events, work, progress)
        page = report_html(
            scores,
            events,
            video=video,
            settings=settings,
            thumbnails=thumbnails,
            clips=made,
            clips_url=_url_part(folder.name),
            frame=frame,
        )
        check_writable(out, force)  # once more before the folder is replaced: the page must be writable too
    write_text_atomic(out, page, force=force)
    return out
