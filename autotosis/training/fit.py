"""Training that uses every labelled clip: clip-grouped k-fold cross-validation, then one fit on all.

A dozen rough labels are too few to hold a quarter of them out for choosing a checkpoint and a
threshold: three validation clips give a noisy F1 and a threshold fitted to them.  Instead:

1. k folds, grouped by clip (frames of one clip are near-duplicates) and stratified so every
   fold holds highlights: k models, each trained without one fold, score that fold's clips.
   Every clip then has *out-of-fold* scores, from a model that never saw it.
2. On those scores, at the scan's sampling rate and at the event level, choose the threshold
   and the event rules (calibrate.py), and list each clip's confident mistakes.
3. Confident mistakes among the negatives (look-alike moments: the face cam doing something
   that resembles a highlight) are drawn more often in the final fit.
4. The final model trains on every clip for the same number of epochs (the schedule set by
   the data, train.auto_images) and stores the calibrated rules in its checkpoint, so `events`,
   `reel`, `batch` and `shorts` use them without flags.

The fold models train as many passes over their clips as the final fit does over all of them
(the same schedule): out-of-fold scores then have the final model's confidence, so the threshold
chosen on them still fits the final model.  With half the passes (an earlier version) the fold
models scored look-alikes and highlights less sharply, the chosen threshold came out far too low
and the final model fired on look-alikes.
"""

from __future__ import annotations

import math
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from autotosis.core.errors import UsageError
from autotosis.model.model import build_model, load_checkpoint, predict_probs, torch_threads
from autotosis.training.audio import (
    AudioChoice,
    check_audio_mode,
    choice_from_state,
    choose_audio,
    oof_to_state,
)
from autotosis.training.calibrate import (
    Calibration,
    ClipMistakes,
    EventRules,
    OofClip,
    calibrate_scores,
    clip_mistakes,
    evaluate_rules,
)
from autotosis.training.dataset import ClipFrames, FrameSet, counted_mask, highlight_mask
from autotosis.training.metrics import PRF, average_precision
from autotosis.training.train import (
    PRECISE_BN_FRAMES,
    EpochMetrics,
    TrainConfig,
    TrainResult,
    _usable,
    auto_images,
    last_checkpoint_path,
    run_length,
    splits_for_validation,
    train,
)

MIN_CLIPS_PER_FOLD = 1
HARD_CONFIDENCE = 0.6  # a negative frame the out-of-fold model scores at least this high is a hard negative
# With fewer labelled highlights than this, out-of-fold event counts are too few to move the rules
# away from the defaults (one event more or less would decide): the defaults are kept.
MIN_HIGHLIGHTS_TO_CALIBRATE = 5
SCAN_FPS = 2.0  # the scan's default sampling rate: out-of-fold scores are read at it
_FIT_STATE = "fit"  # key of the cross-validation outcome in the final fit's resume state


@dataclass(frozen=True)
class TrainingSpeed:
    """Images per second on this machine (``measure_speed``): training steps, and scoring (forward passes only)."""

    train: float
    score: float


@dataclass(frozen=True)
class FitPlan:
    folds: int  # 0: no cross-validation
    fold_epochs: int
    fold_frames_per_epoch: int | None  # None: every frame each epoch
    epochs: int  # of the final fit
    frames_per_epoch: int | None
    train_frames: int  # usable frames of all clips
    clips: int
    images: int  # images drawn in all runs together
    estimated_s: float | None  # training steps and the scoring passes (validation, out-of-fold scores)
    note: str  # why there is no cross-validation, or ""

    def describe(self) -> str:
        eta = f", about {_minutes(self.estimated_s)}" if self.estimated_s else ""

        def length(epochs: int, per_epoch: int | None) -> str:
            return f"{epochs} epoch{'s' if epochs != 1 else ''}" + (f" of {per_epoch} frames" if per_epoch else "")

        final = length(self.epochs, self.frames_per_epoch)
        if not self.folds:
            return (
                f"one run of {final} on {self.clips} clips ({self.train_frames} frames; {self.images} images{eta}); "
                f"{self.note}"
            )
        return (
            f"{self.folds}-fold cross-validation by clip "
            f"({length(self.fold_epochs, self.fold_frames_per_epoch)} each), "
            f"then a final fit on all {self.clips} clips ({self.train_frames} frames) for {final}: "
            f"{self.images} images{eta}"
        )

    def fold_config(self, config: TrainConfig) -> TrainConfig:
        return replace(config, epochs=self.fold_epochs, max_frames_per_epoch=self.fold_frames_per_epoch, select="last")

    def final_config(self, config: TrainConfig) -> TrainConfig:
        return replace(config, epochs=self.epochs, max_frames_per_epoch=self.frames_per_epoch)


