"""export.py: OTIO/EDL/FCPXML through OpenTimelineIO's adapters, chapters (muxed and YouTube), SRT, JSON, CSV."""

from __future__ import annotations

import json
import shutil
import subprocess
import xml.etree.ElementTree as ET
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from autotosis.core.errors import DataError, OutputExistsError, UsageError
from autotosis.core.frametime import frames_to_ms, ms_to_frames, timeline_rate
from autotosis.detect.segments import Event, EventList, EventParams, read_events
from autotosis.media import encode, probe
from autotosis.media.probe import VideoInfo
from autotosis.outputs.exports.chapters import (
    Chapter,
    chapters_ffmetadata,
    chapters_youtube,
    reel_chapters,
    source_chapters,
)
from autotosis.outputs.exports.editors import _reel_names, build_timeline, timeline_text
from autotosis.outputs.exports.files import EXPORT_FORMATS, export_events, export_paths, parse_formats
from autotosis.outputs.exports.subtitles import events_srt
from autotosis.outputs.exports.timecode import chapter_title, clip_name, srt_text

NTSC = Fraction(30000, 1001)
NTSC60 = Fraction(60000, 1001)
HOUR_MS = 3_600_000


def video_info(
    path: str | Path,
    fps: Fraction | None,
    duration_ms: int = HOUR_MS,
    width: int = 1920,
    height: int = 1080,
    has_audio: bool = True,
) -> VideoInfo:
    """A VideoInfo as probe would return it, for a file that need not exist."""
    return VideoInfo(Path(path), duration_ms, width, height, fps, has_audio, 0, Fraction(1), "h264", 0)


def event(
    start_ms: int, end_ms: int, label: str = "rage", peak: float = 0.93, mean: float = 0.87, peak_ms: int | None = None
) -> Event:
    return Event(start_ms, end_ms, label, peak, mean, start_ms if peak_ms is None else peak_ms)


def event_list(video: str | Path | None, *events: Event, duration_ms: int = HOUR_MS, label: str = "rage") -> EventList:
    return EventList(None if video is None else Path(video), duration_ms, label, EventParams(), tuple(events))


EVENTS = (
    event(723_000, 733_000, peak=0.93, mean=0.87, peak_ms=727_500),  # 0:12:03
    event(1_668_000, 1_673_000, peak=0.70, mean=0.61, peak_ms=1_670_000),
    event(3_590_000, 3_599_999, peak=0.55, mean=0.52, peak_ms=3_595_000),  # ends 1 ms before the video
)


def frames_of(ms: int, rate: Fraction) -> int:
    return ms_to_frames(ms, rate)


def clip_frames(clip) -> tuple[int, int]:
    start = clip.source_range.start_time
    duration = clip.source_range.duration
    return round(start.value), round(duration.value)


# --------------------------------------------------------------------------- rates and names


@pytest.mark.parametrize(
    "fps, expected, noted",
    [
        (Fraction(25), Fraction(25), False),
        (NTSC, NTSC, False),
        (NTSC60, NTSC60, False),
        (Fraction(24000, 1001), Fraction(24000, 1001), False),
        (Fraction(4997, 200), Fraction(25), True),  # a VFR file's average rate
        (Fraction(2997, 100), NTSC, True),  # "29.97" written as a decimal
        (Fraction(15), Fraction(30), True),  # every source frame lands on a timeline frame
        (Fraction(25, 2), Fraction(25), True),
        (Fraction(120), Fraction(60), True),
        (Fraction(17), Fraction(24), True),  # not 23.976: an average rate gets non-drop timecode
        (Fraction(5980, 100), Fraction(60), True),
        (None, Fraction(30), True),
    ],
)
def test_timeline_rate_keeps_standard_rates_and_explains_others(fps, expected, noted):
    chosen = timeline_rate(fps)
    assert chosen.rate == expected
    assert (chosen.note is not None) == noted
    if fps is not None and noted:
        assert "not a standard" in chosen.note and "variable frame rate" in chosen.note


