"""Model, checkpoint and training tests on tiny synthetic frame sets (no video needed)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from hypothesis import given, settings
from hypothesis import strategies as st

from autotosis.core.errors import DataError, ModelError, OutputExistsError, UsageError
from autotosis.model.model import (
    CHECKPOINT_FORMAT,
    DEFAULT_MEAN,
    DEFAULT_STD,
    ModelInfo,
    balanced_colour,
    build_model,
    load_checkpoint,
    model_fingerprint,
    predict_probs,
    save_checkpoint,
    to_input_tensor,
)
from autotosis.training.dataset import IGNORE, ClipFrames, FrameSet
from autotosis.training.train import (
    AUGMENT_COLOUR_CAST,
    FrameDataset,
    TrainConfig,
    augment_batch,
    best_f1_threshold,
    evaluate,
    last_checkpoint_path,
    make_eval_loader,
    make_mixup,
    mixup_loss,
    precise_batchnorm,
    split_by_clip,
    train,
)

pytestmark = pytest.mark.torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZE = 32  # production uses 128; resnet18 works on 32x32 and keeps these tests fast
TASK = "rage"
# Per clip: (positive frames, negative frames, ignored frames)
DEFAULT_LAYOUT = ((8, 12, 4), (10, 10, 4), (6, 14, 4), (12, 8, 4), (8, 12, 4), (0, 24, 0), (9, 11, 4), (0, 24, 0))


def synthetic_frames(targets: np.ndarray, rng: np.random.Generator, size: int = SIZE) -> np.ndarray:
    """Noisy frames; a highlight (target 1) has a bright square in the top-left corner."""
    frames = rng.integers(30, 140, size=(len(targets), size, size, 3), dtype=np.uint8)
    side = size // 3
    for i, target in enumerate(targets):
        if target == 1:
            frames[i, 1 : 1 + side, 1 : 1 + side] = rng.integers(220, 256, size=(side, side, 3), dtype=np.uint8)
    return frames


def make_frameset(root: Path, layout=DEFAULT_LAYOUT, *, task: str = TASK, seed: int = 0, size: int = SIZE) -> FrameSet:
    """Write one .npy shard per clip (like dataset.extract_frames does) and describe them."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    clips = []
    for number, (pos, neg, ignored) in enumerate(layout):
        targets = np.array([1] * pos + [0] * neg + [IGNORE] * ignored, dtype=np.int64)
        rng.shuffle(targets)
        frames = synthetic_frames(np.where(targets == IGNORE, rng.integers(0, 2, len(targets)), targets), rng, size)
        path = root / f"clip{number}.npy"
        np.save(path, frames)
        times = np.arange(len(targets), dtype=np.int64) * 250
        clips.append(ClipFrames(root / f"clip{number}.mp4", f"id{number:02d}", path, times, targets))
    return FrameSet(task=task, classes=("background", task), size=size, crop=(0.7, 0.1, 0.95, 0.35), clips=tuple(clips))


def fast_config(**changes) -> TrainConfig:
    base = TrainConfig(epochs=2, batch_size=16, lr=2e-3, seed=0)
    return replace(base, **changes)


def tiny_info(task: str = TASK, size: int = SIZE) -> ModelInfo:
    return ModelInfo(
        task=task,
        classes=("background", task),
        input_size=size,
        mean=DEFAULT_MEAN,
        std=DEFAULT_STD,
        crop=None,
        threshold=0.5,
        metrics={"f1": 0.75},
        train_args={"epochs": 1},
    )


