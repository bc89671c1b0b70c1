"""Scores -> events (segments.find_events) and event files: hand-made cases and properties."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from autotosis.core.errors import DataError, OutputExistsError, UsageError
from autotosis.detect.segments import (
    Event,
    EventList,
    EventParams,
    events_from_scores,
    find_events,
    moment_edges,
    read_events,
    write_events,
)

# Bare parameters: no merging, no minimum, no padding, so one stage can be tested at a time.
BARE = EventParams(threshold=0.5, min_length_ms=0, merge_gap_ms=0, pad_before_ms=0, pad_after_ms=0)


def events_of(
    values: list[float], params: EventParams = BARE, step: int = 500, duration_ms: int | None = None
) -> list[Event]:
    """Events of scores sampled every ``step`` ms from time 0."""
    times = np.arange(len(values), dtype=np.int64) * step
    duration = len(values) * step if duration_ms is None else duration_ms
    return find_events(times, np.asarray(values, dtype=np.float32), duration, "rage", params, step)


def bounds(events: list[Event]) -> list[tuple[int, int]]:
    return [(e.start_ms, e.end_ms) for e in events]


# --------------------------------------------------------------------------- threshold and hysteresis


def test_threshold_makes_one_event_per_run_with_its_stats():
    events = events_of([0, 0, 0.6, 0.7, 0, 0, 0.5, 0.2])
    assert bounds(events) == [(1000, 2000), (3000, 3500)]  # a score equal to the threshold enters
    first = events[0]
    assert (first.label, first.peak, first.peak_ms, first.mean, first.duration_ms) == ("rage", 0.7, 1500, 0.65, 1000)


def test_nothing_above_threshold_gives_no_events():
    assert events_of([0.1, 0.49, 0.2]) == []


def test_hysteresis_holds_an_event_through_a_dip_above_release():
    values = [0, 0.8, 0.4, 0.8, 0]
    assert bounds(events_of(values)) == [(500, 1000), (1500, 2000)]
    held = events_of(values, replace(BARE, release=0.3))
    assert bounds(held) == [(500, 2000)]
    assert held[0].mean == pytest.approx(2.0 / 3, abs=1e-6)
    # A dip below the release level ends it.
    assert bounds(events_of([0, 0.8, 0.2, 0.8, 0], replace(BARE, release=0.3))) == [(500, 1000), (1500, 2000)]


def test_hysteresis_enters_only_at_the_threshold():
    # Scores above release but below threshold do not start an event; they extend one after it started.
    events = events_of([0.4, 0.4, 0.8, 0.4, 0.4, 0.1], replace(BARE, release=0.3))
    assert bounds(events) == [(1000, 2500)]
    assert events_of([0.4, 0.45, 0.4], replace(BARE, release=0.3)) == []


def test_nan_scores_count_as_zero():
    events = events_of([0.9, math.nan, 0.9], replace(BARE, release=0.0))
    assert bounds(events) == [(0, 1500)]  # release 0 holds through the NaN (scored 0)
    assert events[0].mean == pytest.approx(0.6)
    assert bounds(events_of([0.9, math.nan, 0.9])) == [(0, 500), (1000, 1500)]


def test_empty_input_gives_no_events():
    assert find_events(np.zeros(0, np.int64), np.zeros(0, np.float32), 10_000, "rage", EventParams()) == []


def test_step_defaults_to_the_median_spacing():
    times = np.array([0, 400, 800, 1300, 1700], dtype=np.int64)  # spacings 400, 400, 500, 400
    events = find_events(times, np.array([0, 1, 1, 0, 0.0]), 5000, "rage", BARE)
    assert bounds(events) == [(400, 1200)]


def test_a_lone_sample_covers_the_rest_of_the_video():
    events = find_events(np.array([2000]), np.array([0.9]), 5000, "rage", BARE)
    assert bounds(events) == [(2000, 5000)]


@pytest.mark.parametrize(
    ("times", "values", "needle"),
    [
        ([0, 500, 500], [0.1, 0.2, 0.3], "strictly increasing"),
        ([0, 500], [0.1], "2 sample times but 1 scores"),
        ([[0, 500]], [[0.1, 0.2]], "one column"),
    ],
)
def test_malformed_samples_raise_data_error(times, values, needle):
    with pytest.raises(DataError, match=needle):
        find_events(np.array(times), np.array(values), 5000, "rage", BARE)


# --------------------------------------------------------------------------- min length, merge, padding


def test_min_length_drops_blips_measured_before_padding():
    values = [0, 0.9, 0, 0, 0, 0.9, 0.9, 0, 0, 0]
    params = replace(BARE, min_length_ms=1000, pad_before_ms=2000, pad_after_ms=2000)
    # The 500 ms blip is dropped although padding would have made it 4.5 s long.
    assert bounds(events_of(values, params)) == [(500, 5000)]


def test_merge_gap_joins_events_closer_than_the_gap():
    values = [0.9, 0.9, 0, 0, 0.9, 0.9]  # events [0, 1000) and [2000, 3000): 1000 ms apart
    assert bounds(events_of(values, replace(BARE, merge_gap_ms=1000))) == [(0, 1000), (2000, 3000)]
    merged = events_of(values, replace(BARE, merge_gap_ms=1001))
    assert bounds(merged) == [(0, 3000)]
    assert merged[0].mean == pytest.approx(0.6)  # the gap's samples are inside the merged event


def test_merging_happens_before_min_length():
    # Two 500 ms blips 500 ms apart: each too short alone, long enough once merged.
    values = [0, 0.9, 0, 0.9, 0, 0]
    assert events_of(values, replace(BARE, min_length_ms=1000)) == []
    assert bounds(events_of(values, replace(BARE, min_length_ms=1000, merge_gap_ms=600))) == [(500, 2000)]


def test_padding_is_clamped_to_the_video():
    values = [0.9, 0.9, 0, 0, 0, 0, 0, 0, 0.9, 0.9]
    params = replace(BARE, pad_before_ms=1000, pad_after_ms=1500)
    assert bounds(events_of(values, params)) == [(0, 2500), (3000, 5000)]
    # A video that ends inside the last sample's step ends the event there too.
    assert bounds(events_of(values, params, duration_ms=4800)) == [(0, 2500), (3000, 4800)]


def test_events_that_padding_makes_overlap_are_merged():
    values = [0, 0, 0.9, 0.9, 0, 0, 0, 0.9, 0.9, 0, 0, 0]  # [1000, 2000) and [3500, 4500)
    assert bounds(events_of(values, replace(BARE, pad_before_ms=500, pad_after_ms=500))) == [(500, 2500), (3000, 5000)]
    merged = events_of(values, replace(BARE, pad_before_ms=1000, pad_after_ms=800))
    assert bounds(merged) == [(0, 5300)]
    assert merged[0].peak_ms == 1000


def test_samples_past_the_reported_duration_are_ignored():
    assert bounds(events_of([0, 0.9, 0.9, 0.9], duration_ms=1200)) == [(500, 1200)]


def test_unknown_duration_ends_with_the_last_sample():
    assert bounds(events_of([0, 0.9, 0.9], replace(BARE, pad_after_ms=5000), duration_ms=0)) == [(500, 1500)]


# --------------------------------------------------------------------------- max length and selection


def test_max_length_trims_around_the_peak():
    values = [0.6] * 40
    values[24] = 0.95  # peak sample at 12000 ms; it covers [12000, 12500)
    events = events_of(values, replace(BARE, max_length_ms=4000))
    assert bounds(events) == [(10250, 14250)]  # centred on the middle of the peak sample
    event = events[0]
    assert (event.peak, event.peak_ms) == (0.95, 12000)
    # Mean over the 9 samples reaching into the window (10000 .. 14000), not the whole run.
    assert event.mean == pytest.approx((8 * 0.6 + 0.95) / 9, abs=1e-6)


def test_max_length_window_stays_inside_the_event():
    values = [0.6] * 40
    values[1] = 0.95  # peak near the start
    assert bounds(events_of(values, replace(BARE, max_length_ms=4000))) == [(0, 4000)]
    values = [0.6] * 40
    values[39] = 0.95  # peak at the very end
    assert bounds(events_of(values, replace(BARE, max_length_ms=4000))) == [(16000, 20000)]


def test_max_length_applies_after_padding():
    values = [0] * 4 + [0.9] * 6 + [0] * 10  # core [2000, 5000): 3 s, 5 s once padded
    params = replace(BARE, pad_before_ms=1000, pad_after_ms=1000, max_length_ms=4000)
    assert [e.duration_ms for e in events_of(values, params)] == [4000]
    assert events_of(values, replace(params, max_length_ms=5000))[0].duration_ms == 5000


def test_top_k_keeps_the_highest_peaks_in_time_order():
    values = [0, 0.7, 0, 0.95, 0, 0.8, 0, 0.6, 0]
    events = events_of(values, replace(BARE, top_k=2))
    assert [(e.start_ms, e.peak) for e in events] == [(1500, 0.95), (2500, 0.8)]
    assert len(events_of(values, replace(BARE, top_k=10))) == 4


def original_top_bins(values: list[float], per_bin: int, percentile: float) -> list[tuple[int, int]]:
    """The original autotosis bin selection, written out plainly (bin indices, neighbours included).

    clip.py: bins = mean of ``per_bin`` one-second scores; the top ``max(int((1 - p) * n), 1)``
    bins by mean, plus the bin before and after each.
    """
    bins = [float(np.mean(values[i : i + per_bin])) for i in range(0, len(values), per_bin)]
    top = sorted(range(len(bins)), key=lambda i: -bins[i])[: max(int((1 - percentile) * len(bins)), 1)]
    chosen = sorted({j for i in top for j in (i - 1, i, i + 1) if 0 <= j < len(bins)})
    runs: list[tuple[int, int]] = []
    for j in chosen:
        if runs and runs[-1][1] == j:
            runs[-1] = (runs[-1][0], j + 1)
        else:
            runs.append((j, j + 1))
    return runs


def test_top_percent_selects_bins_like_the_original():
    rng = np.random.default_rng(7)
    values = rng.uniform(0, 0.3, 200)  # 200 s, one score a second: 40 bins of 5 s
    values[50:55] = 0.9  # bin 10
    values[120:125] = 0.8  # bin 24
    values[125:130] = 0.7  # bin 25, next to bin 24
    values[175:180] = 0.75  # bin 35: third best, not taken
    params = replace(BARE, top_percent=5.0, bin_ms=5000)  # 2 of 40 bins
    events = events_of(list(values), params, step=1000)
    # (The original computes int((1 - 0.90) * 40) = 3, a float slip; 5% gives 2 bins either way.)
    expected = [(a * 5000, b * 5000) for a, b in original_top_bins(list(values), 5, 0.95)]
    assert expected == [(45_000, 60_000), (115_000, 130_000)]
    assert bounds(events) == expected
    assert events[0].peak == pytest.approx(0.9) and events[0].peak_ms == 50_000


def test_top_percent_without_neighbours_and_at_least_one_bin():
    values = [0.1] * 20 + [0.9] * 5 + [0.1] * 25  # 50 s, bin 4 is the best
    params = replace(BARE, top_percent=0.5, bin_ms=5000, include_neighbours=False)  # 0.5% of 10 bins -> 1
    assert bounds(events_of(values, params, step=1000)) == [(20_000, 25_000)]
    assert bounds(events_of(values, replace(params, include_neighbours=True), step=1000)) == [(15_000, 30_000)]


def test_top_percent_last_bin_is_clamped_to_the_video():
    values = [0.1] * 10 + [0.9] * 2  # 12 s: bins [0,5) [5,10) [10,12)
    params = replace(BARE, top_percent=1.0, bin_ms=5000, include_neighbours=False)
    assert bounds(events_of(values, params, step=1000)) == [(10_000, 12_000)]


# --------------------------------------------------------------------------- parameters


@pytest.mark.parametrize(
    ("changes", "needle"),
    [
        ({"threshold": 1.5}, "threshold"),
        ({"threshold": -0.1}, "threshold"),
        ({"threshold": math.nan}, "threshold"),
        ({"release": 0.7}, "release"),
        ({"release": -1.0}, "release"),
        ({"min_length_ms": -1}, "min_length_ms"),
        ({"merge_gap_ms": -5}, "merge_gap_ms"),
        ({"pad_before_ms": -1}, "pad_before_ms"),
        ({"pad_after_ms": 1.5}, "pad_after_ms"),
        ({"max_length_ms": 0}, "max_length_ms"),
        ({"top_k": 0}, "top_k"),
        ({"top_percent": 0.0}, "top_percent"),
        ({"top_percent": 101.0}, "top_percent"),
        ({"bin_ms": 0}, "bin_ms"),
        ({"include_neighbours": "yes"}, "include_neighbours"),
    ],
)
def test_bad_parameters_raise_usage_error(changes, needle):
    with pytest.raises(UsageError, match=needle):
        EventParams(**changes)


def test_numpy_numbers_are_stored_as_plain_numbers():
    params = EventParams(threshold=np.float32(0.25), top_k=np.int64(3))
    assert type(params.threshold) is float and type(params.top_k) is int
    assert params.release_level == 0.25


def test_events_from_scores_uses_the_named_column():
    from autotosis.detect.scores import Scores

    times = np.arange(10, dtype=np.int64) * 500
    rage = np.array([0, 0, 0.9, 0.9, 0, 0, 0, 0, 0, 0], dtype=np.float32)
    scores = Scores(Path("vod.mp4"), 5000, ("background", "rage"), times, np.stack([1 - rage, rage], axis=1), 500)
    assert bounds(events_from_scores(scores, "rage", BARE)) == [(1000, 2000)]
    assert bounds(events_from_scores(scores, "background", BARE)) == [(0, 1000), (2000, 5000)]
    with pytest.raises(DataError, match="pog"):
        events_from_scores(scores, "pog", BARE)


# --------------------------------------------------------------------------- properties

STEPS = st.sampled_from([100, 250, 500, 1000])
SCORE = st.one_of(st.floats(0, 1, width=32), st.just(math.nan))


@st.composite
def score_series(draw):
    step = draw(STEPS)
    # Runs of similar scores (like a real detector's output) so that several events appear.
    runs = draw(st.lists(st.tuples(SCORE, st.integers(1, 12)), max_size=12))
    values = [value for value, length in runs for _ in range(length)]
    # The video may end anywhere inside the last sample's step.
    duration = max(1, len(values) * step - draw(st.integers(0, step - 1)))
    return np.arange(len(values), dtype=np.int64) * step, np.asarray(values, dtype=np.float32), duration, step


@st.composite
def event_params(draw, threshold=None):
    threshold = draw(st.floats(0, 1)) if threshold is None else threshold
    return EventParams(
        threshold=threshold,
        release=draw(st.one_of(st.none(), st.floats(0, threshold))),
        min_length_ms=draw(st.one_of(st.sampled_from([0, 500, 1000]), st.integers(0, 5000))),
        merge_gap_ms=draw(st.one_of(st.sampled_from([0, 1000]), st.integers(0, 5000))),
        pad_before_ms=draw(st.one_of(st.just(0), st.integers(0, 3000))),
        pad_after_ms=draw(st.one_of(st.just(0), st.integers(0, 3000))),
        max_length_ms=draw(st.one_of(st.none(), st.integers(1, 10_000))),
        top_k=draw(st.one_of(st.none(), st.integers(1, 5))),
        top_percent=draw(st.one_of(st.none(), st.none(), st.floats(0.5, 100))),
        bin_ms=draw(st.sampled_from([1000, 2500, 5000])),
        include_neighbours=draw(st.booleans()),
    )


PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(score_series(), event_params())
def test_events_are_sorted_disjoint_and_inside_the_video(series, params):
    times, values, duration, step = series
    events = find_events(times, values, duration, "rage", params, step)
    for event in events:
        assert 0 <= event.start_ms < event.end_ms <= duration
        assert event.start_ms - step <= event.peak_ms < event.end_ms
        assert event.start_ms <= event.core_start_ms < event.core_end_ms <= event.end_ms  # the moment is inside
        assert moment_edges(event) == (event.core_start_ms, event.core_end_ms)
        assert event.mean <= event.peak + 1e-6
        if params.top_percent is None and params.top_k is None:
            assert event.peak >= round(params.threshold, 6) - 1e-6
        # Short cores are dropped before padding; only max_length may cut below min_length.
        assert event.duration_ms >= min(params.min_length_ms, params.max_length_ms or math.inf)
        if params.max_length_ms is not None:
            assert event.duration_ms <= params.max_length_ms
    for before, after in zip(events, events[1:]):
        assert before.end_ms < after.start_ms
    if params.top_k is not None:
        assert len(events) <= params.top_k


@PROPERTY
@given(score_series(), st.floats(0, 1), st.floats(0, 1), st.data())
def test_raising_the_threshold_never_adds_event_time(series, t1, t2, data):
    times, values, duration, step = series
    low, high = sorted((t1, t2))
    params = data.draw(event_params(threshold=low))
    # Trimming around a peak and top-k pick among events, so they are not monotone by design.
    params = replace(params, max_length_ms=None, top_k=None, top_percent=None)
    if params.release is not None:
        params = replace(params, release=min(params.release, low))
    loose = find_events(times, values, duration, "rage", params, step)
    strict = find_events(times, values, duration, "rage", replace(params, threshold=high), step)
    for event in strict:
        assert any(other.start_ms <= event.start_ms and event.end_ms <= other.end_ms for other in loose), (event, loose)


# --------------------------------------------------------------------------- event files


def sample_list(video: Path | None = Path("clips/my vod é.mp4")) -> EventList:
    params = EventParams(threshold=0.6, release=0.4, min_length_ms=1500, max_length_ms=20_000, top_k=7)
    events = (
        Event(0, 2500, "rage", 0.912345, 0.701, 1000),
        Event(61_001, 75_999, "rage", 0.6, 0.6, 70_123),
        Event(3_600_000, 3_600_001, 'rage, loud "quoted"', 1.0, 0.999999, 3_600_000),
    )
    return EventList(video, 3_700_000, "rage", params, events)


def test_json_round_trip_is_exact(tmp_path: Path):
    path = tmp_path / "vod.events.json"
    original = sample_list()
    write_events(original, path)
    assert read_events(path) == original
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["events"][1]["start"] == 61.001 and document["events"][1]["start_ms"] == 61_001
    assert document["params"]["threshold"] == 0.6


def test_csv_round_trip_keeps_the_events(tmp_path: Path):
    path = tmp_path / "vod.events.csv"
    original = sample_list()
    write_events(original, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert lines[0] == "start,end,label,peak,mean,peak_time"
    assert lines[2] == "61.001,75.999,rage,0.6,0.6,70.123"
    back = read_events(path)
    assert back.events == original.events
    assert back.video is None and back.label == "rage"


@PROPERTY
@given(score_series(), event_params(), st.sampled_from([".json", ".csv"]))
def test_found_events_survive_a_round_trip(tmp_path_factory, series, params, suffix):
    times, values, duration, step = series
    events = tuple(find_events(times, values, duration, "rage", params, step))
    path = tmp_path_factory.mktemp("rt") / f"events{suffix}"
    write_events(EventList(Path("v.mp4"), duration, "rage", params, events), path)
    back = read_events(path)
    assert back.events == events
    if suffix == ".json":
        assert back.params == params and back.duration_ms == duration
        assert [moment_edges(e) for e in back.events] == [moment_edges(e) for e in events]


def test_events_keep_the_moment_without_its_padding(tmp_path: Path):
    padded = replace(BARE, pad_before_ms=1000, pad_after_ms=1500)
    # One moment 2.0-4.0 s padded to 1.0-5.5 s; one at the video's start, whose padding is cut short.
    (event,) = events_of([0, 0, 0, 0, 0.9, 0.9, 0.9, 0.9, 0, 0, 0, 0, 0, 0], padded)
    assert (event.start_ms, event.end_ms) == (1000, 5500)
    assert (event.core_start_ms, event.core_end_ms) == moment_edges(event) == (2000, 4000)
    (first,) = events_of([0.9, 0.9, 0, 0, 0, 0, 0, 0], padded)
    assert (first.start_ms, first.core_start_ms, first.core_end_ms, first.end_ms) == (0, 0, 1000, 2500)
    # Two moments the padding joins: one event, its moment from the first's start to the second's end.
    (joined,) = events_of([0, 0, 0.9, 0, 0, 0, 0.9, 0, 0, 0, 0, 0], padded)
    assert (joined.start_ms, joined.core_start_ms, joined.core_end_ms, joined.end_ms) == (0, 1000, 3500, 5000)
    # Trimmed to a window around the peak: the moment is what of it lies inside the window.
    (trimmed,) = events_of([0, 0, 0, 0, 0.6, 0.7, 0.99, 0.7, 0.6, 0, 0, 0, 0, 0], replace(padded, max_length_ms=2000))
    assert trimmed.start_ms <= trimmed.core_start_ms < trimmed.core_end_ms <= trimmed.end_ms
    assert trimmed.duration_ms == 2000

    # The events file keeps them; an older file without them is read with the edges moved in by the
    # padding its parameters name; CSV records no padding, so its events are their own moments.
    listing = EventList(Path("v.mp4"), 7000, "rage", padded, (event,))
    path = tmp_path / "e.json"
    write_events(listing, path)
    document = json.loads(path.read_text(encoding="utf-8"))
    assert document["events"][0]["core_start"] == 2.0 and document["events"][0]["core_end_ms"] == 4000
    assert moment_edges(read_events(path).events[0]) == (2000, 4000)
    for key in ("core_start", "core_end", "core_start_ms", "core_end_ms"):
        del document["events"][0][key]
    path.write_text(json.dumps(document), encoding="utf-8")
    old = read_events(path)
    assert old.events[0].core_start_ms is None and old.events[0] == event
    assert moment_edges(old.events[0], old.params) == (2000, 4000)
    assert moment_edges(old.events[0]) == (1000, 5500)  # nothing known about padding: the event itself
    assert moment_edges(Event(0, 1000, "rage", 0.9, 0.9, 0), padded) == (0, 1000)  # shorter than its padding
    csv_path = tmp_path / "e.csv"
    write_events(listing, csv_path)
    assert moment_edges(read_events(csv_path).events[0], EventParams()) == (1000, 5500)
    # A moment outside its event is a clear error.
    document["events"][0].update(core_start=0.5, core_end=4.0)
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(DataError, match="moment .* must lie inside the event"):
        read_events(path)


def test_existing_file_is_not_overwritten_without_force(tmp_path: Path):
    path = tmp_path / "events.json"
    path.write_text("mine", encoding="utf-8")
    with pytest.raises(OutputExistsError):
        write_events(sample_list(), path)
    assert path.read_text(encoding="utf-8") == "mine"
    write_events(sample_list(), path, force=True)
    assert read_events(path) == sample_list()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["events.json"]  # no temp files left


def json_with(**changes) -> str:
    document = json.loads(
        json.dumps(
            {
                "format": "autotosis-events/1",
                "video": "v.mp4",
                "duration_ms": 10_000,
                "label": "rage",
                "params": {},
                "events": [
                    {
                        "start": 1.0,
                        "end": 2.0,
                        "start_ms": 1000,
                        "end_ms": 2000,
                        "label": "rage",
                        "peak": 0.9,
                        "mean": 0.8,
                        "peak_time": 1.5,
                        "peak_ms": 1500,
                    }
                ],
            }
        )
    )
    for key, value in changes.items():
        if key.startswith("event_"):
            document["events"][0][key.removeprefix("event_")] = value
        else:
            document[key] = value
    return json.dumps(document)


@pytest.mark.parametrize(
    ("name", "text", "needle"),
    [
        ("a.json", "{not json", "not valid JSON"),
        ("a.json", "[]", "not an autotosis events file"),
        ("a.json", json_with(format="autotosis-scores/1"), "not an autotosis events file"),
        ("a.json", json_with(events={"start": 1}), '"events" must be a list'),
        ("a.json", json_with(events=[5]), "event 1: must be an object"),
        ("a.json", json_with(event_start=1.5), "disagree"),
        ("a.json", json_with(event_start_ms="1000"), "whole number of milliseconds"),
        ("a.json", json_with(event_end=None, event_end_ms=None), '"end" is missing'),
        ("a.json", json_with(event_end=0.5, event_end_ms=500), "before or where it starts"),
        ("a.json", json_with(event_start=-1.0, event_start_ms=-1000), "must not be negative"),
        ("a.json", json_with(event_peak="high"), '"peak" must be a number'),
        ("a.json", json_with(event_label=3), '"label" must be text'),
        ("a.json", json_with(params={"threshold": 2}), 'bad "params": threshold'),
        ("a.json", json_with(params=[0.5]), '"params" must be an object'),
        ("a.json", json_with(video=7), '"video" must be a path'),
        ("a.json", json_with(duration_ms=1.5), "whole number of milliseconds"),
        ("a.json", '{"format": "autotosis-events/1", "duration_ms": ' + "9" * 5000 + "}", "not a usable JSON file"),
        ("a.csv", "", "missing start"),
        ("a.csv", "begin,end\n1,2\n", "missing start"),
        (
            "a.csv",
            "start,end,label,peak,mean,peak_time\n1.0,two,rage,0.9,0.8,1.5\n",
            "a.csv:2: column 'end' must be a number",
        ),
        ("a.csv", "start,end,label,peak,mean,peak_time\n1.0,2.0,rage,0.9\n", "a.csv:2: expected 6 values .*, got 4"),
        ("a.csv", "start,end,label,peak,mean,peak_time\n1,2,rage,0.9,0.8,1.5,9\n", "expected 6 values .*, got 7"),
        ("a.csv", "start,end,label,peak,mean,peak_time\n1.0,2.0,rage,nan,0.8,1.5\n", "finite"),
        ("a.csv", "start,end,label,peak,mean,peak_time\n3.0,2.0,rage,0.9,0.8,1.5\n", "before or where it starts"),
        ("a.csv", "start,end,label,peak,mean,peak_time\n-3.0,2.0,rage,0.9,0.8,1.5\n", "must not be negative"),
    ],
)
def test_malformed_event_files_raise_data_error(tmp_path: Path, name, text, needle):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=needle) as caught:
        read_events(path)
    assert str(path) in str(caught.value)


def test_missing_or_unreadable_events_file(tmp_path: Path):
    with pytest.raises(DataError, match="no such events file"):
        read_events(tmp_path / "nope.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(DataError, match="cannot read"):
        read_events(tmp_path / "bin.json")


def test_hand_written_files_are_accepted(tmp_path: Path):
    # Seconds only (no *_ms), a spreadsheet's BOM and blank lines are fine.
    json_path = tmp_path / "hand.json"
    json_path.write_text(
        json.dumps({"format": "autotosis-events/1", "events": [{"start": 1.25, "end": 3, "peak": 1, "mean": 0.5}]})
    )
    assert read_events(json_path).events == (Event(1250, 3000, "", 1.0, 0.5, 1250),)
    csv_path = tmp_path / "hand.csv"
    csv_path.write_text("\ufeffstart,end,label,peak,mean,peak_time\n\n1.25,3,rage,1,0.5,2\n", encoding="utf-8")
    assert read_events(csv_path).events == (Event(1250, 3000, "rage", 1.0, 0.5, 2000),)


def test_top_k_takes_the_best_moments_even_below_the_threshold():
    """An unsure model (nothing reaches 0.5) still yields the K best moments, best peaks first."""
    values = [0.05] * 4 + [0.3, 0.35, 0.3] + [0.05] * 6 + [0.42] + [0.05] * 6 + [0.2, 0.22] + [0.05] * 4
    assert events_of(values, BARE) == []
    events = events_of(values, replace(BARE, top_k=2))
    assert [round(e.peak, 2) for e in events] == [0.35, 0.42]  # in time order
    assert events[0].start_ms == 2000 and events[0].end_ms == 3500  # the stretch scoring >= half its peak
    # A one-sample moment grows to min_length around its peak; the moments never touch (they would join).
    values[15] = 0.9
    events = events_of(values, replace(BARE, top_k=2, min_length_ms=1500))
    assert [round(e.peak, 2) for e in events] == [0.35, 0.9]
    assert all(e.duration_ms >= 1500 for e in events) and events[0].end_ms < events[1].start_ms


def test_nothing_found_hint_names_the_highest_score_and_a_threshold_that_finds_it():
    from autotosis.detect.segments import nothing_found_hint

    times = np.arange(10, dtype=np.int64) * 500
    scores = np.array([0.1, 0.2, 0.43, 0.3, 0.1, 0.0, 0.0, 0.1, 0.1, 0.1])
    hint = nothing_found_hint(times, scores, EventParams(threshold=0.6))
    assert hint.startswith("the highest score was 0.43 at 0:01, under the threshold 0.60; --threshold 0.4 would find")
    assert events_of(list(scores), replace(BARE, threshold=0.4))  # the suggestion does find something
    assert "every score is 0" in nothing_found_hint(times, np.zeros(10), EventParams())
