"""Decoding: streamed small frames with exact presentation times (``iter_frames``), full frames for
thumbnails and stills, the active picture area."""

from __future__ import annotations

import contextlib
import os
import re
import select
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from autotosis.core.errors import MediaError
from autotosis.core.region import Region, crop_pixels
from autotosis.media.probe import VideoInfo, probe
from autotosis.media.tools import (
    _STDERR_TAIL_LINES,
    POLL_S,
    _last_error_line,
    _run,
    _seconds,
    _signal_text,
    _spawn,
    _stop,
    _Stopped,
    _tail,
    _tool,
    _url,
    _wait,
)

# --------------------------------------------------------------------------- decoding


@dataclass(frozen=True)
class FrameBatch:
    """Consecutive decoded frames: ``frames[i]`` was shown at ``times_ms[i]``."""

    times_ms: np.ndarray  # int64 (n,)
    frames: np.ndarray  # uint8 (n, size, size, 3), RGB


@dataclass(frozen=True)
class DecodeSpec:
    """How to turn a video into small frames: sampling, region and output size."""

    size: int = 128
    fps: float | None = 2.0  # None = every decoded frame (used with keyframes_only)
    region: Region | None = None
    keyframes_only: bool = False
    start_ms: int | None = None
    end_ms: int | None = None
    # Skipping the H.264 loop filter speeds decoding up ~15% and is invisible at 128x128.
    fast_decode: bool = True
    threads: int | None = None
    # Frames the decoder leaves out: None (none), "noref" (frames no other frame refers to: most
    # B-frames, about half the decoding of a typical stream) or "bidir" (every B-frame: less again,
    # but a stream whose other frames refer to B-frames then decodes with missing references, and
    # iter_frames raises ReferencesSkipped).  A sample shows the last *decoded* frame at or before
    # its time, a few frames (tens of ms) early; use it through iter_frames_skipping, which falls
    # back to decoding more where that would be a whole sampling step early or references are lost.
    skip: str | None = None

    def __post_init__(self) -> None:
        if self.skip not in SKIP_LEVELS:
            raise ValueError(f"skip must be one of {SKIP_LEVELS}, not {self.skip!r}")


SKIP_LEVELS = (None, "noref", "bidir")


class ReferencesSkipped(MediaError):
    """Decoding without B-frames lost pictures other frames refer to (``DecodeSpec(skip="bidir")``):
    the frames delivered may be damaged."""


def _decode_filters(spec: DecodeSpec, info: VideoInfo) -> str:
    filters = []
    if spec.fps is not None and not spec.keyframes_only:
        # fps first so crop/scale only run on the frames we keep.  round=up: the sample at
        # time T is the frame on screen at T (the last one at or before T); the default
        # (near) would hand out a frame up to half a step *later* than its time says.
        rate = f"fps={spec.fps!r}:round=up"
        if spec.start_ms:
            # Timestamps start at 0 at the seek point.  The first frame after it may come later (the seek
            # point falls between two frames, or on a skipped one): without this the fps filter would
            # start at the next sampling time after that frame and lose the first sample.
            rate += ":start_time=0"
        filters.append(rate)
    if spec.region is not None:
        w, h, x, y = crop_pixels(spec.region, info.width, info.height)
        filters.append(f"crop={w}:{h}:{x}:{y}:exact=1")
    # Stretch to a square: the same rule in training and scanning, so the model sees the
    # same geometry; 'area' avoids aliasing when shrinking 1080p to 128 pixels.
    filters.append(f"scale={spec.size}:{spec.size}:flags=area")
    filters.append("format=rgb24")
    filters.append("showinfo")
    return ",".join(filters)


# What h264 and hevc print when a frame refers to a picture that was not decoded.
_MISSING_REFERENCE = re.compile(r"missing reference|reference picture missing|could not find ref|concealing", re.I)
_SHOWINFO_TB = re.compile(r"Parsed_showinfo_\d+ .*config in time_base: (\d+)/(\d+)")
_SHOWINFO_FRAME = re.compile(r"Parsed_showinfo_\d+ .*\bn:\s*\d+ pts:\s*(-?\d+)")


