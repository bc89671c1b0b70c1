"""Cross-validated training: folds by clip, calibration of the event rules, hard negatives, stored rules."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from autotosis.detect.segments import EventParams, event_params_for
from autotosis.model.model import CHECKPOINT_FORMAT, build_model, load_checkpoint
from autotosis.training import calibrate as calibrate_module
from autotosis.training.calibrate import (
    FLOOR_MAX_HIGHLIGHTS_LOST,
    EventRules,
    OofClip,
    calibrate,
    calibrate_scores,
    clip_mistakes,
    clip_truth,
    evaluate_rules,
    probability_floor,
)
from autotosis.training.dataset import IGNORE, ClipFrames, FrameSet, counted_mask, highlight_mask
from autotosis.training.fit import (
    TrainingSpeed,
    _fit_state,
    _from_fit_state,
    _hard_negative_weights,
    fit,
    k_fold_by_clip,
    out_of_fold_clip,
    plan_fit,
)
from autotosis.training.train import FrameDataset, TrainConfig, make_train_loader
from tests.conftest import constant_model, flash_clip
from tests.test_train import SIZE, fast_config, make_frameset

# --------------------------------------------------------------------------- folds


def _fake_frameset(highlight_clips: int, plain_clips: int, unusable: int = 0) -> FrameSet:
    clips = []
    for number in range(highlight_clips + plain_clips + unusable):
        if number < highlight_clips:
            targets = np.array([0, 0, 1, 1, IGNORE, 0])
        elif number < highlight_clips + plain_clips:
            targets = np.zeros(6, dtype=np.int64)
        else:
            targets = np.full(6, IGNORE)
        clips.append(
            ClipFrames(Path(f"c{number}.mp4"), f"id{number:03d}", Path(f"c{number}.npy"), np.arange(6) * 250, targets)
        )
    return FrameSet("rage", ("background", "rage"), SIZE, None, tuple(clips))


@settings(max_examples=40, deadline=None)
@given(
    highlights=st.integers(2, 12),
    plain=st.integers(0, 10),
    unusable=st.integers(0, 2),
    folds=st.integers(2, 5),
    seed=st.integers(0, 2**31),
)
def test_k_fold_scores_every_clip_once_and_never_on_both_sides(highlights, plain, unusable, folds, seed):
    frameset = _fake_frameset(highlights, plain, unusable)
    folds = min(folds, highlights)
    pairs = k_fold_by_clip(frameset, folds, seed)
    assert len(pairs) == folds
    validated = [c.clip_id for _, val in pairs for c in val]
    usable = sorted(c.clip_id for c in frameset.clips if np.any(c.targets != IGNORE))
    assert sorted(validated) == usable  # every usable clip scored exactly once
    for train_clips, val_clips in pairs:
        assert not {c.clip_id for c in train_clips} & {c.clip_id for c in val_clips}
        assert any(np.any(c.targets == 1) for c in val_clips)  # every fold holds highlights
    assert k_fold_by_clip(frameset, folds, seed) == pairs  # seeded


def test_plan_falls_back_to_one_run_when_cross_validation_cannot_work():
    assert plan_fit(_fake_frameset(6, 3), TrainConfig()).folds == 3
    few = plan_fit(_fake_frameset(1, 5), TrainConfig())
    assert few.folds == 0 and "highlights in at least 2 clips" in few.note
    tiny = plan_fit(_fake_frameset(2, 0), TrainConfig())
    assert tiny.folds == 0 and "too few clips" in tiny.note
    assert plan_fit(_fake_frameset(2, 4), TrainConfig(folds=5)).folds == 2  # no more folds than highlight clips
    assert plan_fit(_fake_frameset(6, 3), TrainConfig(folds=0)).folds == 0


def test_the_samples_that_count_and_the_highlights_leave_the_unsure_ones_out():
    targets = np.array([0, 1, IGNORE, 2, 0, IGNORE])  # background, two highlight classes, unsure edges
    assert counted_mask(targets).tolist() == [True, True, False, True, True, False]
    assert highlight_mask(targets).tolist() == [False, True, False, True, False, False]


def test_the_fold_loss_from_the_out_of_fold_pass_is_the_cross_entropy_of_the_usable_frames():
    from autotosis.training.fit import _LossSum

    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5], [0.0, 1.0]], dtype=np.float32)
    targets = np.array([0, 1, IGNORE, 0])
    loss = _LossSum()
    loss.add(probs[:2], targets[:2])
    loss.add(probs[2:], targets[2:])  # a second clip: the IGNORE frame left out, p = 0 clipped, not infinite
    expected = -(np.log(0.9) + np.log(0.8) + np.log(1e-12)) / 3
    assert loss.mean() == pytest.approx(expected, rel=1e-6)
    assert math.isnan(_LossSum().mean())


def test_the_time_estimate_counts_the_scoring_passes_as_well_as_the_training_steps():
    # 6 highlight clips (5 usable frames of 6 each) and 3 plain ones (6 usable): 48 usable frames, 54 in all.
    speed = TrainingSpeed(train=10.0, score=40.0)
    folded = plan_fit(_fake_frameset(6, 3), TrainConfig(epochs=2), speed)
    assert folded.folds == 3 and folded.fold_epochs == 2 and folded.train_frames == 48
    # each fold model scores every frame of its held-out clips once, after its run (no scoring per epoch)
    # and each run measures its BatchNorm statistics again on (up to 512 of) its usable frames: 3 x 32 and 48
    assert folded.estimated_s == pytest.approx(folded.images / 10.0 + 54 / 40.0 + (3 * 32 + 48) / 40.0)
    single = plan_fit(_fake_frameset(6, 3), TrainConfig(epochs=2, folds=0, val_fraction=0.25), speed)
    # a quarter of 48, twice; one run's statistics
    assert single.estimated_s == pytest.approx(single.images / 10.0 + 2 * 12 / 40.0 + 48 / 40.0)
    plain = plan_fit(_fake_frameset(6, 3), TrainConfig(epochs=2, precise_bn=False), speed)
    assert plain.estimated_s == pytest.approx(plain.images / 10.0 + 54 / 40.0)
    assert plan_fit(_fake_frameset(6, 3), TrainConfig()).estimated_s is None  # no speed measured: no estimate


# --------------------------------------------------------------------------- calibration


def _oof(name: str, seconds: int, spans, blips, *, fold: int = 0, unsure=()) -> OofClip:
    """Scores at 2/s: 0.9 inside true spans (targets 1), 0.6 in look-alike blips (targets 0), 0.1 elsewhere."""
    times = np.arange(0, seconds * 1000, 500, dtype=np.int64)
    scores = np.full(len(times), 0.1)
    targets = np.zeros(len(times), dtype=np.int64)
    for start, end in spans:
        inside = (times >= start) & (times < end)
        scores[inside], targets[inside] = 0.9, 1
    for start, end in blips:
        scores[(times >= start) & (times < end)] = 0.6
    for start, end in unsure:
        inside = (times >= start) & (times < end)
        scores[inside], targets[inside] = 0.95, IGNORE
    return OofClip(name, times, scores, targets, 500, fold)


def test_calibration_finds_the_threshold_between_look_alikes_and_highlights():
    clips = [
        _oof("a.mp4", 40, [(5000, 11000)], [(20000, 23000)]),
        _oof("b.mp4", 40, [(15000, 22000)], [(2000, 4000), (30000, 33000)]),
        _oof("c.mp4", 30, [], [(10000, 13000)]),
    ]
    calibration = calibrate(clips)
    # Look-alikes score 0.6, highlights 0.9: every threshold in (0.6, 0.9] is perfect (smoothing and a minimum
    # length can widen that range further); the middle of the widest range is chosen.
    low, high = calibration.plateau
    assert low <= 0.65 and high == 0.9
    assert abs(calibration.rules.threshold - (low + high) / 2) <= 0.026  # the grid value at (or just below) the middle
    assert 0.6 < calibration.rules.threshold <= 0.9
    assert calibration.event.f1 == 1.0 and calibration.frame.f1 == 1.0
    assert calibration.default_event.f1 == pytest.approx(0.5)  # 0.5 fires on all four look-alikes
    assert calibration.highlights == 2 and calibration.clips == 3
    # With smoothing and minimum length fixed at none, the plateau is exactly (0.6, 0.9].
    plain = calibrate(clips, smooth_ms=(0,), min_length_ms=(0,), merge_gap_ms=(2000,))
    assert plain.plateau == (0.65, 0.9) and plain.rules.threshold == pytest.approx(0.75)


def test_calibration_learns_a_minimum_length_when_look_alikes_are_brief_and_strong():
    # Blips as confident as highlights but only one sample long: only a minimum length separates them.
    clips = [_oof(f"{i}.mp4", 30, [(4000, 10000)], [(20000, 20500), (25000, 25500)]) for i in range(4)]
    for clip in clips:
        clip.scores[clip.scores == 0.6] = 0.9
    calibration = calibrate(clips)
    assert calibration.event.f1 == 1.0
    assert calibration.rules.min_length_ms >= 1000 or calibration.rules.smooth_ms >= 1000
    assert evaluate_rules(clips, replace(calibration.rules, min_length_ms=0, smooth_ms=0))[0].f1 < 1.0


def test_detections_inside_unsure_spans_count_neither_way_and_mistakes_are_listed():
    clip = _oof("u.mp4", 30, [(3000, 8000)], [(12000, 15000)], unsure=[(20000, 24000)])
    truth, unsure = clip_truth(clip)
    assert truth == [(3000, 8000)] and unsure == [(20000, 24000)]
    event, _ = evaluate_rules([clip], EventRules(0.5, 0, 0, 2000))
    assert (event.tp, event.fp, event.fn) == (1, 1, 0)  # the look-alike is false; the unsure span is not counted
    mistakes = clip_mistakes([clip], EventRules(0.5, 0, 0, 2000))
    assert len(mistakes) == 1 and mistakes[0].name == "u.mp4"
    assert [(s, e) for s, e, _ in mistakes[0].false_events] == [(12000, 15000)] and mistakes[0].missed == ()


def test_probability_floor_is_where_the_scores_make_a_highlight_more_likely_than_not():
    rng = np.random.default_rng(7)
    scores = rng.uniform(0.02, 0.98, 20_000)
    # Scores a little overconfident, as the fold models' are: a sample is a highlight with probability
    # sigmoid(0.8 * logit(score) - 1), which is 0.5 at logit(score) = 1.25, i.e. at a score of 0.777.
    logit = np.log(scores / (1 - scores))
    targets = (rng.uniform(size=len(scores)) < 1 / (1 + np.exp(-(0.8 * logit - 1)))).astype(np.int64)
    targets[::50] = IGNORE  # ignored samples are left out of the fit
    times = np.arange(len(scores), dtype=np.int64) * 500
    clip = OofClip("p.mp4", times, scores, targets, 500)
    assert probability_floor([clip]) == pytest.approx(0.777, abs=0.03)
    # Scores that do not rank the highlights higher, or nothing to tell apart: no floor.
    assert probability_floor([replace(clip, scores=1 - scores)]) is None
    assert probability_floor([replace(clip, targets=np.zeros_like(targets))]) is None


def test_the_calibrated_threshold_keeps_to_the_floor_unless_the_floor_loses_the_highlights(monkeypatch):
    clips = [
        _oof("a.mp4", 40, [(5000, 11000)], [(20000, 23000)]),
        _oof("b.mp4", 40, [(15000, 22000)], [(2000, 4000), (30000, 33000)]),
        _oof("c.mp4", 30, [], [(10000, 13000)]),
    ]
    unconstrained = calibrate(clips)  # highlights 0.9, look-alikes 0.6: the middle of (0.6, 0.9]
    assert unconstrained.rules.threshold < 0.85
    # A floor that costs nothing out of fold moves the threshold up to it, and says so.
    monkeypatch.setattr(calibrate_module, "probability_floor", lambda clips: 0.85)
    floored = calibrate_scores(clips)
    assert floored.rules.threshold >= 0.85 and floored.event.f1 == unconstrained.event.f1 == 1.0
    assert floored.floor == 0.85 and floored.to_dict()["floor"] == 0.85 and "from 0.85 up" in floored.explain()
    # A floor above every highlight's score would lose them all (more than FLOOR_MAX_HIGHLIGHTS_LOST): it is lowered
    # to the highest threshold of the grid that keeps them (0.90, the highlights' score), and says so.
    monkeypatch.setattr(calibrate_module, "probability_floor", lambda clips: 0.95)
    assert calibrate(clips, floor=0.95).event.tp == 0 < (1 - FLOOR_MAX_HIGHLIGHTS_LOST) * unconstrained.event.tp
    lowered = calibrate_scores(clips)
    assert lowered.floor == 0.9 and lowered.rules.threshold == 0.9 and lowered.event.f1 == 1.0
    assert lowered.unused_floor == (0.95, 2) and "thresholds from 0.90 up, a floor lowered" in lowered.explain()
    assert lowered.to_dict()["unused_floor"] == 0.95 and lowered.to_dict()["floor"] == 0.9
    # Where no threshold between the unconstrained one and the floor keeps them (the fold models scored the
    # highlights 0.62 and the look-alikes 0.58: only 0.60 tells them apart), there is no floor, and it says what the
    # floor would have cost.
    low = [replace(c, scores=np.select([c.targets == 1, c.scores == 0.6], [0.62, 0.58], c.scores)) for c in clips]
    assert calibrate(low).rules.threshold == 0.6 and calibrate(low).plateau == (0.6, 0.6)
    dropped = calibrate_scores(low)
    assert dropped.rules == calibrate(low).rules and dropped.floor is None
    assert dropped.unused_floor == (0.95, 2) and "no floor" in dropped.explain()
    assert "would lose 2 of 2 highlights" in dropped.explain()
    assert dropped.to_dict()["unused_floor"] == 0.95 and "floor" not in dropped.to_dict()
    # A resumed final fit reads the same calibration back from its state (kept as JSON-like data).
    for calibration in (dropped, lowered, floored):
        state = json.loads(json.dumps(_fit_state(calibration, [], [], {})))
        assert _from_fit_state(state, SimpleNamespace(clips=[]))[0] == calibration
    # One highlight of three (a third, FLOOR_MAX_HIGHLIGHTS_LOST) that a fold model scored low (0.8) is lost at a
    # floor of 0.85, which costs more out-of-fold event F1 (0.86 -> 0.80) than the false event on a look-alike at
    # 0.82 that it keeps out; the final model, trained on every clip, scores such highlights higher: the floor stays.
    weaker = [
        *clips,
        replace(_oof("d.mp4", 40, [(5000, 11000)], []), scores=np.where(np.arange(80) < 22, 0.8, 0.1)),
        replace(_oof("e.mp4", 40, [], []), scores=np.where((np.arange(80) >= 40) & (np.arange(80) < 52), 0.82, 0.1)),
    ]
    monkeypatch.setattr(calibrate_module, "probability_floor", lambda clips: 0.85)
    free, kept = calibrate(weaker), calibrate_scores(weaker)
    assert free.rules.threshold <= 0.8 and free.event.tp == 3 and free.event.fp == 1
    assert kept.floor == 0.85 and kept.rules.threshold >= 0.85
    assert kept.event.tp == 2 and kept.event.fp == 0 and kept.event.f1 < free.event.f1 - 0.05


def test_calibration_without_any_highlight_is_none():
    assert calibrate([_oof("n.mp4", 20, [], [(1000, 3000)])]) is None
    assert calibrate([]) is None


def test_out_of_fold_scores_are_read_at_the_scan_rate():
    times = np.arange(0, 10_000, 250, dtype=np.int64)
    clip = ClipFrames(Path("x.mp4"), "x", Path("x.npy"), times, np.zeros(len(times), dtype=np.int64))
    oof = out_of_fold_clip(clip, np.linspace(0, 1, len(times)), fold=2, scan_fps=2.0)
    assert oof.step_ms == 500 and np.array_equal(oof.times_ms, times[::2]) and oof.fold == 2


# --------------------------------------------------------------------------- hard negatives


def test_hard_negatives_are_drawn_more_often_reproducibly(tmp_path: Path):
    frameset = make_frameset(tmp_path / "frames", layout=((10, 30, 0),))
    clip = frameset.clips[0]
    scores = np.where(clip.targets == 0, 0.05, 0.9)
    hard_rows = np.flatnonzero(clip.targets == 0)[:5]
    scores[hard_rows] = 0.8  # confident mistakes
    weights = _hard_negative_weights(clip, scores, 4.0)
    assert weights is not None and set(np.flatnonzero(weights > 1)) == set(hard_rows)
    assert _hard_negative_weights(clip, np.where(clip.targets == 0, 0.05, 0.9), 4.0) is None  # no mistakes, no weights

    config = TrainConfig(batch_size=8, max_frames_per_epoch=4000)
    dataset = FrameDataset(frameset.clips, SIZE, {clip.clip_id: weights})

    def drawn(seed: int) -> np.ndarray:
        loader = make_train_loader(dataset, config, 2, torch.Generator().manual_seed(seed))
        return np.concatenate([np.asarray(list(batch)) for batch in loader.batch_sampler])

    first = drawn(1)
    assert np.array_equal(first, drawn(1))  # seeded: the same draws again
    rows = dataset.rows[first]
    negatives = clip.targets[rows] == 0
    hard = np.isin(rows, hard_rows)
    # Balanced classes stay balanced; within the negatives a hard frame is drawn ~4x as often as another.
    assert 0.4 < negatives.mean() < 0.6
    per_hard = hard.sum() / len(hard_rows)
    per_easy = (negatives & ~hard).sum() / (np.count_nonzero(clip.targets == 0) - len(hard_rows))
    assert 3.0 < per_hard / per_easy < 5.5


# --------------------------------------------------------------------------- stored rules


def test_a_checkpoint_without_calibration_keeps_todays_event_rules(tmp_path: Path):
    """Checkpoints written before calibration existed have no 'events': the fixed defaults apply."""
    path = tmp_path / "old.pt"
    model = build_model(2)
    info = {
        "task": "rage",
        "classes": ["background", "rage"],
        "input_size": 32,
        "mean": [0.5] * 3,
        "std": [0.25] * 3,
        "crop": None,
        "threshold": 0.62,
        "arch": "resnet18",
        "train_args": {"epochs": 6},
        "metrics": {},
        "epoch": 3,
    }
    torch.save({"format": CHECKPOINT_FORMAT, "info": info, "state_dict": model.state_dict()}, path)
    _, loaded, _ = load_checkpoint(path)
    assert loaded.events == {}
    assert event_params_for(loaded.events, loaded.threshold) == EventParams(threshold=0.62)
    rules = {"threshold": 0.7, "smooth_ms": 1000, "min_length_ms": 2000, "merge_gap_ms": 4000, "source": "out-of-fold"}
    assert event_params_for(rules, 0.7, min_length_ms=500) == EventParams(
        threshold=0.7, smooth_ms=1000, min_length_ms=500, merge_gap_ms=4000
    )
    assert (
        event_params_for({"threshold": "high", "smooth_ms": -5}, None) == EventParams()
    )  # hand-edited junk is skipped


def _cli(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "autotosis", *argv], cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.media
@pytest.mark.torch
def test_events_use_the_rules_stored_in_the_model_unless_given(tmp_path: Path):
    import autotosis.model.model as model_module

    video = flash_clip(tmp_path / "v.mp4", 8, [])
    path = constant_model(tmp_path / "m.pt", 0.4)  # every sample scores sigmoid(0.4) = 0.60
    model, info, _ = model_module.load_checkpoint(path)
    rules = {"threshold": 0.55, "smooth_ms": 1000, "min_length_ms": 3000, "merge_gap_ms": 500, "source": "out-of-fold"}
    model_module.save_checkpoint(path, model, replace(info, threshold=0.55, events=rules), force=True)
    assert _cli("scan", str(video), "--model", str(path), "-o", "s.json", cwd=tmp_path).returncode == 0
    done = _cli("events", "s.json", "-o", "e.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    params = json.loads((tmp_path / "e.json").read_text())["params"]
    assert (params["threshold"], params["smooth_ms"], params["min_length_ms"], params["merge_gap_ms"]) == (
        0.55,
        1000,
        3000,
        500,
    )
    assert len(json.loads((tmp_path / "e.json").read_text())["events"]) == 1
    done = _cli("events", "s.json", "-o", "e2.json", "--threshold", "0.9", "--min-length", "1", cwd=tmp_path)
    params = json.loads((tmp_path / "e2.json").read_text())["params"]
    assert (params["threshold"], params["min_length_ms"], params["smooth_ms"]) == (0.9, 1000, 1000)
    assert json.loads((tmp_path / "e2.json").read_text())["events"] == []


@pytest.mark.torch
def test_fit_cross_validates_stores_calibration_and_resumes_the_final_fit(tmp_path: Path):
    layout = ((8, 12, 4), (10, 10, 4), (6, 14, 4), (12, 8, 4), (0, 24, 0), (9, 11, 4))
    frameset = make_frameset(tmp_path / "frames", layout=layout)
    config = replace(fast_config(), folds=3, epochs=2, leak_distance=None)
    steps: list[tuple[int, int]] = []
    epochs: list[tuple[str, float]] = []
    result = fit(
        frameset,
        config,
        tmp_path / "m.pt",
        on_step=lambda done, total: steps.append((done, total)),
        on_epoch=lambda run, m: epochs.append((run, m.val_loss)),
    )
    assert len(result.folds) == 3 and sum(f.val_clips for f in result.folds) == len(layout)
    # The fold models' held-out clips are scored once, after each run (out of fold), not after every epoch;
    # their validation loss comes from that pass.
    assert [run for run, _ in epochs].count("fold 1/3") == 2 and all(
        math.isnan(loss) for run, loss in epochs if run.startswith("fold")
    )
    assert all(0 < f.val_loss < 10 for f in result.folds)
    assert [d for d, _ in steps] == sorted(d for d, _ in steps)  # one count over every run
    _, info, raw = load_checkpoint(tmp_path / "m.pt")
    assert result.calibration is not None
    assert info.events["source"] == "out-of-fold" and info.events["folds"] == 3
    assert info.threshold == info.events["threshold"] == result.calibration.rules.threshold
    # ... with the level each video's threshold adapts from (detect.adapt): the fold models' ordinary moments.
    assert info.events["negative_median"] == result.calibration.negative_median
    assert event_params_for(info.events, info.threshold).adapt_from == info.events["negative_median"]
    assert info.train_args["epochs"] == 2
    # An interrupted final fit resumes from its .last.pt without cross-validating again.
    again = fit(frameset, replace(config, epochs=3), tmp_path / "m.pt", resume=tmp_path / "m.last.pt")
    assert again.calibration == result.calibration and [f.fold for f in again.folds] == [1, 2, 3]
    assert load_checkpoint(tmp_path / "m.pt")[1].epoch == 3


@pytest.mark.torch
def test_the_same_seed_gives_the_same_model_and_rules(tmp_path: Path):
    """Folds, fold models, calibration, mined negatives and the final fit all draw from the seed: two runs
    with one seed (same machine, same thread count) write identical weights and rules.  (Another thread count
    or CPU code path sums floats in another order: a slightly different model, as `train --help` says.)"""
    layout = ((8, 12, 0), (10, 10, 0), (0, 20, 0), (9, 11, 0))
    frameset = make_frameset(tmp_path / "frames", layout=layout)
    config = replace(fast_config(), folds=2, epochs=1, leak_distance=None)
    runs = [fit(frameset, replace(config, seed=3), tmp_path / f"m{n}.pt") for n in range(2)]
    weights = [load_checkpoint(tmp_path / f"m{n}.pt")[0].state_dict() for n in range(2)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert runs[0].calibration == runs[1].calibration and runs[0].calibration is not None


def test_an_onnx_file_given_for_a_checkpoint_says_what_it_is(tmp_path: Path):
    from autotosis.core.errors import ModelError

    path = tmp_path / "rage.onnx"
    path.write_bytes(b"\x08\x07onnx-ish protobuf")
    with pytest.raises(
        ModelError, match=r"is an ONNX model \(from `autotosis export-onnx`\); this command needs the \.pt"
    ):
        load_checkpoint(path)


@pytest.mark.media
@pytest.mark.torch
def test_events_class_is_checked_with_a_suggestion_and_named_for_multi_class(tmp_path: Path):
    from autotosis.detect.scores import Scores, write_scores

    scores = Scores(
        video=tmp_path / "v.mp4",
        duration_ms=5000,
        times_ms=np.arange(10, dtype=np.int64) * 500,
        classes=("background", "rage", "pog"),
        probs=np.tile(np.array([[0.2, 0.7, 0.1]], np.float32), (10, 1)),
        step_ms=500,
        task="hype",
        model="m",
    )
    write_scores(scores, tmp_path / "s.json")
    done = _cli("events", "s.json", "--class", "rgae", cwd=tmp_path)
    assert (
        done.returncode == 2
        and "--class 'rgae' is not a class of this model (rage, pog) (did you mean 'rage'?)" in done.stderr
    )
    done = _cli("events", "s.json", "-o", "e.json", cwd=tmp_path)
    assert (
        done.returncode == 0
        and "events for class 'rage', the first of rage, pog (--class NAME picks another)" in done.stdout
    )


def test_eval_reports_the_calibration_error_of_the_scores():
    from autotosis.training.evaluate import EvalOptions, LabelledScores, evaluate_units

    targets = np.array([1] * 8 + [0] * 2 + [1] * 2 + [0] * 8)
    probs = np.stack([1 - np.array([0.8] * 10 + [0.2] * 10), np.array([0.8] * 10 + [0.2] * 10)], axis=1).astype(
        np.float32
    )
    calibrated = LabelledScores("a", probs, targets=targets)
    overconfident = LabelledScores(
        "b", np.clip(probs * 0 + np.array([[0.01, 0.99]], np.float32), 0, 1), targets=targets
    )
    classes = ("background", "rage")
    good = evaluate_units([calibrated], classes, EvalOptions(), task="rage", model="m", default_threshold=0.5)
    bad = evaluate_units([overconfident], classes, EvalOptions(), task="rage", model="m", default_threshold=0.5)
    assert good.reports[0].calibration_error == pytest.approx(0.0, abs=1e-6)
    assert bad.reports[0].calibration_error == pytest.approx(0.49, abs=1e-6)


def test_train_help_states_the_training_length_the_code_uses(capsys):
    from autotosis.cli import main
    from autotosis.training.train import AUTO_MAX_IMAGES, AUTO_MIN_IMAGES, AUTO_PASSES, AUTO_REFERENCE_FRAMES

    assert main(["train", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert (
        f"{AUTO_PASSES} passes over {AUTO_REFERENCE_FRAMES:,} frames, fewer per frame with more: "
        f"{AUTO_MIN_IMAGES:,} to {AUTO_MAX_IMAGES:,} images"
    ) in text


def test_the_training_budget_grows_slower_than_the_data():
    from autotosis.training.train import (
        AUTO_MAX_IMAGES,
        AUTO_MIN_IMAGES,
        AUTO_PASSES,
        AUTO_REFERENCE_FRAMES,
        auto_images,
    )

    assert auto_images(AUTO_REFERENCE_FRAMES) == max(AUTO_MIN_IMAGES, AUTO_PASSES * AUTO_REFERENCE_FRAMES)
    budgets = [auto_images(f) for f in (100, 1000, 2000, 4000, 8000, 16000, 10**6)]
    assert budgets == sorted(budgets) and budgets[0] == AUTO_MIN_IMAGES and budgets[-1] == AUTO_MAX_IMAGES
    assert auto_images(8000) / 8000 < auto_images(4000) / 4000 < AUTO_PASSES  # fewer passes with more clips


def test_fold_models_make_as_many_passes_as_the_final_fit():
    # Equal passes keep the out-of-fold scores as sharp as the final model's: the calibrated threshold fits it.
    for config in (TrainConfig(), TrainConfig(epochs=4)):
        plan = plan_fit(_fake_frameset(6, 3), config)
        assert plan.folds == 3 and plan.fold_epochs == plan.epochs
        final_images = plan.epochs * plan.train_frames
        assert plan.images == final_images + 3 * plan.fold_epochs * (plan.train_frames * 2 // 3)
