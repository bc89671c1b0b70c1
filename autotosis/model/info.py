"""What a model is, without the network: its metadata, its file kind and its fingerprint.

Nothing here imports torch (half a gigabyte of memory with the pinned wheel): a scan with an ONNX
model, the score cache and every command that only reads a model's metadata stay torch-free.
``model.py`` builds, saves and loads the network itself.
"""

from __future__ import annotations

import collections
import hashlib
import pickle
import zipfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from autotosis import __version__
from autotosis.core.errors import ModelError
from autotosis.core.region import Region, as_region

DEFAULT_MEAN = (0.485, 0.456, 0.406)
DEFAULT_STD = (0.229, 0.224, 0.225)
TRAIN_HINT = "train one with `autotosis train`"
CHECKPOINT_FORMAT = "autotosis-checkpoint/1"
_FORMAT_PREFIX = "autotosis-checkpoint/"
_FORMAT_VERSION = 1
SUPPORTED_ARCHS = ("resnet18",)


@dataclass(frozen=True)
class ModelInfo:
    """Metadata stored next to the weights: everything scan/eval need to use the model."""

    task: str
    classes: tuple[str, ...]
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    crop: Region | None
    threshold: float  # suggested event threshold on the positive class's probability
    arch: str = "resnet18"
    train_args: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    epoch: int = 0
    autotosis_version: str = __version__
    # Trained with --crop-borders: clips (and videos scanned) without a crop have their
    # letterbox borders cropped away too, so the model sees pictures framed as in training.
    crop_borders: bool = False
    # Event rules chosen by cross-validation at training time (segments.CALIBRATED_FIELDS plus how
    # they were found); empty for models trained without it: events then use the fixed defaults.
    events: dict = field(default_factory=dict)
    # Sound as a second input (train --audio): the learned combiner of the picture's score with audio
    # features and the event rules calibrated on the combined scores (detect/audio.AudioModel); empty
    # for models trained without it, which scan as before.  The picture-only threshold and rules stay
    # in ``threshold`` and ``events``: a video without sound is scanned with them.
    audio: dict = field(default_factory=dict)
    # Each picture's colours balanced before the model sees it (grey world: every channel scaled to the
    # picture's mean level), so a room's tint, a camera's white balance or coloured light do not move
    # the scores.  False for models trained before it existed: they see raw colours, as they were trained.
    balance_colour: bool = False

    def positive_class(self) -> str:
        """The class whose probability is the highlight score."""
        if len(self.classes) == 2:
            return self.classes[1]
        return next(name for name in self.classes if name != "background")

    def positive_index(self) -> int:
        return self.classes.index(self.positive_class())

    def to_dict(self) -> dict[str, Any]:
        # The crop as a plain tuple: a checkpoint is loaded with weights_only=True, which refuses our own types.
        return {**asdict(self), "crop": None if self.crop is None else tuple(self.crop)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: Path | str = "checkpoint") -> ModelInfo:
        """Rebuild from a checkpoint's ``info`` dict; unknown keys (newer minor additions) are ignored."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        required = {"task", "classes", "input_size", "mean", "std", "crop", "threshold"}
        missing = sorted(required - values.keys())
        if missing:
            raise ModelError(
                f"{source}: checkpoint metadata is incomplete (missing {', '.join(missing)})", hint=TRAIN_HINT
            )
        try:
            values["classes"] = tuple(str(c) for c in values["classes"])
            values["mean"] = tuple(float(v) for v in values["mean"])
            values["std"] = tuple(float(v) for v in values["std"])
            values["crop"] = as_region(values["crop"])
            values["input_size"] = int(values["input_size"])
            values["threshold"] = float(values["threshold"])
            values["train_args"] = dict(values.get("train_args") or {})
            values["metrics"] = dict(values.get("metrics") or {})
            values["crop_borders"] = bool(values.get("crop_borders", False))
            values["events"] = dict(values.get("events") or {})
            values["audio"] = dict(values.get("audio") or {})
            values["balance_colour"] = bool(values.get("balance_colour", False))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{source}: checkpoint metadata is malformed ({exc})", hint=TRAIN_HINT) from exc
        return cls(**values)


_ONNX_SECOND_FIELDS = frozenset(b"\x12\x1a\x22\x28\x32\x3a\x42\x72")  # ModelProto fields 2-8 and 14, as protobuf keys


def is_onnx_file(path: Path) -> bool:
    """Whether ``path`` is an ONNX model: by content (a torch file is a zip or a pickle; an ONNX
    ModelProto starts with its ir_version, a small varint, then another of its fields), else by
    the .onnx suffix."""
    try:
        with Path(path).open("rb") as handle:
            head = handle.read(3)
    except OSError:
        head = b""
    if head.startswith(b"PK") or head[:1] == b"\x80":
        return False
    if len(head) == 3 and head[0] == 0x08 and 0 < head[1] < 0x80 and head[2] in _ONNX_SECOND_FIELDS:
        return True
    return Path(path).suffix.lower() == ".onnx"


def model_fingerprint(path: Path) -> str:
    """sha256 of the checkpoint file's bytes (hex, 16 chars): the score cache key for a model."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()[:16]


