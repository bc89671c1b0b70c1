"""Learning the mix of picture and sound from the same rough labels (``train --audio auto|on|off``).

The picture model's out-of-fold scores (fit.py) say how the final model will score clips it never saw.
A logistic regression on [logit(picture score), audio features] (detect/audio.py) is fitted to the
labels at those samples, so how much the sound counts, and which sound, is learned, not hand-set.

Whether it helps is measured as the picture model's is: the combiner is itself cross-validated with
the same clip-grouped folds (fitted on the other folds' clips, applied to a fold's clips), the event
rules are calibrated on those combined out-of-fold scores (thresholds from ``MIN_COMBINED_THRESHOLD`` up),
and their event F1 is compared with the picture's, and with the same logistic regression fitted on the
picture alone (no sound; cross-validated and calibrated alike): a combined score can beat the picture's own
rules by recalibrating the picture, whatever the sound says.  ``auto`` uses sound only when it beats both by
``AUTO_MARGIN`` and its out-of-fold log-loss is lower than the refitted picture's (``auto_takes_sound``): the
event F1 of a dozen clips moves by whole events, so sound unrelated to the highlights can win it by chance,
while the log-loss over every sample says whether the sound made the scores more right; ``on`` always (when
every clip has sound); ``off`` never.  The final combiner is then fitted on every clip's out-of-fold scores, and
the rules it scans with are the best out-of-fold ones from ``COMBINED_EVENT_FLOOR`` up (the final model scores
loud look-alikes higher than the fold models did).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from autotosis.core.errors import DataError, UsageError
from autotosis.detect.audio import DEFAULT_FEATURES, AudioCombiner, AudioFeatureSpec, audio_features, picture_logit
from autotosis.media import probe
from autotosis.training.calibrate import (
    Calibration,
    OofClip,
    calibrate,
    calibrate_from_floors,
    counted_samples,
    fit_logistic,
)
from autotosis.training.dataset import counted_mask, highlight_mask
from autotosis.training.metrics import log_loss

AUDIO_MODES = ("auto", "on", "off")
AUTO_MARGIN = 0.02  # auto: sound is used when its out-of-fold event F1 beats the picture's by this much
L2_PER_SAMPLE = 0.01  # ridge penalty of the combiner's weights, per fitted sample
# The frequency bands' shape values are held back this many times harder than the other weights: what kind of sound
# a highlight makes differs from one voice to the next, and a dozen voices do not say which shape the next one has,
# while "louder than usual" carries over.  Hard benchmark, thirteen trainings refitted (BENCHMARKS.md): with equal
# penalties one unseen voice sank every highlight under the combined threshold (event F1 0.00), held back 10x none
# did (mean 0.84 -> 0.92, worst 0.00 -> 0.64).
SHAPE_PENALTY = 10.0
# The combined score is a fitted probability (a logistic regression on the labels), so an event needs it to say
# "more likely a highlight than not".  Lower thresholds won on a dozen clips' out-of-fold scores by one or two
# edge samples, then let loud look-alikes through on the held-out VODs, where the final picture model scores more
# sharply than the fold models the combiner was fitted on (benchmarks/quality_audio.py: 0.20-0.35 chosen,
# 0.6-0.8 best there; from 0.5 up, no run was worse than the picture alone).
MIN_COMBINED_THRESHOLD = 0.5
# Whether sound helps is judged with the rules from MIN_COMBINED_THRESHOLD up (the fold models' combined scores are
# less sharp than the final model's, and higher thresholds would judge the fold models' weakness, not the sound);
# the rules a scan uses are the best out-of-fold ones from this threshold up.  On held-out VODs the final model's
# combined score rises on loud look-alikes (an unseen streamer's cheer scores like the rage in the picture): the
# thresholds chosen from 0.5 up (0.50-0.90) let them through, fixed ones of 0.8-0.85 did best on 27 held-out VODs
# of the hard benchmark, and the sound benchmark's were best from 0.6-0.8 up (BENCHMARKS.md "Combined events from
# 0.8 up").
COMBINED_EVENT_FLOOR = 0.8


@dataclass(frozen=True)
class AudioChoice:
    """What ``train --audio`` decided, and why."""

    mode: str  # as asked: auto | on | off
    used: bool
    reason: str
    combiner: AudioCombiner | None = None
    events: Mapping[str, Any] = field(default_factory=dict)  # rules calibrated on the combined out-of-fold scores
    picture_f1: float | None = None  # out-of-fold event F1, picture alone (its own calibrated rules)
    combined_f1: float | None = None  # out-of-fold event F1, picture and sound (theirs)
    refit_f1: float | None = None  # out-of-fold event F1 of the combiner without sound (the picture refitted)
    combined_loss: float | None = None  # out-of-fold log-loss, picture and sound
    refit_loss: float | None = None  # out-of-fold log-loss, the picture refitted without sound

    def info(self) -> dict[str, Any]:
        """``ModelInfo.audio``: empty when sound is not used (the model then scans as before)."""
        if not self.used or self.combiner is None:
            return {}
        rules = dict(self.events)
        return {
            "combiner": self.combiner.to_dict(),
            "events": rules,
            "threshold": float(rules.get("threshold", 0.5)),
            "mode": self.mode,
            "oof_event_f1": {"picture": self.picture_f1, "combined": self.combined_f1, "picture_refit": self.refit_f1},
            "oof_log_loss": {"combined": self.combined_loss, "picture_refit": self.refit_loss},
        }

    def to_state(self) -> dict[str, Any]:
        """JSON-ready, for the final fit's resume state."""
        return {"mode": self.mode, "used": self.used, "reason": self.reason, "info": self.info()}


