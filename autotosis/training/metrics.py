"""How well predictions match the truth: per sample, per event, and ranking quality.

Spans are half-open ``(start_ms, end_ms)`` pairs of integer milliseconds, the same
convention as label spans and events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from autotosis.core.errors import DataError, UsageError


@dataclass(frozen=True)
class PRF:
    precision: float
    recall: float
    f1: float
    tp: int
    fp: int
    fn: int

    @classmethod
    def from_counts(cls, tp: int, fp: int, fn: int) -> PRF:
        """Precision and recall from counts; a ratio with nothing to count is 1.0 when nothing went wrong.

        No predictions and no truth is a perfect score; predictions where there is no truth
        (or no predictions where there is truth) score 0.
        """
        precision = tp / (tp + fp) if tp + fp else (1.0 if fn == 0 else 0.0)
        recall = tp / (tp + fn) if tp + fn else (1.0 if fp == 0 else 0.0)
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        return cls(float(precision), float(recall), float(f1), int(tp), int(fp), int(fn))


def _bool_array(values: np.ndarray, name: str) -> np.ndarray:
    """A boolean array; integer arrays of 0 and 1 are accepted too."""
    array = np.asarray(values)
    if array.dtype == bool:
        return array
    if np.issubdtype(array.dtype, np.integer) and np.isin(array, (0, 1)).all():
        return array.astype(bool)
    raise DataError(f"{name} must be a boolean array (or 0/1 integers), got dtype {array.dtype}")


def frame_prf(pred: np.ndarray, truth: np.ndarray, ignore: np.ndarray | None = None) -> PRF:
    """Per-sample precision/recall; samples where ``ignore`` is true do not count."""
    pred, truth = _bool_array(pred, "pred"), _bool_array(truth, "truth")
    if pred.shape != truth.shape:
        raise DataError(f"pred has shape {pred.shape} but truth has shape {truth.shape}")
    counted = np.ones(pred.shape, dtype=bool)
    if ignore is not None:
        ignore = _bool_array(ignore, "ignore")
        if ignore.shape != pred.shape:
            raise DataError(f"ignore has shape {ignore.shape} but pred has shape {pred.shape}")
        counted = ~ignore
    tp = int(np.count_nonzero(pred & truth & counted))
    fp = int(np.count_nonzero(pred & ~truth & counted))
    fn = int(np.count_nonzero(~pred & truth & counted))
    return PRF.from_counts(tp, fp, fn)


def truth_at_times(
    times_ms: np.ndarray, spans: Sequence[tuple[int, int]], band_ms: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(truth, ignore) for each time: inside a span ``[start, end)``; closer than ``band_ms`` to a span edge.

    Hand-marked edges are off by up to a second, so samples near them should not count
    for or against a detector (same rule as training's ``dataset.frame_targets``).
    """
    if band_ms < 0:
        raise UsageError(f"band_ms must not be negative, got {band_ms}")
    times = np.asarray(times_ms, dtype=np.int64)
    truth = np.zeros(times.shape, dtype=bool)
    ignore = np.zeros(times.shape, dtype=bool)
    for start, end in spans:
        truth |= (times >= start) & (times < end)
        if band_ms > 0:
            ignore |= (np.abs(times - start) < band_ms) | (np.abs(times - end) < band_ms)
    return truth, ignore


def _interval_array(spans: Sequence[tuple[int, int]], name: str) -> np.ndarray:
    array = np.asarray(list(spans), dtype=np.int64).reshape(-1, 2)
    bad = np.flatnonzero(array[:, 1] <= array[:, 0])
    if len(bad):
        start, end = array[bad[0]]
        raise DataError(f"{name} interval {bad[0] + 1} ({start}, {end}) must end after it starts")
    return array


