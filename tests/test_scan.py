"""Scanning: dense and coarse-to-fine modes, exact times (VFR), rotation, non-square pixels, cache keys.

Most tests use a stand-in predictor that scores how red the frame is, so the truth is
known exactly and no model has to be trained; one builds a real (untrained) checkpoint
to go through scan_video, its cache and the CLI.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from autotosis.core.errors import ExitStatus
from autotosis.detect import coarse
from autotosis.detect.scan import ScanOptions, resolve_mode, scan_video, scan_with
from autotosis.detect.segments import EventParams, event_spans, events_from_scores, find_events
from autotosis.media import decode, probe

pytestmark = pytest.mark.media

FFMPEG = shutil.which("ffmpeg")


class Redness:
    """Scores a frame by its share of clearly red pixels: ("background", "red") probabilities."""

    def __init__(self, crop=None, size: int = 16):
        from autotosis.model.model import DEFAULT_MEAN, DEFAULT_STD, ModelInfo

        self.info = ModelInfo(
            task="red",
            classes=("background", "red"),
            input_size=size,
            mean=DEFAULT_MEAN,
            std=DEFAULT_STD,
            crop=crop,
            threshold=0.5,
        )
        self.frames = 0

    def predict(self, frames: np.ndarray) -> np.ndarray:
        self.frames += len(frames)
        rgb = frames.astype(np.int16)
        red = ((rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).mean(axis=(1, 2))
        return np.stack([1 - red, red], axis=1).astype(np.float32)


def red_events(scores, **params) -> list[tuple[int, int]]:
    defaults = dict(threshold=0.5, min_length_ms=0, merge_gap_ms=0, pad_before_ms=0, pad_after_ms=0)
    return event_spans(events_from_scores(scores, "red", EventParams(**{**defaults, **params})))


def red_between(start: float, end: float, box: str = "x=0:y=0:w=iw:h=ih") -> str:
    return f"drawbox={box}:color=red:t=fill:enable='between(t,{start},{end})'"


# --------------------------------------------------------------------------- pure parts


def test_refine_spans_pads_candidates_by_a_keyframe_interval_and_merges():
    keys = np.arange(0, 20_000, 2000)  # a keyframe every 2 s, 20 s video
    scores = np.zeros(len(keys))
    scores[[3, 4]] = 0.9  # 6 s and 8 s
    scores[8] = 0.2  # 16 s: weak, but above a low threshold
    spans = coarse.refine_spans(keys, scores, 20_000, 0.15)
    assert spans == [(4000, 10_000), (14_000, 18_000)]
    assert coarse.refine_spans(keys, scores, 20_000, 0.5) == [(4000, 10_000)]
    # At the ends the video's own start and end stand in for the missing neighbour.
    scores[:] = 0
    scores[[0, -1]] = 1
    assert coarse.refine_spans(keys, scores, 20_000, 0.5) == [(0, 2000), (16_000, 20_000)]
    assert coarse.refine_spans(keys, scores, 20_000, 0.5, pad_keyframes=2) == [(0, 4000), (14_000, 20_000)]


def test_refine_spans_decodes_where_keyframes_are_sparse():
    keys = np.array([0, 2000, 4000, 14_000, 16_000])
    spans = coarse.refine_spans(keys, np.zeros(5), 25_000, 0.5, max_gap_ms=5000)
    assert spans == [(4000, 14_000), (16_000, 25_000)]
    assert coarse.refine_spans(np.array([], dtype=np.int64), np.array([]), 9000, 0.5) == [(0, 9000)]


def _run_high(keys: np.ndarray, scores: np.ndarray, level: float = 0.5) -> np.ndarray:
    return (scores >= level)[:, None]


def test_refine_spans_refines_only_the_edges_of_a_run_of_high_keyframes():
    keys = np.arange(0, 40_000, 2000)  # a keyframe every 2 s, 40 s video
    scores = np.zeros(len(keys))
    scores[3:13] = 0.9  # a long event over the keyframes at 6 s ... 24 s
    old = coarse.refine_spans(keys, scores, 40_000, 0.125)
    assert old == [(4000, 26_000)]  # the old rule: everything from before the first to after the last
    new = coarse.refine_spans(keys, scores, 40_000, 0.125, key_high=_run_high(keys, scores))
    assert new == [(4000, 8000), (22_000, 26_000)]  # a keyframe interval either side of 6 s and of 24 s
    # Close stretches are decoded in one run.
    joined = coarse.refine_spans(keys, scores, 40_000, 0.125, key_high=_run_high(keys, scores), join_ms=14_000)
    assert joined == old
    # A dip inside (a candidate below the event threshold, or no candidate at all): its
    # neighbourhood is refined, a keyframe interval beyond its neighbours.
    for dip in (0.3, 0.01):
        scores[7] = dip  # 14 s
        spans = coarse.refine_spans(keys, scores, 40_000, 0.125, key_high=_run_high(keys, scores))
        assert spans == [(4000, 8000), (10_000, 18_000), (22_000, 26_000)], dip
    # A weak first candidate: the score crosses the event threshold after it, so the first high
    # keyframe gets its interval on both sides too.
    scores[7] = 0.9
    scores[3] = 0.3
    spans = coarse.refine_spans(keys, scores, 40_000, 0.125, key_high=_run_high(keys, scores))
    assert spans == [(4000, 10_000), (22_000, 26_000)]


def test_refine_spans_edges_at_the_ends_of_the_video_and_changes_of_class():
    keys = np.arange(0, 40_000, 2000)
    scores = np.zeros(len(keys))
    scores[:5] = scores[-4:] = 0.9  # 0-8 s and 32 s to the end
    spans = coarse.refine_spans(keys, scores, 40_000, 0.125, key_high=_run_high(keys, scores))
    assert spans == [(0, 2000), (6000, 10_000), (30_000, 34_000), (36_000, 40_000)]
    # Two classes: high on the first from 6 s, on the second from 16 s; where it changes, refine.
    scores[:] = 0
    scores[3:13] = 0.9
    high = np.zeros((len(keys), 2), dtype=bool)
    high[3:8, 0] = high[8:13, 1] = True
    spans = coarse.refine_spans(keys, scores, 40_000, 0.125, key_high=high)
    assert spans == [(4000, 8000), (12_000, 18_000), (22_000, 26_000)]


def test_high_classes_and_interior_keyframes():
    classes = ("background", "rage", "pog")
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.1, 0.3, 0.6]])
    assert coarse.high_classes(probs, classes, 0.5).tolist() == [[False, False], [True, False], [False, True]]
    # Without a background class no class is known to be an event: nothing is interior (the old rule).
    assert coarse.high_classes(probs, ("a", "b", "c"), 0.5).shape == (3, 0)
    candidates = np.array([True] * 5)
    assert coarse.interior_keyframes(candidates, np.zeros((5, 0), dtype=bool)).tolist() == [False] * 5
    high = np.array([[True], [True], [True], [False], [True]])
    assert coarse.interior_keyframes(candidates, high).tolist() == [False, True, False, False, False]


def test_merge_spans_joins_close_spans():
    assert coarse.merge_spans([(0, 1000), (1000, 2000), (4000, 5000)]) == [(0, 2000), (4000, 5000)]
    assert coarse.merge_spans([(7000, 8000), (0, 1000), (3000, 4000)], 2000) == [(0, 4000), (7000, 8000)]


def _signal(rng: np.random.Generator, duration_ms: int, key_ms: int) -> np.ndarray:
    """Scores per ms: events over 0.6-1.0 noise on 0-0.08 noise, held per 100 ms frame.

    Events long and short (each covers a keyframe), some at the very start or end, long ones
    with a dip (0.3 or 0.02) of one to two keyframe intervals.  No gap shorter than a keyframe
    interval between two events: that, and an event between two keyframes, are the blind
    spots of any coarse scan.
    """
    frames = duration_ms // 100
    high, low = rng.uniform(0.6, 1.0, frames), rng.uniform(0.0, 0.08, frames)
    level = low.copy()
    keys = np.arange(0, duration_ms, key_ms)
    for _ in range(rng.integers(3, 7)):
        key = int(keys[rng.integers(0, len(keys))])
        length = int(key_ms * rng.choice([rng.uniform(0.5, 1), rng.uniform(1, 4), rng.uniform(4, 15)]))
        start = 0 if rng.random() < 0.15 else key - int(rng.uniform(0, min(length, key_ms)))
        end = duration_ms if rng.random() < 0.15 else start + length
        lo, hi = max(0, start) // 100, -(-min(duration_ms, end) // 100)
        level[lo:hi] = high[lo:hi]

    def runs() -> tuple[np.ndarray, np.ndarray]:
        edges = np.diff(np.concatenate(([0], (level >= 0.25).astype(np.int8), [0])))
        return np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)

    starts, ends = runs()
    for end, start in zip(ends[:-1], starts[1:]):
        if (start - end) * 100 <= key_ms + 200:
            level[end:start] = high[end:start]
    for start, end in zip(*runs()):
        if (end - start) * 100 > 6 * key_ms and rng.random() < 0.7:
            length = int(rng.uniform(1, 2) * key_ms) // 100
            first = int(rng.uniform(start + key_ms // 100 + 1, end - length - key_ms // 100 - 1))
            level[first : first + length + 1] = rng.choice([0.3, 0.02])
    return np.repeat(level, 100)


def _simulated_coarse(signal, duration_ms, key_ms, threshold, *, edges_only):
    """The merged samples (times, scores) of a coarse scan of ``signal`` and its refined fraction."""
    dense = np.arange(0, duration_ms, 500)
    keys = np.arange(0, duration_ms, key_ms)
    key_high = (signal[keys] >= threshold)[:, None] if edges_only else None
    spans = coarse.refine_spans(
        keys, signal[keys], duration_ms, threshold / 4, key_high=key_high, join_ms=2500 if edges_only else 0
    )
    spans = coarse.align_spans(spans, 2.0)
    fine = dense[np.any([(dense >= lo) & (dense < hi) for lo, hi in spans] or [dense < 0], axis=0)]
    as_probs = lambda v: np.stack([1 - v, v], axis=1)  # noqa: E731
    times, probs = coarse.merge_samples(keys, as_probs(signal[keys]), spans, fine, as_probs(signal[fine]))
    return times, probs[:, 1], sum(hi - lo for lo, hi in spans) / duration_ms


def test_edges_only_finds_the_dense_events_within_one_step_and_refines_less():
    rules = [
        dict(threshold=0.5, min_length_ms=0, merge_gap_ms=0),
        dict(threshold=0.5, min_length_ms=1000, merge_gap_ms=2000),
        dict(threshold=0.5, smooth_ms=1000, merge_gap_ms=1000),
        dict(threshold=0.5, smooth_ms=2000, min_length_ms=2000, merge_gap_ms=4000),
        dict(threshold=0.7, release=0.4, min_length_ms=0, merge_gap_ms=0),
        dict(threshold=0.7, release=0.4, smooth_ms=2000, merge_gap_ms=2000),
    ]
    duration, fractions, compared = 120_000, {True: [], False: []}, 0
    for key_ms in (2000, 2002, 1000):  # 2002: keyframes off the sampling grid
        for seed in range(25):
            signal = _signal(np.random.default_rng(seed), duration, key_ms)
            dense_times = np.arange(0, duration, 500)
            for rule in rules:
                params = EventParams(pad_before_ms=0, pad_after_ms=0, **rule)
                dense = find_events(dense_times, signal[dense_times], duration, "x", params, 500)
                found = {}
                for edges_only in (True, False):
                    times, scores, fraction = _simulated_coarse(
                        signal, duration, key_ms, params.threshold, edges_only=edges_only
                    )
                    found[edges_only] = find_events(times, scores, duration, "x", params, 500)
                    fractions[edges_only].append(fraction)
                if not _within_one_step(found[False], dense):
                    continue  # the old rule misses it too (a merge gap met exactly, after smoothing)
                compared += 1
                assert _within_one_step(found[True], dense), (key_ms, seed, rule)
    assert compared > 0.95 * 3 * 25 * len(rules)
    assert np.mean(fractions[True]) < 0.7 * np.mean(fractions[False])


def test_edges_only_refines_both_sides_of_the_first_high_keyframe_after_a_weak_one():
    # Weak (0.3) from 4 s, nothing from 6.5 s, high from 8 s: the keyframe at 8 s is high, but its
    # neighbour at 6 s is not, so the stretch after 8 s is decoded too and a smoothed crossing
    # (which lands after 8 s) sees dense samples, as a dense scan does.
    duration = 40_000
    signal = np.full(duration, 0.02)
    signal[4000:6500], signal[8000:30_000] = 0.3, 0.8
    params = EventParams(threshold=0.7, release=0.4, smooth_ms=2000, pad_before_ms=0, pad_after_ms=0)
    times, scores, _ = _simulated_coarse(signal, duration, 2000, 0.7, edges_only=True)
    dense_times = np.arange(0, duration, 500)
    dense = find_events(dense_times, signal[dense_times], duration, "x", params, 500)
    assert event_spans(dense) == [(9000, 30_000)]
    assert _within_one_step(find_events(times, scores, duration, "x", params, 500), dense)


def test_continuing_spans_decodes_on_where_an_event_runs_past_a_low_keyframe():
    keys = np.arange(0, 20_000, 2000)
    times = np.concatenate((keys[keys < 6000], np.arange(6000, 12_000, 500), keys[keys >= 12_000]))
    scores = np.where((times >= 7000) & (times < 12_000), 0.9, 0.05)
    follow = lambda spans, decoded=None: coarse.continuing_spans(  # noqa: E731
        spans, times, scores, keys, 20_000, 0.5, decoded or spans
    )
    # The last dense sample (11.5 s) is high, the keyframe at 12 s is not: decode 12-14 s.
    assert follow([(6000, 12_000)]) == [(12_000, 14_000)]
    # Part of it decoded already (another stretch from 13 s): only what is left.
    assert follow([(6000, 12_000)], [(6000, 12_000), (13_000, 15_000)]) == [(12_000, 13_000)]
    # The keyframe at 12 s scores high too: the run goes on in keyframe samples, nothing to add.
    high_key = scores.copy()
    high_key[times == 12_000] = 0.9
    assert coarse.continuing_spans([(6000, 12_000)], times, high_key, keys, 20_000, 0.5, [(6000, 12_000)]) == []
    # Two keyframe intervals at once (a later round), cut at the video's end.
    assert follow([(6000, 12_000)], [(6000, 12_000)]) == [(12_000, 14_000)]
    assert coarse.continuing_spans(
        [(6000, 12_000)], times, scores, keys, 20_000, 0.5, [(6000, 12_000)], intervals=2
    ) == [(12_000, 16_000)]
    assert coarse.continuing_spans(
        [(6000, 12_000)], times, scores, keys, 20_000, 0.5, [(6000, 12_000)], intervals=9
    ) == [(12_000, 20_000)]
    # A keyframe a millisecond after a sampling time: its own sample decides, not the dense one before it.
    near_keys = np.array([0, 2000, 4001, 6000])
    near_times = np.array([*range(0, 4001, 500), 4001, 6000])
    near_scores = np.array([0.9] * 9 + [0.05, 0.05])
    assert coarse.continuing_spans([(0, 4001)], near_times, near_scores, near_keys, 8000, 0.5, [(0, 4001)]) == [
        (4001, 6000)
    ]
    # The event ended inside the stretch, or the stretch ends the video: nothing.
    ended = np.where((times >= 7000) & (times < 10_000), 0.9, 0.05)
    assert coarse.continuing_spans([(6000, 12_000)], times, ended, keys, 20_000, 0.5, [(6000, 12_000)]) == []
    assert coarse.continuing_spans([(6000, 12_000)], times, scores, keys, 12_000, 0.5, [(6000, 12_000)]) == []


def _two_class(values: np.ndarray) -> np.ndarray:
    return np.stack([1 - values, values], axis=1).astype(np.float32)


def _refine_on(signal, keys, duration_ms, *, candidate, options=None, rounds=None):
    """``coarse.refine`` over ``signal(times)`` sampled every 500 ms, its dense decoding answered from it
    (each round's stretches appended to ``rounds``); (times, highlight scores, decoded stretches)."""
    dense_times = np.arange(0, duration_ms, 500)

    def decode_spans(spans):
        if rounds is not None:
            rounds.append(spans)
        inside = np.any([(dense_times >= lo) & (dense_times < hi) for lo, hi in spans], axis=0)
        return dense_times[inside], _two_class(signal(dense_times[inside]))

    times, probs, spans = coarse.refine(
        keys, _two_class(signal(keys)), ("background", "x"), duration_ms, 2.0, options or coarse.CoarseOptions(),
        candidate=candidate, interior=0.5, decode=decode_spans,
    )  # fmt: skip
    return times, probs[:, 1], spans


def test_refine_follows_an_event_past_a_keyframe_that_dips():
    # High from 7 s to 13.8 s but for the frame at 12 s, which is a keyframe: the run of candidate keyframes
    # (8 and 10 s) is refined from 6 to 12 s, and the event's last 1.5 s lie beyond it.
    duration, keys, dense_times = 30_000, np.arange(0, 30_000, 2000), np.arange(0, 30_000, 500)
    signal = np.full(duration, 0.02)
    signal[7000:13_800] = 0.9
    signal[12_000:12_100] = 0.1
    params = EventParams(threshold=0.5, merge_gap_ms=1000, min_length_ms=0, pad_before_ms=0, pad_after_ms=0)
    dense = find_events(dense_times, signal[dense_times], duration, "x", params, 500)
    assert event_spans(dense) == [(7000, 14_000)]
    found = {}
    for follow in (False, True):
        options = coarse.CoarseOptions(follow_edges=follow)
        times, scores, spans = _refine_on(signal.__getitem__, keys, duration, candidate=0.25, options=options)
        found[follow] = (event_spans(find_events(times, scores, duration, "x", params, 500)), spans)
    assert found[False] == ([(7000, 12_000)], [(6000, 12_000)])
    # Followed: 12-14 s ends high too (13.5 s), so the next two intervals, 14-18 s, are decoded: it has ended.
    assert found[True] == ([(7000, 14_000)], [(6000, 18_000)])


def test_refine_follows_a_long_event_whose_keyframes_all_score_low_in_a_few_rounds():
    # Every keyframe low, every other sample high from 5 s to 91 s (a model that reads keyframes differently):
    # nothing is a candidate but the stretch the sparse keyframes at the start force.  The follow-up
    # doubles each round: 1, 2, 4, 8, 16, 32 keyframe intervals.
    duration, keys = 100_000, np.concatenate(([0, 6000], np.arange(8000, 100_000, 2000)))

    def value(t):
        return np.where(np.isin(t, keys) | (t < 5000) | (t >= 91_000), 0.02, 0.9)

    rounds: list = []
    times, scores, spans = _refine_on(value, keys, duration, candidate=0.5, rounds=rounds)
    assert rounds[0] == [(0, 6000)]  # the 6 s gap without a keyframe
    assert [hi - lo for ((lo, hi),) in rounds[1:]] == [2000, 4000, 8000, 16_000, 32_000, 32_000]
    assert spans == [(0, 100_000)]  # the last round is cut at the video's end
    params = EventParams(threshold=0.5, merge_gap_ms=1000, min_length_ms=0, pad_before_ms=0, pad_after_ms=0)
    assert event_spans(find_events(times, scores, duration, "x", params, 500)) == [(5000, 91_000)]


def test_refine_decodes_what_either_reading_asks_for_and_keeps_the_pictures_scores():
    # The picture scores 0.1 everywhere; the score the events read (a sound combiner's) is high from 9 to 13 s.
    duration, keys, dense_times = 30_000, np.arange(0, 30_000, 2000), np.arange(0, 30_000, 500)

    def decoded(spans):
        inside = np.any([(dense_times >= lo) & (dense_times < hi) for lo, hi in spans], axis=0)
        return dense_times[inside], _two_class(np.full(int(inside.sum()), 0.1))

    def combined(times, probs):
        return _two_class(np.where((times >= 9000) & (times < 13_000), 0.9, probs[:, 1]))

    common = dict(candidate=0.5, interior=0.5, decode=decoded)
    key_probs = _two_class(np.full(len(keys), 0.1))
    args = (keys, key_probs, ("background", "x"), duration, 2.0, coarse.CoarseOptions())
    assert coarse.refine(*args, **common)[2] == []
    times, probs, spans = coarse.refine(*args, **common, also=coarse.Reading(combined, 0.6, 0.8))
    assert spans == [(8000, 14_000)]  # around the keyframes at 10 and 12 s
    assert np.allclose(probs[:, 1], 0.1)  # the picture's scores, to be combined once for the whole scan
    assert {8000, 8500, 13_500} <= set(times.tolist())
    # What the picture asks for is decoded as well (here around 20 s), whatever the second reading says.
    key_probs[keys == 20_000] = [0.2, 0.8]
    assert coarse.refine(*args, **common, also=coarse.Reading(combined, 0.6, 0.8))[2] == [
        (8000, 14_000),
        (18_000, 22_000),
    ]
    assert coarse.refine(*args, **common)[2] == [(18_000, 22_000)]


def _within_one_step(found, dense, step=500) -> bool:
    return len(found) == len(dense) and all(
        abs(a.start_ms - b.start_ms) <= step and abs(a.end_ms - b.end_ms) <= step for a, b in zip(found, dense)
    )


def test_spans_start_on_the_sampling_grid():
    assert coarse.grid_period_ms(2.0) == 500
    assert coarse.grid_period_ms(3.0) == 1000  # 333.3 ms steps: every third one is a whole ms
    assert coarse.grid_period_ms(0.5) == 2000
    assert coarse.align_spans([(1001, 5000), (6100, 6200), (8000, 9000)], 2.0) == [(1500, 5000), (8000, 9000)]


def test_merge_samples_keeps_dense_samples_inside_spans_and_keyframes_elsewhere():
    key_t = np.array([0, 2000, 4000, 6000])
    key_p = np.array([[1, 0], [0.9, 0.1], [0.2, 0.8], [1, 0]], dtype=np.float32)
    fine_t = np.array([2000, 2500, 3000, 3500, 4000, 4500])
    fine_p = np.tile(np.array([[0.5, 0.5]], np.float32), (6, 1))
    times, probs = coarse.merge_samples(key_t, key_p, [(2000, 5000)], fine_t, fine_p)
    assert times.tolist() == [0, 2000, 2500, 3000, 3500, 4000, 4500, 6000]
    assert probs[times.tolist().index(4000)].tolist() == [0.5, 0.5]  # the dense sample wins at a shared time
    assert probs[0].tolist() == [1, 0] and probs[-1].tolist() == [1, 0]


def test_interior_threshold_is_the_models_event_threshold():
    from dataclasses import replace

    from autotosis.detect.scan import interior_threshold

    info = Redness().info
    assert interior_threshold(ScanOptions(), info) == 0.5
    assert interior_threshold(ScanOptions(), replace(info, events={"threshold": 0.8, "min_length_ms": 1000})) == 0.8
    chosen = ScanOptions(coarse=coarse.CoarseOptions(interior_threshold=0.9))
    assert interior_threshold(chosen, replace(info, events={"threshold": 0.8})) == 0.9


def test_candidate_level_is_three_quarters_of_the_models_event_threshold():
    from dataclasses import replace

    from autotosis.detect.scan import coarse_threshold

    info = Redness().info
    assert coarse_threshold(ScanOptions(), info) == 0.375
    # The calibrated event threshold counts, not the checkpoint's plain one.
    assert coarse_threshold(ScanOptions(), replace(info, events={"threshold": 0.96})) == pytest.approx(0.72)
    chosen = ScanOptions(coarse=coarse.CoarseOptions(threshold=0.1))
    assert coarse_threshold(chosen, replace(info, events={"threshold": 0.96})) == 0.1


# A model calibrated as `train` calibrates (its threshold adapts to each video): the training clips' ordinary
# moments scored 0.05 out of fold.
_CALIBRATED = {"threshold": 0.95, "smooth_ms": 0, "min_length_ms": 1000, "merge_gap_ms": 2000, "negative_median": 0.05}


def _logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


def test_coarse_levels_rise_with_the_threshold_adapted_to_the_video():
    from dataclasses import replace

    from autotosis.detect.adapt import adapt_threshold
    from autotosis.detect.scan import coarse_levels

    info = replace(Redness().info, events=_CALIBRATED)
    keys = np.arange(0, 10 * 60_000, 2000)
    calm = _two_class(np.full(len(keys), 0.4))  # an unfamiliar room: ordinary moments score 0.4
    candidate, interior = coarse_levels(ScanOptions(), info, keys, calm, 10 * 60_000)
    adapted, _ = adapt_threshold(keys, calm[:, 1], 10 * 60_000, replace(EventParams(threshold=0.95), adapt_from=0.05))
    assert interior == pytest.approx(adapted.threshold) and interior > 0.97  # the threshold its events will use
    # The candidate level keeps its margin under the threshold, in logits: three quarters of 0.95 before.
    assert _logit(interior) - _logit(candidate) == pytest.approx(_logit(0.95) - _logit(0.75 * 0.95))
    assert candidate > 0.85
    # Unchanged: a video the model sees as it saw its training clips, a short video, the rule switched off,
    # an uncalibrated model; a level set by hand stays as set.
    plain = (0.75 * 0.95, 0.95)
    assert coarse_levels(ScanOptions(), info, keys, _two_class(np.full(len(keys), 0.02)), 10 * 60_000) == plain
    assert coarse_levels(ScanOptions(), info, keys[:100], calm[:100], 200_000) == plain
    off = ScanOptions(coarse=coarse.CoarseOptions(adapt_levels=False))
    assert coarse_levels(off, info, keys, calm, 10 * 60_000) == plain
    uncalibrated = replace(info, events={k: v for k, v in _CALIBRATED.items() if k != "negative_median"})
    assert coarse_levels(ScanOptions(), uncalibrated, keys, calm, 10 * 60_000) == plain
    by_hand = ScanOptions(coarse=coarse.CoarseOptions(threshold=0.3))
    assert coarse_levels(by_hand, info, keys, calm, 10 * 60_000) == (0.3, pytest.approx(adapted.threshold))
    # An event threshold set by hand: the candidate level follows it (three quarters), and neither is raised.
    given = ScanOptions(coarse=coarse.CoarseOptions(interior_threshold=0.6))
    assert coarse_levels(given, info, keys, calm, 10 * 60_000) == (pytest.approx(0.45), 0.6)


def test_scan_options_look_closely_at_what_a_given_threshold_can_reach():
    import argparse

    from autotosis.cli.options import scan_options
    from autotosis.detect.scan import coarse_threshold

    def options(**given):
        args = dict(fps=2.0, batch_size=16, no_cache=True, stall_timeout=60.0)
        return scan_options(argparse.Namespace(**args, **given))

    def rough(**given):
        return options(**given).coarse

    info = Redness().info
    assert rough() == coarse.CoarseOptions()
    assert rough(threshold=None, top_percent=None, coarse_threshold=None) == coarse.CoarseOptions()
    given = rough(threshold=0.6, coarse_threshold=None)
    assert (given.interior_threshold, given.adapt_levels) == (0.6, False)
    assert coarse_threshold(options(threshold=0.6, coarse_threshold=None), info) == pytest.approx(0.45)
    assert coarse_threshold(options(threshold=0.6, coarse_threshold=0.2), info) == 0.2
    ranked = rough(threshold=None, top_percent=5.0)
    assert (ranked.threshold, ranked.interior_threshold, ranked.adapt_levels) == (None, None, False)


def test_coarse_scan_of_an_unfamiliar_room_decodes_less_and_finds_the_dense_events(video_factory):
    # 310 s, two frames a second, a keyframe every 2 s.  The stand-in model scores this "room" high
    # throughout (a red bar over 40% of the picture), look-alikes higher (80% red, 40-50 s and 190-200 s),
    # and the two highlights highest (all red, 100-108 s and 250-256 s).
    from dataclasses import replace

    from autotosis.detect.pipeline import detect_events

    box = "x=0:y=0:w=iw*{share}:h=ih"
    filters = ",".join(
        [
            f"drawbox={box.format(share=0.4)}:color=red:t=fill",
            red_between(40, 50, box.format(share=0.8)),
            red_between(190, 200, box.format(share=0.8)),
            red_between(100, 108),
            red_between(250, 256),
        ]
    )
    codec = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "4"]
    path = video_factory(
        "room.mp4", duration=310, size="64x36", fps="2", source="color=c=gray", extra_video_filters=filters,
        codec=codec, audio=False,
    )  # fmt: skip

    def calibrated() -> Redness:
        predictor = Redness()
        predictor.info = replace(predictor.info, events=_CALIBRATED)
        return predictor

    dense = scan_with(path, calibrated(), ScanOptions(mode="dense"))
    rough = scan_with(path, calibrated(), ScanOptions(mode="coarse"))
    before = ScanOptions(mode="coarse", coarse=coarse.CoarseOptions(adapt_levels=False))
    plain = scan_with(path, calibrated(), before)
    found = detect_events(dense)
    assert found.adaptation is not None and found.adaptation.threshold > 0.97
    spans = event_spans(found.events)  # the highlights, with the default padding
    assert len(spans) == 2 and spans[0][0] <= 100_000 < 108_000 <= spans[0][1] < 120_000
    assert 200_000 < spans[1][0] <= 250_000 < 256_000 <= spans[1][1]
    assert event_spans(detect_events(rough).events) == event_spans(found.events)
    assert event_spans(detect_events(plain).events) == event_spans(found.events)
    # The look-alikes (0.8) are candidates at the calibrated threshold's level (0.71), not at the raised one.
    assert plain.scan.coarse.threshold == pytest.approx(0.75 * 0.95)
    assert rough.scan.coarse.threshold > 0.85
    assert any(lo < 45_000 < hi for lo, hi in plain.scan.coarse.spans_ms)
    assert not any(lo < 45_000 < hi for lo, hi in rough.scan.coarse.spans_ms)
    assert rough.scan.coarse.refined_fraction < plain.scan.coarse.refined_fraction