def choice_from_state(state: Mapping[str, Any] | None) -> AudioChoice:
    """The decision back from a resume state (``to_state``); sound off when the state holds none."""
    if not state:
        return AudioChoice("off", False, "not recorded in the resumed run")
    info = dict(state.get("info") or {})
    combiner = AudioCombiner.from_dict(info["combiner"]) if info.get("combiner") else None
    oof = info.get("oof_event_f1") or {}
    loss = info.get("oof_log_loss") or {}  # absent in checkpoints from before the log-loss rule
    return AudioChoice(
        str(state.get("mode", "auto")),
        bool(state.get("used")) and combiner is not None,
        str(state.get("reason", "")),
        combiner,
        dict(info.get("events") or {}),
        oof.get("picture"),
        oof.get("combined"),
        oof.get("picture_refit"),
        loss.get("combined"),
        loss.get("picture_refit"),
    )


def oof_to_state(clips: Sequence[OofClip], paths: Sequence[Path]) -> list[dict[str, Any]]:
    """The out-of-fold picture scores (and each clip's video) as JSON-ready data, kept in the final fit's
    resume state: the sound's mix can be fitted again from them (other sound, other settings) without
    training the picture again."""
    return [
        {
            "name": c.name,
            "path": str(path),
            "times_ms": [int(t) for t in c.times_ms],
            "scores": [round(float(v), 6) for v in c.scores],
            "targets": [int(t) for t in c.targets],
            "step_ms": int(c.step_ms),
            "fold": int(c.fold),
        }
        for c, path in zip(clips, paths)
    ]


def oof_from_state(state: Sequence[Mapping[str, Any]]) -> tuple[list[OofClip], list[Path]]:
    """``oof_to_state`` read back: (out-of-fold clips, their videos)."""
    clips = [
        OofClip(
            str(item["name"]),
            np.asarray(item["times_ms"], dtype=np.int64),
            np.asarray(item["scores"], dtype=np.float64),
            np.asarray(item["targets"], dtype=np.int64),
            int(item["step_ms"]),
            int(item["fold"]),
        )
        for item in state
    ]
    return clips, [Path(item["path"]) for item in state]


# --------------------------------------------------------------------------- the combiner


