"""The synthetic stream generator: files, known truth, and where the signal lives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from autotosis.core.errors import DataError, OutputExistsError, UsageError
from autotosis.core.region import crop_pixels as cam_box
from autotosis.demo.frames import iter_stream_frames
from autotosis.demo.plan import DEFAULT_CAM, ClipTruth, rage_intensity
from autotosis.demo.samples import load_sample_set, make_sample_set, make_stream_clip, random_highlights

needs_ffmpeg = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg is not installed")
SMALL = {"width": 160, "height": 90, "fps": 10}
GAME_REGION = (0.0, 0.5, 0.5, 1.0)  # bottom-left quarter: map, minimap, HUD; never the cam
EDGE_MS = 250  # the rage ramps up/down over ~180 ms at span edges; skip those frames


def decode(path: Path, region) -> tuple[np.ndarray, np.ndarray]:
    from autotosis.media.decode import DecodeSpec, iter_frames

    times, frames = [], []
    for batch in iter_frames(path, DecodeSpec(size=32, fps=5, region=region)):
        times.append(batch.times_ms)
        frames.append(batch.frames)
    return np.concatenate(times), np.concatenate(frames).reshape(-1, 32 * 32 * 3).astype(np.float32)


def labels_at(times_ms: np.ndarray, spans) -> tuple[np.ndarray, np.ndarray]:
    """(inside a span, far enough from every edge to count) for each time."""
    inside = np.zeros(times_ms.shape, dtype=bool)
    clear = np.ones(times_ms.shape, dtype=bool)
    for start, end in spans:
        inside |= (times_ms >= start) & (times_ms < end)
        clear &= (np.abs(times_ms - start) > EDGE_MS) & (np.abs(times_ms - end) > EDGE_MS)
    return inside, clear


def nearest_centroid_accuracy(train_x, train_y, test_x, test_y) -> float:
    centroids = np.stack([train_x[~train_y].mean(axis=0), train_x[train_y].mean(axis=0)])
    distances = ((test_x[:, None, :] - centroids[None]) ** 2).sum(axis=2)
    return float((distances.argmin(axis=1).astype(bool) == test_y).mean())


# --------------------------------------------------------------------------- one clip


@needs_ffmpeg
def test_clip_has_requested_size_duration_and_audio(tmp_path):
    from autotosis.media.probe import probe

    truth = make_stream_clip(tmp_path / "clip.mp4", duration_s=4.0, highlights=[(1000, 2500)], seed=3, **SMALL)
    info = probe(truth.path)
    assert (info.width, info.height) == (160, 90)
    assert abs(info.duration_ms - 4000) <= 100
    assert info.has_audio
    assert truth == ClipTruth(tmp_path / "clip.mp4", 4000, ((1000, 2500),), DEFAULT_CAM, 160, 90, 10, 3)

    silent = make_stream_clip(tmp_path / "silent.mp4", duration_s=3.0, highlights=[], seed=3, audio=False, **SMALL)
    info = probe(silent.path)
    assert not info.has_audio
    assert abs(info.duration_ms - 3000) <= 100
    assert not list(tmp_path.glob(".*part*")), "no temp files are left behind"


@needs_ffmpeg
def test_any_size_and_fps_work(tmp_path):
    from autotosis.media.probe import probe

    truth = make_stream_clip(
        tmp_path / "odd.mp4",
        duration_s=1.3,
        highlights=[(200, 900)],
        seed=8,
        width=96,
        height=64,
        fps=24,
        cam=(0.5, 0.0, 1.0, 0.6),
    )
    info = probe(truth.path)
    assert (info.width, info.height, info.fps) == (96, 64, 24)
    assert truth.duration_ms == round(31 * 1000 / 24)  # whole frames: 1.3 s at 24 fps is 31 frames
    assert abs(info.duration_ms - truth.duration_ms) <= 100


def mean_colour(x: np.ndarray) -> np.ndarray:
    return x.reshape(len(x), -1, 3).mean(axis=1)


@needs_ffmpeg
def test_highlights_show_only_in_the_face_cam(tmp_path):
    """Same streamer and game, highlights at different times.  A nearest-centroid classifier
    fitted on one clip and tested on the other separates rage from calm in the cam; in the
    game area it can only "remember" times, which the other clip's truth contradicts."""
    size = {"width": 320, "height": 180, "fps": 10}
    first = make_stream_clip(tmp_path / "a.mp4", duration_s=7.0, highlights=[(800, 3200)], seed=11, **size)
    second = make_stream_clip(tmp_path / "b.mp4", duration_s=7.0, highlights=[(3800, 6200)], seed=11, **size)

    accuracy = {}
    for name, region in (("cam", DEFAULT_CAM), ("game", GAME_REGION)):
        times_a, x_a = decode(first.path, region)
        times_b, x_b = decode(second.path, region)
        y_a, keep_a = labels_at(times_a, first.highlights)
        y_b, keep_b = labels_at(times_b, second.highlights)
        assert y_a[keep_a].sum() >= 8 and (~y_a[keep_a]).sum() >= 8
        x_a, y_a, x_b, y_b = x_a[keep_a], y_a[keep_a], x_b[keep_b], y_b[keep_b]
        accuracy[name, "colour"] = nearest_centroid_accuracy(mean_colour(x_a), y_a, mean_colour(x_b), y_b)
        accuracy[name, "pixels"] = nearest_centroid_accuracy(x_a, y_a, x_b, y_b)
    assert accuracy["cam", "colour"] > 0.9, accuracy
    assert accuracy["game", "colour"] < 0.7 and accuracy["game", "pixels"] < 0.7, accuracy


