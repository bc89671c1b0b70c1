"""Scores -> events: the cheap, deterministic step between scanning and rendering.

One score column (one class) becomes a list of events with integer-millisecond bounds.
A score sample at time ``t`` stands for ``[t, t + step)``, so an event spans from its first
sample's time to its last sample's time plus one step.  Stages, in order:

0. smoothing (``smooth_ms``): a centred moving average, so one stray sample neither starts
   nor splits an event (selection only; peak and mean are read from the raw scores);
1. selection: hysteresis thresholding (enter at ``threshold``, stay while ``>= release``),
   or the original tool's "top P percent of fixed bins, plus their neighbours";
2. merge events closer than ``merge_gap_ms``;
3. drop events shorter than ``min_length_ms``;
4. pad (clamped to ``[0, duration]``) and merge events the padding made touch;
5. trim events longer than ``max_length_ms`` to a window around their peak;
6. keep the ``top_k`` highest peaks, in time order.  ``top_k`` means the K best moments whatever
   the threshold: when fewer than K events pass it, the best remaining peaks become events too
   (each the stretch around its peak scoring at least PEAK_FRACTION of it, at least
   ``min_length_ms`` long), so a model that is unsure about some footage still yields K moments.

Peak and mean are taken over the samples inside the unpadded event (after trimming, the
ones inside the trimmed window).  An event also keeps its unpadded edges (``core_start_ms`` /
``core_end_ms``: the moment itself, without the padding that stage 4 adds around it), which the
report shows thumbnails of.  Event files (JSON or CSV) hand events to render/export.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autotosis.core.errors import DataError, UsageError
from autotosis.core.fsutil import check_writable, write_text_atomic

if TYPE_CHECKING:
    from autotosis.detect.adapt import ThresholdAdaptation
    from autotosis.detect.scores import Scores

EVENTS_FORMAT = "autotosis-events/1"
PEAK_FRACTION = 0.5  # a top-k moment below the threshold spans the samples scoring at least this share of its peak
CSV_COLUMNS = ("start", "end", "label", "peak", "mean", "peak_time")


@dataclass(frozen=True)
class Event:
    start_ms: int
    end_ms: int
    label: str
    peak: float  # highest score inside the event
    mean: float  # mean score inside the event
    peak_ms: int  # time of the sample with the highest score
    # The detected moment without its padding (inside start..end): where the scores crossed into and
    # out of the event.  None when not known (events made by hand or read from an older events file):
    # ``moment_edges`` then works them out from the padding parameters.  Not part of equality, so an
    # event compares equal to the same event without them.
    core_start_ms: int | None = field(default=None, compare=False)
    core_end_ms: int | None = field(default=None, compare=False)

    @property
    def duration_ms(self) -> int:
        return self.end_ms - self.start_ms

    @property
    def score(self) -> float:
        """The one number an event goes by wherever people read it: its peak score.

        Shorts' file names, the reel's text, clip names in OTIO/EDL/FCPXML, chapters, subtitles
        and the report all show this (as ``score_text``), so one event never reads 0.59 in one place
        and 0.14 in another; the mean stays in the data files (events JSON/CSV, indexes) by name.
        """
        return float(self.peak)

    @property
    def score_text(self) -> str:
        """``score`` as people read it: two decimals (``0.87``)."""
        return f"{self.score:.2f}"


@dataclass(frozen=True)
class EventParams:
    threshold: float = 0.5  # enter an event when score >= threshold
    release: float | None = None  # stay in the event while score >= release (default: threshold)
    min_length_ms: int = 1000  # drop shorter events (measured before padding)
    merge_gap_ms: int = 2000  # merge events separated by less than this (before padding)
    pad_before_ms: int = 1000
    pad_after_ms: int = 1000
    max_length_ms: int | None = None  # trim longer events around their peak (after padding)
    top_k: int | None = None  # keep the K events with the highest peaks
    top_percent: float | None = None  # select the top P percent of bins instead of thresholding (threshold unused)
    bin_ms: int = 5000
    include_neighbours: bool = True  # with top_percent: also take the bin before and after each
    smooth_ms: int = 0  # centred moving average of the scores over this window before selection (0: none)
    # The model's calibrated threshold is in use and may be raised for a long video the model scores higher
    # overall (``adapt.adapt_threshold``): the median out-of-fold score of the training clips' negative samples.
    adapt_from: float | None = None

    def __post_init__(self) -> None:
        _check_probability("threshold", self.threshold)
        if self.adapt_from is not None:
            _check_probability("adapt_from", self.adapt_from)
        if self.release is not None:
            _check_probability("release", self.release)
            if self.release > self.threshold:
                raise UsageError(
                    f"release ({self.release}) must not be above threshold ({self.threshold})",
                    hint="the event is entered at the threshold and held while the score stays above release",
                )
        for name in ("min_length_ms", "merge_gap_ms", "pad_before_ms", "pad_after_ms", "smooth_ms"):
            _check_int(name, getattr(self, name), minimum=0)
        if self.max_length_ms is not None:
            _check_int("max_length_ms", self.max_length_ms, minimum=1)
        if self.top_k is not None:
            _check_int("top_k", self.top_k, minimum=1)
        if self.top_percent is not None:
            if not _is_real(self.top_percent) or not 0 < self.top_percent <= 100:
                raise UsageError(
                    f"top_percent must be above 0 and at most 100, got {self.top_percent!r}",
                    hint="e.g. 1 keeps the best 1% of bins, as the original tool did",
                )
        _check_int("bin_ms", self.bin_ms, minimum=1)
        if not isinstance(self.include_neighbours, bool):
            raise UsageError(f"include_neighbours must be true or false, got {self.include_neighbours!r}")
        # numpy scalars pass the checks but would not survive json.dumps; store plain numbers.
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.generic):
                object.__setattr__(self, f.name, value.item())

    @property
    def release_level(self) -> float:
        """The score an event must stay at or above once entered."""
        return self.threshold if self.release is None else self.release


def _is_real(value: object) -> bool:
    return (
        isinstance(value, (int, float, np.integer, np.floating))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _check_probability(name: str, value: object) -> None:
    if not _is_real(value) or not 0.0 <= value <= 1.0:  # type: ignore[operator]
        raise UsageError(f"{name} must be a number between 0 and 1, got {value!r}")


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
        raise UsageError(
            f"{name} must be a whole number of milliseconds, got {value!r}"
            if name.endswith("_ms")
            else f"{name} must be a whole number, got {value!r}"
        )
    if value < minimum:
        raise UsageError(f"{name} must be at least {minimum}, got {value}")


# --------------------------------------------------------------------------- finding events


@dataclass(frozen=True)
class _Span:
    """An event under construction: its bounds and the half-open range of its core samples."""

    start_ms: int
    end_ms: int
    lo: int  # first sample index inside the (unpadded) event
    hi: int  # one past the last sample index
    core_start_ms: int = -1  # the unpadded bounds; -1: the same as start_ms / end_ms
    core_end_ms: int = -1

    def __post_init__(self) -> None:
        if self.core_start_ms < 0:
            object.__setattr__(self, "core_start_ms", self.start_ms)
        if self.core_end_ms < 0:
            object.__setattr__(self, "core_end_ms", self.end_ms)


def find_events(
    times_ms: np.ndarray,
    scores: np.ndarray,
    duration_ms: int,
    label: str,
    params: EventParams,
    step_ms: int | None = None,
) -> list[Event]:
    """Events of one score column; see the module docstring for the stages.

    ``duration_ms <= 0`` means "unknown": the video is taken to end where the last sample does.
    NaN scores count as 0.
    """
    times = np.asarray(times_ms)
    values = np.asarray(scores, dtype=np.float64)
    _check_samples(times, values)
    if len(times) == 0:
        return []
    times = times.astype(np.int64)
    values = np.where(np.isnan(values), 0.0, values)
    step = _step(times, duration_ms, step_ms)
    end_of_video = int(duration_ms) if duration_ms > 0 else int(times[-1]) + step
    # Samples whose time lies outside the video (a misreported duration) cannot become events.
    inside = (times < end_of_video) & (times + step > 0)
    if not inside.all():
        times, values = times[inside], values[inside]
        if len(times) == 0:
            return []

    selected = smooth_scores(values, step, params.smooth_ms)
    if params.top_percent is None:
        spans = _hysteresis_spans(times, selected, step, end_of_video, params)
    else:
        spans = _top_bin_spans(times, selected, end_of_video, params)
    spans = _merge(spans, params.merge_gap_ms)
    spans = [s for s in spans if s.end_ms - s.start_ms >= params.min_length_ms]
    if params.top_k is not None and len(spans) < params.top_k and params.top_percent is None:
        spans = _with_best_peaks(spans, times, selected, step, end_of_video, params)
    spans = [_pad(s, params, end_of_video) for s in spans]
    spans = _merge(spans, 0)
    if params.max_length_ms is not None:
        spans = [_trim_around_peak(s, times, values, step, params.max_length_ms) for s in spans]
    events = [_to_event(s, times, values, label) for s in spans]
    if params.top_k is not None and len(events) > params.top_k:
        ranked = sorted(range(len(events)), key=lambda i: (-events[i].peak, events[i].start_ms))
        events = [events[i] for i in sorted(ranked[: params.top_k])]
    return events


# The event rules a model's training calibrates (stored in its checkpoint's ``events``).
CALIBRATED_FIELDS = ("threshold", "min_length_ms", "merge_gap_ms", "smooth_ms")


def event_params_for(
    model_rules: Mapping[str, Any] | None, model_threshold: float | None = None, **given: Any
) -> EventParams:
    """The one rule for event settings: what the user gave (``given``, None = not given), else what
    the model's training calibrated (``model_rules``), else the model's threshold, else the defaults.
    A calibrated threshold comes with the level it adapts from (``adapt_from``: ``detect.adapt``) where the
    model's calibration recorded one.

    Unknown or malformed calibrated values (a hand-edited checkpoint, a newer version) are skipped.
    """
    values: dict[str, Any] = {}
    if _is_real(model_threshold) and 0 <= model_threshold <= 1:  # type: ignore[operator]
        values["threshold"] = float(model_threshold)  # type: ignore[arg-type]
    rules = model_rules or {}
    negative = rules.get("negative_median")
    adapts = given.get("threshold") is None and _is_real(negative) and 0 <= negative < 1
    for name in CALIBRATED_FIELDS:
        value = rules.get(name)
        if not _is_real(value) or value < 0 or (name == "threshold" and value > 1):
            continue
        values[name] = float(value) if name == "threshold" else int(value)
        if name == "threshold" and adapts:
            values["adapt_from"] = float(negative)  # the calibrated threshold is in use: adapted to each video
    values.update({k: v for k, v in given.items() if v is not None})
    return EventParams(**values)


def events_from_scores(scores: Scores, class_name: str, params: EventParams) -> list[Event]:
    """Events of one class of a scanned video."""
    column = scores.column(class_name)
    step = int(scores.step_ms) if scores.step_ms and scores.step_ms > 0 else None
    return find_events(scores.times_ms, column, scores.duration_ms, class_name, params, step)


def _check_samples(times: np.ndarray, values: np.ndarray) -> None:
    if times.ndim != 1 or values.ndim != 1:
        raise DataError(
            f"scores must be one column per class: got times of shape {times.shape} and scores of shape {values.shape}"
        )
    if len(times) != len(values):
        raise DataError(f"{len(times)} sample times but {len(values)} scores")
    if len(times) > 1 and not np.all(np.diff(times) > 0):
        raise DataError("sample times must be strictly increasing")


def smooth_scores(values: np.ndarray, step_ms: int, smooth_ms: int) -> np.ndarray:
    """Centred moving average over about ``smooth_ms`` (an odd number of samples; edges repeat)."""
    width = int(round(smooth_ms / max(step_ms, 1)))
    if width <= 1 or len(values) < 2:
        return values
    width += 1 - width % 2  # odd: centred on each sample
    half = width // 2
    padded = np.concatenate((np.full(half, values[0]), values, np.full(half, values[-1])))
    sums = np.cumsum(np.concatenate(([0.0], padded)))
    return (sums[width:] - sums[:-width]) / width


def _step(times: np.ndarray, duration_ms: int, step_ms: int | None) -> int:
    """How long one sample stands for: the nominal step, else the median spacing."""
    if step_ms is not None:
        if step_ms < 1:
            raise UsageError(f"step_ms must be at least 1, got {step_ms}")
        return int(step_ms)
    if len(times) > 1:
        return max(1, int(round(float(np.median(np.diff(times))))))
    # A lone sample stands for the rest of the video (or a single millisecond if its length is unknown).
    return max(1, int(duration_ms) - int(times[0]))


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Half-open index ranges where ``mask`` is true."""
    edges = np.diff(np.concatenate(([0], mask.astype(np.int8), [0])))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist()))