def interval_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every interval in ``a`` (n, 2) with every interval in ``b`` (m, 2): shape (n, m)."""
    a_start, a_end = a[:, :1], a[:, 1:]
    b_start, b_end = b[:, 0][None, :], b[:, 1][None, :]
    intersection = np.clip(np.minimum(a_end, b_end) - np.maximum(a_start, b_start), 0, None)
    union = (a_end - a_start) + (b_end - b_start) - intersection
    return intersection / union


def match_intervals(
    predicted: Sequence[tuple[int, int]], truth: Sequence[tuple[int, int]], min_iou: float = 0.1
) -> list[tuple[int, int]]:
    """One-to-one (predicted index, truth index) matches, greedy by IoU (highest first), IoU >= ``min_iou``."""
    if not 0 < min_iou <= 1:
        raise UsageError(f"min_iou must be above 0 and at most 1, got {min_iou}")
    pred = _interval_array(predicted, "predicted")
    true = _interval_array(truth, "truth")
    if len(pred) == 0 or len(true) == 0:
        return []
    iou = interval_iou(pred, true)
    rows, cols = np.nonzero(iou >= min_iou)
    # Highest IoU first; ties broken by position so the result does not depend on sort stability.
    order = np.lexsort((cols, rows, -iou[rows, cols]))
    used_pred = np.zeros(len(pred), dtype=bool)
    used_true = np.zeros(len(true), dtype=bool)
    matches = []
    for k in order:
        i, j = rows[k], cols[k]
        if not used_pred[i] and not used_true[j]:
            used_pred[i] = used_true[j] = True
            matches.append((int(i), int(j)))
    return matches


def event_prf(predicted: Sequence[tuple[int, int]], truth: Sequence[tuple[int, int]], min_iou: float = 0.1) -> PRF:
    """Event-level precision/recall: one-to-one matching, greedy by IoU (highest first), IoU >= ``min_iou``."""
    tp = len(match_intervals(predicted, truth, min_iou))
    return PRF.from_counts(tp, len(list(predicted)) - tp, len(list(truth)) - tp)


def average_precision(scores: np.ndarray, truth: np.ndarray) -> float:
    """Area under the precision-recall step curve (tied scores form one threshold).

    Sum over thresholds of (recall gained) x (precision at that threshold); 0.0 when there
    are no positives.  NaN scores rank below every other score.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    positive = _bool_array(truth, "truth").ravel()
    if values.shape != positive.shape:
        raise DataError(f"scores have shape {values.shape} but truth has shape {positive.shape}")
    n_positive = int(np.count_nonzero(positive))
    if n_positive == 0:
        return 0.0
    values = np.where(np.isnan(values), -np.inf, values)
    order = np.argsort(-values, kind="stable")
    ranked_values, ranked_truth = values[order], positive[order]
    # The last index of each run of equal scores is where that threshold's counts are read.
    last_of_tie = np.flatnonzero(np.concatenate((ranked_values[1:] != ranked_values[:-1], [True])))
    tp = np.cumsum(ranked_truth)[last_of_tie]
    predicted = last_of_tie + 1
    precision = tp / predicted
    recall_gain = np.diff(np.concatenate(([0], tp))) / n_positive
    return float(np.sum(recall_gain * precision))


def log_loss(scores: np.ndarray, truth: np.ndarray, eps: float = 1e-4) -> float:
    """Mean binary cross-entropy of probabilities ``scores`` against boolean ``truth`` (scores clipped to
    [eps, 1 - eps]); NaN without samples.  A smooth measure of how well the scores say what they mean."""
    p = np.clip(np.asarray(scores, dtype=np.float64), eps, 1 - eps)
    y = _bool_array(truth, "truth")
    if len(p) == 0:
        return float("nan")
    return float(-np.mean(np.where(y, np.log(p), np.log(1 - p))))


def expected_calibration_error(scores: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """How far the scores are from being probabilities: the mean |confidence - accuracy| over
    ``bins`` equal-width score bins, weighted by how many samples fall in each (0 = calibrated).

    Binary form: a sample scoring 0.8 should be a highlight 80% of the time.
    """
    values = np.asarray(scores, dtype=np.float64).ravel()
    positive = _bool_array(truth, "truth").ravel()
    if values.shape != positive.shape:
        raise DataError(f"scores have shape {values.shape} but truth has shape {positive.shape}")
    if bins < 1:
        raise UsageError(f"bins must be at least 1, got {bins}")
    keep = ~np.isnan(values)
    values, positive = np.clip(values[keep], 0.0, 1.0), positive[keep]
    if len(values) == 0:
        return 0.0
    which = np.minimum((values * bins).astype(np.int64), bins - 1)
    counts = np.bincount(which, minlength=bins)
    confidence = np.bincount(which, weights=values, minlength=bins)
    hits = np.bincount(which, weights=positive.astype(np.float64), minlength=bins)
    filled = counts > 0
    return float(np.sum(np.abs(confidence[filled] - hits[filled])) / len(values))
