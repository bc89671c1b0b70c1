"""Live detection: score a source as it plays, fire events, and save instant replays.

    live source --ffmpeg--> small frames (pipe) --> model --> rolling score --> trigger --> event (JSON line)
                        \\-> ring of 1-second .ts segments (temp folder) -----------------> replay clip

ffmpeg (run by live.LiveCapture) keeps the last few seconds of the source, re-encoded
into short MPEG-TS segments that are overwritten in a ring.  When a trigger fires at time
T, the clip ``[T - before, T + after)`` is cut from the ring as soon as the segment holding
``T + after`` is finished -- in a worker thread, so scoring never stalls the capture.
"""

from __future__ import annotations

import collections
import datetime
import math
import re
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from autotosis.core.errors import OutputExistsError, UsageError
from autotosis.core.fsutil import atomic_path
from autotosis.core.region import Region
from autotosis.core.timefmt import name_time
from autotosis.media import decode, live, probe

Emit = Callable[[dict], None]


@dataclass(frozen=True)
class LiveOptions:
    threshold: float = 0.85  # fire when the rolling score reaches this
    release: float | None = None  # re-arm once it falls below this (default: threshold)
    cooldown_ms: int = 1000  # at least this long between two events
    window_ms: int = 500  # rolling score = mean of the scores in this window
    fps: float = 4.0  # scores per second
    class_name: str | None = None
    region: Region | None = None  # None = the model's crop
    full_frame: bool = False
    replay_dir: Path | None = None  # None = no replays
    replay_before_ms: int = 10_000
    replay_after_ms: int = 5_000
    segment_ms: int = 1000
    duration_ms: int | None = None  # stop after this much of the source
    print_scores: bool = False  # also emit every rolling score
    audio_track: int | None = None  # replays' sound: None mixes every track of a file source; N (from 1): the Nth

    def release_level(self) -> float:
        return self.threshold if self.release is None else self.release


class Trigger:
    """Rolling mean, threshold with hysteresis, and cooldown: ``update`` says when to fire.

    Fires when the rolling score reaches the threshold while armed, and at least
    ``cooldown`` after the previous event; re-arms when the score falls below ``release``.
    So one long appearance is one event, and a score flickering around the threshold
    fires at most once per cooldown.
    """

    def __init__(self, threshold: float, release: float, cooldown_ms: int, window_ms: int) -> None:
        if release > threshold:
            raise UsageError(f"release ({release}) must not be above the threshold ({threshold})")
        self.threshold, self.release, self.cooldown_ms, self.window_ms = threshold, release, cooldown_ms, window_ms
        self._recent: collections.deque[tuple[int, float]] = collections.deque()
        self._armed = True
        self._last_fired: int | None = None

    def update(self, time_ms: int, score: float) -> tuple[float, bool]:
        """(rolling score, whether an event fires now)."""
        self._recent.append((time_ms, score))
        while self._recent and self._recent[0][0] <= time_ms - self.window_ms:
            self._recent.popleft()
        rolling = sum(s for _, s in self._recent) / len(self._recent)
        fire = False
        if self._armed and rolling >= self.threshold:
            if self._last_fired is None or time_ms - self._last_fired >= self.cooldown_ms:
                fire, self._armed, self._last_fired = True, False, time_ms
        elif not self._armed and rolling < self.release:
            self._armed = True
        return rolling, fire


@dataclass(frozen=True)
class LiveSummary:
    frames: int
    events: int
    replays: tuple[Path, ...]
    last_time_ms: int


def replay_name(label: str, time_ms: int, score: float) -> str:
    return f"{label[:60]}_{name_time(time_ms)}_{score:.2f}.mp4"


def _clock_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="milliseconds")