def test_ms_to_frames_is_exact_at_ntsc_rates():
    # 12:03 at 29.97 fps is 21668.33 frames; float fps * seconds would agree here, but not at 4 hours.
    assert ms_to_frames(723_000, NTSC) == 21668
    assert ms_to_frames(4 * HOUR_MS, NTSC) == 431568  # 14400 s * 30000/1001 = 431568.43
    assert ms_to_frames(4 * HOUR_MS, NTSC60) == 863137
    assert ms_to_frames(20, Fraction(25)) == 1  # halves round up
    for ms in (0, 1, 999, 723_000, 4 * HOUR_MS - 1):
        frames = ms_to_frames(ms, NTSC)
        assert abs(frames_to_ms(frames, NTSC) - ms) <= 17  # within half a frame (16.7 ms)


def test_names_carry_class_and_score():
    # The one number of an event is its peak (issue 19): not the mean, wherever the event is named.
    e = event(723_400, 733_000, label="rage", peak=0.934, mean=0.871)
    assert e.score == 0.934 and e.score_text == "0.93"
    assert clip_name(e) == "rage 0.93 @ 0:12:03"
    assert chapter_title(e) == "rage 0.93"
    assert srt_text(e) == "rage 0.93"
    assert clip_name(event(4 * HOUR_MS + 61_000, 4 * HOUR_MS + 62_000, label="a\nb\tc")) == "a b c 0.93 @ 4:01:01"
    assert clip_name(event(0, 1000, label="labels", peak=0.5)) == "highlight 0.50 @ 0:00:00"  # a generic task name


# --------------------------------------------------------------------------- timeline


def test_timeline_has_one_clip_per_event_at_the_source_rate(tmp_path: Path):
    path = tmp_path / "my vod #1.mp4"
    timeline = build_timeline([(video_info(path, NTSC), event_list(path, *EVENTS))], "rage highlights")
    (track,) = timeline.tracks
    clips = list(track.find_clips())
    assert [c.name for c in clips] == ["rage 0.93 @ 0:12:03", "rage 0.70 @ 0:27:48", "rage 0.55 @ 0:59:50"]
    for clip, e in zip(clips, EVENTS):
        assert clip.source_range.start_time.rate == pytest.approx(float(NTSC), abs=0)
        start, duration = clip_frames(clip)
        assert start == frames_of(e.start_ms, NTSC)
        assert start + duration == frames_of(e.end_ms, NTSC)
        reference = clip.media_reference
        assert reference.target_url == path.absolute().as_uri()
        assert "%20" in reference.target_url and "%23" in reference.target_url
        assert reference.available_range.start_time.value == 0
        assert round(reference.available_range.duration.value) == frames_of(HOUR_MS, NTSC)
        meta = clip.metadata["autotosis"]
        assert (meta["start_ms"], meta["end_ms"], meta["peak_ms"], meta["label"]) == (
            e.start_ms,
            e.end_ms,
            e.peak_ms,
            "rage",
        )
        (marker,) = clip.markers
        assert round(marker.marked_range.start_time.value) == frames_of(e.peak_ms, NTSC)
    # The last clip ends inside the available range even though the event ends 1 ms before the video does.
    assert clips[-1].source_range.end_time_exclusive() <= clips[-1].media_reference.available_range.end_time_exclusive()
    (source,) = timeline.metadata["autotosis"]["sources"]
    assert source["timeline_rate"] == "30000/1001" and source["rate_note"] is None


def test_vfr_source_is_placed_on_a_standard_rate_and_says_so(tmp_path: Path):
    info = video_info(tmp_path / "vfr.mkv", Fraction(4997, 200))
    timeline = build_timeline([(info, event_list(info.path, *EVENTS))])
    (source,) = timeline.metadata["autotosis"]["sources"]
    assert source["timeline_rate"] == "25" and source["source_fps"] == "4997/200"
    assert "variable frame rate" in source["rate_note"]
    clip = next(iter(timeline.find_clips()))
    assert clip.source_range.start_time.rate == 25
    assert "variable frame rate" in clip.media_reference.metadata["autotosis"]["rate_note"]


def test_event_past_the_video_end_is_refused(tmp_path: Path):
    info = video_info(tmp_path / "short.mp4", Fraction(25), duration_ms=60_000)
    with pytest.raises(DataError, match="past the video's end"):
        build_timeline([(info, event_list(info.path, event(70_000, 75_000)))])


def test_otio_json_round_trips(tmp_path: Path):
    path = tmp_path / "vod.mp4"
    timeline = build_timeline([(video_info(path, NTSC60), event_list(path, *EVENTS))])
    text, warnings = timeline_text(timeline, "otio")
    assert warnings == []
    back = otio.adapters.read_from_string(text, "otio_json")
    assert back.is_equivalent_to(timeline)
    assert [clip_frames(c) for c in back.find_clips()] == [clip_frames(c) for c in timeline.find_clips()]