class _StderrReader(threading.Thread):
    """Collects frame timestamps (from showinfo) and the tail of ffmpeg's stderr."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        # A list under a condition, not a queue: the consumer takes a whole batch's times
        # with one wait instead of one blocking get per frame.
        self._times: list[int] = []
        self._ended = False
        self._ready = threading.Condition()
        self.tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self.missing_references = 0
        self._time_base = Fraction(1, 1000)

    def run(self) -> None:
        try:
            for raw in self._stream:
                line = raw.decode("utf-8", "replace").rstrip()
                frame = _SHOWINFO_FRAME.search(line)
                if frame:
                    ms = int(round(int(frame.group(1)) * self._time_base * 1000))
                    with self._ready:
                        self._times.append(ms)
                        self._ready.notify()
                    continue
                tb = _SHOWINFO_TB.search(line)
                if tb:
                    self._time_base = Fraction(int(tb.group(1)), int(tb.group(2)))
                    continue
                if "Parsed_showinfo" not in line:
                    self.tail.append(line)
                    if _MISSING_REFERENCE.search(line):
                        self.missing_references += 1
        finally:
            with self._ready:
                self._ended = True
                self._ready.notify()

    def take(self, count: int, timeout: float = 60.0) -> list[int] | None:
        """The next ``count`` frame times, or None if ffmpeg's log ended (or stalled) first."""
        deadline = time.monotonic() + timeout
        with self._ready:
            # In slices of POLL_S: a long wait in C would hold back a Ctrl-C (see _spawn).
            while len(self._times) < count and not self._ended and time.monotonic() < deadline:
                self._ready.wait(min(POLL_S, max(0.0, deadline - time.monotonic())))
            if len(self._times) < count:
                return None
            times = self._times[:count]
            del self._times[:count]  # consumed times go, so memory stays flat on a long VOD
            return times


def _decode_argv(path: Path, spec: DecodeSpec, info: VideoInfo) -> list[str]:
    """The ffmpeg command behind iter_frames: raw RGB frames on stdout, showinfo on stderr."""
    argv = [_tool("ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info"]
    if spec.threads:
        argv += ["-threads", str(spec.threads)]
    if spec.fast_decode:
        argv += ["-skip_loop_filter", "all"]
    if spec.keyframes_only:
        argv += ["-skip_frame", "nokey"]
    elif spec.skip:
        argv += ["-skip_frame", spec.skip]
    if spec.start_ms:
        argv += ["-ss", _seconds(spec.start_ms)]
    argv += ["-i", _url(path)]
    if spec.end_ms is not None:
        argv += ["-t", _seconds(max(spec.end_ms - (spec.start_ms or 0), 1))]
    return argv + raw_frames_output(_decode_filters(spec, info), info.picture_input)


def raw_frames_output(filters: str, picture: str = "0:v:0") -> list[str]:
    """Output arguments shared by every frame decode (files and live sources): the ``picture`` stream (a
    file's ``VideoInfo.picture_input``; a live source's first video stream) through ``filters``, frames as
    they come (no duplication or dropping), raw RGB on stdout."""
    video = ["-map", picture, "-an", "-sn", "-dn", "-vf", filters, "-fps_mode", "passthrough"]
    return video + ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]


def decode_discard(path: Path | str, spec: DecodeSpec, *, info: VideoInfo | None = None) -> None:
    """Run exactly the decode iter_frames would, throwing the frames away.

    Benchmarks time this as the limit a scan can reach: ffmpeg alone, same sampling,
    crop and scale, nobody reading the frames.
    """
    path = Path(path)
    argv = _decode_argv(path, spec, info or probe(path))
    proc = _run(argv, stdout=subprocess.DEVNULL)
    if proc.returncode != 0:
        tail = _tail(proc.stderr)
        raise MediaError(f"decoding failed: {_last_error_line(tail)}", path, stderr_tail=tail)


