"""labels import from marks people already have (chapters, chapter lists, Twitch markers and clips, editors'
timelines, Resolve marker EDLs) and export --format markers, on files the tests make themselves."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import opentimelineio as otio
import pytest

from autotosis.cli import main
from autotosis.core.edl_markers import EdlMarker, format_marker_edl, is_marker_edl, read_marker_edl
from autotosis.core.errors import ExitStatus, LabelErrors
from autotosis.core.frametime import frames_to_timecode, timecode_to_frames
from autotosis.detect.segments import Event, EventList, EventParams, write_events
from autotosis.labels.importers import import_audacity
from autotosis.labels.mark_sources import chapter_marks, guess_text_format, twitch_marks, youtube_marks
from autotosis.labels.marks import ClipMarks, Mark, MarkerWindow, MarkOptions, labels_from_marks
from autotosis.labels.parse import parse_labels, parse_labels_text
from autotosis.labels.timelines import ClipFacts, timeline_marks
from autotosis.labels.values import Span
from autotosis.labels.writer import format_labels
from autotosis.media.probe import MediaChapter, read_chapters
from tests.conftest import make_video

FFMPEG = shutil.which("ffmpeg")
RATE = 25


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


def spans_of(labels) -> tuple[Span, ...]:
    (entry,) = labels.entries
    return entry.spans


def errors_of(info) -> list[str]:
    return [str(e) for e in info.value.errors]


def no_facts(path: Path) -> ClipFacts | None:
    return None


def facts_for(*videos: Path, duration_ms: int = 60_000, fps: Fraction | None = Fraction(RATE)):
    known = {Path(v).absolute(): ClipFacts(duration_ms, fps) for v in videos}
    return lambda path: known.get(Path(path).absolute())


# --------------------------------------------------------------------------- marks -> labels


def clip_marks(*marks: Mark, duration_ms: int | None = 60_000, clip: str = "vod.mp4") -> ClipMarks:
    return ClipMarks(Path(clip), tuple(marks), duration_ms, '"test"')


def test_point_markers_reach_mostly_before_and_stay_inside_the_clip(tmp_path):
    marks = clip_marks(
        Mark("point", 3_000, None, "", "marker 1", 1, 1),  # window cut at 0
        Mark("point", 30_000, None, "", "marker 2", 2, 1),
        Mark("point", 59_500, None, "", "marker 3", 3, 1),  # window cut at the end: "end"
    )
    labels = labels_from_marks(tmp_path / "m.json", [marks], tmp_path / "labels.txt")
    assert spans_of(labels) == (Span(0, 5_000), Span(22_000, 32_000), Span(51_500, None))
    (note,) = labels.notes
    assert "3 point markers became spans from 8 s before to 2 s after them" in str(note)
    wide = labels_from_marks(tmp_path / "m.json", [marks], tmp_path / "l.txt", MarkOptions(MarkerWindow(1000, 500)))
    assert spans_of(wide)[1] == Span(29_000, 30_500)
    with pytest.raises(LabelErrors) as info:
        labels_from_marks(tmp_path / "m.json", [marks], tmp_path / "l.txt", MarkOptions(MarkerWindow(0, 0)))
    assert errors_of(info)[0] == (
        f"{tmp_path / 'm.json'}:1:1: marker 1 is a point marker at 0:03 and marks no span "
        "(give --marker-window BEFORE,AFTER (seconds) to turn point markers into spans around them)"
    )


def test_each_span_says_where_it_came_from_and_parses_back(tmp_path):
    marks = clip_marks(
        Mark("span", 10_000, 14_000, "rage", "chapter 1"),
        Mark("point", 40_000, None, "~", "chapter 2"),
        Mark("span", 50_000, 55_000, "background", "chapter 3"),
        clip="my clips/vod é.mp4",
    )
    dest = tmp_path / "labels" / "rage.txt"
    labels = labels_from_marks(tmp_path / "vod.mkv", [marks], dest)
    text = format_labels(labels)
    assert "# task=rage\n" in text
    assert '# from "test" (titles read as classes; point markers widened from 8 s before to 2 s after them)\n' in text
    assert '#   chapter 1 "rage": 0:10-0:14 -> rage:0:10-0:14\n' in text
    assert '#   chapter 2 "~": marker at 0:40 -> ~0:32-0:42\n' in text
    assert '#   chapter 3 "background": 0:50-0:55: background (no span)\n' in text
    assert text.rstrip().endswith("0:10-0:14  ~0:32-0:42")
    again = parse_labels_text(text, dest)
    assert again.entries == labels.entries and again.task == "rage"


def test_titles_auto_class_and_text(tmp_path):
    def import_titles(*titles: str, mode="auto"):
        marks = clip_marks(
            *(Mark("span", i * 10_000, i * 10_000 + 5_000, t, f"chapter {i + 1}") for i, t in enumerate(titles))
        )
        return labels_from_marks(tmp_path / "v.mkv", [marks], tmp_path / "labels.txt", MarkOptions(titles=mode))

    several = import_titles("rage", "pog", "~pog", "background")
    assert several.classes == ("rage", "pog")
    assert spans_of(several) == (
        Span(0, 5_000, label="rage"),
        Span(10_000, 15_000, label="pog"),
        Span(20_000, 25_000, True, "pog"),
    )
    free = import_titles("Intro", "Big fight", "~ maybe not")  # free text: comments only, one class
    assert free.classes == () and spans_of(free) == (Span(0, 5_000), Span(10_000, 15_000), Span(20_000, 25_000, True))
    assert import_titles("rage", "pog", mode="text").classes == ()
    with pytest.raises(LabelErrors) as info:
        import_titles("rage", "Big fight", mode="class")
    assert "the title 'Big fight' of chapter 2 is not a class name" in errors_of(info)[0]
    with pytest.raises(LabelErrors) as info:
        import_titles("rage", "pog", "")
    assert "chapter 3 has no class, but other titles name the classes rage, pog" in errors_of(info)[0]


def test_overlaps_sure_beats_unsure_and_two_classes_are_refused(tmp_path):
    marks = clip_marks(
        Mark("span", 10_000, 20_000, "", "clip 1"),
        Mark("span", 15_000, 25_000, "", "clip 2"),  # joins clip 1
        Mark("span", 18_000, 30_000, "~", "clip 3"),  # only what no sure span covers stays unsure
    )
    labels = labels_from_marks(tmp_path / "c.json", [marks], tmp_path / "labels.txt")
    assert spans_of(labels) == (Span(10_000, 25_000), Span(25_000, 30_000, True))
    clash = clip_marks(
        Mark("span", 0, 10_000, "rage", "marker 1", 3, 5), Mark("span", 5_000, 12_000, "pog", "marker 2", 7, 5)
    )
    with pytest.raises(LabelErrors) as info:
        labels_from_marks(tmp_path / "c.json", [clash], tmp_path / "labels.txt")
    assert errors_of(info) == [
        f"{tmp_path / 'c.json'}:7:5: marker 2 (pog, 0:05-0:12) overlaps marker 1 (rage, 0:00-0:10) "
        "(spans of different classes must not overlap; move a marker, or narrow --marker-window)"
    ]


def test_rest_unsure_fills_every_gap(tmp_path):
    marks = clip_marks(Mark("span", 10_000, 20_000, "", "clip 1"), Mark("span", 30_000, 40_000, "", "clip 2"))
    labels = labels_from_marks(tmp_path / "c.json", [marks], tmp_path / "l.txt", MarkOptions(rest="unsure"))
    assert spans_of(labels) == (
        Span(0, 10_000, True),
        Span(10_000, 20_000),
        Span(20_000, 30_000, True),
        Span(30_000, 40_000),
        Span(40_000, None, True),
    )
    assert "the rest of the clip is unsure" in format_labels(labels)


def test_marks_past_the_end_of_the_video_are_refused(tmp_path):
    marks = clip_marks(
        Mark("point", 60_400, None, "", "marker 1", 2, 3),  # within half a second of the end: kept
        Mark("point", 61_000, None, "", "marker 2", 3, 3),
        Mark("span", 60_000, 70_000, "", "clip 1", 4, 3),
        duration_ms=60_000,
    )
    with pytest.raises(LabelErrors) as info:
        labels_from_marks(tmp_path / "m.json", [marks], tmp_path / "labels.txt")
    assert errors_of(info) == [
        f"{tmp_path / 'm.json'}:{line}:3: {what} at 1:0{at} is past the end of 'vod.mp4' (1:00 long) "
        "(is it the right video? times count from the start of the video (the VOD), not of the stream)"
        for line, what, at in ((3, "marker 2", "1"), (4, "clip 1", "0"))
    ]


def test_audacity_point_labels_take_a_marker_window(tmp_path):
    track = tmp_path / "track.txt"
    track.write_text("10\t10\tpog\n20\t24\tpog\n", encoding="utf-8")
    labels = import_audacity(track, tmp_path / "vod.mp4", tmp_path / "pog.txt", window=MarkerWindow(8000, 2000))
    assert spans_of(labels) == (Span(2_000, 12_000), Span(20_000, 24_000))
    assert "1 point label became span from 8 s before to 2 s after it" in str(labels.notes[0])
    assert '# from the Audacity label track "track.txt"\n' in format_labels(labels)


# --------------------------------------------------------------------------- chapters (values as media reads them)


def chapters(*items: tuple[int, int, str]) -> tuple[MediaChapter, ...]:
    return tuple(MediaChapter(i, start, end, title) for i, (start, end, title) in enumerate(items, start=1))


def test_chapters_with_lengths_are_spans_and_empty_ones_points(tmp_path):
    got = chapter_marks(tmp_path / "v.mkv", chapters((1000, 3000, "a"), (5000, 5000, "b")), 10_000)
    assert [(m.kind, m.start_ms, m.origin) for m in got.marks] == [
        ("span", 1000, "chapter 1"),
        ("point", 5000, "chapter 2"),
    ]
    assert got.what == 'chapters of "v.mkv"'


def test_back_to_back_chapters_are_starts_points_unless_their_titles_name_classes(tmp_path):
    mp4 = chapters((0, 20_000, "Unnamed 1"), (20_000, 45_000, "Unnamed 2"), (45_000, 60_000, "Unnamed 3"))
    marks = chapter_marks(tmp_path / "v.mp4", mp4, 60_000)
    assert {m.kind for m in marks.marks} == {"start"}
    labels = labels_from_marks(tmp_path / "v.mp4", [marks], tmp_path / "l.txt")
    assert spans_of(labels) == (Span(0, 2_000), Span(12_000, 22_000), Span(37_000, 47_000))
    regions = chapters((0, 20_000, "background"), (20_000, 45_000, "rage"), (45_000, 60_000, "background"))
    labels = labels_from_marks(
        tmp_path / "v.mp4", [chapter_marks(tmp_path / "v.mp4", regions, 60_000)], tmp_path / "l.txt"
    )
    assert spans_of(labels) == (Span(20_000, 45_000),) and labels.task == "rage"
    forced = chapter_marks(tmp_path / "v.mp4", mp4, 60_000, "spans")
    assert {m.kind for m in forced.marks} == {"span"}
    with pytest.raises(LabelErrors) as info:
        chapter_marks(tmp_path / "v.mp4", (), 60_000)
    assert errors_of(info)[0].startswith(f"{tmp_path / 'v.mp4'}: has no chapters (add chapter markers")


# --------------------------------------------------------------------------- YouTube chapter lists


def test_youtube_chapter_list(tmp_path):
    listing = tmp_path / "description.txt"
    listing.write_text(
        "\ufeffBest of stream 12!\n\n0:00 Intro\n1:02 - Big fight\n[2:30] ~ maybe\n1:02:03 clutch\n"
        "thanks for watching\n",
        encoding="utf-8",
    )
    assert guess_text_format(listing) == "youtube"
    got = youtube_marks(listing, tmp_path / "vod.mp4", 4_000_000)
    assert [(m.start_ms, m.end_ms, m.title, m.line, m.col) for m in got.marks] == [
        (0, 62_000, "Intro", 3, 1),
        (62_000, 150_000, "Big fight", 4, 1),
        (150_000, 3_723_000, "~ maybe", 5, 2),
        (3_723_000, None, "clutch", 6, 1),
    ]
    assert got.notes == ("2 lines without a time at the start skipped",)
    labels = labels_from_marks(listing, [got], tmp_path / "l.txt")  # free-text titles: point markers
    assert spans_of(labels)[1:] == (Span(54_000, 64_000), Span(142_000, 152_000, True), Span(3_715_000, 3_725_000))
    spans = labels_from_marks(
        listing, [youtube_marks(listing, tmp_path / "vod.mp4", 4_000_000, "spans")], tmp_path / "l.txt"
    )
    assert spans_of(spans)[-1] == Span(3_723_000, None)
    listing.write_text("just a description\n", encoding="utf-8")
    with pytest.raises(LabelErrors, match="description.txt:1:1: no chapter lines found"):
        youtube_marks(listing, tmp_path / "vod.mp4", None)
    listing.write_text("0:00 ok\n1:75 bad\n", encoding="utf-8")
    with pytest.raises(LabelErrors) as info:
        youtube_marks(listing, tmp_path / "vod.mp4", None)
    assert errors_of(info) == [f"{listing}:2:1: bad time '1:75' (write [h:]mm:ss, e.g. 1:02:03 or 12:34)"]
    audacity = tmp_path / "track.txt"
    audacity.write_text("1.0\t2.0\trage\n", encoding="utf-8")
    assert guess_text_format(audacity) == "audacity"


# --------------------------------------------------------------------------- Twitch markers and clips (JSON)


HELIX_MARKERS = {
    "data": [
        {
            "user_id": "123",
            "user_name": "streamer",
            "videos": [
                {
                    "video_id": "456",
                    "markers": [
                        {
                            "id": "m1",
                            "created_at": "2024-05-01T20:00:00Z",
                            "description": "rage",
                            "position_seconds": 244,
                        },
                        {"id": "m2", "created_at": "2024-05-01T20:10:00Z", "description": "", "position_seconds": 844},
                    ],
                }
            ],
        }
    ],
    "pagination": {"cursor": "abc"},
}
HELIX_CLIPS = {
    "data": [
        {"id": "FunnyClipSlug", "video_id": "456", "title": "LUL", "duration": 28.6, "vod_offset": 1200},
        {"id": "OrphanSlug", "video_id": "", "title": "gone", "duration": 30, "vod_offset": None},
    ],
    "pagination": {},
}
GQL_CLIPS = [{"slug": "GqlSlug", "title": "what a play", "durationSeconds": 30, "videoOffsetSeconds": 2000}]
DOWNLOADER_CHAT = {
    "streamer": {"name": "s", "id": 1},
    "video": {
        "title": "t",
        "id": "456",
        "start": 0,
        "end": 4000,
        "length": 4000,
        "chapters": [
            {"id": "c1", "startMilliseconds": 30000, "lengthMilliseconds": 60000, "description": "Just Chatting"}
        ],
    },
    "comments": [{"_id": "x", "content_offset_seconds": 12.5, "message": {"body": "hi"}}],
}


def test_twitch_markers_and_clips_in_the_downloaders_shapes(tmp_path):
    clip = tmp_path / "vod.mp4"
    cases = [
        (HELIX_MARKERS, [("point", 244_000, None, "rage", "marker 1"), ("point", 844_000, None, "", "marker 2")]),
        (HELIX_CLIPS, [("span", 1_200_000, 1_228_600, "", "clip 1")]),
        (GQL_CLIPS, [("span", 2_000_000, 2_030_000, "", "clip 1")]),
        (DOWNLOADER_CHAT, [("span", 30_000, 90_000, "Just Chatting", "chapter 1")]),
        ({"markers": [{"offset": 12.5, "title": "pog"}]}, [("point", 12_500, None, "pog", "marker 1")]),
    ]
    for data, expected in cases:
        source = tmp_path / "twitch.json"
        source.write_text(json.dumps(data, indent=2), encoding="utf-8")
        got = twitch_marks(source, clip, 4_000_000)
        assert [(m.kind, m.start_ms, m.end_ms, m.title, m.origin) for m in got.marks] == expected
    source.write_text(json.dumps(HELIX_CLIPS, indent=2), encoding="utf-8")
    got = twitch_marks(source, clip, 4_000_000)
    assert got.marks[0].detail == '"LUL" [FunnyClipSlug]'
    assert got.notes[0].startswith("1 clip without a VOD offset skipped") and "OrphanSlug" in got.notes[0]
    # a clip's title is whoever clipped it: never a class
    labels = labels_from_marks(source, [got], tmp_path / "rage.txt")
    assert spans_of(labels) == (Span(1_200_000, 1_228_600),) and labels.classes == ()


def test_twitch_json_errors_are_located(tmp_path):
    source = tmp_path / "markers.json"
    source.write_text('{"data": [\n  {"position_seconds": 12},\n  {"position_seconds": "soon"}\n]}\n', encoding="utf-8")
    with pytest.raises(LabelErrors) as info:
        twitch_marks(source, tmp_path / "vod.mp4", None)
    assert errors_of(info) == [
        f'{source}:3:24: position_seconds is "soon", not a time (position_seconds is a number of seconds from the '
        "VOD's start)"
    ]
    source.write_text('{"data": [\n  {"position_seconds": 12},\n', encoding="utf-8")
    with pytest.raises(LabelErrors) as info:
        twitch_marks(source, tmp_path / "vod.mp4", None)
    assert errors_of(info)[0].startswith(f"{source}:3:1: not valid JSON: Expecting value")
    source.write_text('{"videos": [{"id": 1}]}', encoding="utf-8")
    with pytest.raises(LabelErrors, match=r"markers.json:1:1: no stream markers or clips found \(expected Twitch"):
        twitch_marks(source, tmp_path / "vod.mp4", None)


# --------------------------------------------------------------------------- Resolve marker EDLs


RESOLVE_EXPORT = """TITLE: Timeline 1
FCM: NON-DROP FRAME

