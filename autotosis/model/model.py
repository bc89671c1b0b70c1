"""The classifier: a torchvision ResNet18, its checkpoint format and its input pipeline.

A checkpoint is a plain dict loaded with ``torch.load(..., weights_only=True)``::

    {"format": "autotosis-checkpoint/1", "info": {...ModelInfo...}, "state_dict": {...}, **extra}

``to_input_tensor`` is the single place where frames become model input, so training,
scanning and evaluation can never disagree about scaling, normalisation or layout.
"""

from __future__ import annotations

import contextlib
import io
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torchvision

from autotosis.core.errors import DataError, ModelError
from autotosis.core.fsutil import atomic_path
from autotosis.model.info import (  # noqa: F401 - the metadata's home; re-exported for the code that builds models
    CHECKPOINT_FORMAT,
    DEFAULT_MEAN,
    DEFAULT_STD,
    SUPPORTED_ARCHS,
    TRAIN_HINT,
    ModelInfo,
    check_format,
    checked_info,
    is_onnx_file,
    model_fingerprint,
)

_FEATURES = 512  # width of resnet18's pooled features (the input of fc)
BALANCE_EPS = 1.0 / 255  # keeps balance_colour finite on a channel that is black in the whole picture
_PREDICT_CHUNK = 256  # frames per forward pass in predict_probs: bounds memory for big batches

# --------------------------------------------------------------------------- building


def imagenet_weights_path() -> Path:
    """Where torchvision keeps its cached ResNet18 ImageNet weights (never downloaded here)."""
    file_name = Path(torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url).name
    return Path(torch.hub.get_dir()) / "checkpoints" / file_name


def _bare_resnet18(num_classes: int) -> torch.nn.Module:
    model = torchvision.models.resnet18(weights=None)
    model.fc = torch.nn.Linear(_FEATURES, num_classes)
    return model


def build_model(num_classes: int, weights: str = "none") -> torch.nn.Module:
    """A ResNet18 with a ``num_classes`` head, initialised from ``weights``.

    ``weights`` is "none" (random init from torch's global RNG), "imagenet" (torchvision's
    cached file only) or the path of one of our checkpoints / a plain resnet18 state_dict.
    A head whose size differs from ``num_classes`` is re-initialised, the backbone kept.
    """
    if num_classes < 2:
        raise ModelError(f"a classifier needs at least 2 classes, got {num_classes}")
    model = _bare_resnet18(num_classes)
    if weights == "none":
        pass
    elif weights == "imagenet":
        path = imagenet_weights_path()
        if not path.is_file():
            url = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.url
            raise ModelError(
                f"ImageNet weights are not in the torch hub cache: put {path.name} at {path}",
                hint=f"download {url} on a machine with internet access (nothing is downloaded here), "
                "or use --weights none",
            )
        _load_backbone(model, _read_state_dict_file(path), path)
    else:
        path = Path(weights)
        if not path.is_file():
            raise ModelError(f"--weights must be none, imagenet or a checkpoint file; {weights!r} is none of these")
        _load_backbone(model, _read_state_dict_file(path), path)
    return model.to(memory_format=torch.channels_last)


def _read_state_dict_file(path: Path) -> dict[str, torch.Tensor]:
    """The weights inside one of our checkpoints or a plain state_dict file."""
    raw = _torch_load(path)
    if isinstance(raw, dict) and "format" in raw:
        check_format(raw, path)
        state = raw.get("state_dict")
    else:
        state = raw
    if not isinstance(state, dict) or "conv1.weight" not in state:
        raise ModelError(
            f"{path}: not a ResNet18 state_dict or autotosis checkpoint",
            hint="use --weights none, imagenet, or a checkpoint from `autotosis train`",
        )
    return state


