"""report.py: the self-contained HTML report, checked as text and in a real headless Chromium."""

from __future__ import annotations

import base64
import html
import io
import json
import os
import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autotosis.core.errors import MediaError, OutputExistsError
from autotosis.core.region import Region
from autotosis.core.timefmt import clock_seconds
from autotosis.detect.scores import ScanInfo, Scores
from autotosis.detect.segments import Event, EventList, EventParams, events_from_scores
from autotosis.media import probe
from autotosis.outputs import report

HOSTILE_CLASS = '<script>alert("class")</script>'
HOSTILE_FILE = 'vod <script>alert(1)<b> "q" \'s.mp4'  # no "/" possible in a file name


class Elements(HTMLParser):
    """Tags, their attributes and the text of a page, as a browser's tokenizer sees them."""

    def __init__(self, page: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(page)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)

    def with_class(self, css_class: str) -> list[dict]:
        return [a for _, a in self.tags if css_class in (a.get("class") or "").split()]

    def named(self, tag: str) -> list[dict]:
        return [a for t, a in self.tags if t == tag]


def bumpy_scores(
    video: Path, duration_ms: int, highlights: list[tuple[int, int]], label: str = "rage", step_ms: int = 500
) -> Scores:
    """Low scores with plateaus of ~0.9 during ``highlights``."""
    times = np.arange(0, duration_ms, step_ms, dtype=np.int64)
    score = 0.1 + 0.05 * np.sin(times / 3000)
    for start, end in highlights:
        inside = (times >= start) & (times < end)
        score[inside] = 0.82 + 0.12 * np.cos(times[inside] / 700)
    probs = np.stack([1 - score, score], axis=1).astype(np.float32)
    return Scores(video, duration_ms, ("background", label), times, probs, step_ms, "rage", "f00dfeed")


HYSTERESIS = EventParams(threshold=0.5, release=0.4)


def events_for(scores: Scores, label: str, params: EventParams = HYSTERESIS) -> EventList:
    return EventList(scores.video, scores.duration_ms, label, params, tuple(events_from_scores(scores, label, params)))


# --------------------------------------------------------------------------- pieces


def test_downsample_keeps_spikes_of_a_four_hour_scan():
    n = 4 * 3600 * 10  # 4 hours at 10 scores/s
    rng = np.random.default_rng(0)
    times = np.arange(n, dtype=np.int64) * 100
    values = rng.uniform(0.0, 0.3, n)
    spikes = rng.choice(n, 25, replace=False)
    values[spikes] = 0.99  # one-sample highlights
    values[12345] = 0.0
    t, v = report.downsample(times, values)
    assert len(t) <= report.MAX_PLOT_POINTS
    assert np.all(np.diff(t) > 0)
    assert set(times[spikes].tolist()) <= set(t.tolist())
    assert v.max() == 0.99 and v.min() == 0.0
    short_t, short_v = report.downsample(times[:100], values[:100])
    assert np.array_equal(short_t, times[:100]) and np.array_equal(short_v, values[:100])


def test_clock_and_ticks():
    assert clock_seconds(65_432) == "1:05"
    assert clock_seconds(3_725_000) == "1:02:05"
    assert clock_seconds(5_000, hours="always") == "0:00:05"
    assert report.clock_tenths(65_432) == "1:05.4"
    assert report._tick_step_s(40_000) == 5
    assert report._tick_step_s(4 * 3_600_000) == 1800