@dataclass(frozen=True)
class FoldResult:
    fold: int  # 1-based
    train_clips: int
    val_clips: int
    val_loss: float
    ap: float  # frame average precision on the fold's clips
    frame: PRF  # at the calibrated threshold
    event: PRF  # with the calibrated rules
    seconds: float


@dataclass(frozen=True)
class FitResult:
    train: TrainResult  # the final fit
    plan: FitPlan
    folds: tuple[FoldResult, ...]
    calibration: Calibration | None
    mistakes: tuple[ClipMistakes, ...]
    hard_negatives: int  # negative frames drawn more often in the final fit
    warnings: tuple[str, ...]
    audio: AudioChoice | None = None  # train --audio: whether sound is used, and why


# --------------------------------------------------------------------------- folds


def _clip_groups(frameset: FrameSet) -> dict[str, list[ClipFrames]]:
    groups: dict[str, list[ClipFrames]] = {}
    for clip in frameset.clips:
        if _usable(clip):
            groups.setdefault(clip.clip_id, []).append(clip)
    return groups


def k_fold_by_clip(frameset: FrameSet, folds: int, seed: int) -> list[tuple[list[ClipFrames], list[ClipFrames]]]:
    """``folds`` (training clips, validation clips) pairs; each usable clip is validated exactly once
    and never on both sides of a pair.  Clips with highlights are dealt first, round-robin in a seeded
    order, so every fold holds some when there are at least ``folds`` of them."""
    groups = _clip_groups(frameset)
    if folds < 2 or folds > len(groups):
        raise UsageError(f"cannot make {folds} folds from {len(groups)} usable clips")
    rng = np.random.default_rng(np.random.SeedSequence([seed & 0xFFFFFFFF, 7]))
    ids = sorted(groups)
    with_highlights = [i for i in ids if any(np.any(highlight_mask(c.targets)) for c in groups[i])]
    without = [i for i in ids if i not in set(with_highlights)]
    order = [with_highlights[i] for i in rng.permutation(len(with_highlights))] + [
        without[i] for i in rng.permutation(len(without))
    ]
    assignment = {clip_id: n % folds for n, clip_id in enumerate(order)}
    pairs = []
    for fold in range(folds):
        val = [c for i in order if assignment[i] == fold for c in groups[i]]
        rest = [c for i in order if assignment[i] != fold for c in groups[i]]
        pairs.append((rest, val))
    return pairs


