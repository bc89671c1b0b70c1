"""Scores + events -> one self-contained HTML report.

The page needs nothing at view time: no script, no network, no files beside it.  The score
timeline is inline SVG (polyline, threshold line, shaded events, m:ss axis); every event
has a card with thumbnails (inline base64 JPEG, grabbed with ``decode.grab_frame``) at its
start, peak and end; the settings used are listed in a table.

Every string that came from outside (file names, class names, labels, settings) goes
through ``html.escape``, so a class called ``<script>`` is shown, never run.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from autotosis import __version__
from autotosis.core.errors import UsageError
from autotosis.core.fsutil import check_writable, write_text_atomic
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.core.timefmt import clock_seconds, clock_tenths  # clock_tenths: event times, as in the terminal
from autotosis.detect.scores import Scores
from autotosis.detect.segments import Event, EventList
from autotosis.outputs.exports.timecode import display_label

if TYPE_CHECKING:
    from autotosis.media.probe import VideoInfo

MAX_PLOT_POINTS = 4000  # a 4-hour scan at 10 scores/s is 144k samples; the browser needs far fewer
THUMBNAIL_WIDTH = 240
JPEG_QUALITY = 80

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


def thumbnail_times(event: Event, count: int, frame_ms: int = 40) -> list[tuple[str, int]]:
    """``(role, time)`` pairs: the peak for one, start and peak for two, start/peak/end (+ evenly spaced) for more.

    The end thumbnail is one frame before the event's end, which is the first frame after it.
    """
    if count <= 0:
        return []
    last = max(event.start_ms, event.end_ms - max(1, frame_ms))
    peak = min(max(event.peak_ms, event.start_ms), last)
    if count == 1:
        return [("peak", peak)]
    if count == 2:
        return [("start", event.start_ms), ("peak", peak)]
    chosen = [("start", event.start_ms), ("peak", peak), ("end", last)]
    extra = count - 3
    for i in range(1, extra + 1):
        chosen.append(("at", int(event.start_ms + (last - event.start_ms) * i / (extra + 1))))
    return sorted(chosen, key=lambda item: (item[1], item[0] != "peak"))


def _jpeg(frame: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame), "RGB").save(buffer, "JPEG", quality=JPEG_QUALITY, optimize=True)
    return buffer.getvalue()


def event_thumbnails(video: VideoInfo, event: Event, scores: Scores, column: str | None, count: int) -> list[Thumbnail]:
    from autotosis.media import decode

    frame_ms = int(math.ceil(1000 / float(video.fps))) if video.fps else 40
    thumbs = []
    for role, time_ms in thumbnail_times(event, count, frame_ms):
        score = float(scores.score_at(column, np.array([time_ms]))[0]) if column is not None else float("nan")
        thumbs.append(Thumbnail(role, time_ms, score, _jpeg(decode.grab_frame(video, time_ms, THUMBNAIL_WIDTH))))
    return thumbs


# --------------------------------------------------------------------------- HTML


_CSS = """
:root { --bg:#101217; --panel:#1a1d25; --ink:#e7e9ee; --muted:#9aa1b1; --line:#2b303c; --accent:#4fc3f7;
        --event:#ffb74d; --threshold:#ef5350; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); \
font:15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
header, main, footer { max-width: 1240px; margin: 0 auto; padding: 0 20px; }
header { padding-top: 24px; }
h1 { font-size: 24px; margin: 0 0 4px; word-break: break-all; }
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
.swatch { display: inline-block; width: 18px; height: 10px; margin-right: 6px; vertical-align: middle; \
border-radius: 2px; }
.events { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 14px; }
.event-card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 12px 14px; }
.event-card:target { border-color: var(--event); }
.event-card h3 { margin: 0 0 2px; font-size: 16px; }
.event-card h3 .number { color: var(--event); margin-right: 6px; }
.event-card .times, .event-card .scores { margin: 0; color: var(--muted); font-size: 13px; }
.event-card .scores b { color: var(--ink); }
.thumbs { display: flex; gap: 8px; margin-top: 10px; }
.thumbs figure { margin: 0; flex: 1 1 0; min-width: 0; }
.thumbs img { width: 100%; height: auto; display: block; border-radius: 6px; background: #000; }
.thumbs figcaption { color: var(--muted); font-size: 12px; margin-top: 3px; }
.note { color: var(--muted); font-style: italic; }
table.settings { border-collapse: collapse; width: 100%; font-size: 13px; }
table.settings th, table.settings td { text-align: left; padding: 5px 10px; border-bottom: 1px solid var(--line); \
vertical-align: top; }
table.settings th { color: var(--muted); font-weight: 500; width: 30%; }
table.settings td { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; word-break: break-all; }
footer { color: var(--muted); font-size: 12px; padding: 28px 20px 32px; }
"""


def _score_css_colour(score: float) -> str:
    if math.isnan(score):
        return "#9aa1b1"
    from autotosis.outputs.render import score_colour

    return "#" + score_colour(score)


def _event_card(number: int, event: Event, thumbs: Sequence[Thumbnail] | None) -> str:
    lines = [
        f'<article class="event-card" id="event-{number}">',
        f'<h3><span class="number">#{number}</span>{_e(display_label(event.label))}</h3>',
        f'<p class="times">{_e(clock_tenths(event.start_ms))} – {_e(clock_tenths(event.end_ms))} '
        f"({event.duration_ms / 1000:.1f} s)</p>",
        # The event's number (its peak, as in every other output) first; the mean only as a detail.
        f'<p class="scores">peak <b style="color:{_score_css_colour(event.score)}">{event.score_text}</b> at '
        f"{_e(clock_tenths(event.peak_ms))} · mean <b>{event.mean:.2f}</b></p>",
    ]
    if thumbs is None:
        lines.append('<p class="note">no video given: thumbnails skipped</p>')
    elif thumbs:
        lines.append('<div class="thumbs">')
        for thumb in thumbs:
            data = base64.b64encode(thumb.jpeg).decode("ascii")
            score = (
                ""
                if math.isnan(thumb.score)
                else f' · <b style="color:{_score_css_colour(thumb.score)}">{thumb.score:.2f}</b>'
            )
            caption = f"{_e(thumb.role)} {_e(clock_tenths(thumb.time_ms))}{score}"
            alt = f"frame at {clock_tenths(thumb.time_ms)} ({thumb.role}) of event {number}"
            lines.append(
                f'<figure><img src="data:image/jpeg;base64,{data}" alt="{_e(alt)}" width="{THUMBNAIL_WIDTH}">'
                f"<figcaption>{caption}</figcaption></figure>"
            )
        lines.append("</div>")
    lines.append("</article>")
    return "\n".join(lines)


def _settings_value(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, Path):
        return str(value)
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        return str(value)


def _settings_table(settings: Mapping[str, object]) -> str:
    if not settings:
        return '<p class="note">no settings recorded</p>'
    rows = "\n".join(
        f"<tr><th>{_e(key)}</th><td>{_e(_settings_value(value))}</td></tr>" for key, value in settings.items()
    )
    return f'<table class="settings">\n{rows}\n</table>'


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
) -> str:
    """The report page; ``thumbnails`` holds one list per event (None: no video, none taken)."""
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
            _event_card(i, e, None if thumbnails is None else thumbnails[i - 1]) for i, e in enumerate(events.events, 1)
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
    legend = (
        '<p class="legend"><span><i class="swatch" style="background:#4fc3f7"></i>score</span>'
        '<span><i class="swatch" style="background:#ffb74d;opacity:.6"></i>events (click to jump to the card)</span>'
        + ('<span><i class="swatch" style="background:#ef5350"></i>threshold</span>' if threshold is not None else "")
        + "</p>"
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
<footer>made by autotosis {_e(__version__)} — this page is self-contained: it loads nothing from the network.</footer>
</body>
</html>
"""


def write_report(
    scores: Scores,
    events: EventList,
    out: Path,
    *,
    video: VideoInfo | None,
    settings: dict,
    force: bool,
    thumbnails_per_event: int = 3,
    progress: ProgressCallback = no_progress,
) -> Path:
    """Write the HTML report to ``out`` (atomically) and return its path.

    ``video`` (probed) is where thumbnails come from; None leaves them out.  ``settings``
    is shown as a table, with the events' parameters and the scores' task and model added.
    """
    out = Path(out)
    check_writable(out, force)  # before the slow part
    if thumbnails_per_event < 0:
        raise UsageError(f"thumbnails per event must be 0 or more, got {thumbnails_per_event}")
    thumbnails: list[list[Thumbnail]] | None = None
    if video is not None:
        column = _plot_column(scores, events)
        thumbnails = []
        total = len(events.events)
        for i, event in enumerate(events.events):
            progress("thumbnails", i, total)
            thumbnails.append(event_thumbnails(video, event, scores, column, thumbnails_per_event))
        progress("thumbnails", total, total)
    page = report_html(scores, events, video=video, settings=settings, thumbnails=thumbnails)
    write_text_atomic(out, page, force=force)
    return out
