"""Vertical shorts: planning rules without ffmpeg, then layouts and formats on generated videos."""

from __future__ import annotations

import csv
import dataclasses
import json
import shutil
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotosis.cli import main
from autotosis.core.errors import DataError, ExitStatus, UsageError
from autotosis.core.region import RegionArg
from autotosis.core.region import parse_region_arg as parse_region
from autotosis.detect.segments import Event
from autotosis.labels.values import is_generic_name, published_name
from autotosis.media import decode, probe, shorts_graph
from autotosis.outputs.exports.timecode import display_label
from autotosis.outputs.shorts import (
    SAFE_AREA,
    FrameGeometry,
    Layout,
    LengthRules,
    Rect,
    ShortsOptions,
    ShortSource,
    Window,
    cam_spread,
    fill_rect,
    index_csv,
    index_json,
    plan_picture,
    plan_windows,
    rank_shorts,
    region_rect,
    render_shorts,
    safe_text_width,
    text_em,
    whole_frame,
    wrap_title,
)
from tests.conftest import make_video

CAM = "0.75,0,1,0.3"  # the red box of solid_source, as fractions
GAME = "0,0.4,0.7,1"  # a part of solid_source that is all blue
SMALL = "270x480"


def ev(
    start: float, end: float, peak: float = 0.9, peak_at: float | None = None, mean: float = 0.7, label: str = "rage"
) -> Event:
    peak_ms = int((start + end) / 2 * 1000) if peak_at is None else int(peak_at * 1000)
    return Event(int(start * 1000), int(end * 1000), label, peak, mean, peak_ms)


# --------------------------------------------------------------------------- regions (pure)


def test_parse_region_fractions_and_pixels():
    assert parse_region(CAM) == RegionArg((0.75, 0.0, 1.0, 0.3), pixels=False)
    assert parse_region("1440, 0, 1920, 324") == RegionArg((1440, 0, 1920, 324), pixels=True)
    assert parse_region("0,0,1,1").pixels is False  # the whole frame, not a 1-pixel square
    for bad, why in [("1,2,3", "4 comma-separated"), ("a,0,1,1", "not a number"), ("0,0,nan,1", "finite")]:
        with pytest.raises(ValueError, match=why):
            parse_region(bad)


FRAME = FrameGeometry(160, 90)


@pytest.mark.parametrize(
    "text, problem",
    [
        ("0.8,0,1.2,0.3", "reaches outside the 160x90 frame"),
        ("-0.1,0,0.5,0.5", "reaches outside"),
        ("100,0,200,30", "reaches outside the 160x90 frame"),
        ("0.5,0.1,0.5,0.4", "zero size"),
        ("0.5,0.4,0.6,0.1", "zero size"),
        ("0.5,0.5,0.503,0.6", "less than one pixel"),
    ],
)
def test_region_outside_the_frame_or_empty_is_a_usage_error(text: str, problem: str):
    with pytest.raises(UsageError, match=problem) as info:
        region_rect(parse_region(text), FRAME, "--cam")
    assert info.value.exit_status == ExitStatus.USAGE
    assert str(info.value).startswith(f"--cam {text} ")


def test_pixel_regions_are_in_displayed_pixels():
    anamorphic = FrameGeometry(120, 90, Fraction(4, 3))  # shown as 160x90
    rect = region_rect(parse_region("120,0,160,27"), anamorphic, "--cam")
    assert (rect.x, rect.w, rect.h) == (120, 40, 27)
    crop = plan_picture(Layout.STACKED, anamorphic, (270, 480), rect, whole_frame(anamorphic)).bands[0].crop
    assert (crop.x, crop.width) == (90, 30)  # stored pixels are 4/3 wide


def _aspect_error(band: shorts_graph.Band, sar: Fraction) -> float:
    shown = band.crop.width * sar / band.crop.height
    wanted = Fraction(band.width, band.height)
    return float(abs(shown - wanted) / wanted)


def _rounding_slack(band: shorts_graph.Band) -> float:
    return 1.0 / band.crop.width + 1.0 / band.crop.height + 2.0 / band.height + 2.0 / band.width