@needs_ffmpeg
def test_rage_is_visible_in_a_single_clip(tmp_path):
    """Within one clip the face goes red and the cam's mean colour separates the frames."""
    truth = make_stream_clip(
        tmp_path / "c.mp4",
        duration_s=8.0,
        highlights=[(1500, 3500), (5000, 7000)],
        seed=4,
        width=320,
        height=180,
        fps=10,
    )
    times, x = decode(truth.path, truth.cam)
    y, keep = labels_at(times, truth.highlights)
    colour, y = mean_colour(x[keep]), y[keep]
    fit, test = np.arange(len(y)) % 2 == 0, np.arange(len(y)) % 2 == 1
    assert nearest_centroid_accuracy(colour[fit], y[fit], colour[test], y[test]) > 0.9
    redness = colour[:, 0] - colour[:, 1]
    assert redness[y].mean() > redness[~y].mean() + 10
    # Not one constant picture: the rage frames differ from each other.
    rage = x[keep][y]
    assert np.abs(rage[1:] - rage[:-1]).mean() > 2.0


def test_game_pixels_do_not_depend_on_highlights():
    """Drawn frames (before encoding): outside the cam box, identical with or without highlights;
    inside it, identical outside the highlights and different during them."""
    spans = [(1000, 2200)]
    with_rage = list(iter_stream_frames(duration_s=3.0, highlights=spans, seed=21, **SMALL))
    calm = list(iter_stream_frames(duration_s=3.0, highlights=[], seed=21, **SMALL))
    bw, bh, bx, by = cam_box(DEFAULT_CAM, 160, 90)
    assert len(with_rage) == len(calm) == 30
    for index, (a, b) in enumerate(zip(with_rage, calm)):
        assert a.shape == (90, 160, 3) and a.dtype == np.uint8
        outside = np.ones((90, 160), dtype=bool)
        outside[by : by + bh, bx : bx + bw] = False
        assert np.array_equal(a[outside], b[outside]), f"frame {index}: game area changed"
        cam_differs = not np.array_equal(a[~outside], b[~outside])
        assert cam_differs == (1000 < index * 100 < 2200), f"frame {index}"


def test_frames_move_and_differ_per_seed():
    frames = list(iter_stream_frames(duration_s=2.0, highlights=[], seed=1, **SMALL))
    other = next(iter(iter_stream_frames(duration_s=2.0, highlights=[], seed=2, **SMALL)))
    steps = [np.abs(a.astype(int) - b.astype(int)).mean() for a, b in zip(frames, frames[1:])]
    assert min(steps) > 1.0, "the game scrolls on every frame"
    assert np.abs(frames[0].astype(int) - other.astype(int)).mean() > 20, "another seed, another look"
    longer = list(iter_stream_frames(duration_s=5.0, highlights=[], seed=1, **SMALL))[: len(frames)]
    assert all(np.array_equal(a, b) for a, b in zip(frames, longer)), "deterministic: a longer clip starts the same"