@pytest.mark.parametrize(
    "rate, fcm, separator",
    [
        (NTSC, "FCM: DROP FRAME", ";"),
        (NTSC60, "FCM: DROP FRAME", ";"),
        (Fraction(25), "FCM: NON-DROP FRAME", ":"),
        (Fraction(24000, 1001), "FCM: NON-DROP FRAME", ":"),
    ],
)
def test_edl_round_trips_through_the_cmx3600_adapter(tmp_path: Path, rate: Fraction, fcm: str, separator: str):
    path = tmp_path / "my vod.mp4"
    timeline = build_timeline([(video_info(path, rate), event_list(path, *EVENTS))], "test's reel")
    edl, warnings = timeline_text(timeline, "edl")
    assert warnings == []
    lines = edl.splitlines()
    assert lines[0] == "TITLE: test's reel" and lines[1] == fcm
    event_lines = [line for line in lines if line[:3].isdigit()]
    assert len(event_lines) == len(EVENTS)
    assert all(line.split()[1] == "MYVOD" for line in event_lines)
    assert separator in event_lines[0].split()[-1]
    back = otio.adapters.read_from_string(edl, "cmx_3600", rate=float(rate))
    clips = list(back.find_clips())
    assert [c.name for c in clips] == [c.name for c in timeline.find_clips()]
    assert [clip_frames(c) for c in clips] == [clip_frames(c) for c in timeline.find_clips()]
    assert all(c.media_reference.target_url == path.absolute().as_uri() for c in clips)
    peaks = [frames_of(e.peak_ms, rate) for e in EVENTS]
    locators = [line.split()[2] for line in lines if line.startswith("* LOC:")]
    assert locators == [
        otio.opentime.to_timecode(otio.opentime.RationalTime(f, float(rate)), float(rate)) for f in peaks
    ]
    if separator == ":":  # the adapter's reader only knows non-drop locators (it writes drop-frame ones fine)
        assert [round(c.markers[0].marked_range.start_time.value) for c in clips] == peaks


def test_edl_of_sources_at_different_rates_warns(tmp_path: Path):
    a, b = video_info(tmp_path / "a.mp4", Fraction(25)), video_info(tmp_path / "b.mp4", NTSC)
    timeline = build_timeline([(a, event_list(a.path, EVENTS[0])), (b, event_list(b.path, EVENTS[1]))])
    edl, warnings = timeline_text(timeline, "edl")
    assert len(warnings) == 1 and "one timecode rate" in warnings[0]
    back = otio.adapters.read_from_string(edl, "cmx_3600", rate=25)
    assert [c.media_reference.target_url for c in back.find_clips()] == [
        a.path.absolute().as_uri(),
        b.path.absolute().as_uri(),
    ]
    # The second clip is converted to 25 fps timecode: still the same moment, to within a frame.
    start = back.find_clips()[1].source_range.start_time
    assert abs(start.to_seconds() - EVENTS[1].start_ms / 1000) <= 1 / 25


def test_reel_names_are_short_and_unique(tmp_path: Path):
    names = _reel_names(
        [
            tmp_path / "a/stream 2021-03-01.mp4",
            tmp_path / "b/stream 2021-03-01.mp4",
            tmp_path / "a/stream 2021-03-01.mp4",
            tmp_path / "ü.mp4",
        ]
    )
    assert names == ["STREAM20", "STREAM22", "STREAM20", "AX"]


def _fcpxml_seconds(value: str) -> Fraction:
    assert value.endswith("s")
    return Fraction(value[:-1])


