"""Sound as a second input (issue 20): audio decoding and features, the learned combiner, train --audio, scan."""

from __future__ import annotations

import subprocess
import sys
import wave
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from autotosis.core.errors import DataError, UsageError
from autotosis.detect.audio import (
    AudioCombiner,
    AudioFeatureSpec,
    AudioModel,
    audio_features,
    band_track,
    features_at,
)
from autotosis.media.audio import NoAudioError, decode_audio
from autotosis.training.audio import (
    COMBINED_EVENT_FLOOR,
    MIN_COMBINED_THRESHOLD,
    AudioChoice,
    auto_takes_sound,
    check_audio_mode,
    choice_from_state,
    choose_audio,
    combined_out_of_fold,
    fit_combiner,
)
from autotosis.training.calibrate import OofClip, calibrate, calibrate_from_floors
from autotosis.training.dataset import IGNORE
from autotosis.training.metrics import average_precision
from tests.conftest import FFMPEG, constant_model, flash_clip

RATE = 16_000


def _write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(samples, -1, 1) * 32000).astype("<i2").tobytes())
    return path


def _bursts(seconds: float, loud: list[tuple[float, float]], *, seed: int = 0, level: float = 0.6) -> np.ndarray:
    """Quiet noise (and a quiet hum) with loud noise bursts during ``loud`` (seconds)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    sound = 0.01 * rng.standard_normal(len(t)) + 0.02 * np.sin(2 * np.pi * 120 * t)
    for start, end in loud:
        inside = (t >= start) & (t < end)
        sound[inside] += level * rng.standard_normal(int(inside.sum()))
    return sound


def _video_with_sound(path: Path, sound: np.ndarray, seconds: float, *, keyframe_every: int = 10) -> Path:
    """A tiny moving picture (10 frames/s, a keyframe every ``keyframe_every`` frames) with ``sound`` as its AAC
    track."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    wav = _write_wav(path.with_suffix(".wav"), sound)
    argv = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi"]
    argv += ["-i", f"testsrc2=s=96x54:r=10:d={seconds}", "-i", "file:" + str(wav)]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(keyframe_every)]
    argv += ["-keyint_min", str(keyframe_every), "-sc_threshold", "0", "-c:a", "aac"]
    argv += ["-shortest", "file:" + str(path)]
    subprocess.run(argv, check=True)
    return path


# --------------------------------------------------------------------------- decoding and features


@pytest.mark.media
def test_features_find_the_loud_seconds(tmp_path: Path):
    video = _video_with_sound(tmp_path / "burst.mp4", _bursts(8, [(3.0, 5.0)]), 8)
    pcm = decode_audio(video)
    assert pcm.dtype == np.float32 and abs(len(pcm) - 8 * RATE) < RATE // 5
    times = np.arange(0, 8000, 500, dtype=np.int64)
    features = audio_features(video, times)
    assert features.shape == (len(times), AudioFeatureSpec().size)
    loud = features[:, 0]
    inside = (times >= 3250) & (times <= 4500)
    outside = (times <= 2000) | (times >= 6000)
    assert loud[inside].min() > loud[outside].max() + 2.0  # e^2: far louder than the rest of the clip
    assert abs(float(np.median(loud[outside]))) < 1.0  # relative to the clip's median level
    # The context features see the burst from up to two seconds away.
    assert features[times == 1500, -1] > features[times == 0, -1] + 2.0


def test_features_do_not_depend_on_the_level_of_the_recording():
    sound = _bursts(6, [(2.0, 3.0)], seed=3)
    times = np.arange(0, 6000, 500, dtype=np.int64)
    quiet = features_at(band_track([sound * 0.05]), times)
    loud = features_at(band_track([sound[:12345], sound[12345:]]), times)  # chunks of any length
    np.testing.assert_allclose(quiet, loud, atol=1e-3)