def state_of(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.fixture
def frameset(tmp_path: Path) -> FrameSet:
    return make_frameset(tmp_path / "frames")


# --------------------------------------------------------------------------- checkpoints


def test_checkpoint_round_trip(tmp_path: Path):
    torch.manual_seed(1)
    model = build_model(2)
    info = tiny_info()
    path = tmp_path / "m.pt"
    save_checkpoint(path, model, info, extra={"note": "kept"})
    loaded, loaded_info, raw = load_checkpoint(path, expect_task=TASK)
    assert loaded_info == info
    assert raw["format"] == CHECKPOINT_FORMAT and raw["note"] == "kept"
    assert not loaded.training
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key
    frames = np.random.default_rng(0).integers(0, 256, (5, SIZE, SIZE, 3), dtype=np.uint8)
    model.eval()
    np.testing.assert_allclose(
        predict_probs(loaded, frames, loaded_info), predict_probs(model, frames, info), atol=1e-6
    )
    assert loaded_info.positive_class() == TASK


def test_checkpoint_is_plain_resnet18_state(tmp_path: Path):
    """The stored weights load into an unmodified torchvision resnet18 with a 2-way head."""
    path = tmp_path / "m.pt"
    save_checkpoint(path, build_model(2), tiny_info())
    plain = torchvision.models.resnet18(num_classes=2)
    plain.load_state_dict(torch.load(path, weights_only=True)["state_dict"])


def test_save_refuses_to_overwrite_without_force(tmp_path: Path):
    path = tmp_path / "m.pt"
    path.write_bytes(b"precious")
    with pytest.raises(OutputExistsError):
        save_checkpoint(path, build_model(2), tiny_info())
    assert path.read_bytes() == b"precious"
    assert list(tmp_path.iterdir()) == [path]  # no temp file left behind
    save_checkpoint(path, build_model(2), tiny_info(), force=True)
    assert load_checkpoint(path)[1].task == TASK


class NotAllowed:
    """A custom class: torch.load(weights_only=True) must refuse to unpickle it."""

    def __init__(self):
        self.value = 3


@pytest.mark.parametrize(
    "write, message",
    [
        (lambda p: p.write_bytes(os.urandom(3000)), "is not an autotosis checkpoint"),
        (lambda p: p.write_bytes(b""), "is not an autotosis checkpoint"),
        (lambda p: torch.save({"a": 1}, p), "no 'format' key"),
        (lambda p: torch.save([1, 2, 3], p), "no 'format' key"),
        (lambda p: torch.save({"format": "something-else/1"}, p), "not an autotosis checkpoint"),
        (lambda p: torch.save({"format": "autotosis-checkpoint/99", "info": {}}, p), "newer"),
        (lambda p: torch.save({"format": CHECKPOINT_FORMAT, "info": {"task": "x"}}, p), "metadata is incomplete"),
        (lambda p: torch.save({"format": CHECKPOINT_FORMAT, "info": [1]}, p), "no metadata"),
        (lambda p: torch.save(NotAllowed(), p), "is not an autotosis checkpoint"),
        (lambda p: torch.save({"format": CHECKPOINT_FORMAT, "obj": NotAllowed()}, p), "is not an autotosis checkpoint"),
    ],
    ids=[
        "random-bytes",
        "empty",
        "plain-dict",
        "list",
        "other-format",
        "newer-format",
        "incomplete",
        "info-not-dict",
        "custom-class",
        "nested-class",
    ],
)
def test_load_refuses_files_that_are_not_our_checkpoints(tmp_path: Path, write, message):
    path = tmp_path / "bad.pt"
    write(path)
    with pytest.raises(ModelError) as caught:
        load_checkpoint(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_load_refuses_weights_that_do_not_match_metadata(tmp_path: Path):
    path = tmp_path / "m.pt"
    save_checkpoint(path, build_model(3), tiny_info())  # 3-way head, metadata says 2 classes
    with pytest.raises(ModelError, match="do not match"):
        load_checkpoint(path)


def test_load_missing_file_and_task_mismatch(tmp_path: Path):
    with pytest.raises(ModelError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "missing.pt")
    path = tmp_path / "pog.pt"
    save_checkpoint(path, build_model(2), tiny_info(task="pog"))
    with pytest.raises(ModelError) as caught:
        load_checkpoint(path, expect_task="rage")
    assert "model was trained for task 'pog', not 'rage'" in str(caught.value)


def test_model_fingerprint_follows_file_bytes(tmp_path: Path):
    first, second = tmp_path / "a.pt", tmp_path / "b.pt"
    torch.manual_seed(0)
    save_checkpoint(first, build_model(2), tiny_info())
    torch.manual_seed(1)
    save_checkpoint(second, build_model(2), tiny_info())
    assert model_fingerprint(first) == model_fingerprint(first)
    assert len(model_fingerprint(first)) == 16
    assert model_fingerprint(first) != model_fingerprint(second)


# --------------------------------------------------------------------------- building / weights


def test_imagenet_weights_missing_names_the_cache_path(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    expected = tmp_path / "torch-home" / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    with pytest.raises(ModelError) as caught:
        build_model(2, "imagenet")
    assert str(expected) in str(caught.value)


def test_imagenet_weights_from_the_cache(tmp_path: Path, monkeypatch):
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path / "hub"))
    cached = tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    cached.parent.mkdir(parents=True)
    torch.manual_seed(5)
    imagenet_like = torchvision.models.resnet18()  # 1000-way head, like the real file
    torch.save(imagenet_like.state_dict(), cached)
    model = build_model(2, "imagenet")
    assert torch.equal(model.conv1.weight, imagenet_like.conv1.weight)
    assert torch.equal(model.layer4[1].bn2.running_var, imagenet_like.layer4[1].bn2.running_var)
    assert model.fc.out_features == 2


def test_weights_from_our_checkpoint_reinitialise_a_different_head(tmp_path: Path):
    torch.manual_seed(2)
    source = build_model(3)
    path = tmp_path / "three.pt"
    save_checkpoint(path, source, replace(tiny_info(), classes=("background", "a", "b")))
    torch.manual_seed(3)
    model = build_model(2, str(path))
    assert torch.equal(model.layer2[0].conv1.weight, source.layer2[0].conv1.weight)
    assert model.fc.out_features == 2
    same_head = build_model(3, str(path))
    assert torch.equal(same_head.fc.weight, source.fc.weight)


def test_weights_argument_errors(tmp_path: Path):
    with pytest.raises(ModelError, match="none, imagenet or a checkpoint"):
        build_model(2, "imagenet21k")
    odd = tmp_path / "odd.pt"
    torch.save({"layer.weight": torch.zeros(2)}, odd)
    with pytest.raises(ModelError, match="not a ResNet18 state_dict"):
        build_model(2, str(odd))


# --------------------------------------------------------------------------- preprocessing


def test_to_input_tensor_normalises_and_keeps_channels_last():
    info = tiny_info()
    frames = np.zeros((2, SIZE, SIZE, 3), dtype=np.uint8)
    frames[1] = 255
    tensor = to_input_tensor(frames, info)
    assert tensor.shape == (2, 3, SIZE, SIZE) and tensor.dtype == torch.float32
    assert tensor.is_contiguous(memory_format=torch.channels_last)
    for channel in range(3):
        assert tensor[0, channel, 0, 0].item() == pytest.approx(-DEFAULT_MEAN[channel] / DEFAULT_STD[channel], rel=1e-5)
        assert tensor[1, channel, 5, 5].item() == pytest.approx(
            (1 - DEFAULT_MEAN[channel]) / DEFAULT_STD[channel], rel=1e-5
        )


def test_balanced_colour_removes_a_tint_and_keeps_what_differs_inside_the_picture():
    rng = np.random.default_rng(3)
    frames = rng.integers(20, 120, (4, SIZE, SIZE, 3), dtype=np.uint8)
    frames[:, 8:16, 8:16, 0] = 140  # a red patch: a difference inside the picture, which must stay
    gains = np.array([1.8, 1.0, 0.7])  # pink light (no channel clips)
    tinted = np.round(frames * gains).astype(np.uint8)
    unit = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    balanced = balanced_colour(unit)
    balanced_tinted = balanced_colour(torch.from_numpy(tinted).permute(0, 3, 1, 2).float() / 255)
    # Every channel at the picture's mean level, brightness kept ...
    means = balanced.mean(dim=(2, 3))
    assert torch.allclose(means, unit.mean(dim=(1, 2, 3))[:, None].expand(-1, 3), rtol=5e-3)
    # ... so a tint (one gain per channel) leaves the same picture up to its brightness (uint8 rounding aside).
    ratio = balanced_tinted / balanced
    assert (ratio / ratio.mean(dim=(1, 2, 3), keepdim=True) - 1).abs().max().item() < 0.05
    assert (balanced[:, 0, 8:16, 8:16].mean() - balanced[:, 0, 20:, 20:].mean()).item() > 0.2  # the patch stays
    # The model input is balanced only for a model trained so; a black picture stays finite and black.
    info, raw = replace(tiny_info(), balance_colour=True), tiny_info()
    assert not torch.allclose(to_input_tensor(tinted, info), to_input_tensor(tinted, raw))
    black = np.zeros((1, SIZE, SIZE, 3), np.uint8)
    assert torch.allclose(to_input_tensor(black, info), to_input_tensor(black, raw))


def test_balance_colour_is_stored_and_old_checkpoints_see_raw_colour():
    info = replace(tiny_info(), balance_colour=True)
    assert ModelInfo.from_dict(info.to_dict()) == info
    old = {k: v for k, v in tiny_info().to_dict().items() if k != "balance_colour"}
    assert ModelInfo.from_dict(old).balance_colour is False


def test_to_input_tensor_rejects_wrong_shapes_and_reads_memmaps(tmp_path: Path):
    info = tiny_info()
    with pytest.raises(DataError, match="expects 32x32"):
        to_input_tensor(np.zeros((1, 16, 16, 3), np.uint8), info)
    with pytest.raises(DataError, match="uint8"):
        to_input_tensor(np.zeros((1, SIZE, SIZE, 3), np.float32), info)
    path = tmp_path / "f.npy"
    np.save(path, np.full((3, SIZE, SIZE, 3), 128, np.uint8))
    mapped = np.load(path, mmap_mode="r")
    assert torch.allclose(
        to_input_tensor(mapped[::2], info), to_input_tensor(np.full((2, SIZE, SIZE, 3), 128, np.uint8), info)
    )


def test_predict_probs_are_a_distribution_and_leave_mode_alone():
    torch.manual_seed(0)
    model = build_model(2)
    model.train()
    frames = np.random.default_rng(1).integers(0, 256, (300, SIZE, SIZE, 3), dtype=np.uint8)  # > one chunk
    probs = predict_probs(model, frames, tiny_info())
    assert probs.shape == (300, 2) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert model.training
    assert predict_probs(model, frames[:0], tiny_info()).shape == (0, 2)


def test_augmentation_is_deterministic_mild_and_keeps_shape():
    batch = torch.rand(8, 3, SIZE, SIZE)
    first = augment_batch(batch, torch.Generator().manual_seed(4))
    again = augment_batch(batch, torch.Generator().manual_seed(4))
    other = augment_batch(batch, torch.Generator().manual_seed(5))
    assert first.shape == batch.shape
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert 0.0 <= first.min().item() and first.max().item() <= 1.0
    # Mild: a smooth image stays close to itself (no flips, no big moves).
    ramp = torch.linspace(0, 1, SIZE).view(1, 1, 1, SIZE).expand(8, 3, SIZE, SIZE).contiguous()
    assert (augment_batch(ramp, torch.Generator().manual_seed(4)) - ramp).abs().mean().item() < 0.2


def test_augmentation_casts_colours_within_the_stated_range():
    # A flat grey picture keeps no shape to move: only brightness, contrast and the colour cast act,
    # so its channels part by at most the cast (another camera's white balance, a room light).
    grey = torch.full((64, 3, SIZE, SIZE), 0.5)
    out = augment_batch(grey, torch.Generator().manual_seed(7))
    channel_means = out.mean(dim=(2, 3))
    ratio = channel_means / channel_means.mean(dim=1, keepdim=True)
    spread = ratio.max(dim=1).values - ratio.min(dim=1).values
    assert spread.max().item() > 0.05  # some pictures get a visible cast
    assert spread.max().item() < 2 * AUGMENT_COLOUR_CAST / (1 - AUGMENT_COLOUR_CAST) + 1e-4
    assert (out.std(dim=(2, 3)) < 1e-4).all()  # a flat picture stays flat: no noise, no pattern


class FixedLogits(torch.nn.Module):
    """Returns prepared logits batch after batch, whatever the input."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits, self.position = logits, 0

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        out = self.logits[self.position : self.position + len(inputs)]
        self.position += len(inputs)
        return out


def test_evaluate_multiclass_uses_macro_scores_over_non_background(tmp_path: Path):
    targets = np.array([0, 0, 1, 1, 2, 2, IGNORE], dtype=np.int64)
    predicted = [0, 1, 1, 1, 2, 0]  # for the six usable frames
    path = tmp_path / "f.npy"
    np.save(path, np.zeros((len(targets), SIZE, SIZE, 3), np.uint8))
    clip = ClipFrames(tmp_path / "c.mp4", "c", path, np.arange(len(targets), dtype=np.int64), targets)
    info = replace(tiny_info(), classes=("background", "laugh", "rage"))
    model = FixedLogits(torch.nn.functional.one_hot(torch.tensor(predicted), 3).float() * 5)
    metrics = evaluate(model, make_eval_loader(FrameDataset([clip], SIZE), batch_size=4), info)
    # laugh: P 2/3, R 1, F1 0.8; rage: P 1, R 1/2, F1 2/3
    assert metrics.precision == pytest.approx((2 / 3 + 1) / 2)
    assert metrics.recall == pytest.approx((1 + 0.5) / 2)
    assert metrics.f1 == pytest.approx((0.8 + 2 / 3) / 2)
    assert metrics.accuracy == pytest.approx(4 / 6) and metrics.frames == 6 and metrics.positives == 4
    assert info.positive_class() == "laugh"


def test_best_f1_threshold_prefers_separating_value():
    scores = np.array([0.1, 0.25, 0.3, 0.35, 0.4, 0.9])
    actual = np.array([False, False, False, True, True, True])
    threshold, f1 = best_f1_threshold(scores, actual)
    assert 0.3 < threshold <= 0.35 and f1 == pytest.approx(1.0)


# --------------------------------------------------------------------------- split


def clip_stub(clip_id: str, positives: bool, negatives: bool, number: int) -> ClipFrames:
    targets = np.array(([1, 1] if positives else []) + ([0, 0] if negatives else []) + [IGNORE], dtype=np.int64)
    return ClipFrames(
        Path(f"c{number}.mp4"), clip_id, Path(f"c{number}.npy"), np.arange(len(targets), dtype=np.int64), targets
    )


@settings(max_examples=60, deadline=None)
@given(
    kinds=st.lists(st.sampled_from(["pos", "neg", "both", "none"]), min_size=0, max_size=14),
    shared=st.lists(st.integers(0, 13), max_size=4),
    fraction=st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.9]),
    seed=st.integers(0, 2**31),
)
def test_split_by_clip_groups_and_is_deterministic(kinds, shared, fraction, seed):
    ids = [f"id{i}" for i in range(len(kinds))]
    for i in shared:  # some label lines point at the same clip: one group
        if i < len(ids) and i > 0:
            ids[i] = ids[i - 1]
    clips = [clip_stub(ids[i], kind in ("pos", "both"), kind in ("neg", "both"), i) for i, kind in enumerate(kinds)]
    fs = FrameSet(task=TASK, classes=("background", TASK), size=SIZE, crop=None, clips=tuple(clips))
    train_clips, val_clips = split_by_clip(fs, fraction, seed)
    again = split_by_clip(fs, fraction, seed)
    assert [c.frames_path for c in train_clips] == [c.frames_path for c in again[0]]
    assert [c.frames_path for c in val_clips] == [c.frames_path for c in again[1]]
    usable = [c for c in clips if kinds[clips.index(c)] != "none"]
    groups = {c.clip_id for c in usable}
    train_ids, val_ids = {c.clip_id for c in train_clips}, {c.clip_id for c in val_clips}
    if len(groups) < 3 or fraction == 0:
        assert train_ids == val_ids == groups  # validate on the training clips
        return
    assert not train_ids & val_ids
    assert train_ids | val_ids == groups
    assert sorted(map(id, train_clips + val_clips)) == sorted(map(id, usable))  # every usable clip, once
    assert train_ids and val_ids
    has_pos = {c.clip_id for c in usable if np.any(c.targets == 1)}
    has_neg = {c.clip_id for c in usable if np.any(c.targets == 0)}
    if has_pos:
        assert train_ids & has_pos  # training always keeps both classes
    if has_neg:
        assert train_ids & has_neg
    if len(has_pos) >= 2:
        assert val_ids & has_pos  # validation gets highlights when that costs training nothing
    if len(has_neg) >= 2 and len(has_pos - has_neg) + len(has_neg) >= 3:
        assert val_ids & has_neg


def test_mixup_draws_are_reproducible_per_seed_and_epoch_and_off_at_zero():
    def draws(config: TrainConfig, epoch: int) -> list[tuple[float, list[int]]]:
        mixup = make_mixup(config, epoch)
        return [(share, partner.tolist()) for share, partner in (mixup.draw(16) for _ in range(5))]

    config = fast_config(mixup=0.4)
    first = draws(config, 0)
    assert first == draws(config, 0)  # a resumed epoch blends exactly as the uninterrupted one did
    assert first != draws(config, 1) and first != draws(replace(config, seed=1), 0)
    assert all(0.5 <= share <= 1.0 for share, _ in first)  # each picture's own label counts most
    assert all(sorted(partner) == list(range(16)) for _, partner in first)  # every picture gets one partner
    assert make_mixup(fast_config(mixup=0.0), 0) is None


def test_mixup_loss_blends_the_cross_entropy_of_both_labels():
    class Fixed:  # a "model" whose logits are the mean of each input picture's channels
        def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
            return inputs.mean(dim=(2, 3))[:, :2]

    class Draw:
        def __init__(self, share: float, partner: list[int]):
            self.share, self.partner = share, torch.tensor(partner)

        def draw(self, batch_size: int):
            return self.share, self.partner

    inputs = torch.rand(4, 3, 8, 8)
    targets = torch.tensor([0, 1, 1, 0])
    partner = [1, 0, 3, 2]
    mixed = inputs * 0.7 + inputs[partner] * 0.3
    logits = mixed.mean(dim=(2, 3))[:, :2]
    expected = 0.7 * torch.nn.functional.cross_entropy(logits, targets) + 0.3 * torch.nn.functional.cross_entropy(
        logits, targets[partner]
    )
    assert torch.allclose(mixup_loss(Fixed(), inputs, targets, Draw(0.7, partner)), expected)
    # A share of 1 is plain cross-entropy on the pictures themselves.
    plain = torch.nn.functional.cross_entropy(inputs.mean(dim=(2, 3))[:, :2], targets)
    assert torch.allclose(mixup_loss(Fixed(), inputs, targets, Draw(1.0, partner)), plain)


def test_cli_mixup_default_is_the_training_default():
    from autotosis.cli.parser import build_parser

    _, commands = build_parser()
    parser = commands["train"]
    assert parser.parse_args(["labels.txt", "-o", "m.pt"]).mixup == TrainConfig().mixup
    assert parser.parse_args(["labels.txt", "-o", "m.pt", "--mixup", "0"]).mixup == 0.0
    with pytest.raises(SystemExit):
        parser.parse_args(["labels.txt", "-o", "m.pt", "--mixup", "-1"])


def test_cli_audio_default_is_the_training_default():
    from autotosis.cli.parser import build_parser

    _, commands = build_parser()
    assert commands["train"].parse_args(["labels.txt", "-o", "m.pt"]).audio == TrainConfig().audio == "auto"


def test_the_audio_help_states_the_margin_and_the_combined_floor_the_training_uses():
    from autotosis.cli.parser import build_parser
    from autotosis.detect.audio import DEFAULT_FEATURES
    from autotosis.training.audio import AUTO_MARGIN, COMBINED_EVENT_FLOOR

    _, commands = build_parser()
    text = " ".join(commands["train"].format_help().split())
    assert f"by {AUTO_MARGIN:g} or more" in text
    assert f"thresholds from {COMBINED_EVENT_FLOOR:g} up" in text
    assert DEFAULT_FEATURES.reference_quantile == 0.2 and "quietest fifth" in text


# --------------------------------------------------------------------------- training


def test_training_learns_the_synthetic_signal(tmp_path: Path, frameset: FrameSet):
    out = tmp_path / "rage.pt"
    seen = []
    steps = []
    result = train(
        frameset, fast_config(epochs=2), out, on_epoch=seen.append, on_step=lambda d, t: steps.append((d, t))
    )
    assert result.checkpoint == out and out.exists() and last_checkpoint_path(out).exists()
    assert [m.epoch for m in result.history] == [1, 2] == [m.epoch for m in seen]
    assert not set(result.train_clips) & set(result.val_clips) and result.val_clips
    assert result.warnings == ()
    assert steps[-1][0] == steps[-1][1]
    best = next(m for m in result.history if m.epoch == result.best_epoch)
    assert best.best and best.f1 >= 0.8 and best.accuracy >= 0.8
    model, info, _ = load_checkpoint(out, expect_task=TASK)
    assert info.epoch == result.best_epoch and info.crop == frameset.crop and info.input_size == SIZE
    assert 0.2 <= info.threshold <= 0.8 and info.metrics["validated_on"] == "held-out clips"
    assert info.train_args["epochs"] == 2
    assert info.balance_colour  # new models see colour-balanced pictures
    # Fresh frames the model never saw: clearly better than chance.
    rng = np.random.default_rng(99)
    targets = rng.integers(0, 2, 64)
    probs = predict_probs(model, synthetic_frames(targets, rng), info)
    assert np.mean(probs.argmax(axis=1) == targets) >= 0.85


def test_mixup_reaches_the_training_steps(tmp_path: Path, frameset: FrameSet):
    # Same seed, same frames and augmentation: only the blending differs, so the weights must too.
    config = fast_config(epochs=1, max_frames_per_epoch=48)
    with_mixup = train(frameset, replace(config, mixup=0.4), tmp_path / "mix.pt")
    without = train(frameset, replace(config, mixup=0.0), tmp_path / "plain.pt")
    again = train(frameset, replace(config, mixup=0.0), tmp_path / "plain2.pt")
    weights = [load_checkpoint(r.checkpoint)[0].fc.weight for r in (with_mixup, without, again)]
    assert torch.equal(weights[1], weights[2]) and not torch.equal(weights[0], weights[1])
    assert load_checkpoint(with_mixup.checkpoint)[1].train_args["mixup"] == 0.4


def test_training_refuses_to_overwrite(tmp_path: Path, frameset: FrameSet):
    out = tmp_path / "rage.pt"
    out.write_bytes(b"old model")
    with pytest.raises(OutputExistsError):
        train(frameset, fast_config(epochs=1), out)
    assert out.read_bytes() == b"old model"


class Interrupt(Exception):
    pass


def test_resume_reaches_the_same_weights(tmp_path: Path, frameset: FrameSet):
    config = fast_config(epochs=3, max_frames_per_epoch=48)
    full = train(frameset, config, tmp_path / "full.pt")

    def stop_after_two(metrics):
        if metrics.epoch == 2:
            raise Interrupt

    broken = tmp_path / "broken.pt"
    with pytest.raises(Interrupt):
        train(frameset, config, broken, on_epoch=stop_after_two)
    # The best file or the .last.pt both work; the weights keep the colour handling they were trained with.
    resumed = train(frameset, replace(config, balance_colour=False), broken, resume=broken)
    assert load_checkpoint(broken)[1].balance_colour
    assert any("balance_colour" in w for w in resumed.warnings)
    assert [m.epoch for m in resumed.history] == [1, 2, 3]
    assert resumed.best_epoch == full.best_epoch
    for a, b in zip(full.history, resumed.history):
        assert (a.train_loss, a.val_loss, a.f1) == pytest.approx((b.train_loss, b.val_loss, b.f1), rel=1e-5)
    full_last = torch.load(last_checkpoint_path(tmp_path / "full.pt"), weights_only=True)["state_dict"]
    resumed_last = torch.load(last_checkpoint_path(broken), weights_only=True)["state_dict"]
    for key, value in full_last.items():
        assert torch.allclose(value.float(), resumed_last[key].float(), atol=1e-6, rtol=1e-5), key
    full_best = load_checkpoint(tmp_path / "full.pt")[2]["state_dict"]
    resumed_best = load_checkpoint(broken)[2]["state_dict"]
    assert all(torch.allclose(full_best[k].float(), resumed_best[k].float(), atol=1e-6, rtol=1e-5) for k in full_best)


def test_resuming_a_run_begun_before_mixup_says_the_settings_differ():
    from dataclasses import asdict

    from autotosis.training.train import _resume_config_warnings

    old = {k: v for k, v in asdict(fast_config(mixup=0.0)).items() if k != "mixup"}  # saved before mixup existed
    assert any("mixup" in w for w in _resume_config_warnings(old, fast_config(mixup=0.4)))
    assert _resume_config_warnings(old, fast_config(mixup=0.0)) == []


def test_resume_refuses_another_task_and_missing_state(tmp_path: Path, frameset: FrameSet):
    out = tmp_path / "rage.pt"
    train(frameset, fast_config(epochs=1, max_frames_per_epoch=32), out)
    pog = make_frameset(tmp_path / "pog", task="pog")
    with pytest.raises(ModelError, match="trained for task 'rage', not 'pog'"):
        train(pog, fast_config(epochs=2), tmp_path / "pog.pt", resume=out)
    plain = tmp_path / "plain.pt"
    save_checkpoint(plain, build_model(2), tiny_info())
    with pytest.raises(ModelError, match="nothing to resume"):
        train(frameset, fast_config(epochs=2), tmp_path / "x.pt", resume=plain)


def test_resume_of_a_finished_run_trains_nothing_and_says_so(tmp_path: Path, frameset: FrameSet):
    out = tmp_path / "rage.pt"
    first = train(frameset, fast_config(epochs=1, max_frames_per_epoch=32), out)
    before = out.read_bytes()
    again = train(
        frameset, fast_config(epochs=1, max_frames_per_epoch=32, lr=0.1), out, resume=last_checkpoint_path(out)
    )
    assert again.history == first.history and again.best_epoch == 1
    assert any("already finished 1 of 1 epochs" in w for w in again.warnings)
    assert any("different settings (lr)" in w for w in again.warnings)
    assert out.read_bytes() == before


@pytest.mark.parametrize("freeze, trained", [("layer4", ("layer4.", "fc.")), ("fc", ("fc.",))])
def test_freeze_leaves_the_frozen_backbone_unchanged(tmp_path: Path, frameset: FrameSet, freeze, trained):
    torch.manual_seed(7)
    start = build_model(2)
    start_path = tmp_path / "start.pt"
    save_checkpoint(start_path, start, tiny_info())
    before = state_of(start)
    out = tmp_path / "frozen.pt"
    train(frameset, fast_config(epochs=1, freeze=freeze, weights=str(start_path), max_frames_per_epoch=48), out)
    after = torch.load(last_checkpoint_path(out), weights_only=True)["state_dict"]
    for key, value in before.items():
        if key.startswith(trained):
            continue
        assert torch.equal(after[key], value), f"{key} changed although frozen"  # weights and BatchNorm statistics
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    if freeze == "layer4":
        assert not torch.equal(after["layer4.1.conv2.weight"], before["layer4.1.conv2.weight"])


@pytest.mark.parametrize(
    "layout, hint",
    [
        (((0, 0, 10), (0, 0, 5)), "label some spans"),
        (((0, 10, 0), (0, 12, 2), (0, 9, 1)), "label some spans"),
        (((10, 0, 0), (12, 0, 2), (8, 0, 0)), "add clips without highlights"),
        ((), "label some spans"),
    ],
    ids=["all-ignored", "only-background", "only-highlights", "no-clips"],
)
def test_unusable_frames_raise_data_error_with_a_hint(tmp_path: Path, layout, hint):
    fs = make_frameset(tmp_path / "f", layout)
    with pytest.raises(DataError) as caught:
        train(fs, fast_config(epochs=1), tmp_path / "m.pt")
    assert hint in str(caught.value)
    assert not (tmp_path / "m.pt").exists()


def test_few_clips_validate_on_training_clips_with_a_warning(tmp_path: Path):
    fs = make_frameset(tmp_path / "f", ((10, 14, 0), (0, 24, 0)))
    result = train(fs, fast_config(epochs=1, augment=False, balance=False), tmp_path / "m.pt")
    assert result.train_clips == result.val_clips
    assert any("validating on the training clips" in w for w in result.warnings)
    assert load_checkpoint(tmp_path / "m.pt")[1].threshold == 0.5


def test_bad_config_is_a_usage_error(tmp_path: Path, frameset: FrameSet):
    for bad in (
        fast_config(freeze="layer3"),
        fast_config(select="recall"),
        fast_config(epochs=0),
        fast_config(val_fraction=1.0),
        fast_config(mixup=-0.1),
    ):
        with pytest.raises(UsageError):
            train(frameset, bad, tmp_path / "m.pt")


def test_shard_with_wrong_shape_is_a_data_error(tmp_path: Path, frameset: FrameSet):
    broken = frameset.clips[0]
    np.save(broken.frames_path, np.zeros((3, SIZE, SIZE, 3), np.uint8))  # fewer rows than targets
    with pytest.raises(DataError, match=broken.frames_path.name):
        train(frameset, fast_config(epochs=1), tmp_path / "m.pt")


CHILD = """
import json, sys
from pathlib import Path
sys.path.insert(0, {tests!r})
import torch
from test_train import fast_config, make_frameset
from autotosis.training.train import train
fs = make_frameset(Path({root!r}), ((6, 6, 0), (0, 12, 0), (6, 6, 0)))
result = train(fs, fast_config(epochs=1, batch_size=8, max_frames_per_epoch=16), Path({root!r}) / "m.pt")
print(json.dumps({{"capability": torch.backends.cpu.get_cpu_capability(), "epochs": len(result.history)}}))
"""


def test_training_runs_without_avx2(tmp_path: Path):
    """CI smoke test: ATen's generic CPU kernels (no AVX2), as on an old CPU."""
    pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default", PYTHONPATH=pythonpath)
    code = CHILD.format(tests=str(REPO_ROOT / "tests"), root=str(tmp_path / "child"))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"capability": "DEFAULT", "epochs": 1}