def test_fcpxml_times_are_exact_multiples_of_the_ntsc_frame(tmp_path: Path):
    path = tmp_path / "vod's file.mp4"
    events = event_list(path, *EVENTS, event(10_000, 20_000, label="it's <b>", peak=0.8, mean=0.7))
    timeline = build_timeline([(video_info(path, NTSC), events)])
    xml = timeline_text(timeline, "fcpxml")[0]
    root = ET.fromstring(xml)
    (fmt,) = root.findall("./resources/format")
    assert fmt.get("frameDuration") == "1001/30000s"
    assert fmt.get("name") == "FFVideoFormat1080p2997"
    assert (fmt.get("width"), fmt.get("height")) == ("1920", "1080")
    (asset,) = root.findall("./resources/asset")
    assert asset.get("name") == "vod's file.mp4" and asset.get("src") == path.absolute().as_uri()
    assert asset.get("hasAudio") == "1" and asset.get("hasVideo") == "1"
    frame = Fraction(1001, 30000)
    clips = root.findall(".//spine/clip")
    assert len(clips) == len(events.events)
    for element, e in zip(clips, events.events):
        start = _fcpxml_seconds(element.get("start", "0s"))
        duration = _fcpxml_seconds(element.get("duration"))
        assert (start / frame).denominator == 1 and (duration / frame).denominator == 1
        assert start / frame == frames_of(e.start_ms, NTSC)
        assert (start + duration) / frame == frames_of(e.end_ms, NTSC)
        assert _fcpxml_seconds(element.find("marker").get("start")) / frame == frames_of(e.peak_ms, NTSC)
    assert clips[-1].get("name") == "it\u2019s <b> 0.80 @ 0:00:10"


def test_fcpxml_round_trips_through_the_fcpx_adapter(tmp_path: Path):
    path = tmp_path / "vod.mp4"
    timeline = build_timeline([(video_info(path, Fraction(25), width=640, height=360), event_list(path, *EVENTS))])
    xml = timeline_text(timeline, "fcpxml")[0]
    assert ET.fromstring(xml).find("./resources/format").get("name") is None  # not a size FCP names
    back = otio.adapters.read_from_string(xml, "fcpx_xml")
    clips = list(back.find_clips())
    assert [c.name for c in clips] == [c.name for c in timeline.find_clips()]
    assert [clip_frames(c) for c in clips] == [clip_frames(c) for c in timeline.find_clips()]
    assert all(c.media_reference.target_url == path.absolute().as_uri() for c in clips)


def test_fcpxml_adapter_reads_ntsc_back_to_within_a_frame(tmp_path: Path):
    # otio-fcpx-xml-adapter 1.0.0 reads 1001/30000s as int(29.97) = 29 fps and truncates; the file
    # itself is exact (see above), the adapter's reader is within one frame of it.
    path = tmp_path / "vod.mp4"
    timeline = build_timeline([(video_info(path, NTSC), event_list(path, *EVENTS))])
    back = otio.adapters.read_from_string(timeline_text(timeline, "fcpxml")[0], "fcpx_xml")
    for clip, e in zip(back.find_clips(), EVENTS):
        assert abs(clip.source_range.start_time.to_seconds() - e.start_ms / 1000) < 1 / 29 + 1e-9


def test_several_videos_in_one_timeline(tmp_path: Path):
    a, b = video_info(tmp_path / "a.mp4", Fraction(25)), video_info(tmp_path / "b.mp4", NTSC60, width=1280, height=720)
    timeline = build_timeline([(a, event_list(a.path, *EVENTS[:2])), (b, event_list(b.path, EVENTS[0]))])
    urls = [c.media_reference.target_url for c in timeline.find_clips()]
    assert urls == [a.path.absolute().as_uri()] * 2 + [b.path.absolute().as_uri()]
    root = ET.fromstring(timeline_text(timeline, "fcpxml")[0])
    formats = {f.get("id"): f for f in root.findall("./resources/format")}
    assets = root.findall("./resources/asset")
    assert sorted(a.get("name") for a in assets) == ["a.mp4", "b.mp4"]
    b_format = formats[next(x for x in assets if x.get("name") == "b.mp4").get("format")]
    assert b_format.get("frameDuration") == "1001/60000s" and b_format.get("name") == "FFVideoFormat720p5994"


# --------------------------------------------------------------------------- chapters


def test_source_chapters_start_at_zero_and_run_to_the_next_event():
    events = event_list(
        None, event(30_000, 40_000, peak=0.8), event(90_000, 95_000, label="pog", peak=0.6), duration_ms=120_000
    )
    assert source_chapters(events) == [
        Chapter(0, 30_000, "Start"),
        Chapter(30_000, 90_000, "rage 0.80"),
        Chapter(90_000, 120_000, "pog 0.60"),
    ]
    assert source_chapters(event_list(None, event(0, 5000), duration_ms=9000)) == [Chapter(0, 9000, "rage 0.93")]
    assert source_chapters(event_list(None, duration_ms=9000)) == []


