"""Choosing the decision threshold and the event rules from out-of-fold scores.

After clip-grouped k-fold training every labelled clip has scores from a model that never
saw it (out-of-fold, OOF).  Those scores are what a new VOD will look like to the final
model, so the threshold and the event rules (smoothing, minimum length, merge gap) are
chosen where they find the labelled highlights best *as events*: a rule that turns one
stray confident frame into a false highlight costs as much as a missed highlight, which a
per-frame F1 at one threshold does not see.

Among rules scoring within ``TOLERANCE`` of the best event F1, the one closest to the fixed
defaults wins (a rule changes only where the clips show that it pays), then the one with the
widest range of good thresholds, and its threshold is the middle of that range: the final
model, trained on every clip, scores a little differently from the fold models, and the
middle of a plateau survives that shift best.

The threshold has a floor (``calibrate_scores``): where a logistic regression of the labels on the
out-of-fold scores (Platt scaling) makes a highlight more likely than not.  A dozen clips' event F1
can prefer a lower threshold by an edge sample or two; the final model then fires on look-alikes.

Truth comes from the training targets themselves (the label file's spans at the frames'
times): runs of highlight frames together with the ignored band frames at their edges are
the true events; ignored runs without any highlight frame are unsure (``~``) spans, where a
detection counts neither for nor against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from autotosis.detect.audio import picture_logit
from autotosis.detect.segments import EventParams, find_events, smooth_scores, true_runs
from autotosis.training.dataset import IGNORE, counted_mask, highlight_mask
from autotosis.training.metrics import PRF, event_prf, frame_prf, match_intervals

EVENT_MIN_IOU = 0.3  # the same matching as `eval` and the benchmarks
TOLERANCE = 0.01  # event F1 this close to the best counts as equally good
# 0.2 .. 0.9 in steps of 0.05, then closer to 1 in steps of about 0.4 in log-odds: a model trained on
# every clip is often confident, and a plateau that runs into the top of the grid had its middle
# chosen too low (the look-alikes it should have dropped scored 0.9-0.95 on the hard benchmark).
THRESHOLDS = tuple(round(0.2 + 0.05 * i, 2) for i in range(15)) + (0.93, 0.95, 0.97)
SMOOTH_MS = (0, 1000, 2000)
MIN_LENGTH_MS = (0, 1000, 2000)
MERGE_GAP_MS = (1000, 2000, 4000)
DEFAULT_RULES = {"threshold": 0.5, "smooth_ms": 0, "min_length_ms": 1000, "merge_gap_ms": 2000}  # EventParams' defaults
# The probability floor stays unless it loses more than a third of the highlights that the rules without it find
# out of fold: then the highlights really score below it (a weak model).  A smaller loss is the fold models' (trained
# on two thirds of the clips, they score highlights lower than the final model will); what the floor buys is fewer
# false events on look-alikes.  Hard benchmark, six trainings (BENCHMARKS.md): held-out event F1 0.88 on average
# (worst 0.71) with the earlier guard ("at most 0.05 out-of-fold event F1", which dropped the floor in four of
# them), 0.94 (worst 0.89) with this one; keeping the floor always gave 0.89 (worst 0.61: it lost 5 of 14).
FLOOR_MAX_HIGHLIGHTS_LOST = 1 / 3
_CLIP_GAP_MS = 60_000  # clips are laid end to end this far apart: no rule joins two clips


@dataclass(frozen=True)
class OofClip:
    """Out-of-fold scores of one labelled clip, at the scan's sampling rate."""

    name: str
    times_ms: np.ndarray  # int64, increasing
    scores: np.ndarray  # the highlight class's probability
    targets: np.ndarray  # class index per sample, IGNORE near span edges and in unsure spans
    step_ms: int
    fold: int = 0


@dataclass(frozen=True)
class EventRules:
    threshold: float
    smooth_ms: int
    min_length_ms: int
    merge_gap_ms: int

    def params(self) -> EventParams:
        """Unpadded events, as they are matched to the truth."""
        return EventParams(
            threshold=self.threshold,
            smooth_ms=self.smooth_ms,
            min_length_ms=self.min_length_ms,
            merge_gap_ms=self.merge_gap_ms,
            pad_before_ms=0,
            pad_after_ms=0,
        )

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"threshold {self.threshold:.2f}, smoothing {self.smooth_ms / 1000:g} s, "
            f"minimum length {self.min_length_ms / 1000:g} s, merge gap {self.merge_gap_ms / 1000:g} s"
        )