def _load_backbone(model: torch.nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """Copy every weight that fits; keep our freshly initialised fc when the class count differs."""
    own = model.state_dict()
    fc_fits = all(key in state and state[key].shape == own[key].shape for key in ("fc.weight", "fc.bias"))
    wanted = {k: v for k, v in state.items() if fc_fits or not k.startswith("fc.")}
    try:
        missing, unexpected = model.load_state_dict(wanted, strict=False)
    except RuntimeError as exc:
        raise ModelError(f"{source}: weights do not fit a ResNet18 ({_first_line(exc)})") from exc
    missing = [k for k in missing if not k.startswith("fc.")]
    if missing or unexpected:
        raise ModelError(
            f"{source}: weights do not fit a ResNet18 (missing {missing[:3]}, unexpected {list(unexpected)[:3]})"
        )


# --------------------------------------------------------------------------- checkpoints


def save_checkpoint(
    path: Path, model: torch.nn.Module, info: ModelInfo, *, extra: dict | None = None, force: bool = False
) -> None:
    """Write model + metadata atomically; ``extra`` (resume state) is stored at the top level."""
    payload: dict[str, Any] = {
        "format": CHECKPOINT_FORMAT,
        "info": info.to_dict(),
        "state_dict": _contiguous_state(model),
    }
    for key, value in (extra or {}).items():
        if key in payload:
            raise ValueError(f"extra key {key!r} would replace the checkpoint's own {key!r}")
        payload[key] = value
    # Serialise in memory first: torch.save reports a full disk as a RuntimeError, a plain
    # write as the OSError that atomic_path turns into a one-line error.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(Path(path), force=force) as tmp:
        tmp.write_bytes(buffer.getbuffer())


def _contiguous_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # channels_last weights are stored in the standard layout so any ResNet18 loader can read them.
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()}


def load_checkpoint(path: Path, *, expect_task: str | None = None) -> tuple[torch.nn.Module, ModelInfo, dict]:
    """(model in eval mode, its metadata, the raw checkpoint dict for resuming).

    For what needs the trainable network (training, gradients, export); scoring goes through
    ``predictor.load_predictor``, which takes an .onnx export too, and metadata alone through
    ``predictor.read_model_info``.
    """
    path = Path(path)
    raw = _torch_load(path)
    info = checked_info(raw, path, expect_task)
    model = _bare_resnet18(len(info.classes))
    try:
        model.load_state_dict(raw["state_dict"])
    except RuntimeError as exc:
        raise ModelError(
            f"{path}: weights do not match the stored metadata ({_first_line(exc)})", hint=TRAIN_HINT
        ) from exc
    model = model.to(memory_format=torch.channels_last)
    model.eval()
    return model, info, raw


def read_checkpoint_info(path: Path, *, expect_task: str | None = None) -> ModelInfo:
    """A checkpoint's metadata, checked as ``load_checkpoint`` checks it, without building the network."""
    path = Path(path)
    return checked_info(_torch_load(path), path, expect_task)


def _torch_load(path: Path) -> Any:
    """torch.load with weights_only=True, every failure turned into a ModelError."""
    if not path.exists():
        raise ModelError(f"{path}: no such checkpoint", hint=TRAIN_HINT)
    if not path.is_file():
        raise ModelError(f"{path}: is not a file", hint=TRAIN_HINT)
    if path.stat().st_size == 0:
        raise ModelError(f"{path}: is not an autotosis checkpoint: the file is empty (0 bytes)", hint=TRAIN_HINT)
    if is_onnx_file(path):
        raise ModelError(
            f"{path}: is an ONNX model (from `autotosis export-onnx`); this command needs the .pt checkpoint "
            "it was exported from",
            hint="train (--weights, --resume), explain and export-onnx need the .pt file; "
            "the commands that score video take either",
        )
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # weights_only refuses arbitrary Python objects: loading them could run code.
        if "weights only" in str(exc).lower():
            raise ModelError(
                f"{path}: is not an autotosis checkpoint (it holds Python objects that are not loaded, for safety)",
                hint=TRAIN_HINT,
            ) from exc
        raise ModelError(
            f"{path}: is not an autotosis checkpoint (not a torch file, or damaged)", hint=TRAIN_HINT
        ) from exc
    except (
        RuntimeError,
        EOFError,
        ValueError,
        OSError,
        AttributeError,
        ImportError,
        KeyError,
        IndexError,
        TypeError,
    ) as exc:
        raise ModelError(
            f"{path}: is not an autotosis checkpoint (not a torch file, or damaged: {_first_line(exc)})",
            hint=TRAIN_HINT,
        ) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


