"""`autotosis eval`: frame/event scores against label files (pure functions + the command)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from autotosis.cli import main
from autotosis.core.errors import ExitStatus, UsageError
from autotosis.detect.scores import Scores
from autotosis.labels.parse import parse_labels_text
from autotosis.labels.values import Span
from autotosis.media import decode
from autotosis.training.dataset import IGNORE
from autotosis.training.evaluate import EvalOptions, LabelledScores, clip_unit, evaluate_units, worst_first
from tests.conftest import constant_model, flash_clip

BINARY = ("background", "rage")
STEP = 500


def unit(
    name: str, rage: np.ndarray, spans: tuple[Span, ...], duration_ms: int | None = None, line: int = 1
) -> LabelledScores:
    """A clip sampled every 0.5 s with the given rage scores."""
    rage = np.asarray(rage, dtype=np.float32)
    times = np.arange(len(rage), dtype=np.int64) * STEP
    probs = np.stack([1 - rage, rage], axis=1)
    return LabelledScores(
        name=name, probs=probs, times_ms=times, duration_ms=duration_ms or len(rage) * STEP, spans=spans, line=line
    )


def scores_where(n: int, *ranges: tuple[int, int], high: float = 0.9, low: float = 0.05) -> np.ndarray:
    """Scores ``high`` at sample times in the half-open ms ranges, ``low`` elsewhere."""
    times = np.arange(n) * STEP
    inside = np.zeros(n, dtype=bool)
    for start, end in ranges:
        inside |= (times >= start) & (times < end)
    return np.where(inside, high, low)


def run_eval(units, classes=BINARY, **options):
    return evaluate_units(units, classes, EvalOptions(**options), task="rage", model="m.pt", default_threshold=0.5)


# --------------------------------------------------------------------------- pure functions


def test_edge_band_and_unsure_spans_are_not_counted():
    # 20 samples (0..9.5 s): a sure span 2-5 s and an unsure one 6-8 s.
    spans = (Span(2000, 5000), Span(6000, 8000, unsure=True))
    # The model fires in the sure span and in the unsure one, where the truth is unknown.
    rage = scores_where(20, (2000, 5000), (6000, 8000))
    report = run_eval([unit("a", rage, spans)], band_ms=500, merge_gap_ms=0).reports[0]
    clip = report.clips[0]
    # Ignored: 2.0, 5.0 (edges) and 5.5..8.0 (unsure + band): 2 + 6.
    assert clip.ignored == 8 and clip.counted == 12
    assert (clip.frame.tp, clip.frame.fp, clip.frame.fn) == (5, 0, 0)
    assert clip.average_precision == 1.0
    # The predicted event in the unsure span is not a false positive.
    assert (clip.event.tp, clip.event.fp, clip.event.fn) == (1, 0, 0) and clip.events_unsure == 1


def test_the_same_wrong_frames_count_without_band_and_unsure():
    rage = scores_where(20, (2000, 5000), (6000, 8000))
    report = run_eval([unit("a", rage, (Span(2000, 5000),))], band_ms=0, merge_gap_ms=0).reports[0]
    clip = report.clips[0]
    assert clip.ignored == 0 and clip.frame.fp == 4  # 6.0..7.5 s
    assert (clip.event.tp, clip.event.fp) == (1, 1)


def test_event_matching_needs_the_stated_iou():
    # Truth 2-6 s; the model fires 4-8 s: IoU = 2 / 6 = 0.33.
    rage = scores_where(20, (4000, 8000))
    units = [unit("a", rage, (Span(2000, 6000),))]
    loose = run_eval(units, iou=0.3, band_ms=0).reports[0]
    strict = run_eval(units, iou=0.5, band_ms=0).reports[0]
    assert (loose.event.tp, loose.event.fp, loose.event.fn) == (1, 0, 0)
    assert (strict.event.tp, strict.event.fp, strict.event.fn) == (0, 1, 1)
    # Frame level does not depend on the IoU.
    assert loose.frame == strict.frame


def test_events_use_min_length_and_merge_gap_like_the_events_command():
    # Two bursts 1 s apart: merged into one event by the default 2 s gap, two without.
    rage = scores_where(30, (2000, 4000), (5000, 7000))
    units = [unit("a", rage, (Span(2000, 7000),))]
    assert run_eval(units, band_ms=0).reports[0].clips[0].events_found == 1
    split = run_eval(units, band_ms=0, merge_gap_ms=0).reports[0].clips[0]
    assert split.events_found == 2 and split.event.fp == 1
    # A single sample is shorter than a 1 s minimum: no event at all.
    assert run_eval([unit("b", scores_where(20, (3000, 3500)), ())], band_ms=0).reports[0].clips[0].events_found == 0


def test_threshold_defaults_to_the_models_and_can_be_given():
    rage = scores_where(20, (2000, 5000), high=0.6)
    units = [unit("a", rage, (Span(2000, 5000),))]
    model_default = evaluate_units(units, BINARY, EvalOptions(band_ms=0), task="rage", model="m", default_threshold=0.7)
    assert model_default.reports[0].threshold == 0.7 and model_default.reports[0].frame.tp == 0
    given = evaluate_units(
        units, BINARY, EvalOptions(band_ms=0, threshold=0.5), task="rage", model="m", default_threshold=0.7
    )
    assert given.reports[0].threshold == 0.5 and given.reports[0].frame.tp == 6


def test_totals_pool_the_clips_and_worst_clips_come_first():
    good = unit("good", scores_where(20, (2000, 5000)), (Span(2000, 5000),), line=1)
    missed = unit("missed", scores_where(20), (Span(2000, 5000),), line=2)
    noisy = unit("noisy", scores_where(20, (1000, 4000)), (), line=3)
    report = run_eval([good, missed, noisy], band_ms=0).reports[0]
    frame, event = report.frame, report.event
    assert frame.tp == sum(c.frame.tp for c in report.clips) == 6
    assert frame.fp == sum(c.frame.fp for c in report.clips) == 6
    assert frame.fn == sum(c.frame.fn for c in report.clips) == 6
    assert (event.tp, event.fp, event.fn) == (1, 1, 1)
    assert [c.name for c in worst_first(report.clips)] == ["missed", "noisy", "good"]
    assert [c.name for c in report.failing()] == ["missed", "noisy"]
    # AP ranks all counted samples of all clips together.
    assert 0 < report.average_precision < 1


def test_multiclass_is_one_class_against_the_rest():
    classes = ("background", "rage", "pog")
    times = np.arange(20, dtype=np.int64) * STEP
    probs = np.zeros((20, 3), dtype=np.float32)
    probs[:, 0] = 1
    rage_now = (times >= 1000) & (times < 4000)
    pog_now = (times >= 6000) & (times < 9000)
    probs[rage_now] = (0.1, 0.8, 0.1)
    probs[pog_now] = (0.1, 0.7, 0.2)  # the model calls pog "rage"
    spans = (Span(1000, 4000, label="rage"), Span(6000, 9000, label="pog"))
    clip = LabelledScores("m", probs, times, 10_000, spans)
    report = evaluate_units([clip], classes, EvalOptions(band_ms=0), task="t", model="m", default_threshold=0.5)
    by_class = {r.class_name: r for r in report.reports}
    assert set(by_class) == {"rage", "pog"}
    assert (by_class["rage"].frame.tp, by_class["rage"].frame.fp) == (6, 6)  # pog frames count against rage
    assert (by_class["pog"].frame.tp, by_class["pog"].frame.fn) == (0, 6)
    assert (by_class["rage"].event.tp, by_class["rage"].event.fp) == (1, 1)
    only_pog = evaluate_units(
        [clip], classes, EvalOptions(), task="t", model="m", default_threshold=0.5, class_name="pog"
    )
    assert [r.class_name for r in only_pog.reports] == ["pog"]
    with pytest.raises(UsageError, match="no class 'laugh'"):
        evaluate_units([clip], classes, EvalOptions(), task="t", model="m", default_threshold=0.5, class_name="laugh")


def test_images_get_frame_scores_only():
    probs = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7], [0.6, 0.4]], dtype=np.float32)
    images = LabelledScores("scene1", probs, targets=np.array([1, 0, 0, IGNORE]))
    report = run_eval([images]).reports[0]
    assert report.event is None and report.clips[0].event is None
    assert (report.frame.tp, report.frame.fp, report.frame.fn) == (1, 1, 0)
    assert report.clips[0].counted == 3


def test_clip_unit_gives_unnamed_spans_the_files_class_by_name():
    labels = parse_labels_text("a.mp4  2-5  ~6-7\n", Path("/p/rage.txt"))
    times = np.arange(20, dtype=np.int64) * STEP
    # The model lists its classes in another order than the label file.
    probs = np.zeros((20, 3), dtype=np.float32)
    probs[:, 0] = 1
    scores = Scores(Path("/p/a.mp4"), 10_000, ("background", "pog", "rage"), times, probs, STEP)
    made = clip_unit(labels.entries[0], scores, labels.class_names())
    assert [s.label for s in made.spans] == ["rage", None]
    assert made.name == "a.mp4" and made.line == 1
    report = evaluate_units(
        [made], scores.classes, EvalOptions(band_ms=0), task="rage", model="m", default_threshold=0.5, class_name="rage"
    )
    assert report.reports[0].frame.fn == 6 and report.reports[0].frame.fp == 0


def test_bad_options_are_usage_errors():
    with pytest.raises(UsageError):
        EvalOptions(iou=0)
    with pytest.raises(UsageError):
        EvalOptions(band_ms=-1)


# --------------------------------------------------------------------------- the command


CAM = "0.75,0,1,0.3"


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("eval") / "my clips é"
    (root / "clips").mkdir(parents=True)
    flash_clip(root / "clips" / "a b.mp4", 6, [(2, 4)])
    flash_clip(root / "clips" / "calm.mp4", 4, [])
    (root / "rage.txt").write_text(
        f'# default crop={CAM}\n"clips/a b.mp4"  2-4  ~5-5.5\nclips/calm.mp4\n', encoding="utf-8"
    )
    return root


def run(argv) -> int:
    return main(["--progress", "none", *argv])


@pytest.mark.media
@pytest.mark.torch
def test_eval_command_reports_per_clip_and_json_and_reuses_scans(project: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    never = constant_model(tmp_path / "never.pt", -8.0)
    out = tmp_path / "eval.json"
    assert run(["eval", str(project / "rage.txt"), "--model", str(never), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "a b.mp4" in printed and "calm.mp4" in printed
    report = json.loads(out.read_text())
    rage = report["reports"][0]
    assert report["format"] == "autotosis-eval/1" and rage["class_name"] == "rage"
    clips = {c["name"]: c for c in rage["clips"]}
    # 6 s at 2 samples/s: 12 samples; 2.0 and 4.0 s are span edges, 4.5..5.5 s the unsure span with its band.
    assert clips["clips/a b.mp4"]["counted"] == 12 - 2 - 3 and clips["clips/a b.mp4"]["positives"] == 3
    assert clips["clips/a b.mp4"]["frame"]["fn"] == 3 and clips["clips/a b.mp4"]["event"]["fn"] == 1
    assert clips["clips/calm.mp4"]["counted"] == 8 and clips["clips/calm.mp4"]["frame"]["f1"] == 1.0
    assert rage["clips"][0]["name"] == "clips/a b.mp4"  # in label-file order in the JSON
    assert (rage["frame"]["tp"], rage["frame"]["fn"], rage["event"]["fn"]) == (0, 3, 1)

    # Scores are cached: a second run decodes nothing; the JSON is not replaced without --force.
    calls = []
    real = decode.iter_frames
    monkeypatch.setattr(decode, "iter_frames", lambda *a, **k: calls.append(1) or real(*a, **k))
    before = out.read_bytes()
    assert (
        run(["eval", str(project / "rage.txt"), "--model", str(never), "--json", str(out)]) == ExitStatus.OUTPUT_EXISTS
    )
    assert out.read_bytes() == before
    always = constant_model(tmp_path / "always.pt", 8.0)
    assert run(["eval", str(project / "rage.txt"), "--model", str(never), "--json", str(out), "--force"]) == 0
    assert calls == []
    assert (
        run(["eval", str(project / "rage.txt"), "--model", str(always), "--json", str(out), "--force", "--iou", "0.1"])
        == 0
    )
    rage = json.loads(out.read_text())["reports"][0]
    assert (rage["frame"]["tp"], rage["frame"]["fp"], rage["frame"]["fn"]) == (3, 12, 0)
    assert json.loads(out.read_text())["iou"] == 0.1


@pytest.mark.media
@pytest.mark.torch
def test_eval_takes_a_copy_of_the_labels_under_another_name(project: Path, tmp_path: Path, monkeypatch, capsys):
    # The README's held-out example: `cp labels.txt heldout.txt; autotosis eval heldout.txt --model model.pt`
    # (it exited 7: the task came from the file name).  A file without '# task=' fits any model of one class.
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    model = constant_model(tmp_path / "m.pt", 8.0)  # class "rage"
    results = []
    for name in ("rage.txt", "heldout.txt", "pog.txt"):
        copy = project / name
        if name != "rage.txt":
            copy.write_text((project / "rage.txt").read_text(encoding="utf-8"), encoding="utf-8")
        out = tmp_path / f"{name}.json"
        assert run(["eval", str(copy), "--model", str(model), "--json", str(out)]) == 0
        report = json.loads(out.read_text())
        assert [r["class_name"] for r in report["reports"]] == ["rage"]
        results.append(report["reports"])
    assert results[0] == results[1] == results[2]


@pytest.mark.media
@pytest.mark.torch
def test_eval_refuses_labels_that_name_another_task(project: Path, tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache"))
    other = project / "other.txt"
    other.write_text("# task=pog\n" + (project / "rage.txt").read_text(encoding="utf-8"), encoding="utf-8")
    model = constant_model(tmp_path / "m.pt", 0.0)
    capsys.readouterr()
    assert run(["eval", str(other), "--model", str(model)]) == ExitStatus.MODEL
    assert capsys.readouterr().err == (
        f"autotosis: error: {model} knows the classes background, rage, but {other} has background, pog ('# task=pog') "
        "(use a model trained on these classes, or change '# task=pog' (a binary file without '# task=' works with any "
        "model of one class))\n"
    )
    assert run(["eval", str(project / "rage.txt"), "--model", str(model), "--class", "laugh"]) == ExitStatus.USAGE