def fit_combiner(
    picture: np.ndarray,
    features: np.ndarray,
    positive: np.ndarray,
    spec: AudioFeatureSpec = DEFAULT_FEATURES,
    *,
    l2_per_sample: float = L2_PER_SAMPLE,
    iterations: int = 30,
) -> AudioCombiner:
    """Logistic regression of ``positive`` on [logit(picture), standardised features], L2-regularised
    (the bias is not; the band shapes ``SHAPE_PENALTY`` times harder), fitted by Newton's method (IRLS)."""
    picture = np.asarray(picture, np.float64)
    features = np.asarray(features, np.float64).reshape(len(picture), -1)
    y = np.asarray(positive, np.float64)
    if len(picture) == 0:
        raise DataError("no labelled samples to fit the audio combiner on")
    mean = features.mean(axis=0)
    std = features.std(axis=0)
    std = np.where(std > 1e-6, std, 1.0)
    x = np.column_stack([np.ones(len(picture)), picture_logit(picture), (features - mean) / std])
    penalty = np.full(x.shape[1], l2_per_sample * len(picture))
    penalty[0] = 1e-6
    bands = len(spec.bands_hz) - 1
    penalty[3 : 3 + bands] *= SHAPE_PENALTY  # columns: bias, picture, loud, the band shapes, context mean and max
    w = fit_logistic(x, y, penalty, iterations=iterations)
    return AudioCombiner(
        spec,
        tuple(float(v) for v in mean),
        tuple(float(v) for v in std),
        float(w[1]),
        tuple(float(v) for v in w[2:]),
        float(w[0]),
    )


def _fit_on(clips: Sequence[OofClip], features: Sequence[np.ndarray], spec: AudioFeatureSpec) -> AudioCombiner:
    scores, positive = counted_samples(clips)
    rows = np.concatenate([f[counted_mask(c.targets)] for c, f in zip(clips, features)])
    return fit_combiner(scores, rows, positive, spec)


def combined_out_of_fold(
    clips: Sequence[OofClip], features: Sequence[np.ndarray], spec: AudioFeatureSpec = DEFAULT_FEATURES
) -> list[OofClip]:
    """Each clip's combined scores from a combiner fitted without its fold (the same clip-grouped folds)."""
    folds = sorted({c.fold for c in clips})
    combined: list[OofClip | None] = [None] * len(clips)
    for fold in folds:
        inside = [i for i, c in enumerate(clips) if c.fold == fold]
        rest = [i for i, c in enumerate(clips) if c.fold != fold]
        if not rest:  # a single fold: nothing left out (only in tests with hand-made folds)
            rest = inside
        combiner = _fit_on([clips[i] for i in rest], [features[i] for i in rest], spec)
        for i in inside:
            combined[i] = replace(clips[i], scores=combiner.apply(clips[i].scores, features[i]))
    return [c for c in combined if c is not None]


# --------------------------------------------------------------------------- the choice


def clips_without_sound(paths: Sequence[Path]) -> list[Path]:
    """The clips (video files) that have no audio stream."""
    missing = []
    for path in dict.fromkeys(paths):
        if not Path(path).is_file() or not probe.probe(Path(path)).has_audio:
            missing.append(Path(path))
    return missing


def check_audio_mode(mode: str, paths: Sequence[Path], folds: int) -> str | None:
    """Before training: an error for ``on`` that cannot be honoured; for ``auto``, why sound is off (or None)."""
    if mode not in AUDIO_MODES:
        raise UsageError(f"unknown --audio {mode!r}", hint=f"use one of {', '.join(AUDIO_MODES)}")
    if mode == "off":
        return "--audio off"
    if not folds:
        if mode == "on":
            raise UsageError(
                "--audio on needs cross-validation: the sound's weight is learned from out-of-fold scores",
                hint="use --folds 2 or more (with at least 3 clips, 2 with highlights), or --audio off",
            )
        return "no cross-validation, so nothing to learn the sound's weight from"
    missing = clips_without_sound(paths)
    if missing:
        names = ", ".join(p.name for p in missing[:5]) + (" ..." if len(missing) > 5 else "")
        if mode == "on":
            raise DataError(
                f"--audio on, but {len(missing)} of {len(set(paths))} training clips have no sound: {names}",
                hint="use --audio auto (sound is then left out) or --audio off, or give clips with sound",
            )
        return f"{len(missing)} of {len(set(paths))} training clips have no sound ({names})"
    return None