def iter_frames(
    path: Path | str,
    spec: DecodeSpec,
    *,
    batch_size: int = 32,
    info: VideoInfo | None = None,
    stop: threading.Event | None = None,
) -> Iterator[FrameBatch]:
    """Stream a video as batches of small RGB frames with exact presentation times.

    ffmpeg decodes, samples, crops and scales in its own process (so it runs on another
    core while we do inference) and writes raw RGB to a pipe: no image files, and memory
    stays flat whatever the video's length.  Times come from the frames' presentation
    timestamps (via showinfo), relative to the start of the file, never from a counter.

    ``stop`` (set by another thread, e.g. prefetch's consumer leaving) ends the iteration
    within ``POLL_S``, even while ffmpeg delivers nothing, and kills ffmpeg's process group.
    """
    path = Path(path)
    info = info or probe(path)
    argv = _decode_argv(path, spec, info)
    frame_bytes = spec.size * spec.size * 3
    offset_ms = spec.start_ms or 0
    proc = _spawn(argv)
    last_ms = offset_ms
    try:
        _widen_pipe(proc.stdout, frame_bytes * batch_size)
        reader = _StderrReader(proc.stderr)
        reader.start()
        while True:
            data = _read_exact(proc.stdout, frame_bytes * batch_size, stop)
            count = len(data) // frame_bytes
            if count == 0:
                break
            frames = np.frombuffer(data[: count * frame_bytes], dtype=np.uint8).reshape(count, spec.size, spec.size, 3)
            taken = reader.take(count)
            if taken is None:
                raise MediaError("decoder output and timestamps disagree", path, stderr_tail="\n".join(reader.tail))
            times = np.asarray(taken, dtype=np.int64) + offset_ms
            last_ms = int(times[-1])
            yield FrameBatch(times_ms=times, frames=frames)
            if count < batch_size:
                break
        returncode = _wait(proc, stop)
        _join(reader, 5)
        tail = "\n".join(reader.tail)
        if returncode != 0:
            cause = _signal_text(returncode) if returncode < 0 else _last_error_line(tail)
            raise MediaError(f"decoding failed: {cause}", path, stderr_tail=tail)
        _check_complete(path, spec, info, last_ms, tail)
        if spec.skip == "bidir" and reader.missing_references:
            raise ReferencesSkipped(
                f"{reader.missing_references} frames referred to skipped B-frames", path, stderr_tail=tail
            )
    except _Stopped:
        return  # the consumer is gone: nobody wants the rest, or an error about it
    finally:
        _stop(proc)
        proc.stdout.close()


@dataclass
class SkipPolicy:
    """What a video's refinements may leave undecoded, learnt while decoding it (shared by its stretches).

    First every B-frame (``skip="bidir"``), for stretches up to ``max_held_ms`` (their frames are held
    until the decoder has ended and said no reference was lost); once a stretch of the video lost a
    reference or repeated a sample that way, only unreferenced frames (``"noref"``) from then on.
    """

    bidirectional: bool = True
    max_held_ms: int = 30_000


def iter_frames_skipping(
    path: Path | str,
    spec: DecodeSpec,
    *,
    batch_size: int = 32,
    info: VideoInfo | None = None,
    stop: threading.Event | None = None,
    policy: SkipPolicy | None = None,
) -> Iterator[FrameBatch]:
    """``iter_frames`` with frames skipped (``DecodeSpec.skip``), exact where it matters.

    With a ``policy`` that allows it and a stretch short enough, every B-frame is skipped and the
    stretch's frames are held until ffmpeg has ended: they are handed out only if no frame lost a
    reference (``ReferencesSkipped``: encoders that let other frames refer to B-frames, x264 from
    its slower presets on, x265) and no sample repeats; otherwise the policy falls back to "noref"
    for this video and the stretch is decoded again.

    With "noref", where the decoded frames are further apart than a sampling step (a stream whose
    every frame between two references is unreferenced, e.g. many B-frames at a low frame rate),
    the fps filter repeats a frame: two byte-identical samples in a row.  From the first repeat on,
    the rest is decoded again without skipping (from that sample's time; spans start on the
    sampling grid, so the times stay on it).  A truly still picture repeats too and costs the same
    re-decode, never a wrong sample.
    """
    path = Path(path)
    info = info or probe(path)
    if policy is not None and policy.bidirectional and _held_length_ms(spec, info) <= policy.max_held_ms:
        held = _without_b_frames(path, spec, batch_size, info, stop)
        if stop is not None and stop.is_set():
            return
        if held is not None:
            yield from held
            return
        policy.bidirectional = False
    fast = replace(spec, skip="noref")
    previous: np.ndarray | None = None
    resume_ms: int | None = None
    with contextlib.closing(iter_frames(path, fast, batch_size=batch_size, info=info, stop=stop)) as batches:
        for batch in batches:
            repeat = _first_repeat(previous, batch.frames)
            if repeat is not None:
                if repeat:
                    yield FrameBatch(times_ms=batch.times_ms[:repeat], frames=batch.frames[:repeat])
                resume_ms = int(batch.times_ms[repeat])
                break
            previous = batch.frames[-1]
            yield batch
    if resume_ms is not None and not (stop is not None and stop.is_set()):
        exact = replace(spec, skip=None, start_ms=resume_ms)
        yield from iter_frames(path, exact, batch_size=batch_size, info=info, stop=stop)