def checked_info(raw: Any, path: Path, expect_task: str | None) -> ModelInfo:
    """The ModelInfo of a loaded checkpoint dict, after every check that loading makes."""
    if not isinstance(raw, dict) or "format" not in raw:
        raise ModelError(f"{path}: not an autotosis checkpoint (no 'format' key) — {TRAIN_HINT}")
    check_format(raw, path)
    if not isinstance(raw.get("info"), dict):
        raise ModelError(f"{path}: checkpoint has no metadata (damaged file?)", hint=TRAIN_HINT)
    info = ModelInfo.from_dict(raw["info"], path)
    if expect_task is not None and info.task != expect_task:
        raise ModelError(
            f"{path}: model was trained for task '{info.task}', not '{expect_task}'",
            hint=f"use a checkpoint trained on the '{expect_task}' labels",
        )
    if info.arch not in SUPPORTED_ARCHS:
        raise ModelError(f"{path}: architecture {info.arch!r} is not supported (only {', '.join(SUPPORTED_ARCHS)})")
    if not isinstance(raw.get("state_dict"), dict):
        raise ModelError(f"{path}: checkpoint has no weights (damaged file?)", hint=TRAIN_HINT)
    return info


def check_format(raw: dict, path: Path) -> None:
    """Refuse a dict that is not an autotosis checkpoint, or one newer than this version reads."""
    marker = raw.get("format")
    if not isinstance(marker, str) or not marker.startswith(_FORMAT_PREFIX):
        raise ModelError(f"{path}: not an autotosis checkpoint (unknown format {marker!r}) — {TRAIN_HINT}")
    try:
        version = int(marker.removeprefix(_FORMAT_PREFIX))
    except ValueError:
        raise ModelError(f"{path}: not an autotosis checkpoint (unknown format {marker!r}) — {TRAIN_HINT}") from None
    if version > _FORMAT_VERSION:
        raise ModelError(
            f"{path}: checkpoint format {version} is newer than this autotosis understands ({_FORMAT_VERSION})",
            hint="upgrade autotosis",
        )


class _Opaque:
    """Stands in for every torch object in a checkpoint read without torch (tensors, storages)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass


class _MetadataUnpickler(pickle.Unpickler):
    """Reads a checkpoint's plain values and nothing else: torch's own types become ``_Opaque``
    (no tensor data is read), any other global is refused (loading it could run code)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch" or module.startswith("torch."):
            return _Opaque
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a checkpoint")

    def persistent_load(self, pid: Any) -> Any:
        return None  # a tensor's storage: its bytes are not needed for the metadata


def peek_checkpoint(path: Path) -> dict | None:
    """A torch checkpoint's dict with every tensor left out, read without importing torch (half a gigabyte
    of memory), or None when the file is not a readable torch zip file (``torch.load`` then tells why)."""
    try:
        with zipfile.ZipFile(path) as archive:
            pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
            if len(pickles) != 1:
                return None
            with archive.open(pickles[0]) as handle:
                raw = _MetadataUnpickler(handle).load()
    except (OSError, zipfile.BadZipFile, pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError):
        return None
    return raw if isinstance(raw, dict) else None
