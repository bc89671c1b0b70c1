"""`autotosis sample` and folder-of-images data sets (train and eval on DIR/CLASS/*.png)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autotosis.cli import main
from autotosis.core.errors import DataError, ExitStatus, OutputExistsError
from autotosis.media import decode, probe
from autotosis.model.model import load_checkpoint
from autotosis.training.sampling import (
    folder_frames,
    load_image,
    read_image_folder,
    sample_frames,
    sample_times,
    scene_of,
)
from autotosis.training.train import split_by_clip
from tests.conftest import make_video


def run(argv) -> int:
    return main(["--progress", "none", *argv])


# --------------------------------------------------------------------------- sampling


def test_sample_times_are_seeded_distinct_and_proportional():
    first = sample_times([10_000, 30_000], 400, seed=7)
    assert first == sample_times([10_000, 30_000], 400, seed=7)
    assert first != sample_times([10_000, 30_000], 400, seed=8)
    assert len({(s.video, s.time_ms) for s in first}) == 400
    assert all(0 <= s.time_ms < (10_000, 30_000)[s.video] for s in first)
    share = sum(s.video == 1 for s in first) / 400
    assert 0.65 < share < 0.85  # 3/4 of the total length
    assert len(sample_times([5], 100, seed=0)) == 5  # never more samples than milliseconds


@pytest.mark.media
def test_sample_writes_full_size_square_pixel_frames(tmp_path: Path, capsys):
    wide = make_video(tmp_path / "my vod é.mp4", duration=3, size="160x90", fps="10", audio=False)
    # Anamorphic: 100x90 stored, shown 2:1 wider.
    anamorphic = make_video(
        tmp_path / "ana.mp4", duration=2, size="100x90", fps="10", audio=False, extra_video_filters="setsar=2/1"
    )
    out = tmp_path / "boot"
    assert (
        run(
            [
                "sample",
                str(wide),
                str(anamorphic),
                "-n",
                "12",
                "--seed",
                "3",
                "-o",
                str(out),
                "--classes",
                "background,rage",
            ]
        )
        == 0
    )
    images = sorted((out / "unsorted").iterdir())
    assert len(images) == 12 and (out / "background").is_dir() and (out / "rage").is_dir()
    for path in images:
        assert path.suffix == ".jpg" and path.name.startswith(("my-vod-é_t", "ana_t"))
        with Image.open(path) as image:
            assert image.size == ((160, 90) if path.name.startswith("my-vod-é") else (200, 90))
    # The time in the name is where the frame is: the testsrc2 picture moves, so compare with a grab.
    name = next(p for p in images if p.name.startswith("my-vod"))
    time_ms = int(name.stem.rsplit("_t", 1)[1])
    expected = decode.grab_frame(probe.probe(wide), time_ms, width=160).astype(int)
    assert np.abs(np.asarray(Image.open(name), dtype=int) - expected).mean() < 12

    # The same seed picks the same frames: nothing is overwritten without --force.
    before = {p.name: p.stat().st_mtime_ns for p in images}
    assert (
        run(["sample", str(wide), str(anamorphic), "-n", "12", "--seed", "3", "-o", str(out)])
        == ExitStatus.OUTPUT_EXISTS
    )
    assert {p.name: p.stat().st_mtime_ns for p in (out / "unsorted").iterdir()} == before
    assert (
        run(
            [
                "sample",
                str(wide),
                str(anamorphic),
                "-n",
                "12",
                "--seed",
                "3",
                "-o",
                str(out),
                "--force",
                "--format",
                "png",
            ]
        )
        == 0
    )
    assert len(list((out / "unsorted").glob("*.png"))) == 12


@pytest.mark.media
def test_sample_without_an_output_folder_writes_to_samples_in_the_current_folder(tmp_path: Path, monkeypatch):
    video = make_video(tmp_path / "v.mp4", duration=2, size="64x36", fps="10", audio=False)
    monkeypatch.chdir(tmp_path)
    assert run(["sample", str(video), "-n", "3"]) == 0
    assert len(list((tmp_path / "samples" / "unsorted").glob("v_t*.jpg"))) == 3


@pytest.mark.media
def test_sample_refuses_before_writing_anything(tmp_path: Path):
    video = make_video(tmp_path / "v.mp4", duration=2, size="64x36", fps="10", audio=False)
    out = tmp_path / "boot"
    first = sample_frames([video], 3, 0, out)
    victim = first.written[1]
    for path in first.written:
        path.unlink()
    victim.write_bytes(b"mine")
    with pytest.raises(OutputExistsError):
        sample_frames([video], 3, 0, out)
    assert sorted(p.name for p in (out / "unsorted").iterdir()) == [victim.name]
    assert victim.read_bytes() == b"mine"


# --------------------------------------------------------------------------- folder data sets


def test_scene_rule():
    assert scene_of(Path("vod1_t000125500.jpg")) == "vod1"
    assert scene_of(Path("2021-03-01_part3_t000000500.png")) == "2021-03-01_part3"
    assert scene_of(Path("studio-a/frame 7.png")) == "studio-a"
    assert scene_of(Path("a/b/c_1.png")) == "a/b"
    assert scene_of(Path("single.png")) == "single"
    assert scene_of(Path("_odd.png")) == "_odd"


def noise_image(path: Path, rng: np.random.Generator, bright_corner: bool, size=(96, 54), letterbox: int = 0) -> Path:
    """Noise; class 'rage' has a bright top-left square. ``letterbox`` adds black bars top and bottom."""
    width, height = size
    pixels = rng.integers(30, 140, size=(height, width, 3), dtype=np.uint8)
    if bright_corner:
        pixels[letterbox : letterbox + height // 3, : width // 3] = 250
    if letterbox:
        pixels[:letterbox] = 0
        pixels[-letterbox:] = 0
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path)
    return path


def make_folder(root: Path, scenes: int = 6, per_scene: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for scene in range(scenes):
        for i in range(per_scene):
            positive = i % 2 == 0
            noise_image(root / ("rage" if positive else "background") / f"vod{scene}_t{i:09d}.png", rng, positive)
    (root / "unsorted").mkdir()
    noise_image(root / "unsorted" / "x_1.png", rng, False)  # not sorted yet: skipped
    (root / ".autotosis").mkdir()
    return root


def test_folder_classes_scenes_and_frames(tmp_path: Path):
    root = make_folder(tmp_path / "my set", scenes=4, per_scene=4)
    noise_image(root / "rage" / "studio b" / "any name.png", np.random.default_rng(1), True)
    folder = read_image_folder(root)
    assert folder.classes == ("background", "rage")
    assert set(folder.scenes()) == {"vod0", "vod1", "vod2", "vod3", "studio b"}
    frameset = folder_frames(folder, size=16, out_dir=tmp_path / "frames")
    assert frameset.task == "my_set" and frameset.classes == folder.classes
    assert frameset.counts() == {"background": 8, "rage": 9}
    by_scene = {c.clip.name: c for c in frameset.clips}
    assert by_scene["vod0"].load_frames().shape == (4, 16, 16, 3)
    assert sorted(by_scene["vod0"].targets.tolist()) == [0, 0, 1, 1]
    # Unchanged images re-use the shards; a changed image re-makes only its scene.
    stamps = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "frames").glob("*.npy")}
    again = folder_frames(read_image_folder(root), size=16, out_dir=tmp_path / "frames")
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "frames").glob("*.npy")} == stamps
    noise_image(root / "rage" / "vod1_t000000000.png", np.random.default_rng(5), True)
    third = folder_frames(read_image_folder(root), size=16, out_dir=tmp_path / "frames")
    before = {c.clip.name: c.frames_path for c in again.clips}
    assert {c.clip.name for c in third.clips if c.frames_path != before[c.clip.name]} == {"vod1"}
    assert len(list((tmp_path / "frames").glob("*.npy"))) == 5  # the old vod1 shard is gone


def test_validation_never_splits_a_scene(tmp_path: Path):
    frameset = folder_frames(
        read_image_folder(make_folder(tmp_path / "set", scenes=8)), size=16, out_dir=tmp_path / "f"
    )
    train, val = split_by_clip(frameset, 0.25, seed=0)
    train_scenes = {c.clip.name for c in train}
    val_scenes = {c.clip.name for c in val}
    assert val_scenes and not train_scenes & val_scenes
    assert len(train_scenes | val_scenes) == 8


def test_folder_errors_say_what_to_do(tmp_path: Path):
    root = tmp_path / "set"
    noise_image(root / "unsorted" / "a_1.png", np.random.default_rng(0), False)
    with pytest.raises(DataError, match="at least two class folders") as caught:
        read_image_folder(root)
    assert "unsorted" in str(caught.value)
    noise_image(root / "background" / "a_1.png", np.random.default_rng(0), False)
    noise_image(root / "rage" / "a_2.png", np.random.default_rng(0), True)
    (root / "rage" / "broken_3.png").write_bytes(b"not an image")
    with pytest.raises(DataError, match="broken_3.png"):
        folder_frames(read_image_folder(root), size=16, out_dir=tmp_path / "f")


def test_load_image_crops_region_and_letterbox(tmp_path: Path):
    path = noise_image(tmp_path / "lb.png", np.random.default_rng(0), True, size=(120, 90), letterbox=15)
    plain = load_image(path, 30)
    cropped = load_image(path, 30, crop_borders=True)
    assert plain[0].max() < 60  # the black bar is in the picture
    assert cropped[0].mean() > 60  # and gone with crop_borders
    corner = load_image(path, 10, region=(0.0, 0.0, 1 / 3, 1.0), crop_borders=True)
    assert corner[:3].mean() > 200  # the bright square fills the top of the left third


@pytest.mark.torch
def test_train_and_eval_on_an_image_folder(tmp_path: Path, capsys):
    root = make_folder(tmp_path / "studio set", scenes=6, per_scene=10)
    model = tmp_path / "m.pt"
    assert (
        run(
            [
                "train",
                str(root),
                "-o",
                str(model),
                "--size",
                "32",
                "--epochs",
                "3",
                "--seed",
                "1",
                "--task",
                "flash",
                "--crop",
                "0,0,0.5,1",
                "--raw-colour",
            ]
        )
        == 0
    )
    _, info, _ = load_checkpoint(model)
    assert info.task == "flash" and info.classes == ("background", "rage") and info.crop == (0.0, 0.0, 0.5, 1.0)
    assert not info.balance_colour
    assert info.metrics["val_clips"] >= 1 and info.metrics["validated_on"] == "held-out clips"
    out = tmp_path / "eval.json"
    assert run(["eval", str(root), "--model", str(model), "--json", str(out)]) == 0
    report = json.loads(out.read_text())["reports"][0]
    assert report["event"] is None and len(report["clips"]) == 6
    assert report["frame"]["tp"] + report["frame"]["fn"] == 30
    assert report["frame"]["f1"] >= 0.8
    assert "vod0 (10 images" in capsys.readouterr().out
    # A label-file-only option with a folder, and a folder-only option with a label file, are refused.
    labels = tmp_path / "rage.txt"
    labels.write_text("# nothing\n")
    assert run(["train", str(labels), "-o", str(tmp_path / "x.pt"), "--crop", "0,0,1,1"]) == ExitStatus.USAGE


# --------------------------------------------------------------------------- leak guard and letterbox


def blocky_clip(root: Path, name: str, rng: np.random.Generator, count: int = 12, size: int = 32):
    """Frames of big random blocks (high contrast, so their hashes are stable)."""
    from autotosis.training.dataset import ClipFrames

    frames = np.kron(
        rng.integers(0, 256, (count, 8, 8, 3), dtype=np.uint8), np.ones((1, size // 8, size // 8, 1), np.uint8)
    )
    path = root / f"{name}.npy"
    np.save(path, frames)
    targets = np.arange(count) % 2
    return ClipFrames(
        root / f"{name}.mp4", name, path, np.arange(count, dtype=np.int64) * 250, targets.astype(np.int64)
    )


def test_leak_check_finds_copied_footage_only(tmp_path: Path):
    from autotosis.training.train import check_leaks

    rng = np.random.default_rng(0)
    train = [blocky_clip(tmp_path, f"t{i}", rng) for i in range(4)]
    fresh = [blocky_clip(tmp_path, f"v{i}", rng) for i in range(2)]
    assert check_leaks(train, fresh, 2).duplicates == 0
    # A re-encoded copy of a training clip: the same pictures, slightly brighter and noisy.
    source = train[1].load_frames().astype(int)
    copy = np.clip(source + 6 + rng.integers(-4, 5, source.shape), 0, 255).astype(np.uint8)
    np.save(tmp_path / "copy.npy", copy)

    copied = replace(train[1], clip=tmp_path / "copy.mp4", clip_id="copy", frames_path=tmp_path / "copy.npy")
    report = check_leaks(train, [*fresh, copied], 2)
    assert report.checked == 36 and report.duplicates == 12
    assert [(c.name, c.duplicates, c.checked, c.like) for c in report.leaked] == [("copy.mp4", 12, 12, "t1.mp4")]
    assert "copy.mp4: 12 of 12 frames look like t1.mp4" in report.message()
    # A few look-alike frames in a clip are counted but not reported.
    partly = copy.copy()
    partly[4:] = np.kron(rng.integers(0, 256, (8, 8, 8, 3), dtype=np.uint8), np.ones((1, 4, 4, 1), np.uint8))
    np.save(tmp_path / "copy.npy", partly)
    report = check_leaks(train, [copied], 2)
    assert report.duplicates == 4 and report.leaked == ()


@pytest.mark.torch
def test_training_warns_about_near_duplicates(tmp_path: Path):
    from autotosis.training.dataset import FrameSet
    from autotosis.training.train import TrainConfig, split_by_clip, train

    rng = np.random.default_rng(1)
    scenes = [blocky_clip(tmp_path, f"scene{i}", rng, count=16) for i in range(3)]
    clips = tuple(copy_of(scene, k) for scene in scenes for k in range(2))  # every scene filed twice
    frameset = FrameSet(task="t", classes=("background", "t"), size=32, crop=None, clips=clips)
    config = TrainConfig(epochs=1, batch_size=8, max_frames_per_epoch=16, seed=1, val_fraction=0.34)
    train_part, val_part = split_by_clip(frameset, config.val_fraction, config.seed)
    assert {c.clip.stem[:-2] for c in val_part} & {c.clip.stem[:-2] for c in train_part}  # a scene on both sides
    result = train(frameset, config, tmp_path / "m.pt")
    assert any(w.startswith("possible leak:") for w in result.warnings)
    assert load_checkpoint(tmp_path / "m.pt")[1].metrics["near_duplicate_val_share"] > 0.4


def copy_of(clip, number: int):

    name = f"{clip.clip.stem}-{number}"
    return replace(clip, clip=clip.clip.with_name(f"{name}.mp4"), clip_id=name)


@pytest.mark.media
def test_crop_borders_takes_letterbox_bars_off_clip_frames(tmp_path: Path, monkeypatch):
    from autotosis.labels.parse import parse_labels
    from autotosis.training.dataset import FrameOptions, extract_frames

    # A wide picture letterboxed into the frame: black bars at the top and the bottom.
    make_video(
        tmp_path / "lb.mp4",
        duration=2,
        size="96x54",
        fps="10",
        audio=False,
        extra_video_filters="scale=96:36,pad=96:54:0:9:black",
    )
    (tmp_path / "lb.txt").write_text("lb.mp4  0.5-1.5\n")
    labels = parse_labels(tmp_path / "lb.txt")
    region = decode.detect_active_area(probe.probe(tmp_path / "lb.mp4"))
    assert region is not None and region[0] == 0 and abs(region[1] - 9 / 54) < 0.03 and abs(region[3] - 45 / 54) < 0.03
    plain = extract_frames(labels, tmp_path / "f1", FrameOptions(fps=2, size=24))
    cropped = extract_frames(labels, tmp_path / "f2", FrameOptions(fps=2, size=24, crop_borders=True))
    assert plain.clips[0].load_frames()[:, 0].max() < 40  # the bar
    assert cropped.clips[0].load_frames()[:, 0].mean() > 40  # picture
    assert cropped.crop is None and cropped.crop_borders  # borders are found again in each video scanned
    # Borders are detected once per file: a second run reads borders.json.
    monkeypatch.setattr(decode, "detect_active_area", lambda info: pytest.fail("detected again"))
    again = extract_frames(labels, tmp_path / "f2", FrameOptions(fps=2, size=24, crop_borders=True))
    assert again.clips[0].frames_path == cropped.clips[0].frames_path


@pytest.mark.media
def test_a_model_trained_with_crop_borders_crops_each_scanned_video_s_own_borders(tmp_path: Path, monkeypatch):
    import torch

    from autotosis.detect.scan import ScanOptions, scan_video
    from autotosis.model.model import DEFAULT_MEAN, DEFAULT_STD, ModelInfo, build_model, save_checkpoint

    torch.manual_seed(0)
    model = tmp_path / "borders.pt"
    info = ModelInfo("rage", ("background", "rage"), 32, DEFAULT_MEAN, DEFAULT_STD, None, 0.5, crop_borders=True)
    save_checkpoint(model, build_model(2), info)
    # Another video than any training clip: pillarbox bars left and right.
    make_video(
        tmp_path / "pb.mp4",
        duration=2,
        size="96x54",
        fps="10",
        audio=False,
        extra_video_filters="scale=64:54,pad=96:54:16:0:black",
    )
    options = ScanOptions(cache_dir=tmp_path / "cache")
    scores = scan_video(tmp_path / "pb.mp4", model, options)
    left, top, right, bottom = scores.scan.region
    assert abs(left - 16 / 96) < 0.03 and abs(right - 80 / 96) < 0.03 and top == 0 and bottom == 1
    assert scan_video(tmp_path / "pb.mp4", model, replace(options, full_frame=True)).scan.region is None
    # The borders are remembered beside the cached scores, not detected on every scan.
    monkeypatch.setattr(decode, "detect_active_area", lambda info: pytest.fail("detected again"))
    again = scan_video(tmp_path / "pb.mp4", model, replace(options, use_cache=True, batch_size=4))
    assert tuple(again.scan.region) == (left, top, right, bottom)
    # Stills score the same picture.
    from autotosis.model.predictor import load_predictor
    from autotosis.outputs.stills import StillsOptions, mine_stills

    monkeypatch.undo()  # stills remember borders in the default cache: point it at a fresh folder
    monkeypatch.setenv("AUTOTOSIS_CACHE", str(tmp_path / "cache-root"))
    stills = mine_stills(tmp_path / "pb.mp4", tmp_path / "stills", StillsOptions(count=1), load_predictor(model))
    assert tuple(stills.settings["region"]) == (left, top, right, bottom)
    # eval frames labelled clips as in training without being told again.
    import autotosis.training.evaluate as evaluate_module

    seen = {}
    real = evaluate_module.score_labelled_clips

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(evaluate_module, "score_labelled_clips", spy)
    (tmp_path / "pb.txt").write_text("# task=rage\npb.mp4  0.5-1.5\n", encoding="utf-8")
    assert run(["eval", str(tmp_path / "pb.txt"), "--model", str(model)]) == 0
    assert seen["crop_borders"] is True