def test_a_shout_reads_as_loud_in_a_short_clip_around_it_as_in_a_long_mostly_calm_video():
    # A labelled clip is cut around its moment (here 56% shouting), a VOD is mostly calm (8%): the shout must
    # read alike in both, or a combiner fitted on clips misplaces its threshold on VODs.
    times = np.arange(0, 25000, 500, dtype=np.int64)
    clip = features_at(band_track([_bursts(25, [(2, 9), (12, 19)], seed=1)]), times)
    vod = features_at(band_track([_bursts(25, [(12, 14)], seed=1)]), times)
    shout = (times >= 12500) & (times < 13500)
    assert abs(float(np.median(clip[shout, 0]) - np.median(vod[shout, 0]))) < 0.3
    # The median of every frame (checkpoints trained before) fell inside the clip's shouting: the shout read as usual.
    median = replace(AudioFeatureSpec(), reference_quantile=None)
    old_clip = features_at(band_track([_bursts(25, [(2, 9), (12, 19)], seed=1)]), times, median)
    old_vod = features_at(band_track([_bursts(25, [(12, 14)], seed=1)]), times, median)
    assert float(np.median(old_vod[shout, 0]) - np.median(old_clip[shout, 0])) > 3.0


def test_silent_stretches_do_not_set_the_reference_level():
    times = np.arange(0, 10000, 500, dtype=np.int64)
    sound = _bursts(10, [(6, 7)], seed=2)
    muted = sound.copy()
    muted[: 4 * RATE] = 0.0  # four muted seconds (a pause screen): 40% of the file is digital silence
    normal = features_at(band_track([sound]), times)
    with_pause = features_at(band_track([muted]), times)
    after = times >= 4500
    np.testing.assert_allclose(with_pause[after, 0], normal[after, 0], atol=0.3)
    assert with_pause[after, 0].max() < 8.0  # not pinned at the clip limit


def test_the_feature_spec_round_trips_and_old_checkpoints_keep_the_median():
    spec = AudioFeatureSpec()
    assert AudioFeatureSpec.from_dict(spec.to_dict()) == spec
    old = {k: v for k, v in spec.to_dict().items() if k != "reference_quantile"}
    assert AudioFeatureSpec.from_dict(old).reference_quantile is None
    assert "reference_quantile" not in AudioFeatureSpec.from_dict(old).to_dict()


@pytest.mark.media
def test_a_video_without_sound_raises_a_typed_error(tmp_path: Path):
    video = flash_clip(tmp_path / "silent.mp4", 2, [], audio=False)
    with pytest.raises(NoAudioError, match="no audio stream"):
        decode_audio(video)


# --------------------------------------------------------------------------- the combiner


def _synthetic(n: int, seed: int, *, picture_informative: bool, audio_informative: bool):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.3
    picture = np.where(y, rng.beta(5, 2, n), rng.beta(2, 5, n)) if picture_informative else rng.random(n)
    features = rng.standard_normal((n, AudioFeatureSpec().size))
    if audio_informative:
        features[:, 0] += np.where(y, 2.5, -0.5)
    return picture, features, y


@pytest.mark.parametrize(("picture_informative", "audio_informative"), [(True, False), (False, True), (True, True)])
def test_the_combiner_learns_which_input_tells_the_highlight(picture_informative, audio_informative):
    picture, features, y = _synthetic(3000, 1, picture_informative=picture_informative, audio_informative=True)
    if not audio_informative:
        picture, features, y = _synthetic(3000, 1, picture_informative=True, audio_informative=False)
    combiner = fit_combiner(picture, features, y)
    test_picture, test_features, test_y = _synthetic(
        2000, 2, picture_informative=picture_informative, audio_informative=audio_informative
    )
    combined = combiner.apply(test_picture, test_features)
    ap_combined = average_precision(combined, test_y)
    ap_picture = average_precision(test_picture, test_y)
    if audio_informative:
        assert combiner.weights[0] > 0.5  # the loud feature carries weight
        assert ap_combined > ap_picture + 0.05
    else:
        assert combiner.picture_weight > 0.5
        assert max(abs(w) for w in combiner.weights) < 0.15 * combiner.picture_weight  # noise gets little weight
        assert ap_combined > ap_picture - 0.01
    if picture_informative and audio_informative:
        assert combiner.picture_weight > 0.5  # both inputs used


