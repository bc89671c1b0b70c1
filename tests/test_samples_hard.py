"""The generator's hard mode: look-alikes, jittered cam boxes, varied clips; the default mode unchanged."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotosis.core.errors import UsageError
from autotosis.core.region import crop_pixels as cam_box
from autotosis.demo.frames import _plan_clip, iter_stream_frames
from autotosis.demo.hard import (
    CAM_JITTER_PX,
    CAM_SCALE_JITTER,
    LOOKALIKE_KINDS,
    LOOKALIKE_MARGIN_MS,
    TWIN_KIND,
    _hard_frames,
    jittered_cam,
    lookalike_spans,
)
from autotosis.demo.plan import DEFAULT_CAM, ClipTruth
from autotosis.demo.samples import (
    _plan_hard_sample_set,
    _plan_sample_set,
    load_sample_set,
    make_sample_set,
    make_stream_clip,
    random_highlights,
)

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
SMALL = {"width": 160, "height": 90, "fps": 10}


def frames(**kwargs) -> list[np.ndarray]:
    return list(iter_stream_frames(**{**SMALL, **kwargs}))


# --------------------------------------------------------------------------- the default mode is untouched

# Recorded before the hard mode existed (seed 5, 1 s at 160x90, 10 fps, one highlight): the
# mean of each frame.  Means, not bytes: numpy's float32 maths may differ in the last bit
# between CPUs, which can move a pixel by one level, never a frame's mean by 0.05.
DEFAULT_FRAME_MEANS = [151.778, 152.348, 152.61, 152.929, 153.271, 153.441, 153.363, 153.474, 153.562, 153.981]


def test_default_frames_are_as_before():
    drawn = frames(duration_s=1.0, highlights=[(300, 800)], seed=5)
    means = [float(f.astype(np.float64).mean()) for f in drawn]
    assert np.allclose(means, DEFAULT_FRAME_MEANS, atol=0.05), means
    explicit = frames(duration_s=1.0, highlights=[(300, 800)], seed=5, hard=False)
    assert all(np.array_equal(a, b) for a, b in zip(drawn, explicit))


def test_default_sample_set_plan_is_as_before():
    train, heldout = _plan_sample_set(
        Path("x"),
        seed=7,
        train_clips=5,
        clip_s=30.0,
        heldout_s=240.0,
        heldout_events=8,
        width=640,
        height=360,
        fps=30,
        cam=DEFAULT_CAM,
    )
    assert [(c.seed, c.highlights) for c in train] == [
        (1247478191, ()),
        (603679381, ((2666, 8729), (19757, 23259))),
        (3562193848, ((1365, 4821), (11089, 16598), (22853, 28316))),
        (2452267595, ((14997, 19687),)),
        (1142978368, ((4215, 7418), (15218, 20029))),
    ]
    assert (heldout.seed, heldout.duration_ms) == (2070387560, 240000)
    assert heldout.highlights == (
        (1667, 5627),
        (21375, 27083),
        (81537, 88995),
        (120639, 129188),
        (152445, 158678),
        (181158, 184589),
        (214557, 221391),
        (229532, 234973),
    )
    assert all(not c.hard and not c.lookalikes and c.drawn_cam is None for c in [*train, heldout])
    # The truth file's entries of a default set carry no hard-mode keys.
    assert set(train[1].to_json()) == {"path", "duration_ms", "highlights", "cam", "width", "height", "fps", "seed"}


# --------------------------------------------------------------------------- look-alikes


@settings(max_examples=200, deadline=None)
@given(duration_ms=st.integers(5_000, 400_000), count=st.integers(0, 8), seed=st.integers(0, 2**32 - 1))
def test_lookalikes_never_come_near_a_highlight(duration_ms, count, seed):
    rng = np.random.default_rng(seed)
    try:
        highlights = random_highlights(duration_ms, count, rng)
    except Exception:  # noqa: BLE001 - too many for the clip: not this test's concern
        highlights = []
    looks = lookalike_spans(duration_ms, highlights, seed)
    assert looks == lookalike_spans(duration_ms, highlights, seed), "deterministic"
    for start, end, kind in looks:
        assert 0 <= start < end <= duration_ms
        assert 2000 <= end - start <= 6000
        assert kind.split("+")[0] in LOOKALIKE_KINDS and (kind.count("+") == 0 or kind.endswith("+redlight"))
        for h_start, h_end in highlights:
            assert end + LOOKALIKE_MARGIN_MS <= h_start or start >= h_end + LOOKALIKE_MARGIN_MS
    for (_, prev_end, _), (start, _, _) in zip(looks, looks[1:]):
        assert start >= prev_end


def test_lookalikes_are_several_per_minute_and_of_every_kind():
    highlights = random_highlights(900_000, 15, np.random.default_rng(3))
    looks = lookalike_spans(900_000, highlights, seed=3)
    assert 35 <= len(looks) <= 90
    assert {k.split("+")[0] for _, _, k in looks} == set(LOOKALIKE_KINDS)
    assert any(k.endswith("+redlight") for _, _, k in looks)


def test_twins_replace_some_lookalikes_and_move_nothing_else():
    """Twins (a silent rage) take the place of look-alikes drawn as before: same spans, the other kinds kept."""
    highlights = random_highlights(900_000, 15, np.random.default_rng(3))
    plain = lookalike_spans(900_000, highlights, seed=3)
    assert lookalike_spans(900_000, highlights, seed=3, twins=0.0) == plain
    twinned = lookalike_spans(900_000, highlights, seed=3, twins=0.3)
    assert twinned == lookalike_spans(900_000, highlights, seed=3, twins=0.3), "deterministic"
    assert [(s, e) for s, e, _ in twinned] == [(s, e) for s, e, _ in plain]
    changed = [(a, b) for (_, _, a), (_, _, b) in zip(plain, twinned) if a != b]
    assert all(b == TWIN_KIND for _, b in changed)
    assert 0.15 * len(plain) <= len(changed) <= 0.45 * len(plain)
    assert all(k == TWIN_KIND for _, _, k in lookalike_spans(900_000, highlights, seed=3, twins=1.0))
    with pytest.raises(UsageError):
        _plan_clip(duration_s=5.0, highlights=[], seed=1, cam=DEFAULT_CAM, twins=0.5, **SMALL)  # not hard
    with pytest.raises(UsageError):
        _plan_clip(duration_s=5.0, highlights=[], seed=1, cam=DEFAULT_CAM, hard=True, twins=1.5, **SMALL)


def test_a_twin_looks_like_a_highlight_and_sounds_like_a_calm_stretch(tmp_path):
    """The cam during a twin is as far from the calm cam as during a highlight, and about as red; the
    voice during a twin is as quiet as in calm stretches, during a highlight it is loud."""
    import wave

    from autotosis.demo.frames import _write_audio

    plan = _plan_clip(
        duration_s=40.0, highlights=[(5000, 9000)], seed=3, cam=DEFAULT_CAM, hard=True, twins=1.0, **SMALL
    )
    twins = [(s, e) for s, e, k in plan.lookalikes if k == TWIN_KIND]
    assert twins
    bw, bh, bx, by = cam_box(plan.drawn_cam, 160, 90)
    cams = [f[by : by + bh, bx : bx + bw].astype(np.float64) for f in _hard_frames(plan)]
    times = np.arange(len(cams)) * 100

    def inside(spans, margin=400):
        return np.any([(times >= s + margin) & (times < e - margin) for s, e in spans], axis=0)

    def redness(cam):
        return float((cam[..., 0] - cam[..., 1:].mean(axis=-1)).mean())

    calm = ~inside([(s - 1000, e + 1000) for s, e, _ in plan.lookalikes] + [(4000, 10000)], margin=0)
    rage_red = np.mean([redness(c) for c, r in zip(cams, inside([(5000, 9000)])) if r])
    twin_red = np.mean([redness(c) for c, r in zip(cams, inside(twins)) if r])
    calm_red = np.mean([redness(c) for c, r in zip(cams, calm) if r])
    assert rage_red > calm_red + 5 and twin_red > calm_red + 5
    assert abs(twin_red - rage_red) < 0.35 * (rage_red - calm_red)

    _write_audio(plan, tmp_path / "a.wav")
    with wave.open(str(tmp_path / "a.wav"), "rb") as wav:
        pcm = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64) / 32768
    rms = np.sqrt((pcm[: len(pcm) // 4800 * 4800].reshape(-1, 4800) ** 2).mean(axis=1))[: len(times)]
    loud_rage = np.median(rms[inside([(5000, 9000)])[: len(rms)]])
    loud_twin = np.median(rms[inside(twins)[: len(rms)]])
    loud_calm = np.median(rms[calm[: len(rms)]])
    assert loud_rage > 2 * loud_calm and loud_twin < 1.5 * loud_calm


# --------------------------------------------------------------------------- the cam box


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), size=st.sampled_from([(160, 90), (640, 360), (1280, 720), (1920, 1080)]))
def test_cam_box_jitter_stays_within_bounds(seed, size):
    width, height = size
    drawn = jittered_cam(DEFAULT_CAM, seed, width, height)
    assert drawn == jittered_cam(DEFAULT_CAM, seed, width, height)
    x0, y0, x1, y1 = drawn
    assert 0 <= x0 < x1 <= 1 and 0 <= y0 < y1 <= 1
    n0, m0, n1, m1 = DEFAULT_CAM
    unit = min(width / 640, height / 360)
    for a, b, nominal_size, pixels in (
        (x0, n0, n1 - n0, width),
        (x1, n1, n1 - n0, width),
        (y0, m0, m1 - m0, height),
        (y1, m1, m1 - m0, height),
    ):
        limit = CAM_JITTER_PX * unit / pixels + CAM_SCALE_JITTER * nominal_size / 2 + 1e-6
        assert abs(a - b) <= limit
    assert abs((x1 - x0) / (n1 - n0) - 1) <= CAM_SCALE_JITTER + 1e-6
    assert abs((y1 - y0) / (m1 - m0) - 1) <= CAM_SCALE_JITTER + 1e-6


def test_boxes_differ_between_streams():
    boxes = {cam_box(jittered_cam(DEFAULT_CAM, seed, 640, 360), 640, 360) for seed in range(20)}
    assert len(boxes) >= 15


# --------------------------------------------------------------------------- drawing


def test_hard_frames_are_deterministic_and_differ_from_default():
    spans = [(500, 1800)]
    a = frames(duration_s=2.0, highlights=spans, seed=9, hard=True)
    b = frames(duration_s=2.0, highlights=spans, seed=9, hard=True)
    assert len(a) == 20 and all(f.shape == (90, 160, 3) and f.dtype == np.uint8 for f in a)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    default = frames(duration_s=2.0, highlights=spans, seed=9)
    assert any(not np.array_equal(x, y) for x, y in zip(a, default))


def test_game_area_of_a_hard_stream_ignores_highlights_and_lookalikes():
    """Outside the drawn cam box (and its border) the hard stream is the default's game."""
    size = {"width": 320, "height": 180, "fps": 5}
    hard = list(iter_stream_frames(duration_s=3.0, highlights=[(800, 2200)], seed=4, hard=True, **size))
    calm = list(iter_stream_frames(duration_s=3.0, highlights=[], seed=4, **size))
    union = np.zeros((180, 320), dtype=bool)
    for cam in (DEFAULT_CAM, jittered_cam(DEFAULT_CAM, 4, 320, 180)):
        bw, bh, bx, by = cam_box(cam, 320, 180)
        union[max(0, by - 3) : by + bh + 3, max(0, bx - 3) : bx + bw + 3] = True
    for a, b in zip(hard, calm):
        assert np.array_equal(a[~union], b[~union])