def test_reel_chapters_follow_the_pieces():
    chapters = reel_chapters([("Best of", 2000), ("rage 0.87", 10_010), ("pog 0.60", 4_004)])
    assert chapters == [
        Chapter(0, 2000, "Best of"),
        Chapter(2000, 12_010, "rage 0.87"),
        Chapter(12_010, 16_014, "pog 0.60"),
    ]
    with pytest.raises(UsageError, match="no length"):
        reel_chapters([("empty", 0)])


def test_ffmetadata_escapes_special_characters():
    text = chapters_ffmetadata([Chapter(0, 1500, "a=b;c#d\\e\nf"), Chapter(1500, 4000, "plain")])
    assert text == (
        ";FFMETADATA1\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=0\nEND=1500\ntitle=a\\=b\\;c\\#d\\\\e\\\nf\n"
        "[CHAPTER]\nTIMEBASE=1/1000\nSTART=1500\nEND=4000\ntitle=plain\n"
    )
    with pytest.raises(UsageError, match="before it starts"):
        chapters_ffmetadata([Chapter(5, 5, "x")])


def test_youtube_chapters_and_their_rules():
    good = [Chapter(0, 15_000, "Start"), Chapter(15_000, 75_000, "rage 0.87"), Chapter(75_000, 100_000, "pog 0.60")]
    text, warnings = chapters_youtube(good)
    assert text == "0:00 Start\n0:15 rage 0.87\n1:15 pog 0.60\n"
    assert warnings == []
    long = [
        Chapter(0, 20_000, "a"),
        Chapter(20_000, HOUR_MS + 5000, "b\nc"),
        Chapter(HOUR_MS + 5000, HOUR_MS + 9000, "d"),
    ]
    text, warnings = chapters_youtube(long)
    assert text == "0:00:00 a\n0:00:20 b c\n1:00:05 d\n"
    assert len(warnings) == 1 and "at least 10 s" in warnings[0] and "'d'" in warnings[0]
    text, warnings = chapters_youtube([Chapter(5000, 30_000, "late")])
    assert text == "0:05 late\n"
    assert any("0:00" in w for w in warnings) and any("at least 3" in w for w in warnings)
    assert chapters_youtube([]) == ("", ["no chapters: there are no events"])


FFPROBE = shutil.which("ffprobe")


@pytest.mark.media
def test_chapters_are_muxed_into_the_reel(tmp_path: Path, video_factory):
    if FFPROBE is None:
        pytest.skip("ffprobe is not installed")
    source = probe.probe(video_factory("src.mp4", duration=4, size="160x90", fps="25"))
    spec = encode.EncodeSpec(width=160, height=90, fps=Fraction(25))
    pieces, lengths = [tmp_path / "p1.mkv", tmp_path / "p2.mkv"], [1200, 1600]
    for piece, start, length in zip(pieces, (0, 2000), lengths):
        encode.cut_segment(source, start, length, piece, spec)
    titles = ["rage 0.87", "odd = ; # \\ title"]
    chapters_file = tmp_path / "chapters.ffmetadata"
    chapters_file.write_text(chapters_ffmetadata(reel_chapters(list(zip(titles, lengths)))), encoding="utf-8")
    reel = tmp_path / "reel.mp4"
    encode.concat_segments(pieces, reel, chapters_file=chapters_file)
    probed = subprocess.run(
        [FFPROBE, "-v", "error", "-show_chapters", "-print_format", "json", "file:" + str(reel)],
        capture_output=True,
        text=True,
        check=True,
    )
    chapters = json.loads(probed.stdout)["chapters"]
    assert [c["tags"]["title"] for c in chapters] == titles
    assert [round(float(c["start_time"]) * 1000) for c in chapters] == [0, 1200]
    assert [round(float(c["end_time"]) * 1000) for c in chapters] == [1200, 2800]


# --------------------------------------------------------------------------- subtitles


def test_srt_has_one_cue_per_event():
    text = events_srt(
        [event(3_725_004, 3_730_000, mean=0.871, peak=0.934), event(500, 2000, label="pog", mean=0.6, peak=0.7)]
    )
    assert text == ("1\n00:00:00,500 --> 00:00:02,000\npog 0.70\n\n2\n01:02:05,004 --> 01:02:10,000\nrage 0.93\n")
    assert events_srt([]) == ""