@settings(max_examples=200, deadline=None)
@given(
    w=st.integers(16, 3840),
    h=st.integers(16, 2160),
    sar=st.sampled_from([Fraction(1), Fraction(4, 3), Fraction(3, 4), Fraction(32, 27)]),
    cam=st.tuples(st.floats(0, 0.9), st.floats(0, 0.9), st.floats(0.05, 1), st.floats(0.05, 1)),
    size=st.sampled_from([(1080, 1920), (270, 480), (720, 1280), (1080, 1080)]),
)
def test_stacked_bands_fill_the_frame_and_are_never_stretched(w, h, sar, cam, size):
    frame = FrameGeometry(w, h, sar)
    x0, y0 = cam[0], cam[1]
    x1, y1 = min(1.0, x0 + cam[2]), min(1.0, y0 + cam[3])
    try:
        rect = region_rect(RegionArg((x0, y0, x1, y1)), frame, "--cam")
    except UsageError:
        return  # a region under one pixel: refused, which the test above covers
    picture = plan_picture(Layout.STACKED, frame, size, rect, whole_frame(frame))
    top, bottom = picture.bands
    assert top.width == bottom.width == size[0]
    assert top.height + bottom.height == size[1]
    assert top.height <= size[1] // 2
    for band in picture.bands:
        c = band.crop
        assert 0 <= c.x and c.x + c.width <= w and 0 <= c.y and c.y + c.height <= h
        assert _aspect_error(band, sar) <= _rounding_slack(band)


def test_stacked_cam_at_full_width_keeps_its_aspect_up_to_half_the_height():
    frame = FrameGeometry(1920, 1080)
    wide_cam = region_rect(parse_region("1440,0,1920,270"), frame, "--cam")  # 16:9
    top, bottom = plan_picture(Layout.STACKED, frame, (1080, 1920), wide_cam, whole_frame(frame)).bands
    assert (top.width, top.height) == (1080, 608) and (bottom.width, bottom.height) == (1080, 1312)
    assert top.crop == shorts_graph.PixelCrop(1440, 0, 480, 270)
    assert bottom.crop == shorts_graph.PixelCrop(515, 0, 889, 1080)  # the centre of the game, crop-to-fill
    tall_cam = region_rect(parse_region("1800,0,1920,540"), frame, "--cam")  # portrait cam: capped at half
    top, _ = plan_picture(Layout.STACKED, frame, (1080, 1920), tall_cam, whole_frame(frame)).bands
    assert top.height == 960 and top.crop.width == 120 and top.crop.height == round(120 * 960 / 1080)


def test_game_and_fit_layouts():
    frame = FrameGeometry(1920, 1080)
    game = plan_picture(Layout.GAME, frame, (1080, 1920), None, whole_frame(frame))
    assert game.backdrop is None and game.bands[0].crop == shorts_graph.PixelCrop(656, 0, 608, 1080)
    fit = plan_picture(Layout.FIT, frame, (1080, 1920), None, whole_frame(frame))
    assert (fit.bands[0].width, fit.bands[0].height) == (1080, 608)
    assert fit.bands[0].crop == shorts_graph.PixelCrop(0, 0, 1920, 1080)
    assert (fit.backdrop.width, fit.backdrop.height) == (1080, 1920)
    with pytest.raises(UsageError, match="stacked layout needs the face-cam region"):
        plan_picture(Layout.STACKED, frame, (1080, 1920), None, whole_frame(frame))


@given(st.fractions(1, 5000), st.fractions(1, 5000), st.integers(2, 4000), st.integers(2, 4000))
def test_fill_rect_is_the_largest_centred_part_with_the_target_aspect(w, h, out_w, out_h):
    from autotosis.outputs.shorts import Rect

    rect = Rect(Fraction(10), Fraction(20), Fraction(w), Fraction(h))
    fill = fill_rect(rect, out_w, out_h)
    assert fill.w / fill.h == Fraction(out_w, out_h)
    assert fill.w == rect.w or fill.h == rect.h
    assert fill.w <= rect.w and fill.h <= rect.h
    assert fill.x - rect.x == rect.x + rect.w - (fill.x + fill.w)  # centred
    assert fill.y - rect.y == rect.y + rect.h - (fill.y + fill.h)


# --------------------------------------------------------------------------- length control (pure)


RULES = LengthRules(min_ms=15_000, max_ms=59_000)


def test_long_event_is_trimmed_around_its_peak():
    (w,) = plan_windows([ev(100, 200, peak_at=150)], 600_000, RULES)
    assert (w.start_ms, w.end_ms) == (150_000 - 29_500, 150_000 + 29_500)
    (w,) = plan_windows([ev(100, 200, peak_at=101)], 600_000, RULES)  # peak near the start: stays inside the event
    assert (w.start_ms, w.end_ms) == (100_000, 159_000)


def test_short_event_is_widened_symmetrically_inside_the_video():
    (w,) = plan_windows([ev(100, 105)], 600_000, RULES)
    assert (w.start_ms, w.end_ms) == (95_000, 110_000)
    (w,) = plan_windows([ev(2, 4)], 600_000, RULES)  # no room before: the rest goes after
    assert (w.start_ms, w.end_ms) == (0, 15_000)
    (w,) = plan_windows([ev(595, 599)], 600_000, RULES)
    assert (w.start_ms, w.end_ms) == (585_000, 600_000)
    (w,) = plan_windows([ev(2, 4)], 9_000, RULES)  # a video shorter than the minimum: all of it
    assert (w.start_ms, w.end_ms) == (0, 9_000)