def test_the_combiner_holds_the_voice_dependent_band_shapes_back_harder_than_loudness():
    # Loudness and the lowest band's shape tell the highlight equally well in the training clips: the band's weight
    # is held back harder (SHAPE_PENALTY), since the next voice's shape is not the training voices'.
    rng = np.random.default_rng(3)
    y = rng.random(4000) < 0.3
    features = rng.standard_normal((4000, AudioFeatureSpec().size))
    features[:, 0] += np.where(y, 1.5, -0.5)  # loud
    features[:, 1] += np.where(y, 1.5, -0.5)  # band0-200's shape
    combiner = fit_combiner(rng.random(4000), features, y)
    loud, band = combiner.weights[0], combiner.weights[1]
    assert loud > 0.5 and band > 0
    assert band < 0.5 * loud


def test_combiner_and_choice_survive_a_round_trip():
    picture, features, y = _synthetic(500, 4, picture_informative=True, audio_informative=True)
    combiner = fit_combiner(picture, features, y)
    again = AudioCombiner.from_dict(combiner.to_dict())
    assert again == combiner
    choice = AudioChoice("on", True, "--audio on", combiner, {"threshold": 0.6, "smooth_ms": 0}, 0.5, 0.7)
    model = AudioModel.from_info(choice.info())
    assert model is not None and model.combiner == combiner and model.threshold == 0.6
    assert choice_from_state(choice.to_state()).info() == choice.info()
    assert AudioModel.from_info({}) is None
    assert AudioChoice("off", False, "--audio off").info() == {}


def _oof_clips(count: int, *, picture_tells: bool, seed: int = 0):
    """Clips with two highlights each at 2 samples/s: the picture scores them (or not), the sound always does."""
    rng = np.random.default_rng(seed)
    clips, features = [], []
    for number in range(count):
        times = np.arange(0, 40_000, 500, dtype=np.int64)
        targets = np.zeros(len(times), np.int64)
        for start in (4000 + 1000 * (number % 3), 19000):
            targets[(times >= start) & (times < start + 5000)] = 1
        targets[(times >= 15000) & (times < 16000)] = IGNORE
        positive = targets == 1
        # look-alikes the picture likes as much as the highlights: only sound tells them apart
        decoy = (times >= 32000) & (times < 36000)
        base = rng.uniform(0.05, 0.3, len(times))
        scores = np.where(positive | decoy, rng.uniform(0.7, 0.95, len(times)), base)
        if not picture_tells:
            scores[decoy] = rng.uniform(0.7, 0.95, int(decoy.sum()))
        else:
            scores[decoy] = base[decoy]
        feats = rng.standard_normal((len(times), AudioFeatureSpec().size)) * 0.3
        feats[:, 0] += np.where(positive, 3.0, 0.0)
        clips.append(OofClip(f"c{number}.mp4", times, scores, targets, 500, number % 3 + 1))
        features.append(feats)
    return clips, features


def test_auto_uses_sound_only_where_it_helps_out_of_fold(monkeypatch):
    import autotosis.training.audio as audio_module

    for picture_tells, expected in ((False, True), (True, False)):
        clips, features = _oof_clips(9, picture_tells=picture_tells)
        by_name = {c.name: f for c, f in zip(clips, features)}
        monkeypatch.setattr(
            audio_module, "audio_features", lambda path, times, spec, table=by_name: table[Path(path).name]
        )
        picture = calibrate(clips)
        choice = choose_audio("auto", clips, [Path(c.name) for c in clips], picture)
        assert choice.used is expected, choice.reason
        assert choice.combined_f1 is not None and choice.picture_f1 == round(picture.event.f1, 4)
        if expected:
            assert choice.combined_f1 >= max(choice.picture_f1, choice.refit_f1) + 0.02
            assert choice.info()["events"]["threshold"] == choice.info()["threshold"]
        else:
            assert choice.info() == {} and "does not help" in choice.reason
        forced = choose_audio("on", clips, [Path(c.name) for c in clips], picture)
        assert forced.used and forced.combiner is not None