def plan_fit(frameset: FrameSet, config: TrainConfig, speed: TrainingSpeed | None = None) -> FitPlan:
    """How the data will be used: folds (or why none), epochs, images and an estimate of the time."""
    groups = _clip_groups(frameset)
    frames = sum(int(np.count_nonzero(counted_mask(c.targets))) for clips in groups.values() for c in clips)
    with_highlights = sum(any(np.any(highlight_mask(c.targets)) for c in clips) for clips in groups.values())
    folds, note = config.folds, ""
    if folds and len(frameset.classes) > 2:
        folds, note = 0, "cross-validation calibrates binary tasks only; one run with a validation split"
    elif folds and with_highlights < 2:
        folds, note = 0, f"cross-validation needs highlights in at least 2 clips ({with_highlights} have some)"
    elif folds and len(groups) < max(3, folds):
        folds, note = 0, f"too few clips ({len(groups)}) for {config.folds}-fold cross-validation"
    elif folds:
        folds = min(folds, with_highlights)
    else:
        note = "cross-validation is off (--folds 0)"
    if config.epochs is not None:  # --epochs: whole epochs as asked, capped per epoch by --max-frames
        epochs, per_epoch = config.epochs, config.max_frames_per_epoch
        final_images = epochs * min(frames, per_epoch or frames)
    else:
        final_images = auto_images(frames)
        epochs, per_epoch = run_length(frames, final_images)
    fold_epochs, fold_per_epoch, fold_images = 0, None, 0
    fold_frames = frames * (folds - 1) // folds if folds else 0  # each fold model's share
    if folds:
        # as many passes over the fold's frames as the final fit makes over all of them
        fold_epochs, fold_per_epoch = run_length(
            fold_frames, max(1, round(final_images * fold_frames / max(frames, 1)))
        )
        fold_images = fold_epochs * min(fold_frames, fold_per_epoch or fold_frames)
    images = epochs * min(frames, per_epoch or frames) + folds * fold_images
    # Images only scored: each fold model scores every frame of its held-out clips once (out of fold);
    # without folds, the run validates on its split after every epoch.  At 600 clips the scoring passes were
    # a fifth of the time (BENCHMARKS.md).
    if folds:
        scored = sum(len(c.targets) for clips in groups.values() for c in clips)
    else:
        split = splits_for_validation(len(groups), config.val_fraction)
        scored = epochs * (round(frames * config.val_fraction) if split else frames)
    if config.precise_bn:  # each run's BatchNorm statistics measured again after its last epoch
        scored += min(frames, PRECISE_BN_FRAMES) + folds * min(fold_frames, PRECISE_BN_FRAMES)
    estimated = images / speed.train + scored / speed.score if speed else None
    return FitPlan(folds, fold_epochs, fold_per_epoch, epochs, per_epoch, frames, len(groups), images, estimated, note)