def test_thumbnail_times():
    e = Event(10_000, 20_000, "rage", 0.9, 0.8, 14_000)
    assert report.thumbnail_times(e, 3, frame_ms=40) == [("start", 10_000), ("peak", 14_000), ("end", 19_960)]
    assert report.thumbnail_times(e, 1) == [("peak", 14_000)]
    assert report.thumbnail_times(e, 2) == [("start", 10_000), ("peak", 14_000)]
    assert [role for role, _ in report.thumbnail_times(e, 5, frame_ms=40)] == ["start", "at", "peak", "at", "end"]
    assert report.thumbnail_times(e, 0) == []
    # Start and end are the moment's own edges, not the padded ones (which often show a black frame).
    moment = Event(10_000, 20_000, "rage", 0.9, 0.8, 14_000, core_start_ms=11_000, core_end_ms=18_500)
    assert report.thumbnail_times(moment, 3, frame_ms=40) == [("start", 11_000), ("peak", 14_000), ("end", 18_460)]
    # An event of an older events file: the padding its parameters name is taken off.
    params = EventParams(pad_before_ms=1500, pad_after_ms=500)
    assert report.thumbnail_times(e, 3, 40, params) == [("start", 11_500), ("peak", 14_000), ("end", 19_460)]
    # A moment that peaks at its start lists start before peak.
    first = Event(10_000, 20_000, "rage", 0.9, 0.8, 11_000, core_start_ms=11_000, core_end_ms=19_000)
    assert [role for role, _ in report.thumbnail_times(first, 3)] == ["start", "peak", "end"]


def test_clip_window_and_names():
    short = Event(10_000, 20_000, "rage", 0.9, 0.8, 14_000)
    assert report.clip_window(short) == (10_000, 20_000)
    assert report.clip_window(short, duration_ms=18_000) == (10_000, 18_000)  # not past the video's end
    assert report.clip_window(short, duration_ms=9_500) == (8_500, 9_500)
    long = Event(0, 600_000, "rage", 0.9, 0.8, 300_000)
    assert report.clip_window(long) == (270_000, 330_000)  # the minute around the peak
    assert report.clip_window(replace(long, peak_ms=5_000)) == (0, 60_000)
    assert report.clip_name(3, 9) == "event-03.mp4" and report.clip_name(7, 120) == "event-007.mp4"
    assert report.clips_folder(Path("/x/vod.report.html")) == Path("/x/vod.report-clips")


def test_settings_are_a_table_of_names_and_values(tmp_path: Path):
    scores = bumpy_scores(tmp_path / "v.mp4", 30_000, [(5000, 9000)])
    scores = replace(scores, scan=ScanInfo(region=Region(0.75, 0.0, 1.0, 0.3), fps=2.0, mode="dense"))
    settings = {
        "model": "rage.pt",
        "scan": {"fps": 2.0, "crop": [0.75, 0, 1, 0.3], "full_frame": False},
        "batch settings": {"render": {"fade_ms": 250, "title": None}, "stall_timeout_s": 30},
    }
    events = events_for(scores, "rage")
    out = report.write_report(scores, events, tmp_path / "r.html", video=None, settings=settings, force=False)
    page = out.read_text(encoding="utf-8")
    table = page[page.index('<table class="settings">') : page.index("</table>")]
    rows = re.findall(r'<tr class="([^"]*)"><th(?: colspan="2")?>([^<]*)</th>(?:<td>([^<]*)</td>)?</tr>', table)
    found = {(name, value) for _, name, value in rows}
    assert {
        ("model", "rage.pt"),
        ("scan", ""),  # a group
        ("fps", "2"),
        ("crop", "0.75, 0, 1, 0.3"),
        ("full frame", "no"),
        ("fade", "0.25 s"),
        ("title", "none"),
        ("stall timeout", "30 s"),
        ("threshold", "0.5"),
        ("pad before", "1 s"),
        ("min length", "1 s"),
        ("include neighbours", "yes"),
        ("classes", "background, rage"),
        ("region", "0.75,0,1,0.3"),
        ("mode", "dense"),
    } <= found
    depth = {name: css for css, name, _ in rows}
    assert depth["scan"] == "group depth-0" and depth["render"] == "group depth-1" and depth["fade"] == "depth-2"
    assert "{" not in table and "[" not in table  # no JSON blobs
    assert len(rows) == table.count("<tr")


# --------------------------------------------------------------------------- pages


def test_report_without_events_says_so(tmp_path: Path):
    scores = bumpy_scores(tmp_path / "calm.mp4", 30_000, [])
    events = events_for(scores, "rage")
    assert events.events == ()
    out = report.write_report(scores, events, tmp_path / "r.html", video=None, settings={}, force=False)
    page = out.read_text(encoding="utf-8")
    doc = Elements(page)
    assert len(doc.named("svg")) == 1 and len(doc.with_class("score-line")) == 1
    assert doc.with_class("event-card") == [] and doc.named("img") == []
    assert "No events were found" in page
    assert "Events (0)" in page