def test_auto_mode_depends_on_length():
    options = ScanOptions(mode="auto", auto_coarse_ms=60_000)
    assert resolve_mode(options, 59_999) == "dense"
    assert resolve_mode(options, 60_000) == "coarse"
    assert resolve_mode(ScanOptions(mode="dense"), 10**9) == "dense"


# --------------------------------------------------------------------------- decoding


def test_coarse_scan_finds_the_dense_events_and_decodes_less(video_factory):
    # 24 s, a keyframe every second (-g 25), red from 9.2 s to 13.6 s.
    path = video_factory(
        "vod.mp4", duration=24, fps="25", source="color=c=gray", extra_video_filters=red_between(9.2, 13.6), audio=False
    )
    dense_predictor, coarse_predictor = Redness(), Redness()
    dense = scan_with(path, dense_predictor, ScanOptions(mode="dense"))
    rough = scan_with(path, coarse_predictor, ScanOptions(mode="coarse"))
    assert red_events(dense) == [(9500, 14_000)]
    assert red_events(rough) == red_events(dense)
    assert rough.scan.mode == "coarse" and dense.scan.mode == "dense"
    spans = rough.scan.coarse.spans_ms
    # One keyframe interval (1 s) either side of the first and the last red keyframe (10 s and 13 s),
    # joined into one decoder run (they are less than join_ms apart); its last sample (13.5 s) is red, so
    # the interval after it is decoded too, in case the red runs on past the keyframe at 14 s.
    assert spans == ((9000, 15_000),)
    # Where both passes have a sample, they saw the same frame.
    common, i, j = np.intersect1d(dense.times_ms, rough.times_ms, return_indices=True)
    assert len(common) == len(rough.times_ms)
    np.testing.assert_array_equal(dense.probs[i], rough.probs[j])
    assert rough.scan.coarse.refined_fraction == pytest.approx(6 / 24, abs=0.01)  # decoded densely
    assert coarse_predictor.frames < dense_predictor.frames
    assert np.all(np.diff(rough.times_ms) > 0)