001  001      V     C        01:00:05:00 01:00:05:01 01:00:05:00 01:00:05:01  
 |C:ResolveColorBlue |M:Marker 1 |D:1

002  001      V     C        01:00:20:12 01:00:20:13 01:00:20:12 01:00:20:13  
A note |C:ResolveColorRed |M:rage |D:50
"""  # noqa: W291 (Resolve ends its event lines with spaces)


def test_a_marker_edl_as_resolve_writes_it(tmp_path):
    source = tmp_path / "Timeline 1.edl"
    source.write_text(RESOLVE_EXPORT, encoding="utf-8")
    assert is_marker_edl(RESOLVE_EXPORT)
    clips, notes = timeline_marks(source, clip=tmp_path / "vod.mp4", facts=facts_for(tmp_path / "vod.mp4"))
    (got,) = clips
    assert [(m.kind, m.start_ms, m.end_ms, m.title, m.detail, m.line) for m in got.marks] == [
        ("point", 5_000, None, "Marker 1", "Blue", 4),
        ("span", 20_480, 22_480, "rage", '"A note" Red', 7),
    ]
    with pytest.raises(LabelErrors, match="a marker EDL names no video"):
        timeline_marks(source, clip=None, facts=no_facts)
    # a timeline that starts at 00:00:00:00: a marker before 01:00:00:00 says so
    source.write_text(RESOLVE_EXPORT.replace("01:00:05", "00:00:05"), encoding="utf-8")
    long_vod = facts_for(tmp_path / "vod.mp4", duration_ms=4_000_000)
    (got,), _ = timeline_marks(source, clip=tmp_path / "vod.mp4", facts=long_vod)
    assert [m.start_ms for m in got.marks] == [5_000, 3_620_480]
    with pytest.raises(LabelErrors) as info:
        timeline_marks(source, clip=tmp_path / "vod.mp4", facts=long_vod, timecode_start="00:59:00:00")
    assert errors_of(info) == [
        f"{source}:4:54: marker 001 at 00:00:05:00 is before the timeline's start (give the timeline's start "
        "timecode with --timecode-start)"
    ]


def test_marker_edl_text_round_trips_drop_frame_timecode():
    rate = Fraction(30000, 1001)
    start = timecode_to_frames("01:00:00;00", rate)
    assert start == 107_892  # drop-frame: not 108,000
    markers = [EdlMarker(17_982, 300, "rage", "9 lives|left", "Mint"), EdlMarker(0, 1, "pog", "", "Nope")]
    text = format_marker_edl("vod é", markers, rate, start)
    assert "FCM: DROP FRAME" in text and "TITLE: vod ?" in text
    assert "- 9 lives/left |C:ResolveColorMint |M:rage |D:300" in text  # a note may not start with a digit
    assert " |C:ResolveColorBlue |M:pog |D:1" in text  # an unknown colour: blue
    drop, read, problems = read_marker_edl(text)
    assert drop and not problems
    assert [timecode_to_frames(m.record_in, rate) - start for m in read] == [0, 17_982]
    assert frames_to_timecode(start + 17_982, rate) == "01:10:00;00"


def test_markers_round_trip_at_29_97_drop_frame(tmp_path):
    from autotosis.media.probe import VideoInfo
    from autotosis.outputs.exports.files import export_events

    ntsc = Fraction(30000, 1001)
    vod = tmp_path / "vod.mp4"
    info = VideoInfo(vod, 7_200_000, 1920, 1080, ntsc, True, 0, Fraction(1), "h264", 0)
    events = tuple(Event(s, s + 10_010, "rage", 0.9, 0.8, s) for s in (1_001, 3_603_600, 5_405_400))  # whole frames
    export_events([(info, EventList(vod, 7_200_000, "rage", EventParams(), events))], ["markers"], tmp_path / "x")
    edl = (tmp_path / "x.markers.edl").read_text(encoding="utf-8")
    assert "FCM: DROP FRAME" in edl and " 01:00:01;00 01:00:01;01 " in edl
    facts = facts_for(vod, duration_ms=7_200_000, fps=ntsc)
    for name in ("x.markers.edl", "x.markers.otio", "x.markers.fcpxml"):
        (got,), _ = timeline_marks(tmp_path / name, clip=vod, facts=facts)
        assert [(m.start_ms, m.end_ms) for m in got.marks] == [(e.start_ms, e.end_ms) for e in events], name


# --------------------------------------------------------------------------- timelines written by OpenTimelineIO


def write_timeline(path: Path, *clips: tuple[str | None, int, int], rate: int = RATE, markers=()) -> Path:
    """An OTIO file: clips (media URL, first frame, frames) of one-minute sources at ``rate``."""
    timeline = otio.schema.Timeline(name="edit")
    track = otio.schema.Track(kind=otio.schema.TrackKind.Video)
    timeline.tracks.append(track)
    for url, first, count in clips:
        reference = (
            otio.schema.MissingReference()
            if url is None
            else otio.schema.ExternalReference(
                target_url=url,
                available_range=otio.opentime.TimeRange(
                    otio.opentime.RationalTime(0, rate), otio.opentime.RationalTime(60 * rate, rate)
                ),
            )
        )
        clip = otio.schema.Clip(
            name=f"cut {first}",
            media_reference=reference,
            source_range=otio.opentime.TimeRange(
                otio.opentime.RationalTime(first, rate), otio.opentime.RationalTime(count, rate)
            ),
        )
        for name, frame, length in markers:
            clip.markers.append(
                otio.schema.Marker(
                    name=name,
                    marked_range=otio.opentime.TimeRange(
                        otio.opentime.RationalTime(frame, rate), otio.opentime.RationalTime(length, rate)
                    ),
                )
            )
        track.append(clip)
        track.append(
            otio.schema.Gap(source_range=otio.opentime.TimeRange(duration=otio.opentime.RationalTime(5, rate)))
        )
    otio.adapters.write_to_file(timeline, str(path))
    return path


def test_what_the_editor_kept_becomes_the_spans_of_each_source(tmp_path):
    a, b = tmp_path / "vods" / "a vod é.mp4", tmp_path / "b.mp4"
    edit = write_timeline(
        tmp_path / "edit.otio",
        (a.as_uri(), 250, 100),
        (b.as_uri(), 0, 50),
        (a.as_uri(), 500, 25),
        (a.as_uri(), 550, 25),
    )
    clips, notes = timeline_marks(edit, clip=None, facts=facts_for(a, b))
    labels = labels_from_marks(edit, clips, tmp_path / "labels.txt", MarkOptions(rest="unsure"))
    assert [(e.path, e.spans) for e in labels.entries] == [
        (a, (Span(0, 10_000, True), Span(10_000, 14_000), Span(14_000, 20_000, True), Span(20_000, 21_000),
             Span(21_000, 22_000, True), Span(22_000, 23_000), Span(23_000, None, True))),
        (b, (Span(0, 2_000), Span(2_000, None, True))),
    ]  # fmt: skip
    text = format_labels(labels)
    assert '# from what was kept in the timeline "edit.otio"\n#   clip 1 ("cut 250"): 0:10-0:14 -> 0:10-0:14\n' in text
    # --clip picks one source (also when the timeline names it by an old path: same file name, or the only source)
    moved = tmp_path / "new place" / "a vod é.mp4"
    clips, notes = timeline_marks(edit, clip=moved, facts=facts_for(moved))
    assert [c.clip for c in clips] == [moved] and notes == ("clips of 1 other source left out",)
    assert [m.start_ms for m in clips[0].marks] == [10_000, 20_000, 22_000]


def test_markers_on_whole_sources_are_the_marks(tmp_path):
    vod = tmp_path / "vod.mp4"
    edit = write_timeline(
        tmp_path / "markers.otio", (vod.as_uri(), 0, 60 * RATE), markers=[("rage", 250, 100), ("~", 1000, 0)]
    )
    (got,), _ = timeline_marks(edit, clip=None, facts=facts_for(vod))
    assert [(m.kind, m.start_ms, m.end_ms, m.title) for m in got.marks] == [
        ("span", 10_000, 14_000, "rage"),
        ("point", 40_000, None, "~"),
    ]


def test_timeline_errors(tmp_path):
    vod = tmp_path / "vod.mp4"
    empty = tmp_path / "empty.otio"
    timeline = otio.schema.Timeline(name="nothing")
    timeline.tracks.append(otio.schema.Track())
    otio.adapters.write_to_file(timeline, str(empty))
    cases = [
        (empty, None, f"{empty}: the timeline is empty: it has no clips (export the timeline with its clips in it)"),
        (
            write_timeline(tmp_path / "lost.otio", ("file:///nowhere/gone%20away.mp4", 0, 25)),
            None,
            f"{tmp_path / 'lost.otio'}: clip 1 'cut 0' refers to /nowhere/gone away.mp4, which does not exist "
            "(relink the media in the editor and export again, or pass --clip VIDEO to say which video it is)",
        ),
        (
            write_timeline(tmp_path / "offline.otio", (None, 0, 25)),
            None,
            f"{tmp_path / 'offline.otio'}: clip 1 'cut 0' has no media file (offline media?) (relink the media in "
            "the editor)",
        ),
        (
            write_timeline(
                tmp_path / "two.otio", ((tmp_path / "x.mp4").as_uri(), 0, 25), ((tmp_path / "y.mp4").as_uri(), 0, 25)
            ),
            vod,
            f"{tmp_path / 'two.otio'}: no clip of the timeline uses {vod} (its sources are {tmp_path / 'x.mp4'}, "
            f"{tmp_path / 'y.mp4'})",
        ),
    ]
    for path, clip, message in cases:
        with pytest.raises(LabelErrors) as info:
            timeline_marks(path, clip=clip, facts=facts_for(vod))
        assert errors_of(info) == [message]
    broken = tmp_path / "broken.otio"
    broken.write_text('{"OTIO_SCHEMA": "Timeline.1", "tracks": ', encoding="utf-8")
    with pytest.raises(LabelErrors, match=r"broken.otio: cannot read the timeline: "):
        timeline_marks(broken, clip=None, facts=no_facts)
    with pytest.raises(LabelErrors, match=r"\.xml: not a timeline format"):
        timeline_marks(tmp_path / "premiere.xml", clip=None, facts=no_facts)
    edl = tmp_path / "cuts.edl"
    edl.write_text("TITLE: x\n\n001  AX  V  C  00:00:01:00 00:00:02:00 00:00:00:00 00:00:01:00\n", encoding="utf-8")
    with pytest.raises(LabelErrors, match="an EDL does not say its frame rate"):
        timeline_marks(edl, clip=None, facts=no_facts)


# --------------------------------------------------------------------------- with ffmpeg: chapters, round trips, CLI


def ffmpeg_with_chapters(path: Path, duration: int, chapter_list: list[tuple[int, int, str]]) -> Path:
    """A tiny video whose chapters come from an ffmetadata file (``-map_chapters``)."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    meta = path.with_name(path.name + ".ffmetadata")
    lines = [";FFMETADATA1"]
    for start, end, title in chapter_list:
        lines += ["[CHAPTER]", "TIMEBASE=1/1000", f"START={start}", f"END={end}", f"title={title}"]
    meta.write_text("\n".join(lines) + "\n", encoding="utf-8")
    argv = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    argv += ["-i", f"testsrc=size=64x48:rate={RATE}:duration={duration}", "-i", "file:" + str(meta)]
    argv += ["-map", "0:v", "-map_metadata", "1", "-map_chapters", "1", "-c:v", "libx264", "-preset", "ultrafast"]
    argv += ["-pix_fmt", "yuv420p", "file:" + str(path)]
    subprocess.run(argv, check=True)
    return path


