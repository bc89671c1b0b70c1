"""Label file -> training frames, stored compactly and re-used.

Each labelled clip becomes one shard: a ``.npy`` uint8 array (N, size, size, 3) of
cropped, scaled frames decoded by ffmpeg, plus a small JSON sidecar with each frame's
time and target.  Shards are keyed by the clip's identity and its label line, so editing
one line of a 400-clip label file re-extracts one clip, not 400.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotosis import media
from autotosis.errors import DataError, LabelErrors
from autotosis.fsutil import atomic_path, file_fingerprint, write_text_atomic
from autotosis.labels import ClipEntry, LabelFile, Span, check_durations
from autotosis.progress import ProgressCallback, no_progress

SHARD_FORMAT = 2
IGNORE = -1


@dataclass(frozen=True)
class FrameOptions:
    """How training frames are sampled from labelled clips."""

    fps: float = 4.0
    size: int = 128
    band_ms: int = 500  # frames this close to a hand-marked span edge are ignored


@dataclass(frozen=True)
class ClipFrames:
    clip: Path
    clip_id: str
    frames_path: Path
    times_ms: np.ndarray  # int64 (N,)
    targets: np.ndarray  # int64 (N,): class index, or IGNORE

    def load_frames(self) -> np.ndarray:
        """The clip's frames, memory-mapped: only the rows used are read from disk."""
        return np.load(self.frames_path, mmap_mode="r")

    @property
    def counts(self) -> dict[int, int]:
        values, counts = np.unique(self.targets, return_counts=True)
        return {int(v): int(c) for v, c in zip(values, counts)}


@dataclass(frozen=True)
class FrameSet:
    task: str
    classes: tuple[str, ...]
    size: int
    crop: tuple[float, float, float, float] | None
    clips: tuple[ClipFrames, ...]

    def counts(self) -> dict[str, int]:
        """Frames per class name, plus 'ignored'."""
        total: Counter[int] = Counter()
        for clip in self.clips:
            total.update(clip.counts)
        names = {i: name for i, name in enumerate(self.classes)} | {IGNORE: "ignored"}
        return {names[k]: v for k, v in sorted(total.items())}


def classes_for_task(task: str) -> tuple[str, ...]:
    return ("background", task)


def frame_targets(times_ms: np.ndarray, spans: Sequence[Span], duration_ms: int, band_ms: int) -> np.ndarray:
    """Target per frame time: 1 inside a sure span, 0 outside all spans, IGNORE near edges.

    Hand-marked edges are off by up to a second, so frames within ``band_ms`` of any edge
    teach the model nothing reliable; unsure (``~``) spans are ignored whole, with the band.
    """
    times = np.asarray(times_ms, dtype=np.int64)
    targets = np.zeros(times.shape, dtype=np.int64)
    for span in spans:
        start, end = span.start_ms, span.resolved_end(duration_ms)
        if not span.unsure:
            targets[(times >= start) & (times < end)] = 1
    for span in spans:
        start, end = span.start_ms, span.resolved_end(duration_ms)
        if span.unsure:
            targets[(times >= start - band_ms) & (times < end + band_ms)] = IGNORE
        else:
            # An edge at the very start/end of the clip is not a real boundary.
            if start > 0:
                targets[np.abs(times - start) < band_ms] = IGNORE
            if end < duration_ms:
                targets[np.abs(times - end) < band_ms] = IGNORE
    return targets


def _crop_tuple(entry: ClipEntry) -> tuple[float, float, float, float] | None:
    crop = entry.crop
    return None if crop is None else (crop.x0, crop.y0, crop.x1, crop.y1)