class _Replays:
    """Replays waiting for their last seconds to be recorded, cut in a worker thread."""

    def __init__(
        self,
        capture: live.LiveCapture,
        folder: Path,
        label: str,
        before_ms: int,
        after_ms: int,
        emit: Emit,
        force: bool,
    ) -> None:
        self.capture, self.folder, self.label = capture, folder, label
        self.before_ms, self.after_ms, self.emit, self.force = before_ms, after_ms, emit, force
        self.pending: list[tuple[int, float]] = []
        self.saved: list[Path] = []
        self.errors: list[BaseException] = []
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="autotosis-replay")
        self._futures: list[Future] = []
        self._lock = threading.Lock()

    def add(self, time_ms: int, score: float) -> None:
        self.pending.append((time_ms, score))

    def poll(self, final: bool = False) -> None:
        """Hand every replay whose window is fully recorded (or, at the end, all of them) to the worker."""
        if not self.pending:
            return
        segments = self.capture.segments()
        recorded_until = segments[-1].end_ms if segments else 0
        waiting = []
        for time_ms, score in self.pending:
            end = time_ms + self.after_ms
            if end <= recorded_until or (final and segments):
                start = max(time_ms - self.before_ms, segments[0].start_ms, 0)
                end = min(end, recorded_until)
                needed = [s for s in segments if s.end_ms > start and s.start_ms < end]
                self._futures.append(self._pool.submit(self._save, needed, start, end, time_ms, score))
            else:
                waiting.append((time_ms, score))
        self.pending = waiting

    def _save(self, segments: list[live.RingSegment], start_ms: int, end_ms: int, time_ms: int, score: float) -> None:
        out = self.folder / replay_name(self.label, time_ms, score)
        try:
            with atomic_path(out, force=self.force) as tmp:
                live.cut_replay(segments, start_ms, end_ms, tmp)
        except BaseException as exc:  # reported by the main thread, which owns the error handling
            with self._lock:
                self.errors.append(exc)
            return
        with self._lock:
            self.saved.append(out)
        self.emit(
            {
                "event": "replay",
                "time_s": time_ms / 1000,
                "start_s": start_ms / 1000,
                "end_s": end_ms / 1000,
                "path": str(out),
            }
        )

    def raise_errors(self) -> None:
        with self._lock:
            if self.errors:
                raise self.errors[0]

    def close(self) -> None:
        self._pool.shutdown(wait=True)


def run_live(
    source: live.LiveSource, predictor, options: LiveOptions, emit: Emit, *, force: bool = False
) -> LiveSummary:
    """Score ``source`` until it ends (or ``options.duration_ms`` of it has passed, or Ctrl-C), emitting events.

    ``emit`` receives plain dicts (``event``: "start", "score", "trigger", "replay", "end"); it
    is also called from the replay worker thread (never at the same time), so it must be quick.
    Ctrl-C still saves the replays already triggered, then re-raises KeyboardInterrupt.
    """
    info = predictor.info
    name = options.class_name or info.positive_class()
    if name not in info.classes:
        raise UsageError(f"class {name!r} is not one of the model's classes ({', '.join(info.classes)})")
    trigger = Trigger(options.threshold, options.release_level(), options.cooldown_ms, options.window_ms)
    region = None if options.full_frame else (options.region or info.crop)
    spec = decode.DecodeSpec(size=info.input_size, fps=options.fps, region=region)
    lock = threading.Lock()

    def send(record: dict) -> None:
        with lock:
            emit(record)

    # A file is checked as every command checks its videos (a text or an image file is refused).
    tracks = _audio_tracks(source, options.audio_track)
    with tempfile.TemporaryDirectory(prefix="autotosis-live-") as tmp:
        ring = None
        if options.replay_dir is not None:
            options.replay_dir.mkdir(parents=True, exist_ok=True)
            # Room for a whole clip, plus a few segments the worker may still be copying.
            wrap = math.ceil((options.replay_before_ms + options.replay_after_ms) / options.segment_ms) + 4
            ring = live.RingSpec(
                Path(tmp) / "ring",
                segment_ms=options.segment_ms,
                wrap=wrap,
                audio_track=options.audio_track,
                audio_tracks=tracks,
            )
        with live.LiveCapture(source, spec, ring) as capture:
            replays = None
            if options.replay_dir is not None:
                replays = _Replays(
                    capture,
                    options.replay_dir,
                    source.label(),
                    options.replay_before_ms,
                    options.replay_after_ms,
                    send,
                    force,
                )
            send(
                {
                    "event": "start",
                    "source": source.target,
                    "kind": source.kind,
                    "class": name,
                    "threshold": options.threshold,
                    "cooldown_s": options.cooldown_ms / 1000,
                    "wallclock": _clock_now(),
                }
            )
            try:
                frames, events, last_ms, interrupted = _score(
                    capture, predictor, info.classes.index(name), trigger, options, replays, send
                )
                capture.close()  # a finished ring: the last segment is written and listed
                if replays is not None:
                    replays.poll(final=True)
            finally:
                if replays is not None:
                    replays.close()
            if replays is not None:
                replays.raise_errors()
    saved = tuple(replays.saved) if replays is not None else ()
    send(
        {
            "event": "end",
            "time_s": last_ms / 1000,
            "frames": frames,
            "events": events,
            "replays": len(saved),
            "interrupted": interrupted,
        }
    )
    if interrupted:
        raise KeyboardInterrupt
    return LiveSummary(frames=frames, events=events, replays=saved, last_time_ms=last_ms)