def _end_ms(spec: DecodeSpec, info: VideoInfo) -> int:
    """Where a decode of ``spec`` ends: its end, or the end of the video."""
    return spec.end_ms if spec.end_ms is not None else info.duration_ms


def _held_length_ms(spec: DecodeSpec, info: VideoInfo) -> int:
    return max(0, _end_ms(spec, info) - (spec.start_ms or 0))


def _without_b_frames(
    path: Path, spec: DecodeSpec, batch_size: int, info: VideoInfo, stop: threading.Event | None
) -> list[FrameBatch] | None:
    """The stretch decoded without any B-frame, held whole; None if a reference was lost or a sample repeats."""
    held: list[FrameBatch] = []
    previous: np.ndarray | None = None
    fast = replace(spec, skip="bidir")
    try:
        with contextlib.closing(iter_frames(path, fast, batch_size=batch_size, info=info, stop=stop)) as batches:
            for batch in batches:
                if _first_repeat(previous, batch.frames) is not None:
                    return None
                previous = batch.frames[-1]
                held.append(batch)
    except ReferencesSkipped:
        return None
    return held


def _first_repeat(previous: np.ndarray | None, frames: np.ndarray) -> int | None:
    """Index in ``frames`` of the first frame byte-identical to the one before it (``previous``: the
    last frame of the batch before), or None."""
    seen = frames if previous is None else np.concatenate([previous[None], frames])
    same = np.flatnonzero((seen[1:] == seen[:-1]).all(axis=(1, 2, 3)))
    if not len(same):
        return None
    return int(same[0]) + len(frames) - len(seen) + 1


def _join(thread: threading.Thread, timeout: float) -> None:
    """``thread.join(timeout)`` in slices of POLL_S (a pending Ctrl-C is seen meanwhile)."""
    deadline = time.monotonic() + timeout
    while thread.is_alive() and time.monotonic() < deadline:
        thread.join(POLL_S)


# What ffmpeg prints when a file ends early or is damaged (it still exits with 0).
_DAMAGED = re.compile(r"partial file|corrupt|error while decoding|invalid nal|error splitting|invalid data found", re.I)


def _check_complete(path: Path, spec: DecodeSpec, info: VideoInfo, last_ms: int, tail: str) -> None:
    """MediaError when decoding stopped well before the end *and* ffmpeg reported damage.

    A truncated download still has its full duration in the header; without this the scan
    would quietly cover only the readable part.
    """
    expected_ms = _end_ms(spec, info)
    # Keyframes may legitimately be far apart, sampled frames not.
    slack_ms = 30_000 if spec.keyframes_only or not spec.fps else max(1500, int(3000 / spec.fps))
    if last_ms + slack_ms < expected_ms and _DAMAGED.search(tail):
        raise MediaError(
            f"the file ends early: decoding stopped at {last_ms / 1000:.1f} s of {expected_ms / 1000:.1f} s "
            f"({_last_error_line(tail)})",
            path,
            stderr_tail=tail,
            hint="the file is truncated or damaged; download or copy it again",
        )


def _widen_pipe(stream, size: int) -> None:
    """Let ffmpeg write up to ``size`` bytes ahead (Linux; elsewhere the default stays).

    A 64 KiB pipe holds about one 128x128 frame, so ffmpeg would stall on nearly every
    frame until our reader thread gets a turn, and its decoding threads with it.
    """
    import fcntl

    setter = getattr(fcntl, "F_SETPIPE_SZ", None)
    if setter is None:
        return
    try:
        fcntl.fcntl(stream.fileno(), setter, min(max(size, 1 << 16), 1 << 20))
    except OSError:
        pass  # above /proc/sys/fs/pipe-max-size for an unprivileged user: keep the default