@dataclass(frozen=True)
class Calibration:
    rules: EventRules
    event: PRF  # out-of-fold event precision/recall/F1 with these rules, all clips together
    frame: PRF  # out-of-fold frame precision/recall/F1 at the threshold
    plateau: tuple[float, float]  # thresholds whose event F1 is within TOLERANCE of the best
    default_event: PRF  # what the fixed defaults (DEFAULT_RULES) would have scored
    clips: int
    highlights: int
    floor: float | None = None  # the lowest threshold that was allowed (see ``probability_floor``)
    # The probability floor where it was not used as it was, and how many out-of-fold highlights it would have
    # lost (``calibrate_scores``): then ``floor`` is a lower one, or None.
    unused_floor: tuple[float, int] | None = None
    # The median out-of-fold score of the negative samples: the level ``detect.adapt`` compares a video with.
    negative_median: float | None = None

    def explain(self) -> str:
        low, high = self.plateau
        floor = (
            ""
            if self.floor is None
            else f" (thresholds from {self.floor:.2f} up: below, a highlight is less likely than not)"
        )
        if self.unused_floor is not None:
            value, lost = self.unused_floor
            where = f"from {value:.2f}, where a highlight becomes more likely than not"
            floor = (
                f" (no floor: {where}, the rules would lose {lost} of {self.event.tp} highlights)"
                if self.floor is None
                else f" (thresholds from {self.floor:.2f} up, a floor lowered so as to keep "
                f"{1 - FLOOR_MAX_HIGHLIGHTS_LOST:.0%} of the out-of-fold highlights: {where}, the rules would "
                f"lose {lost})"
            )
        return (
            f"{self.rules.describe()}: out-of-fold event F1 {self.event.f1:.2f} "
            f"(precision {self.event.precision:.2f}, recall {self.event.recall:.2f}; {self.highlights} highlights in "
            f"{self.clips} clips), equally good from threshold {low:.2f} to {high:.2f}{floor}; "
            f"the fixed defaults would score {self.default_event.f1:.2f}"
            + (
                ""
                if self.negative_median is None
                else f"; the clips' ordinary moments score {self.negative_median:.2f} (median): a long video the "
                "model scores higher overall gets a higher threshold"
            )
        )

    def to_dict(self) -> dict:
        return {
            **self.rules.as_dict(),
            "source": "out-of-fold",
            "event_f1": round(self.event.f1, 4),
            "event_precision": round(self.event.precision, 4),
            "event_recall": round(self.event.recall, 4),
            "frame_f1": round(self.frame.f1, 4),
            "plateau": list(self.plateau),
            "default_event_f1": round(self.default_event.f1, 4),
            "clips": self.clips,
            "highlights": self.highlights,
            **({} if self.floor is None else {"floor": round(self.floor, 4)}),
            **({} if self.unused_floor is None else {"unused_floor": round(self.unused_floor[0], 4)}),
            **({} if self.negative_median is None else {"negative_median": float(self.negative_median)}),
        }


def clip_truth(clip: OofClip) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(true highlight spans, unsure spans) in ms, read from the clip's targets."""
    positive = highlight_mask(clip.targets)
    ignored = clip.targets == IGNORE
    truth, unsure = [], []
    times = clip.times_ms
    for lo, hi in true_runs(positive | ignored):
        span = (int(times[lo]), int(times[hi - 1]) + clip.step_ms)
        (truth if positive[lo:hi].any() else unsure).append(span)
    return truth, unsure


@dataclass(frozen=True)
class _Laid:
    """Every clip end to end on one time line (smoothed once per window), for fast rule scans."""

    times: np.ndarray
    raw: np.ndarray
    smoothed: dict[int, np.ndarray]
    targets: np.ndarray
    truth: list[tuple[int, int]]
    unsure: np.ndarray  # (n, 2)
    offsets: list[int]
    step: int
    end: int