def test_rage_intensity_varies_inside_spans_and_is_zero_outside():
    spans = [(2000, 8000), (12000, 15000)]
    t = np.arange(0, 16000, 20)
    r = rage_intensity(t, spans, seed=5)
    inside = ((t >= 2000) & (t < 8000)) | ((t >= 12000) & (t < 15000))
    assert np.all(r[~inside] == 0)
    core = ((t > 2300) & (t < 7700)) | ((t > 12300) & (t < 14700))
    assert r[core].min() >= 0.3
    assert r[core].max() - r[core].min() > 0.2, "intensity must vary over a span"
    assert np.all((r >= 0) & (r <= 1))


def test_audio_is_louder_during_highlights(tmp_path):
    import wave

    from autotosis.demo.frames import _plan_clip, _write_audio

    spans = ((2000, 5000), (9000, 12000))
    plan = _plan_clip(duration_s=14.0, highlights=spans, seed=6, cam=DEFAULT_CAM, **SMALL)
    _write_audio(plan, tmp_path / "a.wav")
    with wave.open(str(tmp_path / "a.wav"), "rb") as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (48000, 1, 2)
        assert wav.getnframes() == 14 * 48000
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64) / 32768
    rms = np.sqrt((samples.reshape(-1, 4800) ** 2).mean(axis=1))  # per 0.1 s
    t = np.arange(len(rms)) * 100 + 50
    inside, clear = labels_at(t, spans)
    assert np.median(rms[inside & clear]) > 2 * np.median(rms[~inside & clear])
    assert rms[~inside].min() > 0.005, "game sound never stops"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"width": 161},  # odd width cannot be H.264 4:2:0
        {"highlights": [(500, 5000)]},  # past the end
        {"highlights": [(500, 1500), (1000, 1800)]},  # overlapping
        {"cam": (0.8, 0.1, 0.7, 0.3)},  # x1 < x0
        {"duration_s": 0.0},
    ],
)
def test_bad_requests_are_usage_errors(tmp_path, kwargs):
    args = {"duration_s": 2.0, "highlights": [], "seed": 1, **SMALL, **kwargs}
    with pytest.raises(UsageError):
        make_stream_clip(tmp_path / "x.mp4", **args)
    assert not list(tmp_path.iterdir())


@needs_ffmpeg
def test_existing_clip_is_kept_without_force(tmp_path):
    out = tmp_path / "keep.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        make_stream_clip(out, duration_s=1.0, highlights=[], seed=1, **SMALL)
    assert out.read_bytes() == b"precious"
    make_stream_clip(out, duration_s=1.0, highlights=[], seed=1, force=True, **SMALL)
    assert out.stat().st_size > 1000


# --------------------------------------------------------------------------- random highlights


@settings(max_examples=300, deadline=None)
@given(
    duration_ms=st.integers(0, 600_000),
    count=st.integers(0, 12),
    seed=st.integers(0, 2**32 - 1),
    min_len=st.integers(1, 8000),
    extra_len=st.integers(0, 8000),
    gap=st.integers(0, 10_000),
)
def test_random_highlights_are_sorted_disjoint_and_inside(duration_ms, count, seed, min_len, extra_len, gap):
    rng = np.random.default_rng(seed)
    fits = count == 0 or count * min_len + (count - 1) * gap <= duration_ms - 2000
    if not fits:
        with pytest.raises(UsageError):
            random_highlights(duration_ms, count, rng, min_len, min_len + extra_len, gap)
        return
    spans = random_highlights(duration_ms, count, rng, min_len, min_len + extra_len, gap)
    assert len(spans) == count
    for start, end in spans:
        assert isinstance(start, int) and isinstance(end, int)
        assert 1000 <= start and end <= duration_ms - 1000
        assert min_len <= end - start <= min_len + extra_len
    for (_, prev_end), (start, _) in zip(spans, spans[1:]):
        assert start - prev_end >= gap


def test_random_highlights_spread_over_the_clip():
    rng = np.random.default_rng(0)
    starts = [random_highlights(60_000, 1, rng)[0][0] for _ in range(300)]
    assert min(starts) < 5000 and max(starts) > 45_000


# --------------------------------------------------------------------------- sample sets


SET_ARGS = {"train_clips": 4, "clip_s": 5.0, "heldout_s": 8.0, "heldout_events": 1, **SMALL}


