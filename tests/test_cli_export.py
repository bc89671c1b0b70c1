"""`autotosis export`, `autotosis report` and `render --chapters` through the command line, on tiny generated videos."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import opentimelineio as otio
import pytest

from autotosis.cli import main
from autotosis.core.errors import ExitStatus
from autotosis.core.frametime import ms_to_frames
from autotosis.detect.scores import Scores, write_scores
from autotosis.detect.segments import Event, EventList, EventParams, read_events, write_events
from autotosis.media import probe
from tests.conftest import make_video

pytestmark = pytest.mark.media

NTSC = Fraction(30000, 1001)
NTSC60 = Fraction(60000, 1001)
FFPROBE = shutil.which("ffprobe")
ALL_FILES = ["vod.otio", "vod.edl", "vod.fcpxml", "vod.ffmetadata", "vod.youtube.txt", "vod.srt", "vod.json", "vod.csv"]
# Times that fall exactly on 29.97 fps frames (1001 ms = 30 frames), and one that does not.
EVENTS = (
    Event(1001, 4004, "rage", 0.93, 0.871, 2002),  # frames 30..120
    Event(6006, 8500, "rage", 0.70, 0.612, 7007),  # frames 180..254.7 -> 255
)


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("autotosis: "), err
    return lines[0]


def clip_frames(clip) -> tuple[int, int]:
    return round(clip.source_range.start_time.value), round(clip.source_range.duration.value)


@pytest.fixture(scope="module")
def ntsc(tmp_path_factory) -> tuple[Path, Path]:
    """A 29.97 fps video whose name needs quoting, and an events file that names it by an absolute path."""
    folder = tmp_path_factory.mktemp("ntsc") / "vods é"
    folder.mkdir()
    video = make_video(folder / "my 'vod' #1.mp4", duration=10, size="192x108", fps="30000/1001")
    events_file = folder / "vod.events.json"
    write_events(EventList(video, probe.probe(video).duration_ms, "rage", EventParams(), EVENTS), events_file)
    return video, events_file


# --------------------------------------------------------------------------- export


def test_export_every_format_at_once_round_trips(ntsc, tmp_path: Path, capsys):
    video, events_file = ntsc
    base = tmp_path / "out dir" / "vod"
    assert run(["export", str(events_file), "--format", "otio,edl,fcpxml,chapters,srt,json,csv", "-o", str(base)]) == 0
    assert files_in(base.parent) == sorted(ALL_FILES)
    out = capsys.readouterr().out
    assert all(f"wrote {base.parent / name}" in out for name in ALL_FILES)

    frames = [(ms_to_frames(e.start_ms, NTSC), ms_to_frames(e.end_ms, NTSC)) for e in EVENTS]
    assert frames == [(30, 120), (180, 255)]
    expected = [(start, end - start) for start, end in frames]
    names = ["rage 0.93 @ 0:00:01", "rage 0.70 @ 0:00:06"]

    timeline = otio.adapters.read_from_file(str(base) + ".otio")
    clips = list(timeline.find_clips())
    assert [c.name for c in clips] == names
    assert [clip_frames(c) for c in clips] == expected
    assert all(c.source_range.start_time.rate == float(NTSC) for c in clips)
    assert clips[0].media_reference.target_url == video.absolute().as_uri()

    edl_text = (base.parent / "vod.edl").read_text()
    assert "FCM: DROP FRAME" in edl_text
    edl = otio.adapters.read_from_string(edl_text, "cmx_3600", rate=float(NTSC))
    assert [clip_frames(c) for c in edl.find_clips()] == expected
    assert [c.name for c in edl.find_clips()] == names

    fcpxml = otio.adapters.read_from_file(str(base) + ".fcpxml")
    fcp_clips = list(fcpxml.find_clips())
    assert [c.name for c in fcp_clips] == names
    for clip, (start, duration) in zip(fcp_clips, expected):
        # otio-fcpx-xml-adapter 1.0.0 reads 1001/30000s back as 29 fps: within a frame of the file's exact times.
        assert clip.source_range.start_time.to_seconds() == pytest.approx(start / NTSC, abs=1 / 29)
        assert clip.source_range.duration.to_seconds() == pytest.approx(duration / NTSC, abs=1 / 29)
    root = ET.parse(str(base) + ".fcpxml").getroot()
    assert root.find("./resources/format").get("frameDuration") == "1001/30000s"
    frame = Fraction(1001, 30000)
    exact = [
        (Fraction(c.get("start")[:-1]) / frame, Fraction(c.get("duration")[:-1]) / frame)
        for c in root.findall(".//spine/clip")
    ]
    assert exact == expected

    assert read_events(base.parent / "vod.json").events == EVENTS
    assert read_events(base.parent / "vod.csv").events == EVENTS
    srt = (base.parent / "vod.srt").read_text()
    assert "00:00:01,001 --> 00:00:04,004\nrage 0.93\n" in srt
    assert "00:00:06,006 --> 00:00:08,500\nrage 0.70\n" in srt
    youtube = (base.parent / "vod.youtube.txt").read_text()
    assert youtube == "0:00 Start\n0:01 rage 0.93\n0:06 rage 0.70\n"
    metadata = (base.parent / "vod.ffmetadata").read_text()
    assert re.findall(r"START=(\d+)\nEND=(\d+)", metadata) == [
        ("0", "1001"),
        ("1001", "6006"),
        ("6006", str(probe.probe(video).duration_ms)),
    ]


def test_one_event_has_one_name_and_number_in_every_output(ntsc, tmp_path: Path, monkeypatch):
    """Issue 19: the EDL said "rage 0.14" (the mean) where the short's file name said 0.59 (the peak), and a model
    trained from labels.txt called its events "labels".  Now every output names an event by its class as outputs
    show it and its peak score: here "highlight 0.59"."""
    from autotosis.outputs.render import chunk_overlays
    from autotosis.outputs.report import report_html

    video, _ = ntsc
    event = Event(1001, 4004, "labels", 0.586, 0.14, 2002)
    events_file = tmp_path / "one.events.json"
    write_events(EventList(video, probe.probe(video).duration_ms, "labels", EventParams(), (event,)), events_file)
    base = tmp_path / "x" / "one"
    assert run(["-q", "export", str(events_file), "--format", "otio,edl,fcpxml,srt,chapters", "-o", str(base)]) == 0
    named = "highlight 0.59"
    (clip,) = otio.adapters.read_from_file(str(base) + ".otio").find_clips()
    assert clip.name == f"{named} @ 0:00:01"
    edl_text = (base.parent / "one.edl").read_text()
    assert re.search(rf"FROM CLIP NAME: +{named} @ 0:00:01\n", edl_text) and "PEAK 0.59" in edl_text  # the marker
    assert "0.14" not in edl_text
    (edl_clip,) = otio.adapters.read_from_string(edl_text, "cmx_3600", rate=float(NTSC)).find_clips()
    assert edl_clip.name == f"{named} @ 0:00:01"
    root = ET.parse(str(base) + ".fcpxml").getroot()
    assert [c.get("name") for c in root.findall(".//spine/clip")] == [f"{named} @ 0:00:01"]
    assert (base.parent / "one.srt").read_text().split("\n")[2] == named
    assert f"0:01 {named}\n" in (base.parent / "one.youtube.txt").read_text()
    assert f"title={named}\n" in (base.parent / "one.ffmetadata").read_text()
    # The reel's text without scores, and the report's card.
    (overlay, *_) = chunk_overlays(event, None, 1000, 500, tmp_path, "o")
    assert overlay.text_file.read_text() == "highlight: 0.59"
    scores = scores_for(Path(video.name), probe.probe(video).duration_ms)
    page = report_html(scores, read_events(events_file), video=None, settings={}, thumbnails=None)
    assert ">highlight</h3>" in page and ">0.59</b>" in page
    # The short's file name.
    out = tmp_path / "shorts"
    argv = ["-q", "shorts", str(video), "--events", str(events_file), "-o", str(out), "--layout", "game"]
    assert run([*argv, "--size", "108x192", "--min", "1", "--max", "1"]) == 0
    (short,) = out.glob("*.mp4")
    assert short.name.startswith("01_highlight_0.59_0h00m01s_")


def test_export_finds_the_video_beside_the_events_file(ntsc, tmp_path: Path, monkeypatch, capsys):
    video, _ = ntsc
    # An events file that names its video relative to itself, read from another folder.
    folder = tmp_path / "project"
    folder.mkdir()
    shutil.copy(video, folder / "clip.mp4")
    events_file = folder / "clip.events.json"
    write_events(EventList(Path("clip.mp4"), 10_000, "rage", EventParams(), EVENTS[:1]), events_file)
    monkeypatch.chdir(tmp_path)
    assert run(["export", str(events_file), "-f", "edl"]) == 0
    assert (tmp_path / "clip.edl").exists()  # default base: ./NAME from the events file
    assert "clip.mp4" in (tmp_path / "clip.edl").read_text()


@pytest.mark.parametrize("fps, fcm", [("60000/1001", "FCM: DROP FRAME"), ("25", "FCM: NON-DROP FRAME")])
def test_export_is_exact_at_the_source_rate(fps: str, fcm: str, tmp_path: Path, video_factory):
    video = video_factory("v.mp4", duration=4, fps=fps, audio=False)
    rate = probe.probe(video).fps
    assert rate == Fraction(fps)
    events = (Event(1001, 2002, "pog", 0.8, 0.7, 1500), Event(2500, 3337, "pog", 0.9, 0.8, 3000))
    events_file = tmp_path / "v.events.json"
    write_events(EventList(video, 4000, "pog", EventParams(), events), events_file)
    assert run(["export", str(events_file), "-f", "otio,edl", "-o", str(tmp_path / "t")]) == 0
    expected = [
        (
            ms_to_frames(e.start_ms, rate),
            ms_to_frames(e.end_ms, rate) - ms_to_frames(e.start_ms, rate),
        )
        for e in events
    ]
    if rate == NTSC60:
        assert expected == [(60, 60), (150, 50)]  # 1001 ms is exactly 60 frames at 59.94
    timeline = otio.adapters.read_from_file(str(tmp_path / "t.otio"))
    assert [clip_frames(c) for c in timeline.find_clips()] == expected
    edl_text = (tmp_path / "t.edl").read_text()
    assert fcm in edl_text
    edl = otio.adapters.read_from_string(edl_text, "cmx_3600", rate=float(rate))
    assert [clip_frames(c) for c in edl.find_clips()] == expected


def test_export_of_a_variable_frame_rate_source_says_where_it_put_the_frames(tmp_path: Path, video_factory, capsys):
    # Every 5th frame for 2 s, then every frame: ffprobe reports an average rate of 17 fps.
    video = video_factory(
        "vfr.mp4",
        duration=5,
        fps="25",
        audio=False,
        extra_video_filters="select='gte(t,2)+not(mod(n,5))'",
        codec=["-c:v", "libx264", "-preset", "ultrafast", "-fps_mode", "vfr"],
    )
    events_file = tmp_path / "vfr.events.json"
    write_events(
        EventList(video, 5000, "rage", EventParams(), (Event(1000, 3000, "rage", 0.9, 0.8, 2000),)), events_file
    )
    assert run(["export", str(events_file), "-f", "otio,fcpxml,srt", "-o", str(tmp_path / "vfr")]) == 0
    out = capsys.readouterr().out
    assert "variable frame rate" in out and "24 fps" in out
    (clip,) = otio.adapters.read_from_file(str(tmp_path / "vfr.otio")).find_clips()
    assert clip_frames(clip) == (24, 48) and clip.source_range.start_time.rate == 24
    assert (
        clip.metadata["autotosis"]["start_ms"] == 1000 and clip.metadata["autotosis"]["end_ms"] == 3000
    )  # exact times kept
    assert "00:00:01,000 --> 00:00:03,000" in (tmp_path / "vfr.srt").read_text()  # SRT keeps the exact times


def test_export_does_not_overwrite_without_force(ntsc, tmp_path: Path, capsys):
    _, events_file = ntsc
    mine = tmp_path / "vod.edl"
    mine.write_text("my edits", encoding="utf-8")
    argv = ["export", str(events_file), "-f", "otio,edl", "-o", str(tmp_path / "vod")]
    assert run(argv) == ExitStatus.OUTPUT_EXISTS
    assert "vod.edl: already exists" in one_line_error(capsys)
    assert files_in(tmp_path) == ["vod.edl"] and mine.read_text() == "my edits"  # and no .otio either
    assert run([*argv, "--force"]) == 0
    assert mine.read_text().startswith("TITLE:") and (tmp_path / "vod.otio").exists()


@pytest.mark.parametrize(
    "case, status, message",
    [
        ("unknown format", ExitStatus.USAGE, "unknown export format 'premiere'"),
        ("missing events", ExitStatus.DATA, "no such events file"),
        ("broken events", ExitStatus.DATA, "not valid JSON"),
        ("video gone", ExitStatus.USAGE, "need the source video"),
        ("not a video", ExitStatus.MEDIA, "notes.mp4"),
        ("videos miscounted", ExitStatus.USAGE, "2 --video for 1 events files"),
        ("output is the input", ExitStatus.USAGE, "would overwrite the input"),
        ("several videos, one srt", ExitStatus.USAGE, "describe one video"),
    ],
)
def test_export_bad_inputs(case: str, status: ExitStatus, message: str, ntsc, tmp_path: Path, capsys):
    video, events_file = ntsc
    inputs = tmp_path / "in"
    inputs.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    gone = inputs / "gone.events.json"
    write_events(EventList(inputs / "deleted.mp4", 10_000, "rage", EventParams(), EVENTS), gone)
    notes = inputs / "notes.mp4"
    notes.write_text("not a video\n" * 20)
    broken = inputs / "broken.json"
    broken.write_text('{"format": "autotosis-events/1", "events": [')
    argv = {
        "unknown format": [str(events_file), "-f", "otio,premiere"],
        "missing events": [str(inputs / "nope.json"), "-f", "srt"],
        "broken events": [str(broken), "-f", "srt"],
        "video gone": [str(gone), "-f", "fcpxml"],
        "not a video": [str(events_file), "-f", "otio", "--video", str(notes)],
        "videos miscounted": [str(events_file), "-f", "otio", "--video", str(video), "--video", str(video)],
        "output is the input": [str(gone), "-f", "json", "-o", str(inputs / "gone.events"), "--force"],
        "several videos, one srt": [str(events_file), str(events_file), "-f", "otio,srt"],
    }[case]
    before = {p.name: p.read_bytes() for p in inputs.iterdir()}
    if case != "output is the input":
        argv += ["-o", str(out / "x")]
    assert run(["export", *argv]) == status
    assert message in one_line_error(capsys)
    assert files_in(out) == []
    assert {p.name: p.read_bytes() for p in inputs.iterdir()} == before


def test_export_of_the_video_gone_still_writes_per_video_formats(tmp_path: Path):
    events_file = tmp_path / "gone.events.json"
    write_events(EventList(tmp_path / "deleted.mp4", 10_000, "rage", EventParams(), EVENTS), events_file)
    assert run(["export", str(events_file), "-f", "chapters,srt", "-o", str(tmp_path / "g")]) == 0
    assert (tmp_path / "g.srt").read_text().count(" --> ") == 2
    assert (tmp_path / "g.youtube.txt").read_text().startswith("0:00 Start\n")


# --------------------------------------------------------------------------- render --chapters


@pytest.mark.skipif(FFPROBE is None, reason="ffprobe is not installed")
def test_render_with_chapters_shows_them_in_ffprobe(ntsc, tmp_path: Path, capsys):
    video, events_file = ntsc
    reel = tmp_path / "reel é.mp4"
    assert (
        run(
            [
                "render",
                str(video),
                str(events_file),
                "-o",
                str(reel),
                "--chapters",
                "--title",
                "Best of; #1",
                "--size",
                "160x90",
            ]
        )
        == 0
    )
    assert "3 chapters" in capsys.readouterr().out
    probed = subprocess.run(
        [FFPROBE, "-v", "error", "-show_chapters", "-show_format", "-print_format", "json", "file:" + str(reel)],
        capture_output=True,
        text=True,
        check=True,
    )
    info = json.loads(probed.stdout)
    chapters = info["chapters"]
    assert [c["tags"]["title"] for c in chapters] == ["Best of; #1", "rage 0.93 @ 0:00:01", "rage 0.70 @ 0:00:06"]
    starts = [float(c["start_time"]) for c in chapters]
    ends = [float(c["end_time"]) for c in chapters]
    # Pieces are whole frames at 29.97: the 2 s title is 60 frames, the events 90 and 75 frames.
    lengths = [60, 90, 75]
    edges = np.cumsum([0, *lengths]) * 1001 / 30000
    assert starts == pytest.approx(edges[:-1], abs=0.0015) and ends == pytest.approx(edges[1:], abs=0.0015)
    assert ends[-1] == pytest.approx(float(info["format"]["duration"]), abs=0.05)
    youtube = (tmp_path / "reel é.youtube.txt").read_text()
    assert youtube == "0:00 Best of; #1\n0:02 rage 0.93 @ 0:00:01\n0:05 rage 0.70 @ 0:00:06\n"


def test_render_with_chapters_will_not_overwrite_the_chapter_text(ntsc, tmp_path: Path, capsys):
    video, events_file = ntsc
    mine = tmp_path / "reel.youtube.txt"
    mine.write_text("my description", encoding="utf-8")
    assert (
        run(["render", str(video), str(events_file), "-o", str(tmp_path / "reel.mp4"), "--chapters"])
        == ExitStatus.OUTPUT_EXISTS
    )
    assert "reel.youtube.txt: already exists" in one_line_error(capsys)
    assert files_in(tmp_path) == ["reel.youtube.txt"] and mine.read_text() == "my description"


# --------------------------------------------------------------------------- report


class Page(HTMLParser):
    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def with_class(self, name: str) -> list[dict]:
        return [a for _, a in self.tags if name in (a.get("class") or "").split()]


def scores_for(video: Path, duration_ms: int) -> Scores:
    times = np.arange(0, duration_ms, 500, dtype=np.int64)
    rage = np.where(((times >= 2000) & (times < 4000)) | ((times >= 6000) & (times < 7500)), 0.9, 0.1).astype(
        np.float32
    )
    return Scores(video, duration_ms, ("background", "rage"), times, np.stack([1 - rage, rage], 1), 500, "rage", "cafe")


def test_report_from_a_scores_file(ntsc, tmp_path: Path, monkeypatch, capsys):
    video, events_file = ntsc
    # The scores name their video relative to the scores file, as a scan run in that folder writes it.
    scores_file = video.parent / "vod.scores.json"
    write_scores(scores_for(Path(video.name), probe.probe(video).duration_ms), scores_file, force=True)
    monkeypatch.chdir(tmp_path)
    assert (
        run(["report", "--scores", str(scores_file), "--threshold", "0.6", "--pad-before", "0", "--pad-after", "0"])
        == 0
    )
    page = (tmp_path / "vod.report.html").read_text(encoding="utf-8")
    doc = Page(page)
    assert doc.with_class("score-line") and doc.with_class("threshold-line")
    cards = doc.with_class("event-card")
    assert [c["id"] for c in cards] == ["event-1", "event-2"]
    thumbs = [a for t, a in doc.tags if t == "img" and a["src"].startswith("data:image/jpeg;base64,")]
    assert len(thumbs) == 6 + 1  # three per event, and the frame that shows the scanned region
    assert [a["src"] for t, a in doc.tags if t == "video"] == [f"vod.report-clips/event-0{i}.mp4" for i in (1, 2)]
    assert sorted(p.name for p in (tmp_path / "vod.report-clips").iterdir()) == ["event-01.mp4", "event-02.mp4"]
    assert "threshold <b>0.60</b>" in page and "vod.scores.json" in page
    assert "and its clips in" in capsys.readouterr().out

    # With an events file the events come from it: the two fixed events, named by their times.
    out = tmp_path / "r.html"
    assert (
        run(
            ["report", "--scores", str(scores_file), "--events", str(events_file), "-o", str(out), "--thumbnails", "1"]
            + ["--no-clips"]
        )
        == 0
    )
    page = out.read_text(encoding="utf-8")
    assert len(Page(page).with_class("event-card")) == 2 and "0:01.0 – 0:04.0" in page and "0:06.0 – 0:08.5" in page
    assert len([t for t, _ in Page(page).tags if t == "img"]) == 2 + 1
    assert not [t for t, _ in Page(page).tags if t == "video"] and not (tmp_path / "r-clips").exists()
    assert "vod.events.json" in page


def test_report_refuses_options_it_would_ignore_and_existing_outputs(ntsc, tmp_path: Path, capsys):
    video, events_file = ntsc
    scores_file = tmp_path / "s.json"
    write_scores(scores_for(video, 10_000), scores_file)
    out = tmp_path / "r.html"
    assert run(["report", "--scores", str(scores_file), "--fps", "4", "-o", str(out)]) == ExitStatus.USAGE
    assert "--fps has no effect with --scores" in one_line_error(capsys)
    assert (
        run(
            ["report", "--scores", str(scores_file), "--events", str(events_file), "--threshold", "0.3", "-o", str(out)]
        )
        == ExitStatus.USAGE
    )
    assert "--threshold has no effect with --events" in one_line_error(capsys)
    assert run(["report", "-o", str(out)]) == ExitStatus.USAGE
    assert "nothing to report on" in one_line_error(capsys)
    assert run(["report", "--model", "m.pt", "--scores", str(scores_file), "-o", str(out)]) == ExitStatus.USAGE
    one_line_error(capsys)
    assert run(["report", "--scores", str(tmp_path / "missing.json"), "-o", str(out)]) == ExitStatus.DATA
    assert "no such scores file" in one_line_error(capsys)
    assert not out.exists()
    out.write_text("mine", encoding="utf-8")
    assert run(["report", "--scores", str(scores_file), "-o", str(out)]) == ExitStatus.OUTPUT_EXISTS
    assert out.read_text() == "mine"
    assert run(["report", "--scores", str(scores_file), "-o", str(out), "--force"]) == 0
    assert out.read_text().startswith("<!DOCTYPE html>")
    assert files_in(tmp_path) == ["r-clips", "r.html", "s.json"]  # no temp files left
    # An earlier report's clips are not replaced without --force either (checked before the slow part).
    out.unlink()
    capsys.readouterr()
    assert run(["report", "--scores", str(scores_file), "-o", str(out)]) == ExitStatus.OUTPUT_EXISTS
    assert "r-clips: already exists" in one_line_error(capsys) and not out.exists()


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    """A checkpoint trained for one short epoch on two 3-second clips: enough to exercise the scan path."""
    root = tmp_path_factory.mktemp("tiny model")
    red = "drawbox=x=iw*0.75:y=0:w=iw*0.25:h=ih*0.3:color=red:t=fill:enable='between(t,1,2)'"
    make_video(root / "a.mp4", duration=3, size="96x54", fps="10", audio=False, extra_video_filters=red)
    make_video(root / "b.mp4", duration=3, size="96x54", fps="10", audio=False)
    (root / "rage.txt").write_text("# default crop=0.75,0.0,1.0,0.3\na.mp4  1-2\nb.mp4\n")
    model = root / "rage.pt"
    assert (
        run(
            [
                "train",
                str(root / "rage.txt"),
                "-o",
                str(model),
                "--epochs",
                "1",
                "--size",
                "32",
                "--fps",
                "4",
                "--val-fraction",
                "0.5",
                "--frames-dir",
                str(root / "frames"),
            ]
        )
        == 0
    )
    return model


@pytest.mark.torch
def test_report_scans_a_video_with_a_model(ntsc, tiny_model: Path, tmp_path: Path, monkeypatch, capsys):
    video, _ = ntsc
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "report é.html"
    code = main(
        [
            "--progress",
            "json",
            "report",
            str(video),
            "--model",
            str(tiny_model),
            "-o",
            str(out),
            "--top-percent",
            "20",
            "--fps",
            "2",
        ]
    )
    assert code == 0
    err = capsys.readouterr().err
    stages = {json.loads(line)["stage"] for line in err.splitlines() if line.startswith("{")}
    assert {"scan", "thumbnails", "clips"} <= stages  # long work reports progress
    page = out.read_text(encoding="utf-8")
    doc = Page(page)
    (line,) = doc.with_class("score-line")
    assert len(line["points"].split()) == 21  # 10.01 s at 2 scores/s: samples at 0, 0.5, ..., 10.0 s
    cards = doc.with_class("event-card")
    assert cards and len([t for t, _ in doc.tags if t == "img"]) == 3 * len(cards) + 1  # + the scanned region's frame
    assert len([t for t, _ in doc.tags if t == "video"]) == len(cards)
    # The scan recorded what it looked at: the settings table says so, in words.
    assert "scan as recorded with the scores" in page and "scores per second" in page
    assert str(tiny_model) in page and "top <b>20.0%</b>" in page


@pytest.mark.torch
@pytest.mark.skipif(FFPROBE is None, reason="ffprobe is not installed")
def test_reel_with_chapters_names_each_source_and_event(tiny_model: Path, tmp_path: Path, video_factory, monkeypatch):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    first, second = (
        video_factory("first vod.mp4", duration=6, fps="25"),
        video_factory("second.mp4", duration=6, fps="25"),
    )
    reel = tmp_path / "reel.mp4"
    assert (
        run(
            [
                "reel",
                str(first),
                str(second),
                "--model",
                str(tiny_model),
                "-o",
                str(reel),
                "--chapters",
                "--top-percent",
                "20",
                "--top-k",
                "1",
                "--pad-before",
                "0",
                "--pad-after",
                "0",
                "--size",
                "96x54",
            ]
        )
        == 0
    )
    probed = subprocess.run(
        [FFPROBE, "-v", "error", "-show_chapters", "-print_format", "json", "file:" + str(reel)],
        capture_output=True,
        text=True,
        check=True,
    )
    titles = [c["tags"]["title"] for c in json.loads(probed.stdout)["chapters"]]
    assert len(titles) == 4 and titles[0] == "first vod" and titles[2] == "second"
    assert all(re.fullmatch(r"rage \d\.\d\d @ 0:00:0\d", t) for t in titles[1::2])
    assert (tmp_path / "reel.youtube.txt").read_text().splitlines()[0] == "0:00 first vod"


@pytest.mark.torch
def test_report_with_a_bad_model_or_video_writes_nothing(tiny_model: Path, tmp_path: Path, video_factory, capsys):
    video = video_factory("v.mp4", duration=2)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 50)
    out = tmp_path / "r.html"
    assert run(["report", str(video), "--model", str(garbage), "-o", str(out)]) == ExitStatus.MODEL
    one_line_error(capsys)
    assert (
        run(["report", str(tmp_path / "missing.mp4"), "--model", str(tiny_model), "-o", str(out)]) == ExitStatus.MEDIA
    )
    assert "missing.mp4" in one_line_error(capsys)
    assert run(["report", "--model", str(tiny_model), "-o", str(out)]) == ExitStatus.USAGE
    assert "needs the VIDEO" in one_line_error(capsys)
    assert files_in(tmp_path) == ["garbage.pt", "v.mp4"]


@pytest.mark.parametrize("command", ["export", "report"])
def test_new_commands_have_help(command: str, capsys):
    assert run([command, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"usage: autotosis {command}" in out and "Example" in out
