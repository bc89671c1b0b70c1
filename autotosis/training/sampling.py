"""Bootstrap labelling from random frames, and folder-of-images data sets.

``sample``: draw N random (seeded) times across some videos and save those frames, full
size with square pixels, into ``OUT/unsorted``.  A person then moves each image into a
folder named after its class (``OUT/background``, ``OUT/rage``, ...), and the folder is a
data set that ``train`` and ``eval`` accept in place of a label file::

    OUT/background/vod1_t000125500.jpg
    OUT/rage/vod1_t000731000.jpg
    OUT/rage/vod2/anything.png          # a subfolder is a scene of its own

Scenes group near-duplicates for the validation split (no scene is on both sides): an image
in a subfolder of its class folder belongs to the scene named by that subfolder; any other
image to the scene named by its file name up to the last ``_`` (``vod1_t000125500.jpg`` ->
``vod1``, so every frame sampled from one video is one scene); a name without ``_`` is a
scene of its own.  Folders named ``unsorted`` or starting with ``.`` or ``_`` are skipped.

Images become the same uint8 shards as labelled clips (one shard per scene, re-used while
the images are unchanged), so training code cannot tell the two apart.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotosis.core.errors import DataError, UsageError
from autotosis.core.fsutil import atomic_path, check_writable, safe_stem
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.core.region import Region, crop_pixels
from autotosis.media import decode, probe
from autotosis.training.dataset import (
    ClipFrames,
    FrameSet,
    prune_shards,
    read_shard,
    shard_key,
    write_shard_frames,
    write_shard_meta,
)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
UNSORTED = "unsorted"
FOLDER_SHARD_FORMAT = 1
FORMATS = {"jpg": "JPEG", "png": "PNG"}
_CLASS_FOLDER_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


# --------------------------------------------------------------------------- sampling


@dataclass(frozen=True)
class SampleTime:
    video: int  # index into the list of videos
    time_ms: int


@dataclass(frozen=True)
class SampleResult:
    folder: Path
    written: tuple[Path, ...]
    missing: int  # times where a video had no frame after all


def sample_times(durations_ms: Sequence[int], count: int, seed: int) -> list[SampleTime]:
    """``count`` distinct random times spread uniformly over all videos (longer videos get more).

    Deterministic for a given seed; at most one sample per millisecond of video.
    """
    if count < 1:
        raise UsageError(f"the number of frames must be at least 1, not {count}")
    lengths = np.asarray([max(0, int(d)) for d in durations_ms], dtype=np.int64)
    total = int(lengths.sum())
    if total <= 0:
        raise DataError("the videos have no duration to sample from")
    count = min(count, total)
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(total, size=count, replace=False)) if count < total else np.arange(total)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    which = np.searchsorted(starts, picked, side="right") - 1
    return [SampleTime(int(v), int(t - starts[v])) for v, t in zip(which, picked)]


def sample_name(stem: str, time_ms: int, ext: str) -> str:
    """``<stem>_t<ms, 9 digits>.<ext>``: sorts by time, and the stem is the image's scene."""
    return f"{stem}_t{time_ms:09d}.{ext}"


def _stems(videos: Sequence[Path]) -> list[str]:
    """A safe, distinct file-name stem per video (``-2``, ``-3`` for repeated names)."""
    stems, seen = [], {}
    for video in videos:
        stem = safe_stem(video)
        seen[stem] = seen.get(stem, 0) + 1
        stems.append(stem if seen[stem] == 1 else f"{stem}-{seen[stem]}")
    return stems