def _lay_out(clips: Sequence[OofClip], smooth_windows: Sequence[int]) -> _Laid:
    step = int(np.median([c.step_ms for c in clips]))
    times, raw, targets, truth, unsure, offsets = [], [], [], [], [], []
    smoothed: dict[int, list[np.ndarray]] = {w: [] for w in smooth_windows}
    offset = 0
    for clip in clips:
        offsets.append(offset)
        times.append(clip.times_ms.astype(np.int64) + offset)
        values = np.nan_to_num(clip.scores.astype(np.float64))
        raw.append(values)
        targets.append(clip.targets)
        for window in smooth_windows:
            smoothed[window].append(smooth_scores(values, clip.step_ms, window))
        clip_true, clip_unsure = clip_truth(clip)
        truth += [(s + offset, e + offset) for s, e in clip_true]
        unsure += [(s + offset, e + offset) for s, e in clip_unsure]
        offset += int(clip.times_ms[-1]) + clip.step_ms + _CLIP_GAP_MS if len(clip.times_ms) else 0
    return _Laid(
        np.concatenate(times),
        np.concatenate(raw),
        {w: np.concatenate(v) for w, v in smoothed.items()},
        np.concatenate(targets),
        truth,
        np.asarray(unsure, dtype=np.int64).reshape(-1, 2),
        offsets,
        step,
        offset,
    )


def _detections(laid: _Laid, rules: EventRules) -> list[tuple[int, int, float]]:
    """Unpadded events (start, end, peak) on the laid-out time line, unsure spans left out."""
    params = EventParams(
        threshold=rules.threshold,
        min_length_ms=rules.min_length_ms,
        merge_gap_ms=rules.merge_gap_ms,
        pad_before_ms=0,
        pad_after_ms=0,
    )
    events = find_events(laid.times, laid.smoothed[rules.smooth_ms], laid.end, "x", params, laid.step)
    found = [(e.start_ms, e.end_ms, e.peak) for e in events]
    if len(laid.unsure) == 0:
        return found
    kept = []
    for start, end, peak in found:
        overlap = np.clip(np.minimum(end, laid.unsure[:, 1]) - np.maximum(start, laid.unsure[:, 0]), 0, None).sum()
        if overlap * 2 < end - start:  # mostly inside an unsure span: neither right nor wrong
            kept.append((start, end, peak))
    return kept


def _score(laid: _Laid, rules: EventRules) -> PRF:
    found = _detections(laid, rules)
    return event_prf([(s, e) for s, e, _ in found], laid.truth, min_iou=EVENT_MIN_IOU)


def _frame_prf(laid: _Laid, threshold: float) -> PRF:
    counted = counted_mask(laid.targets)
    return frame_prf(laid.raw >= threshold, laid.targets > 0, ignore=~counted)


@dataclass(frozen=True)
class _RuleCurves:
    """The out-of-fold event precision/recall/F1 of every rule of the grid at every threshold, computed once
    so that choices under several floors (``calibrate_scores``) read them instead of scoring again."""

    clips: tuple[OofClip, ...]
    laid: _Laid
    thresholds: tuple[float, ...]  # increasing
    events: dict[tuple[int, int, int], tuple[PRF, ...]]  # (smooth, min length, merge gap) -> one PRF per threshold
    default_event: PRF  # the fixed defaults' (DEFAULT_RULES), whatever is chosen
    negative_median: float | None


def _rule_curves(
    clips: Sequence[OofClip],
    thresholds: Sequence[float],
    smooth_ms: Sequence[int],
    min_length_ms: Sequence[int],
    merge_gap_ms: Sequence[int],
) -> _RuleCurves | None:
    """Every rule scored on ``clips``; None without any highlight."""
    clips = tuple(c for c in clips if len(c.times_ms))
    if not clips:
        return None
    laid = _lay_out(clips, sorted({*smooth_ms, DEFAULT_RULES["smooth_ms"]}))
    if not laid.truth:
        return None
    grid = tuple(sorted(float(t) for t in thresholds))
    events = {
        (window, length, gap): tuple(_score(laid, EventRules(t, window, length, gap)) for t in grid)
        for window in smooth_ms
        for length in min_length_ms
        for gap in merge_gap_ms
    }
    return _RuleCurves(clips, laid, grid, events, _score(laid, EventRules(**DEFAULT_RULES)), negative_median(clips))