def choose_audio(
    mode: str,
    clips: Sequence[OofClip],
    paths: Sequence[Path],
    picture: Calibration | None,
    spec: AudioFeatureSpec = DEFAULT_FEATURES,
) -> AudioChoice:
    """Cross-validate the combiner on the out-of-fold picture scores ``clips`` (``paths[i]`` is the video
    of ``clips[i]``) and decide (see the module docstring); the final combiner is fitted on all of them."""
    if mode == "off":
        return AudioChoice(mode, False, "--audio off")
    features = [audio_features(Path(path), clip.times_ms, spec) for clip, path in zip(clips, paths)]
    if not any(np.any(highlight_mask(c.targets)) for c in clips):
        return AudioChoice(mode, False, "the out-of-fold scores hold no highlight: nothing to learn the sound from")
    combined_clips = combined_out_of_fold(clips, features, spec)
    refit_clips = combined_out_of_fold(clips, [f[:, :0] for f in features], spec)
    # judged from MIN_COMBINED_THRESHOLD up, scanned with the rules from COMBINED_EVENT_FLOOR up (rules scored once)
    combined, events = calibrate_from_floors(combined_clips, (MIN_COMBINED_THRESHOLD, COMBINED_EVENT_FLOOR))
    refit = calibrate(refit_clips, floor=MIN_COMBINED_THRESHOLD)
    rules = {} if events is None else {**events.to_dict(), "source": "out-of-fold, picture and sound"}
    picture_f1, combined_f1, refit_f1 = (
        None if found is None else round(float(found.event.f1), 4) for found in (picture, combined, refit)
    )
    combined_loss, refit_loss = (round(oof_log_loss(found), 4) for found in (combined_clips, refit_clips))
    final = _fit_on(clips, features, spec)
    scores = (
        f"out-of-fold event F1 {_f1(combined_f1)} with sound, {_f1(picture_f1)} with the picture alone "
        f"({_f1(refit_f1)} with the picture refitted as the sound's mix is); log-loss {combined_loss:.3f} with "
        f"sound, {refit_loss:.3f} refitted without"
    )
    events_note = (
        ""
        if events is None
        else f"; events from combined score {events.rules.threshold:.2f} (best rules from {COMBINED_EVENT_FLOOR:g} up)"
    )
    measured = (picture_f1, combined_f1, refit_f1, combined_loss, refit_loss)
    if mode == "on":
        return AudioChoice(mode, True, f"--audio on: {scores}{events_note}", final, rules, *measured)
    if auto_takes_sound(*measured):
        return AudioChoice(mode, True, f"sound helps: {scores}{events_note}", final, rules, *measured)
    why = (
        f"sound does not help by {AUTO_MARGIN:g} or more"
        if not auto_takes_sound(picture_f1, combined_f1, refit_f1)
        else "sound does not help: it raises the event F1 but makes the scores less right (a higher log-loss)"
    )
    return AudioChoice(mode, False, f"{why}: {scores}; the model uses the picture alone", None, {}, *measured)


def oof_log_loss(clips: Sequence[OofClip]) -> float:
    """The log-loss of ``clips``' scores against their labels, over every sample that counts (not IGNORE)."""
    return log_loss(*counted_samples(clips))


def auto_takes_sound(
    picture_f1: float | None,
    combined_f1: float | None,
    refit_f1: float | None,
    combined_loss: float | None = None,
    refit_loss: float | None = None,
) -> bool:
    """``--audio auto``'s rule on the out-of-fold scores: sound beats the picture's own rules and the picture
    refitted without sound in event F1, each by AUTO_MARGIN (a value not measured counts as 0), and its
    log-loss is lower than the refitted picture's (where both were measured).

    Measured on the stored trainings of both quality benchmarks (BENCHMARKS.md "Sound by default"): sound
    unrelated to the highlights raised the log-loss in all six (by 1-16%), heard sound lowered it in all twelve
    (by 14-71%) and in the ten hard-benchmark trainings where the event F1 took it (by 17-57%); the event F1 alone
    took unrelated sound once and lost 0.09-0.20 on the held-out VOD."""
    if combined_f1 is None or combined_f1 < max(picture_f1 or 0.0, refit_f1 or 0.0) + AUTO_MARGIN:
        return False
    return combined_loss is None or refit_loss is None or combined_loss < refit_loss


def _f1(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"