def test_every_outside_string_is_escaped(tmp_path: Path):
    video = tmp_path / HOSTILE_FILE
    scores = bumpy_scores(video, 30_000, [(5000, 9000)], label=HOSTILE_CLASS)
    events = events_for(scores, HOSTILE_CLASS)
    assert len(events.events) == 1
    settings = {'<img src=x onerror="alert(2)">': "</td><script>alert(3)</script>", "crop": [0.7, 0, 1, 0.3]}
    out = report.write_report(scores, events, tmp_path / "r.html", video=None, settings=settings, force=False)
    page = out.read_text(encoding="utf-8")
    doc = Elements(page)
    assert doc.named("script") == [] and "<script" not in page.lower()
    assert not any(t == "img" for t, _ in doc.tags)  # no injected image either
    assert not any(name.startswith("on") for _, attrs in doc.tags for name in attrs)
    text = "".join(doc.text)
    assert HOSTILE_FILE in text and HOSTILE_CLASS in text and "</td><script>alert(3)</script>" in text
    assert '<img src=x onerror="alert(2)">' in text


def test_four_hour_scores_make_a_small_plot(tmp_path: Path):
    duration = 4 * 3_600_000
    scores = bumpy_scores(tmp_path / "vod.mp4", duration, [(1_000_000, 1_030_000), (9_000_000, 9_020_000)], step_ms=100)
    events = events_for(scores, "rage")
    out = report.write_report(scores, events, tmp_path / "r.html", video=None, settings={"fps": 10}, force=False)
    page = out.read_text(encoding="utf-8")
    (line,) = Elements(page).with_class("score-line")
    assert len(line["points"].split()) <= report.MAX_PLOT_POINTS
    assert len(page) < 400_000
    labels = [m for m in re.findall(r'class="axis-label x-label"[^>]*>([^<]+)<', page)]
    assert labels[0] == "0:00:00" and labels[-1] == "4:00:00"
    assert len(Elements(page).with_class("event-card")) == 2
    assert "thumbnails and clips skipped" in page


def test_report_refuses_to_overwrite(tmp_path: Path):
    scores = bumpy_scores(tmp_path / "v.mp4", 10_000, [])
    target = tmp_path / "r.html"
    target.write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        report.write_report(scores, events_for(scores, "rage"), target, video=None, settings={}, force=False)
    assert target.read_text() == "mine"
    report.write_report(scores, events_for(scores, "rage"), target, video=None, settings={}, force=True)
    assert target.read_text().startswith("<!DOCTYPE html>")


# --------------------------------------------------------------------------- with a real video

FFPROBE = shutil.which("ffprobe")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium); `make test` installs it"
)
REPORT_NAME = "report \"ü\" 's' #2 %20.html"  # every character a relative URL must encode


@pytest.fixture(scope="module")
def rendered_report(tmp_path_factory) -> tuple[Path, int]:
    """A report with clips and thumbnails from a real (tiny) video whose name, class and folder need escaping."""
    from tests.conftest import make_video

    folder = tmp_path_factory.mktemp("report") / "out é 'q' #1"
    folder.mkdir()
    video = make_video(folder / HOSTILE_FILE, duration=24, size="192x108", fps="25")
    info = probe.probe(video)
    scores = bumpy_scores(
        video, info.duration_ms, [(3000, 6000), (11_000, 13_000), (18_000, 21_000)], label=HOSTILE_CLASS
    )
    scores = replace(scores, scan=ScanInfo(region=Region(0.6, 0.1, 0.95, 0.45), fps=2.0, mode="dense"))
    events = events_for(scores, HOSTILE_CLASS)
    settings = {"model": "rage.pt", "scan fps": 2.0, "crop": [0.75, 0.0, 1.0, 0.3], "video": str(video)}
    out = report.write_report(scores, events, folder / REPORT_NAME, video=info, settings=settings, force=False)
    return out, len(events.events)


