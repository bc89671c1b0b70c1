"""Video -> scores: stream frames out of ffmpeg and classify them in batches.

ffmpeg decodes, samples, crops and scales in its own process; a reader thread keeps a
few batches queued so decoding and inference overlap (one core each on a 2-core box).
No frame is ever written to disk, and memory does not grow with the video's length.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np

from autotosis import media
from autotosis.fsutil import file_fingerprint
from autotosis.progress import ProgressCallback, no_progress
from autotosis.scores import ScoreCache, Scores, cache_key

T = TypeVar("T")


@dataclass(frozen=True)
class ScanOptions:
    fps: float = 2.0  # scores per second of video
    batch_size: int = 32
    region: tuple[float, float, float, float] | None = None  # None = the crop stored in the model
    full_frame: bool = False  # ignore the model's crop and use the whole frame
    use_cache: bool = True
    cache_dir: Path | None = None


def prefetch(iterator: Iterator[T], depth: int = 4) -> Iterator[T]:
    """Run ``iterator`` in a thread, ``depth`` items ahead of the consumer."""
    items: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def pump() -> None:
        try:
            for item in iterator:
                while not stop.is_set():
                    try:
                        items.put((item, None), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    break
            items.put((done, None))
        except BaseException as exc:  # re-raised in the consumer
            items.put((done, exc))

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    try:
        while True:
            item, error = items.get()
            if item is done:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        # Drain so the pump can notice `stop` and close the ffmpeg generator.
        while thread.is_alive():
            try:
                items.get(timeout=0.1)
            except queue.Empty:
                pass
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def scan_video(
    video: Path | str,
    model_path: Path | str,
    options: ScanOptions = ScanOptions(),
    *,
    progress: ProgressCallback = no_progress,
) -> Scores:
    """Score ``video`` with the checkpoint at ``model_path`` (cached unless disabled)."""
    from autotosis.model import load_checkpoint, model_fingerprint, predict_probs

    video = Path(video)
    info = media.probe(video)
    model, model_info, _ = load_checkpoint(Path(model_path))
    region = None if options.full_frame else (options.region or model_info.crop)
    region = tuple(region) if region is not None else None
    fingerprint = model_fingerprint(Path(model_path))
    spec = media.DecodeSpec(size=model_info.input_size, fps=options.fps, region=region)
    key = cache_key(file_fingerprint(video), fingerprint, {"fps": options.fps, "size": spec.size, "mode": "dense"}, region)
    cache = ScoreCache(options.cache_dir)
    if options.use_cache:
        cached = cache.load(key, video)
        if cached is not None:
            progress("scan", info.duration_ms / 1000, info.duration_ms / 1000)
            return cached

    times: list[np.ndarray] = []
    probs: list[np.ndarray] = []
    total_s = info.duration_ms / 1000
    progress("scan", 0, total_s)
    for batch in prefetch(media.iter_frames(video, spec, batch_size=options.batch_size, info=info)):
        probs.append(predict_probs(model, batch.frames, model_info))
        times.append(batch.times_ms)
        progress("scan", min(total_s, batch.times_ms[-1] / 1000), total_s)
    progress("scan", total_s, total_s)
    step_ms = int(round(1000 / options.fps))
    scores = Scores(
        video=video,
        duration_ms=info.duration_ms,
        classes=tuple(model_info.classes),
        times_ms=np.concatenate(times) if times else np.zeros(0, np.int64),
        probs=np.concatenate(probs).astype(np.float32) if probs else np.zeros((0, len(model_info.classes)), np.float32),
        step_ms=step_ms,
        task=model_info.task,
        model=fingerprint,
        extra={"region": region, "fps": options.fps, "threshold": model_info.threshold},
    )
    if options.use_cache:
        cache.store(key, scores)
    return scores
