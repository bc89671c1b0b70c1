"""Coarse-to-fine scanning: score the keyframes, then decode densely only where it matters.

Decoding keyframes alone (``-skip_frame nokey``) is 10-20x cheaper than decoding every
frame, because H.264 keyframes need no other frame and a stream carries one every few
seconds.  Their scores show where an event *might* be; only the stretches around such
keyframes are then decoded at the full sampling rate, seeking before the input so the
rest of the VOD is never decoded.  This module holds the pure parts -- which stretches to
refine and how the two passes' samples merge -- so they can be tested without video.

Only the edges of an event need dense samples: inside a run of consecutive candidate
keyframes that all score clearly high (at least the model's event threshold, on the same
classes), the keyframe samples already say "event", and the events code (segments.py)
forms its runs from consecutive samples whatever their spacing, so sparse samples there
neither split nor shorten an event.  The keyframe interval(s) on both sides of the first
and the last candidate of a run, and of any keyframe next to one that is not clearly high
(a weak edge, a dip, a change of class), are decoded densely; the interior keeps its
keyframe samples.  Refined stretches close to each other are decoded in one run.

An event may also run on past the end of a decoded stretch: its last dense sample scores high while
the keyframe after it does not (a dip that lands on that keyframe, a flicker of the model).  The next
keyframe interval is then decoded too, and so on (twice as far each round) until the dense samples fall below
the candidate level (``continuing_spans``; ``refine`` runs the rounds), so an event's end is always found in
dense samples.

What it cannot see: an event shorter than the keyframe interval that falls between two
keyframes, and likewise a dip shorter than the keyframe interval between two clearly high
keyframes.  Stretches where keyframes are further apart than ``max_gap_ms`` are therefore
always decoded densely, so a sparse-keyframe video degrades to a dense scan, not to misses.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from fractions import Fraction

import numpy as np

Span = tuple[int, int]  # [start, end) in ms
Samples = tuple[np.ndarray, np.ndarray]  # times (ms, int64) and class probabilities (n, classes), in time order


CANDIDATE_SHARE = 0.75  # default candidate level, as a share of the model's event threshold


@dataclass(frozen=True)
class CoarseOptions:
    # A keyframe whose highlight score (1 - P(background)) reaches this marks a candidate.
    # None = three quarters of the model's event threshold (CANDIDATE_SHARE).  Replayed on 13 dense scans
    # (12 VODs, 11 models; benchmarks/coarse_levels.py, BENCHMARKS.md), three quarters gave the dense scan's
    # events with the same edges on every one and decoded a quarter to a half less than half the threshold
    # on VODs with look-alikes; without follow_edges an edge moved by a keyframe interval (at half too).
    threshold: float | None = None
    # Keyframe intervals decoded on either side of a refined candidate keyframe, so an event
    # that starts or ends between two keyframes is covered whole.
    pad_keyframes: int = 1
    # Longer stretches without a keyframe were not looked at: decode them densely.
    max_gap_ms: int = 5000
    # Refine only the edges of a run of candidate keyframes (and its dips): a keyframe that,
    # like both its neighbours, scores at least ``interior_threshold`` on the same classes
    # keeps its keyframe sample (interior_keyframes).  False: refine around every candidate
    # (the rule before issue 18: decodes more, and also sees dips shorter than a keyframe
    # interval inside an event).
    edges_only: bool = True
    # Decode on where a refined stretch ends inside an event, a keyframe interval and then twice as far
    # each round (continuing_spans).  False: the rule before 2026-12-06 (an event's end could stop at a keyframe
    # that scores low in the middle of it).
    follow_edges: bool = True
    # "Clearly high" for edges_only.  None = the model's event threshold (its calibrated one).
    interior_threshold: float | None = None
    # Where the model's calibrated threshold will be raised for this video (detect/adapt.py: an unfamiliar room
    # that the model scores high throughout), raise the default candidate and interior levels with it, read from
    # the keyframes' scores: the stretches that cannot reach the raised threshold are not decoded.  Replayed on
    # 13 dense scans (BENCHMARKS.md, 2026-12-06): the same events and edges, up to three fifths less decoded
    # where the threshold rose.  False: the levels of the calibrated threshold (the rule before).
    adapt_levels: bool = True
    # Refined stretches at most this far apart are decoded in one ffmpeg run, the gap
    # included, instead of restarting the decoder (a seek, a new process, a drained queue).
    # A guess, not yet measured: one 2 s keyframe interval plus slack (benchmarks/scan.py).
    join_ms: int = 2500
    # ffmpeg runs decoding side by side, in both passes (pieces of the keyframe pass, refined stretches):
    # the next one starts, seeks and fills its decoder while the current one is read.  None = as many as
    # the machine has cores, at most 2.
    decoders: int | None = None
    # ffmpeg's decoding threads per run; None = ffmpeg's own choice with one decoder, 1 with more (one
    # single-threaded decoder per core wastes less than frame threads on short stretches).
    decoder_threads: int | None = None

    def outcome_settings(self) -> dict:
        """The fields that can change a scan's result (not how fast it is made): a batch's record key."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("decoders", "decoder_threads")}

    def as_key(self, threshold: float, interior_threshold: float) -> dict:
        """The settings that change the result, for the score cache key."""
        return {
            "threshold": round(threshold, 6),
            "pad_keyframes": self.pad_keyframes,
            "max_gap_ms": self.max_gap_ms,
            "edges_only": self.edges_only,
            "interior_threshold": round(interior_threshold, 6) if self.edges_only else None,
            "join_ms": self.join_ms,
            "follow_edges": self.follow_edges,
            "adapt_levels": self.adapt_levels,
        }