MOMENT_COLOURS = (("lime", 3.5, 6), ("yellow", 6, 8.5), ("blue", 8.5, 12))  # red before 3.5 s
PORTRAIT_REGION = Region(0.5, 0.05, 0.95, 0.3)


@pytest.fixture(scope="module")
def portrait_report(tmp_path_factory) -> tuple[Path, Event]:
    """A 9:16 video of solid colours (red, lime from 3.5 s, yellow from 6 s, blue from 8.5 s) without sound,
    and scores that find the moment 4-8 s, padded to 3-9 s: its padded edges are red and blue, its real
    edges lime and yellow."""
    from tests.conftest import make_video

    folder = tmp_path_factory.mktemp("portrait")
    boxes = ",".join(
        f"drawbox=x=0:y=0:w=iw:h=ih:color={colour}:t=fill:enable='between(t,{a},{b})'"
        for colour, a, b in MOMENT_COLOURS
    )
    video = make_video(
        folder / "portrait.mp4", duration=12, size="108x192", fps="25", audio=False, source="color=c=red",
        extra_video_filters=boxes,
    )  # fmt: skip
    info = probe.probe(video)
    times = np.arange(0, 12_000, 500, dtype=np.int64)
    rage = np.where((times >= 4000) & (times < 8000), 0.9, 0.05)
    rage[times == 6500] = 0.97
    probs = np.stack([1 - rage, rage], axis=1).astype(np.float32)
    scan = ScanInfo(region=PORTRAIT_REGION, fps=2.0, mode="dense")
    scores = Scores(video, info.duration_ms, ("background", "rage"), times, probs, 500, "rage", "f00dfeed", scan)
    events = events_for(scores, "rage")
    (event,) = events.events
    assert (event.start_ms, event.end_ms, event.core_start_ms, event.core_end_ms) == (3000, 9000, 4000, 8000)
    out = report.write_report(scores, events, folder / "portrait.html", video=info, settings={}, force=False)
    return out, event


def figures(page: str) -> dict[str, dict]:
    """Each figure's first image (or video), by the figure's class."""
    found: dict[str, dict] = {}
    current = None
    for tag, attrs in Elements(page).tags:
        if tag == "figure":
            current = attrs.get("class") or ""
        elif tag in ("img", "video") and current is not None:
            found.setdefault(current, attrs)
            current = None
    return found


def jpeg_of(image: dict) -> Image.Image:
    prefix = "data:image/jpeg;base64,"
    assert image["src"].startswith(prefix)
    return Image.open(io.BytesIO(base64.b64decode(image["src"][len(prefix) :])))


def mean_colour(picture: Image.Image) -> np.ndarray:
    return np.asarray(picture.convert("RGB")).reshape(-1, 3).mean(axis=0)


def ffprobe(path: Path) -> dict:
    if FFPROBE is None:
        pytest.skip("ffprobe is not installed")
    argv = [FFPROBE, "-v", "error", "-show_streams", "-show_format", "-of", "json", "file:" + str(path)]
    return json.loads(subprocess.run(argv, capture_output=True, check=True).stdout)


def top_level_boxes(path: Path) -> list[str]:
    """The MP4's top-level box types in file order (``moov`` before ``mdat`` = +faststart)."""
    data = path.read_bytes()
    boxes, offset = [], 0
    while offset + 8 <= len(data):
        size = int.from_bytes(data[offset : offset + 4], "big")
        boxes.append(data[offset + 4 : offset + 8].decode("latin-1"))
        if size == 1:
            size = int.from_bytes(data[offset + 8 : offset + 16], "big")
        if size < 8:
            break
        offset += size
    return boxes


def clip_paths(out: Path, page: str) -> list[Path]:
    """The files the page's video elements play, found from their relative URLs as a browser would."""
    from urllib.parse import unquote

    sources = [a["src"] for a in Elements(page).named("video")]
    for src in sources:
        assert "://" not in src and not src.startswith("/") and src.count("/") == 1  # relative, one folder down
    return [out.parent / unquote(src) for src in sources]