def test_lookalikes_change_the_cam():
    """During a look-alike the cam differs from the same stream without it (the drawing is wired up)."""
    plan = _plan_clip(duration_s=30.0, highlights=[], seed=2, cam=DEFAULT_CAM, hard=True, **SMALL)
    assert plan.lookalikes
    start, end, kind = plan.lookalikes[0]
    bare = replace(plan, lookalikes=())
    bw, bh, bx, by = cam_box(plan.drawn_cam, 160, 90)
    middle = int((start + end) / 2 / 100)
    with_look = [f for i, f in enumerate(_hard_frames(plan)) if i == middle][0]
    without = [f for i, f in enumerate(_hard_frames(bare)) if i == middle][0]
    cam_a = with_look[by : by + bh, bx : bx + bw].astype(int)
    cam_b = without[by : by + bh, bx : bx + bw].astype(int)
    assert np.abs(cam_a - cam_b).mean() > 3, kind


# --------------------------------------------------------------------------- planning sets


def test_hard_set_plan_varies_lengths_and_is_a_prefix_of_larger_sets():
    args = {
        "seed": 1,
        "clip_s_range": (15.0, 60.0),
        "heldout_s": 900.0,
        "heldout_events": 15,
        "width": 640,
        "height": 360,
        "fps": 30,
        "cam": DEFAULT_CAM,
    }
    small, vod = _plan_hard_sample_set(Path("x"), train_clips=12, **args)
    large, vod_large = _plan_hard_sample_set(Path("x"), train_clips=24, **args)
    assert large[:12] == small and vod_large == vod
    lengths = [c.duration_ms for c in small]
    assert min(lengths) >= 15000 and max(lengths) <= 60000 and len(set(lengths)) >= 8
    assert sum(1 for c in small if not c.highlights) == 3
    assert sum(len(c.lookalikes) for c in small) >= 10
    assert len(vod.highlights) == 15 and vod.duration_ms == 900000 and len(vod.lookalikes) >= 35
    assert vod.seed not in {c.seed for c in large}
    assert len({c.drawn_cam for c in [*small, vod]}) == 13
    assert all(c.cam == DEFAULT_CAM and c.hard for c in [*small, vod])
    for clip in [*small, vod]:
        assert clip.lookalikes == tuple(lookalike_spans(clip.duration_ms, clip.highlights, clip.seed))
    other, other_vod = _plan_hard_sample_set(Path("x"), train_clips=12, **{**args, "seed": 2})
    assert [c.seed for c in other] != [c.seed for c in small] and other_vod.highlights != vod.highlights