def _read_exact(stream, size: int, stop: threading.Event | None = None) -> bytes:
    """Read ``size`` bytes unless EOF comes first (a raw pipe returns short reads).

    Never blocks longer than POLL_S at a time: poll() with a timeout before each read, so a
    pending Ctrl-C is raised in the main thread and ``stop`` (raising _Stopped) is seen in
    another, however long ffmpeg takes to deliver.
    """
    fd = stream.fileno()
    poller = select.poll()
    poller.register(fd, select.POLLIN | select.POLLPRI)
    chunks = []
    remaining = size
    while remaining > 0:
        if stop is not None and stop.is_set():
            raise _Stopped
        if not poller.poll(int(POLL_S * 1000)):
            continue
        chunk = os.read(fd, remaining)
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# Where a time has no frame (past the last picture: the sound of a recording may run on), grab_frame shows
# the last one within this much before it, read at GRAB_FALLBACK_FPS.
GRAB_FALLBACK_MS = 3000
GRAB_FALLBACK_FPS = 10


def grab_frame(source: VideoInfo, time_ms: int, width: int = 320) -> np.ndarray:
    """One full frame at ``time_ms`` as RGB (H x W x 3), square pixels, ``width`` wide.

    Used for thumbnails and stills; seeks before the input, so it is quick anywhere in a VOD.  Past the
    last picture (a file whose sound outlasts its picture, scores made before that was known) it is the
    last frame of the ``GRAB_FALLBACK_MS`` before the time.
    """
    display_width = source.width * float(source.sar)
    height = max(2, int(round(width * source.height / display_width / 2)) * 2)
    size = width * height * 3
    at = max(0, min(time_ms, source.duration_ms - 1))
    scale = f"scale={width}:{height}:flags=area,setsar=1,format=rgb24"
    proc = _run(_grab_argv(source, at, ["-frames:v", "1", "-vf", scale]), timeout=120)
    if proc.returncode == 0 and len(proc.stdout) >= size:
        return np.frombuffer(proc.stdout[:size], dtype=np.uint8).reshape(height, width, 3)
    if proc.returncode == 0 and at > 0:
        start = max(0, at - GRAB_FALLBACK_MS)
        window = ["-t", _seconds(at - start + 1), "-vf", f"fps={GRAB_FALLBACK_FPS}:round=down,{scale}"]
        proc = _run(_grab_argv(source, start, window), timeout=120)
        if proc.returncode == 0 and len(proc.stdout) >= size:
            last = len(proc.stdout) // size - 1
            return np.frombuffer(proc.stdout[last * size : (last + 1) * size], dtype=np.uint8).reshape(height, width, 3)
    tail = _tail(proc.stderr)
    raise MediaError(
        f"could not read a frame at {time_ms / 1000:.3f} s: {_last_error_line(tail) if tail else 'no frame there'}",
        source.path,
        stderr_tail=tail,
    )