@pytest.mark.media
def test_event_cards_have_embedded_thumbnails(rendered_report):
    out, count = rendered_report
    doc = Elements(out.read_text(encoding="utf-8"))
    cards = doc.with_class("event-card")
    assert [c["id"] for c in cards] == ["event-1", "event-2", "event-3"]
    images = doc.named("img")
    assert len(images) == 3 * count + 1  # three per event and the frame showing the scanned region
    for image in images:
        picture = jpeg_of(image)
        assert picture.format == "JPEG"
        assert picture.size[0] == (report.fit_width(probe.probe(out.parent / HOSTILE_FILE), *report.FRAME_BOX)
                                   if image["alt"].startswith("frame at") and "event" not in image["alt"]
                                   else report.THUMBNAIL_WIDTH)  # fmt: skip
    # Nothing is loaded from anywhere: every URL is a data URL, an in-page anchor or a clip beside the page.
    urls = [a.get(k) for _, a in doc.tags for k in ("src", "href", "poster") if a.get(k)]
    folder_url = report._url_part(report.clips_folder(out).name)
    assert folder_url == "report%20%22%C3%BC%22%20%27s%27%20%232%20%2520-clips"
    assert all(u.startswith(("data:", "#", folder_url + "/")) for u in urls)


@pytest.mark.media
def test_every_event_has_a_small_playable_clip(rendered_report):
    out, count = rendered_report
    page = out.read_text(encoding="utf-8")
    paths = clip_paths(out, page)
    assert len(paths) == count and len(Elements(page).with_class("event-clip")) == count
    assert sorted(p.name for p in report.clips_folder(out).iterdir()) == [f"event-0{i}.mp4" for i in (1, 2, 3)]
    for path, video in zip(paths, Elements(page).named("video")):
        assert path.is_file() and path.parent == report.clips_folder(out)
        info = ffprobe(path)
        (picture,) = [s for s in info["streams"] if s["codec_type"] == "video"]
        (sound,) = [s for s in info["streams"] if s["codec_type"] == "audio"]
        assert (picture["codec_name"], picture["pix_fmt"], sound["codec_name"]) == ("h264", "yuv420p", "aac")
        assert (picture["width"], picture["height"]) == (192, 108)  # small sources are not enlarged
        assert (int(video["width"]), int(video["height"])) == (192, 108)  # the page's size hint agrees
        assert float(info["format"]["duration"]) > 1.5
        boxes = top_level_boxes(path)
        assert boxes.index("moov") < boxes.index("mdat")  # +faststart: plays before it has all loaded
        assert path.stat().st_size < 500_000
        assert video["poster"].startswith("data:image/jpeg;base64,")  # the peak, not the padding's first frame


@pytest.mark.media
def test_thumbnails_are_taken_at_the_moments_real_edges(portrait_report):
    out, event = portrait_report
    page = out.read_text(encoding="utf-8")
    found = figures(page)
    colours = {
        role: mean_colour(jpeg_of(found[f"thumb {role}"])) for role in ("start", "peak", "end")
    }  # fmt: skip
    lime, yellow = np.array([0, 255, 0]), np.array([255, 255, 0])
    # The padded edges (3.0 s red, 9.0 s blue) would show frames that are not the moment.
    assert np.abs(colours["start"] - lime).max() < 40, colours
    assert np.abs(colours["peak"] - yellow).max() < 40, colours
    assert np.abs(colours["end"] - yellow).max() < 40, colours
    assert "moment <b>0:04.0 – 0:08.0</b>" in page and "0:03.0 – 0:09.0" in page
    captions = re.findall(r"<figcaption>(start|peak|end) ([0-9:.]+)", page)
    assert captions == [("start", "0:04.0"), ("peak", "0:06.5"), ("end", "0:07.9")]
    # Portrait thumbnails keep their shape and fit the same box as landscape ones.
    for role in ("start", "peak", "end"):
        picture = jpeg_of(found[f"thumb {role}"])
        assert picture.size[1] <= report.THUMBNAIL_WIDTH + 2 and abs(picture.size[0] / picture.size[1] - 9 / 16) < 0.02
    # The clip of a video without sound still has an audio track (silence) and keeps the portrait shape.
    (path,) = clip_paths(out, page)
    streams = {s["codec_type"]: s for s in ffprobe(path)["streams"]}
    assert (streams["video"]["width"], streams["video"]["height"]) == (108, 192) and "audio" in streams


