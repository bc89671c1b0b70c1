"""What the model looks at: Grad-CAM heatmaps, and an audit for border shortcuts.

Grad-CAM (Selvaraju et al. 2017) on ``layer4``: the gradient of the class score with
respect to each of layer4's feature maps, averaged over space, weights those maps; the
positive part of the weighted sum, upsampled to the input, is the heatmap.  The class
score is the class's logit minus the mean of the other logits: the only part of the
logits that moves the softmax (for two classes it is exactly the margin).

The audit runs Grad-CAM over the validation frames of a label file (the same clip-grouped
split training used) and reports how much of the heat lies on the outer border of the
input.  A model that learnt a shortcut -- letterbox bars, a channel logo, an overlay that
happens to come with the highlights -- looks at the edges instead of the content.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from autotosis.core.errors import DataError, ModelError, UsageError
from autotosis.core.region import Region, as_region
from autotosis.model.model import ModelInfo, to_input_tensor

DEFAULT_BORDER = 0.10  # outer fraction of each side counted as "border"
DEFAULT_WARN_SHARE = 0.5  # mean Grad-CAM border share at or above this: a shortcut is likely
DEFAULT_WARN_DROP = 0.25  # greying out the border lowers the mean score at least this much: likewise
LAYERS = ("layer2", "layer3", "layer4")
_BATCH = 32


# --------------------------------------------------------------------------- Grad-CAM


def class_index(info: ModelInfo, class_name: str | None) -> int:
    name = class_name or info.positive_class()
    if name not in info.classes:
        raise UsageError(f"class {name!r} is not one of the model's classes ({', '.join(info.classes)})")
    return info.classes.index(name)


def grad_cam(
    model: torch.nn.Module, frames: np.ndarray, info: ModelInfo, target: int, layer: str = "layer4"
) -> tuple[np.ndarray, np.ndarray, int]:
    """(heatmaps float32 (N, S, S) >= 0 over the model input, probabilities (N, C), side of layer4's grid)
    for uint8 frames (N, S, S, 3).  Heatmaps are not normalised (nothing seen = all zeros).
    """
    if layer not in LAYERS:
        raise UsageError(f"unknown layer {layer!r} (one of {', '.join(LAYERS)})")
    was_training = model.training
    model.eval()
    captured: list[torch.Tensor] = []
    hook = getattr(model, layer).register_forward_hook(lambda _module, _inputs, output: captured.append(output))
    try:
        with torch.enable_grad():
            logits = model(to_input_tensor(frames, info))
            features = captured[-1]
            others = [i for i in range(logits.shape[1]) if i != target]
            score = logits[:, target] - logits[:, others].mean(dim=1)
            # Frames are independent in eval mode, so one backward pass serves the whole batch.
            (gradients,) = torch.autograd.grad(score.sum(), features)
        weights = gradients.mean(dim=(2, 3), keepdim=True)
        cam = torch.relu((weights * features).sum(dim=1, keepdim=True)).detach()
        probs = torch.softmax(logits.detach(), dim=1)
    finally:
        hook.remove()
        model.train(was_training)
    return _upsample(cam, frames.shape[1]), probs.numpy().astype(np.float32), int(cam.shape[-1])


def _upsample(grid: torch.Tensor, size: int) -> np.ndarray:
    """(N, 1, g, g) layer4 heat -> (N, size, size), bilinear as Grad-CAM is usually drawn."""
    up = torch.nn.functional.interpolate(grid.float(), size=(size, size), mode="bilinear", align_corners=False)
    return up[:, 0].numpy().astype(np.float32)


def border_mask(size: int, border: float = DEFAULT_BORDER) -> np.ndarray:
    """True on the outer ``border`` fraction of each side of a size x size input."""
    if not 0 < border < 0.5:
        raise UsageError(f"border must be between 0 and 0.5 of the side, not {border}")
    width = max(1, int(round(border * size)))
    mask = np.zeros((size, size), dtype=bool)
    mask[:width], mask[-width:], mask[:, :width], mask[:, -width:] = True, True, True, True
    return mask


def reference_shares(grid: int, size: int, border: float = DEFAULT_BORDER) -> tuple[float, float]:
    """Border shares of two reference heatmaps on layer4's grid: heat spread evenly, and heat
    only on the grid's outer ring of cells.

    At 128x128 layer4 is a 4x4 grid, each cell 32 pixels wide, so even a model that looks
    only at the edges cannot put all its heat into a 13-pixel border; these two numbers
    are the scale a measured share is read on.
    """
    even = torch.ones((1, 1, grid, grid))
    ring = torch.ones((1, 1, grid, grid))
    if grid > 2:
        ring[..., 1:-1, 1:-1] = 0
    shares = border_share(_upsample(torch.cat([even, ring]), size), border)
    return float(shares[0]), float(shares[1])


def border_focus(share: float, even: float, edge: float) -> float:
    """Where ``share`` lies between even spread (0) and edge-only heat (1); NaN when the grid cannot tell."""
    if edge - even < 1e-6:
        return math.nan
    return (share - even) / (edge - even)


def border_share(cams: np.ndarray, border: float = DEFAULT_BORDER) -> np.ndarray:
    """Fraction of each heatmap's mass on the border; NaN for an all-zero heatmap."""
    cams = np.asarray(cams, dtype=np.float64)
    mask = border_mask(cams.shape[-1], border)
    total = cams.sum(axis=(-2, -1))
    on_border = (cams * mask).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, on_border / np.where(total > 0, total, 1.0), np.nan)