def _grab_argv(source: VideoInfo, start_ms: int, output: list[str]) -> list[str]:
    """ffmpeg reading ``source``'s picture from ``start_ms`` (seeking before the input) through ``output``'s
    options, raw RGB on stdout."""
    argv = [_tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-ss", _seconds(start_ms)]
    argv += ["-i", _url(source.path), "-map", source.picture_input, *output]
    return argv + ["-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]


def display_size(source: VideoInfo, width: int | None = None) -> tuple[int, int]:
    """(width, height) of the picture with square pixels: full size, or ``width`` wide."""
    display_width = source.width * float(source.sar)
    if width is None:
        if source.sar == 1:
            return source.width, source.height
        return max(2, int(round(display_width / 2)) * 2), source.height
    return width, max(2, int(round(width * source.height / display_width / 2)) * 2)


def grab_frames(
    source: VideoInfo, times_ms: Sequence[int], *, width: int | None = None, per_process: int = 8
) -> Iterator[tuple[int, np.ndarray]]:
    """Whole frames (RGB, square pixels, full size or ``width`` wide) at each of ``times_ms``.

    Several seeks share one ffmpeg process (one ``-ss T -t 2 -i FILE`` input per time, each
    trimmed to its first frame and concatenated into one raw stream), so sampling hundreds
    of frames from a long VOD costs hundreds of seeks, not a full decode, and a handful of
    process starts.  Yields ``(requested time, frame)`` in the order given; a time where the
    file has no frame (past the last one) is skipped.
    """
    out_w, out_h = display_size(source, width)
    times = [max(0, min(int(t), source.duration_ms - 1)) for t in times_ms]
    for first in range(0, len(times), per_process):
        chunk = times[first : first + per_process]
        frames = _grab_chunk(source, chunk, out_w, out_h)
        if frames is None and len(chunk) > 1:  # some time had no frame: find which, one by one
            for time_ms in chunk:
                single = _grab_chunk(source, [time_ms], out_w, out_h)
                if single:
                    yield time_ms, single[0]
            continue
        for time_ms, frame in zip(chunk, frames or []):
            yield time_ms, frame


def _grab_chunk(source: VideoInfo, times_ms: Sequence[int], width: int, height: int) -> list[np.ndarray] | None:
    """The frames at ``times_ms`` from one ffmpeg run, or None when fewer came out."""
    argv = [_tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error"]
    for time_ms in times_ms:
        argv += ["-ss", _seconds(time_ms), "-t", "2", "-i", _url(source.path)]
    chains = [
        f"[{i}:v:{source.video_stream}]trim=end_frame=1,setpts=PTS-STARTPTS,scale={width}:{height}:flags=bicubic,setsar=1,format=rgb24[v{i}]"
        for i in range(len(times_ms))
    ]
    joined = "".join(f"[v{i}]" for i in range(len(times_ms)))
    graph = ";".join(chains) + f";{joined}concat=n={len(times_ms)}:v=1:a=0[out]"
    argv += [
        "-filter_complex",
        graph,
        "-map",
        "[out]",
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]
    proc = _run(argv, timeout=600)
    if proc.returncode != 0:
        tail = _tail(proc.stderr)
        raise MediaError(f"could not read frames: {_last_error_line(tail)}", source.path, stderr_tail=tail)
    size = width * height * 3
    if len(proc.stdout) < size * len(times_ms):
        return None
    data = np.frombuffer(proc.stdout, dtype=np.uint8)
    return [data[i * size : (i + 1) * size].reshape(height, width, 3) for i in range(len(times_ms))]


_CROPDETECT = re.compile(r"crop=(\d+):(\d+):(\d+):(\d+)")


def detect_active_area(source: VideoInfo, *, min_border: float = 0.02) -> Region | None:
    """The picture inside letterbox / pillarbox borders, as a relative region; None without borders.

    ffmpeg's cropdetect over the keyframes of the whole file (fast: nothing else is decoded),
    accumulating the largest non-black box, so a dark scene does not shrink the result.
    Borders thinner than ``min_border`` of the side are not worth a crop.
    """
    argv = [
        _tool("ffmpeg"),
        "-nostdin",
        "-hide_banner",
        "-nostats",
        "-loglevel",
        "info",
        "-skip_frame",
        "nokey",
        "-i",
        _url(source.path),
        "-map",
        source.picture_input,
        "-an",
        "-sn",
        "-dn",
        "-vf",
        "cropdetect=round=2:skip=0:reset=0",
        "-f",
        "null",
        "-",
    ]
    proc = _run(argv, timeout=3600)
    text = proc.stderr.decode("utf-8", "replace")
    if proc.returncode != 0:
        tail = _tail(text)
        raise MediaError(f"border detection failed: {_last_error_line(tail)}", source.path, stderr_tail=tail)
    found = _CROPDETECT.findall(text)
    if not found:
        return None
    w, h, x, y = (int(v) for v in found[-1])
    if w <= 0 or h <= 0:
        return None  # only black frames: nothing to go by
    width, height = source.width, source.height
    region = Region(x / width, y / height, min(1.0, (x + w) / width), min(1.0, (y + h) / height))
    if region[0] < min_border and region[1] < min_border and region[2] > 1 - min_border and region[3] > 1 - min_border:
        return None
    return region