def test_clip_truth_json_round_trip_with_hard_fields(tmp_path):
    truth = ClipTruth(
        tmp_path / "a.mp4",
        20000,
        ((1000, 5000),),
        DEFAULT_CAM,
        160,
        90,
        10,
        3,
        lookalikes=((7000, 9000, "cheer+redlight"),),
        drawn_cam=(0.78, 0.13, 0.97, 0.37),
        hard=True,
    )
    document = json.loads(json.dumps(truth.to_json(tmp_path)))
    assert document["lookalikes"] == [[7000, 9000, "cheer+redlight"]] and document["hard"] is True
    assert ClipTruth.from_json(document, tmp_path) == truth


# --------------------------------------------------------------------------- files


@pytest.mark.media
@needs_ffmpeg
def test_hard_clip_and_set_files(tmp_path):
    from autotosis.media.probe import probe

    truth = make_stream_clip(tmp_path / "h.mp4", duration_s=3.0, highlights=[(500, 1500)], seed=6, hard=True, **SMALL)
    assert truth.hard and truth.drawn_cam == jittered_cam(DEFAULT_CAM, 6, 160, 90) and truth.cam == DEFAULT_CAM
    assert abs(probe(truth.path).duration_ms - 3000) <= 100

    args = {"train_clips": 3, "clip_s": 5.0, "heldout_s": 12.0, "heldout_events": 1, "hard": True, **SMALL}
    samples = make_sample_set(tmp_path / "set", seed=3, **args)
    lengths = [c.duration_ms for c in samples.train]
    assert all(2500 <= n <= 10000 for n in lengths)
    for clip in [*samples.train, samples.heldout]:
        assert abs(probe(clip.path).duration_ms - clip.duration_ms) <= 150
    assert load_sample_set(tmp_path / "set") == samples
    params = json.loads((tmp_path / "set" / "truth.json").read_text())["params"]
    assert params["hard"] >= 1 and params["clip_s_range"] == [2.5, 10.0]
    # A re-run re-uses every clip; a default set in the same folder is another set (refused without force).
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "set").glob("*.mp4")}
    assert make_sample_set(tmp_path / "set", seed=3, **args) == samples
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "set").glob("*.mp4")} == stamps
    from autotosis.core.errors import OutputExistsError

    with pytest.raises(OutputExistsError):
        make_sample_set(tmp_path / "set", seed=3, **{**args, "hard": False})
