"""Train the ResNet18 classifier on extracted frames (CPU only).

Shaped after torchvision's classification reference (train_one_epoch / evaluate /
checkpoint + resume), trimmed for small hand-labelled data sets:

- validation is split by clip, never by frame (frames of one clip are near-duplicates);
- class-balanced sampling, because highlights are rare;
- light batch-wise augmentation that keeps a face cam recognisable (no flips/rotations);
- every epoch's randomness comes from (seed, epoch), and the last epoch's full state
  goes to ``<out>.last.pt``, so an interrupted run resumed from it ends with exactly
  the weights of an uninterrupted one.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler, WeightedRandomSampler

from autotosis.core.errors import DataError, ModelError, UsageError
from autotosis.core.fsutil import check_writable
from autotosis.core.prefetch import prefetch
from autotosis.model.model import (
    DEFAULT_MEAN,
    DEFAULT_STD,
    ModelInfo,
    build_model,
    load_checkpoint,
    save_checkpoint,
    to_input_tensor,
    torch_threads,
)
from autotosis.training.dataset import ClipFrames, FrameSet, average_hash, counted_mask, near_sources
from autotosis.training.metrics import average_precision, frame_prf

FREEZE_CHOICES = ("none", "layer4", "fc")
SELECT_CHOICES = ("last", "loss", "f1", "precision")
LAST_SUFFIX = ".last.pt"
MIN_CLIPS_FOR_SPLIT = 3
DEFAULT_THRESHOLD = 0.5
THRESHOLD_GRID = tuple(round(0.2 + 0.05 * i, 2) for i in range(13))  # 0.2 .. 0.8: no extreme suggestions
MIN_LR_FRACTION = 0.02  # the schedule ends at 2% of the base rate
WARMUP_FRACTION = 0.1  # ... and starts with a linear warm-up over the first 10% of the steps
# Training length from the data when --epochs is not given: AUTO_PASSES passes over AUTO_REFERENCE_FRAMES
# usable frames (about a dozen clips), growing as frames**AUTO_GROWTH beyond (more clips bring more
# variety, so fewer passes are needed), within these bounds (a few short clips still get enough steps;
# hundreds of clips stay within an hour on two cores).  On the hard benchmark (issue 15) every fold
# model's held-out average precision peaked after 2 of 3 passes and fell after: a longer run learns
# the training streamers, not the highlight.  The fold models of the cross-validation make as many
# passes over their share, so the whole run costs about `folds` times the final fit.
AUTO_PASSES = 2
AUTO_REFERENCE_FRAMES = 2_000
AUTO_GROWTH = 0.75
AUTO_MIN_IMAGES = 4_000
AUTO_MAX_IMAGES = 30_000
AUGMENT_SHIFT = 0.08  # fraction of the side
AUGMENT_SCALE = 0.08
AUGMENT_BRIGHTNESS = 0.2
AUGMENT_CONTRAST = 0.2
# Per-channel gain: the white balance of another camera or room light (a red cast alone is not the highlight).
AUGMENT_COLOUR_CAST = 0.1
# Mixup's Beta(alpha, alpha): how far two pictures of a batch are blended (0: no mixup).
MIXUP_ALPHA = 0.4
# After the last epoch BatchNorm's running statistics are measured again on this many clean training pictures
# (drawn as they come, no augmentation, no mixup: as a scan sees them), PRECISE_BN_BATCH at a time (precise BN):
# the statistics the last steps left behind describe the last few class-balanced, augmented, blended batches.
PRECISE_BN_FRAMES = 512
PRECISE_BN_BATCH = 64
# Config fields a resumed run may change without a warning: threads only changes speed;
# a larger epochs extends the run (the cosine schedule stretches to the new length).
_RESUME_FREE_FIELDS = {"epochs", "threads", "leak_distance", "folds"}
# Leak check: at most this many frames per side are hashed (evenly spread), and frames whose
# 8x8 block means spread less than LEAK_MIN_CONTRAST grey levels (black screens, fades) are
# skipped, since all of them hash alike.  A validation clip is reported when LEAK_CLIP_SHARE of
# its (at least LEAK_MIN_FRAMES) checked frames have a near-duplicate in training: measured on the
# demo's clips, a re-encoded copy of a training clip scores 96% at 2 bits, other clips 0-33%.
LEAK_MAX_FRAMES = 4096
LEAK_MIN_CONTRAST = 6.0
LEAK_CLIP_SHARE = 0.5
LEAK_MIN_FRAMES = 4
LEAK_MAX_SOURCES = 2  # near-duplicates in more training clips than this are a generic picture


@dataclass(frozen=True)
class TrainConfig:
    epochs: int | None = None  # None: set by the data (auto_images)
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    weights: str = "none"  # "none" | "imagenet" | checkpoint path
    freeze: str = "none"  # "none" | "layer4" (train layer4 + fc) | "fc"
    balance: bool = True  # class-balanced sampling over non-ignored frames
    augment: bool = True  # small shift/scale + brightness/contrast jitter
    # Mixup: each step trains on blends of pairs of the batch's pictures, the loss blended alike
    # (less reliance on one confident cue of the training rooms; 0: off).
    mixup: float = MIXUP_ALPHA
    val_fraction: float = 0.25  # fraction of clips held out, grouped by clip_id
    # Which epoch's weights are kept: "last" (the end of the schedule), or the best by validation
    # "loss", "f1" or "precision" (noisy with a few validation clips).
    select: str = "last"
    seed: int = 0
    max_frames_per_epoch: int | None = None
    threads: int | None = None
    # Warn when validation frames have a near-duplicate in training: 8x8 average hashes at most
    # this many bits apart (None: no check).
    leak_distance: int | None = 2
    # Clip-grouped cross-validation before the final fit on every clip (0: one run with a
    # validation split, as before): chooses the threshold and event rules, finds hard negatives.
    folds: int = 3
    # Confident mistakes among the negatives (out-of-fold) are drawn this many times as often in
    # the final fit (1: not at all).
    hard_negatives: float = 3.0
    # Sound as a second input (training/audio.py): "auto" (used when every clip has sound and it
    # helps in cross-validation: the default, BENCHMARKS.md "Sound by default"), "on" (always; an
    # error when a clip has no sound), "off" (never).
    audio: str = "auto"
    # Grey-world colour balance of every picture the model sees (ModelInfo.balance_colour): scores that
    # do not move with a room's tint or a camera's white balance.  Off only for highlights that are a
    # colour change of the whole cropped picture (a red screen flash).
    balance_colour: bool = True
    # BatchNorm statistics measured again on clean training pictures after the last epoch (precise_batchnorm).
    precise_bn: bool = True


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int  # 1-based
    train_loss: float
    val_loss: float
    precision: float
    recall: float
    f1: float
    accuracy: float
    images_per_s: float
    seconds: float
    best: bool
    ap: float = math.nan  # validation average precision


@dataclass(frozen=True)
class TrainResult:
    checkpoint: Path
    best_epoch: int
    history: tuple[EpochMetrics, ...]
    train_clips: tuple[str, ...]
    val_clips: tuple[str, ...]
    warnings: tuple[str, ...]
    epochs: int = 0  # the run's length (set by the data unless --epochs was given)


def last_checkpoint_path(out: Path) -> Path:
    """Where the resumable state of the last epoch goes: ``rage.pt`` -> ``rage.last.pt``."""
    out = Path(out)
    if out.name.endswith(LAST_SUFFIX):
        return out
    return out.with_suffix(LAST_SUFFIX) if out.suffix else out.with_name(out.name + LAST_SUFFIX)


# --------------------------------------------------------------------------- data


def _usable(clip: ClipFrames) -> bool:
    return bool(np.any(counted_mask(clip.targets)))


def _has_positive(clip: ClipFrames) -> bool:
    return bool(np.any(clip.targets > 0))


def _has_negative(clip: ClipFrames) -> bool:
    return bool(np.any(clip.targets == 0))


def splits_for_validation(clips: int, val_fraction: float) -> bool:
    """Whether ``split_by_clip`` holds clips out for validation, given this many usable clips."""
    return clips >= MIN_CLIPS_FOR_SPLIT and val_fraction > 0


def split_by_clip(frameset: FrameSet, val_fraction: float, seed: int) -> tuple[list[ClipFrames], list[ClipFrames]]:
    """(train clips, validation clips), grouped by ``clip_id`` so no clip is on both sides.

    Validation gets at least one clip with highlights and one with background when the
    data allow it, without leaving training short of either.  With fewer than
    ``MIN_CLIPS_FOR_SPLIT`` clips (or val_fraction 0) both lists hold every clip: the
    caller must say that validation scores are then training scores.  Clips without a
    usable frame are left out of both.
    """
    groups: dict[str, list[ClipFrames]] = {}
    for clip in frameset.clips:
        if _usable(clip):
            groups.setdefault(clip.clip_id, []).append(clip)
    ids = sorted(groups)
    if not splits_for_validation(len(ids), val_fraction):
        everything = [clip for clip_id in ids for clip in groups[clip_id]]
        return everything, list(everything)
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    has_pos = {i: any(_has_positive(c) for c in groups[i]) for i in ids}
    has_neg = {i: any(_has_negative(c) for c in groups[i]) for i in ids}
    target = min(len(ids) - 1, max(1, round(val_fraction * len(ids))))
    val: list[str] = []

    def train_keeps_both_without(clip_id: str) -> bool:
        rest = [i for i in ids if i not in val and i != clip_id]
        pos_ok = any(has_pos[i] for i in rest) or not any(has_pos.values())
        neg_ok = any(has_neg[i] for i in rest) or not any(has_neg.values())
        return bool(rest) and pos_ok and neg_ok

    def take_first(wanted: Callable[[str], bool]) -> None:
        for clip_id in order:
            if clip_id not in val and wanted(clip_id) and train_keeps_both_without(clip_id):
                val.append(clip_id)
                return

    take_first(lambda i: has_pos[i])
    if not any(has_neg[i] for i in val):
        take_first(lambda i: has_neg[i])
    for clip_id in order:
        if len(val) >= target:
            break
        if clip_id not in val and train_keeps_both_without(clip_id):
            val.append(clip_id)
    val_set = set(val)
    train_clips = [clip for i in order if i not in val_set for clip in groups[i]]
    val_clips = [clip for i in order if i in val_set for clip in groups[i]]
    return train_clips, val_clips


class FrameDataset(Dataset):
    """Every non-ignored frame of some clips, read row by row from the memory-mapped shards.

    Only an index (clip number, row) and the targets live in RAM.  ``__getitems__`` lets the
    DataLoader fetch a whole batch at once, reading each clip's rows in one sorted slice.
    """

    def __init__(self, clips: Sequence[ClipFrames], size: int, frame_weights: Mapping[str, np.ndarray] | None = None):
        """``frame_weights``: per clip id, a sampling weight for each of the clip's frames (default 1)."""
        self.clips = list(clips)
        self.size = size
        self._frames: list[np.ndarray | None] = [None] * len(self.clips)
        clip_index, rows, targets, weights = [], [], [], []
        for number, clip in enumerate(self.clips):
            self._check_shard(clip)
            keep = np.flatnonzero(counted_mask(clip.targets))
            clip_index.append(np.full(len(keep), number, dtype=np.int64))
            rows.append(keep.astype(np.int64))
            targets.append(clip.targets[keep].astype(np.int64))
            clip_weights = (frame_weights or {}).get(clip.clip_id)
            weights.append(
                np.ones(len(keep)) if clip_weights is None else np.asarray(clip_weights, dtype=np.float64)[keep]
            )
        self.clip_index = np.concatenate(clip_index) if clip_index else np.zeros(0, np.int64)
        self.rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
        self.targets = np.concatenate(targets) if targets else np.zeros(0, np.int64)
        self.weights = np.concatenate(weights) if weights else np.zeros(0)

    def _check_shard(self, clip: ClipFrames) -> None:
        try:
            frames = clip.load_frames()
        except (OSError, ValueError) as exc:
            raise DataError(
                f"{clip.frames_path}: cannot read training frames ({exc})", hint="run `autotosis frames` again"
            ) from exc
        expected = (len(clip.targets), self.size, self.size, 3)
        if frames.shape != expected or frames.dtype != np.uint8:
            raise DataError(
                f"{clip.frames_path}: frames are {frames.dtype} {frames.shape}, expected uint8 {expected}",
                hint="run `autotosis frames` again",
            )

    def __len__(self) -> int:
        return len(self.targets)

    def _clip_frames(self, number: int) -> np.ndarray:
        frames = self._frames[number]
        if frames is None:
            frames = self._frames[number] = self.clips[number].load_frames()
        return frames

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        frames = self._clip_frames(int(self.clip_index[index]))
        return np.array(frames[self.rows[index]]), int(self.targets[index])

    def __getitems__(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch: uint8 frames (B, H, W, 3) and int64 targets (B,)."""
        indices = np.asarray(indices, dtype=np.int64)
        out = np.empty((len(indices), self.size, self.size, 3), dtype=np.uint8)
        numbers = self.clip_index[indices]
        for number in np.unique(numbers):
            where = np.flatnonzero(numbers == number)
            rows = self.rows[indices[where]]
            order = np.argsort(rows, kind="stable")  # sorted rows: sequential reads of the mmap
            out[where[order]] = self._clip_frames(int(number))[rows[order]]
        return torch.from_numpy(out), torch.from_numpy(self.targets[indices])

    def class_counts(self, num_classes: int) -> np.ndarray:
        return np.bincount(self.targets, minlength=num_classes)


def _whole_batch(batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """collate_fn: ``__getitems__`` already returns a finished batch."""
    return batch


def _stream_seed(seed: int, epoch: int, stream: int) -> np.random.SeedSequence:
    """The seed of an independent, reproducible random stream per (seed, epoch, purpose)."""
    return np.random.SeedSequence([seed & 0xFFFFFFFF, epoch, stream])


def _generator(seed: int, epoch: int, stream: int) -> torch.Generator:
    """A torch generator on the stream of (seed, epoch, purpose) (``_stream_seed``)."""
    state = _stream_seed(seed, epoch, stream).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


_SAMPLER_STREAM, _AUGMENT_STREAM, _MIXUP_STREAM, _PRECISE_BN_STREAM = 1, 2, 3, 4


def precise_batchnorm(
    model: torch.nn.Module, dataset: FrameDataset, info: ModelInfo, freeze: str, generator: torch.Generator
) -> None:
    """Measure the running statistics of the trained BatchNorm layers again on clean training pictures.

    Up to PRECISE_BN_FRAMES frames drawn at random (so each batch mixes clips and classes as a video's
    pictures do), preprocessed as for scoring; each layer's statistics become the plain average over the
    batches (momentum None).  Frozen layers keep theirs.  The weights do not change.
    """
    set_train_mode(model, freeze)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm) and m.training]
    if not norms or len(dataset) < 2:
        return
    order = torch.randperm(len(dataset), generator=generator)[:PRECISE_BN_FRAMES].numpy()
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None
    try:
        with torch.no_grad():
            for start in range(0, len(order), PRECISE_BN_BATCH):
                batch = order[start : start + PRECISE_BN_BATCH]
                if len(batch) < 2:  # one picture has no batch statistics
                    break
                frames, _ = dataset.__getitems__(batch)
                model(to_input_tensor(frames, info))
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum


def make_train_loader(
    dataset: FrameDataset, config: TrainConfig, num_classes: int, generator: torch.Generator
) -> DataLoader:
    count = len(dataset)
    samples = min(count, config.max_frames_per_epoch) if config.max_frames_per_epoch else count
    weighted = not np.all(dataset.weights == 1.0)
    if config.balance or weighted:
        frame_weights = dataset.weights
        if config.balance:
            # Every class gets the same share of the draws; hard examples a larger part of their class's.
            per_class = np.bincount(dataset.targets, weights=frame_weights, minlength=num_classes)
            frame_weights = frame_weights / np.maximum(per_class, 1e-12)[dataset.targets]
        if config.max_frames_per_epoch:
            samples = config.max_frames_per_epoch  # with replacement, a cap larger than the data set is fine
        sampler = WeightedRandomSampler(torch.from_numpy(frame_weights), samples, replacement=True, generator=generator)
    else:
        sampler = RandomSampler(dataset, num_samples=samples, generator=generator)
    # A last batch of one frame breaks BatchNorm in training mode; dropping a partial batch
    # loses nothing because every epoch samples afresh.
    drop_last = samples > config.batch_size
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=sampler,
        drop_last=drop_last,
        collate_fn=_whole_batch,
        num_workers=0,
        generator=generator,
    )


def make_eval_loader(dataset: FrameDataset, batch_size: int) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, sampler=SequentialSampler(dataset), collate_fn=_whole_batch, num_workers=0
    )


# --------------------------------------------------------------------------- augmentation


def make_augment(generator: torch.Generator) -> Callable[[torch.Tensor], torch.Tensor]:
    """Batch augmentation on [0, 1] NCHW floats, drawing from ``generator`` only."""

    def augment(batch: torch.Tensor) -> torch.Tensor:
        return augment_batch(batch, generator)

    return augment


def augment_batch(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shift/scale (+-8%), brightness/contrast and colour-cast jitter, one draw per image.

    No flips or rotations: a mirrored or tilted face cam is not what scans will see.
    Memory bandwidth is what costs on a small CPU, so the work is a few whole-batch passes:
    one grid_sample (the sampling grid built by broadcasting, not affine_grid) and one
    fused multiply-add for brightness and contrast.
    """
    n, _, height, width = batch.shape

    def uniform(low: float, high: float) -> torch.Tensor:
        return torch.rand(n, generator=generator) * (high - low) + low

    scale = uniform(1 - AUGMENT_SCALE, 1 + AUGMENT_SCALE)  # >1 zooms out, <1 zooms in
    shift_x = uniform(-2 * AUGMENT_SHIFT, 2 * AUGMENT_SHIFT)  # grid coordinates span 2 per side
    shift_y = uniform(-2 * AUGMENT_SHIFT, 2 * AUGMENT_SHIFT)
    brightness = uniform(1 - AUGMENT_BRIGHTNESS, 1 + AUGMENT_BRIGHTNESS)
    contrast = uniform(1 - AUGMENT_CONTRAST, 1 + AUGMENT_CONTRAST)
    cast = torch.rand(n, 3, generator=generator) * (2 * AUGMENT_COLOUR_CAST) + (1 - AUGMENT_COLOUR_CAST)
    # Pixel centres in grid_sample's [-1, 1] coordinates (align_corners=False).
    xs = (torch.arange(width, dtype=torch.float32) * 2 + 1) / width - 1
    ys = (torch.arange(height, dtype=torch.float32) * 2 + 1) / height - 1
    grid = torch.empty(n, height, width, 2)
    grid[..., 0] = (scale.view(n, 1, 1) * xs.view(1, 1, width) + shift_x.view(n, 1, 1)).expand(n, height, width)
    grid[..., 1] = (scale.view(n, 1, 1) * ys.view(1, height, 1) + shift_y.view(n, 1, 1)).expand(n, height, width)
    moved = F.grid_sample(batch, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    # brightness and colour cast, then contrast around the image mean, as one affine map per
    # image and channel: ((x*b - m*b) * c + m*b) = x*(b*c) + m*b*(1-c), with b per channel
    mean = moved.mean(dim=(1, 2, 3)).view(n, 1)
    channel = brightness.view(n, 1) * cast
    gain = (channel * contrast.view(n, 1)).view(n, 3, 1, 1)
    offset = (mean * channel * (1 - contrast.view(n, 1))).view(n, 3, 1, 1)
    return torch.addcmul(offset, moved, gain).clamp_(0.0, 1.0)


@dataclass
class Mixup:
    """Mixup (Zhang et al., 2018) for one epoch: every batch trains on blends of pairs of its pictures,
    with the loss blended in the same shares.  A model that must give a blend of a highlight and a
    look-alike a blended score leans less on one confident cue of its training rooms; on the hard
    benchmark's thirteen unseen streamers and rooms it raised the mean held-out event F1 from 0.82 to 0.84
    (better on 3, worse on 5, equal on 5; one streamer 0.00 either way: BENCHMARKS.md).

    ``draw`` returns the larger share (the picture whose label counts most) and each picture's partner.
    """

    alpha: float
    rng: np.random.Generator

    def draw(self, batch_size: int) -> tuple[float, torch.Tensor]:
        share = float(self.rng.beta(self.alpha, self.alpha))
        return max(share, 1.0 - share), torch.from_numpy(self.rng.permutation(batch_size))


def make_mixup(config: TrainConfig, epoch: int) -> Mixup | None:
    """The epoch's mixup, from its own reproducible stream (None when ``config.mixup`` is 0)."""
    if config.mixup <= 0:
        return None
    return Mixup(config.mixup, np.random.default_rng(_stream_seed(config.seed, epoch, _MIXUP_STREAM)))


def mixup_loss(model: torch.nn.Module, inputs: torch.Tensor, targets: torch.Tensor, mixup: Mixup) -> torch.Tensor:
    """Cross-entropy of the model on a mixed batch: ``share`` of each picture's own label, the rest its partner's."""
    share, partner = mixup.draw(len(targets))
    logits = model(inputs * share + inputs[partner] * (1.0 - share))
    return share * F.cross_entropy(logits, targets) + (1.0 - share) * F.cross_entropy(logits, targets[partner])


# --------------------------------------------------------------------------- one epoch


def apply_freeze(model: torch.nn.Module, freeze: str) -> None:
    """Turn off gradients outside the trained part ("none": train all)."""
    trained = _trained_prefixes(freeze)
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(trained is None or name.startswith(trained))


def _trained_prefixes(freeze: str) -> tuple[str, ...] | None:
    if freeze == "none":
        return None
    if freeze == "layer4":
        return ("layer4.", "fc.")
    if freeze == "fc":
        return ("fc.",)
    raise UsageError(f"freeze must be one of {', '.join(FREEZE_CHOICES)}, not {freeze!r}")


def set_train_mode(model: torch.nn.Module, freeze: str) -> None:
    """Training mode, except frozen parts stay in eval mode so their BatchNorm statistics do not drift."""
    model.train()
    trained = _trained_prefixes(freeze)
    if trained is None:
        return
    for name, module in model.named_children():
        if not any(prefix.startswith(name + ".") for prefix in trained):
            module.eval()


def schedule_lr(base_lr: float, step: int, total_steps: int) -> float:
    """Learning rate at a global step (one cycle): a linear warm-up over WARMUP_FRACTION of the
    steps, then a cosine down to MIN_LR_FRACTION * base_lr at the last step."""
    warmup = max(1, int(WARMUP_FRACTION * total_steps))
    if step < warmup:
        return base_lr * (0.1 + 0.9 * step / warmup)
    progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
    return base_lr * (MIN_LR_FRACTION + (1 - MIN_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress)))


def auto_images(train_frames: int) -> int:
    """The final fit's step budget set by the data, in images: AUTO_PASSES passes over
    AUTO_REFERENCE_FRAMES frames scaled by (frames / AUTO_REFERENCE_FRAMES) ** AUTO_GROWTH,
    at least AUTO_MIN_IMAGES and at most AUTO_MAX_IMAGES."""
    scaled = AUTO_PASSES * AUTO_REFERENCE_FRAMES * (max(train_frames, 1) / AUTO_REFERENCE_FRAMES) ** AUTO_GROWTH
    return int(min(max(round(scaled), AUTO_MIN_IMAGES), AUTO_MAX_IMAGES))


def run_length(train_frames: int, images: int) -> tuple[int, int | None]:
    """(epochs, frames per epoch or None for all) drawing about ``images`` images from ``train_frames``
    frames: whole epochs, or one shorter epoch when there are more frames than the budget."""
    if images < train_frames:
        return 1, max(2, images)
    return max(1, round(images / max(train_frames, 1))), None


def with_run_length(config: TrainConfig, train_frames: int) -> TrainConfig:
    """``config`` with its length resolved: --epochs as given, else the data's budget (auto_images)."""
    if config.epochs is not None:
        return config
    epochs, per_epoch = run_length(train_frames, auto_images(train_frames))
    return replace(config, epochs=epochs, max_frames_per_epoch=config.max_frames_per_epoch or per_epoch)


def train_one_epoch(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    loader: DataLoader,
    info: ModelInfo,
    *,
    freeze: str = "none",
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None,
    mixup: Mixup | None = None,
    lr_at_step: Callable[[int], float] | None = None,
    first_step: int = 0,
    on_step: Callable[[int, int], None] | None = None,
) -> tuple[float, float]:
    """One pass over ``loader``; returns (mean training loss, images per second incl. data loading).

    The next batch is read, augmented and normalised in a helper thread while the model
    trains on the current one, so the model never waits for data (benchmarks/train.py).
    """
    set_train_mode(model, freeze)
    total_loss, images = 0.0, 0
    steps = len(loader)
    began = time.perf_counter()
    for step, (inputs, targets) in enumerate(_prepared_batches(loader, info, augment)):
        if lr_at_step is not None:
            for group in optimizer.param_groups:
                group["lr"] = lr_at_step(first_step + step)
        loss = F.cross_entropy(model(inputs), targets) if mixup is None else mixup_loss(model, inputs, targets, mixup)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        total_loss += float(loss.detach()) * len(targets)
        images += len(targets)
        if on_step is not None:
            on_step(step + 1, steps)
    seconds = time.perf_counter() - began
    return total_loss / max(images, 1), images / max(seconds, 1e-9)


def _prepared_batches(
    loader: DataLoader, info: ModelInfo, augment: Callable[[torch.Tensor], torch.Tensor] | None
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Model-ready batches from ``loader``, prepared up to two ahead in a helper thread.

    One thread prepares them in order, so the sampler and the augmentation draw from their
    generators exactly as without it (runs stay reproducible and resumable).
    """

    def prepare() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        # Runs in the helper thread: OpenMP's thread count is per thread, so the data work
        # takes one core and leaves the others to the model step.
        torch.set_num_threads(1)
        for frames, targets in loader:
            yield to_input_tensor(frames, info, augment), targets

    return prefetch(prepare(), depth=2)


@dataclass(frozen=True)
class ValidationMetrics:
    """One epoch's validation scores (``evaluate``), as plain Python numbers; stored in the
    checkpoint's ``metrics`` (``to_dict``) and used to select the epoch that is kept."""

    loss: float
    precision: float
    recall: float
    f1: float
    accuracy: float
    ap: float  # average precision
    frames: int | None = None  # validation frames scored (None: nothing was validated)
    positives: int | None = None  # of them, frames of a highlight class
    threshold: float = DEFAULT_THRESHOLD  # binary task: the grid threshold with the best F1
    f1_at_threshold: float | None = None  # ... and that F1 (binary task with positives only)

    def to_dict(self) -> dict[str, Any]:
        """As the checkpoint's ``metrics`` hold them (what is None is left out)."""
        return {name: value for name, value in asdict(self).items() if value is not None}


_NO_VALIDATION = ValidationMetrics(
    loss=math.nan, precision=math.nan, recall=math.nan, f1=math.nan, accuracy=math.nan, ap=math.nan
)


@torch.inference_mode()
def evaluate(model: torch.nn.Module, loader: DataLoader, info: ModelInfo) -> ValidationMetrics:
    """Validation metrics.

    Binary task: precision/recall/F1 of the positive class at argmax (= probability 0.5),
    plus ``threshold``, the grid threshold with the best F1.  Multi-class: macro averages
    over the non-background classes, threshold 0.5.
    """
    model.eval()
    total_loss, probs_parts, target_parts = 0.0, [], []
    for frames, targets in loader:
        logits = model(to_input_tensor(frames, info))
        total_loss += float(F.cross_entropy(logits, targets, reduction="sum"))
        probs_parts.append(torch.softmax(logits, dim=1))
        target_parts.append(targets)
    if not target_parts:
        raise DataError("no validation frames")
    probs = torch.cat(probs_parts).numpy()
    targets = torch.cat(target_parts).numpy()
    predicted = probs.argmax(axis=1)
    scored = (
        [i for i, name in enumerate(info.classes) if name != "background"]
        if len(info.classes) > 2
        else [info.positive_index()]
    )
    # The same metric code `eval` reports (metrics.frame_prf / average_precision).
    per_class = [frame_prf(predicted == c, targets == c) for c in scored]
    positives = int(np.sum(np.isin(targets, scored)))
    threshold, f1_at_threshold = DEFAULT_THRESHOLD, None
    if len(info.classes) == 2 and positives > 0:
        threshold, f1_at_threshold = best_f1_threshold(probs[:, scored[0]], targets == scored[0])
    return ValidationMetrics(
        loss=total_loss / len(targets),
        precision=float(np.mean([m.precision for m in per_class])),
        recall=float(np.mean([m.recall for m in per_class])),
        f1=float(np.mean([m.f1 for m in per_class])),
        accuracy=float(np.mean(predicted == targets)),
        ap=float(np.mean([average_precision(probs[:, c], targets == c) for c in scored])),
        frames=int(len(targets)),
        positives=positives,
        threshold=threshold,
        f1_at_threshold=f1_at_threshold,
    )


def best_f1_threshold(scores: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """(threshold, F1) with the best F1 on THRESHOLD_GRID; ties go to the threshold nearest 0.5."""
    best = (DEFAULT_THRESHOLD, -1.0)
    for threshold in sorted(THRESHOLD_GRID, key=lambda t: abs(t - DEFAULT_THRESHOLD)):
        f1 = frame_prf(scores >= threshold, actual).f1
        if f1 > best[1]:
            best = (threshold, f1)
    return float(best[0]), float(best[1])


def _selection_score(metrics: ValidationMetrics, select: str) -> tuple[float, ...]:
    if select == "last":
        return (0.0,)  # every epoch replaces the one before: the end of the schedule is kept
    if select == "loss":
        return (-metrics.loss, metrics.ap)
    if select == "precision":
        return (metrics.precision, metrics.f1, -metrics.loss)
    return (metrics.f1, metrics.precision, -metrics.loss)


# --------------------------------------------------------------------------- the run


@dataclass
class _RunState:
    """What survives an interruption (stored in ``<out>.last.pt`` under "resume")."""

    next_epoch: int = 0
    best_epoch: int = 0
    best_score: tuple[float, ...] | None = None
    history: list[EpochMetrics] | None = None
    config: dict | None = None
    split: tuple[tuple[str, ...], tuple[str, ...]] = ((), ())
    extra: dict | None = None  # the caller's run_state

    def to_dict(self) -> dict[str, Any]:
        return {
            "next_epoch": self.next_epoch,
            "best_epoch": self.best_epoch,
            "best_score": list(self.best_score) if self.best_score is not None else None,
            "history": [asdict(m) for m in self.history or []],
            "config": dict(self.config or {}),
            "train_clips": list(self.split[0]),
            "val_clips": list(self.split[1]),
            "extra": dict(self.extra or {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _RunState:
        names = {f.name for f in fields(EpochMetrics)}
        return cls(
            next_epoch=int(data["next_epoch"]),
            best_epoch=int(data["best_epoch"]),
            best_score=tuple(float(v) for v in data["best_score"]) if data.get("best_score") is not None else None,
            history=[EpochMetrics(**{k: v for k, v in m.items() if k in names}) for m in data.get("history", [])],
            config=dict(data.get("config") or {}),
            split=(tuple(data.get("train_clips", ())), tuple(data.get("val_clips", ()))),
            extra=dict(data.get("extra") or {}),
        )


@dataclass(frozen=True)
class LeakedClip:
    name: str  # the validation clip
    duplicates: int  # its checked frames with a near-duplicate in training
    checked: int
    like: str  # the training clip most of them resemble


@dataclass(frozen=True)
class LeakReport:
    """Validation frames with a near-duplicate among the training frames (8x8 average hash)."""

    checked: int  # validation frames hashed (featureless ones left out)
    duplicates: int
    distance: int
    leaked: tuple[LeakedClip, ...]  # validation clips that are mostly near-duplicates: the warning

    @property
    def share(self) -> float:
        return self.duplicates / self.checked if self.checked else 0.0

    def message(self) -> str:
        shown = "; ".join(f"{c.name}: {c.duplicates} of {c.checked} frames look like {c.like}" for c in self.leaked)
        return (
            f"possible leak: validation clips whose frames are near-duplicates of training frames (8x8 average hash "
            f"within {self.distance} bits): {shown}. The same footage on both sides makes validation scores "
            "optimistic: remove copies and overlapping clips, or file them as one clip/scene "
            "(--leak-distance sets the bits; --no-leak-check turns this off)"
        )


def _hash_clips(clips: Sequence[ClipFrames], limit: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of up to ``limit`` labelled frames, evenly spread over ``clips``, and each one's clip number."""
    rows = [(number, row) for number, clip in enumerate(clips) for row in np.flatnonzero(counted_mask(clip.targets))]
    if len(rows) > limit:
        rows = [rows[i] for i in np.linspace(0, len(rows) - 1, limit).astype(int)]
    hashes, owners = [], []
    for number in sorted({n for n, _ in rows}):
        picked = np.array([r for n, r in rows if n == number], dtype=np.int64)
        frame_hashes, contrast = average_hash(np.asarray(clips[number].load_frames()[picked]))
        keep = contrast >= LEAK_MIN_CONTRAST
        hashes.append(frame_hashes[keep])
        owners.append(np.full(int(keep.sum()), number, dtype=np.int64))
    if not hashes:
        return np.zeros(0, np.uint64), np.zeros(0, np.int64)
    return np.concatenate(hashes), np.concatenate(owners)


def check_leaks(
    train_clips: Sequence[ClipFrames], val_clips: Sequence[ClipFrames], distance: int, limit: int = LEAK_MAX_FRAMES
) -> LeakReport:
    """Near-duplicates of training frames among the validation frames, counted per validation clip.

    A clip is reported when at least LEAK_CLIP_SHARE of its frames look like frames of one or
    two training clips only: a copy or an overlapping cut of training footage.  A picture found
    in many training clips (a title screen, a static overlay) is generic, not a leak of one clip;
    scattered look-alikes (the same room, a calm stretch) stay below the share and are only counted.
    """
    train_hashes, train_owner = _hash_clips(train_clips, limit)
    val_hashes, val_owner = _hash_clips(val_clips, limit)
    sources, like = near_sources(val_hashes, train_hashes, train_owner, distance)
    close = sources > 0
    specific = close & (sources <= LEAK_MAX_SOURCES)
    leaked = []
    for number in np.unique(val_owner):
        mine = val_owner == number
        hits = specific & mine
        if mine.sum() >= LEAK_MIN_FRAMES and hits.sum() >= LEAK_CLIP_SHARE * mine.sum():
            most = int(np.bincount(like[hits]).argmax())
            leaked.append(
                LeakedClip(val_clips[number].clip.name, int(hits.sum()), int(mine.sum()), train_clips[most].clip.name)
            )
    return LeakReport(checked=len(val_hashes), duplicates=int(close.sum()), distance=distance, leaked=tuple(leaked))


def _check_config(config: TrainConfig) -> None:
    if config.epochs is not None and config.epochs < 1:
        raise UsageError(f"epochs must be at least 1, not {config.epochs}")
    if config.folds == 1 or config.folds < 0:
        raise UsageError(f"folds must be 0 (no cross-validation) or at least 2, not {config.folds}")
    if not config.hard_negatives >= 1:
        raise UsageError(f"hard_negatives must be at least 1 (1: no oversampling), not {config.hard_negatives}")
    if not 0 <= config.mixup < math.inf:
        raise UsageError(f"mixup must be 0 (off) or a positive Beta parameter, not {config.mixup}")
    if config.audio not in ("auto", "on", "off"):
        raise UsageError(f"audio must be auto, on or off, not {config.audio!r}")
    if config.batch_size < 2:
        raise UsageError(f"batch size must be at least 2 (BatchNorm needs 2 frames), not {config.batch_size}")
    if config.lr <= 0:
        raise UsageError(f"learning rate must be positive, not {config.lr}")
    if not 0 <= config.val_fraction < 1:
        raise UsageError(f"val_fraction must be in [0, 1), not {config.val_fraction}")
    if config.freeze not in FREEZE_CHOICES:
        raise UsageError(f"freeze must be one of {', '.join(FREEZE_CHOICES)}, not {config.freeze!r}")
    if config.select not in SELECT_CHOICES:
        raise UsageError(f"select must be one of {', '.join(SELECT_CHOICES)}, not {config.select!r}")
    if config.max_frames_per_epoch is not None and config.max_frames_per_epoch < 2:
        raise UsageError(f"max_frames_per_epoch must be at least 2, not {config.max_frames_per_epoch}")
    if config.leak_distance is not None and not 0 <= config.leak_distance <= 64:
        raise UsageError(f"leak_distance must be between 0 and 64 bits, not {config.leak_distance}")
    if config.threads is not None and config.threads < 1:
        raise UsageError(f"threads must be at least 1, not {config.threads}")


def _check_training_classes(dataset: FrameDataset, classes: tuple[str, ...]) -> None:
    if len(dataset) == 0:
        raise DataError(
            "no usable training frames: every frame is ignored or no clips were given",
            hint="label some spans, and list clips without highlights too",
        )
    counts = dataset.class_counts(len(classes))
    if counts[0] == 0:
        raise DataError(
            f"every training frame is a highlight ({', '.join(classes[1:])}): the model would never see background",
            hint="add clips without highlights (lines with no spans)",
        )
    if np.count_nonzero(counts[1:]) == 0:
        raise DataError(
            "no training frame is a highlight: every labelled frame is background",
            hint="label some spans (the highlight moments) in the label file",
        )


class Resumed(NamedTuple):
    """The training state a run continues from (``_load_resume``)."""

    raw: dict  # the checkpoint dict: weights, "optimizer", "rng", "resume" (_RunState.to_dict)
    info: ModelInfo
    path: Path  # the file it came from


def _load_resume(resume: Path, task: str) -> Resumed:
    """The raw training state to continue from: ``resume`` itself or the ``.last.pt`` beside it."""
    candidates = [Path(resume)]
    if not Path(resume).name.endswith(LAST_SUFFIX):
        candidates.insert(0, last_checkpoint_path(Path(resume)))
    for candidate in candidates:
        if candidate.exists():
            _, info, raw = load_checkpoint(candidate, expect_task=task)
            if isinstance(raw.get("resume"), dict) and "optimizer" in raw:
                return Resumed(raw, info, candidate)
    names = " or ".join(str(c) for c in candidates)
    raise ModelError(
        f"nothing to resume: {names} holds no training state",
        hint=f"resume from the {LAST_SUFFIX} file written next to the checkpoint by `autotosis train`",
    )


def train(
    frameset: FrameSet,
    config: TrainConfig,
    out: Path,
    *,
    resume: Path | None = None,
    force: bool = False,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    split: tuple[Sequence[ClipFrames], Sequence[ClipFrames]] | None = None,
    frame_weights: Mapping[str, np.ndarray] | None = None,
    calibration: Mapping[str, Any] | None = None,
    run_state: Mapping[str, Any] | None = None,
    audio: Mapping[str, Any] | None = None,
    score_epochs: bool = True,
) -> TrainResult:
    """Train, keep the selected epoch in ``out`` and the last epoch's state in ``<out>.last.pt``.

    ``split``: (training clips, validation clips) instead of ``split_by_clip``; an empty
    validation list trains on every given clip without validating (the final fit after
    cross-validation).  ``score_epochs=False``: no epoch scores the validation clips (the caller
    scores them once after the run: cross-validation's out-of-fold pass); they still take part in
    the leak check.  ``frame_weights``: sampling weights per clip id (hard negatives).
    ``calibration``: event rules chosen by cross-validation, stored in the checkpoint
    (``info.events``, its threshold as ``info.threshold``).  ``run_state``: extra JSON-ready
    data kept in the resume state, so a resumed run can be rebuilt exactly.  ``audio``: the learned
    combiner of picture and sound (``ModelInfo.audio``; training/audio.py), stored in the checkpoint.
    """
    _check_config(config)
    out = Path(out)
    last_path = last_checkpoint_path(out)
    warnings: list[str] = []
    resumed = _load_resume(resume, frameset.task) if resume is not None else None
    if resumed is None or resumed.path.resolve() != last_path.resolve():
        # Resuming rewrites the run's own files; anything else must not replace a user's file.
        check_writable(out, force)
        check_writable(last_path, force)
    if resumed is not None:
        if resumed.info.classes != frameset.classes:
            raise ModelError(
                f"{resumed.path}: classes {list(resumed.info.classes)} differ from the label file's "
                f"{list(frameset.classes)}"
            )
        if config.balance_colour != resumed.info.balance_colour:
            # The weights were trained on pictures balanced (or not): a resumed run goes on as they were.
            warnings.append(f"resuming keeps balance_colour={resumed.info.balance_colour}, as the weights were trained")
            config = replace(config, balance_colour=resumed.info.balance_colour)
        warnings += _resume_config_warnings(resumed.raw["resume"].get("config") or {}, config)

    with torch_threads(config.threads):
        if split is None:
            train_clips, val_clips = split_by_clip(frameset, config.val_fraction, config.seed)
        else:
            train_clips, val_clips = [c for c in split[0] if _usable(c)], [c for c in split[1] if _usable(c)]
        train_ids = tuple(dict.fromkeys(c.clip_id for c in train_clips))
        val_ids = tuple(dict.fromkeys(c.clip_id for c in val_clips))
        validating = bool(val_ids)
        validating_on_training = validating and set(train_ids) == set(val_ids)
        if validating_on_training and train_ids:
            why = (
                f"only {len(train_ids)} usable clip(s)" if len(train_ids) < MIN_CLIPS_FOR_SPLIT else "val_fraction is 0"
            )
            warnings.append(f"{why}: validating on the training clips, so validation scores are optimistic")
        train_set = FrameDataset(train_clips, frameset.size, frame_weights)
        _check_training_classes(train_set, frameset.classes)
        counts = train_set.class_counts(len(frameset.classes))
        missing = [name for name, count in zip(frameset.classes, counts) if count == 0]
        if missing:
            warnings.append(f"no training frame of class {', '.join(missing)}: the model cannot learn to find it")
        val_set = FrameDataset(val_clips, frameset.size) if validating else None
        leak = None
        if config.leak_distance is not None and validating and not validating_on_training:
            leak = check_leaks(train_clips, val_clips, config.leak_distance)
            if leak.leaked:
                warnings.append(leak.message())
        if val_set is not None and not np.any(np.isin(val_set.targets, np.arange(1, len(frameset.classes)))):
            warnings.append("no validation clip has a highlight: validation precision/recall/F1 say nothing")

        rules = dict(calibration or {})
        threshold = float(rules["threshold"]) if "threshold" in rules else DEFAULT_THRESHOLD
        config = with_run_length(config, len(train_set))
        epochs = int(config.epochs or 1)
        info = ModelInfo(
            task=frameset.task,
            classes=tuple(frameset.classes),
            input_size=frameset.size,
            mean=DEFAULT_MEAN,
            std=DEFAULT_STD,
            crop=frameset.crop,
            threshold=threshold,
            train_args={**asdict(config), "epochs": epochs},
            crop_borders=frameset.crop_borders,
            events=rules,
            audio=dict(audio or {}),
            balance_colour=config.balance_colour,
        )
        torch.manual_seed(config.seed)  # the random init of "none" and of a replaced head
        model = build_model(len(info.classes), "none" if resumed else config.weights)
        if resumed:
            model.load_state_dict(resumed.raw["state_dict"])
        apply_freeze(model, config.freeze)
        optimizer = torch.optim.AdamW(
            [p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=config.weight_decay
        )
        state = _RunState(history=[], config=asdict(config), split=(train_ids, val_ids), extra=dict(run_state or {}))
        if resumed:
            try:
                optimizer.load_state_dict(resumed.raw["optimizer"])
            except (ValueError, KeyError) as exc:
                raise ModelError(
                    f"{resumed.path}: optimizer state does not fit (was --freeze changed?): {exc}"
                ) from exc
            state = _RunState.from_dict(resumed.raw["resume"])
            state.config = asdict(config)
            if state.split != (train_ids, val_ids):
                warnings.append(
                    "the clips changed since the interrupted run: training and validation clips differ from its split"
                )
                state.split = (train_ids, val_ids)
            if "rng" in resumed.raw:
                torch.set_rng_state(resumed.raw["rng"])

        scored = val_set is not None and score_epochs
        eval_loader = make_eval_loader(val_set, max(config.batch_size, 64)) if scored else None
        steps_per_epoch = len(make_train_loader(train_set, config, len(info.classes), torch.Generator()))
        total_steps = steps_per_epoch * epochs
        wrote_out = False
        if state.next_epoch >= epochs:
            warnings.append(f"nothing to resume: the run already finished {state.next_epoch} of {epochs} epochs")
        for epoch in range(state.next_epoch, epochs):
            began = time.perf_counter()
            loader = make_train_loader(
                train_set, config, len(info.classes), _generator(config.seed, epoch, _SAMPLER_STREAM)
            )
            augment = make_augment(_generator(config.seed, epoch, _AUGMENT_STREAM)) if config.augment else None
            train_loss, images_per_s = train_one_epoch(
                model,
                optimizer,
                loader,
                info,
                freeze=config.freeze,
                augment=augment,
                mixup=make_mixup(config, epoch),
                lr_at_step=lambda step: schedule_lr(config.lr, step, total_steps),
                first_step=epoch * steps_per_epoch,
                on_step=on_step,
            )
            if epoch == epochs - 1 and config.precise_bn:
                precise_batchnorm(
                    model, train_set, info, config.freeze, _generator(config.seed, epoch, _PRECISE_BN_STREAM)
                )
            metrics = evaluate(model, eval_loader, info) if eval_loader is not None else _NO_VALIDATION
            score = _selection_score(metrics, config.select) if eval_loader is not None else (0.0,)
            is_best = (
                state.best_score is None or score > state.best_score or config.select == "last" or eval_loader is None
            )
            epoch_metrics = EpochMetrics(
                epoch=epoch + 1,
                train_loss=float(train_loss),
                val_loss=float(metrics.loss),
                precision=metrics.precision,
                recall=metrics.recall,
                f1=metrics.f1,
                accuracy=metrics.accuracy,
                images_per_s=float(images_per_s),
                seconds=time.perf_counter() - began,
                best=is_best,
                ap=float(metrics.ap),
            )
            if calibration:
                chosen_threshold = threshold
            elif validating and not validating_on_training:
                chosen_threshold = float(metrics.threshold)
            else:
                chosen_threshold = DEFAULT_THRESHOLD
            validated_on = (
                "held-out clips"
                if validating and not validating_on_training
                else ("training clips" if validating else "nothing (final fit on every clip)")
            )
            epoch_info = replace(
                info,
                epoch=epoch + 1,
                threshold=chosen_threshold,
                metrics={
                    **(metrics.to_dict() if validating else {}),
                    "validated_on": validated_on,
                    **({"near_duplicate_val_share": leak.share} if leak is not None else {}),
                    "train_clips": len(train_ids),
                    "val_clips": len(val_ids),
                },
            )
            if is_best:
                state.best_score, state.best_epoch = score, epoch + 1
                # The first write honours --force; later ones replace the file this run wrote.
                save_checkpoint(out, model, epoch_info, force=force or wrote_out or resumed is not None)
                wrote_out = True
            state.history.append(epoch_metrics)
            state.next_epoch = epoch + 1
            save_checkpoint(
                last_path,
                model,
                epoch_info,
                force=True,
                extra={
                    "resume": state.to_dict(),
                    "optimizer": optimizer.state_dict(),
                    "rng": torch.get_rng_state(),
                    "best_checkpoint": str(out.name),
                },
            )
            if on_epoch is not None:
                on_epoch(epoch_metrics)

    return TrainResult(
        checkpoint=out,
        best_epoch=state.best_epoch,
        history=tuple(state.history or ()),
        train_clips=train_ids,
        val_clips=val_ids,
        warnings=tuple(warnings),
        epochs=epochs,
    )


def _resume_config_warnings(saved: dict, config: TrainConfig) -> list[str]:
    current = asdict(config)
    if saved:
        saved = {"mixup": 0.0, **saved}  # runs begun before mixup existed trained without it
    changed = sorted(k for k in current if k not in _RESUME_FREE_FIELDS and k in saved and saved[k] != current[k])
    if not changed:
        return []
    return [
        f"resuming with different settings ({', '.join(changed)}): the result will differ from an uninterrupted run"
    ]
