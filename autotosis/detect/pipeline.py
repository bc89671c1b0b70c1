"""Video -> scores -> events: the detect stage as one chain, with the one rule for event settings.

Every command that finds events in video -- ``scan`` + ``events``, ``reel``, ``shorts``,
``report``, ``batch``, ``review``, the demo -- goes through ``scan_events`` or, for scores it
already has, ``detect_events``.  Which event settings apply is decided in one place,
``segments.event_params_for``: what the user gave, else the rules the model's training
calibrated (stored in its checkpoint, and recorded by every scan in its scores), else the
model's threshold, else the defaults; a calibrated threshold is then adapted to each video
(``adapt``).  ``event_params`` applies that rule to a model's
metadata (``ModelInfo``) or to a scan's record of it (``ScanInfo``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.detect.adapt import adapt_threshold
from autotosis.detect.scores import ScanInfo, Scores
from autotosis.detect.segments import EventList, EventParams, event_params_for, events_from_scores

if TYPE_CHECKING:
    from autotosis.detect.scan import ScanOptions
    from autotosis.model.info import ModelInfo
    from autotosis.model.predictor import Predictor


@dataclass(frozen=True)
class Detection:
    """A scanned video and the events found in it."""

    scores: Scores
    events: EventList


def event_params(model: ModelInfo | ScanInfo | None, **given: Any) -> EventParams:
    """The event settings for ``model`` (its metadata, or a scan's record of it; None: no model):
    ``given`` (None = not given), else its calibrated rules, else its threshold, else the defaults.

    A model trained with sound (``ModelInfo.audio``) has two sets of rules: those calibrated on the
    combined scores (what its scan gives a video with sound), used here, and the picture's own (a
    video without sound): a scan records the ones that apply to its scores, so what reads a scan's
    record (``detect_events``) always uses the right ones; ``picture_only`` gives the others.
    """
    if model is None:
        return event_params_for(None, None, **given)
    audio = getattr(model, "audio", None)
    if isinstance(audio, dict) and audio.get("combiner") and not isinstance(model, ScanInfo):
        return event_params_for(audio.get("events") or {}, audio.get("threshold"), **given)
    return event_params_for(model.events, model.threshold, **given)


def picture_only(model: ModelInfo) -> ModelInfo:
    """``model`` without its sound combiner: for scores of the picture alone (``live`` scores frames)."""
    from dataclasses import replace

    return replace(model, audio={})


def detect_events(
    scores: Scores, class_name: str | None = None, params: EventParams | None = None, **given: Any
) -> EventList:
    """The events of one class (default: the first that is not background) of scanned video.

    ``params``: settings already decided (``batch`` decides them before scanning, as part of
    its settings); without them, ``event_params(scores.scan, **given)``: the user's settings,
    else the rules of the model that made the scores.  A calibrated threshold is adapted to this video
    (``adapt.adapt_threshold``; the list's ``adaptation`` says how).
    """
    label = class_name or scores.default_class()
    if params is None:
        params = event_params(scores.scan, **given)
    params, adaptation = adapt_threshold(scores.times_ms, scores.column(label), scores.duration_ms, params)
    events = events_from_scores(scores, label, params)
    return EventList(scores.video, scores.duration_ms, label, params, tuple(events), adaptation)


def scan_events(
    video: Path | str,
    model: Path | str,
    options: ScanOptions | None = None,
    *,
    class_name: str | None = None,
    params: EventParams | None = None,
    predictor: Predictor | None = None,
    backend: str | None = None,
    progress: ProgressCallback = no_progress,
    **given: Any,
) -> Detection:
    """Scan ``video`` with ``model`` (``scan.scan_video`` with ``options``: cached) and find its events
    (``detect_events``).

    ``class_name``, ``params`` and ``given`` as for ``detect_events``.
    """
    from autotosis.detect.scan import ScanOptions, scan_video  # looked up when called: tests stand in for the scan

    scores = scan_video(
        Path(video), Path(model), options or ScanOptions(), progress=progress, predictor=predictor, backend=backend
    )
    return Detection(scores, detect_events(scores, class_name, params, **given))