@needs_ffmpeg
def test_sample_set_files_truth_and_determinism(tmp_path):
    from autotosis.media.probe import probe

    calls = []
    samples = make_sample_set(tmp_path / "a", seed=7, on_clip=lambda i, n: calls.append((i, n)), **SET_ARGS)
    assert calls == [(i, 5) for i in range(1, 6)]
    assert [c.path.name for c in samples.train] == [f"train_{i:02d}.mp4" for i in range(4)]
    assert samples.heldout.path == tmp_path / "a" / "heldout_vod.mp4"
    assert sum(1 for c in samples.train if not c.highlights) == 1  # a quarter without highlights
    assert all(len(c.highlights) == 1 for c in samples.train if c.highlights)  # 5 s clips hold one
    assert len(samples.heldout.highlights) == 1
    assert samples.heldout.seed not in {c.seed for c in samples.train}
    assert len({c.seed for c in samples.train}) == 4
    for clip in [*samples.train, samples.heldout]:
        info = probe(clip.path)
        assert (info.width, info.height) == (160, 90) and info.has_audio
        assert abs(info.duration_ms - clip.duration_ms) <= 100

    document = json.loads((tmp_path / "a" / "truth.json").read_text())
    assert document["complete"] is True
    assert [ClipTruth.from_json(item, tmp_path / "a") for item in document["train"]] == list(samples.train)
    assert ClipTruth.from_json(document["heldout"], tmp_path / "a") == samples.heldout
    assert document["train"][0]["path"] == "train_00.mp4"  # relative: the folder can move
    assert load_sample_set(tmp_path / "a") == samples

    again = make_sample_set(tmp_path / "b", seed=7, **SET_ARGS)
    assert [(c.highlights, c.seed) for c in again.train] == [(c.highlights, c.seed) for c in samples.train]
    assert (again.heldout.highlights, again.heldout.seed) == (samples.heldout.highlights, samples.heldout.seed)
    other = make_sample_set(tmp_path / "c", seed=8, **SET_ARGS)
    assert [c.seed for c in other.train] != [c.seed for c in samples.train]


@needs_ffmpeg
def test_sample_set_rerun_reuses_finished_clips_and_protects_others(tmp_path):
    folder = tmp_path / "set"
    first = make_sample_set(folder, seed=1, **SET_ARGS)
    stamps = {p.name: p.stat().st_mtime_ns for p in folder.glob("*.mp4")}
    calls = []
    second = make_sample_set(folder, seed=1, on_clip=lambda i, n: calls.append(i), **SET_ARGS)
    assert second == first and calls == [1, 2, 3, 4, 5]
    assert {p.name: p.stat().st_mtime_ns for p in folder.glob("*.mp4")} == stamps, "nothing redrawn"

    # A clip whose size changed is not trusted: without force it is an error, untouched.
    (folder / "train_02.mp4").write_bytes(b"edited by hand")
    with pytest.raises(OutputExistsError):
        make_sample_set(folder, seed=1, **SET_ARGS)
    assert (folder / "train_02.mp4").read_bytes() == b"edited by hand"
    # Other parameters, same folder: refuse rather than overwrite.
    with pytest.raises(OutputExistsError):
        make_sample_set(folder, seed=2, **SET_ARGS)
    redone = make_sample_set(folder, seed=1, force=True, **SET_ARGS)
    assert redone == first and (folder / "train_02.mp4").stat().st_size > 1000


def test_sample_set_rejects_impossible_requests(tmp_path):
    with pytest.raises(UsageError):
        make_sample_set(tmp_path, train_clips=0, **{k: v for k, v in SET_ARGS.items() if k != "train_clips"})
    with pytest.raises(UsageError):
        make_sample_set(tmp_path, **{**SET_ARGS, "clip_s": 3.0})  # too short for a 3 s highlight
    with pytest.raises(UsageError):
        make_sample_set(tmp_path, **{**SET_ARGS, "heldout_events": 5})  # 5 events in 8 s
    assert not list(tmp_path.iterdir())


def test_load_sample_set_reports_missing_or_incomplete_truth(tmp_path):
    with pytest.raises(DataError):
        load_sample_set(tmp_path)
    (tmp_path / "truth.json").write_text(json.dumps({"complete": False, "train": [], "heldout": None}))
    with pytest.raises(DataError, match="incomplete"):
        load_sample_set(tmp_path)
    (tmp_path / "truth.json").write_text("not json")
    with pytest.raises(DataError):
        load_sample_set(tmp_path)