def test_events_closer_than_the_minimum_are_merged():
    windows = plan_windows([ev(100, 103, peak=0.6), ev(110, 112, peak=0.95, peak_at=111), ev(200, 230)], 600_000, RULES)
    assert [(w.start_ms, w.end_ms, w.events) for w in windows] == [(98_500, 113_500, 2), (200_000, 230_000, 1)]
    merged = windows[0].event
    assert (merged.start_ms, merged.end_ms, merged.peak, merged.peak_ms) == (100_000, 112_000, 0.95, 111_000)
    assert merged.mean == pytest.approx(0.7)


def test_windows_that_widening_made_overlap_are_merged():
    # 15 s apart (not merged by the gap rule), but both are widened into each other at the video's start.
    windows = plan_windows([ev(0, 1), ev(16, 17)], 600_000, RULES)
    assert len(windows) == 1 and windows[0].events == 2 and (windows[0].start_ms, windows[0].end_ms) == (0, 17_000)


def test_bad_rules_and_events():
    with pytest.raises(UsageError, match="minimum length"):
        LengthRules(min_ms=30_000, max_ms=20_000)
    with pytest.raises(UsageError, match="at least 1 s"):
        LengthRules(min_ms=0, max_ms=500)
    with pytest.raises(DataError, match="past the video's end"):
        plan_windows([ev(700, 710)], 600_000, RULES)
    (w,) = plan_windows([ev(590, 640)], 600_000, RULES)  # runs past the end: clipped
    assert w.end_ms == 600_000


@st.composite
def event_lists(draw):
    duration = draw(st.integers(1_000, 900_000))
    events, t = [], draw(st.integers(0, 30_000))
    for _ in range(draw(st.integers(0, 12))):
        length = draw(st.integers(1, 120_000))
        if t + length > duration:
            break
        peak_at = draw(st.integers(t, t + length))
        events.append(Event(t, t + length, "rage", draw(st.floats(0, 1)), draw(st.floats(0, 1)), peak_at))
        t += length + draw(st.integers(0, 60_000))
    min_ms = draw(st.integers(0, 60_000))
    max_ms = draw(st.integers(max(min_ms, 1_000), 120_000))
    return events, duration, LengthRules(min_ms, max_ms)


@settings(max_examples=300, deadline=None)
@given(event_lists())
def test_length_control_rules_hold_for_any_events(case):
    events, duration, rules = case
    windows = plan_windows(events, duration, rules)
    assert sum(w.events for w in windows) == len(events)
    for w in windows:
        assert 0 <= w.start_ms < w.end_ms <= duration
        assert min(rules.min_ms, duration) <= w.duration_ms <= rules.max_ms
        assert w.start_ms <= w.event.peak_ms <= w.end_ms  # the best moment is always in the short
        if w.event.duration_ms <= rules.max_ms:  # not trimmed: every merged event is shown whole
            assert w.start_ms <= w.event.start_ms and w.event.end_ms <= w.end_ms
    for a, b in zip(windows, windows[1:]):
        assert a.end_ms <= b.start_ms  # shorts of one video never overlap
        assert b.event.start_ms - a.event.end_ms >= rules.min_ms  # closer ones were merged
    for e in events:  # every event belongs to exactly one short
        assert sum(w.event.start_ms <= e.start_ms and e.end_ms <= w.event.end_ms for w in windows) == 1


# --------------------------------------------------------------------------- ranking, names, index (pure)


def test_names_sort_best_first_and_are_safe():
    windows = [
        (Path("vod one.mp4"), Window(5_000, 20_000, ev(5, 20, peak=0.71))),
        (Path("vod one.mp4"), Window(3_725_000, 3_740_000, ev(3725, 3740, peak=0.98, label="a:b/c'd"))),
        (Path("other/vodé.mkv"), Window(60_000, 75_000, ev(60, 75, peak=0.85))),
    ]
    shorts = rank_shorts(windows)
    assert [s.rank for s in shorts] == [1, 2, 3]
    assert [s.window.event.peak for s in shorts] == [0.98, 0.85, 0.71]
    assert [s.file_name for s in shorts] == [
        "01_a-b-c-d_0.98_1h02m05s_vod-one.mp4",
        "02_rage_0.85_0h01m00s_vodé.mp4",
        "03_rage_0.71_0h00m05s_vod-one.mp4",
    ]
    assert sorted(s.file_name for s in shorts) == [s.file_name for s in shorts]
    assert len(rank_shorts(windows * 40)[0].file_name.split("_")[0]) == 3  # 120 shorts: 3-digit ranks still sort