@pytest.mark.media
def test_ffmpeg_reads_the_srt(tmp_path: Path):
    if FFPROBE is None:
        pytest.skip("ffprobe is not installed")
    srt = tmp_path / "events.srt"
    srt.write_text(events_srt(EVENTS), encoding="utf-8")
    probed = subprocess.run(
        [FFPROBE, "-v", "error", "-show_packets", "-print_format", "json", "file:" + str(srt)],
        capture_output=True,
        text=True,
        check=True,
    )
    packets = json.loads(probed.stdout)["packets"]
    assert [(round(float(p["pts_time"]) * 1000), round(float(p["duration_time"]) * 1000)) for p in packets] == [
        (e.start_ms, e.duration_ms) for e in EVENTS
    ]


# --------------------------------------------------------------------------- export_events


def test_parse_formats():
    assert parse_formats("edl,otio") == ("otio", "edl")
    assert parse_formats(["srt", "otio, csv"]) == ("otio", "srt", "csv")
    assert parse_formats("all") == EXPORT_FORMATS
    with pytest.raises(UsageError, match="unknown export format 'mp4'"):
        parse_formats("otio,mp4")
    with pytest.raises(UsageError, match="no export format"):
        parse_formats(" , ")


def test_export_paths():
    paths = export_paths(Path("out/reel"), ("otio", "chapters"))
    assert paths == {
        "otio": (Path("out/reel.otio"),),
        "chapters": (Path("out/reel.ffmetadata"), Path("out/reel.youtube.txt")),
    }
    assert export_paths(Path("out/x.edl"), ("edl",)) == {"edl": (Path("out/x.edl"),)}
    assert export_paths(Path("out/x.edl"), ("edl", "srt"))["edl"] == (Path("out/x.edl.edl"),)


def test_export_every_format(tmp_path: Path):
    path = tmp_path / "vod.mp4"
    info = video_info(path, NTSC, duration_ms=600_000)
    events = event_list(
        "/elsewhere/old name.mp4", event(30_000, 40_000), event(200_000, 215_000, peak=0.6), duration_ms=600_000
    )
    result = export_events([(info, events)], ["all"], tmp_path / "out" / "reel")
    names = [p.name for p in result.paths]
    assert names == [
        "reel.otio",
        "reel.edl",
        "reel.fcpxml",
        "reel.markers.edl",
        "reel.markers.otio",
        "reel.markers.fcpxml",
        "reel.ffmetadata",
        "reel.youtube.txt",
        "reel.srt",
        "reel.json",
        "reel.csv",
    ]
    assert all(p.exists() for p in result.paths)
    out = tmp_path / "out"
    assert len(list(otio.adapters.read_from_file(str(out / "reel.otio")).find_clips())) == 2
    assert (
        len(otio.adapters.read_from_string((out / "reel.edl").read_text(), "cmx_3600", rate=float(NTSC)).find_clips())
        == 2
    )
    assert len(list(otio.adapters.read_from_file(str(out / "reel.fcpxml")).find_clips())) == 2
    assert (out / "reel.youtube.txt").read_text() == "0:00 Start\n0:30 rage 0.93\n3:20 rage 0.60\n"
    assert (out / "reel.ffmetadata").read_text().count("[CHAPTER]") == 3
    assert (out / "reel.srt").read_text().count(" --> ") == 2
    # JSON and CSV are events files: they read back, and JSON now names the video that was given.
    again = read_events(out / "reel.json")
    assert again.events == events.events and again.video == path
    assert read_events(out / "reel.csv").events == events.events
    assert result.warnings == ()


def test_export_warns_about_youtube_rules_and_vfr(tmp_path: Path):
    info = video_info(tmp_path / "vfr.mp4", Fraction(4997, 200), duration_ms=60_000)
    result = export_events([(info, event_list(info.path, event(0, 5000)))], ["otio", "chapters"], tmp_path / "x")
    assert any("variable frame rate" in w for w in result.warnings)
    assert any("at least 3 chapters" in w for w in result.warnings)


def test_export_refuses_to_overwrite_and_writes_nothing(tmp_path: Path):
    info = video_info(tmp_path / "vod.mp4", Fraction(25))
    existing = tmp_path / "reel.srt"
    existing.write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        export_events([(info, event_list(info.path, *EVENTS))], ["otio", "srt"], tmp_path / "reel")
    assert existing.read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["reel.srt"]  # no .otio, no temp files
    result = export_events([(info, event_list(info.path, *EVENTS))], ["otio", "srt"], tmp_path / "reel", force=True)
    assert existing.read_text().startswith("1\n") and len(result.paths) == 2