# --------------------------------------------------------------------------- one picture


@dataclass(frozen=True)
class Explanation:
    """Grad-CAM of one picture: the heatmap over the model input and what it says."""

    class_name: str
    probability: float
    border_share: float  # NaN when the heatmap is empty
    heatmap: np.ndarray  # float32 (S, S), scaled to 0..1 (all zeros when empty)
    region: Region | None  # where the model input came from in the picture
    border: float = DEFAULT_BORDER
    layer: str = "layer4"
    grid: int = 0  # side of the layer's grid of cells


def model_input(picture: np.ndarray, info: ModelInfo, region: Region | None) -> np.ndarray:
    """Crop ``region`` of a full RGB picture and stretch it to the model's square input.

    The same geometry as scanning (crop in the displayed frame, then a square 'area' scale);
    Pillow's BOX filter is the area average ffmpeg's ``flags=area`` computes.
    """
    from PIL import Image

    from autotosis.core.region import crop_pixels

    height, width = picture.shape[:2]
    if region is not None:
        w, h, x, y = crop_pixels(region, width, height)
        picture = picture[y : y + h, x : x + w]
    size = info.input_size
    return np.asarray(Image.fromarray(np.ascontiguousarray(picture)).resize((size, size), Image.BOX))[None]


def explain_picture(
    model: torch.nn.Module,
    info: ModelInfo,
    picture: np.ndarray,
    *,
    region: Region | None = None,
    class_name: str | None = None,
    border: float = DEFAULT_BORDER,
    layer: str = "layer4",
) -> Explanation:
    """Grad-CAM of one full picture (H, W, 3 uint8, square pixels) through ``region`` of it."""
    if picture.ndim != 3 or picture.shape[2] != 3 or picture.dtype != np.uint8:
        raise DataError(f"a picture must be an RGB uint8 array, got {picture.dtype} {picture.shape}")
    target = class_index(info, class_name)
    cams, probs, grid = grad_cam(model, model_input(picture, info, region), info, target, layer)
    cam = cams[0]
    peak = float(cam.max())
    return Explanation(
        class_name=info.classes[target],
        probability=float(probs[0, target]),
        border_share=float(border_share(cam[None], border)[0]),
        heatmap=(cam / peak if peak > 0 else cam).astype(np.float32),
        region=as_region(region),
        border=border,
        layer=layer,
        grid=grid,
    )


# Colour ramp for the heat: transparent dark blue -> cyan -> yellow -> red.
_RAMP_AT = np.array([0.0, 0.35, 0.7, 1.0])
_RAMP_RGB = np.array([[0, 0, 140], [0, 200, 255], [255, 230, 0], [230, 0, 0]], dtype=np.float64)