def _hysteresis_spans(
    times: np.ndarray, values: np.ndarray, step: int, end_of_video: int, params: EventParams
) -> list[_Span]:
    spans = []
    for lo, hi in true_runs(values >= params.release_level):
        # Within a run above the release level, the event begins at the first sample reaching the threshold.
        entered = np.flatnonzero(values[lo:hi] >= params.threshold)
        if len(entered) == 0:
            continue
        first = lo + int(entered[0])
        start = max(0, int(times[first]))
        end = min(end_of_video, int(times[hi - 1]) + step)
        spans.append(_Span(start, end, first, hi))
    return spans


def _top_bin_spans(times: np.ndarray, values: np.ndarray, end_of_video: int, params: EventParams) -> list[_Span]:
    """The original tool's selection: the best P percent of fixed bins by mean score (+ neighbours).

    The original took ``max(int((1 - p) * n_bins), 1)`` bins, which float error sometimes makes
    one too few (``int((1 - 0.90) * 40) == 3``); this takes ``floor(n_bins * P / 100)``, at least one.
    """
    bin_ms = params.bin_ms
    n_bins = -(-end_of_video // bin_ms)
    bin_of_sample = np.clip(times // bin_ms, 0, n_bins - 1)
    sums = np.bincount(bin_of_sample, weights=values, minlength=n_bins)
    counts = np.bincount(bin_of_sample, minlength=n_bins)
    candidates = np.flatnonzero(counts > 0)  # a bin with no samples has no score to rank
    means = sums[candidates] / counts[candidates]
    # The epsilon absorbs float error in P so that 10% of 40 bins is 4.
    keep = min(len(candidates), max(1, math.floor(n_bins * params.top_percent / 100 + 1e-9)))
    order = np.lexsort((candidates, -means))  # highest mean first, earlier bin on ties
    selected = candidates[order[:keep]]
    chosen = np.zeros(n_bins, dtype=bool)
    chosen[selected] = True
    if params.include_neighbours:
        chosen[np.maximum(selected - 1, 0)] = True
        chosen[np.minimum(selected + 1, n_bins - 1)] = True
    spans = []
    for first_bin, stop_bin in true_runs(chosen):
        start = first_bin * bin_ms
        end = min(end_of_video, stop_bin * bin_ms)
        lo, hi = np.searchsorted(times, [start, end], side="left").tolist()
        spans.append(_Span(start, end, int(lo), int(hi)))
    return spans


def _with_best_peaks(
    spans: list[_Span], times: np.ndarray, values: np.ndarray, step: int, end_of_video: int, params: EventParams
) -> list[_Span]:
    """``spans`` plus the highest remaining peaks (below the threshold) until there are ``top_k``.

    A sample already inside an event, or closer to one than the merge gap, is not a new moment.
    """
    free = np.ones(len(times), dtype=bool)

    def take(start_ms: int, end_ms: int) -> None:
        # Touching counts as taken: spans that touch are joined into one event later.
        free[(times + step >= start_ms - params.merge_gap_ms) & (times <= end_ms + params.merge_gap_ms)] = False

    for span in spans:
        take(span.start_ms, span.end_ms)
    added = list(spans)
    while len(added) < (params.top_k or 0) and free.any():
        candidates = np.flatnonzero(free)
        peak = int(candidates[np.argmax(values[candidates])])
        if values[peak] <= 0:
            break  # nothing scores at all: no moment to show
        level = PEAK_FRACTION * values[peak]
        lo, hi = peak, peak + 1
        while lo > 0 and free[lo - 1] and values[lo - 1] >= level:
            lo -= 1
        while hi < len(times) and free[hi] and values[hi] >= level:
            hi += 1
        start, end = max(0, int(times[lo])), min(end_of_video, int(times[hi - 1]) + step)
        short = params.min_length_ms - (end - start)
        if short > 0:  # grow to the minimum length around the stretch, inside the free time around it
            room_lo, room_hi = lo, hi
            while room_lo > 0 and free[room_lo - 1]:
                room_lo -= 1
            while room_hi < len(times) and free[room_hi]:
                room_hi += 1
            first, last = max(0, int(times[room_lo])), min(end_of_video, int(times[room_hi - 1]) + step)
            start = max(first, start - short // 2)
            end = min(last, start + params.min_length_ms)
            start = max(first, end - params.min_length_ms)
        take(start, end)
        if end - start < params.min_length_ms:
            continue  # no room for a moment of the minimum length here
        lo, hi = int(np.searchsorted(times, start - step, side="right")), int(np.searchsorted(times, end, side="left"))
        added.append(_Span(start, end, min(lo, peak), max(hi, peak + 1)))
    return sorted(added, key=lambda s: s.start_ms)


def nothing_found_hint(
    times_ms: np.ndarray, scores: np.ndarray, params: EventParams, step_ms: int | None = None
) -> str:
    """Why a selection came back empty, and what would find something: the highest score and a threshold."""
    from autotosis.core.timefmt import label_time

    values = np.nan_to_num(np.asarray(scores, dtype=np.float64))
    if len(values) == 0:
        return "the scores hold no sample"
    times = np.asarray(times_ms, dtype=np.int64)
    smoothed = smooth_scores(values, _step(times, 0, step_ms), params.smooth_ms)
    best = int(np.argmax(smoothed))
    top = float(smoothed[best])
    where = label_time(max(0, int(times[best])))
    if top <= 0:
        return "every score is 0: the model finds nothing like the task in this video"
    suggestion = math.floor(top * 20) / 20 if top >= 0.05 else round(top, 3)
    smoothed_note = f" (smoothed over {params.smooth_ms / 1000:g} s)" if params.smooth_ms else ""
    return (
        f"the highest score was {top:.2f}{smoothed_note} at {where}, under the threshold {params.threshold:.2f}; "
        f"--threshold {suggestion:g} would find an event there, "
        "and --top-k K takes the K best moments whatever the threshold"
    )


def _merge(spans: list[_Span], gap_ms: int) -> list[_Span]:
    """Join spans separated by less than ``gap_ms`` (spans that touch or overlap always join)."""
    merged: list[_Span] = []
    for span in spans:
        if merged and (span.start_ms - merged[-1].end_ms < gap_ms or span.start_ms <= merged[-1].end_ms):
            last = merged[-1]
            merged[-1] = _Span(
                last.start_ms,
                max(last.end_ms, span.end_ms),
                min(last.lo, span.lo),
                max(last.hi, span.hi),
                min(last.core_start_ms, span.core_start_ms),
                max(last.core_end_ms, span.core_end_ms),
            )
        else:
            merged.append(span)
    return merged


def _pad(span: _Span, params: EventParams, end_of_video: int) -> _Span:
    return _Span(
        max(0, span.start_ms - params.pad_before_ms),
        min(end_of_video, span.end_ms + params.pad_after_ms),
        span.lo,
        span.hi,
        span.core_start_ms,
        span.core_end_ms,
    )


def _peak_index(values: np.ndarray, lo: int, hi: int) -> int:
    return lo + int(np.argmax(values[lo:hi]))


def _trim_around_peak(span: _Span, times: np.ndarray, values: np.ndarray, step: int, max_length_ms: int) -> _Span:
    """Cut a too-long span to ``max_length_ms`` centred on its peak sample, kept inside the span."""
    if span.end_ms - span.start_ms <= max_length_ms:
        return span
    peak = _peak_index(values, span.lo, span.hi)
    centre = int(times[peak]) + step // 2
    start = min(max(span.start_ms, centre - max_length_ms // 2), span.end_ms - max_length_ms)
    end = start + max_length_ms
    # Core samples whose interval [t, t + step) reaches into the window.
    lo = max(span.lo, int(np.searchsorted(times, start - step, side="right")))
    hi = min(span.hi, int(np.searchsorted(times, end, side="left")))
    if lo >= hi:  # a window narrower than one sample: keep the peak itself
        lo, hi = peak, peak + 1
    # The moment, as far as it lies inside the window (a window inside the moment is all moment).
    core_start = min(max(span.core_start_ms, start), end - 1)
    core_end = max(min(span.core_end_ms, end), core_start + 1)
    return _Span(start, end, lo, hi, core_start, core_end)


def _to_event(span: _Span, times: np.ndarray, values: np.ndarray, label: str) -> Event:
    peak = _peak_index(values, span.lo, span.hi)
    # Rounded so that the JSON and CSV files read back to exactly the same values.
    return Event(
        start_ms=int(span.start_ms),
        end_ms=int(span.end_ms),
        label=label,
        peak=round(float(values[peak]), 6),
        mean=round(float(np.mean(values[span.lo : span.hi])), 6),
        peak_ms=max(0, int(times[peak])),  # a sample may start just before 0 yet cover the video's start
        core_start_ms=int(span.core_start_ms),
        core_end_ms=int(span.core_end_ms),
    )


def moment_edges(event: Event, params: EventParams | None = None) -> tuple[int, int]:
    """The detected moment without its padding: ``(start, end)`` in ms, inside the event.

    Events found by this version know them (``core_start_ms`` / ``core_end_ms``); for others
    (an events file of an earlier version) they are the event's edges moved in by the padding
    ``params`` asked for, which lands inside the moment even where the padding was cut short at
    the video's start or end.  Without ``params``, or when that leaves nothing, the event's edges.
    """
    start, end = event.start_ms, event.end_ms
    if event.core_start_ms is not None and event.core_end_ms is not None:
        core_start = min(max(event.core_start_ms, start), end - 1)
        return core_start, max(min(event.core_end_ms, end), core_start + 1)
    if params is not None:
        core_start, core_end = start + params.pad_before_ms, end - params.pad_after_ms
        if core_start < core_end:
            return core_start, core_end
    return start, end


# --------------------------------------------------------------------------- event files


@dataclass(frozen=True)
class EventList:
    """Events of one video with what made them: the contents of an events file."""

    video: Path | None
    duration_ms: int
    label: str
    params: EventParams
    events: tuple[Event, ...]
    adaptation: ThresholdAdaptation | None = None  # how the calibrated threshold was raised for this video


def _seconds(ms: int) -> float:
    return round(ms / 1000, 3)


def write_events(events: EventList, path: Path, *, force: bool = False) -> None:
    """Write JSON (the default) or CSV (by a ``.csv`` suffix), atomically."""
    path = Path(path)
    check_writable(path, force)
    if path.suffix.lower() == ".csv":
        text = _events_csv(events)
    else:
        text = json.dumps(_events_document(events), indent=1, ensure_ascii=False) + "\n"
    write_text_atomic(path, text, force=force)


def _events_csv(events: EventList) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for e in events.events:
        writer.writerow(
            [
                f"{e.start_ms / 1000:.3f}",
                f"{e.end_ms / 1000:.3f}",
                e.label,
                repr(float(e.peak)),
                repr(float(e.mean)),
                f"{e.peak_ms / 1000:.3f}",
            ]
        )
    return buffer.getvalue()


def _events_document(events: EventList) -> dict:
    return {
        "format": EVENTS_FORMAT,
        "video": None if events.video is None else str(events.video),
        "duration_ms": int(events.duration_ms),
        "duration": _seconds(events.duration_ms),
        "label": events.label,
        "params": asdict(events.params),
        **({} if events.adaptation is None else {"threshold_adapted": events.adaptation.as_dict()}),
        "events": [
            {
                "start": _seconds(e.start_ms),
                "end": _seconds(e.end_ms),
                "start_ms": int(e.start_ms),
                "end_ms": int(e.end_ms),
                "label": e.label,
                "peak": float(e.peak),
                "mean": float(e.mean),
                "peak_time": _seconds(e.peak_ms),
                "peak_ms": int(e.peak_ms),
                **_core_fields(e),
            }
            for e in events.events
        ],
    }


def _core_fields(e: Event) -> dict:
    """The unpadded edges of an event that knows them (``core_start`` / ``core_end``, seconds and ms)."""
    if e.core_start_ms is None or e.core_end_ms is None:
        return {}
    return {
        "core_start": _seconds(e.core_start_ms),
        "core_end": _seconds(e.core_end_ms),
        "core_start_ms": int(e.core_start_ms),
        "core_end_ms": int(e.core_end_ms),
    }


def read_events(path: Path) -> EventList:
    """Read a file written by write_events (either format); a bad file raises DataError."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")  # -sig: spreadsheets save CSV with a BOM
    except FileNotFoundError:
        raise DataError(
            f"{path}: no such events file", hint="make one with `autotosis events SCORES -o FILE`"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read events file ({exc})") from None
    if path.suffix.lower() == ".csv" or (path.suffix.lower() != ".json" and text.lstrip().startswith("start,")):
        return _parse_csv(path, text)
    return _parse_json(path, text)


def _parse_json(path: Path, text: str) -> EventList:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    except (ValueError, RecursionError) as exc:  # e.g. an integer too long to convert, absurd nesting
        raise DataError(f"{path}: not a usable JSON file ({exc.__class__.__name__}: {exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != EVENTS_FORMAT:
        raise DataError(f'{path}: not an autotosis events file (no "format": "{EVENTS_FORMAT}")')
    where = f"{path}"
    video = doc.get("video")
    if video is not None and not isinstance(video, str):
        raise DataError(f'{where}: "video" must be a path or null, got {video!r}')
    label = doc.get("label", "")
    if not isinstance(label, str):
        raise DataError(f'{where}: "label" must be text, got {label!r}')
    duration_ms = _time_field(doc, "duration", where, required=False)
    params = _params_from_json(doc.get("params", {}), where)
    raw_events = doc.get("events")
    if not isinstance(raw_events, list):
        raise DataError(f'{where}: "events" must be a list')
    events = tuple(_event_from_json(item, f"{where}: event {i + 1}", label) for i, item in enumerate(raw_events))
    if duration_ms is None:
        duration_ms = max((e.end_ms for e in events), default=0)
    return EventList(None if video is None else Path(video), duration_ms, label, params, events)


def _time_field(
    item: dict, name: str, where: str, *, required: bool = True, seconds_key: str | None = None
) -> int | None:
    """A time given as ``<name>_ms`` (integer ms) and/or in seconds (``<name>``); both must agree."""
    ms_key, seconds_key = f"{name}_ms", seconds_key or name
    ms, seconds = item.get(ms_key), item.get(seconds_key)
    if ms is not None and (not isinstance(ms, int) or isinstance(ms, bool)):
        raise DataError(f'{where}: "{ms_key}" must be a whole number of milliseconds, got {ms!r}')
    if seconds is not None and not _is_real(seconds):
        raise DataError(f'{where}: "{seconds_key}" must be a number of seconds, got {seconds!r}')
    if ms is not None and seconds is not None and abs(ms - seconds * 1000) > 0.5:
        raise DataError(
            f'{where}: "{seconds_key}" ({seconds} s) and "{ms_key}" ({ms}) disagree',
            hint="edit one of them and delete the other",
        )
    value = ms if ms is not None else (None if seconds is None else int(round(seconds * 1000)))
    if value is None:
        if required:
            raise DataError(f'{where}: "{seconds_key}" is missing')
        return None
    if value < 0:
        raise DataError(f'{where}: "{seconds_key}" must not be negative, got {value / 1000:.3f} s')
    return value


def _score_field(item: dict, name: str, where: str) -> float:
    value = item.get(name)
    if not _is_real(value):
        raise DataError(
            f'{where}: "{name}" must be a number, got {value!r}' if name in item else f'{where}: "{name}" is missing'
        )
    return float(value)


def _event_from_json(item: object, where: str, default_label: str) -> Event:
    if not isinstance(item, dict):
        raise DataError(f"{where}: must be an object with start, end, peak, mean")
    start = _time_field(item, "start", where)
    end = _time_field(item, "end", where)
    label = item.get("label", default_label)
    if not isinstance(label, str):
        raise DataError(f'{where}: "label" must be text, got {label!r}')
    peak_ms = _time_field(item, "peak", where, required=False, seconds_key="peak_time")
    event = _checked_event(
        start,
        end,
        label,
        _score_field(item, "peak", where),
        _score_field(item, "mean", where),
        start if peak_ms is None else peak_ms,
        where,
    )
    core_start = _time_field(item, "core_start", where, required=False)
    core_end = _time_field(item, "core_end", where, required=False)
    if core_start is None or core_end is None:
        return event  # an older file: moment_edges works them out from the padding
    if not start <= core_start < core_end <= end:
        raise DataError(
            f"{where}: the moment ({core_start / 1000:.3f}-{core_end / 1000:.3f} s) must lie inside the event "
            f"({start / 1000:.3f}-{end / 1000:.3f} s)",
            hint='edit "core_start" and "core_end" (or delete them)',
        )
    return replace(event, core_start_ms=core_start, core_end_ms=core_end)


def _checked_event(
    start: int, end: int, label: str, peak: float, mean: float, peak_ms: int, where: str, *, core: bool = False
) -> Event:
    if end <= start:
        raise DataError(f"{where}: ends ({end / 1000:.3f} s) before or where it starts ({start / 1000:.3f} s)")
    return Event(start, end, label, peak, mean, peak_ms, *((start, end) if core else ()))


def _params_from_json(raw: object, where: str) -> EventParams:
    if not isinstance(raw, dict):
        raise DataError(f'{where}: "params" must be an object')
    known = {f.name for f in fields(EventParams)}
    # Unknown keys are skipped so that files from a newer version still render.
    values = {k: v for k, v in raw.items() if k in known}
    try:
        return EventParams(**values)
    except UsageError as exc:
        raise DataError(f'{where}: bad "params": {exc.message}') from None


def _parse_csv(path: Path, text: str) -> EventList:
    reader = csv.DictReader(io.StringIO(text))
    header = reader.fieldnames or []
    missing = [c for c in CSV_COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{path}: CSV events need the columns {','.join(CSV_COLUMNS)}; missing {', '.join(missing)}",
            hint="the first line must be the header",
        )
    events = []
    try:
        for row in reader:
            line = reader.line_num
            if not any((value or "").strip() for value in row.values() if isinstance(value, str)):
                continue  # blank line
            where = f"{path}:{line}"
            if None in row or any(value is None for value in row.values()):
                got = len(row) - (None in row) - sum(value is None for value in row.values()) + len(row.get(None) or [])
                raise DataError(f"{where}: expected {len(header)} values ({','.join(header)}), got {got}")
            start, end, peak_ms = (_csv_seconds(row[c], c, where) for c in ("start", "end", "peak_time"))
            label = row["label"] or ""
            events.append(
                _checked_event(
                    start,
                    end,
                    label,
                    _csv_number(row["peak"], "peak", where),
                    _csv_number(row["mean"], "mean", where),
                    peak_ms,
                    where,
                    # CSV records no padding: the events are taken as the moments themselves.
                    core=True,
                )
            )
    except csv.Error as exc:
        raise DataError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None
    label = events[0].label if events else ""
    duration_ms = max((e.end_ms for e in events), default=0)
    # CSV holds only the events: the video, its length and the parameters are not recorded.
    return EventList(None, duration_ms, label, EventParams(), tuple(events))


def _csv_number(text: str | None, column: str, where: str) -> float:
    try:
        value = float((text or "").strip())
    except ValueError:
        raise DataError(f"{where}: column {column!r} must be a number, got {text!r}") from None
    if not math.isfinite(value):
        raise DataError(f"{where}: column {column!r} must be a finite number, got {text!r}")
    return value


def _csv_seconds(text: str | None, column: str, where: str) -> int:
    value = _csv_number(text, column, where)
    if value < 0:
        raise DataError(f"{where}: column {column!r} must not be negative, got {text!r}")
    return int(round(value * 1000))


def event_spans(events: Sequence[Event]) -> list[tuple[int, int]]:
    """``(start_ms, end_ms)`` pairs, the form the metrics take."""
    return [(e.start_ms, e.end_ms) for e in events]
