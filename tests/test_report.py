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
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autotosis.core.errors import OutputExistsError
from autotosis.core.timefmt import clock_seconds
from autotosis.detect.scores import Scores
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
    assert "thumbnails skipped" in page


def test_report_refuses_to_overwrite(tmp_path: Path):
    scores = bumpy_scores(tmp_path / "v.mp4", 10_000, [])
    target = tmp_path / "r.html"
    target.write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        report.write_report(scores, events_for(scores, "rage"), target, video=None, settings={}, force=False)
    assert target.read_text() == "mine"
    report.write_report(scores, events_for(scores, "rage"), target, video=None, settings={}, force=True)
    assert target.read_text().startswith("<!DOCTYPE html>")


@pytest.fixture(scope="module")
def rendered_report(tmp_path_factory) -> tuple[Path, int]:
    """A report with thumbnails from a real (tiny) video whose name and class need escaping."""
    from tests.conftest import make_video

    folder = tmp_path_factory.mktemp("report")
    video = make_video(folder / HOSTILE_FILE, duration=24, size="192x108", fps="25")
    info = probe.probe(video)
    scores = bumpy_scores(
        video, info.duration_ms, [(3000, 6000), (11_000, 13_000), (18_000, 21_000)], label=HOSTILE_CLASS
    )
    events = events_for(scores, HOSTILE_CLASS)
    settings = {"model": "rage.pt", "scan fps": 2.0, "crop": [0.75, 0.0, 1.0, 0.3], "video": str(video)}
    out = report.write_report(scores, events, folder / "report.html", video=info, settings=settings, force=False)
    return out, len(events.events)


@pytest.mark.media
def test_event_cards_have_embedded_thumbnails(rendered_report):
    out, count = rendered_report
    assert count == 3
    doc = Elements(out.read_text(encoding="utf-8"))
    cards = doc.with_class("event-card")
    assert [c["id"] for c in cards] == ["event-1", "event-2", "event-3"]
    images = doc.named("img")
    assert len(images) == 3 * count
    for image in images:
        prefix = "data:image/jpeg;base64,"
        assert image["src"].startswith(prefix)
        picture = Image.open(io.BytesIO(base64.b64decode(image["src"][len(prefix) :])))
        assert picture.format == "JPEG" and picture.size[0] == report.THUMBNAIL_WIDTH
    # Nothing is loaded from anywhere: every URL in the page is a data URL or an in-page anchor.
    urls = [a.get("src") or a.get("href") for _, a in doc.tags if a.get("src") or a.get("href")]
    assert all(u.startswith(("data:", "#")) for u in urls)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

# Injected into a copy of the report (the report itself has no script): after load, it writes
# what the browser laid out and decoded into the page, which --dump-dom then prints.
LAYOUT_PROBE = """<script>
window.addEventListener("load", () => {
  const box = (el) => { const r = el.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; };
  const plot = document.getElementById("score-plot");
  const line = document.querySelector("#score-plot .score-line");
  const out = {
    plot: box(plot),
    line: line ? box(line) : null,
    spans: [...document.querySelectorAll("#score-plot .event-span")].map(box),
    cards: [...document.querySelectorAll(".event-card")].map((c) => ({
      id: c.id, box: box(c),
      visible: getComputedStyle(c).visibility === "visible" && getComputedStyle(c).display !== "none",
      images: [...c.querySelectorAll("img")].map((i) => ({complete: i.complete, natural: i.naturalWidth, box: box(i)})),
    })),
  };
  const pre = document.createElement("pre");
  pre.id = "layout-probe";
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
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
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(argv, capture_output=True, text=True, timeout=180, check=False)


@pytest.mark.media
@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (Debian: apt-get install chromium); `make test` installs it"
)
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

    # Layout, as the browser did it: the plot, its line and every event span have a size, and
    # every card is shown with all its thumbnails decoded at their real width.
    probe = out.with_name("report-probe.html")
    probe.write_text(out.read_text(encoding="utf-8").replace("</body>", LAYOUT_PROBE + "</body>"), encoding="utf-8")
    probed = chromium(["--dump-dom", "--window-size=1280,2000", probe.absolute().as_uri()], tmp_path / "profile-probe")
    assert probed.returncode == 0, probed.stderr[-2000:]
    match = re.search(r'<pre id="layout-probe">(.*?)</pre>', probed.stdout, re.S)
    assert match, "the layout probe did not run"
    layout = json.loads(html.unescape(match.group(1)))
    assert layout["plot"][0] > 1000 and layout["plot"][1] > 200
    assert layout["line"][0] > 0.9 * layout["plot"][0] * (1200 - report.MARGIN_LEFT - report.MARGIN_RIGHT) / 1200
    assert len(layout["spans"]) == count and all(w > 0 and h > 100 for w, h in layout["spans"])
    assert [c["id"] for c in layout["cards"]] == [f"event-{i}" for i in range(1, count + 1)]
    for card in layout["cards"]:
        assert card["visible"] and card["box"][0] > 300 and card["box"][1] > 100
        assert len(card["images"]) == 3
        for image in card["images"]:
            assert image["complete"] and image["natural"] == report.THUMBNAIL_WIDTH
            assert image["box"][0] > 50 and image["box"][1] > 20

    screenshot = tmp_path / "report.png"
    shot = chromium([f"--screenshot={screenshot}", "--window-size=1280,2000", url], tmp_path / "profile-shot")
    assert shot.returncode == 0 and screenshot.exists(), shot.stderr[-2000:]
    # The test artefact: kept in pytest's temp folder, and copied where CI collects artefacts.
    if os.environ.get("AUTOTOSIS_TEST_ARTIFACTS"):
        artifacts = Path(os.environ["AUTOTOSIS_TEST_ARTIFACTS"])
        artifacts.mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, artifacts / "report.png")
    pixels = np.asarray(Image.open(screenshot).convert("RGB")).astype(np.int16)
    assert pixels.shape == (2000, 1280, 3)

    def painted(colour: int, tolerance: int) -> int:
        rgb = np.array([colour >> 16, colour >> 8 & 0xFF, colour & 0xFF])
        return int((np.abs(pixels - rgb).sum(axis=2) < tolerance).sum())

    assert painted(0x4FC3F7, 40) > 300  # the score line
    assert painted(0x473928, 25) > 20_000  # the events' shading: #ffb74d at 22% over the plot's #13161d
    assert painted(0xEF5350, 60) > 300  # the threshold line
    saturated = (pixels.max(axis=2) - pixels.min(axis=2)) > 150  # the test pattern's colour bars
    thumbnail_area = 150 * 80  # each thumbnail is shown at least this large at this window size
    assert saturated.sum() > 3 * count * thumbnail_area * 0.5