@pytest.mark.media
def test_clips_are_written_atomically_and_can_be_left_out(tmp_path: Path, monkeypatch):
    from autotosis.media import encode
    from tests.conftest import make_video

    video = make_video(tmp_path / "v.mp4", duration=8, size="96x54", fps="10", audio=False)
    info = probe.probe(video)
    scores = bumpy_scores(video, info.duration_ms, [(1000, 2500), (5000, 6500)])
    events = events_for(scores, "rage")
    assert len(events.events) == 2
    out = tmp_path / "r.html"
    folder = report.clips_folder(out)

    real = encode.cut_preview
    calls = []

    def failing(*args, **kwargs):
        calls.append(args)
        if len(calls) == 2:
            raise MediaError("disk on fire", video)
        return real(*args, **kwargs)

    monkeypatch.setattr(encode, "cut_preview", failing)
    with pytest.raises(MediaError):
        report.write_report(scores, events, out, video=info, settings={}, force=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4"]  # no page, no folder, no temp folder
    monkeypatch.setattr(encode, "cut_preview", real)

    folder.mkdir()
    (folder / "mine.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        report.write_report(scores, events, out, video=info, settings={}, force=False)
    assert not out.exists() and (folder / "mine.txt").exists()
    report.write_report(scores, events, out, video=info, settings={}, force=True)
    assert sorted(p.name for p in folder.iterdir()) == ["event-01.mp4", "event-02.mp4"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r-clips", "r.html", "v.mp4"]

    # Without clips the page is one self-contained file again.
    alone = tmp_path / "alone.html"
    report.write_report(scores, events, alone, video=info, settings={}, force=False, clips=False)
    doc = Elements(alone.read_text(encoding="utf-8"))
    assert doc.named("video") == [] and len(doc.with_class("event-card")) == 2
    assert all(a["src"].startswith("data:") for a in doc.named("img"))
    assert not report.clips_folder(alone).exists()


# --------------------------------------------------------------------------- in a real browser

# Injected into a copy of the report (the report itself has no script): once the page and every
# video's metadata have loaded, it writes what the browser laid out and decoded into the page,
# which --dump-dom then prints (--virtual-time-budget lets the loading finish first).
LAYOUT_PROBE = """<script>
const box = (el) => { const r = el.getBoundingClientRect();
  return [Math.round(r.width), Math.round(r.height), Math.round(r.left), Math.round(r.top)]; };
function probe() {
  const plot = document.getElementById("score-plot");
  const line = document.querySelector("#score-plot .score-line");
  const frame = document.querySelector("#region-frame img");
  const out = {
    window: [window.innerWidth, window.innerHeight],
    page: [document.documentElement.scrollWidth, document.body.scrollWidth],
    plot: box(plot),
    line: line ? box(line) : null,
    frame: frame ? {box: box(frame), natural: [frame.naturalWidth, frame.naturalHeight]} : null,
    spans: [...document.querySelectorAll("#score-plot .event-span")].map(box),
    cards: [...document.querySelectorAll(".event-card")].map((c) => ({
      id: c.id, box: box(c),
      visible: getComputedStyle(c).visibility === "visible" && getComputedStyle(c).display !== "none",
      images: [...c.querySelectorAll("img")].map((i) => ({complete: i.complete, natural: [i.naturalWidth,
        i.naturalHeight], box: box(i)})),
      videos: [...c.querySelectorAll("video")].map((v) => ({ready: v.readyState, duration: v.duration,
        size: [v.videoWidth, v.videoHeight], error: v.error ? v.error.code : null, box: box(v)})),
    })),
  };
  const pre = document.createElement("pre");
  pre.id = "layout-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
}
window.addEventListener("load", () => {
  const waits = [...document.querySelectorAll("video")].map((v) => v.readyState >= 1 ? null : new Promise((done) => {
    v.addEventListener("loadedmetadata", done, {once: true}); v.addEventListener("error", done, {once: true}); }));
  Promise.race([Promise.all(waits), new Promise((done) => setTimeout(done, 20000))]).then(probe);
});
</script>"""


def chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess:
    """Headless Chromium with a fresh profile and nothing that reaches the network on its own."""
    argv = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)


def layout(out: Path, profile: Path, window: str = "1280,2000") -> dict:
    """What Chromium laid out and loaded for the report ``out`` (probed in a copy beside it)."""
    probe_page = out.with_name("probe-" + out.name)
    probe_page.write_text(out.read_text(encoding="utf-8").replace("</body>", LAYOUT_PROBE + "</body>"), "utf-8")
    try:
        run = chromium(
            ["--dump-dom", f"--window-size={window}", "--virtual-time-budget=30000", probe_page.absolute().as_uri()],
            profile,
        )
    finally:
        probe_page.unlink()
    assert run.returncode == 0, run.stderr[-2000:]
    match = re.search(r'<pre id="layout-probe">(.*?)</pre>', run.stdout, re.S)
    assert match, "the layout probe did not run"
    return json.loads(html.unescape(match.group(1)))


def screenshot(out: Path, profile: Path, window: tuple[int, int]) -> np.ndarray:
    picture = profile.with_name(profile.name + ".png")
    shot = chromium(
        [f"--screenshot={picture}", f"--window-size={window[0]},{window[1]}", "--virtual-time-budget=30000",
         out.absolute().as_uri()],
        profile,
    )  # fmt: skip
    assert shot.returncode == 0 and picture.exists(), shot.stderr[-2000:]
    # The test artefact: kept in pytest's temp folder, and copied where CI collects artefacts.
    if os.environ.get("AUTOTOSIS_TEST_ARTIFACTS"):
        artifacts = Path(os.environ["AUTOTOSIS_TEST_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(picture, artifacts / f"{profile.name}.png")
    pixels = np.asarray(Image.open(picture).convert("RGB")).astype(np.int16)
    assert pixels.shape == (window[1], window[0], 3)
    return pixels


def near(pixels: np.ndarray, colour: int, tolerance: int) -> np.ndarray:
    rgb = np.array([colour >> 16, colour >> 8 & 0xFF, colour & 0xFF])
    return np.abs(pixels - rgb).sum(axis=2) < tolerance


def assert_region_drawn(pixels: np.ndarray, frame: dict, region: Region) -> None:
    """The region's rectangle is on the frame's thumbnail where the region is, in REGION_COLOUR."""
    colour = int(report.REGION_COLOUR[1:], 16)
    hit = near(pixels, colour, 60)
    width, height, left, top = frame["box"]
    x0, x1 = left + region.x0 * width, left + region.x1 * width
    y0, y1 = top + region.y0 * height, top + region.y1 * height
    edges = {
        "left": [hit[y, round(x0) - 2 : round(x0) + 3].any() for y in range(round(y0) + 3, round(y1) - 3)],
        "right": [hit[y, round(x1) - 2 : round(x1) + 3].any() for y in range(round(y0) + 3, round(y1) - 3)],
        "top": [hit[round(y0) - 2 : round(y0) + 3, x].any() for x in range(round(x0) + 3, round(x1) - 3)],
        "bottom": [hit[round(y1) - 2 : round(y1) + 3, x].any() for x in range(round(x0) + 3, round(x1) - 3)],
    }
    for name, found in edges.items():
        assert len(found) > 10 and np.mean(found) > 0.9, f"the region's {name} edge is not drawn where expected"
    inside = hit[round(y0) + 5 : round(y1) - 5, round(x0) + 5 : round(x1) - 5]
    assert inside.mean() < 0.02  # an outline, not a filled box


@pytest.mark.media
@needs_chromium
def test_report_renders_in_headless_chromium(rendered_report, tmp_path: Path):
    out, count = rendered_report
    url = out.absolute().as_uri()
    dom = chromium(["--dump-dom", url], tmp_path / "profile-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    doc = Elements(dom.stdout)
    (plot,) = [a for t, a in doc.tags if t == "svg" and a.get("id") == "score-plot"]
    assert doc.with_class("score-line") and doc.with_class("threshold-line")
    assert len(doc.with_class("event-span")) == count
    assert len(doc.with_class("event-card")) == count
    assert doc.named("script") == []  # the hostile names stayed text in the browser too
    assert HOSTILE_CLASS in "".join(doc.text)

    # Moved elsewhere together, the page still finds its clips (relative URLs).
    moved = tmp_path / "moved ü #3" / out.name
    moved.parent.mkdir()
    shutil.copy(out, moved)
    shutil.copytree(report.clips_folder(out), report.clips_folder(moved))
    # Layout, as the browser did it: the plot, its line and every event span have a size; every card is
    # shown with all its thumbnails decoded at their real width and its clip loaded and playable.
    found = layout(moved, tmp_path / "profile-probe")
    assert found["page"][0] <= found["window"][0]
    assert found["plot"][0] > 1000 and found["plot"][1] > 200
    assert found["line"][0] > 0.9 * found["plot"][0] * (1200 - report.MARGIN_LEFT - report.MARGIN_RIGHT) / 1200
    assert len(found["spans"]) == count and all(w > 0 and h > 100 for w, h, *_ in found["spans"])
    assert [c["id"] for c in found["cards"]] == [f"event-{i}" for i in range(1, count + 1)]
    for card in found["cards"]:
        assert card["visible"] and card["box"][0] > 300 and card["box"][1] > 100
        assert len(card["images"]) == 3
        for image in card["images"]:
            assert image["complete"] and image["natural"][0] == report.THUMBNAIL_WIDTH
            assert image["box"][0] > 50 and image["box"][1] > 20
        (video,) = card["videos"]
        assert video["error"] is None and video["ready"] >= 1, video
        assert video["duration"] > 1.5 and video["size"] == [192, 108]
        assert video["box"][0] > 100 and abs(video["box"][0] / video["box"][1] - 16 / 9) < 0.05

    pixels = screenshot(moved, tmp_path / "report", (1280, 2000))
    assert near(pixels, 0x4FC3F7, 40).sum() > 300  # the score line
    assert near(pixels, 0x473928, 25).sum() > 20_000  # the events' shading: #ffb74d at 22% over the plot's #13161d
    assert near(pixels, 0xEF5350, 60).sum() > 300  # the threshold line
    saturated = (pixels.max(axis=2) - pixels.min(axis=2)) > 150  # the test pattern's colour bars
    thumbnail_area = 150 * 80  # each thumbnail is shown at least this large at this window size
    assert saturated.sum() > 3 * count * thumbnail_area * 0.5
    assert_region_drawn(pixels, found["frame"], Region(0.6, 0.1, 0.95, 0.45))


@pytest.mark.media
@needs_chromium
def test_portrait_source_keeps_its_shape_and_the_page_its_width(portrait_report, tmp_path: Path):
    out, _ = portrait_report
    layouts = {}
    for window in ((1280, 1400), (540, 1400)):  # Chromium keeps a headless window at least 500 px wide
        found = layouts[window] = layout(out, tmp_path / f"profile-{window[0]}", f"{window[0]},{window[1]}")
        assert found["page"][0] <= found["window"][0] == window[0], found["page"]  # no sideways scrolling
        frame = found["frame"]
        assert frame["box"][1] <= 360 and frame["box"][2] + frame["box"][0] <= window[0]
        assert abs(frame["box"][0] / frame["box"][1] - 9 / 16) < 0.03  # not stretched
        (card,) = found["cards"]
        assert card["box"][2] + card["box"][0] <= window[0]
        (video,) = card["videos"]
        assert video["error"] is None and video["ready"] >= 1 and video["size"] == [108, 192], video
        assert video["box"][1] <= 360 and abs(video["box"][0] / video["box"][1] - 9 / 16) < 0.03
        for image in card["images"]:
            assert image["complete"] and 0 < image["box"][1] <= 200
            assert abs(image["box"][0] / image["box"][1] - image["natural"][0] / image["natural"][1]) < 0.03
    pixels = screenshot(out, tmp_path / "portrait", (1280, 1400))
    assert_region_drawn(pixels, layouts[(1280, 1400)]["frame"], PORTRAIT_REGION)
