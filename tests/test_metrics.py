"""Precision/recall per sample and per event, and average precision."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotosis.core.errors import DataError, UsageError
from autotosis.training.metrics import PRF, average_precision, event_prf, frame_prf, interval_iou, truth_at_times


def counts(prf: PRF) -> tuple[int, int, int]:
    return prf.tp, prf.fp, prf.fn


# --------------------------------------------------------------------------- PRF


@pytest.mark.parametrize(
    ("tp", "fp", "fn", "precision", "recall", "f1"),
    [
        (3, 1, 2, 0.75, 0.6, 2 * 0.75 * 0.6 / 1.35),
        (0, 0, 0, 1.0, 1.0, 1.0),  # nothing to find, nothing found: perfect
        (0, 2, 0, 0.0, 0.0, 0.0),  # false alarms where there is nothing
        (0, 0, 4, 0.0, 0.0, 0.0),  # found nothing of 4
        (5, 0, 0, 1.0, 1.0, 1.0),
    ],
)
def test_prf_from_counts(tp, fp, fn, precision, recall, f1):
    prf = PRF.from_counts(tp, fp, fn)
    assert (prf.precision, prf.recall) == (pytest.approx(precision), pytest.approx(recall))
    assert prf.f1 == pytest.approx(f1)
    assert counts(prf) == (tp, fp, fn)


# --------------------------------------------------------------------------- per sample


def test_frame_prf_perfect_none_and_partial():
    truth = np.array([0, 1, 1, 0, 1, 0], dtype=bool)
    assert frame_prf(truth.copy(), truth) == PRF(1.0, 1.0, 1.0, 3, 0, 0)
    nothing = frame_prf(np.zeros(6, bool), truth)
    assert (nothing.precision, nothing.recall, nothing.f1, counts(nothing)) == (0.0, 0.0, 0.0, (0, 0, 3))
    partial = frame_prf(np.array([1, 1, 0, 0, 0, 1], dtype=bool), truth)
    assert counts(partial) == (1, 2, 2)
    assert partial.precision == pytest.approx(1 / 3) and partial.recall == pytest.approx(1 / 3)


def test_frame_prf_skips_ignored_samples():
    truth = np.array([0, 1, 1, 0], dtype=bool)
    pred = np.array([1, 1, 0, 0], dtype=bool)
    assert counts(frame_prf(pred, truth)) == (1, 1, 1)
    assert counts(frame_prf(pred, truth, ignore=np.array([1, 0, 1, 0], dtype=bool))) == (1, 0, 0)


def test_frame_prf_accepts_zero_one_integers_and_rejects_mismatches():
    assert counts(frame_prf(np.array([1, 0]), np.array([1, 1]))) == (1, 0, 1)
    with pytest.raises(DataError, match="shape"):
        frame_prf(np.zeros(3, bool), np.zeros(4, bool))
    with pytest.raises(DataError, match="ignore has shape"):
        frame_prf(np.zeros(3, bool), np.zeros(3, bool), np.zeros(2, bool))
    with pytest.raises(DataError, match="boolean"):
        frame_prf(np.array([0.7, 0.2]), np.zeros(2, bool))


def test_truth_at_times_uses_half_open_spans_and_an_edge_band():
    times = np.array([0, 500, 999, 1000, 1400, 1500, 1999, 2000, 2600, 3000])
    truth, ignore = truth_at_times(times, [(1000, 2000), (3000, 3500)])
    assert truth.tolist() == [False, False, False, True, True, True, True, False, False, True]
    assert not ignore.any()  # band 0 ignores nothing
    _, ignore = truth_at_times(times, [(1000, 2000), (3000, 3500)], band_ms=500)
    # Strictly closer than 500 ms to 1000, 2000, 3000 or 3500 (1500 is exactly 500 from both edges).
    assert ignore.tolist() == [False, False, True, True, True, False, True, True, True, True]
    _, ignore = truth_at_times(times, [(1000, 2000)], band_ms=500)
    assert ignore.tolist() == [False, False, True, True, True, False, True, True, False, False]
    with pytest.raises(UsageError):
        truth_at_times(times, [], band_ms=-1)


def test_truth_at_times_without_spans_is_all_negative():
    truth, ignore = truth_at_times(np.arange(5) * 500, [], band_ms=500)
    assert not truth.any() and not ignore.any()


# --------------------------------------------------------------------------- per event


def test_interval_iou():
    a = np.array([[0, 10], [20, 30]])
    b = np.array([[5, 15], [0, 10], [40, 50]])
    assert interval_iou(a, b).tolist() == [[5 / 15, 1.0, 0.0], [0.0, 0.0, 0.0]]


def test_event_prf_perfect_and_empty_cases():
    spans = [(0, 1000), (5000, 7000)]
    assert event_prf(spans, spans) == PRF(1.0, 1.0, 1.0, 2, 0, 0)
    assert counts(event_prf([], spans)) == (0, 0, 2)
    assert counts(event_prf(spans, [])) == (0, 2, 0)
    assert event_prf([], []) == PRF(1.0, 1.0, 1.0, 0, 0, 0)


def test_event_prf_partial_overlaps():
    truth = [(0, 10_000), (20_000, 30_000), (40_000, 50_000)]
    predicted = [(5_000, 12_000), (31_000, 35_000), (41_000, 44_000)]
    prf = event_prf(predicted, truth, min_iou=0.1)
    # IoUs: 5/12 and 3/10 match; the second prediction touches nothing.
    assert counts(prf) == (2, 1, 1)
    assert prf.precision == pytest.approx(2 / 3) and prf.recall == pytest.approx(2 / 3)


def test_event_prf_iou_threshold():
    truth = [(0, 4000)]
    predicted = [(3000, 7000)]  # overlap 1000, union 7000: IoU 1/7
    assert counts(event_prf(predicted, truth, min_iou=0.14)) == (1, 0, 0)
    assert counts(event_prf(predicted, truth, min_iou=0.15)) == (0, 1, 1)
    assert counts(event_prf([(0, 2000)], truth, min_iou=0.5)) == (1, 0, 0)  # IoU exactly 0.5 counts


def test_event_prf_matches_one_to_one_greedily_by_iou():
    # One long prediction over two truths matches only one of them.
    assert counts(event_prf([(0, 10_000)], [(0, 4000), (5000, 10_000)])) == (1, 0, 1)
    # Greedy by IoU: truth B (IoU 0.9 with P1) is taken first, so P2 takes truth A.
    truth = [(0, 1000), (1000, 11_000)]
    predicted = [(1000, 10_000), (0, 2000)]
    assert counts(event_prf(predicted, truth, min_iou=0.1)) == (2, 0, 0)


def test_event_prf_rejects_bad_input():
    with pytest.raises(UsageError, match="min_iou"):
        event_prf([(0, 1)], [(0, 1)], min_iou=0.0)
    with pytest.raises(DataError, match="predicted interval 2"):
        event_prf([(0, 1), (5, 5)], [(0, 1)])


# --------------------------------------------------------------------------- average precision


def brute_force_ap(scores: list[float], truth: list[bool]) -> float:
    """AP by definition: for each distinct threshold (high to low), recall gained x precision."""
    positives = sum(truth)
    if positives == 0:
        return 0.0
    values = [-math.inf if math.isnan(s) else s for s in scores]
    total, previous_recall = 0.0, 0.0
    for threshold in sorted(set(values), reverse=True):
        chosen = [t for s, t in zip(values, truth) if s >= threshold]
        precision = sum(chosen) / len(chosen)
        recall = sum(chosen) / positives
        total += (recall - previous_recall) * precision
        previous_recall = recall
    return total


def test_average_precision_hand_made():
    truth = np.array([1, 0, 1, 0], dtype=bool)
    assert average_precision(np.array([0.9, 0.8, 0.7, 0.6]), truth) == pytest.approx((1 + 2 / 3) / 2)
    assert average_precision(np.array([0.9, 0.1, 0.8, 0.2]), truth) == 1.0
    assert average_precision(np.array([0.1, 0.9, 0.2, 0.8]), truth) == pytest.approx((1 / 3 + 2 / 4) / 2)
    # All scores tied: one threshold, precision = share of positives.
    assert average_precision(np.full(4, 0.5), truth) == pytest.approx(0.5)


def test_average_precision_without_positives_or_samples_is_zero():
    assert average_precision(np.array([0.3, 0.9]), np.zeros(2, bool)) == 0.0
    assert average_precision(np.zeros(0), np.zeros(0, bool)) == 0.0


def test_average_precision_ranks_nan_last():
    value = average_precision(np.array([math.nan, 0.2, 0.9]), np.array([1, 0, 1], dtype=bool))
    assert value == pytest.approx((1 + 2 / 3) / 2)
    with pytest.raises(DataError, match="shape"):
        average_precision(np.zeros(3), np.zeros(2, bool))


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(st.one_of(st.sampled_from([0.0, 0.25, 0.5, 1.0, math.nan]), st.floats(0, 1)), st.booleans()),
        max_size=40,
    )
)
def test_average_precision_matches_brute_force(pairs):
    scores = [s for s, _ in pairs]
    truth = [t for _, t in pairs]
    value = average_precision(np.array(scores, dtype=np.float64), np.array(truth, dtype=bool))
    assert not math.isnan(value) and 0.0 <= value <= 1.0
    assert value == pytest.approx(brute_force_ap(scores, truth), abs=1e-12)


def test_expected_calibration_error_is_zero_for_calibrated_scores_and_grows_with_overconfidence():
    from autotosis.training.metrics import expected_calibration_error

    # Ten samples at 0.8 of which eight are right, ten at 0.2 of which two are: perfectly calibrated.
    scores = np.array([0.8] * 10 + [0.2] * 10)
    truth = np.array([1] * 8 + [0] * 2 + [1] * 2 + [0] * 8, dtype=bool)
    assert expected_calibration_error(scores, truth) == pytest.approx(0.0)
    # Saying 0.99 where half are right is 0.49 off.
    assert expected_calibration_error(np.full(10, 0.99), np.array([1, 0] * 5, dtype=bool)) == pytest.approx(0.49)
    assert expected_calibration_error(np.array([]), np.array([], dtype=bool)) == 0.0
    with pytest.raises(DataError):
        expected_calibration_error(np.zeros(3), np.zeros(2, dtype=bool))
