"""The calibrated threshold adapted to one video (detect.adapt): raised where the model scores it higher."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from autotosis.cli import main
from autotosis.detect.adapt import (
    ADAPT_MIN_LEVEL,
    ADAPT_MIN_VIDEO_MS,
    ADAPT_SHARE,
    adapt_threshold,
    video_median,
)
from autotosis.detect.pipeline import detect_events
from autotosis.detect.scores import CoarseScan, ScanInfo, Scores, write_scores
from autotosis.detect.segments import EventParams, event_params_for
from autotosis.training.calibrate import OofClip, calibrate_scores

MINUTE = 60_000


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _video(level: float, minutes: float = 10, highlights: int = 5) -> tuple[np.ndarray, np.ndarray, int]:
    """Two samples a second at ``level``, with ``highlights`` 6-s highlights scoring 0.99 spread over it, and as
    many 4-s look-alikes scoring 0.93 between them."""
    duration = int(minutes * MINUTE)
    times = np.arange(0, duration, 500, dtype=np.int64)
    values = np.full(len(times), level)
    for k in range(highlights):
        start = (k + 0.5) * duration / highlights
        values[(times >= start) & (times < start + 6000)] = 0.99
        look = start - 0.4 * duration / highlights
        values[(times >= look) & (times < look + 4000)] = 0.93
    return times, values, duration


def test_a_video_scored_higher_than_the_training_negatives_raises_the_threshold_by_half_the_logit_gap():
    times, values, duration = _video(0.4)
    params = EventParams(threshold=0.9, adapt_from=0.03)
    adapted, note = adapt_threshold(times, values, duration, params)
    expected = 1 / (1 + math.exp(-(_logit(0.9) + ADAPT_SHARE * (_logit(0.4) - _logit(0.03)))))
    assert note is not None
    assert adapted.threshold == pytest.approx(expected)
    assert 0.97 < adapted.threshold < 0.99
    assert adapted.adapt_from is None  # adapting twice changes nothing
    assert (note.calibrated, note.video_median, note.negative_median) == (0.9, pytest.approx(0.4), 0.03)
    assert adapt_threshold(times, values, duration, adapted) == (adapted, None)
    assert "raised from the model's 0.90" in note.describe()


@pytest.mark.parametrize(
    ("level", "minutes", "params", "why"),
    [
        (0.02, 10, EventParams(threshold=0.9, adapt_from=0.03), "scored as the training negatives or lower"),
        (0.4, 4.9, EventParams(threshold=0.9, adapt_from=0.03), "shorter than five minutes"),
        (0.95, 10, EventParams(threshold=0.9, adapt_from=0.03), "most of the video scores as highlight"),
        (0.4, 10, EventParams(threshold=0.9), "no level to adapt from (an older model, or --threshold given)"),
        (0.4, 10, EventParams(top_percent=1, adapt_from=0.03), "top-percent selection has no threshold"),
        (0.00012, 10, EventParams(threshold=0.85, adapt_from=0.0001), "both levels below 1%: alike, whatever ratio"),
    ],
)
def test_the_threshold_stays_where_the_rule_does_not_apply(level, minutes, params, why):
    times, values, duration = _video(level, minutes)
    adapted, note = adapt_threshold(times, values, duration, params)
    assert note is None, why
    assert adapted.threshold == params.threshold and adapted.adapt_from is None


def test_levels_below_one_percent_count_as_one_percent():
    times, values, duration = _video(0.05)
    adapted, note = adapt_threshold(times, values, duration, EventParams(threshold=0.9, adapt_from=0.0001))
    expected = 1 / (1 + math.exp(-(_logit(0.9) + ADAPT_SHARE * (_logit(0.05) - _logit(ADAPT_MIN_LEVEL)))))
    assert note is not None and adapted.threshold == pytest.approx(expected)


def test_densely_refined_stretches_do_not_weigh_more_in_the_video_level():
    """A coarse scan: a sample every 2 s, and four a second over a long candidate stretch; the level is read on a
    2-s grid, so the stretch counts for its length, not for its number of samples."""
    sparse = np.arange(0, 10 * MINUTE, 2000, dtype=np.int64)
    dense = np.arange(2 * MINUTE, 5 * MINUTE, 250, dtype=np.int64)
    times = np.union1d(sparse, dense)
    values = np.where((times >= 2 * MINUTE) & (times < 5 * MINUTE), 0.9, 0.02)
    assert np.median(values) == pytest.approx(0.9)  # by sample count the candidate stretch is most of the video
    assert video_median(times, values) == pytest.approx(0.02)
    params = EventParams(threshold=0.95, adapt_from=0.03)
    assert adapt_threshold(times, values, 10 * MINUTE, params)[1] is None


def test_only_the_calibrated_threshold_adapts_and_older_models_keep_todays_rules():
    rules = {"threshold": 0.9, "smooth_ms": 0, "min_length_ms": 1000, "merge_gap_ms": 2000, "negative_median": 0.03}
    assert event_params_for(rules, 0.9).adapt_from == 0.03
    assert event_params_for(rules, 0.9, threshold=0.8) == EventParams(threshold=0.8)  # the user's threshold stays
    old = {k: v for k, v in rules.items() if k != "negative_median"}
    assert event_params_for(old, 0.9) == EventParams(threshold=0.9)
    assert event_params_for({**rules, "negative_median": "low"}, 0.9).adapt_from is None  # hand-edited junk
    assert event_params_for({}, 0.7).adapt_from is None  # a threshold without calibration


def test_calibration_stores_the_median_out_of_fold_score_of_the_negatives():
    clips = []
    rng = np.random.default_rng(0)
    for number in range(6):
        times = np.arange(0, 30_000, 500, dtype=np.int64)
        targets = np.zeros(len(times), dtype=np.int64)
        targets[20:30] = 1
        scores = np.where(targets == 1, 0.95, rng.uniform(0.0, 0.2, len(times)))
        clips.append(OofClip(f"c{number}", times, scores, targets, 500))
    calibration = calibrate_scores(clips)
    negatives = np.concatenate([c.scores[c.targets == 0] for c in clips])
    assert calibration is not None
    assert calibration.negative_median == pytest.approx(float(np.median(negatives)))
    assert calibration.to_dict()["negative_median"] == pytest.approx(float(np.median(negatives)))


def _scores_file(path: Path, level: float, minutes: float, coarse: CoarseScan | None = None) -> Path:
    times, rage, duration = _video(level, minutes)
    rules = {"threshold": 0.9, "smooth_ms": 0, "min_length_ms": 1000, "merge_gap_ms": 2000, "negative_median": 0.03}
    scores = Scores(
        Path("vod.mp4"),
        duration,
        ("background", "rage"),
        times,
        np.stack([1 - rage, rage], 1).astype(np.float32),
        500,
        task="rage",
        scan=ScanInfo(threshold=0.9, events=rules, mode="coarse" if coarse else "dense", coarse=coarse),
    )
    write_scores(scores, path)
    return path


def test_events_adapt_the_stored_threshold_to_the_video_and_say_so(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _scores_file(tmp_path / "s.json", 0.5, 10)  # an unfamiliar room: its ordinary moments score 0.5
    assert run(["events", "s.json", "-o", "e.json"]) == 0
    said = capsys.readouterr()
    written = json.loads((tmp_path / "e.json").read_text())
    assert written["params"]["threshold"] == pytest.approx(0.981, abs=0.001)
    assert written["threshold_adapted"]["calibrated"] == 0.9
    assert len(written["events"]) == 5  # the highlights (0.99), not the look-alikes (0.93)
    assert "threshold raised from the model's 0.90" in " ".join((said.out + said.err).split())
    assert run(["events", "s.json", "-o", "given.json", "--threshold", "0.9"]) == 0
    given = json.loads((tmp_path / "given.json").read_text())
    assert given["params"]["threshold"] == 0.9 and "threshold_adapted" not in given
    assert len(given["events"]) == 10  # highlights and look-alikes


def test_events_below_a_coarse_scans_candidate_level_say_what_it_did_not_look_at(tmp_path: Path, capsys):
    _scores_file(tmp_path / "s.json", 0.5, 10)
    rough = CoarseScan(keyframes=300, threshold=0.93, spans_ms=((0, 4000),), refined_fraction=0.0067)
    _scores_file(tmp_path / "c.json", 0.5, 10, rough)

    def note(*argv: str) -> bool:
        assert run(["events", *argv, "-o", str(tmp_path / "e.json"), "--force"]) == 0
        said = capsys.readouterr()
        return "looking closely only where keyframes scored 0.93" in " ".join((said.out + said.err).split())

    assert note(str(tmp_path / "c.json"), "--threshold", "0.6")  # below what the scan looked at closely
    assert not note(str(tmp_path / "c.json"))  # the threshold the scan raised its level with (0.98)
    assert not note(str(tmp_path / "s.json"), "--threshold", "0.6")  # a dense scan saw everything


def test_a_short_video_keeps_the_calibrated_threshold(tmp_path: Path):
    from autotosis.detect.scores import read_scores

    scores = read_scores(_scores_file(tmp_path / "s.json", 0.4, ADAPT_MIN_VIDEO_MS / MINUTE - 0.5))
    found = detect_events(scores)
    assert found.adaptation is None and found.params.threshold == 0.9


def test_events_count_one_event_in_the_singular(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    _scores_file(tmp_path / "s.json", 0.03, 10)
    assert run(["events", "s.json", "-o", "one.json", "--top-k", "1"]) == 0
    said = " ".join(capsys.readouterr().out.split())
    assert "1 event in vod.mp4" in said and "1 events" not in said
    assert run(["events", "s.json", "-o", "two.json", "--top-k", "2"]) == 0
    assert "2 events in vod.mp4" in " ".join(capsys.readouterr().out.split())