def test_export_never_overwrites_its_input(tmp_path: Path):
    events_file = tmp_path / "reel.json"
    events_file.write_text("{}", encoding="utf-8")
    with pytest.raises(UsageError, match="overwrite the input"):
        export_events(
            [(None, event_list(None, EVENTS[0]))], ["json"], tmp_path / "reel", force=True, protect=[events_file]
        )
    assert events_file.read_text() == "{}"


def test_export_needs_the_video_for_timelines_and_one_video_for_the_rest(tmp_path: Path):
    events = event_list(None, *EVENTS)
    with pytest.raises(UsageError, match="need the source video"):
        export_events([(None, events)], ["edl"], tmp_path / "x")
    # Per-video formats work without probing the video.
    result = export_events([(None, events)], ["srt", "csv"], tmp_path / "x")
    assert [p.name for p in result.paths] == ["x.srt", "x.csv"]
    a, b = video_info(tmp_path / "a.mp4", Fraction(25)), video_info(tmp_path / "b.mp4", Fraction(25))
    with pytest.raises(UsageError, match="describe one video"):
        export_events([(a, events), (b, events)], ["otio", "srt"], tmp_path / "y")
    assert not (tmp_path / "y.otio").exists()


@pytest.mark.media
def test_export_from_a_real_ntsc_video(tmp_path: Path, video_factory):
    info = probe.probe(video_factory("ntsc clip.mp4", duration=6, fps="30000/1001"))
    assert info.fps == NTSC
    events = event_list(
        info.path, event(1000, 2500, peak_ms=1500), event(3003, 5005, peak_ms=4000), duration_ms=info.duration_ms
    )
    result = export_events([(info, events)], ["edl"], tmp_path / "ntsc")
    back = otio.adapters.read_from_string(result.paths[0].read_text(), "cmx_3600", rate=float(NTSC))
    assert [clip_frames(c) for c in back.find_clips()] == [(30, 45), (90, 60)]  # 3003 ms is exactly frame 90


def test_no_events_still_make_valid_files(tmp_path: Path):
    info = video_info(tmp_path / "calm.mp4", NTSC)
    result = export_events([(info, event_list(info.path))], "otio,edl,fcpxml,chapters,srt", tmp_path / "calm")
    assert "no events: the timeline is empty" in result.warnings
    assert "no chapters: there are no events" in result.warnings
    edl = (tmp_path / "calm.edl").read_text()
    assert edl == "TITLE: autotosis highlights\nFCM: DROP FRAME\n"
    assert list(otio.adapters.read_from_string(edl, "cmx_3600", rate=float(NTSC)).find_clips()) == []
    assert list(otio.adapters.read_from_file(str(tmp_path / "calm.otio")).find_clips()) == []
    assert list(otio.adapters.read_from_file(str(tmp_path / "calm.fcpxml")).find_clips()) == []
    assert (tmp_path / "calm.srt").read_text() == "" and (tmp_path / "calm.youtube.txt").read_text() == ""
    assert (tmp_path / "calm.ffmetadata").read_text() == ";FFMETADATA1\n"


@pytest.mark.media
def test_export_from_a_real_vfr_video(tmp_path: Path, video_factory):
    # Every 5th frame in the first 2 s, then all: ffprobe reports an average of 17 fps.
    path = video_factory(
        "vfr.mp4",
        duration=5,
        fps="25",
        source="color=c=red",
        audio=False,
        extra_video_filters="select='gte(t,2)+not(mod(n,5))'",
        codec=["-c:v", "libx264", "-preset", "ultrafast", "-fps_mode", "vfr"],
    )
    info = probe.probe(path)
    assert info.fps == Fraction(17)
    result = export_events(
        [(info, event_list(path, event(1000, 3000), duration_ms=info.duration_ms))], "otio", tmp_path / "vfr"
    )
    assert any("variable frame rate" in w and "24 fps" in w for w in result.warnings)
    timeline = otio.adapters.read_from_file(str(result.paths[0]))
    (source,) = timeline.metadata["autotosis"]["sources"]
    assert source["source_fps"] == "17" and source["timeline_rate"] == "24"
    assert clip_frames(next(iter(timeline.find_clips()))) == (24, 48)