def sample_frames(
    videos: Sequence[Path],
    count: int,
    seed: int,
    out_dir: Path,
    *,
    fmt: str = "jpg",
    quality: int = 92,
    force: bool = False,
    progress: ProgressCallback = no_progress,
) -> SampleResult:
    """Save ``count`` random frames of ``videos`` into ``out_dir/unsorted`` (full size, square pixels).

    Nothing is written when any target file exists (unless ``force``); each image is written
    atomically.
    """
    from PIL import Image

    if fmt not in FORMATS:
        raise UsageError(f"image format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    videos = [Path(v) for v in videos]
    if not videos:
        raise UsageError("no videos to sample from")
    infos = [probe.probe(v) for v in videos]
    # The last frame may end a little before the container's duration: stay two frames clear.
    usable = [max(1, i.duration_ms - _frame_margin_ms(i)) for i in infos]
    times = sample_times(usable, count, seed)
    stems = _stems(videos)
    folder = Path(out_dir) / UNSORTED
    targets = {(s.video, s.time_ms): folder / sample_name(stems[s.video], s.time_ms, fmt) for s in times}
    for path in targets.values():
        check_writable(path, force)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    progress("sample", 0, len(times))
    for number, info in enumerate(infos):
        wanted = [s.time_ms for s in times if s.video == number]
        for time_ms, frame in decode.grab_frames(info, wanted):
            path = targets[(number, time_ms)]
            with atomic_path(path, force=force) as tmp:
                Image.fromarray(frame).save(tmp, format=FORMATS[fmt], **({"quality": quality} if fmt == "jpg" else {}))
            written.append(path)
            progress("sample", len(written), len(times))
    return SampleResult(folder=folder, written=tuple(written), missing=len(times) - len(written))


def _frame_margin_ms(info: probe.VideoInfo) -> int:
    fps = float(info.fps) if info.fps else 0.0
    return int(math.ceil(2000 / fps)) if fps > 0 else 200


# --------------------------------------------------------------------------- folder data sets


@dataclass(frozen=True)
class FolderImage:
    path: Path
    class_index: int
    scene: str


@dataclass(frozen=True)
class ImageFolder:
    root: Path
    classes: tuple[str, ...]
    images: tuple[FolderImage, ...]

    def scenes(self) -> dict[str, list[FolderImage]]:
        grouped: dict[str, list[FolderImage]] = {}
        for image in self.images:
            grouped.setdefault(image.scene, []).append(image)
        return grouped


def is_image_folder(path: Path | str) -> bool:
    return Path(path).is_dir()


def scene_of(relative: Path) -> str:
    """The scene of an image, from its path relative to its class folder (see the module doc)."""
    if len(relative.parts) > 1:
        return Path(*relative.parts[:-1]).as_posix()
    stem = relative.stem
    return stem.rsplit("_", 1)[0] if "_" in stem.strip("_") else stem


def _skipped(name: str) -> bool:
    return name == UNSORTED or name.startswith((".", "_"))


def read_image_folder(root: Path | str) -> ImageFolder:
    """The classes (one per sub-folder, ``background`` first, the rest by name) and their images."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder")
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not _skipped(p.name))
    found: dict[str, list[Path]] = {}
    for class_dir in class_dirs:
        images = sorted(p for p in _walk_images(class_dir))
        if images:
            found[class_dir.name] = images
    names = sorted(found, key=lambda n: (n != "background", n))
    problems = [n for n in names if not _CLASS_FOLDER_RE.fullmatch(n)]
    if problems:
        raise DataError(
            f"{root}: folder name {problems[0]!r} is not a class name",
            hint="class folders use letters, digits, _ and -, starting with a letter (e.g. background, rage)",
        )
    if len(names) < 2:
        have = f"only {names[0]!r}" if names else "none"
        raise DataError(
            f"{root}: a folder data set needs at least two class folders with images ({have})",
            hint=f"move the images of `autotosis sample` from {UNSORTED}/ into one folder per class, "
            "e.g. background/ and rage/",
        )
    images = [
        FolderImage(path, index, scene_of(path.relative_to(root / name)))
        for index, name in enumerate(names)
        for path in found[name]
    ]
    return ImageFolder(root=root, classes=tuple(names), images=tuple(images))


def _walk_images(folder: Path):
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not _skipped(d))
        for name in sorted(filenames):
            if Path(name).suffix.lower() in IMAGE_SUFFIXES and not name.startswith("."):
                yield Path(dirpath) / name


def task_name_for(root: Path) -> str:
    name = re.sub(r"[^A-Za-z0-9_-]", "_", Path(root).absolute().name).strip("_")
    return name or "images"


def load_image(path: Path, size: int, region: Region | None = None, crop_borders: bool = False) -> np.ndarray:
    """One image as a (size, size, 3) uint8 RGB array: cropped to ``region``, stretched to a square.

    The same geometry as video frames (crop relative to the picture, then an area resize).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if region is not None:
                # JPEG can decode at 1/2, 1/4, 1/8 size: ask for just enough pixels for the crop.
                wanted = (int(size / max(region[2] - region[0], 1e-3)), int(size / max(region[3] - region[1], 1e-3)))
            else:
                wanted = (size, size)
            image.draft("RGB", (max(wanted[0], size), max(wanted[1], size)))
            picture = image.convert("RGB")
    except (OSError, UnidentifiedImageError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot read this image ({exc})", hint="remove it or save it again as PNG or JPEG"
        ) from None
    if crop_borders:
        picture = picture.crop(_active_box(np.asarray(picture)))
    if region is not None:
        width, height = picture.size
        w, h, x, y = crop_pixels(region, width, height)
        picture = picture.crop((x, y, x + w, y + h))
    return np.asarray(picture.resize((size, size), Image.Resampling.BOX), dtype=np.uint8)


def _active_box(pixels: np.ndarray, limit: int = 24, min_border: float = 0.02) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) inside black letterbox/pillarbox bars of one image."""
    height, width = pixels.shape[:2]
    bright = pixels.max(axis=2) > limit
    rows = np.flatnonzero(bright.any(axis=1))
    cols = np.flatnonzero(bright.any(axis=0))
    if len(rows) == 0 or len(cols) == 0:
        return 0, 0, width, height
    top, bottom, left, right = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    if top < min_border * height and bottom > (1 - min_border) * height:
        top, bottom = 0, height
    if left < min_border * width and right > (1 - min_border) * width:
        left, right = 0, width
    return left, top, right, bottom


def folder_frames(
    folder: ImageFolder,
    *,
    size: int = 128,
    region: Region | None = None,
    crop_borders: bool = False,
    out_dir: Path | None = None,
    task: str | None = None,
    progress: ProgressCallback = no_progress,
) -> FrameSet:
    """A FrameSet with one shard per scene (re-used while its images are unchanged)."""
    task = task or task_name_for(folder.root)
    out_dir = Path(out_dir) if out_dir is not None else folder.root / ".autotosis" / "frames" / task
    out_dir.mkdir(parents=True, exist_ok=True)
    scenes = folder.scenes()
    clips: list[ClipFrames] = []
    keep: set[str] = set()
    done = 0
    progress("images", 0, len(folder.images))
    for scene, images in sorted(scenes.items()):
        key = _scene_key(folder, scene, images, size, region, crop_borders)
        keep.update({f"{key}.npy", f"{key}.json"})
        clip = _load_scene_shard(folder, out_dir, key, scene, size)
        if clip is None:
            clip = _write_scene_shard(folder, out_dir, key, scene, images, size, region, crop_borders)
        clips.append(clip)
        done += len(images)
        progress("images", done, len(folder.images))
    prune_shards(out_dir, keep)
    return FrameSet(
        task=task, classes=folder.classes, size=size, crop=region, clips=tuple(clips), crop_borders=crop_borders
    )


def _scene_key(
    folder: ImageFolder,
    scene: str,
    images: Sequence[FolderImage],
    size: int,
    region: Region | None,
    crop_borders: bool,
) -> str:
    files = []
    for image in images:
        stat = image.path.stat()
        files.append(
            [image.path.relative_to(folder.root).as_posix(), image.class_index, stat.st_size, stat.st_mtime_ns]
        )
    return shard_key(
        {
            "format": FOLDER_SHARD_FORMAT,
            "scene": scene,
            "classes": list(folder.classes),
            "files": files,
            "size": size,
            "region": None if region is None else list(region),
            "borders": crop_borders,
        }
    )


def _scene_frames(folder: ImageFolder, scene: str, frames_path: Path, targets: np.ndarray) -> ClipFrames:
    """A scene's shard as a clip: one row per image, numbered in place of sample times."""
    scene_id = hashlib.sha256(scene.encode()).hexdigest()[:12]
    return ClipFrames(folder.root / scene, scene_id, frames_path, np.arange(len(targets), dtype=np.int64), targets)


