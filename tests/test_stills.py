"""Stills mining: keyframe de-duplication, top diverse stills, full-size output with square pixels."""

from __future__ import annotations

import json
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from autotosis.cli import main
from autotosis.core.errors import ExitStatus
from autotosis.media import encode, probe
from autotosis.model.model import DEFAULT_MEAN, DEFAULT_STD, ModelInfo, build_model, save_checkpoint
from autotosis.outputs.stills import Candidate, StillsOptions, choose, grey_frames, similarity, still_name
from tests.conftest import FFMPEG, make_video

pytestmark = [pytest.mark.media, pytest.mark.torch]

W, H, FPS = 192, 108, 10
RED = (235, 20, 20)


def red_detector(
    path: Path, *, size: int = 64, crop=None, gain: float = 40.0, offset: float = 0.1, threshold: float = 0.5
) -> Path:
    """A ResNet18 wired by hand (no training) whose score is sigmoid(gain * (redness - offset)).

    Channel 0 carries a redness map, relu(R - (G + B) / 2), from the stem to layer4: every
    residual branch is switched off except in the downsampling blocks, whose main branch
    averages 3x3 with stride 2; the head reads the map's mean.  So the model looks at
    exactly the red pixels -- a detector whose scores tests can predict, and a known answer
    for Grad-CAM.  Shared by test_explain and test_live.
    """
    torch.manual_seed(0)
    model = build_model(2)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.Conv2d):
                module.weight.zero_()
            elif isinstance(module, torch.nn.BatchNorm2d):
                module.weight.zero_()
                module.bias.zero_()
                module.running_mean.zero_()
                module.running_var.fill_(1.0)
        centre = model.conv1.kernel_size[0] // 2
        # Input is normalised: R - (G+B)/2 in 0..1 units = std-weighted channels + a constant.
        model.conv1.weight[0, :, centre, centre] = torch.tensor(
            [DEFAULT_STD[0], -DEFAULT_STD[1] / 2, -DEFAULT_STD[2] / 2]
        )
        model.bn1.weight[0] = 1.0
        model.bn1.bias[0] = DEFAULT_MEAN[0] - (DEFAULT_MEAN[1] + DEFAULT_MEAN[2]) / 2
        for layer in (model.layer2, model.layer3, model.layer4):
            block = layer[0]
            block.conv1.weight[0, 0] = 1.0 / 9.0
            block.bn1.weight[0] = 1.0
            block.conv2.weight[0, 0, 1, 1] = 1.0
            block.bn2.weight[0] = 1.0
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.weight[1, 0] = gain
        model.fc.bias[1] = -gain * offset
    info = ModelInfo(
        task="red",
        classes=("background", "red"),
        input_size=size,
        mean=DEFAULT_MEAN,
        std=DEFAULT_STD,
        crop=crop,
        threshold=threshold,
    )
    save_checkpoint(path, model, info, force=True)
    return path


def grey_texture(seed: int, width: int = W, height: int = H) -> np.ndarray:
    """A smooth grey pattern (no colour, so the red detector scores it ~0)."""
    coarse = np.random.default_rng(seed).integers(40, 200, size=(5, 8), dtype=np.uint8)
    grey = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
    return np.repeat(grey[:, :, None], 3, axis=2)