@pytest.mark.media
def test_read_chapters_of_mkv_and_mp4(tmp_path):
    chapter_list = [(1000, 3000, "rage"), (5000, 5000, "~ maybe"), (6000, 7000, "Big fight é")]
    mkv = ffmpeg_with_chapters(tmp_path / "rec ord é.mkv", 10, chapter_list)
    assert read_chapters(mkv) == chapters(*chapter_list)
    mp4 = ffmpeg_with_chapters(tmp_path / "rec.mp4", 10, chapter_list)  # an MP4 keeps only the starts
    got = read_chapters(mp4)
    assert [c.title for c in got] == ["rage", "~ maybe", "Big fight é"]
    assert all(a.end_ms == b.start_ms for a, b in zip(got, got[1:]))
    assert read_chapters(make_video(tmp_path / "plain.mp4", duration=1, audio=False)) == ()


@pytest.mark.media
def test_labels_import_chapters_of_a_recording(tmp_path, capsys):
    video = ffmpeg_with_chapters(
        tmp_path / "my vod é.mkv", 12, [(1000, 3000, "rage"), (9000, 9000, "rage"), (11500, 11500, "~")]
    )
    out = tmp_path / "labels" / "vod.txt"
    assert run(["labels", "import", str(video), "-o", str(out), "--marker-window", "4,1"]) == 0
    err = capsys.readouterr().err
    assert "2 point markers became spans from 4 s before to 1 s after them" in err
    text = out.read_text(encoding="utf-8")
    assert "# task=rage\n" in text and '"../my vod é.mkv"  0:01-0:03  0:05-0:10  ~0:10-end\n' in text
    assert parse_labels(out).entries[0].path == video
    # nothing is overwritten without --force
    assert run(["labels", "import", str(video), "-o", str(out)]) == ExitStatus.OUTPUT_EXISTS
    # chapters past the end of the video the labels are for
    short = make_video(tmp_path / "short.mp4", duration=2, audio=False)
    fresh = tmp_path / "fresh.txt"
    assert run(["labels", "import", str(video), "--clip", str(short), "-o", str(fresh)]) == ExitStatus.LABELS
    err = capsys.readouterr().err
    assert f"autotosis: {video}: chapter 2 at 0:09 is past the end of 'short.mp4' (0:02 long)" in err
    assert not fresh.exists()
    plain = make_video(tmp_path / "plain.mp4", duration=1, audio=False)
    assert run(["labels", "import", str(plain)]) == ExitStatus.LABELS
    assert "has no chapters" in capsys.readouterr().err