def test_precise_batchnorm_measures_the_statistics_on_clean_pictures_and_keeps_the_weights(frameset: FrameSet):
    dataset = FrameDataset(frameset.clips[:2], SIZE)  # 38 usable frames: one batch
    info = tiny_info()
    torch.manual_seed(0)
    model = build_model(2, "none")
    weights = {k: v.clone() for k, v in model.state_dict().items() if "running" not in k and "num_batches" not in k}
    model.bn1.running_mean.fill_(5.0)  # what a run on augmented, blended pictures might leave
    model.bn1.running_var.fill_(9.0)
    precise_batchnorm(model, dataset, info, "none", torch.Generator().manual_seed(1))
    frames, _ = dataset.__getitems__(np.arange(len(dataset)))
    with torch.no_grad():
        first = model.conv1(to_input_tensor(frames, info))
    assert torch.allclose(model.bn1.running_mean, first.mean(dim=(0, 2, 3)), atol=1e-4)
    assert torch.allclose(model.bn1.running_var, first.var(dim=(0, 2, 3)), rtol=1e-3, atol=1e-5)
    assert model.bn1.momentum == 0.1  # restored for later training
    assert all(torch.equal(model.state_dict()[k], v) for k, v in weights.items())
    # Seeded: the same draw gives the same statistics.
    again = build_model(2, "none")
    again.load_state_dict(model.state_dict())
    precise_batchnorm(again, dataset, info, "none", torch.Generator().manual_seed(1))
    assert torch.equal(again.layer4[1].bn2.running_var, model.layer4[1].bn2.running_var)


def test_precise_batchnorm_leaves_frozen_layers_statistics_alone(frameset: FrameSet):
    dataset = FrameDataset(frameset.clips, SIZE)
    torch.manual_seed(0)
    model = build_model(2, "none")
    frozen = model.layer3[0].bn1.running_mean.clone()
    trained = model.layer4[0].bn1.running_mean.clone()
    precise_batchnorm(model, dataset, tiny_info(), "layer4", torch.Generator().manual_seed(0))
    assert torch.equal(model.layer3[0].bn1.running_mean, frozen)
    assert not torch.equal(model.layer4[0].bn1.running_mean, trained)