@contextlib.contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Run the block with torch's intra-op threads set to ``threads`` (None: left as they are), restored after.

    The one way training (``--threads``) and scanning (few threads, so inference does not crowd
    out the decoder) set them; torch's count is process-wide.
    """
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# --------------------------------------------------------------------------- input pipeline

Augment = Callable[[torch.Tensor], torch.Tensor]


def to_input_tensor(frames: np.ndarray | torch.Tensor, info: ModelInfo, augment: Augment | None = None) -> torch.Tensor:
    """uint8 NHWC RGB frames -> float32 NCHW normalised with ``info.mean``/``info.std``.

    The result is channels_last in memory (NHWC bytes, NCHW shape): a permute, no copy,
    and the layout oneDNN's CPU convolutions prefer.  ``augment`` (training only) sees
    the batch scaled to [0, 1], before normalisation.
    """
    batch = _as_uint8_tensor(frames)
    if batch.ndim != 4 or batch.shape[-1] != 3:
        raise DataError(f"frames must be an (N, H, W, 3) RGB array, got shape {tuple(batch.shape)}")
    size = info.input_size
    if batch.shape[1] != size or batch.shape[2] != size:
        raise DataError(
            f"frames are {batch.shape[2]}x{batch.shape[1]}, the model expects {size}x{size}",
            hint="extract frames at the model's input size",
        )
    unit = batch.permute(0, 3, 1, 2).float().div_(255.0)
    if augment is not None:
        unit = augment(unit).contiguous(memory_format=torch.channels_last)
    if info.balance_colour:
        unit = balanced_colour(unit)
    mean = torch.tensor(info.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(info.std, dtype=torch.float32).view(1, 3, 1, 1)
    return unit.sub_(mean).div_(std)


def balanced_colour(unit: torch.Tensor) -> torch.Tensor:
    """Grey-world colour balance of an (N, 3, H, W) batch in [0, 1]: each picture's channels scaled to
    their common mean level (brightness kept; a flat black picture stays black)."""
    channel = unit.mean(dim=(2, 3), keepdim=True)
    level = channel.mean(dim=1, keepdim=True)
    return unit * (level + BALANCE_EPS) / (channel + BALANCE_EPS)


def _as_uint8_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(frames, torch.Tensor):
        if frames.dtype != torch.uint8:
            raise DataError(f"frames must be uint8, got {frames.dtype}")
        return frames
    array = np.asarray(frames)
    if array.dtype != np.uint8:
        raise DataError(f"frames must be uint8, got {array.dtype}")
    if not array.flags.writeable or not array.flags.c_contiguous:
        array = np.array(array, copy=True, order="C")  # memory-mapped / read-only / strided input
    return torch.from_numpy(array)


@torch.inference_mode()
def predict_probs(model: torch.nn.Module, frames: np.ndarray, info: ModelInfo) -> np.ndarray:
    """Softmax class probabilities, float32 (N, C), in eval mode whatever mode ``model`` was in."""
    count = len(frames)
    if count == 0:
        return np.zeros((0, len(info.classes)), dtype=np.float32)
    was_training = model.training
    model.eval()
    try:
        parts = [
            torch.softmax(model(to_input_tensor(frames[start : start + _PREDICT_CHUNK], info)), dim=1).numpy()
            for start in range(0, count, _PREDICT_CHUNK)
        ]
    finally:
        model.train(was_training)
    return np.concatenate(parts).astype(np.float32, copy=False)
