"""Label file -> training frames, stored compactly and re-used.

Each labelled clip becomes one shard: a ``.npy`` uint8 array (N, size, size, 3) of
cropped, scaled frames decoded by ffmpeg, plus a small JSON sidecar with each frame's
time and target.  Shards are keyed by the clip's identity and its label line, so editing
one line of a 400-clip label file re-extracts one clip, not 400.  The shard functions here
(``shard_key``, ``read_shard``, ``write_shard_frames``, ``write_shard_meta``, ``prune_shards``)
serve folder data sets (sampling.py) too.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotosis.core.errors import DataError, LabelErrors
from autotosis.core.fsutil import atomic_path, file_fingerprint, write_error, write_text_atomic
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.core.region import Region, as_region, is_region
from autotosis.labels.parse import check_durations
from autotosis.labels.values import ClipEntry, LabelFile, Span
from autotosis.media import decode, probe

SHARD_FORMAT = 3  # 3: frames sampled with fps=...:round=up (the frame on screen at each time)
IGNORE = -1


def counted_mask(targets: np.ndarray) -> np.ndarray:
    """Which samples count in training and measuring: all but IGNORE (near span edges, in unsure spans)."""
    return np.asarray(targets) != IGNORE


def highlight_mask(targets: np.ndarray) -> np.ndarray:
    """Which samples are highlights (of any class) and count."""
    targets = np.asarray(targets)
    return (targets > 0) & (targets != IGNORE)


@dataclass(frozen=True)
class FrameOptions:
    """How training frames are sampled from labelled clips."""

    fps: float = 4.0
    size: int = 128
    band_ms: int = 500  # frames this close to a hand-marked span edge are ignored
    # Crop letterbox/pillarbox borders away from clips without a crop: black bars that only
    # some sources have are a shortcut a model learns instead of the content.
    crop_borders: bool = False


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
    crop: Region | None
    clips: tuple[ClipFrames, ...]
    crop_borders: bool = False  # letterbox borders were cropped away from clips without a crop

    def counts(self) -> dict[str, int]:
        """Frames per class name, plus 'ignored'."""
        total: Counter[int] = Counter()
        for clip in self.clips:
            total.update(clip.counts)
        names = {i: name for i, name in enumerate(self.classes)} | {IGNORE: "ignored"}
        return {names[k]: v for k, v in sorted(total.items())}


# --------------------------------------------------------------------------- shards
# A shard is two files named by a key: KEY.npy, uint8 frames (N, size, size, 3), and KEY.json, what
# they are (at least "targets": a class index or IGNORE per frame).  Labelled clips (below) and folder
# data sets (sampling.folder_frames) are written and read through these functions.


@dataclass(frozen=True)
class Shard:
    meta: dict  # KEY.json
    frames_path: Path  # KEY.npy
    targets: np.ndarray  # int64 (N,): class index, or IGNORE


def shard_key(identity: Mapping[str, object]) -> str:
    """The key (file name stem) of a shard: a hash of ``identity``, JSON-ready values that decide its content."""
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:20]


def read_shard(
    out_dir: Path, key: str, *, size: int | None = None, classes: Sequence[str] | None = None
) -> Shard | None:
    """Shard ``key`` of ``out_dir``, or None when it is missing or damaged in any way (cut short by a kill or
    a full disk, garbage, edited by hand): the caller makes it again and replaces both files.

    ``size``: the frames' side it must have; ``classes``: the classes its targets index.
    """
    meta_path, frames_path = out_dir / f"{key}.json", out_dir / f"{key}.npy"
    if not (meta_path.is_file() and frames_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        frames = np.load(frames_path, mmap_mode="r", allow_pickle=False)
        targets = np.asarray(meta["targets"], dtype=np.int64)
    except Exception:  # noqa: BLE001 - OSError, ValueError, EOFError, a list instead of an object...: make it again
        return None
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        return None
    if size is not None and frames.shape[1:3] != (size, size):
        return None
    if targets.ndim != 1 or len(targets) == 0 or frames.shape[0] != len(targets):
        return None
    if classes is not None and np.any((targets < IGNORE) | (targets >= len(classes))):
        return None
    return Shard(meta, frames_path, targets)


def write_shard_frames(out_dir: Path, key: str, batches: Iterable[np.ndarray], size: int) -> int:
    """Write ``KEY.npy`` from uint8 (n, size, size, 3) batches as they come; the number of frames written
    (no file when there are none).

    Frames go to a scratch file as they arrive (memory stays flat for long clips and big scenes);
    the .npy header is written last, once the count is known, and the file appears atomically.
    The scratch file never outlives this call (a killed run's is removed by ``prune_shards``).
    """
    frames_path = out_dir / f"{key}.npy"
    raw_tmp = out_dir / f".{key}.part.raw"
    count = 0
    try:
        with raw_tmp.open("wb") as raw:
            for batch in batches:
                if batch.dtype != np.uint8 or batch.shape[1:] != (size, size, 3):
                    raise ValueError(
                        f"shard frames must be uint8 (n, {size}, {size}, 3), got {batch.dtype} {batch.shape}"
                    )
                raw.write(np.ascontiguousarray(batch).tobytes())
                count += len(batch)
        if count:
            with atomic_path(frames_path, force=True) as npy_tmp:
                with npy_tmp.open("wb") as out, raw_tmp.open("rb") as raw:
                    header = {"descr": "|u1", "fortran_order": False, "shape": (count, size, size, 3)}
                    np.lib.format.write_array_header_1_0(out, header)
                    while chunk := raw.read(1 << 22):
                        out.write(chunk)
    except OSError as exc:  # disk full or a size limit while writing the scratch file
        raise write_error(frames_path, exc, temp=raw_tmp) from exc
    finally:
        raw_tmp.unlink(missing_ok=True)
    return count


def write_shard_meta(out_dir: Path, key: str, meta: Mapping[str, object]) -> Path:
    """Write ``KEY.json`` (after ``write_shard_frames``: a shard is complete once both are there); the frames' path."""
    write_text_atomic(out_dir / f"{key}.json", json.dumps(meta), force=True)
    return out_dir / f"{key}.npy"


def prune_shards(out_dir: Path, keep: set[str]) -> None:
    """Remove the shards of ``out_dir`` not named in ``keep`` (edited or deleted label lines, changed
    images), and the temp files (``.NAME.XXXX.part.*``, see fsutil.atomic_path) of a run that was killed."""
    for path in out_dir.iterdir():
        stale_temp = path.name.startswith(".") and ".part." in path.name
        if stale_temp or (
            path.suffix in (".npy", ".json")
            and path.name not in ("manifest.json", "borders.json")
            and path.name not in keep
        ):
            try:
                os.unlink(path)
            except OSError:
                pass


# --------------------------------------------------------------------------- labelled clips


def classes_for_task(task: str) -> tuple[str, ...]:
    return ("background", task)


def span_class_index(span: Span, classes: Sequence[str] | None) -> int:
    """Class index a sure span marks: its named class, else 1 (the binary task's class)."""
    if span.label is None or classes is None:
        return 1
    if span.label not in classes:
        raise DataError(f"span {span.as_text()} names class {span.label!r}, not one of {', '.join(classes)}")
    return list(classes).index(span.label)


def frame_targets(
    times_ms: np.ndarray, spans: Sequence[Span], duration_ms: int, band_ms: int, classes: Sequence[str] | None = None
) -> np.ndarray:
    """Target per frame time: the span's class index inside a sure span (1 for a binary task),
    0 outside all spans, IGNORE near edges.

    Hand-marked edges are off by up to a second, so frames within ``band_ms`` of any edge
    teach the model nothing reliable; unsure (``~``) spans are ignored whole, with the band.
    """
    times = np.asarray(times_ms, dtype=np.int64)
    targets = np.zeros(times.shape, dtype=np.int64)
    for span in spans:
        start, end = span.start_ms, span.resolved_end(duration_ms)
        if not span.unsure:
            targets[(times >= start) & (times < end)] = span_class_index(span, classes)
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


def clip_region(
    entry: ClipEntry, info: probe.VideoInfo, crop_borders: bool, cache: dict[str, list[float] | None] | None = None
) -> Region | None:
    """The region frames are taken from: the label line's crop, else (with ``crop_borders``)
    the picture inside letterbox borders, else None (the whole frame).

    ``cache`` maps file fingerprints to detected regions, so borders are detected once per file.
    """
    if entry.crop is not None or not crop_borders:
        return entry.crop
    key = file_fingerprint(entry.path)
    if cache is not None and key in cache:
        found = cache[key]
        return as_region(found)
    region = decode.detect_active_area(info)
    if cache is not None:
        cache[key] = None if region is None else list(region)
    return region


def clip_regions(
    labels: LabelFile, infos: dict[Path, probe.VideoInfo], crop_borders: bool, frames_dir: Path | None = None
) -> dict[Path, Region | None]:
    """``clip_region`` of every clip; detected borders are cached in ``frames_dir/borders.json``
    (default: the label file's frames folder), shared by frames, train, eval and review."""
    if not crop_borders:
        return {e.path: clip_region(e, infos[e.path], False) for e in labels.entries}
    path = Path(frames_dir if frames_dir is not None else default_frames_dir(labels)) / "borders.json"
    # A damaged or hand-edited entry is detected again (and the file rewritten).
    cache = {key: value for key, value in _read_json_dict(path).items() if is_region(value)}
    before = dict(cache)
    regions = {e.path: clip_region(e, infos[e.path], True, cache) for e in labels.entries}
    if cache != before:
        write_text_atomic(path, json.dumps(cache), force=True)
    return regions


def _shard_key(entry: ClipEntry, options: FrameOptions, classes: Sequence[str], region: Region | None) -> str:
    return shard_key(
        {
            "classes": list(classes),
            "format": SHARD_FORMAT,
            "clip": file_fingerprint(entry.path),
            "line": entry.source_text,
            "crop": region if region is None else list(region),
            "fps": options.fps,
            "size": options.size,
            "band": options.band_ms,
        }
    )


def default_frames_dir(labels: LabelFile) -> Path:
    return labels.path.parent / ".autotosis" / "frames" / labels.task


def validate_against_media(labels: LabelFile) -> dict[Path, probe.VideoInfo]:
    """Probe every clip; raise LabelErrors naming file:line for unreadable clips or spans past the end."""
    from autotosis.core.errors import LabelError, MediaError, ToolMissingError

    infos: dict[Path, probe.VideoInfo] = {}
    problems: list[LabelError] = []
    for entry in labels.entries:
        try:
            infos[entry.path] = probe.probe(entry.path)
        except ToolMissingError:
            raise  # not the clip's fault: one clear error, not one per line
        except MediaError as exc:
            cause = exc.message.removeprefix(f"{exc.path}: ") if exc.path is not None else exc.message
            problems.append(LabelError(labels.path, entry.line, 1, f"clip {entry.raw_path!r}: {cause}", hint=exc.hint))
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
    infos = validate_against_media(labels)  # before making the folder: a bad clip leaves nothing behind
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file where the folder should be, no permission
        raise write_error(out_dir, exc) from exc
    with folder_lock(out_dir):  # two runs at once (frames and train on one label file): one waits for the other
        return _extract_all(labels, out_dir, options, infos, progress, prune)


@contextlib.contextmanager
def folder_lock(folder: Path, poll_s: float = 0.1) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` itself (no lock file), waiting while another process holds it.

    Two runs extracting into one folder would otherwise write the same scratch files and
    prune each other's temp files.  The lock dies with its process (even on kill -9); the wait
    is polled so that Ctrl-C and SIGTERM stop it at once, whichever thread takes the signal.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise write_error(folder, exc) from exc
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                time.sleep(poll_s)
        yield
    finally:
        os.close(fd)  # releases the lock


def _extract_all(
    labels: LabelFile,
    out_dir: Path,
    options: FrameOptions,
    infos: dict[Path, probe.VideoInfo],
    progress: ProgressCallback,
    prune: bool,
) -> FrameSet:
    classes = labels.class_names()
    total_ms = sum(infos[e.path].duration_ms for e in labels.entries)
    done_ms = 0
    clips: list[ClipFrames] = []
    keep: set[str] = set()
    regions = clip_regions(labels, infos, options.crop_borders, out_dir)
    progress("frames", 0, total_ms / 1000)
    for entry in labels.entries:
        info = infos[entry.path]
        key = _shard_key(entry, options, classes, regions[entry.path])
        keep.update({f"{key}.npy", f"{key}.json"})
        clip = _load_shard(out_dir, key, entry, options.size, classes)
        if clip is None:
            clip = _extract_clip(
                entry,
                info,
                regions[entry.path],
                out_dir,
                key,
                options,
                classes,
                lambda ms, before=done_ms: progress("frames", (before + ms) / 1000, total_ms / 1000),
            )
        clips.append(clip)
        done_ms += info.duration_ms
        progress("frames", done_ms / 1000, total_ms / 1000)
    if prune:
        prune_shards(out_dir, keep)
    # The model's crop is the label file's usual crop; detected borders are per video, so a
    # model trained with crop_borders detects them again in each video it scans.
    crops = Counter(e.crop for e in labels.entries)
    frameset = FrameSet(
        task=labels.task,
        classes=classes,
        size=options.size,
        crop=crops.most_common(1)[0][0],
        clips=tuple(clips),
        crop_borders=options.crop_borders,
    )
    manifest = {
        "task": labels.task,
        "labels": str(labels.path),
        "classes": list(classes),
        "size": options.size,
        "fps": options.fps,
        "band_ms": options.band_ms,
        "crop": frameset.crop,
        "clips": [
            {"clip": str(c.clip), "id": c.clip_id, "frames": c.frames_path.name, "count": len(c.times_ms)}
            for c in clips
        ],
    }
    write_text_atomic(out_dir / "manifest.json", json.dumps(manifest, indent=1), force=True)
    return frameset


def _load_shard(
    out_dir: Path, key: str, entry: ClipEntry, size: int | None = None, classes: Sequence[str] | None = None
) -> ClipFrames | None:
    """The clip's shard (``read_shard``, with its sample times and id checked), or None: extract it again."""
    shard = read_shard(out_dir, key, size=size, classes=classes)
    if shard is None:
        return None
    try:
        times = np.asarray(shard.meta["times_ms"], dtype=np.int64)
        clip_id = shard.meta["clip_id"]
    except Exception:  # noqa: BLE001 - a list instead of numbers, a missing key...: extract again
        return None
    if not isinstance(clip_id, str) or not clip_id or times.shape != shard.targets.shape:
        return None
    if np.any(np.diff(times) <= 0) or times[0] < 0:
        return None
    return ClipFrames(entry.path, clip_id, shard.frames_path, times, shard.targets)


def _extract_clip(
    entry: ClipEntry,
    info: probe.VideoInfo,
    region: Region | None,
    out_dir: Path,
    key: str,
    options: FrameOptions,
    classes: Sequence[str],
    on_ms,
) -> ClipFrames:
    spec = decode.DecodeSpec(size=options.size, fps=options.fps, region=region)
    times: list[np.ndarray] = []

    def frames() -> Iterator[np.ndarray]:
        for batch in decode.iter_frames(entry.path, spec, info=info):
            yield batch.frames
            times.append(batch.times_ms)
            on_ms(int(batch.times_ms[-1]))

    if not write_shard_frames(out_dir, key, frames(), options.size):
        raise DataError(f"{entry.path}: no frames could be decoded")
    all_times = np.concatenate(times)
    targets = frame_targets(all_times, entry.spans, info.duration_ms, options.band_ms, classes)
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
    frames_path = write_shard_meta(out_dir, key, meta)
    return ClipFrames(entry.path, clip_id, frames_path, all_times, targets)


def _read_json_dict(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


# --------------------------------------------------------------------------- near-duplicates


def average_hash(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(64-bit average hash, contrast) of each frame: 8x8 block means of the grey picture, one bit
    per block (brighter than the frame's mean or not).

    Near-duplicate frames have hashes a few bits apart.  ``contrast`` (the spread of the block
    means) tells featureless frames (black, fades) apart: every one of them hashes alike.
    """
    frames = np.asarray(frames)
    n, height, width = frames.shape[:3]
    if n == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.float32)
    grey = frames.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    rows = np.linspace(0, height, 9).astype(int)
    cols = np.linspace(0, width, 9).astype(int)
    blocks = np.add.reduceat(np.add.reduceat(grey, rows[:-1], axis=1), cols[:-1], axis=2)
    blocks /= np.outer(np.diff(rows), np.diff(cols))[None]
    flat = blocks.reshape(n, 64)
    bits = flat > flat.mean(axis=1, keepdims=True)
    hashes = (bits.astype(np.uint64) << np.arange(64, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    return hashes, flat.std(axis=1).astype(np.float32)


def near_sources(
    queries: np.ndarray, pool: np.ndarray, pool_owner: np.ndarray, distance: int, chunk: int = 256
) -> tuple[np.ndarray, np.ndarray]:
    """For each query hash: how many distinct owners (clips) hold a pool hash within ``distance``
    bits, and the owner holding most of them (-1 when none)."""
    owners = int(pool_owner.max()) + 1 if len(pool_owner) else 0
    counts = np.zeros(len(queries), dtype=np.int64)
    best = np.full(len(queries), -1, dtype=np.int64)
    if owners == 0:
        return counts, best
    one_hot = np.zeros((len(pool), owners), dtype=np.float32)
    one_hot[np.arange(len(pool)), pool_owner] = 1
    for start in range(0, len(queries), chunk):
        close = (np.bitwise_count(queries[start : start + chunk, None] ^ pool[None, :]) <= distance).astype(np.float32)
        per_owner = close @ one_hot
        counts[start : start + chunk] = np.count_nonzero(per_owner, axis=1)
        best[start : start + chunk] = np.where(per_owner.max(axis=1) > 0, per_owner.argmax(axis=1), -1)
    return counts, best