def _choose(curves: _RuleCurves, floor: float | None) -> Calibration:
    """The best rules of ``curves`` from ``floor`` up (the highest threshold when all are below it)."""
    grid = curves.thresholds
    first = next((i for i, t in enumerate(grid) if t >= floor), len(grid) - 1) if floor is not None else 0
    thresholds = grid[first:]
    f1 = {key: np.array([prf.f1 for prf in prfs[first:]]) for key, prfs in curves.events.items()}
    best = max(float(curve.max()) for curve in f1.values())

    def plateau(curve: np.ndarray) -> tuple[int, int]:
        """The longest run of thresholds within TOLERANCE of the best (half-open index range)."""
        runs = true_runs(curve >= best - TOLERANCE)
        return max(runs, key=lambda r: (r[1] - r[0], -r[0])) if runs else (0, 0)

    def preference(key: tuple[int, int, int]) -> tuple:
        lo, hi = plateau(f1[key])
        window, length, gap = key
        # The fewest departures from the fixed defaults (a rule changes only where the clips show that it
        # pays), then the widest plateau, then the least smoothing, the shortest minimum length, the
        # default-most gap.
        departures = sum(
            (
                window != DEFAULT_RULES["smooth_ms"],
                length != DEFAULT_RULES["min_length_ms"],
                gap != DEFAULT_RULES["merge_gap_ms"],
            )
        )
        return (departures, -(hi - lo), window, length, abs(gap - DEFAULT_RULES["merge_gap_ms"]))

    key = min((k for k, curve in f1.items() if curve.max() >= best - TOLERANCE), key=preference)
    lo, hi = plateau(f1[key])
    middle = (lo + hi - 1) // 2
    rules = EventRules(thresholds[middle], *key)
    return Calibration(
        rules=rules,
        event=curves.events[key][first + middle],
        frame=_frame_prf(curves.laid, rules.threshold),
        plateau=(thresholds[lo], thresholds[hi - 1]),
        default_event=curves.default_event,
        clips=len(curves.clips),
        highlights=len(curves.laid.truth),
        floor=floor,
        negative_median=curves.negative_median,
    )


def calibrate(
    clips: Sequence[OofClip],
    *,
    thresholds: Sequence[float] = THRESHOLDS,
    smooth_ms: Sequence[int] = SMOOTH_MS,
    min_length_ms: Sequence[int] = MIN_LENGTH_MS,
    merge_gap_ms: Sequence[int] = MERGE_GAP_MS,
    floor: float | None = None,
) -> Calibration | None:
    """The rules with the best out-of-fold event F1 (see the module docstring); None without any highlight.

    ``floor``: only thresholds from it up (the highest one when all are below it)."""
    curves = _rule_curves(clips, thresholds, smooth_ms, min_length_ms, merge_gap_ms)
    return None if curves is None else _choose(curves, floor)


def calibrate_from_floors(clips: Sequence[OofClip], floors: Sequence[float | None]) -> tuple[Calibration | None, ...]:
    """``calibrate`` (default grids) from each of ``floors`` up, with every rule scored once for all of them;
    each None without any highlight."""
    curves = _rule_curves(clips, THRESHOLDS, SMOOTH_MS, MIN_LENGTH_MS, MERGE_GAP_MS)
    return tuple(None if curves is None else _choose(curves, floor) for floor in floors)


def negative_median(clips: Sequence[OofClip]) -> float | None:
    """The median out-of-fold score of the clips' negative samples (None without any)."""
    negatives = [c.scores[c.targets == 0] for c in clips]
    values = np.concatenate(negatives) if negatives else np.zeros(0)
    return float(np.median(values)) if len(values) else None


def calibrate_scores(clips: Sequence[OofClip]) -> Calibration | None:
    """``calibrate`` from the ``probability_floor`` up, unless the floor loses more than ``FLOOR_MAX_HIGHLIGHTS_LOST``
    of the out-of-fold highlights the unconstrained rules find: then the scores themselves say many highlights sit
    below it (the fold models, trained on fewer clips, score them lower than the final model will), and the floor
    is lowered to the highest threshold of the grid that keeps that share, or dropped where none between it and the
    unconstrained threshold does."""
    curves = _rule_curves(clips, THRESHOLDS, SMOOTH_MS, MIN_LENGTH_MS, MERGE_GAP_MS)
    if curves is None:
        return None
    unconstrained = _choose(curves, None)
    floor = probability_floor(clips)
    if floor is None or floor <= unconstrained.rules.threshold:
        return unconstrained
    allowed = FLOOR_MAX_HIGHLIGHTS_LOST * unconstrained.event.tp

    def keeps(candidate: Calibration) -> bool:
        return unconstrained.event.tp - candidate.event.tp <= allowed

    floored = _choose(curves, floor)
    if keeps(floored):
        return floored
    lost = unconstrained.event.tp - floored.event.tp
    for lower in sorted((t for t in THRESHOLDS if unconstrained.rules.threshold < t < floor), reverse=True):
        candidate = _choose(curves, lower)
        if keeps(candidate):
            return replace(candidate, unused_floor=(floor, lost))
    return replace(unconstrained, unused_floor=(floor, lost))