def test_coarse_scan_of_a_stream_with_b_frames_skips_unreferenced_frames_and_finds_the_dense_events(
    video_factory, monkeypatch
):
    # A typical stream's encoding: B-frames between references (half the frames no other frame needs),
    # a keyframe every second at 30 fps; red over 70% of a noisy picture from 5.3 s to 8.7 s and from
    # 14.2 s to 15.1 s (noise: a still picture would make the refinement decode every frame, see test_media).
    codec = ["-c:v", "libx264", "-preset", "veryfast", "-bf", "3", "-g", "30", "-pix_fmt", "yuv420p"]
    box = "x=0:y=0:w=iw*0.7:h=ih"
    path = video_factory(
        "vod.mp4",
        duration=20,
        size="64x36",
        fps="30",
        extra_video_filters=f"noise=alls=30:allf=t,{red_between(5.3, 8.7, box)},{red_between(14.2, 15.1, box)}",
        codec=codec,
        audio=False,
    )
    specs: list[decode.DecodeSpec] = []
    real = decode.iter_frames
    monkeypatch.setattr(decode, "iter_frames", lambda video, spec, **kw: specs.append(spec) or real(video, spec, **kw))
    dense = scan_with(path, Redness(), ScanOptions(mode="dense"))
    rough = scan_with(path, Redness(), ScanOptions(mode="coarse"))
    assert red_events(dense) == [(5500, 9000), (14_500, 15_500)]
    found = red_events(rough)
    assert len(found) == 2
    for (start, end), (dense_start, dense_end) in zip(found, red_events(dense)):
        assert abs(start - dense_start) <= 500 and abs(end - dense_end) <= 500
    refined = [spec for spec in specs if spec.start_ms is not None]
    assert refined and all(spec.skip == "bidir" for spec in refined)  # x264 veryfast: no frame refers to a B-frame
    assert not any(spec.skip for spec in specs if spec.start_ms is None)  # dense and keyframe passes