def test_auto_does_not_take_sound_that_only_refits_the_picture(monkeypatch):
    """Where the picture's own rules are poor but its scores rank well, a combined score beats them with any
    sound at all (the mix refits the picture); auto compares with the picture refitted without sound too."""
    import autotosis.training.audio as audio_module

    clips, features = _oof_clips(9, picture_tells=True)
    noise = np.random.default_rng(8)
    unrelated = {c.name: noise.standard_normal(f.shape) * 0.3 for c, f in zip(clips, features)}
    monkeypatch.setattr(audio_module, "audio_features", lambda path, times, spec: unrelated[Path(path).name])
    # The picture's own rules as poor as a floor far above its highlights' scores can leave them.
    poor = calibrate([replace(c, scores=noise.uniform(0, 1, len(c.scores))) for c in clips])
    choice = choose_audio("auto", clips, [Path(c.name) for c in clips], poor)
    assert choice.combined_f1 >= choice.picture_f1 + 0.02  # what auto used to go by
    assert choice.refit_f1 >= choice.combined_f1 - 0.02
    assert not choice.used and "refitted" in choice.reason, choice.reason
    assert choice_from_state(choose_audio("on", clips, [Path(c.name) for c in clips], poor).to_state()).refit_f1 == (
        choice.refit_f1
    )


def test_auto_does_not_take_sound_whose_event_f1_win_raises_the_log_loss(monkeypatch):
    """A dozen clips' event F1 moves by whole events, so unrelated sound can win it by chance; auto also needs
    the sound to make the out-of-fold scores more right (a lower log-loss than the picture refitted)."""
    import autotosis.training.audio as audio_module

    assert auto_takes_sound(0.7, 0.8, 0.7, 0.20, 0.25)
    assert not auto_takes_sound(0.7, 0.8, 0.7, 0.30, 0.25)
    assert auto_takes_sound(0.7, 0.8, 0.7)  # checkpoints from before the log-loss rule: the event F1 alone
    assert not auto_takes_sound(0.7, 0.71, 0.7, 0.10, 0.25)

    clips, features = _oof_clips(9, picture_tells=False)  # sound that auto takes (the test above)
    by_name = {c.name: f for c, f in zip(clips, features)}
    monkeypatch.setattr(audio_module, "audio_features", lambda path, times, spec: by_name[Path(path).name])
    paths = [Path(c.name) for c in clips]
    taken = choose_audio("auto", clips, paths, calibrate(clips))
    assert taken.used and taken.combined_loss < taken.refit_loss, taken.reason
    assert choice_from_state(taken.to_state()).combined_loss == taken.combined_loss
    # The same event F1 with the log-loss the other way round: declined, and said why.
    losses = iter((taken.refit_loss, taken.combined_loss))
    monkeypatch.setattr(audio_module, "oof_log_loss", lambda clips: next(losses))
    declined = choose_audio("auto", clips, paths, calibrate(clips))
    assert declined.combined_f1 == taken.combined_f1 and declined.combined_loss > declined.refit_loss
    assert not declined.used and declined.info() == {} and "log-loss" in declined.reason, declined.reason


def _faint_sound_clips(strength: float) -> tuple[list[OofClip], list[np.ndarray]]:
    """Nine clips whose picture says nothing and whose sound is ``strength`` louder on the highlights."""
    rng = np.random.default_rng(3)
    clips, features = [], []
    for number in range(9):
        times = np.arange(0, 60_000, 500, dtype=np.int64)
        targets = np.zeros(len(times), np.int64)
        start = 20_000 + 1000 * (number % 3)
        targets[(times >= start) & (times < start + 5000)] = 1
        feats = rng.standard_normal((len(times), AudioFeatureSpec().size)) * 0.3
        feats[:, 0] += np.where(targets == 1, strength, 0.0)
        clips.append(OofClip(f"c{number}.mp4", times, rng.uniform(0.1, 0.3, len(times)), targets, 500, number % 3 + 1))
        features.append(feats)
    return clips, features


def test_combined_events_need_the_combined_probability_to_say_highlight(monkeypatch):
    """The combined score is a fitted probability: its event threshold is never below 0.5 when sound is judged, and
    the rules a scan uses start at COMBINED_EVENT_FLOOR, even where a lower one wins on the out-of-fold scores
    (faint sound, a picture that says nothing)."""
    import autotosis.training.audio as audio_module

    clips, features = _faint_sound_clips(0.6)  # faint: the fitted probability stays low on highlights
    unconstrained = calibrate(combined_out_of_fold(clips, features))
    assert unconstrained.rules.threshold < 0.5  # what the out-of-fold optimum alone would choose
    by_name = {c.name: f for c, f in zip(clips, features)}
    monkeypatch.setattr(audio_module, "audio_features", lambda path, times, spec: by_name[Path(path).name])
    choice = choose_audio("on", clips, [Path(c.name) for c in clips], calibrate(clips))
    assert choice.used and choice.info()["threshold"] >= COMBINED_EVENT_FLOOR == 0.8 > MIN_COMBINED_THRESHOLD == 0.5
    assert choice.info()["events"]["plateau"][0] >= COMBINED_EVENT_FLOOR