def fit_logistic(x: np.ndarray, y: np.ndarray, penalty: np.ndarray, *, iterations: int = 30) -> np.ndarray:
    """Weights of a logistic regression of ``y`` (0/1) on the columns of ``x`` (the first one all ones),
    each weight held back by its ``penalty`` (L2), fitted by Newton's method (IRLS)."""
    w = np.zeros(x.shape[1])
    prior = float(np.clip(y.mean(), 1e-3, 1 - 1e-3))
    w[0] = np.log(prior / (1 - prior))
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -40, 40)))
        grad = x.T @ (y - p) - penalty * w
        hessian = (x * (p * (1 - p))[:, None]).T @ x + np.diag(penalty)
        step = np.linalg.solve(hessian, grad)
        w += step
        if float(np.abs(step).max()) < 1e-7:
            break
    return w


def counted_samples(clips: Sequence[OofClip]) -> tuple[np.ndarray, np.ndarray]:
    """Every clip's scores (float64) and whether each is a highlight, over the samples that count (not IGNORE)."""
    counted = [counted_mask(c.targets) for c in clips]
    scores = np.concatenate([np.asarray(c.scores, np.float64)[m] for c, m in zip(clips, counted)] or [np.zeros(0)])
    positive = np.concatenate([c.targets[m] > 0 for c, m in zip(clips, counted)] or [np.zeros(0, bool)])
    return scores, positive


def probability_floor(clips: Sequence[OofClip], *, l2_per_sample: float = 0.01) -> float | None:
    """The score from which the out-of-fold data make a highlight more likely than not, or None.

    A logistic regression of the labels on the logit of the out-of-fold scores (Platt scaling) says
    what a score means; where it crosses 0.5 is the floor for the threshold.  Without it, the event
    F1 of a dozen clips can prefer a low threshold by an edge sample or two, and the final model, which
    scores more sharply than the fold models, then fires on every look-alike of an unseen VOD
    (benchmarks/quality_floor.py: held-out event F1 0.21 at 0.30, 0.97 from the floor up).  None when
    the scores do not rank the highlights higher or there is nothing to fit.
    """
    scores, positive = counted_samples(clips)
    if len(scores) == 0 or positive.all() or not positive.any():
        return None
    x = np.column_stack([np.ones(len(scores)), picture_logit(scores)])
    bias, slope = fit_logistic(x, positive.astype(np.float64), np.array([1e-6, l2_per_sample * len(scores)]))
    if slope <= 1e-6:
        return None
    return float(1 / (1 + np.exp(bias / slope)))  # logit(score) = -bias / slope: the fitted probability is 0.5


def evaluate_rules(clips: Sequence[OofClip], rules: EventRules) -> tuple[PRF, PRF]:
    """(event, frame) precision/recall/F1 of ``rules`` on ``clips``."""
    clips = [c for c in clips if len(c.times_ms)]
    if not clips:
        return PRF.from_counts(0, 0, 0), PRF.from_counts(0, 0, 0)
    laid = _lay_out(clips, [rules.smooth_ms])
    return _score(laid, rules), _frame_prf(laid, rules.threshold)


@dataclass(frozen=True)
class ClipMistakes:
    """What the out-of-fold model got wrong in one labelled clip, with the calibrated rules."""

    name: str
    false_events: tuple[tuple[int, int, float], ...]  # (start_ms, end_ms, peak) detections matching no highlight
    missed: tuple[tuple[int, int], ...]  # highlights no detection matched

    @property
    def count(self) -> int:
        return len(self.false_events) + len(self.missed)


def clip_mistakes(clips: Sequence[OofClip], rules: EventRules) -> list[ClipMistakes]:
    """Per clip, the false detections and missed highlights; clips with mistakes only, worst first."""
    result = []
    for clip in clips:
        if not len(clip.times_ms):
            continue
        laid = _lay_out([clip], [rules.smooth_ms])
        found = _detections(laid, rules)
        matches = match_intervals([(s, e) for s, e, _ in found], laid.truth, EVENT_MIN_IOU)
        matched_pred, matched_true = {i for i, _ in matches}, {j for _, j in matches}
        false_events = tuple(f for i, f in enumerate(found) if i not in matched_pred)
        missed = tuple(t for j, t in enumerate(laid.truth) if j not in matched_true)
        if false_events or missed:
            result.append(ClipMistakes(clip.name, false_events, missed))
    result.sort(key=lambda m: (-m.count, -max((p for *_, p in m.false_events), default=0.0), m.name))
    return result