def test_coarse_scan_refines_only_event_edges_and_finds_the_dense_events(video_factory):
    # 40 s at 10 fps, a keyframe every second (-g 10): red at the very start, a 0.7 s flash over
    # the keyframe at 8 s, a long event with a dip (a 30% red bar, below the event threshold and the
    # candidate level) over the keyframe at 22 s, red to the very end.  Boundaries fall between frames.
    full = "x=0:y=0:w=iw:h=ih"
    filters = ",".join(
        [
            red_between(0, 3.25),
            red_between(7.65, 8.35),
            red_between(12.25, 21.75),
            red_between(21.75, 22.75, "x=0:y=0:w=iw*0.3:h=ih"),
            red_between(22.75, 30.65),
            red_between(35.25, 40, full),
        ]
    )
    path = video_factory(
        "vod.mp4",
        duration=40,
        size="64x36",
        fps="10",
        source="color=c=gray",
        extra_video_filters=filters,
        codec=["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "10"],
        audio=False,
    )
    dense = scan_with(path, Redness(), ScanOptions(mode="dense"))
    rough = scan_with(path, Redness(), ScanOptions(mode="coarse"))
    assert red_events(dense) == [(0, 3500), (8000, 8500), (12_500, 22_000), (23_000, 31_000), (35_500, 40_000)]
    for rules in (
        {},
        dict(min_length_ms=1000, merge_gap_ms=2000),
        dict(smooth_ms=1000, merge_gap_ms=1000),
        dict(threshold=0.7, release=0.2, smooth_ms=2000),
    ):
        found, expected = red_events(rough, **rules), red_events(dense, **rules)
        assert len(found) == len(expected), rules
        for (start, end), (dense_start, dense_end) in zip(found, expected):
            assert abs(start - dense_start) <= 500 and abs(end - dense_end) <= 500, rules
    # Decoded densely: the edges of each run of red keyframes, one keyframe interval either side
    # (the ones at 0-4 s and 35-40 s are joined: less than join_ms apart), and around the dip at 22 s; the
    # last sample of 29-31 s (30.5 s) is red, so 31-32 s is decoded after it (the red might run on).
    spans = list(rough.scan.coarse.spans_ms)
    assert spans == [(0, 4000), (7000, 9000), (12_000, 14_000), (20_000, 24_000), (29_000, 32_000), (35_000, 40_000)]
    # The old rule (every candidate keyframe refined) would have decoded 12-31 s whole.
    keyframes = list(decode.iter_frames(path, decode.DecodeSpec(size=16, fps=None, keyframes_only=True)))
    key_times = np.concatenate([b.times_ms for b in keyframes])
    key_probs = Redness().predict(np.concatenate([b.frames for b in keyframes]))
    assert key_times.tolist() == list(range(0, 40_000, 1000))
    old = coarse.align_spans(
        coarse.refine_spans(key_times, coarse.highlight_score(key_probs, ("background", "red")), 40_000, 0.125), 2.0
    )
    assert old == [(0, 4000), (7000, 9000), (12_000, 31_000), (35_000, 40_000)]
    old_fraction = sum(hi - lo for lo, hi in old) / 40_000
    assert rough.scan.coarse.refined_fraction == pytest.approx(20 / 40, abs=0.01)  # was 30 / 40
    assert rough.scan.coarse.refined_fraction < old_fraction
    # Where both scans have a sample, they saw the same frame.
    common, i, j = np.intersect1d(dense.times_ms, rough.times_ms, return_indices=True)
    assert len(common) == len(rough.times_ms)
    np.testing.assert_array_equal(dense.probs[i], rough.probs[j])


def test_coarse_scan_follows_an_event_past_a_keyframe_that_is_not_red(video_factory):
    # Red from 12.25 s to 16.9 s but for the frame at 16 s, a keyframe (one a second): the run of red keyframes
    # ends at 15 s, and the event's last half second lies beyond the stretch refined around it.
    path = video_factory(
        "dip.mp4",
        duration=30,
        size="64x36",
        fps="10",
        source="color=c=gray",
        extra_video_filters=red_between(12.25, 16.9) + ",drawbox=color=gray:t=fill:enable='between(t,15.99,16.05)'",
        codec=["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "10", "-sc_threshold", "0"],
        audio=False,
    )
    dense = scan_with(path, Redness(), ScanOptions(mode="dense"))
    assert red_events(dense) == [(12_500, 16_000), (16_500, 17_000)]
    assert red_events(dense, merge_gap_ms=1000) == [(12_500, 17_000)]
    rough = scan_with(path, Redness(), ScanOptions(mode="coarse"))
    before = scan_with(path, Redness(), ScanOptions(mode="coarse", coarse=coarse.CoarseOptions(follow_edges=False)))
    assert red_events(rough) == red_events(dense)
    assert red_events(before) == [(12_500, 16_000)]  # the rule before: the end of the event was lost
    assert list(rough.scan.coarse.spans_ms) == [(12_000, 19_000)]  # 12-16 s, then 16-17 s and 17-19 s followed
    assert list(before.scan.coarse.spans_ms) == [(12_000, 16_000)]


@pytest.mark.parametrize("piece_ms", [5000, 7300])
def test_keyframe_pass_in_pieces_side_by_side_gives_the_same_scan(video_factory, monkeypatch, piece_ms):
    """The keyframe pass decodes pieces of the video two at a time: every keyframe once, the one on a
    boundary included (5000: boundaries fall on keyframes; 7300: between them), and the whole scan is
    the same as with one piece and one decoder."""
    from autotosis.detect import scan as scan_module

    path = video_factory(
        "vod.mp4",
        duration=30,
        size="64x36",
        fps="10",
        source="color=c=gray",
        extra_video_filters=f"{red_between(4.65, 9.35)},{red_between(19.25, 25.0)}",
        codec=["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "10"],
        audio=False,
    )
    whole = scan_with(path, Redness(), ScanOptions(mode="coarse", coarse=coarse.CoarseOptions(decoders=1)))
    specs: list[decode.DecodeSpec] = []
    real = decode.iter_frames
    monkeypatch.setattr(decode, "iter_frames", lambda video, spec, **kw: specs.append(spec) or real(video, spec, **kw))
    monkeypatch.setattr(scan_module, "KEYFRAME_CHUNK_MS", piece_ms)
    pieces = scan_with(path, Redness(), ScanOptions(mode="coarse", coarse=coarse.CoarseOptions(decoders=2)))
    key_specs = [spec for spec in specs if spec.keyframes_only]
    assert len(key_specs) == -(-30_000 // piece_ms)
    assert all(spec.threads == 1 for spec in specs)  # two decoders, one thread each
    assert whole.scan.coarse.keyframes == pieces.scan.coarse.keyframes == 30
    assert whole.scan.coarse.spans_ms == pieces.scan.coarse.spans_ms
    np.testing.assert_array_equal(whole.times_ms, pieces.times_ms)
    np.testing.assert_array_equal(whole.probs, pieces.probs)
    assert red_events(pieces) == [(5000, 9500), (19_500, 25_500)]


def test_a_long_vod_is_cut_in_at_most_keyframe_pieces_pieces():
    """Each piece is an ffmpeg run that reads the file's index again: a 3-hour VOD is cut in 24 pieces of 7.5
    minutes, not 90 of 2; the pieces cover a video whole, each reaching a second into the next."""
    from autotosis.detect.scan import KEYFRAME_PIECES, keyframe_pieces

    hours = keyframe_pieces(3 * 3600 * 1000)
    assert len(hours) == KEYFRAME_PIECES == 24
    assert [lo for lo, _ in hours] == list(range(0, 3 * 3600 * 1000, 450_000))
    assert all(hi == lo + 451_000 for lo, hi in hours[:-1]) and hours[-1][1] is None
    assert keyframe_pieces(600_000) == [
        (0, 121_000),
        (120_000, 241_000),
        (240_000, 361_000),
        (360_000, 481_000),
        (480_000, None),
    ]
    assert keyframe_pieces(90_000) == [(0, None)]


def test_drop_repeats_keeps_one_of_each_frame_two_runs_delivered():
    times = np.array([0, 1000, 2000, 2001, 3000, 2999, 4000])
    probs = np.arange(len(times) * 2, dtype=np.float32).reshape(-1, 2)
    kept, kept_probs = coarse.drop_repeats(times, probs)
    assert kept.tolist() == [0, 1000, 2000, 2999, 4000]  # 2001 and 3000: the same frames again
    assert kept_probs.tolist() == probs[[0, 1, 2, 5, 6]].tolist()


def test_variable_frame_rate_event_times_are_exact_within_one_step(video_factory):
    # 5 fps for the first 6 s (only every 5th frame kept), 25 fps after; red from 3.1 s to
    # 8.4 s. Times taken from a frame counter at the average rate (15 fps) would be
    # seconds off; presentation timestamps put both edges within one sampling step.
    path = video_factory(
        "vfr.mkv",
        duration=12,
        fps="25",
        source="color=c=gray",
        extra_video_filters=red_between(3.1, 8.4) + ",select='gte(t,6)+not(mod(n,5))'",
        codec=["-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-fps_mode", "vfr"],
        audio=False,
    )
    frame_times = np.concatenate([b.times_ms for b in decode.iter_frames(path, decode.DecodeSpec(size=8, fps=None))])
    assert frame_times[:3].tolist() == [0, 200, 400] and frame_times[-2:].tolist() == [11_920, 11_960]
    for mode in ("dense", "coarse"):
        scores = scan_with(path, Redness(), ScanOptions(mode=mode, fps=2.0))
        ((start, end),) = red_events(scores)
        assert 3100 <= start <= 3100 + 500, mode  # first red frame is shown from 3.2 s
        assert 8400 <= end <= 8400 + 500, mode
        assert scores.step_ms == 500


def _rotate(path: Path, out: Path, degrees: int) -> Path:
    subprocess.run(
        [
            FFMPEG,
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-i",
            str(path),
            "-c",
            "copy",
            "-metadata:s:v:0",
            f"rotate={degrees}",
            str(out),
        ],
        check=True,
    )
    return out


def test_rotated_video_crops_the_displayed_frame(tmp_path: Path, video_factory):
    # Stored 160x90 with red in its top-left quarter, flagged as rotated by 90 degrees.
    stored = video_factory(
        "stored.mp4",
        duration=2,
        fps="25",
        source="color=c=gray",
        extra_video_filters="drawbox=x=0:y=0:w=80:h=45:color=red:t=fill",
        audio=False,
    )
    rotated = _rotate(stored, tmp_path / "rotated.mp4", 90)
    info = probe.probe(rotated)
    assert (info.width, info.height) == (90, 160) and info.rotation in (90, 270)
    # Where is the red in the picture a player shows?  Find it in a full displayed frame...
    shown = decode.grab_frame(info, 500, width=90)
    red = (shown[..., 0] > 150) & (shown[..., 1] < 90)
    ys, xs = np.nonzero(red)
    quarter = (int(xs.mean() >= 45), int(ys.mean() >= 80))
    assert quarter != (0, 0)  # not where it is stored: the rotation was applied
    # ...then the scan's crop of that quarter of the displayed frame must be the red one.
    x0, y0 = quarter[0] * 0.5, quarter[1] * 0.5
    region = (x0, y0, x0 + 0.5, y0 + 0.5)
    for mode in ("dense", "coarse"):
        scores = scan_with(rotated, Redness(crop=region), ScanOptions(mode=mode))
        assert scores.column("red").min() > 0.9, mode
    other = (0.5 - x0, 0.5 - y0, 1 - x0, 1 - y0)
    assert scan_with(rotated, Redness(crop=other), ScanOptions(mode="dense")).column("red").max() < 0.1


def test_non_square_pixels_give_the_same_picture_as_square_ones(video_factory):
    # The same 16:9 picture stored at 160x90 (square pixels) and at 80x90 with 2:1 pixels.
    square = video_factory("square.mp4", duration=2, fps="25", audio=False)
    wide = video_factory("wide.mp4", duration=2, fps="25", audio=False, extra_video_filters="scale=80:90,setsar=2")
    assert probe.probe(wide).sar == 2 and probe.probe(wide).display_aspect == pytest.approx(16 / 9)
    spec = decode.DecodeSpec(size=32, fps=2.0, region=(0.25, 0.0, 0.75, 1.0))
    a = np.concatenate([b.frames for b in decode.iter_frames(square, spec)]).astype(np.int16)
    b = np.concatenate([b.frames for b in decode.iter_frames(wide, spec)]).astype(np.int16)
    assert a.shape == b.shape
    # Only the horizontal resolution differs; a crop taken in the wrong pixel units would not come close.
    assert np.abs(a - b).mean() < 12
    shifted = np.concatenate(
        [f.frames for f in decode.iter_frames(square, decode.DecodeSpec(size=32, fps=2.0, region=(0.0, 0.0, 0.5, 1.0)))]
    )
    assert np.abs(shifted.astype(np.int16) - b).mean() > 2 * np.abs(a - b).mean()


# --------------------------------------------------------------------------- checkpoint, cache, CLI


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    import torch

    from autotosis.model.model import DEFAULT_MEAN, DEFAULT_STD, ModelInfo, build_model, save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    info = ModelInfo(
        task="red",
        classes=("background", "red"),
        input_size=32,
        mean=DEFAULT_MEAN,
        std=DEFAULT_STD,
        crop=None,
        threshold=0.5,
    )
    save_checkpoint(path, build_model(2, "none"), info)
    return path


def test_cache_key_includes_the_mode(tmp_path: Path, video_factory, checkpoint: Path, monkeypatch):
    path = video_factory("vod.mp4", duration=6, fps="25", audio=False)
    cache = tmp_path / "cache"
    rough = scan_video(path, checkpoint, ScanOptions(mode="coarse", cache_dir=cache))
    assert rough.scan.mode == "coarse" and len(list(cache.glob("*.npz"))) == 1
    dense = scan_video(path, checkpoint, ScanOptions(mode="dense", cache_dir=cache))
    assert dense.scan.mode == "dense" and len(list(cache.glob("*.npz"))) == 2
    assert len(dense.times_ms) == 12
    # Both are now cached: neither decodes again, and each gets its own scores back.

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(decode, "iter_frames", no_decoding)
    assert scan_video(path, checkpoint, ScanOptions(mode="coarse", cache_dir=cache)).scan.mode == "coarse"
    assert scan_video(path, checkpoint, ScanOptions(mode="dense", cache_dir=cache)).scan.mode == "dense"
    # A coarse request on a video scanned only densely re-uses the (finer) dense scores.
    for entry in cache.glob("*.npz"):
        with np.load(entry) as stored:
            mode = json.loads(str(stored["meta"]))["extra"]["mode"]
        if mode == "coarse":
            entry.unlink()
    assert scan_video(path, checkpoint, ScanOptions(mode="coarse", cache_dir=cache)).scan.mode == "dense"


def test_cached_scores_of_another_length_are_not_served(tmp_path: Path, video_factory, checkpoint: Path, monkeypatch):
    # Scores cached when the file was read as another length (before the probe took the picture's own length)
    # end at the wrong time: the video is scanned again and the entry replaced.
    from dataclasses import replace as replaced

    path = video_factory("vod.mp4", duration=6, fps="25", audio=False)
    cache = tmp_path / "cache"
    first = scan_video(path, checkpoint, ScanOptions(mode="dense", cache_dir=cache))
    real_probe = probe.probe
    monkeypatch.setattr(probe, "probe", lambda video: replaced(real_probe(video), duration_ms=6600))
    decoded = []
    real_iter = decode.iter_frames
    monkeypatch.setattr(decode, "iter_frames", lambda *a, **k: decoded.append(1) or real_iter(*a, **k))
    again = scan_video(path, checkpoint, ScanOptions(mode="dense", cache_dir=cache))
    assert decoded and again.duration_ms == 6600 and first.duration_ms != 6600
    decoded.clear()
    assert scan_video(path, checkpoint, ScanOptions(mode="dense", cache_dir=cache)).duration_ms == 6600
    assert not decoded  # the new entry is served


def test_coarse_cache_key_includes_the_refine_rule(tmp_path: Path, video_factory, checkpoint: Path):
    # A coarse entry made with another rule (here the old one, every candidate refined) is not served.
    path = video_factory("vod.mp4", duration=6, fps="25", audio=False)
    cache = tmp_path / "cache"
    old_rule = ScanOptions(mode="coarse", cache_dir=cache, coarse=coarse.CoarseOptions(edges_only=False, join_ms=0))
    scan_video(path, checkpoint, old_rule)
    scan_video(path, checkpoint, ScanOptions(mode="coarse", cache_dir=cache))
    assert len(list(cache.glob("*.npz"))) == 2
    key = coarse.CoarseOptions().as_key(0.125, 0.5)
    assert key["edges_only"] is True and key["interior_threshold"] == 0.5 and key["join_ms"] == 2500
    assert key["follow_edges"] is True


def test_cli_scan_mode_option(tmp_path: Path, video_factory, checkpoint: Path, monkeypatch, capsys):
    from autotosis.cli import main

    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    path = video_factory("my vod.mp4", duration=6, fps="25", audio=False)
    out = tmp_path / "s.json"
    assert main(["-q", "scan", str(path), "--model", str(checkpoint), "--mode", "coarse", "-o", str(out)]) == 0
    document = json.loads(out.read_text())
    assert document["extra"]["mode"] == "coarse"
    assert document["extra"]["coarse"]["keyframes"] == 6
    assert (
        main(["-q", "scan", str(path), "--model", str(checkpoint), "--mode", "fast", "-o", str(out)])
        == ExitStatus.USAGE
    )
    assert "invalid choice" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["dense", "coarse"])
def test_a_video_that_gives_no_picture_fails_the_scan_instead_of_scoring_nothing(mode, video_factory, monkeypatch):
    # ffmpeg may end without an error and without a picture; an empty score list would become a silent, empty
    # reel, so the scan names the file and says so.
    from autotosis.core.errors import MediaError

    path = video_factory("nothing.mp4", duration=12, size="64x36", audio=False)

    def no_frames(video, spec, **kwargs):
        yield from ()

    monkeypatch.setattr(decode, "iter_frames", no_frames)
    with pytest.raises(MediaError, match="no picture could be decoded") as caught:
        scan_with(path, Redness(), ScanOptions(mode=mode))
    assert caught.value.path == path