def measure_speed(frameset: FrameSet, config: TrainConfig, steps: int = 3) -> TrainingSpeed:
    """Training and scoring images per second on this machine, from a few throwaway steps and forward passes
    (for the plan's estimate)."""
    from autotosis.training.train import apply_freeze

    rng_state = torch.get_rng_state()
    try:
        with torch_threads(config.threads):
            model = build_model(len(frameset.classes), "none")
            apply_freeze(model, config.freeze)
            optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr)
            size = frameset.size
            inputs = torch.zeros(config.batch_size, 3, size, size).contiguous(memory_format=torch.channels_last)
            targets = torch.zeros(config.batch_size, dtype=torch.int64)
            model.train()
            timings = []
            for _ in range(steps + 1):  # the first step warms up the allocator and kernels
                began = time.perf_counter()
                loss = torch.nn.functional.cross_entropy(model(inputs), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                timings.append(time.perf_counter() - began)
            model.eval()
            scoring = []
            with torch.inference_mode():
                for _ in range(steps + 1):
                    began = time.perf_counter()
                    model(inputs)
                    scoring.append(time.perf_counter() - began)
        # Data preparation overlaps the step (train._prepared_batches): the step is the cost.
        return TrainingSpeed(
            train=config.batch_size / float(np.median(timings[1:])),
            score=config.batch_size / float(np.median(scoring[1:])),
        )
    finally:
        torch.set_rng_state(rng_state)


# --------------------------------------------------------------------------- out-of-fold scores


def out_of_fold_clip(clip: ClipFrames, scores: np.ndarray, fold: int, scan_fps: float = SCAN_FPS) -> OofClip:
    """A clip's out-of-fold highlight scores thinned to the scan's sampling rate."""
    times = clip.times_ms
    step = int(round(float(np.median(np.diff(times))))) if len(times) > 1 else int(round(1000 / scan_fps))
    stride = max(1, int(round(1000 / scan_fps / max(step, 1))))
    return OofClip(clip.clip.name, times[::stride], scores[::stride], clip.targets[::stride], step * stride, fold)


def _hard_negative_weights(clip: ClipFrames, scores: np.ndarray, boost: float) -> np.ndarray | None:
    """Sampling weights for a clip's frames: ``boost`` for confidently wrong negatives, 1 elsewhere."""
    hard = (clip.targets == 0) & (scores >= HARD_CONFIDENCE)
    if boost <= 1 or not hard.any():
        return None
    return np.where(hard, boost, 1.0)


def _fold_summary(
    fold: int,
    pair: tuple[list[ClipFrames], list[ClipFrames]],
    oof: list[OofClip],
    calibration: Calibration | None,
    val_loss: float,
    seconds: float,
) -> FoldResult:
    scores = np.concatenate([c.scores for c in oof]) if oof else np.zeros(0)
    targets = np.concatenate([c.targets for c in oof]) if oof else np.zeros(0, np.int64)
    counted = counted_mask(targets)
    ap = average_precision(scores[counted], targets[counted] > 0) if counted.any() else math.nan
    event = frame = PRF.from_counts(0, 0, 0)
    if calibration is not None:
        event, frame = evaluate_rules(oof, calibration.rules)
    return FoldResult(
        fold,
        len({c.clip_id for c in pair[0]}),
        len({c.clip_id for c in pair[1]}),
        val_loss,
        float(ap),
        frame,
        event,
        seconds,
    )


class _LossSum:
    """The cross-entropy of a fold model on its held-out clips' usable frames (IGNORE left out), summed clip by
    clip: the validation loss, from the out-of-fold pass."""

    def __init__(self) -> None:
        self.total, self.count = 0.0, 0

    def add(self, probs: np.ndarray, targets: np.ndarray) -> None:
        counted = counted_mask(targets)
        picked = probs[np.flatnonzero(counted), targets[counted]]
        self.total += float(-np.log(np.clip(picked.astype(np.float64), 1e-12, None)).sum())
        self.count += int(counted.sum())

    def mean(self) -> float:
        return self.total / self.count if self.count else math.nan


class _StepCounter:
    """One step count over every run of the plan, for a single progress bar with an ETA."""

    def __init__(self, on_step: Callable[[int, int], None] | None, total: int, done: int = 0):
        self.on_step, self.total, self.done = on_step, total, done

    def run(self) -> Callable[[int, int], None]:
        """The per-run callback: train() reports (step in this epoch, steps in this epoch)."""
        last = 0

        def count(step: int, steps: int) -> None:
            nonlocal last
            self.done += step - last if step > last else step
            last = step
            if self.on_step is not None:
                self.on_step(self.done, max(self.total, self.done))

        return count


# --------------------------------------------------------------------------- the run


def fit(
    frameset: FrameSet,
    config: TrainConfig,
    out: Path,
    *,
    resume: Path | None = None,
    force: bool = False,
    plan: FitPlan | None = None,
    on_stage: Callable[[str], None] | None = None,
    on_epoch: Callable[[str, EpochMetrics], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    scan_fps: float = SCAN_FPS,
) -> FitResult:
    """Cross-validate, calibrate, mine hard negatives, then fit on every clip (see the module docstring).

    ``on_step(done, total)`` counts steps over all runs together (one progress bar with an ETA);
    ``on_stage`` names each run as it starts; ``on_epoch(run name, metrics)`` follows every epoch.
    ``resume`` continues an interrupted final fit without repeating the cross-validation.
    """
    plan = plan or plan_fit(frameset, config)
    out = Path(out)
    warnings: list[str] = [plan.note] if plan.note and config.folds else []
    stage = on_stage or (lambda text: None)
    counter = _StepCounter(on_step, plan.images // config.batch_size)

    def epoch_callback(name: str) -> Callable[[EpochMetrics], None] | None:
        return (lambda m: on_epoch(name, m)) if on_epoch is not None else None

    if resume is None:
        _refuse_existing(out, force)
    # Before any training: --audio on that cannot be honoured fails now, not after the folds.
    audio_off = check_audio_mode(config.audio, [c.clip for c in frameset.clips if _usable(c)], plan.folds)
    if not plan.folds:
        result = train(
            frameset,
            plan.final_config(config),
            out,
            resume=resume,
            force=force,
            on_epoch=epoch_callback("train"),
            on_step=counter.run(),
        )
        off = AudioChoice(config.audio, False, audio_off or "no cross-validation")
        return FitResult(result, plan, (), None, (), 0, tuple(warnings) + result.warnings, off)

    resumed_fit = _resumed_fit_state(resume, frameset.task) if resume is not None else None
    if resumed_fit is None:
        calibration, mistakes, folds, weights, more, oof, sources = _cross_validate(
            frameset, config, plan, counter, stage, epoch_callback, scan_fps
        )
        warnings += [w for w in more if w not in warnings]
        if audio_off is None:
            stage("sound: fitting the mix of picture and sound on the out-of-fold scores")
            audio = choose_audio(config.audio, oof, sources, calibration)
        else:
            audio = AudioChoice(config.audio, False, audio_off)
        if calibration is not None and calibration.highlights < MIN_HIGHLIGHTS_TO_CALIBRATE and audio.used:
            audio = replace(audio, events={})  # too few highlights to choose rules: the defaults, as below
        fit_state = {
            **_fit_state(calibration, mistakes, folds, weights),
            "audio": audio.to_state(),
            "oof": oof_to_state(oof, sources),
        }
    else:
        calibration, mistakes, folds, weights = _from_fit_state(resumed_fit, frameset)
        audio = choice_from_state(resumed_fit.get("audio"))
        counter.done = (
            plan.images - plan.epochs * min(plan.train_frames, plan.frames_per_epoch or plan.train_frames)
        ) // config.batch_size
        fit_state = resumed_fit
    if calibration is None:
        warnings.append(
            "the out-of-fold scores hold no highlight: the threshold and event rules stay at their defaults"
        )
    elif calibration.highlights < MIN_HIGHLIGHTS_TO_CALIBRATE:
        warnings.append(
            f"only {calibration.highlights} labelled highlight(s): too few to choose the threshold and event rules "
            f"(at least {MIN_HIGHLIGHTS_TO_CALIBRATE}), they stay at their defaults; label more clips"
        )
        calibration = None

    hard = sum(int(np.count_nonzero(w > 1)) for w in weights.values())
    stage(f"final fit on all {plan.clips} clips ({hard} hard negatives drawn {config.hard_negatives:g}x as often)")
    rules = {} if calibration is None else {**calibration.to_dict(), "folds": plan.folds}
    result = train(
        frameset,
        replace(plan.final_config(config), select="last"),
        out,
        resume=resume,
        force=force,
        split=(list(frameset.clips), []),
        frame_weights=weights,
        calibration=rules,
        run_state={_FIT_STATE: fit_state},
        on_epoch=epoch_callback("final fit"),
        on_step=counter.run(),
        audio=audio.info(),
    )
    warnings += [w for w in result.warnings if w not in warnings]
    return FitResult(result, plan, tuple(folds), calibration, tuple(mistakes), hard, tuple(warnings), audio)


def _cross_validate(
    frameset: FrameSet,
    config: TrainConfig,
    plan: FitPlan,
    counter: _StepCounter,
    stage: Callable[[str], None],
    epoch_callback,
    scan_fps: float,
):
    """Train the fold models; return (calibration, mistakes, fold results, hard-negative weights, warnings,
    out-of-fold scores, the video of each)."""
    warnings: list[str] = []
    oof: list[OofClip] = []
    sources: list[Path] = []
    runs = []
    weights: dict[str, np.ndarray] = {}
    fold_config = plan.fold_config(config)
    with tempfile.TemporaryDirectory(prefix="autotosis-folds-") as scratch:
        for number, pair in enumerate(k_fold_by_clip(frameset, plan.folds, config.seed), start=1):
            name = f"fold {number}/{plan.folds}"
            stage(
                f"{name}: training on {len({c.clip_id for c in pair[0]})} clips, scoring the other "
                f"{len({c.clip_id for c in pair[1]})}"
            )
            began = time.perf_counter()
            # The leak check compares the folds' sides once; later folds would repeat it.
            run_config = fold_config if number == 1 else replace(fold_config, leak_distance=None)
            # The held-out clips are scored once, below, for every frame (out of fold); scoring their usable
            # frames after each epoch as well read the same frames again (a tenth of the time at 600 clips).
            result = train(
                frameset,
                run_config,
                Path(scratch) / f"fold{number}.pt",
                force=True,
                split=pair,
                on_epoch=epoch_callback(name),
                on_step=counter.run(),
                score_epochs=False,
            )
            warnings += [w for w in result.warnings if w not in warnings]
            model, info, _ = load_checkpoint(result.checkpoint)
            fold_oof = []
            loss = _LossSum()
            with torch_threads(config.threads):
                for clip in pair[1]:
                    probs = predict_probs(model, clip.load_frames(), info)
                    loss.add(probs, clip.targets)
                    scores = probs[:, info.positive_index()]
                    fold_oof.append(out_of_fold_clip(clip, scores, number, scan_fps))
                    sources.append(clip.clip)
                    boosted = _hard_negative_weights(clip, scores, config.hard_negatives)
                    if boosted is not None:
                        weights[clip.clip_id] = boosted
            oof += fold_oof
            runs.append((pair, fold_oof, loss.mean(), time.perf_counter() - began))
    calibration = calibrate_scores(oof)
    mistakes = tuple(clip_mistakes(oof, calibration.rules)) if calibration is not None else ()
    folds = [
        _fold_summary(n, pair, fold_oof, calibration, val_loss, seconds)
        for n, (pair, fold_oof, val_loss, seconds) in enumerate(runs, start=1)
    ]
    return calibration, mistakes, folds, weights, warnings, oof, sources


def _refuse_existing(out: Path, force: bool) -> None:
    from autotosis.core.fsutil import check_writable

    check_writable(out, force)
    check_writable(last_checkpoint_path(out), force)


def _fit_state(
    calibration: Calibration | None,
    mistakes: Sequence[ClipMistakes],
    folds: Sequence[FoldResult],
    weights: dict[str, np.ndarray],
) -> dict:
    """The cross-validation outcome as JSON-ready data, kept in the final fit's resume state."""
    from dataclasses import asdict

    return {
        "calibration": None
        if calibration is None
        else {
            "rules": calibration.rules.as_dict(),
            "event": asdict(calibration.event),
            "frame": asdict(calibration.frame),
            "plateau": list(calibration.plateau),
            "default_event": asdict(calibration.default_event),
            "clips": calibration.clips,
            "highlights": calibration.highlights,
            "floor": calibration.floor,
            "unused_floor": None if calibration.unused_floor is None else list(calibration.unused_floor),
            "negative_median": calibration.negative_median,
        },
        "mistakes": [
            {"name": m.name, "false_events": [list(f) for f in m.false_events], "missed": [list(t) for t in m.missed]}
            for m in mistakes
        ],
        "folds": [{**asdict(f), "frame": asdict(f.frame), "event": asdict(f.event)} for f in folds],
        "hard": {clip_id: np.flatnonzero(w > 1).tolist() for clip_id, w in weights.items()},
        "boost": max((float(w.max()) for w in weights.values()), default=1.0),
    }


def _from_fit_state(state: dict, frameset: FrameSet):
    """The cross-validation outcome back from a resume state (see _fit_state)."""
    raw = state.get("calibration")
    calibration = (
        None
        if raw is None
        else Calibration(
            EventRules(**raw["rules"]),
            PRF(**raw["event"]),
            PRF(**raw["frame"]),
            tuple(raw["plateau"]),
            PRF(**raw["default_event"]),
            int(raw["clips"]),
            int(raw["highlights"]),
            raw.get("floor"),  # resume states from before the floor have none
            None if raw.get("unused_floor") is None else (float(raw["unused_floor"][0]), int(raw["unused_floor"][1])),
            raw.get("negative_median"),  # resume states from before the adaptation have none
        )
    )
    mistakes = tuple(
        ClipMistakes(m["name"], tuple(tuple(f) for f in m["false_events"]), tuple(tuple(t) for t in m["missed"]))
        for m in state.get("mistakes", [])
    )
    folds = [
        FoldResult(**{**f, "frame": PRF(**f["frame"]), "event": PRF(**f["event"])}) for f in state.get("folds", [])
    ]
    boost = float(state.get("boost", 1.0))
    weights = {}
    for clip in frameset.clips:
        rows = state.get("hard", {}).get(clip.clip_id)
        if rows:
            weights[clip.clip_id] = np.ones(len(clip.targets))
            weights[clip.clip_id][np.asarray(rows, dtype=np.int64)] = boost
    return calibration, mistakes, folds, weights


def _resumed_fit_state(resume: Path, task: str) -> dict | None:
    from autotosis.training.train import _load_resume

    raw = _load_resume(resume, task).raw
    extra = raw["resume"].get("extra") or {}
    return extra.get(_FIT_STATE)


def _minutes(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"