def _load_scene_shard(folder: ImageFolder, out_dir: Path, key: str, scene: str, size: int) -> ClipFrames | None:
    shard = read_shard(out_dir, key, size=size, classes=folder.classes)
    return None if shard is None else _scene_frames(folder, scene, shard.frames_path, shard.targets)


def _write_scene_shard(
    folder: ImageFolder,
    out_dir: Path,
    key: str,
    scene: str,
    images: Sequence[FolderImage],
    size: int,
    region: Region | None,
    crop_borders: bool,
) -> ClipFrames:
    # Image by image: a big scene never sits in RAM whole.
    rows = (load_image(image.path, size, region, crop_borders)[None] for image in images)
    write_shard_frames(out_dir, key, rows, size)
    targets = np.asarray([image.class_index for image in images], dtype=np.int64)
    meta = {
        "scene": scene,
        "images": [i.path.relative_to(folder.root).as_posix() for i in images],
        "targets": targets.tolist(),
    }
    return _scene_frames(folder, scene, write_shard_meta(out_dir, key, meta), targets)


def image_names(clip: ClipFrames) -> list[str]:
    """The image paths (relative to the folder) of a scene shard, row by row."""
    meta = json.loads(clip.frames_path.with_suffix(".json").read_text(encoding="utf-8"))
    return list(meta["images"])