def test_sound_is_judged_from_0_5_up_and_scans_with_the_rules_from_0_8_up(monkeypatch):
    """The fold models' combined scores are less sharp than the final model's: whether sound helps is judged with
    the thresholds they support (from 0.5), the stored rules start higher (loud look-alikes rise on new footage)."""
    import autotosis.training.audio as audio_module

    clips, features = _faint_sound_clips(0.8)  # the highlights' combined scores sit around 0.5
    by_name = {c.name: f for c, f in zip(clips, features)}
    monkeypatch.setattr(audio_module, "audio_features", lambda path, times, spec: by_name[Path(path).name])
    combined = combined_out_of_fold(clips, features)
    judged, scanned = calibrate(combined, floor=0.5), calibrate(combined, floor=0.8)
    assert judged.event.f1 > scanned.event.f1  # the two floors choose differently here
    choice = choose_audio("auto", clips, [Path(c.name) for c in clips], calibrate(clips))
    assert choice.used and choice.combined_f1 == round(judged.event.f1, 4)
    assert choice.info()["threshold"] == scanned.rules.threshold >= 0.8
    assert choice.info()["events"]["event_f1"] == round(scanned.event.f1, 4)
    assert f"events from combined score {scanned.rules.threshold:.2f}" in choice.reason
    # Both choices come from one scoring of the rules, as calibrate makes each.
    assert calibrate_from_floors(combined, (0.5, 0.8, None)) == (judged, scanned, calibrate(combined))


def test_combined_scores_are_out_of_fold_for_the_combiner_too():
    clips, features = _oof_clips(6, picture_tells=False)
    combined = combined_out_of_fold(clips, features)
    for clip, mixed in zip(clips, combined):
        assert mixed.fold == clip.fold and len(mixed.scores) == len(clip.scores)
    scores = np.concatenate([c.scores for c in combined])
    assert average_precision(scores, np.concatenate([c.targets == 1 for c in clips])) > 0.9


def test_audio_on_that_cannot_be_honoured_is_an_error(tmp_path: Path):
    with pytest.raises(UsageError, match="needs cross-validation"):
        check_audio_mode("on", [], 0)
    assert "no cross-validation" in check_audio_mode("auto", [], 0)
    assert check_audio_mode("off", [], 3) == "--audio off"
    with pytest.raises(UsageError):
        check_audio_mode("loud", [], 3)


@pytest.mark.media
def test_audio_on_with_clips_without_sound_is_a_data_error(tmp_path: Path):
    silent = flash_clip(tmp_path / "silent.mp4", 2, [], audio=False)
    sounding = _video_with_sound(tmp_path / "s.mp4", _bursts(2, []), 2)
    with pytest.raises(DataError, match="1 of 2 training clips have no sound: silent.mp4"):
        check_audio_mode("on", [silent, sounding], 3)
    assert "1 of 2 training clips have no sound" in check_audio_mode("auto", [silent, sounding], 3)
    assert check_audio_mode("auto", [sounding], 3) is None