def overlay(picture: np.ndarray, explanation: Explanation, *, opacity: float = 0.6) -> np.ndarray:
    """The picture with the heatmap blended over the region the model saw (outlined when cropped)."""
    from PIL import Image, ImageDraw

    from autotosis.core.region import crop_pixels

    height, width = picture.shape[:2]
    x, y, w, h = 0, 0, width, height
    if explanation.region is not None:
        w, h, x, y = crop_pixels(explanation.region, width, height)
    heat = np.asarray(Image.fromarray(explanation.heatmap, mode="F").resize((w, h), Image.BILINEAR), dtype=np.float64)
    heat = np.clip(heat, 0.0, 1.0)
    colour = np.stack([np.interp(heat, _RAMP_AT, _RAMP_RGB[:, c]) for c in range(3)], axis=-1)
    alpha = (opacity * np.sqrt(heat))[..., None]  # faint heat stays visible, the picture shows through
    out = picture.astype(np.float64).copy()
    out[y : y + h, x : x + w] = out[y : y + h, x : x + w] * (1 - alpha) + colour * alpha
    image = Image.fromarray(np.clip(out + 0.5, 0, 255).astype(np.uint8))
    if explanation.region is not None:
        ImageDraw.Draw(image).rectangle(
            [x, y, x + w - 1, y + h - 1], outline=(255, 255, 255), width=max(1, min(width, height) // 200)
        )
    return np.asarray(image)


def read_image(path: Path) -> np.ndarray | None:
    """RGB pixels of an image file, or None when Pillow cannot read it (then it may be a video)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if getattr(image, "n_frames", 1) > 1:
                return None  # an animation: treat like a video
            return np.asarray(image.convert("RGB"))
    except (UnidentifiedImageError, OSError):
        return None


def write_png(path: Path, pixels: np.ndarray, *, force: bool = False) -> None:
    from PIL import Image

    from autotosis.core.fsutil import atomic_path

    with atomic_path(path, force=force) as tmp:
        Image.fromarray(pixels).save(tmp, format="PNG")


# --------------------------------------------------------------------------- audit


@dataclass(frozen=True)
class AuditResult:
    """Where the model looks on the validation frames, measured two ways.

    Grad-CAM says where the heat is; occlusion says what the score depends on: the frames
    are scored again with the border greyed out, and with a centred square of the same
    area greyed out.  Layer4 of a ResNet18 at 128x128 is a 4x4 grid whose every cell sees
    the whole input, so its heatmaps are coarse; occlusion does not have that limit.
    """

    class_name: str
    frames: int  # frames measured
    empty: int  # frames whose heatmap was empty (left out of the Grad-CAM figures)
    val_clips: tuple[str, ...]
    which: str  # which frames were measured
    layer: str
    grid: int  # side of the layer's grid
    border: float
    even_share: float  # border share of evenly spread heat on this grid
    edge_share: float  # border share of heat only on the grid's outer cells
    mean_share: float  # NaN when every heatmap was empty
    median_share: float
    score: float  # mean probability of the class on the frames as they are
    score_border_masked: float
    score_centre_masked: float
    warn_share: float
    warn_drop: float
    validated_on_training: bool

    @property
    def border_drop(self) -> float:
        return self.score - self.score_border_masked

    @property
    def centre_drop(self) -> float:
        return self.score - self.score_centre_masked

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why a shortcut is likely (empty when it is not)."""
        found = []
        if self.border_drop >= self.warn_drop and self.border_drop > self.centre_drop:
            found.append(
                f"greying out the border lowers the score by {self.border_drop:.2f}, more than greying out the centre "
                f"({self.centre_drop:.2f})"
            )
        if not math.isnan(self.mean_share) and self.mean_share >= self.warn_share:
            found.append(f"{self.mean_share:.0%} of the Grad-CAM heat is on the border")
        return tuple(found)

    @property
    def shortcut_likely(self) -> bool:
        return bool(self.reasons)


def masks(size: int, border: float = DEFAULT_BORDER) -> tuple[np.ndarray, np.ndarray]:
    """(border band, centred square of the same area) as boolean size x size masks."""
    band = border_mask(size, border)
    side = int(round(math.sqrt(band.mean()) * size))
    start = (size - side) // 2
    centre = np.zeros_like(band)
    centre[start : start + side, start : start + side] = True
    return band, centre


def _grey_out(frames: np.ndarray, mask: np.ndarray, info: ModelInfo) -> np.ndarray:
    # The normalisation mean: exactly zero input to the network, i.e. "nothing there".
    fill = np.array([round(m * 255) for m in info.mean], dtype=np.uint8)
    out = frames.copy()
    out[:, mask] = fill
    return out


def audit_frames(
    model: torch.nn.Module,
    info: ModelInfo,
    frames: np.ndarray,
    *,
    class_name: str | None = None,
    border: float = DEFAULT_BORDER,
    layer: str = "layer4",
    progress=None,
) -> dict:
    """Per-frame Grad-CAM border shares (NaN where empty) and scores as-is / border masked / centre masked."""
    from autotosis.model.model import predict_probs

    target = class_index(info, class_name)
    band, centre = masks(info.input_size, border)
    shares, plain, no_border, no_centre = [], [], [], []
    grid = 0
    for start in range(0, len(frames), _BATCH):
        batch = np.ascontiguousarray(frames[start : start + _BATCH])
        cams, probs, grid = grad_cam(model, batch, info, target, layer)
        shares.append(border_share(cams, border))
        plain.append(probs[:, target])
        no_border.append(predict_probs(model, _grey_out(batch, band, info), info)[:, target])
        no_centre.append(predict_probs(model, _grey_out(batch, centre, info), info)[:, target])
        if progress is not None:
            progress("explain: audit", min(len(frames), start + _BATCH), len(frames))
    joined = {
        name: np.concatenate(parts) if parts else np.zeros(0)
        for name, parts in (
            ("share", shares),
            ("score", plain),
            ("border_masked", no_border),
            ("centre_masked", no_centre),
        )
    }
    return {**joined, "grid": grid, "class_name": info.classes[target]}


def audit_labels(
    model: torch.nn.Module,
    info: ModelInfo,
    labels_path: Path,
    *,
    frames_dir: Path | None = None,
    fps: float = 4.0,
    band_ms: int = 500,
    class_name: str | None = None,
    border: float = DEFAULT_BORDER,
    layer: str = "layer4",
    warn_share: float = DEFAULT_WARN_SHARE,
    warn_drop: float = DEFAULT_WARN_DROP,
    max_frames: int = 400,
    progress=None,
    model_name: str = "the model",
) -> AuditResult:
    """Audit the validation frames of ``labels_path`` (the split training made: same clips, same seed).

    Labels that speak of other classes than the model's are refused as ``eval`` refuses them:
    a ModelError (exit 5) from ``labels.match_model_classes``, naming ``model_name``.
    """
    from autotosis.core.progress import no_progress
    from autotosis.labels.parse import parse_labels
    from autotosis.labels.values import match_model_classes
    from autotosis.training.dataset import FrameOptions, extract_frames
    from autotosis.training.train import TrainConfig, split_by_clip

    progress = progress or no_progress
    labels = parse_labels(labels_path, check_files=True)
    # The check `eval` makes, with its error (ModelError, exit 5), before any frame is extracted.
    labels = match_model_classes(labels, info.classes, model=model_name, exact=True)
    frameset = extract_frames(
        labels, frames_dir, FrameOptions(fps=fps, size=info.input_size, band_ms=band_ms), progress=progress, prune=False
    )
    if tuple(frameset.classes) != tuple(info.classes):  # the same names in another order: the targets would not match
        raise ModelError(
            f"{model_name} knows the classes {', '.join(info.classes)} in this order, but {labels_path} "
            f"has {', '.join(frameset.classes)}",
            hint="audit a model with the label file it was trained on ('# classes=' in the model's order)",
        )
    defaults = TrainConfig()
    val_fraction = float(info.train_args.get("val_fraction", defaults.val_fraction))
    seed = int(info.train_args.get("seed", defaults.seed))
    train_clips, val_clips = split_by_clip(frameset, val_fraction, seed)
    target = class_index(info, class_name)
    frames, which = _validation_frames(val_clips, target, info.classes[target])
    if len(frames) == 0:
        raise DataError(f"{labels_path}: the validation clips have no usable frames")
    if len(frames) > max_frames:  # evenly spaced, so every clip and span is represented
        frames = frames[np.linspace(0, len(frames) - 1, max_frames).round().astype(int)]
    measured = audit_frames(model, info, frames, class_name=class_name, border=border, layer=layer, progress=progress)
    shares = measured["share"]
    valid = shares[~np.isnan(shares)]
    even, edge = reference_shares(measured["grid"], info.input_size, border)
    return AuditResult(
        class_name=measured["class_name"],
        frames=len(frames),
        empty=int(np.isnan(shares).sum()),
        val_clips=tuple(dict.fromkeys(c.clip_id for c in val_clips)),
        which=which,
        layer=layer,
        grid=measured["grid"],
        border=border,
        even_share=even,
        edge_share=edge,
        mean_share=float(valid.mean()) if len(valid) else math.nan,
        median_share=float(np.median(valid)) if len(valid) else math.nan,
        score=float(measured["score"].mean()),
        score_border_masked=float(measured["border_masked"].mean()),
        score_centre_masked=float(measured["centre_masked"].mean()),
        warn_share=warn_share,
        warn_drop=warn_drop,
        validated_on_training={c.clip_id for c in train_clips} == {c.clip_id for c in val_clips},
    )


def _validation_frames(clips, target: int, name: str) -> tuple[np.ndarray, str]:
    """Frames of ``clips`` labelled ``target``; every labelled frame when there are none."""
    chosen, fallback = [], []
    for clip in clips:
        frames = clip.load_frames()
        chosen.append(frames[clip.targets == target])
        fallback.append(frames[clip.targets >= 0])
    positives = np.concatenate(chosen) if chosen else np.zeros((0,), np.uint8)
    if len(positives):
        return positives, f"validation frames labelled {name!r}"
    everything = np.concatenate(fallback) if fallback else np.zeros((0,), np.uint8)
    return everything, f"all labelled validation frames (none is labelled {name!r})"