def events_file(folder: Path, video: Path, *events: Event) -> Path:
    from autotosis.media import probe

    path = folder / "vod.events.json"
    write_events(EventList(video, probe.probe(video).duration_ms, "rage", EventParams(), events), path)
    return path


# On 25 fps frames (40 ms), so every format gives them back exactly; two classes.
ROUND_TRIP = (
    Event(2_000, 4_000, "rage", 0.93, 0.87, 3_000),
    Event(7_040, 9_960, "pog", 0.81, 0.70, 8_000),
    Event(15_000, 18_000, "rage", 0.66, 0.60, 16_000),
)


@pytest.mark.media
def test_export_markers_and_timelines_import_back_as_the_same_spans(tmp_path, capsys):
    (tmp_path / "vods é").mkdir()
    video = make_video(tmp_path / "vods é" / "a 'vod' #1.mp4", duration=20, size="64x48", fps=str(RATE), audio=False)
    events = events_file(video.parent, video, *ROUND_TRIP)
    base = tmp_path / "out" / "vod"
    assert run(["export", str(events), "--format", "markers,otio,edl,fcpxml", "-o", str(base)]) == 0
    names = sorted(p.name for p in base.parent.iterdir())
    assert names == ["vod.edl", "vod.fcpxml", "vod.markers.edl", "vod.markers.fcpxml", "vod.markers.otio", "vod.otio"]
    edl = (tmp_path / "out" / "vod.markers.edl").read_text(encoding="utf-8")
    assert "001  001      V     C        01:00:02:00 01:00:02:01 01:00:02:00 01:00:02:01" in edl
    assert "rage 0.93, 0:02.0-0:04.0 |C:ResolveColorCyan |M:rage |D:50" in edl
    assert "pog 0.81, 0:07.0-0:09.9 |C:ResolveColorBlue |M:pog |D:73" in edl
    fcpxml = (tmp_path / "out" / "vod.markers.fcpxml").read_text(encoding="utf-8")
    assert '<marker start="2s" duration="2s" value="rage" note="rage 0.93, 0:02.0-0:04.0"/>' in fcpxml
    (clip,) = otio.adapters.read_from_file(str(tmp_path / "out" / "vod.markers.otio")).find_clips()
    assert [(m.name, m.comment.split(",")[0]) for m in clip.markers] == [
        ("rage", "rage 0.93"),
        ("pog", "pog 0.81"),
        ("rage", "rage 0.66"),
    ]
    expected = tuple(Span(e.start_ms, e.end_ms, label=e.label) for e in ROUND_TRIP)
    capsys.readouterr()
    for name, extra in [
        ("vod.markers.edl", ["--clip", str(video)]),
        ("vod.markers.otio", []),
        ("vod.markers.fcpxml", []),
        ("vod.otio", []),
    ]:
        out = tmp_path / "labels" / f"{name}.txt"
        assert run(["labels", "import", str(tmp_path / "out" / name), "-o", str(out), *extra]) == 0, name
        labels = parse_labels(out)
        assert labels.classes == ("rage", "pog"), name
        assert [(e.path, e.spans) for e in labels.entries] == [(video, expected)], name
    # EDL and FCPXML cuts keep no class: the same spans, one class
    for name in ("vod.edl", "vod.fcpxml"):
        out = tmp_path / "labels" / f"{name}.txt"
        assert run(["labels", "import", str(tmp_path / "out" / name), "-o", str(out)]) == 0, name
        assert parse_labels(out).entries[0].spans == tuple(Span(s.start_ms, s.end_ms) for s in expected), name
    assert run(["labels", "check", str(tmp_path / "labels" / "vod.markers.edl.txt")]) == 0


