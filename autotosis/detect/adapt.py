"""The calibrated threshold, adapted to one video: raised where the model scores the whole video higher.

A model's event threshold is calibrated on the out-of-fold scores of its training clips (``train``), but
the model that scans is the final fit on all of them, and on a streamer or room it has never seen it may
score the calm stretches and the look-alikes higher than the fold models scored their held-out clips: the
calibrated threshold then lets look-alikes through.  A long video is mostly not highlight, so its median
score says how the model sees this footage's ordinary moments; compared with the median out-of-fold score
of the training clips' negative samples (``negative_median``, stored with the calibrated rules) it tells
how far the model has moved on this footage.  The threshold is raised by ``ADAPT_SHARE`` of that
difference on the logit scale, and never lowered.

Measured on the hard quality benchmark (issue 15, BENCHMARKS.md): the rule was fixed on six trainings and
then checked on new ones.  It applies only where its reasoning holds: the threshold comes from the model's
calibration (a ``--threshold`` given by the user is kept as it is), the video is at least
``ADAPT_MIN_VIDEO_MS`` long (a short clip may be mostly highlight), and its median sample scores below the
calibrated threshold (where most of a video scores as highlight, the task is one that fills the screen and
the median is no measure of the ordinary moments).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

# Only what the CLI's --help reads (ADAPT_MIN_VIDEO_MS) is needed at start-up: numpy and the event code are
# imported where scores are read.
if TYPE_CHECKING:
    import numpy as np

    from autotosis.detect.segments import EventParams

ADAPT_SHARE = 0.5  # share of the logit difference the threshold is raised by
ADAPT_MIN_VIDEO_MS = 300_000  # shorter videos keep the calibrated threshold
ADAPT_GRID_MS = 2000  # the video's level is read on this grid, so a coarse scan's dense stretches do not weigh more
ADAPT_MAX_THRESHOLD = 0.995  # no raise goes beyond this: a threshold nothing can pass finds nothing at all
# Both levels are read as at least this: below 1% every score says "ordinary" alike, and the ratio of two tiny
# medians (0.000132 against 0.000119 on the 600-clip run) is noise that raised the threshold for nothing.
ADAPT_MIN_LEVEL = 0.01
_EPS = 1e-4


@dataclass(frozen=True)
class ThresholdAdaptation:
    """How the calibrated threshold was raised for one video."""

    calibrated: float  # the model's calibrated threshold
    threshold: float  # the threshold used for this video
    video_median: float  # the video's median score (on an ADAPT_GRID_MS grid)
    negative_median: float  # the median out-of-fold score of the training clips' negative samples

    def describe(self) -> str:
        return (
            f"threshold raised from the model's {self.calibrated:.2f} to {self.threshold:.3f} for this video: its "
            f"median score is {self.video_median:.2f}, the training clips' ordinary moments scored "
            f"{self.negative_median:.2f} (an unfamiliar streamer or room); --threshold sets one yourself"
        )

    def as_dict(self) -> dict:
        return {
            "calibrated": round(self.calibrated, 4),
            "threshold": round(self.threshold, 4),
            "video_median": round(self.video_median, 4),
            "negative_median": round(self.negative_median, 4),
        }


def _logit(p: float) -> float:
    p = min(max(float(p), _EPS), 1 - _EPS)
    return math.log(p / (1 - p))


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def adapt_levels(
    candidate: float, times_ms: np.ndarray, values: np.ndarray, duration_ms: int, params: EventParams
) -> tuple[float, float] | None:
    """The coarse scan's candidate level (a score below the calibrated threshold) and "clearly high" level for a
    video whose keyframes scored ``values``, where its events' threshold will be raised (``adapt_threshold``):
    the raised threshold, and the candidate level raised by as many logits, so that it keeps its margin under
    the threshold.  None where the threshold stays."""
    _, adaptation = adapt_threshold(times_ms, values, duration_ms, params)
    if adaptation is None:
        return None
    raised = _sigmoid(_logit(candidate) + _logit(adaptation.threshold) - _logit(adaptation.calibrated))
    return raised, adaptation.threshold


def video_median(times_ms: np.ndarray, values: np.ndarray) -> float:
    """The median score of a video read on an ``ADAPT_GRID_MS`` grid (``on_grid``)."""
    import numpy as np

    return float(np.median(on_grid(times_ms, values)))


def on_grid(times_ms: np.ndarray, values: np.ndarray) -> np.ndarray:
    """A video's scores read on an ``ADAPT_GRID_MS`` grid (each grid time takes the first sample at or after it;
    NaN read as 0), so stretches scanned densely count as much as stretches scanned sparsely."""
    import numpy as np

    times = np.asarray(times_ms, dtype=np.int64)
    scores = np.nan_to_num(np.asarray(values, dtype=np.float64))
    grid = np.arange(int(times[0]), int(times[-1]), ADAPT_GRID_MS)
    return scores[np.clip(np.searchsorted(times, grid), 0, len(scores) - 1)] if len(grid) else scores


def adapt_threshold(
    times_ms: np.ndarray, values: np.ndarray, duration_ms: int, params: EventParams
) -> tuple[EventParams, ThresholdAdaptation | None]:
    """``params`` for this video: the threshold raised as the module docstring says when ``params.adapt_from``
    (the model's ``negative_median``) is set, with ``adapt_from`` cleared; the adaptation, or None where the
    threshold stays."""
    if params.adapt_from is None:
        return params, None
    kept = replace(params, adapt_from=None)
    if params.top_percent is not None or len(values) == 0 or duration_ms < ADAPT_MIN_VIDEO_MS:
        return kept, None
    level = video_median(times_ms, values)
    if level >= params.threshold:
        return kept, None
    shift = _logit(max(level, ADAPT_MIN_LEVEL)) - _logit(max(params.adapt_from, ADAPT_MIN_LEVEL))
    if shift <= 0:
        return kept, None
    raised = min(_sigmoid(_logit(params.threshold) + ADAPT_SHARE * shift), ADAPT_MAX_THRESHOLD)
    if raised <= params.threshold:  # a calibrated threshold already at the cap, or a shift too small to show
        return kept, None
    adapted = replace(kept, threshold=raised)
    return adapted, ThresholdAdaptation(params.threshold, raised, level, float(params.adapt_from))