def test_index_lists_every_short():
    shorts = rank_shorts([(Path("v.mp4"), Window(1_000, 16_500, ev(2, 5, peak=0.9), events=2))])
    doc = json.loads(index_json(shorts, Layout.STACKED, (1080, 1920)))
    assert doc["format"] == "autotosis-shorts/1" and doc["size"] == [1080, 1920] and doc["layout"] == "stacked"
    assert doc["shorts"] == [
        {
            "rank": 1,
            "file": shorts[0].file_name,
            "source": "v.mp4",
            "start": 1.0,
            "end": 16.5,
            "duration": 15.5,
            "label": "rage",
            "peak": 0.9,
            "mean": 0.7,
            "peak_time": 3.5,
            "events": 2,
        }
    ]
    rows = list(csv.DictReader(index_csv(shorts).splitlines()))
    assert rows[0]["file"] == shorts[0].file_name and rows[0]["start"] == "1.000" and rows[0]["events"] == "2"


def test_generic_task_names_become_highlight_in_every_name():
    """Issue 19: a model trained from labels.txt (before label files named their tasks) called every
    short "labels: 1.00" and filed it as 01_labels_1.00_...mp4."""
    for generic in ("labels", "label", "data", "train", "training", "dataset", "clips", "default", "images", "train_2"):
        assert is_generic_name(generic) and published_name(generic) == "highlight"
        assert display_label(generic) == "highlight"
    for real in ("rage", "pog", "robot_cam", "rage_labels", "Pog-Moments"):
        assert not is_generic_name(real) and published_name(real) == real == display_label(real)
    windows = [(Path("vod.mp4"), Window(5_000, 20_000, ev(5, 20, peak=0.934, mean=0.2, label="labels")))]
    (short,) = rank_shorts(windows)
    assert short.file_name == "01_highlight_0.93_0h00m05s_vod.mp4"  # the class outputs show, the peak score


def test_wrap_title_fits_the_safe_width():
    width = safe_text_width(1080)
    assert width <= 1080 * (SAFE_AREA.x1 - SAFE_AREA.x0) - 20  # inside the safe area, less the text box's borders
    text = wrap_title("an unbelievably long title that would run off the side of a vertical short", width, 1920 / 28)
    lines = text.split("\n")
    assert len(lines) > 1 and all(text_em(line) * 1920 / 28 <= width for line in lines)
    assert " ".join(lines) == "an unbelievably long title that would run off the side of a vertical short"
    assert len(wrap_title("WWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWWW", width, 1920 / 28).split("\n")) > 2  # cut
    assert wrap_title("", width, 50) == "" and wrap_title("GG", width, 50) == "GG"


def test_safe_area_keeps_clear_of_the_apps_interface():
    # Top bar ~8%, the right-hand button column ~15% of the width, caption and account name ~20% at the bottom.
    assert SAFE_AREA.y0 >= 0.08 and SAFE_AREA.x1 <= 0.85 and SAFE_AREA.y1 <= 0.80 and SAFE_AREA.x0 > 0


def test_cam_spread_finds_a_flat_cam():
    frame = FrameGeometry(160, 90)
    cam = Rect(Fraction(120), Fraction(0), Fraction(40), Fraction(27))
    flat = np.zeros((180, 320, 3), np.uint8)
    flat[:, :, 2] = 200
    flat[:54, 240:, 0] = 255  # the cam: one flat red box (at twice the size)
    assert cam_spread([flat, flat], cam, frame) < 1
    busy = flat.copy()
    busy[:54, 240:] = np.random.default_rng(0).integers(0, 256, (54, 80, 3))
    assert cam_spread([flat, busy], cam, frame) > 50  # one lively frame is enough


# --------------------------------------------------------------------------- rendering (ffmpeg)

media_tests = pytest.mark.media


def solid_source(
    path: Path,
    *,
    audio: bool = True,
    duration: float = 6.0,
    after: str = "",
    square: bool = False,
    codec: list[str] | None = None,
) -> Path:
    """160x90 (as displayed) blue frame with a red 'face cam' box at the top right (CAM).

    ``square`` adds a 30x30 lime square inside GAME, whose shape in a short shows any squeeze.
    """
    box = "drawbox=x=120:y=0:w=40:h=27:color=red:t=fill" + (
        ",drawbox=x=40:y=50:w=30:h=30:color=lime:t=fill" if square else ""
    )
    return make_video(
        path,
        duration=duration,
        size="160x90",
        fps="25",
        audio=audio,
        source="color=c=blue",
        extra_video_filters=box + (f",{after}" if after else ""),
        codec=codec,
    )


def run_cli(argv: list[str]) -> int:
    return main(["--progress", "none", "-q", *argv])