def scenes_video(
    path: Path,
    scenes: list[tuple[int, tuple[float, float, float, float] | None]],
    *,
    scene_s: float = 2.5,
    keyframe_s: float = 0.5,
) -> Path:
    """Static shots (texture seed, optional red box as x0,y0,x1,y1) with a small moving dot, so
    consecutive keyframes of one shot are near-duplicates but never identical."""
    backgrounds = []
    for seed, box in scenes:
        frame = grey_texture(seed)
        if box is not None:
            x0, y0, x1, y1 = box
            frame[int(y0 * H) : int(y1 * H), int(x0 * W) : int(x1 * W)] = RED
        backgrounds.append(frame)

    def frames():
        per_scene = int(round(scene_s * FPS))
        for n in range(per_scene * len(scenes)):
            frame = backgrounds[n // per_scene].copy()
            x = 10 + (n % per_scene) * 3
            frame[90:96, x : x + 6] = 255
            yield frame

    encode.encode_frames(frames(), path, width=W, height=H, fps=FPS, keyframe_interval_s=keyframe_s, crf=18)
    return path


def run(argv: list[str]) -> int:
    return main(["--progress", "none", *argv])


def manifest(folder: Path) -> dict:
    return json.loads((folder / "stills.json").read_text())


@pytest.mark.parametrize("method", ["ssim", "dhash"])
def test_keyframes_are_deduplicated(tmp_path: Path, method: str, capsys):
    video = scenes_video(tmp_path / "four shots.mp4", [(1, None), (2, None), (3, None), (4, None)])
    out = tmp_path / "stills é"
    assert run(["stills", str(video), "--keyframes", "--dedup", method, "-o", str(out)]) == 0
    data = manifest(out)
    # 4 shots x 2.5 s with a keyframe every 0.5 s: 20 keyframes, one kept per shot.
    assert data["frames_decoded"] == 20
    assert data["duplicates_dropped"] == 16
    assert [s["time_ms"] for s in data["stills"]] == [0, 2500, 5000, 7500]
    assert sorted(p.name for p in out.glob("*.jpg")) == [
        "0h00m00.000s_four shots.jpg",
        "0h00m02.500s_four shots.jpg",
        "0h00m05.000s_four shots.jpg",
        "0h00m07.500s_four shots.jpg",
    ]
    assert "dropped 16 near-duplicates" in capsys.readouterr().out
    # The threshold is the user's.  SSIM at 0.999 tells every keyframe apart (the dot moves); a 64-bit
    # hash cannot see the dot, but at 0.05 it takes even different shots for duplicates.
    threshold, kept = {"ssim": ("0.999", 20), "dhash": ("0.05", 1)}[method]
    other = tmp_path / "other"
    assert (
        run(["stills", str(video), "--keyframes", "--dedup", method, "--dedup-threshold", threshold, "-o", str(other)])
        == 0
    )
    assert manifest(other)["duplicates_dropped"] == 20 - kept
    assert len(list(other.glob("*.jpg"))) == kept


@pytest.mark.parametrize("crop", [None, (0.5, 0.0, 1.0, 0.5)])
def test_model_picks_top_scoring_distinct_stills(tmp_path: Path, crop):
    # Shot 0: big red box; shot 2: smaller red box; shots 1 and 3: none.  With a crop (the top-right
    # quarter) the boxes sit inside it; shot 3's box lies outside the crop and must not count.
    if crop is None:
        shots = [(1, (0.1, 0.1, 0.9, 0.9)), (2, None), (3, (0.5, 0.1, 0.95, 0.6)), (4, None)]
    else:
        shots = [(1, (0.5, 0.0, 1.0, 0.5)), (2, None), (3, (0.65, 0.1, 0.95, 0.4)), (4, (0.0, 0.5, 0.5, 1.0))]
    video = scenes_video(tmp_path / "vod.mp4", shots)
    model = red_detector(tmp_path / "red.pt", crop=crop)
    out = tmp_path / "best"
    # Keep every keyframe as a candidate: choosing must still avoid near-duplicates.
    assert (
        run(["stills", str(video), "--model", str(model), "-o", str(out), "--count", "5", "--dedup-threshold", "0.999"])
        == 0
    )
    data = manifest(out)
    assert data["duplicates_dropped"] == 0 and data["distinct_frames"] == 20
    stills = data["stills"]
    assert len(stills) == 2, stills
    assert 0 <= stills[0]["time_ms"] < 2500 and 5000 <= stills[1]["time_ms"] < 7500
    assert stills[0]["score"] > stills[1]["score"] >= 0.5
    # An ordinary A-Z listing shows the best first: the rank leads the name.
    assert sorted(p.name for p in out.glob("*.jpg")) == [s["file"] for s in stills]
    for rank, still in enumerate(stills, 1):
        name = still["file"]
        assert name.startswith(
            f"{rank:02d}_{still['score']:.3f}_0h00m0{still['time_ms'] // 1000}.{still['time_ms'] % 1000:03d}s_vod"
        )
        with Image.open(out / name) as image:
            assert image.size == (W, H)  # full resolution, not the model's input size
            pixels = np.asarray(image.convert("RGB")).astype(int)
        assert pixels[:, :, 0].max() > 200  # the red shot, really


def test_choose_spreads_stills_in_time_and_content():
    rng = np.random.default_rng(0)
    looks = [rng.integers(0, 256, size=(1, 64, 64, 3), dtype=np.uint8) for _ in range(3)]
    # Times 0..9 s; shots A (0-3 s), B (4-6 s), C (7-9 s); scores fall with time inside each shot.
    shot_of = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    scores = [0.99, 0.98, 0.97, 0.96, 0.95, 0.94, 0.93, 0.20, 0.92, 0.91]
    candidates = [Candidate(i * 1000, s) for i, s in enumerate(scores)]
    grey = [grey_frames(looks[shot]) for shot in shot_of]
    picked = choose(candidates, grey, StillsOptions(count=10, min_gap_ms=500), min_score=0.5)
    assert [candidates[i].time_ms for i in picked] == [0, 4000, 8000]  # best of each shot, in score order
    # Without the content check (a threshold nothing reaches) only the time gap applies.
    picked = choose(candidates, grey, StillsOptions(count=10, min_gap_ms=2500, diversity_threshold=1.5), min_score=0.5)
    assert [candidates[i].time_ms for i in picked] == [0, 3000, 6000, 9000]
    picked = choose(candidates, grey, StillsOptions(count=2, min_gap_ms=0, diversity_threshold=1.5), min_score=0.5)
    assert [candidates[i].time_ms for i in picked] == [0, 1000]
    assert choose(candidates, grey, StillsOptions(count=10), min_score=0.999) == []


def test_still_names_sort_best_first():
    names = [
        still_name(5, 1.0, "vod", "jpg", 1, 12),
        still_name(3_723_450, 0.973, "vod", "jpg", 2, 12),
        still_name(0, 0.12, "vod", "jpg", 12, 12),
    ]
    assert names == ["01_1.000_0h00m00.005s_vod.jpg", "02_0.973_1h02m03.450s_vod.jpg", "12_0.120_0h00m00.000s_vod.jpg"]
    assert sorted(names) == names  # A-Z is best first (a score first would put 0.120 first)
    assert still_name(7, 0.5, "v", "png", 3, 150) == "003_0.500_0h00m00.007s_v.png"
    assert still_name(0, None, "a b", "jpg") == "0h00m00.000s_a b.jpg"  # no scores: time order


@pytest.mark.parametrize("method", ["ssim", "dhash"])
def test_a_shot_that_comes_back_is_not_kept_twice(tmp_path: Path, method: str, capsys):
    # Shots A B A C: the second A is a near-duplicate of a frame kept two shots before, not of the last
    # one kept.  Comparing with the last kept frame only kept it (SSIM 0.9999 against a 0.85 threshold).
    video = scenes_video(tmp_path / "aba.mp4", [(1, None), (2, None), (1, None), (3, None)])
    out = tmp_path / "stills"
    assert run(["stills", str(video), "--keyframes", "--dedup", method, "-o", str(out)]) == 0
    data = manifest(out)
    assert [s["time_ms"] for s in data["stills"]] == [0, 2500, 7500]
    assert data["distinct_frames"] == 3 and data["duplicates_dropped"] == 17
    assert "dropped 17 near-duplicates (85%), 3 distinct" in capsys.readouterr().out
    # No two written stills are near-duplicates.
    looks = grey_frames(
        np.stack([np.asarray(Image.open(out / s["file"]).convert("RGB").resize((W, H))) for s in data["stills"]])
    )
    for i in range(len(looks)):
        for j in range(i + 1, len(looks)):
            assert float(similarity(method, looks[i : i + 1], looks[j : j + 1])[0]) < 0.85


def ntsc_video(path: Path) -> Path:
    """3 s at 30000/1001 fps whose last frame (at 2969.97 ms, rounded *up* to 2970) is a keyframe of a new shot."""
    fps = Fraction(30000, 1001)

    def frames():
        first, last = grey_texture(1), grey_texture(2)
        for n in range(90):
            frame = (first if n < 89 else last).copy()
            frame[90:96, 10 + n : 16 + n] = 255
            yield frame

    encode.encode_frames(frames(), path, width=W, height=H, fps=fps, keyframe_interval_s=float(89 / fps), crf=18)
    return path


@pytest.mark.parametrize("sampling", [[], ["--fps", "2"]], ids=["keyframes", "fps"])
def test_every_distinct_frame_is_written_even_at_the_very_end(tmp_path: Path, sampling, capsys):
    # The last distinct frame's time lies after the frame (rounded up, or a sample past the last frame):
    # seeking there found nothing, so "2 distinct" wrote 1 still.
    video = ntsc_video(tmp_path / "ntsc.mp4")
    out = tmp_path / "stills"
    assert run(["stills", str(video), "--keyframes", "-o", str(out), *sampling]) == 0
    data = manifest(out)
    printed = capsys.readouterr().out
    assert data["distinct_frames"] == 2 and "2 distinct" in printed
    assert len(data["stills"]) == 2 and data["not_grabbed"] == 0 and "wrote 2 stills" in printed
    assert len(list(out.glob("*.jpg"))) == 2
    with Image.open(out / data["stills"][1]["file"]) as image:
        last = np.asarray(image.convert("RGB")).astype(int)
    assert np.abs(last[:80] - grey_texture(2)[:80].astype(int)).mean() < 4  # the new shot, really


def _box_size(image: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero((image[:, :, 0] > 150) & (image[:, :, 1] < 100))
    return int(xs.max() - xs.min() + 1), int(ys.max() - ys.min() + 1)


def test_anamorphic_source_is_not_squeezed(tmp_path: Path):
    # Stored 160x180 with 2:1 pixels (shown 320x180); the red box is 30x60 stored = a 60x60 square on screen.
    video = make_video(
        tmp_path / "anamorphic.mp4",
        duration=1,
        size="160x180",
        audio=False,
        source="color=c=gray",
        extra_video_filters="drawbox=x=40:y=40:w=30:h=60:color=red:t=fill,setsar=2",
    )
    assert probe.probe(video).sar == 2
    out = tmp_path / "stills"
    assert run(["stills", str(video), "--keyframes", "-o", str(out), "--format", "png"]) == 0
    [still] = out.glob("*.png")
    with Image.open(still) as image:
        assert image.size == (320, 180)
        width, height = _box_size(np.asarray(image.convert("RGB")))
    assert abs(width - 60) <= 3 and abs(height - 60) <= 3


def test_rotated_source_comes_out_upright(tmp_path: Path):
    plain = make_video(
        tmp_path / "plain.mp4",
        duration=1,
        size="160x90",
        audio=False,
        source="color=c=gray",
        extra_video_filters="drawbox=x=0:y=0:w=40:h=30:color=red:t=fill",
    )
    rotated = tmp_path / "rotated.mp4"
    # A phone-style display matrix: players turn the picture 90 degrees.
    subprocess.run(
        [
            FFMPEG,
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-i",
            f"file:{plain}",
            "-c",
            "copy",
            "-metadata:s:v:0",
            "rotate=90",
            f"file:{rotated}",
        ],
        check=True,
    )
    info = probe.probe(rotated)
    assert (info.width, info.height) == (90, 160)
    out = tmp_path / "stills"
    assert run(["stills", str(rotated), "--keyframes", "-o", str(out), "--format", "png"]) == 0
    [still] = out.glob("*.png")
    with Image.open(still) as image:
        assert image.size == (90, 160)
        pixels = np.asarray(image.convert("RGB"))
    # The box (top-left, 40 wide x 30 high) is turned with the picture: now 30 wide x 40 high.
    assert _box_size(pixels) == pytest.approx((30, 40), abs=2)


def test_stills_usage_errors_and_no_overwrite(tmp_path: Path, capsys):
    video = scenes_video(tmp_path / "v.mp4", [(1, None), (2, None)])
    out = tmp_path / "out"
    assert run(["stills", str(video), "-o", str(out)]) == ExitStatus.USAGE
    assert "--keyframes" in capsys.readouterr().err
    assert not out.exists()
    assert run(["stills", str(video), "--keyframes", "-o", str(out)]) == 0
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert run(["stills", str(video), "--keyframes", "-o", str(out)]) == ExitStatus.OUTPUT_EXISTS
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    assert run(["stills", str(video), "--keyframes", "-o", str(out), "--force"]) == 0
    assert run(["stills", str(tmp_path / "missing.mp4"), "--keyframes", "-o", str(tmp_path / "x")]) == ExitStatus.MEDIA


def test_sampling_at_a_frame_rate_instead_of_keyframes(tmp_path: Path):
    # Keyframes only every 5 s: keyframe decoding would see one frame; --fps 4 sees both shots.
    video = scenes_video(tmp_path / "v.mp4", [(1, None), (2, None)], keyframe_s=5.0)
    assert run(["stills", str(video), "--keyframes", "-o", str(tmp_path / "k")]) == 0
    assert manifest(tmp_path / "k")["frames_decoded"] == 1
    assert run(["stills", str(video), "--keyframes", "--fps", "4", "-o", str(tmp_path / "f")]) == 0
    data = manifest(tmp_path / "f")
    assert data["frames_decoded"] == 20 and data["settings"]["sampling"] == "4.0 fps"
    assert [s["time_ms"] for s in data["stills"]] == [0, 2500]