@pytest.mark.media
def test_labels_import_cli_bad_inputs(tmp_path, capsys):
    video = make_video(tmp_path / "vod.mp4", duration=2, size="64x48", fps=str(RATE), audio=False)
    markers = tmp_path / "markers.json"
    markers.write_text(json.dumps(HELIX_MARKERS), encoding="utf-8")
    out = tmp_path / "labels.txt"
    assert run(["labels", "import", str(markers), "--clip", str(video), "-o", str(out)]) == ExitStatus.LABELS
    err = capsys.readouterr().err
    assert f"autotosis: {markers}:1:" in err and "marker 1 at 4:04 is past the end of 'vod.mp4' (0:02 long)" in err
    assert not out.exists()
    markers.write_text("{not json", encoding="utf-8")
    assert run(["labels", "import", str(markers), "--clip", str(video)]) == ExitStatus.LABELS
    assert capsys.readouterr().err.startswith(f"autotosis: {markers}:1:2: not valid JSON")
    assert run(["labels", "import", str(markers)]) == ExitStatus.USAGE
    assert "Twitch markers and clips needs --clip VIDEO" in capsys.readouterr().err
    assert (
        run(["labels", "import", str(markers), "--clip", str(video), "--point-window", "2", "--marker-window", "1,1"])
        == 2
    )
    assert "not both" in capsys.readouterr().err
    lost = write_timeline(tmp_path / "lost.otio", ("file:///nowhere/gone.mp4", 0, 25))
    assert run(["labels", "import", str(lost)]) == ExitStatus.LABELS
    assert "refers to /nowhere/gone.mp4, which does not exist" in capsys.readouterr().err
    listing = tmp_path / "chapters.txt"
    listing.write_text("0:00 Intro\n0:01 rage moment\n", encoding="utf-8")
    assert (
        run(["labels", "import", str(listing), "--clip", str(video), "--rest", "unsure", "--marker-window", "0,0.5"])
        == 0
    )
    assert capsys.readouterr().out.endswith("vod.mp4  0:00-0:00.5  ~0:00.5-0:01  0:01-0:01.5  ~0:01.5-end\n")
