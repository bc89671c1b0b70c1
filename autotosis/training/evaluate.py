"""How well a model does on labelled data: frame- and event-level scores, per clip and overall.

Pure functions over values: each labelled clip arrives as a ``LabelledScores`` (the model's
scores at some times plus the clip's label spans); the CLI does the scanning.  The truth
follows the training rules exactly (``dataset.frame_targets``): frames within the edge band
of a sure span and inside ``~unsure`` spans (plus the band) are not counted at all.

- frame level: a sample is "predicted CLASS" when its score reaches the threshold;
  precision/recall/F1 over the counted samples, and average precision over their scores;
- event level: events are found in the scores exactly as ``autotosis events`` finds them, but
  without padding (padding is for viewing), and matched one-to-one to the labelled spans
  of the class when their IoU reaches ``iou``.  A predicted event that matches no span and
  lies mostly inside unsure spans is not counted (the truth there is unknown).

Folder (image) data sets have no time axis: they get frame-level scores only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from autotosis.core.errors import DataError, ModelError, UsageError
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.core.region import Region
from autotosis.detect.scores import Scores
from autotosis.detect.segments import EventParams, event_spans, find_events
from autotosis.labels.values import ClipEntry, LabelFile, Span, match_model_classes
from autotosis.training.dataset import IGNORE, counted_mask, frame_targets, span_class_index
from autotosis.training.metrics import PRF, average_precision, event_prf, expected_calibration_error, frame_prf

if TYPE_CHECKING:
    from autotosis.detect.scan import ScanOptions
    from autotosis.training.sampling import ImageFolder

# An unmatched predicted event counts as a false positive unless at least this much of it lies
# inside unsure spans.
UNSURE_OVERLAP = 0.5


@dataclass(frozen=True)
class EvalOptions:
    iou: float = 0.3  # an event matches a labelled span when their IoU reaches this
    band_ms: int = 500  # samples this close to a span edge are not counted (as in training)
    threshold: float | None = None  # None: the model's suggested threshold
    min_length_ms: int = 1000  # event finding, as `autotosis events` (without padding)
    merge_gap_ms: int = 2000
    smooth_ms: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.iou <= 1:
            raise UsageError(f"iou must be above 0 and at most 1, got {self.iou}")
        if self.band_ms < 0:
            raise UsageError(f"the edge band must not be negative, got {self.band_ms} ms")
        if self.threshold is not None and not 0 <= self.threshold <= 1:
            raise UsageError(f"threshold must be between 0 and 1, got {self.threshold}")

    def event_params(self, threshold: float) -> EventParams:
        return EventParams(
            threshold=threshold,
            min_length_ms=self.min_length_ms,
            merge_gap_ms=self.merge_gap_ms,
            smooth_ms=self.smooth_ms,
            pad_before_ms=0,
            pad_after_ms=0,
        )


@dataclass(frozen=True)
class LabelledScores:
    """One labelled unit (a clip, or a scene of a folder data set) with the model's scores.

    For a clip, ``times_ms`` are the sample times, ``spans`` its label spans and ``targets``
    None (they are derived from the spans).  For images, ``times_ms`` is None and
    ``targets`` holds each image's class index.
    """

    name: str
    probs: np.ndarray  # float32 (N, C): the model's class probabilities
    times_ms: np.ndarray | None = None  # int64 (N,)
    duration_ms: int = 0
    spans: tuple[Span, ...] = ()
    targets: np.ndarray | None = None  # int64 (N,), class index or IGNORE
    line: int = 0  # the label file line, 0 when there is none
    region: Region | None = None  # the part of the frame that was scored

    @property
    def has_time(self) -> bool:
        return self.times_ms is not None


@dataclass(frozen=True)
class ClipResult:
    name: str
    line: int
    counted: int  # samples that count (not ignored)
    ignored: int
    positives: int  # counted samples that are the class
    frame: PRF
    average_precision: float | None  # None when the clip has no positive sample
    event: PRF | None  # None for images
    events_found: int
    events_true: int
    events_unsure: int  # predicted events not counted because they lie in unsure spans


@dataclass(frozen=True)
class ClassReport:
    class_name: str
    threshold: float
    frame: PRF
    average_precision: float
    event: PRF | None  # None when no unit has a time axis
    clips: tuple[ClipResult, ...]
    # Expected calibration error of the scores over the counted samples: 0 when a score of 0.8 is
    # right 80% of the time (metrics.expected_calibration_error).
    calibration_error: float = 0.0

    def failing(self, below: float = 0.5) -> tuple[ClipResult, ...]:
        """Clips whose event F1 (frame F1 for images) is below ``below``, worst first."""
        return tuple(c for c in worst_first(self.clips) if _key_f1(c) < below)


@dataclass(frozen=True)
class EvalReport:
    task: str
    model: str
    classes: tuple[str, ...]
    iou: float
    band_ms: int
    reports: tuple[ClassReport, ...]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key_f1(clip: ClipResult) -> float:
    return clip.event.f1 if clip.event is not None else clip.frame.f1


def worst_first(clips: Sequence[ClipResult]) -> list[ClipResult]:
    """Clips ordered so the ones that fail most come first (event F1, then frame F1)."""
    return sorted(clips, key=lambda c: (_key_f1(c), c.frame.f1, c.line, c.name))


# --------------------------------------------------------------------------- one unit


def unit_targets(unit: LabelledScores, classes: Sequence[str], band_ms: int) -> np.ndarray:
    """Class index per sample, IGNORE where the truth is unknown (edge band, unsure spans)."""
    if unit.targets is not None:
        targets = np.asarray(unit.targets, dtype=np.int64)
    elif unit.times_ms is not None:
        targets = frame_targets(unit.times_ms, unit.spans, unit.duration_ms, band_ms, classes)
    else:
        raise DataError(f"{unit.name}: neither sample times nor targets")
    if targets.shape != (len(unit.probs),):
        raise DataError(f"{unit.name}: {len(unit.probs)} scores but {len(targets)} targets")
    return targets


def _class_spans(unit: LabelledScores, class_index: int, classes: Sequence[str]) -> list[tuple[int, int]]:
    """The sure spans of one class, as (start, end) ms."""
    return [
        (s.start_ms, s.resolved_end(unit.duration_ms))
        for s in unit.spans
        if not s.unsure and span_class_index(s, classes) == class_index
    ]


def _unsure_fraction(start: int, end: int, unsure: Sequence[tuple[int, int]]) -> float:
    covered = sum(max(0, min(end, b) - max(start, a)) for a, b in unsure)
    return covered / max(1, end - start)


def evaluate_unit(
    unit: LabelledScores, class_index: int, classes: Sequence[str], threshold: float, options: EvalOptions
) -> tuple[ClipResult, np.ndarray, np.ndarray]:
    """(result, counted scores, counted truth) of one unit for one class; the arrays are for pooling."""
    targets = unit_targets(unit, classes, options.band_ms)
    column = np.asarray(unit.probs, dtype=np.float64)[:, class_index]
    counted = counted_mask(targets)
    truth = targets == class_index
    frame = frame_prf(column >= threshold, truth, ~counted)
    positives = int(np.count_nonzero(truth & counted))
    ap = average_precision(column[counted], truth[counted]) if positives else None
    event, found, true_count, unsure_count = None, 0, 0, 0
    if unit.has_time:
        truth_spans = _class_spans(unit, class_index, classes)
        times = np.asarray(unit.times_ms, dtype=np.int64)
        predicted = event_spans(
            find_events(times, column, unit.duration_ms, classes[class_index], options.event_params(threshold))
        )
        unsure = [
            (s.start_ms - options.band_ms, s.resolved_end(unit.duration_ms) + options.band_ms)
            for s in unit.spans
            if s.unsure
        ]
        kept = [p for p in predicted if not _in_unsure_only(p, truth_spans, unsure, options.iou)]
        event = event_prf(kept, truth_spans, min_iou=options.iou)
        found, true_count, unsure_count = len(kept), len(truth_spans), len(predicted) - len(kept)
    result = ClipResult(
        name=unit.name,
        line=unit.line,
        counted=int(np.count_nonzero(counted)),
        ignored=int(np.count_nonzero(~counted)),
        positives=positives,
        frame=frame,
        average_precision=ap,
        event=event,
        events_found=found,
        events_true=true_count,
        events_unsure=unsure_count,
    )
    return result, column[counted], truth[counted]


def _in_unsure_only(
    event: tuple[int, int], truth: Sequence[tuple[int, int]], unsure: Sequence[tuple[int, int]], iou: float
) -> bool:
    if not unsure:
        return False
    if truth and event_prf([event], truth, min_iou=iou).tp:
        return False
    return _unsure_fraction(event[0], event[1], unsure) >= UNSURE_OVERLAP


# --------------------------------------------------------------------------- many units


def evaluate_class(
    units: Sequence[LabelledScores], classes: Sequence[str], class_name: str, threshold: float, options: EvalOptions
) -> ClassReport:
    """Scores of one class over every unit: per unit, and pooled (counts summed, AP over all samples)."""
    if class_name not in classes:
        raise UsageError(f"no class {class_name!r}", hint=f"the model's classes are {', '.join(classes)}")
    index = list(classes).index(class_name)
    results, all_scores, all_truth = [], [], []
    for unit in units:
        result, scores, truth = evaluate_unit(unit, index, classes, threshold, options)
        results.append(result)
        all_scores.append(scores)
        all_truth.append(truth)
    scores = np.concatenate(all_scores) if all_scores else np.zeros(0)
    truth = np.concatenate(all_truth) if all_truth else np.zeros(0, dtype=bool)
    frame = _pooled([r.frame for r in results])
    timed = [r.event for r in results if r.event is not None]
    event = _pooled(timed) if timed else None
    return ClassReport(
        class_name=class_name,
        threshold=float(threshold),
        frame=frame,
        average_precision=average_precision(scores, truth),
        event=event,
        clips=tuple(results),
        calibration_error=expected_calibration_error(scores, truth),
    )


def _pooled(parts: Sequence[PRF]) -> PRF:
    return PRF.from_counts(sum(p.tp for p in parts), sum(p.fp for p in parts), sum(p.fn for p in parts))


def scored_classes(classes: Sequence[str], wanted: str | None) -> list[str]:
    """The classes to report: ``wanted``, or every class but background."""
    if wanted is not None:
        if wanted not in classes:
            raise UsageError(f"no class {wanted!r}", hint=f"the model's classes are {', '.join(classes)}")
        return [wanted]
    return [c for c in classes if c != "background"] or list(classes[1:])


def check_label_classes(
    label_classes: Sequence[str], model_classes: Sequence[str], source: str, *, any_binary: bool = True
) -> None:
    """The labels must speak of the model's classes (same names; the order may differ): a ModelError
    (exit 5, as for a checkpoint of another task) when they do not.

    With ``any_binary`` two binary class lists always pass: a label file's own names are checked
    by ``labels.match_model_classes`` (in ``score_labelled_clips``), which knows whether its one
    class was declared (``# task=``) or only taken from the file name.  Folder classes are names
    the user gave: ``any_binary=False``.
    """

    def positives(classes: Sequence[str]) -> list[str]:
        return [c for c in classes if c != "background"]

    if any_binary and len(positives(label_classes)) == 1 and len(positives(model_classes)) == 1:
        return
    missing = [c for c in label_classes if c not in model_classes]
    if missing:
        raise ModelError(
            f"the model knows the classes {', '.join(model_classes)}, but {source} has {', '.join(missing)}",
            hint="use a model trained on these classes, or rename the folders / fix '# task=' or '# classes='",
        )


def remap_targets(targets: np.ndarray, label_classes: Sequence[str], model_classes: Sequence[str]) -> np.ndarray:
    """Class indices of the labels' class list turned into indices of the model's list."""
    lookup = np.array([list(model_classes).index(c) for c in label_classes], dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    return np.where(targets == IGNORE, IGNORE, lookup[np.clip(targets, 0, None)])


def evaluate_units(
    units: Sequence[LabelledScores],
    classes: Sequence[str],
    options: EvalOptions,
    *,
    task: str,
    model: str,
    default_threshold: float,
    class_name: str | None = None,
) -> EvalReport:
    """The full report: one ClassReport per scored class."""
    threshold = options.threshold if options.threshold is not None else default_threshold
    if not units:
        raise DataError("nothing to evaluate: no labelled clips or images")
    reports = tuple(
        evaluate_class(units, classes, name, threshold, options) for name in scored_classes(classes, class_name)
    )
    return EvalReport(
        task=task, model=model, classes=tuple(classes), iou=options.iou, band_ms=options.band_ms, reports=reports
    )


def clip_unit(
    entry: ClipEntry,
    scores: Scores,
    label_classes: Sequence[str],
    region: Region | None = None,
) -> LabelledScores:
    """A labelled clip and its scores; spans without a class get the file's only class by name,
    so the model's class order does not matter."""
    default = label_classes[1] if len(label_classes) == 2 else None
    spans = tuple(s if s.unsure or s.label else replace(s, label=default) for s in entry.spans)
    return LabelledScores(
        name=entry.raw_path or entry.path.name,
        probs=scores.probs,
        times_ms=scores.times_ms,
        duration_ms=scores.duration_ms,
        spans=spans,
        line=entry.line,
        region=region,
    )


def report_json(report: EvalReport) -> dict[str, Any]:
    """The report as plain JSON data (paths as text)."""

    def plain(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [plain(v) for v in value]
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, np.generic):
            return value.item()
        return value

    return {"format": "autotosis-eval/1", **plain(report.to_dict())}


# --------------------------------------------------------------------------- scanning labelled clips


def score_labelled_clips(
    labels: LabelFile,
    model_path: Path,
    *,
    scan: ScanOptions | None = None,
    crop_borders: bool = False,
    progress: ProgressCallback = no_progress,
) -> list[LabelledScores]:
    """Scan every clip of ``labels`` with the model (cached) and pair the scores with its spans.

    The label file must speak of the model's classes (``labels.match_model_classes``: a ModelError
    before anything is scanned); a binary file without ``# task=`` fits any model of one class.

    ``scan`` gives the sampling rate, batch size and cache use.  Each clip is scanned densely
    with the crop its label line gives (the whole frame when it has none), as its training
    frames were taken; ``crop_borders`` crops letterbox borders away from clips without a
    crop, as ``train --crop-borders`` does.
    """
    from autotosis.detect.scan import ScanOptions, scan_video
    from autotosis.model.predictor import read_model_info
    from autotosis.training.dataset import clip_regions, validate_against_media

    scan = scan or ScanOptions()
    info = read_model_info(Path(model_path))
    labels = match_model_classes(labels, info.classes, model=str(model_path))
    infos = validate_against_media(labels)
    regions = clip_regions(labels, infos, crop_borders)
    label_classes = labels.class_names()
    units = []
    for number, entry in enumerate(labels.entries):
        progress("eval (clips)", number, len(labels.entries))
        region = regions[entry.path]
        options = replace(scan, region=region, full_frame=region is None, mode="dense")
        scores = scan_video(entry.path, model_path, options, progress=progress)
        units.append(clip_unit(entry, scores, label_classes, region))
    progress("eval (clips)", len(labels.entries), len(labels.entries))
    return units


def score_image_folder(
    folder: ImageFolder, model_path: Path, *, crop_borders: bool = False, progress: ProgressCallback = no_progress
) -> list[LabelledScores]:
    """Classify every image of a folder data set, one unit per scene (frame-level only).

    Images are cropped with the model's crop and scaled to its input size, as in training.
    """
    from autotosis.model.predictor import load_predictor
    from autotosis.training.sampling import folder_frames, image_names

    predictor = load_predictor(Path(model_path))
    info = predictor.info
    check_label_classes(folder.classes, info.classes, str(folder.root), any_binary=False)
    frameset = folder_frames(
        folder,
        size=info.input_size,
        region=info.crop,
        crop_borders=crop_borders,
        task=f"{info.task}-eval",
        progress=progress,
    )
    units = []
    for number, clip in enumerate(frameset.clips):
        progress("eval (scenes)", number, len(frameset.clips))
        probs = predictor.predict(clip.load_frames())
        targets = remap_targets(clip.targets, folder.classes, info.classes)
        first = image_names(clip)[0] if len(clip.targets) else ""
        scene = clip.clip.relative_to(folder.root).as_posix()
        units.append(
            LabelledScores(name=f"{scene} ({len(clip.targets)} images, e.g. {first})", probs=probs, targets=targets)
        )
    progress("eval (scenes)", len(frameset.clips), len(frameset.clips))
    return units