def events_file(path: Path, video: Path, spans: list[tuple[float, float, float]], label: str = "rage") -> Path:
    events = [
        {"start": s, "end": e, "label": label, "peak": p, "mean": p - 0.1, "peak_time": (s + e) / 2}
        for s, e, p in spans
    ]
    path.write_text(json.dumps({"format": "autotosis-events/1", "video": str(video), "label": label, "events": events}))
    return path


def ffprobe_streams(path: Path) -> dict[str, dict]:
    out = subprocess.run(
        [
            shutil.which("ffprobe"),
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_streams",
            "-show_format",
            "file:" + str(path),
        ],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    doc = json.loads(out)
    streams = {s["codec_type"]: s for s in doc["streams"]}
    streams["format"] = doc["format"]
    return streams


def frame_of(path: Path, at_ms: int = 500) -> np.ndarray:
    info = probe.probe(path)
    return decode.grab_frame(info, at_ms, width=info.width).astype(int)


def is_red(pixels: np.ndarray) -> np.ndarray:
    return (pixels[..., 0] > 180) & (pixels[..., 2] < 80)


def is_blue(pixels: np.ndarray) -> np.ndarray:
    return (pixels[..., 2] > 180) & (pixels[..., 0] < 80)


def is_green(pixels: np.ndarray) -> np.ndarray:
    return (pixels[..., 1] > 180) & (pixels[..., 0] < 80) & (pixels[..., 2] < 80)


def green_box(frame: np.ndarray) -> tuple[int, int]:
    """Width and height of the lime square in a frame."""
    ys, xs = np.nonzero(is_green(frame))
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def red_rows(frame: np.ndarray, x: int | None = None) -> int:
    """Height of the red band at the top of the frame (in column ``x``, default the middle)."""
    column = is_red(frame[:, frame.shape[1] // 2 if x is None else x])
    return int(np.argmin(column)) if not column.all() else len(column)


def bright_rows(frame: np.ndarray) -> int:
    """Rows of the middle column that are full-strength colour (the fitted picture, not the dark backdrop)."""
    return int((frame[:, frame.shape[1] // 2].max(axis=1) > 170).sum())


@media_tests
def test_stacked_layout_puts_the_cam_over_the_game(tmp_path: Path):
    video = solid_source(tmp_path / "my vod 'é'.mp4", audio=False)
    events = events_file(tmp_path / "ev.json", video, [(0.5, 1.0, 0.9), (4.0, 5.9, 0.97)])
    out = tmp_path / "out dir"
    assert (
        run_cli(
            [
                "shorts",
                str(video),
                "--events",
                str(events),
                "-o",
                str(out),
                "--cam",
                CAM,
                "--game",
                GAME,
                "--size",
                SMALL,
                "--min",
                "1.5",
                "--max",
                "1.6",
                "--no-overlay",
            ]
        )
        == 0
    )
    index = json.loads((out / "shorts.json").read_text())
    names = [s["file"] for s in index["shorts"]]
    assert sorted(p.name for p in out.glob("*.mp4")) == names  # sorted by name = best first
    assert names[0].startswith("01_rage_0.97_0h00m04s_") and names[1].startswith("02_rage_0.90_0h00m00s_")
    for short in index["shorts"]:
        path = out / short["file"]
        streams = ffprobe_streams(path)
        assert (streams["video"]["width"], streams["video"]["height"]) == (270, 480)
        assert streams["video"].get("sample_aspect_ratio", "1:1") == "1:1"
        audio = streams["audio"]  # the source has no audio: silence was added
        assert (audio["codec_name"], audio["sample_rate"], audio["channels"]) == ("aac", "48000", 2)
        assert 1.5 - 0.05 <= float(streams["format"]["duration"]) <= 1.6 + 0.05
        assert 1.5 <= short["duration"] <= 1.6
        frame = frame_of(path)
        assert 178 <= red_rows(frame) <= 186  # the cam (40x27 shown) at full width: 270 * 27 / 40 = 182 rows
        assert is_red(frame[:176]).mean() > 0.99 and is_blue(frame[190:]).mean() > 0.99
    first = index["shorts"][0]
    assert (first["start"], first["end"], first["peak"], first["source"]) == (4.15, 5.75, 0.97, str(video))


@media_tests
def test_default_size_is_1080x1920_with_audio(tmp_path: Path):
    video = solid_source(tmp_path / "v.mp4", duration=3.0)
    events = events_file(tmp_path / "ev.json", video, [(1.0, 2.0, 0.8)])
    out = tmp_path / "shorts"
    assert (
        run_cli(
            [
                "shorts",
                str(video),
                "--events",
                str(events),
                "-o",
                str(out),
                "--cam",
                CAM,
                "--min",
                "1",
                "--max",
                "1",
                "--title",
                "it's a [test]: 100%, ok;",
            ]
        )
        == 0
    )
    (path,) = out.glob("*.mp4")
    streams = ffprobe_streams(path)
    assert (streams["video"]["width"], streams["video"]["height"]) == (1080, 1920)
    assert streams["video"].get("sample_aspect_ratio", "1:1") == "1:1"
    assert streams["video"]["codec_name"] == "h264"
    assert (streams["audio"]["codec_name"], streams["audio"]["sample_rate"], streams["audio"]["channels"]) == (
        "aac",
        "48000",
        2,
    )
    assert abs(float(streams["format"]["duration"]) - 1.0) <= 0.05
    frame = frame_of(path, 500)
    assert 724 <= red_rows(frame, x=10) <= 734  # 1080 * 27 / 40 = 729 (left of the title box)
    assert is_red(frame[400:700]).mean() > 0.99 and is_blue(frame[760:]).mean() > 0.9
    assert not is_red(frame[170:200, 500:580]).any()  # the title's box darkens the top centre, below the apps' top bar
    assert is_red(frame[90:140, 500:580]).all()  # nothing drawn over the top 8%


def rotated_source(tmp_path: Path) -> Path:
    """Stored as a 90x160 portrait picture with a display matrix that turns it into solid_source's 160x90."""
    stored = solid_source(tmp_path / "stored.mp4", duration=3.0, after="transpose=1", square=True)
    out = tmp_path / "rotated.mp4"
    subprocess.run(
        [
            shutil.which("ffmpeg"),
            "-v",
            "error",
            "-y",
            "-i",
            "file:" + str(stored),
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            "file:" + str(out),
        ],
        check=True,
    )
    info = probe.probe(out)
    if info.rotation == 0:
        pytest.skip("this ffmpeg does not write rotation metadata with -metadata rotate")
    assert (info.width, info.height) == (160, 90)
    shown = decode.grab_frame(info, 500, 160).astype(int)
    assert is_red(shown[:20, 125:]).all() and is_blue(shown[30:45, :100]).all()  # displayed upright, as intended
    assert is_green(shown[55:75, 45:65]).all()
    return out


def anamorphic_source(tmp_path: Path) -> Path:
    """Stored 120x90 with 4:3 pixels: shown as solid_source's 160x90."""
    out = solid_source(tmp_path / "anamorphic.mp4", duration=3.0, after="scale=120:90,setsar=4/3", square=True)
    info = probe.probe(out)
    assert (info.width, info.sar) == (120, Fraction(4, 3))
    return out


@media_tests
@pytest.mark.parametrize("make", [rotated_source, anamorphic_source], ids=["rotated", "anamorphic"])
def test_rotated_and_anamorphic_sources_come_out_upright_and_unsqueezed(tmp_path: Path, make):
    video = make(tmp_path)
    events = events_file(tmp_path / "ev.json", video, [(1.0, 2.0, 0.8)])
    for layout in ("stacked", "fit"):
        out = tmp_path / layout
        assert (
            run_cli(
                [
                    "shorts",
                    str(video),
                    "--events",
                    str(events),
                    "-o",
                    str(out),
                    "--cam",
                    CAM,
                    "--game",
                    GAME,
                    "--layout",
                    layout,
                    "--size",
                    SMALL,
                    "--min",
                    "1",
                    "--max",
                    "1",
                    "--no-overlay",
                ]
            )
            == 0
        )
        (path,) = out.glob("*.mp4")
        frame = frame_of(path)
        width, height = green_box(frame)
        assert abs(width / height - 1) < 0.08  # the square stays square
        if layout == "stacked":
            assert 178 <= red_rows(frame) <= 186  # squeezed 4:3 pixels would give 243 rows, a turned frame no red band
            assert not is_red(frame[190:]).any() and (is_blue(frame[190:]) | is_green(frame[190:])).mean() > 0.9
            assert abs(height - 30 * 270 / (54 * 270 / 298)) <= 5  # the game region, crop-filled to 270x298
        else:
            # The fitted game region (112x54 shown) is 270 x 130 in the middle; squeezed it would be 173 rows.
            assert 124 <= bright_rows(frame) <= 136
            assert abs(height - 30 * 270 / 112) <= 4
            assert frame[:100].max() < 140  # blurred and darkened backdrop above it


@media_tests
@pytest.mark.parametrize(
    "cam, problem",
    [
        ("0.8,0,1.2,0.3", "reaches outside the 160x90 frame"),
        ("100,0,200,30", "reaches outside the 160x90 frame"),
        ("0.5,0.1,0.5,0.4", "has zero size"),
    ],
)
def test_bad_cam_region_is_a_clear_error_and_leaves_nothing(tmp_path: Path, capsys, cam: str, problem: str):
    video = solid_source(tmp_path / "v.mp4", duration=2.0)
    events = events_file(tmp_path / "ev.json", video, [(0.5, 1.0, 0.8)])
    out = tmp_path / "out"
    assert (
        run_cli(["shorts", str(video), "--events", str(events), "-o", str(out), "--cam", cam, "--size", SMALL])
        == ExitStatus.USAGE
    )
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"autotosis: error: --cam {cam}") and problem in err and "\n" not in err
    assert not out.exists()


@media_tests
def test_existing_shorts_are_kept_unless_forced(tmp_path: Path, capsys):
    video = solid_source(tmp_path / "v.mp4", duration=2.0)
    events = events_file(tmp_path / "ev.json", video, [(0.5, 1.0, 0.8)])
    out = tmp_path / "out"
    argv = [
        "shorts",
        str(video),
        "--events",
        str(events),
        "-o",
        str(out),
        "--layout",
        "game",
        "--size",
        SMALL,
        "--min",
        "1",
        "--max",
        "1",
    ]
    assert run_cli(argv) == 0
    (path,) = out.glob("*.mp4")
    path.write_bytes(b"mine")
    assert run_cli(argv) == ExitStatus.OUTPUT_EXISTS
    assert "already exists" in capsys.readouterr().err and path.read_bytes() == b"mine"
    assert run_cli([*argv, "--force"]) == 0
    assert ffprobe_streams(path)["video"]["width"] == 270
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left behind
    assert (
        run_cli(["shorts", str(video), str(video), "--events", str(events), "-o", str(out), "--force"])
        == ExitStatus.USAGE
    )


@media_tests
@pytest.mark.torch
def test_model_mode_scans_and_uses_the_model_crop_as_cam(tmp_path: Path):
    import torch

    from autotosis.model.model import ModelInfo, build_model, save_checkpoint

    model = build_model(2)
    with torch.no_grad():  # every frame scores ~1 for "rage": one event over the whole clip
        model.fc.weight.zero_()
        model.fc.bias.copy_(torch.tensor([-4.0, 4.0]))
    info = ModelInfo(
        task="rage",
        classes=("background", "rage"),
        input_size=32,
        mean=(0.5, 0.5, 0.5),
        std=(0.25, 0.25, 0.25),
        crop=(0.75, 0.0, 1.0, 0.3),
        threshold=0.5,
    )
    save_checkpoint(tmp_path / "m.pt", model, info)
    video = solid_source(tmp_path / "v.mp4", duration=4.0, audio=False)
    out = tmp_path / "out"
    assert (
        run_cli(
            [
                "shorts",
                str(video),
                "--model",
                str(tmp_path / "m.pt"),
                "-o",
                str(out),
                "--no-cache",
                "--game",
                GAME,
                "--size",
                SMALL,
                "--min",
                "1",
                "--max",
                "2",
            ]
        )
        == 0
    )
    (row,) = json.loads((out / "shorts.json").read_text())["shorts"]
    assert row["duration"] == 2.0 and row["label"] == "rage" and row["peak"] > 0.99
    frame = frame_of(out / row["file"])
    assert 178 <= red_rows(frame) <= 186


@media_tests
def test_shorts_mix_every_audio_track_unless_one_is_chosen(tmp_path: Path, capsys):
    """Issue 16: a source with the microphone on track 1 (silent here) and the game on track 2 made
    mute shorts (only the first track was kept).  Now all tracks are mixed; --audio-track N picks one."""
    from tests import corpus

    video = corpus.two_audio_tracks(tmp_path / "obs.mp4")
    events = events_file(tmp_path / "ev.json", video, [(1.0, 2.0, 0.8)])
    volumes = {}
    for track in (None, "1"):
        out = tmp_path / f"shorts_{track}"
        assert (
            run_cli(
                [
                    "shorts",
                    str(video),
                    "--events",
                    str(events),
                    "-o",
                    str(out),
                    "--layout",
                    "game",
                    "--size",
                    SMALL,
                    "--min",
                    "1",
                    "--max",
                    "1",
                    "--no-overlay",
                    *(["--audio-track", track] if track else []),
                ]
            )
            == 0
        )
        (path,) = out.glob("*.mp4")
        volumes[track] = corpus.volume_db(path)[0]
    assert volumes[None] > -30 and volumes["1"] < -80
    assert (
        run_cli(
            [
                "shorts",
                str(video),
                "--events",
                str(events),
                "-o",
                str(tmp_path / "bad"),
                "--layout",
                "game",
                "--audio-track",
                "3",
            ]
        )
        == ExitStatus.USAGE
    )
    err = capsys.readouterr().err
    assert f"--audio-track 3: {video} has 2 audio tracks" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "bad").exists()


# --------------------------------------------------------------------------- text on the picture (issue 19)


def text_pixels(frame: np.ndarray, plain: np.ndarray) -> np.ndarray:
    """Where ``frame`` differs clearly from the same short rendered without text: the text and its box."""
    return np.abs(frame - plain).max(axis=2) > 40


def safe_box(width: int, height: int) -> tuple[int, int, int, int]:
    """SAFE_AREA in whole pixels of a ``width`` x ``height`` short (x0, y0, x1, y1; the ends exclusive)."""
    import math

    return (
        math.ceil(SAFE_AREA.x0 * width),
        math.ceil(SAFE_AREA.y0 * height),
        math.floor(SAFE_AREA.x1 * width),
        math.floor(SAFE_AREA.y1 * height),
    )


@media_tests
@pytest.mark.parametrize(
    "size, label", [((270, 480), "rage"), ((540, 960), "a_very_long_class_name_for_one_highlight")]
)
def test_title_and_score_are_drawn_inside_the_safe_area_and_the_score_only_with_overlay(tmp_path: Path, size, label):
    """Every pixel the title or the --overlay score changes lies inside SAFE_AREA: clear of the apps' top bar,
    button column and caption; without --overlay no score is drawn, without --title nothing at all."""
    video = solid_source(tmp_path / "v.mp4", duration=2.0, audio=False)
    events = events_file(tmp_path / "ev.json", video, [(0.5, 1.5, 0.8)], label=label)
    width, height = size
    frames = {}
    for name, extra in [
        ("plain", []),
        ("title", ["--title", "WIDE TITLE WITH CAPITALS MMMM WWWW"]),
        ("both", ["--title", "WIDE TITLE WITH CAPITALS MMMM WWWW", "--overlay"]),
    ]:
        out = tmp_path / name
        argv = ["shorts", str(video), "--events", str(events), "-o", str(out), "--layout", "game", "--game", GAME]
        argv += ["--size", f"{width}x{height}", "--min", "1", "--max", "1", *extra]
        assert run_cli(argv) == 0
        (path,) = out.glob("*.mp4")
        frames[name] = frame_of(path, 500)
    assert is_blue(frames["plain"]).all()  # the default short carries no text at all: no score, no title
    x0, y0, x1, y1 = safe_box(width, height)
    inside = np.zeros((height, width), bool)
    inside[y0:y1, x0:x1] = True
    title = text_pixels(frames["title"], frames["plain"])
    both = text_pixels(frames["both"], frames["plain"])
    for drawn in (title, both):
        ys, xs = np.nonzero(drawn)
        assert len(ys), "nothing was drawn"
        assert not (drawn & ~inside).any(), (
            f"text outside the safe area {x0},{y0}-{x1},{y1}: x {xs.min()}..{xs.max()}, y {ys.min()}..{ys.max()}"
        )
    # The title sits at the top of the safe area; the score only comes with --overlay, at its bottom.
    assert np.nonzero(title)[0].max() < height // 2
    score = both & ~title
    assert not score[: height // 2].any() and score[height // 2 :].sum() > 50


@media_tests
def test_an_empty_face_cam_is_a_warning_that_suggests_the_game_layout(tmp_path: Path, capsys):
    flat = solid_source(tmp_path / "flat cam.mp4", duration=2.0, audio=False)  # the "cam" is one red box
    lively = make_video(tmp_path / "lively.mp4", duration=2.0, size="160x90", audio=False)  # testsrc2: a busy picture
    events = (ev(0.5, 1.5),)
    options = ShortsOptions(cam=parse_region(CAM), size=(270, 480), lengths=LengthRules(1000, 1000))
    result = render_shorts([ShortSource(flat, events), ShortSource(lively, events)], tmp_path / "lib", options)
    assert len(result.shorts) == 2
    (warning,) = result.warnings
    assert warning.startswith("flat cam.mp4: the face-cam region 0.75,0,1,0.3 is empty or one flat colour")
    assert "--layout game" in warning
    game = render_shorts(
        [ShortSource(flat, events)], tmp_path / "game", dataclasses.replace(options, layout=Layout.GAME)
    )
    assert game.warnings == ()  # no cam in the picture, nothing to warn about
    # The command line prints it (the library does not print).
    capsys.readouterr()
    argv = [
        "--progress",
        "none",
        "shorts",
        str(flat),
        "--events",
        str(events_file(tmp_path / "e.json", flat, [(0.5, 1.5, 0.8)])),
    ]
    assert main([*argv, "-o", str(tmp_path / "cli"), "--cam", CAM, "--size", SMALL, "--min", "1", "--max", "1"]) == 0
    out = capsys.readouterr().out
    assert "warning: flat cam.mp4: the face-cam region 0.75,0,1,0.3 is empty" in " ".join(out.split())