@pytest.mark.media
@pytest.mark.torch
def test_train_audio_on_without_sound_is_reported_by_the_cli(tmp_path: Path):
    clips = []
    for number in range(4):
        spans = [(1.0, 2.5)] if number < 3 else []
        clips.append(flash_clip(tmp_path / f"c{number}.mp4", 4, spans, audio=False))
    lines = [f"c{n}.mp4  crop=0.5,0,1,0.5  {'0:01-0:02.5' if n < 3 else ''}" for n in range(4)]
    (tmp_path / "rage.txt").write_text("\n".join(lines) + "\n")
    done = subprocess.run(
        [sys.executable, "-m", "autotosis", "train", "rage.txt", "-o", "m.pt", "--audio", "on", "--weights", "none"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode != 0
    assert "--audio on, but 4 of 4 training clips have no sound" in done.stderr
    assert not (tmp_path / "m.pt").exists()


# --------------------------------------------------------------------------- scanning


def _with_combiner(path: Path, out: Path, combiner: AudioCombiner, threshold: float = 0.7) -> Path:
    import autotosis.model.model as model_module

    model, info, _ = model_module.load_checkpoint(path)
    rules = {"threshold": threshold, "smooth_ms": 0, "min_length_ms": 1000, "merge_gap_ms": 2000}
    audio = AudioChoice("on", True, "test", combiner, rules, 0.5, 0.8).info()
    model_module.save_checkpoint(out, model, replace(info, audio=audio))
    return out


def _loudness_combiner() -> AudioCombiner:
    size = AudioFeatureSpec().size
    weights = (3.0,) + (0.0,) * (size - 1)
    return AudioCombiner(AudioFeatureSpec(), (0.0,) * size, (1.0,) * size, 1.0, weights, -2.0)


@pytest.mark.media
@pytest.mark.torch
@pytest.mark.parametrize("mode", ["dense", "coarse"])
def test_scan_combines_picture_and_sound_and_is_unchanged_without_either(tmp_path: Path, mode: str):
    from autotosis.detect.scan import ScanOptions, scan_video

    picture_only = constant_model(tmp_path / "p.pt", 0.0)  # every frame scores 0.5
    with_sound = _with_combiner(picture_only, tmp_path / "a.pt", _loudness_combiner())
    options = ScanOptions(use_cache=False, mode=mode)
    silent = flash_clip(tmp_path / "silent.mp4", 8, [], audio=False)
    before = scan_video(silent, picture_only, options)
    after = scan_video(silent, with_sound, options)
    np.testing.assert_array_equal(before.probs, after.probs)  # no sound: exactly today's scores
    np.testing.assert_array_equal(before.times_ms, after.times_ms)
    assert after.scan.threshold == before.scan.threshold == 0.5 and after.scan.events == before.scan.events
    assert before.scan.audio == {} and after.scan.audio["used"] is False

    loud = _video_with_sound(tmp_path / "loud.mp4", _bursts(8, [(3.0, 5.0)]), 8)
    plain = scan_video(loud, picture_only, options)
    mixed = scan_video(loud, with_sound, options)
    assert plain.scan.audio == {} and np.allclose(plain.probs[:, 1], 0.5)  # a model without sound: as before
    assert mixed.scan.audio["used"] is True and mixed.scan.threshold == 0.7
    # The picture's own scores are kept (a coarse scan refined by the combined score may decode other stretches).
    picture = np.asarray(mixed.scan.audio["picture"])
    shared = np.isin(mixed.times_ms, plain.times_ms)
    if mode == "dense":
        np.testing.assert_array_equal(mixed.times_ms, plain.times_ms)  # the same samples, whatever the sound
    assert shared.sum() >= len(plain.times_ms) // 2
    np.testing.assert_allclose(picture[shared], plain.probs[np.isin(plain.times_ms, mixed.times_ms), 1], atol=1e-6)
    expected = _loudness_combiner().apply(picture, audio_features(loud, mixed.times_ms))
    np.testing.assert_allclose(mixed.probs[:, 1], expected, atol=1e-6)
    np.testing.assert_allclose(mixed.probs.sum(axis=1), 1.0, atol=1e-6)
    inside = (mixed.times_ms >= 3500) & (mixed.times_ms <= 4500)
    assert mixed.probs[inside, 1].min() > 0.9 > 0.3 > mixed.probs[mixed.times_ms <= 1500, 1].max()


@pytest.mark.media
@pytest.mark.torch
def test_a_coarse_scan_looks_closely_where_the_sound_may_make_a_highlight(tmp_path: Path):
    # A highlight only the sound tells (the picture scores every frame low), 3.0-6.5 s, keyframes every 4 s: only
    # the keyframe at 4 s falls inside it.  Refined by the picture's score, nothing is decoded densely and that one
    # sample is too short to make an event; refined by the combined score, the events read, it is found as the
    # dense scan finds it.
    from autotosis.detect.pipeline import detect_events
    from autotosis.detect.scan import ScanOptions, scan_video

    picture_only = constant_model(tmp_path / "p.pt", -1.5)  # every frame scores 0.18, under the candidate level
    combiner = _loudness_combiner()
    combiner = replace(combiner, weights=(6.0,) + combiner.weights[1:])
    with_sound = _with_combiner(picture_only, tmp_path / "a.pt", combiner)
    video = _video_with_sound(tmp_path / "loud.mp4", _bursts(16, [(3.0, 6.5)]), 16, keyframe_every=40)
    found = {}
    for mode in ("dense", "coarse"):
        scores = scan_video(video, with_sound, ScanOptions(use_cache=False, mode=mode))
        found[mode] = [(e.start_ms, e.end_ms) for e in detect_events(scores).events]
        if mode == "coarse":
            assert len(scores.times_ms) < 32  # the rest of the video kept its keyframe samples
            assert scores.scan.coarse.threshold == pytest.approx(0.75 * 0.7)  # the combined threshold's level
    assert len(found["dense"]) == 1 and found["dense"][0][1] - found["dense"][0][0] >= 2500
    assert found["coarse"] == found["dense"]


@pytest.mark.media
@pytest.mark.torch
def test_fit_with_audio_on_stores_the_combiner_and_keeps_it_on_resume(tmp_path: Path):
    from autotosis.model.model import load_checkpoint
    from autotosis.training.fit import fit
    from tests.test_train import fast_config, make_frameset

    layout = ((8, 12, 4), (10, 10, 4), (6, 14, 4), (12, 8, 4), (0, 24, 0), (9, 11, 4))
    frameset = make_frameset(tmp_path / "frames", layout=layout)
    for clip in frameset.clips:  # each clip's sound is loud where its frames show a highlight
        seconds = len(clip.times_ms) * 0.25
        loud = [(t / 1000, t / 1000 + 0.25) for t, y in zip(clip.times_ms, clip.targets) if y == 1]
        _video_with_sound(clip.clip, _bursts(seconds, loud, seed=len(loud)), seconds)
    config = replace(fast_config(), folds=3, epochs=1, leak_distance=None, audio="on")
    result = fit(frameset, config, tmp_path / "m.pt")
    assert result.audio is not None and result.audio.used and result.audio.reason.startswith("--audio on")
    _, info, _ = load_checkpoint(tmp_path / "m.pt")
    model = AudioModel.from_info(info.audio)
    assert model is not None and info.audio["mode"] == "on"
    assert info.train_args["audio"] == "on"
    # The out-of-fold picture scores stay in the resume state: the mix can be fitted again from them.
    import torch

    from autotosis.training.audio import oof_from_state

    raw = torch.load(tmp_path / "m.last.pt", weights_only=True)
    oof, paths = oof_from_state(raw["resume"]["extra"]["fit"]["oof"])
    assert sorted(p.name for p in paths) == sorted(c.clip.name for c in frameset.clips)
    assert sorted(len(c.times_ms) for c in oof) == sorted(len(c.times_ms[::2]) for c in frameset.clips)
    again = fit(frameset, replace(config, epochs=2), tmp_path / "m.pt", resume=tmp_path / "m.last.pt")
    assert again.audio is not None and again.audio.info() == result.audio.info()
    assert load_checkpoint(tmp_path / "m.pt")[1].audio == info.audio


# --------------------------------------------------------------------------- the generator's sound kinds


def _rms_track(kind: str, tmp_path: Path, spans) -> tuple[object, np.ndarray, np.ndarray]:
    from autotosis.demo.frames import _plan_clip, _write_audio
    from autotosis.demo.plan import DEFAULT_CAM

    plan = _plan_clip(
        duration_s=60.0, highlights=spans, seed=6, cam=DEFAULT_CAM, width=64, height=36, fps=10, audio_kind=kind
    )
    _write_audio(plan, tmp_path / f"{kind}.wav")
    with wave.open(str(tmp_path / f"{kind}.wav"), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64) / 32768
    rms = np.sqrt((samples.reshape(-1, 4800) ** 2).mean(axis=1))  # per 0.1 s at 48 kHz
    return plan, rms, np.arange(len(rms)) * 100 + 50


def _inside(t: np.ndarray, spans) -> np.ndarray:
    return np.any([(t >= s) & (t < e) for s, e in spans], axis=0) if spans else np.zeros(len(t), bool)


def test_the_generator_makes_three_kinds_of_sound(tmp_path: Path):
    from autotosis.demo.frames import _decoy_booms, _unrelated_spans

    spans = ((5000, 9000), (30000, 35000))
    plan, heard, t = _rms_track("heard", tmp_path, spans)
    highlight = _inside(t, spans)
    assert np.median(heard[highlight]) > 2 * np.median(heard[~highlight])

    plan, unrelated, t = _rms_track("unrelated", tmp_path, spans)
    shouting = _unrelated_spans(plan)
    assert shouting and not _inside(t, shouting)[highlight].all()  # shouting at moments of its own
    assert _unrelated_spans(replace(plan, highlights=())) == shouting  # drawn without looking at the highlights
    alone = highlight & ~_inside(t, shouting)
    assert np.median(unrelated[_inside(t, shouting)]) > 2 * np.median(unrelated[~_inside(t, shouting)])
    assert np.median(unrelated[alone]) < 1.5 * np.median(unrelated[~highlight & ~_inside(t, shouting)])

    plan, decoys, t = _rms_track("decoys", tmp_path, spans)
    booms = _decoy_booms(plan)
    assert len(booms) >= 2
    after = _inside(t, [(b, b + 1500) for b in booms])
    assert not (after & highlight).any()  # during calm stretches
    assert np.median(decoys[after]) > 2 * np.median(decoys[~after & ~highlight])
    assert np.median(decoys[highlight]) > 2 * np.median(decoys[~after & ~highlight])  # highlights still heard


def test_a_model_with_sound_decides_events_by_its_combined_rules_and_pictures_by_its_own():
    from autotosis.detect.pipeline import event_params, picture_only
    from autotosis.detect.scores import ScanInfo
    from autotosis.model.model import ModelInfo

    picture_rules = {"threshold": 0.8, "smooth_ms": 0, "min_length_ms": 1000, "merge_gap_ms": 2000}
    combined_rules = {"threshold": 0.6, "smooth_ms": 1000, "min_length_ms": 2000, "merge_gap_ms": 4000}
    audio = AudioChoice("on", True, "test", _loudness_combiner(), combined_rules, 0.5, 0.8).info()
    info = ModelInfo("rage", ("background", "rage"), 32, (0.5,) * 3, (0.25,) * 3, None, 0.8, events=picture_rules)
    with_sound = replace(info, audio=audio)
    assert ModelInfo.from_dict(with_sound.to_dict()) == with_sound  # the checkpoint metadata round trip
    assert event_params(info).threshold == 0.8
    assert (event_params(with_sound).threshold, event_params(with_sound).smooth_ms) == (0.6, 1000)
    assert event_params(picture_only(with_sound)) == event_params(info)
    assert event_params(with_sound, threshold=0.9).threshold == 0.9  # given settings still win
    # A scan's record holds the rules that apply to its scores, whatever the model.
    assert event_params(ScanInfo(threshold=0.8, events=picture_rules)) == event_params(info)


@pytest.mark.media
def test_the_sound_decodes_beside_the_picture_and_stops_with_the_scan(tmp_path: Path):
    from autotosis.detect.scan import _SoundTrack
    from autotosis.media.probe import probe
    from autotosis.model.model import ModelInfo

    video = _video_with_sound(tmp_path / "loud.mp4", _bursts(6, [(2.0, 3.0)]), 6)
    audio = AudioChoice("on", True, "test", _loudness_combiner(), {}, 0.5, 0.8).info()
    info = ModelInfo("rage", ("background", "rage"), 32, (0.5,) * 3, (0.25,) * 3, None, 0.5, audio=audio)
    with _SoundTrack(video, probe(video), info) as job:
        track = job.result()
    assert track is not None and abs(len(track.energy) - 6000 // track.hop_ms) <= 2
    with _SoundTrack(video, probe(video), replace(info, audio={})) as job:
        assert job.result() is None  # a model without sound decodes none
    leaving = _SoundTrack(video, probe(video), info)
    with pytest.raises(RuntimeError), leaving:
        raise RuntimeError("the picture scan failed")
    assert leaving._thread is not None and not leaving._thread.is_alive()  # stopped and joined