def _audio_tracks(source: live.LiveSource, track: int | None) -> int:
    """How many audio tracks the replays can mix: a file's own count (checked against ``track``);
    a device or stream is not probed (it may be slow to answer, or be read only once): 1."""
    if source.kind != "file":
        return 1
    from autotosis.outputs.render import check_audio_track

    info = probe.probe(source.target)
    check_audio_track([info], track)
    return max(1, info.audio_count)


def _score(
    capture: live.LiveCapture,
    predictor,
    index: int,
    trigger: Trigger,
    options: LiveOptions,
    replays: _Replays | None,
    send: Emit,
) -> tuple[int, int, int, bool]:
    """The scoring loop: (frames, events, last frame time, interrupted by Ctrl-C)."""
    frames = events = last_ms = 0
    try:
        for batch in capture.frames():
            time_ms = int(batch.times_ms[0])
            score = float(predictor.predict(batch.frames)[0, index])
            rolling, fire = trigger.update(time_ms, score)
            frames, last_ms = frames + 1, time_ms
            if options.print_scores:
                send(
                    {"event": "score", "time_s": time_ms / 1000, "score": round(score, 4), "rolling": round(rolling, 4)}
                )
            if fire:
                events += 1
                send(
                    {
                        "event": "trigger",
                        "time_s": time_ms / 1000,
                        "class": predictor.info.classes[index],
                        "score": round(rolling, 4),
                        "wallclock": _clock_now(),
                    }
                )
                if replays is not None:
                    replays.add(time_ms, rolling)
            if replays is not None:
                replays.raise_errors()
                replays.poll()
            if options.duration_ms is not None and time_ms >= options.duration_ms:
                break
    except KeyboardInterrupt:
        return frames, events, last_ms, True  # Ctrl-C is how a live session ends: save what is pending first
    return frames, events, last_ms, False


def check_replay_dir(folder: Path, label: str, force: bool) -> None:
    """Refuse to start when replays of this source from an earlier run could be overwritten."""
    if folder.exists() and not folder.is_dir():
        raise UsageError(f"{folder}: exists and is not a folder")
    if force or not folder.is_dir():
        return
    # Only names replay_name() gives this source: vod_from40.mp4's replays do not block vod.mp4's.
    pattern = re.compile(re.escape(label[:60]) + r"_\d+h\d{2}m\d{2}\.\d{3}s_\d+\.\d{2}\.mp4")
    earlier = sorted(p for p in folder.iterdir() if pattern.fullmatch(p.name))
    if earlier:
        raise OutputExistsError(earlier[0])