@dataclass(frozen=True)
class Reading:
    """How ``refine`` reads the samples to choose what to decode: ``probs(times, probs)`` gives the probabilities it
    compares with ``candidate`` and ``interior`` (``refinement_spans``), for samples at ``times`` with the
    probabilities the model gave them (None: those themselves)."""

    probs: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
    candidate: float
    interior: float

    def read(self, times: np.ndarray, probs: np.ndarray) -> np.ndarray:
        return probs if self.probs is None else np.asarray(self.probs(times, probs), dtype=np.float32)


def highlight_score(probs: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """One score per sample: the probability that it is *not* background (any highlight class).

    A model without a "background" class gets its top class probability, which is never
    low: every keyframe becomes a candidate, so coarse mode falls back to a dense scan.
    """
    probs = np.asarray(probs, dtype=np.float32)
    if "background" in classes:
        return 1.0 - probs[:, classes.index("background")]
    return probs.max(axis=1) if probs.size else np.zeros(len(probs), np.float32)


def high_classes(probs: np.ndarray, classes: tuple[str, ...], level: float) -> np.ndarray:
    """Which highlight classes each sample scores clearly high on: bool ``(n, classes - 1)``.

    A model without a "background" class has none (every column is all False): which of its
    classes are events is unknown, so no keyframe counts as clearly inside one and coarse mode
    keeps falling back to a dense scan for it.
    """
    probs = np.asarray(probs, dtype=np.float32).reshape(-1, len(classes))
    if "background" not in classes:
        return np.zeros((len(probs), 0), dtype=bool)
    columns = [i for i, name in enumerate(classes) if name != "background"]
    return probs[:, columns] >= level


def interior_keyframes(candidates: np.ndarray, key_high: np.ndarray) -> np.ndarray:
    """Candidates strictly inside a run whose neighbourhood needs no dense decoding.

    Keyframe ``i`` is interior when it and both its neighbours are candidates that score
    clearly high on the same classes (``key_high``: bool, one row per keyframe, one column per
    highlight class).  So every stretch between two interior keyframes has both ends clearly
    high on the same classes (the score does not cross the event threshold there, unless it
    dips for less than a keyframe interval), and a keyframe where the score is still rising
    or falling, or dips, or changes class, is refined with a keyframe interval on both sides:
    a crossing is never at the edge of the dense samples, so smoothing over it sees dense
    samples too.  The first and last keyframes of the video are never interior.
    """
    cand = np.asarray(candidates, dtype=bool)
    n = len(cand)
    high = np.asarray(key_high, dtype=bool).reshape(n, -1)
    settled = cand & high.any(axis=1)
    interior = np.zeros(n, dtype=bool)
    if n < 3:
        return interior
    mid = high[1:-1]
    same_before = settled[:-2] & (high[:-2] == mid).all(axis=1)
    same_after = settled[2:] & (high[2:] == mid).all(axis=1)
    interior[1:-1] = settled[1:-1] & same_before & same_after
    return interior


def refine_spans(
    key_times_ms: np.ndarray,
    key_scores: np.ndarray,
    duration_ms: int,
    threshold: float,
    *,
    pad_keyframes: int = 1,
    max_gap_ms: int = 5000,
    key_high: np.ndarray | None = None,
    join_ms: int = 0,
) -> list[Span]:
    """Stretches of the video to decode densely, sorted and disjoint.

    Each keyframe scoring ``>= threshold`` (a candidate) contributes the stretch from
    ``pad_keyframes`` keyframes before it to ``pad_keyframes`` keyframes after it (the video's
    ends at the edges) -- unless ``key_high`` (``high_classes`` of the keyframes; None = the
    old rule, every candidate) makes it an interior keyframe of its run
    (``interior_keyframes``).  Every gap between keyframes longer than ``max_gap_ms``
    (including before the first and after the last) contributes itself.  Stretches at most
    ``join_ms`` apart become one.
    """
    times = np.asarray(key_times_ms, dtype=np.int64)
    scores = np.asarray(key_scores, dtype=np.float64)
    if len(times) == 0:
        return [(0, int(duration_ms))] if duration_ms > 0 else []
    refined = scores >= threshold
    if key_high is not None:
        refined &= ~interior_keyframes(refined, key_high)
    spans: list[Span] = []
    last = len(times) - 1
    for i in np.flatnonzero(refined):
        lo = int(times[i - pad_keyframes]) if i - pad_keyframes >= 0 else 0
        hi = int(times[i + pad_keyframes]) if i + pad_keyframes <= last else int(duration_ms)
        spans.append((lo, hi))
    bounds = np.concatenate(([0], times, [max(int(duration_ms), int(times[-1]))]))
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        if hi - lo > max_gap_ms:
            spans.append((int(lo), int(hi)))
    return merge_spans(spans, join_ms)


def refinement_spans(
    key_times_ms: np.ndarray,
    key_probs: np.ndarray,
    classes: tuple[str, ...],
    duration_ms: int,
    fps: float,
    options: CoarseOptions,
    *,
    candidate: float,
    interior: float,
) -> list[Span]:
    """The stretches a coarse scan decodes densely after scoring the keyframes, on the sampling grid:
    keyframes scoring at least ``candidate`` (and, with ``options.edges_only``, only the edges of their
    runs: ``interior`` is the "clearly high" level), padded as ``options`` says."""
    key_high = high_classes(key_probs, classes, interior) if options.edges_only else None
    spans = refine_spans(
        key_times_ms,
        highlight_score(key_probs, classes),
        duration_ms,
        candidate,
        pad_keyframes=options.pad_keyframes,
        max_gap_ms=options.max_gap_ms,
        key_high=key_high,
        join_ms=options.join_ms,
    )
    return align_spans(spans, fps)


def continuing_spans(
    spans: list[Span],
    times_ms: np.ndarray,
    scores: np.ndarray,
    key_times_ms: np.ndarray,
    duration_ms: int,
    level: float,
    decoded: list[Span],
    intervals: int = 1,
    tolerance_ms: int = 2,
) -> list[Span]:
    """The ``intervals`` keyframe intervals after each of ``spans`` where what it decoded may run on, not yet
    ``decoded``.

    ``times_ms`` / ``scores``: the merged samples so far (dense inside ``decoded``, keyframes elsewhere) and
    their highlight scores.  A span runs on when its last dense sample scores at least ``level`` while the
    keyframe sample at its end does not: the event continues into a stretch nobody decoded (a keyframe at
    its end that scores high is a candidate or the inside of a run, and is covered already).
    """
    times = np.asarray(times_ms, dtype=np.int64)
    values = np.asarray(scores, dtype=np.float64)
    keys = np.asarray(key_times_ms, dtype=np.int64)
    covered = merge_spans(list(decoded))
    starts = np.array([lo for lo, _ in covered], dtype=np.int64)
    found: list[Span] = []
    for lo, hi in spans:
        if hi >= duration_ms:
            continue
        last = int(np.searchsorted(times, hi, side="left")) - 1  # the last sample before the span's end
        if last < 0 or times[last] < lo or values[last] < level:
            continue
        at_end = last + 1  # the first sample from the span's end on: the keyframe there, where there is one
        if at_end < len(times) and int(times[at_end]) - hi <= tolerance_ms and values[at_end] >= level:
            continue
        nxt = int(np.searchsorted(starts, hi, side="right"))  # the first decoded stretch starting after hi
        if nxt > 0 and covered[nxt - 1][1] > hi:
            continue  # hi itself lies in a decoded stretch
        following = keys[keys > hi + tolerance_ms]
        end = int(following[intervals - 1]) if len(following) >= intervals else int(duration_ms)
        if nxt < len(starts):
            end = min(end, int(starts[nxt]))
        if end <= hi:
            continue
        found.append((int(hi), end))
    return merge_spans(found)


def refine(
    key_times_ms: np.ndarray,
    key_probs: np.ndarray,
    classes: tuple[str, ...],
    duration_ms: int,
    fps: float,
    options: CoarseOptions,
    *,
    candidate: float,
    interior: float,
    decode: Callable[[list[Span]], Samples],
    also: Reading | None = None,
) -> tuple[np.ndarray, np.ndarray, list[Span]]:
    """The coarse scan's second pass: decode (``decode(spans)``: dense samples inside those stretches) the
    ``refinement_spans``, then, round by round, the ``continuing_spans`` of what the last round decoded: one
    keyframe interval in the first round, twice as many in each next one (only an event that ran on through
    the last round is followed in the next, so a long one whose keyframes all score low -- a model that reads
    keyframes differently -- takes a few rounds, not one per interval).
    ``also``: a second reading of the samples (a model with a sound combiner: the combined score its events read);
    what either reading asks for is decoded, so nothing the first would decode is left out.  The samples returned
    keep the probabilities ``key_probs`` and ``decode`` give.
    Returns the merged samples (``merge_samples``) and every stretch decoded densely, in order."""
    key_times = np.asarray(key_times_ms, dtype=np.int64)
    readings = [Reading(None, candidate, interior)] + ([also] if also is not None else [])
    new = merge_spans(
        [
            span
            for reading in readings
            for span in refinement_spans(
                key_times,
                reading.read(key_times, key_probs),
                classes,
                duration_ms,
                fps,
                options,
                candidate=reading.candidate,
                interior=reading.interior,
            )
        ],
        options.join_ms,
    )
    decoded: list[Span] = []
    fine_times: list[np.ndarray] = [np.zeros(0, np.int64)]
    fine_probs: list[np.ndarray] = [np.zeros((0, len(classes)), np.float32)]
    times, probs = merge_samples(key_times, key_probs, [], fine_times[0], fine_probs[0])
    intervals = 1
    while new:
        got_times, got_probs = decode(new)
        fine_times.append(np.asarray(got_times, dtype=np.int64))
        fine_probs.append(np.asarray(got_probs, dtype=np.float32).reshape(-1, len(classes)))
        decoded = merge_spans(decoded + new)
        # Stretches of two rounds meet end to end: a frame on the seam may come from both.
        fine = drop_repeats(np.concatenate(fine_times), np.concatenate(fine_probs))
        times, probs = merge_samples(key_times, key_probs, decoded, *fine)
        if not options.follow_edges:
            break
        followed = merge_spans(
            [
                span
                for reading in readings
                for span in continuing_spans(
                    new,
                    times,
                    highlight_score(reading.read(times, probs), classes),
                    key_times,
                    duration_ms,
                    reading.candidate,
                    decoded,
                    intervals,
                )
            ]
        )
        new, intervals = align_spans(followed, fps), intervals * 2
    return times, probs, decoded


def merge_spans(spans: list[Span], join_ms: int = 0) -> list[Span]:
    """Sorted, with overlapping spans and spans at most ``join_ms`` apart joined (one decoder run each)."""
    merged: list[Span] = []
    for lo, hi in sorted(s for s in spans if s[1] > s[0]):
        if merged and lo - merged[-1][1] <= join_ms:
            merged[-1] = (merged[-1][0], max(merged[-1][1], hi))
        else:
            merged.append((lo, hi))
    return merged


def grid_period_ms(fps: float) -> int:
    """Smallest whole number of ms that is a whole number of sampling steps.

    A dense decode that starts on such a multiple takes its samples at the same times as a
    scan of the whole video (ffmpeg's fps filter counts steps from the start it is given).
    """
    step_ms = Fraction(1000) / Fraction(fps).limit_denominator(1000)
    return step_ms.numerator  # a step is n/d ms (lowest terms): d steps are n whole ms


def align_spans(spans: list[Span], fps: float) -> list[Span]:
    """Move each start up to the sampling grid (the seek still lands on the same keyframe)."""
    period = grid_period_ms(fps)
    aligned = []
    for lo, hi in spans:
        start = int(math.ceil(lo / period) * period)
        if start < hi:
            aligned.append((start, hi))
    return aligned


def drop_repeats(times: np.ndarray, probs: np.ndarray, tolerance_ms: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """In time order, without samples at most ``tolerance_ms`` after the one kept before them: a frame that
    two overlapping decoder runs both delivered (their seeks may round its time by a millisecond)."""
    times = np.asarray(times, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float32)
    order = np.argsort(times, kind="stable")
    times, probs = times[order], probs[order]
    keep = np.ones(len(times), dtype=bool)
    last = None
    for i, t in enumerate(times.tolist()):
        if last is not None and t - last <= tolerance_ms:
            keep[i] = False
        else:
            last = t
    return times[keep], probs[keep]


def merge_samples(
    coarse_times: np.ndarray,
    coarse_probs: np.ndarray,
    spans: list[Span],
    fine_times: np.ndarray,
    fine_probs: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """One increasing series: the dense samples inside ``spans``, the keyframe samples elsewhere."""
    coarse_times = np.asarray(coarse_times, dtype=np.int64)
    fine_times = np.asarray(fine_times, dtype=np.int64)
    keep = np.ones(len(coarse_times), dtype=bool)
    for lo, hi in spans:
        keep &= ~((coarse_times >= lo) & (coarse_times < hi))
    times = np.concatenate([fine_times, coarse_times[keep]])
    probs = np.concatenate([np.asarray(fine_probs, np.float32), np.asarray(coarse_probs, np.float32)[keep]])
    # Stable sort with the dense samples first, so a time both passes hit keeps the dense one.
    order = np.argsort(times, kind="stable")
    times, probs = times[order], probs[order]
    if len(times) > 1:
        first = np.concatenate(([True], np.diff(times) > 0))
        times, probs = times[first], probs[first]
    return times, probs