def _shard_key(entry: ClipEntry, options: FrameOptions) -> str:
    identity = {
        "format": SHARD_FORMAT,
        "clip": file_fingerprint(entry.path),
        "line": entry.source_text,
        "crop": _crop_tuple(entry),
        "fps": options.fps,
        "size": options.size,
        "band": options.band_ms,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def default_frames_dir(labels: LabelFile) -> Path:
    return labels.path.parent / ".autotosis" / "frames" / labels.task


def validate_against_media(labels: LabelFile) -> dict[Path, media.VideoInfo]:
    """Probe every clip; raise LabelErrors naming file:line for unreadable clips or spans past the end."""
    from autotosis.errors import LabelError, MediaError

    infos: dict[Path, media.VideoInfo] = {}
    problems: list[LabelError] = []
    for entry in labels.entries:
        try:
            infos[entry.path] = media.probe(entry.path)
        except MediaError as exc:
            problems.append(LabelError(labels.path, entry.line, 1, f"clip {entry.raw_path!r}: {exc.message.split(': ', 1)[-1]}"))
    problems += check_durations(labels, lambda p: infos[p].duration_ms if p in infos else None)
    if problems:
        raise LabelErrors(sorted(problems, key=lambda e: (e.line, e.col)))
    return infos


def extract_frames(
    labels: LabelFile,
    out_dir: Path | None = None,
    options: FrameOptions = FrameOptions(),
    *,
    progress: ProgressCallback = no_progress,
    prune: bool = True,
) -> FrameSet:
    """Decode every labelled clip into a shard (or re-use an up-to-date one)."""
    if not labels.entries:
        raise DataError(f"{labels.path}: no clips listed", hint="add one line per clip: PATH START-END ...")
    out_dir = Path(out_dir) if out_dir is not None else default_frames_dir(labels)
    out_dir.mkdir(parents=True, exist_ok=True)
    infos = validate_against_media(labels)
    classes = classes_for_task(labels.task)
    total_ms = sum(infos[e.path].duration_ms for e in labels.entries)
    done_ms = 0
    clips: list[ClipFrames] = []
    keep: set[str] = set()
    progress("frames", 0, total_ms / 1000)
    for entry in labels.entries:
        info = infos[entry.path]
        key = _shard_key(entry, options)
        keep.update({f"{key}.npy", f"{key}.json"})
        clip = _load_shard(out_dir, key, entry)
        if clip is None:
            clip = _extract_clip(entry, info, out_dir, key, options, lambda ms: progress("frames", (done_ms + ms) / 1000, total_ms / 1000))
        clips.append(clip)
        done_ms += info.duration_ms
        progress("frames", done_ms / 1000, total_ms / 1000)
    if prune:
        _prune(out_dir, keep)
    crops = Counter(_crop_tuple(e) for e in labels.entries)
    frameset = FrameSet(task=labels.task, classes=classes, size=options.size, crop=crops.most_common(1)[0][0], clips=tuple(clips))
    manifest = {
        "task": labels.task,
        "labels": str(labels.path),
        "classes": list(classes),
        "size": options.size,
        "fps": options.fps,
        "band_ms": options.band_ms,
        "crop": frameset.crop,
        "clips": [{"clip": str(c.clip), "id": c.clip_id, "frames": c.frames_path.name, "count": len(c.times_ms)} for c in clips],
    }
    write_text_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=1), force=True)
    return frameset


def _load_shard(out_dir: Path, key: str, entry: ClipEntry) -> ClipFrames | None:
    meta_path, frames_path = out_dir / f"{key}.json", out_dir / f"{key}.npy"
    if not (meta_path.exists() and frames_path.exists()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        frames = np.load(frames_path, mmap_mode="r")
        times = np.asarray(meta["times_ms"], dtype=np.int64)
        targets = np.asarray(meta["targets"], dtype=np.int64)
    except (OSError, ValueError, KeyError):
        return None  # damaged shard: extract again
    if frames.shape[0] != len(times) or len(times) != len(targets):
        return None
    return ClipFrames(entry.path, meta["clip_id"], frames_path, times, targets)


def _extract_clip(
    entry: ClipEntry, info: media.VideoInfo, out_dir: Path, key: str, options: FrameOptions, on_ms
) -> ClipFrames:
    spec = media.DecodeSpec(size=options.size, fps=options.fps, region=_crop_tuple(entry))
    times: list[np.ndarray] = []
    frames_path = out_dir / f"{key}.npy"
    # Frames go to disk as they are decoded (memory stays flat for long clips); the .npy
    # header is written last, once the count is known.
    with atomic_path(out_dir / f"{key}.raw", force=True) as raw_tmp:
        with raw_tmp.open("wb") as raw:
            for batch in media.iter_frames(entry.path, spec, info=info):
                raw.write(batch.frames.tobytes())
                times.append(batch.times_ms)
                on_ms(int(batch.times_ms[-1]))
        all_times = np.concatenate(times) if times else np.zeros(0, dtype=np.int64)
        if len(all_times) == 0:
            raise DataError(f"{entry.path}: no frames could be decoded")
        with atomic_path(frames_path, force=True) as npy_tmp:
            with npy_tmp.open("wb") as out, raw_tmp.open("rb") as raw:
                header = {"descr": "|u1", "fortran_order": False, "shape": (len(all_times), options.size, options.size, 3)}
                np.lib.format.write_array_header_1_0(out, header)
                while chunk := raw.read(1 << 22):
                    out.write(chunk)
    targets = frame_targets(all_times, entry.spans, info.duration_ms, options.band_ms)
    # The id names the clip as the label file does, so the validation split (which sorts ids)
    # stays the same when the project folder moves.
    clip_id = hashlib.sha256(Path(entry.raw_path or entry.path.name).as_posix().encode()).hexdigest()[:12]
    meta = {
        "clip": str(entry.path),
        "clip_id": clip_id,
        "line": entry.source_text,
        "times_ms": all_times.tolist(),
        "targets": targets.tolist(),
    }
    write_text_atomic(out_dir / f"{key}.json", json.dumps(meta), force=True)
    return ClipFrames(entry.path, clip_id, frames_path, all_times, targets)


def _prune(out_dir: Path, keep: set[str]) -> None:
    """Remove shards no label line refers to any more (edited or deleted lines)."""
    for path in out_dir.iterdir():
        if path.suffix in (".npy", ".json") and path.name != "manifest.json" and path.name not in keep:
            try:
                os.unlink(path)
            except OSError:
                pass
