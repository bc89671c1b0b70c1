"""Everything that runs ffmpeg or ffprobe lives here, and only here.

Other modules pass typed values (paths, millisecond times, sizes, relative regions) and
get typed values back; they never see a command line.  Commands are argv lists (never a
shell), input and output paths are given as ``file:`` URLs so names with ``:``, a
leading ``-`` or other odd characters are never parsed as options or protocols.
"""

from __future__ import annotations

import atexit
import functools
import json
import math
import os
import re
import select
import shutil
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from autotosis.core.errors import MediaError, ToolMissingError
from autotosis.core.region import Region, crop_pixels

MIN_FFMPEG_VERSION = (5, 1)
_STDERR_TAIL_LINES = 25


# --------------------------------------------------------------------------- tools


def _tool(name: str) -> str:
    """Path of ffmpeg/ffprobe; ``AUTOTOSIS_FFMPEG`` may point at another ffmpeg build."""
    override = os.environ.get(f"AUTOTOSIS_{name.upper()}")
    found = override or shutil.which(name)
    if not found:
        raise ToolMissingError(
            f"{name} was not found on PATH",
            hint="install it (Debian/Ubuntu: apt-get install ffmpeg) or run `make demo` once",
        )
    _tool_version(name, found)  # once per process: a too old build fails at the start, not mid-run
    return found


def ffmpeg_version() -> tuple[int, int]:
    """(major, minor) of the ffmpeg on PATH; ToolMissingError when absent or too old."""
    return _tool_version("ffmpeg", _tool("ffmpeg"))


@functools.lru_cache(maxsize=None)
def _tool_version(name: str, path: str) -> tuple[int, int]:
    """(major, minor) of the ffmpeg/ffprobe at ``path``; ToolMissingError when it does not run or is too old."""
    try:
        out = _run([path, "-hide_banner", "-version"], timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissingError(
            f"{name} ({path}) does not run: {exc}",
            hint="install a working ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)",
        ) from exc
    match = re.search(rf"{name} version n?(\d+)\.(\d+)", out.stdout.decode("utf-8", "replace"))
    if not match:
        # Git builds print e.g. "N-112345-g..."; assume they are new enough.
        return (99, 0)
    version = (int(match.group(1)), int(match.group(2)))
    if version < MIN_FFMPEG_VERSION:
        raise ToolMissingError(
            f"{name} {version[0]}.{version[1]} ({path}) is too old",
            hint=f"autotosis needs ffmpeg >= {MIN_FFMPEG_VERSION[0]}.{MIN_FFMPEG_VERSION[1]}",
        )
    return version


def _url(path: Path | str) -> str:
    # "file:" stops ffmpeg from reading "a:b.mp4" as protocol "a" or "-x.mp4" as an option.
    return "file:" + str(Path(path).absolute())


def _tail(text: str | bytes, lines: int = _STDERR_TAIL_LINES) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return "\n".join(text.strip().splitlines()[-lines:])


def _last_error_line(stderr_tail: str) -> str:
    """The most telling line of ffmpeg's stderr, for one-line error messages."""
    lines = [line for line in stderr_tail.splitlines() if line.strip()]
    for line in reversed(lines):
        if re.search(r"error|invalid|no such|not found|could not|unable|failed|denied|no space", line, re.I):
            return re.sub(r"^\[[^]]*\]\s*", "", line).strip()
    return lines[-1].strip() if lines else "ffmpeg failed"


def run_ffmpeg(args: Sequence[str], *, what: str, path: Path | str | None = None, timeout: float | None = None) -> None:
    """Run ffmpeg with ``args`` (argv list); raise MediaError with its stderr tail on failure."""
    argv = [_tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", *args]
    try:
        proc = _run(argv, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"{what}: ffmpeg did not finish within {timeout:.0f} s", path) from exc
    if proc.returncode != 0:
        tail = _tail(proc.stderr)
        raise MediaError(
            f"{what} failed: {_last_error_line(tail) if tail else _signal_text(proc.returncode)}",
            path,
            stderr_tail=tail,
        )


def _signal_text(returncode: int) -> str:
    """Why ffmpeg stopped when it printed nothing: usually a signal (e.g. SIGXFSZ at a file size limit)."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        limit = " (file size limit reached)" if name == "SIGXFSZ" else ""
        return f"ffmpeg was killed by {name}{limit}"
    return f"ffmpeg exited with status {returncode}"


# --------------------------------------------------------------------------- processes
#
# How a Ctrl-C (or SIGTERM) stops ffmpeg, by design rather than by luck:
#
# * Every ffmpeg/ffprobe runs in a process group of its own (``_spawn``).  A terminal's Ctrl-C
#   reaches only autotosis, never ffmpeg behind its back (which used to race with us: ffmpeg
#   exiting on its own turned a Ctrl-C into "decoding failed"), and autotosis stops a child by
#   killing its whole group (a wrapper script and whatever it started go too).
# * Python runs signal handlers only in the main thread, but the kernel may deliver a process
#   signal to any thread (a decoder's helper thread, a torch worker).  Then a main thread
#   blocked in C (a lock, a pipe read, waitpid) is not woken, and the KeyboardInterrupt waits
#   until that call returns: a scan stalled in a real-time decode sat there for minutes
#   (issue 16).  So no wait here, and none in prefetch, blocks longer than ``POLL_S``: pipes
#   are read after poll() with a timeout, processes are waited for in slices, so a pending
#   signal is acted on within ``POLL_S`` whichever thread the kernel chose.
# * A reader in a helper thread is stopped through a ``threading.Event`` it checks between
#   those slices (``iter_frames(stop=...)``): no registry of decoders per thread, no killing
#   from another thread.  ``_CHILDREN`` only serves the exit handler, the last resort that
#   no ffmpeg outlives us.

POLL_S = 0.1

_CHILDREN: set[subprocess.Popen] = set()
_CHILDREN_LOCK = threading.Lock()


class _Stopped(Exception):
    """A read gave up because its stop event was set (never leaves this module)."""


def _spawn(
    argv: Sequence[str], *, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize: int = 0
) -> subprocess.Popen:
    """Start ffmpeg/ffprobe in a process group of its own (see above); unbuffered pipes by default."""
    proc = subprocess.Popen(list(argv), stdin=stdin, stdout=stdout, stderr=stderr, bufsize=bufsize, process_group=0)
    with _CHILDREN_LOCK:
        _CHILDREN.add(proc)
    return proc


def _forget(proc: subprocess.Popen) -> None:
    with _CHILDREN_LOCK:
        _CHILDREN.discard(proc)


def _stop(proc: subprocess.Popen) -> None:
    """Kill ``proc``'s process group (if it still runs) and reap it.

    The group id is the child's pid, which cannot be reused before we reap the child: a
    group we kill is always ours.
    """
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(timeout=30)  # SIGKILL cannot be ignored: this is quick
        except subprocess.TimeoutExpired:
            pass
    _forget(proc)


def _wait(proc: subprocess.Popen, stop: threading.Event | None = None) -> int:
    """``proc.wait()`` in slices of POLL_S (a pending Ctrl-C is seen; ``stop`` raises _Stopped)."""
    while True:
        if stop is not None and stop.is_set():
            raise _Stopped
        try:
            return proc.wait(timeout=POLL_S)
        except subprocess.TimeoutExpired:
            continue


def _communicate(proc: subprocess.Popen, *, timeout: float | None = None) -> tuple[bytes, bytes]:
    """``proc.communicate()`` in slices of POLL_S; on any exception (Ctrl-C, timeout) the group is killed."""
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        while True:
            wait = POLL_S if deadline is None else max(0.0, min(POLL_S, deadline - time.monotonic()))
            try:
                out, err = proc.communicate(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
    except BaseException:
        _stop(proc)
        raise
    _forget(proc)
    return out or b"", err or b""


def _run(argv: Sequence[str], *, timeout: float | None = None, stdout=subprocess.PIPE) -> subprocess.CompletedProcess:
    """Run ffmpeg/ffprobe to the end, capturing its output; subprocess.TimeoutExpired after ``timeout``."""
    proc = _spawn(argv, stdout=stdout)
    out, err = _communicate(proc, timeout=timeout)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)


def _stop_all() -> None:
    """At exit no ffmpeg survives us, even one read by a daemon thread that was never joined."""
    with _CHILDREN_LOCK:
        children = list(_CHILDREN)
    for proc in children:
        _stop(proc)


atexit.register(_stop_all)


# --------------------------------------------------------------------------- probing


@dataclass(frozen=True)
class VideoInfo:
    """What the rest of autotosis needs to know about a video file.

    ``width``/``height`` are the *displayed* size in pixels after rotation metadata is
    applied (ffmpeg auto-rotates when decoding); ``sar`` is the sample aspect ratio.
    """

    path: Path
    duration_ms: int
    width: int
    height: int
    fps: Fraction | None  # average frame rate; None when unknown
    has_audio: bool
    rotation: int  # degrees clockwise the player turns the picture (0, 90, 180, 270)
    sar: Fraction
    codec: str
    start_ms: int
    size_bytes: int = 0
    mtime_ns: int = 0
    container: str = ""  # ffprobe's format_name, e.g. "mpegts" or "mov,mp4,m4a,3gp,3g2,mj2"
    audio_tracks: int = -1  # audio streams (OBS often records the microphone and the game apart); -1: 1 if has_audio
    # The rate the stream was made at (ffprobe's r_frame_rate), when it is a plausible one: a
    # variable-frame-rate recording with dropped frames keeps 24000/1001 here while its
    # average (``fps``) falls to 16.
    nominal_fps: Fraction | None = None

    @property
    def audio_count(self) -> int:
        return self.audio_tracks if self.audio_tracks >= 0 else int(self.has_audio)

    @property
    def display_aspect(self) -> float:
        return self.width * float(self.sar) / self.height


def _fraction(text: str | None) -> Fraction | None:
    if not text or text in ("0/0", "N/A"):
        return None
    try:
        value = Fraction(text.replace(":", "/"))
    except (ValueError, ZeroDivisionError):
        return None
    return value if value > 0 else None


def _rotation(stream: dict) -> int:
    degrees = 0.0
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            degrees = -float(side["rotation"])  # display matrix is counter-clockwise
    if not degrees and "rotate" in (stream.get("tags") or {}):
        degrees = float(stream["tags"]["rotate"])
    return int(round(degrees)) % 360


def probe(path: Path | str) -> VideoInfo:
    """Read a video's metadata with ffprobe; MediaError when it is not a readable video."""
    path = Path(path)
    if not path.exists():
        raise MediaError("no such file", path)
    if path.is_dir():
        raise MediaError("is a folder, not a video file", path)
    if not path.is_file():
        # A fifo or device would block ffprobe, and scanning and cutting need to seek.
        raise MediaError("is not a regular file (a pipe or a device?)", path, hint="save the stream to a file first")
    stat = path.stat()
    if stat.st_size == 0:
        raise MediaError("file is empty (0 bytes)", path)
    argv = [
        _tool("ffprobe"),
        "-v",
        "error",
        "-print_format",
        "json",
        "-show_format",
        "-show_streams",
        _url(path),
    ]
    try:
        proc = _run(argv, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(
            "ffprobe did not finish within 120 s", path, hint="is the file on a stalled network drive?"
        ) from exc
    if proc.returncode != 0:
        if _looks_like_text(path):
            _refuse_non_video(path, {"format": {"format_name": "tty"}})
        tail = _tail(proc.stderr)
        # ffprobe prefixes its message with the URL; the path is in our message already.
        cause = _last_error_line(tail).replace(f"{_url(path)}: ", "")
        raise MediaError(
            f"not a readable video: {cause}",
            path,
            stderr_tail=tail,
            hint="is it a complete video file? `ffprobe FILE` shows what ffmpeg makes of it",
        )
    try:
        info = json.loads(proc.stdout.decode("utf-8", "replace"))
    except json.JSONDecodeError as exc:
        raise MediaError("ffprobe printed something that is not JSON", path) from exc
    streams = info.get("streams", [])
    _refuse_non_video(path, info)
    # Cover art is a "video" stream too; skip attached pictures.
    video = next(
        (s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")),
        None,
    )
    if video is None:
        if _looks_like_text(path):  # subtitles, chapters, a playlist: text that ffmpeg can read
            _refuse_non_video(path, {"format": {"format_name": "tty"}})
        raise MediaError("has no video stream", path, hint="audio-only files cannot be scanned")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise MediaError("video stream has no picture size", path)
    rotation = _rotation(video)
    if rotation in (90, 270):
        width, height = height, width
    fmt = info.get("format", {})
    duration = _first_float(video.get("duration"), fmt.get("duration"))
    if duration is None or duration <= 0:
        raise MediaError("duration unknown or zero", path, hint="is the file truncated?")
    start = _first_float(fmt.get("start_time"), video.get("start_time")) or 0.0
    sar = _fraction(video.get("sample_aspect_ratio")) or Fraction(1)
    if rotation in (90, 270):
        sar = 1 / sar
    return VideoInfo(
        path=path,
        duration_ms=int(round(duration * 1000)),
        width=width,
        height=height,
        fps=_fraction(video.get("avg_frame_rate")) or _fraction(video.get("r_frame_rate")),
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        rotation=rotation,
        sar=sar,
        codec=str(video.get("codec_name", "?")),
        start_ms=int(round(start * 1000)),
        size_bytes=stat.st_size,
        mtime_ns=stat.st_mtime_ns,
        container=str(fmt.get("format_name", "")),
        audio_tracks=sum(s.get("codec_type") == "audio" for s in streams),
        nominal_fps=_nominal_rate(_fraction(video.get("r_frame_rate")), _fraction(video.get("avg_frame_rate"))),
    )


def _nominal_rate(real: Fraction | None, average: Fraction | None) -> Fraction | None:
    """r_frame_rate when it is a frame rate a camera or encoder uses (a whole number, or N/1001, up
    to 120, and not below the average); None when it is a time base in disguise (1000/1, 90000/1)."""
    if real is None or real > 120 or real.denominator not in (1, 1001):
        return None
    if average is not None and real < average * Fraction(99, 100):
        return None
    return real


# ffmpeg turns a text file into "video": its tty demuxer (chosen by the .txt/.nfo/.asc/...
# extension) and the bin/xbin/idf/adf demuxers draw the characters as pictures.  A label file
# passed instead of the VOD would then be scanned (one frame) or rendered as a video of text.
_TEXT_FORMATS = {"tty", "bin", "xbin", "idf", "adf"}
_TEXT_CODECS = {"ansi", "bintext", "xbin", "idf"}
# A lone picture (PNG, JPEG, ...) is read by image2 or an image *_pipe demuxer: no timeline.
_IMAGE_FORMATS = {"image2", "image2pipe"}


def _looks_like_text(path: Path, sample: int = 8192) -> bool:
    """Whether the file starts as text does (UTF-8, no NUL bytes): no video container does."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(sample)
    except OSError:
        return False
    if not head or b"\0" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(head) - 3:  # not just a character cut in two at the end of the sample
            return False
    return True


def _refuse_non_video(path: Path, info: dict) -> None:
    """MediaError when ffprobe read ``path`` but what it found is text or a still image, not a video."""
    formats = set(str((info.get("format") or {}).get("format_name", "")).split(","))
    codecs = {str(s.get("codec_name", "")) for s in info.get("streams", []) if s.get("codec_type") == "video"}
    if formats & _TEXT_FORMATS or codecs & _TEXT_CODECS:
        raise MediaError("is a text file, not a video", path, hint="was it the label file? give the video itself")
    if formats & _IMAGE_FORMATS or any(f.endswith("_pipe") for f in formats):
        raise MediaError("is a still image, not a video", path)


def _first_float(*values: object) -> float | None:
    for value in values:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            return number
    return None


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


def _decode_filters(spec: DecodeSpec, info: VideoInfo) -> str:
    filters = []
    if spec.fps is not None and not spec.keyframes_only:
        # fps first so crop/scale only run on the frames we keep.  round=up: the sample at
        # time T is the frame on screen at T (the last one at or before T); the default
        # (near) would hand out a frame up to half a step *later* than its time says.
        filters.append(f"fps={spec.fps!r}:round=up")
    if spec.region is not None:
        w, h, x, y = crop_pixels(spec.region, info.width, info.height)
        filters.append(f"crop={w}:{h}:{x}:{y}:exact=1")
    # Stretch to a square: the same rule in training and scanning, so the model sees the
    # same geometry; 'area' avoids aliasing when shrinking 1080p to 128 pixels.
    filters.append(f"scale={spec.size}:{spec.size}:flags=area")
    filters.append("format=rgb24")
    filters.append("showinfo")
    return ",".join(filters)


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
    if spec.start_ms:
        argv += ["-ss", _seconds(spec.start_ms)]
    argv += ["-i", _url(path)]
    if spec.end_ms is not None:
        argv += ["-t", _seconds(max(spec.end_ms - (spec.start_ms or 0), 1))]
    return argv + [
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-vf",
        _decode_filters(spec, info),
        "-fps_mode",
        "passthrough",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]


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
    except _Stopped:
        return  # the consumer is gone: nobody wants the rest, or an error about it
    finally:
        _stop(proc)
        proc.stdout.close()


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
    expected_ms = spec.end_ms if spec.end_ms is not None else info.duration_ms
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


def _seconds(ms: int) -> str:
    """Exact decimal seconds for ffmpeg options (no float rounding surprises)."""
    sign = "-" if ms < 0 else ""
    ms = abs(int(ms))
    return f"{sign}{ms // 1000}.{ms % 1000:03d}"


# --------------------------------------------------------------------------- encoding


@dataclass(frozen=True)
class EncodeSpec:
    """Output format shared by every piece of a reel, so they can be joined losslessly."""

    width: int
    height: int
    fps: Fraction
    crf: int = 21
    preset: str = "veryfast"
    # The source's sound: None mixes every audio track (levels kept, a limiter against clipping);
    # N (from 1) takes the Nth track only.
    audio_track: int | None = None


def encode_frames(
    frames: Iterable[np.ndarray],
    out: Path,
    *,
    width: int,
    height: int,
    fps: Fraction | int,
    audio_wav: Path | None = None,
    keyframe_interval_s: float = 2.0,
    crf: int = 23,
) -> None:
    """Encode RGB frames (H x W x 3 uint8) into an H.264/AAC MP4; used to make sample clips."""
    fps = Fraction(fps)
    argv = [
        _tool("ffmpeg"),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "-s",
        f"{width}x{height}",
        "-r",
        str(fps),
        "-i",
        "pipe:0",
    ]
    if audio_wav is not None:
        argv += ["-i", _url(audio_wav)]
    argv += ["-map", "0:v"] + (["-map", "1:a", "-c:a", "aac", "-b:a", "96k", "-shortest"] if audio_wav else [])
    gop = max(1, int(round(float(fps) * keyframe_interval_s)))
    argv += [
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        "-g",
        str(gop),
        "-keyint_min",
        str(gop),
        "-sc_threshold",
        "0",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        _url(out),
    ]
    proc = _spawn(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, bufsize=-1)
    try:
        for frame in frames:
            if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                raise ValueError(f"frame has shape {frame.shape} {frame.dtype}, expected ({height}, {width}, 3) uint8")
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
    except BrokenPipeError as exc:  # ffmpeg gave up: its stderr says why
        tail = _tail(_communicate(proc)[1])
        raise MediaError(f"encoding failed: {_last_error_line(tail)}", out, stderr_tail=tail) from exc
    except BaseException:
        _stop(proc)
        raise
    _, stderr = _communicate(proc)  # closes stdin: ffmpeg finishes the file
    if proc.returncode != 0:
        tail = _tail(stderr)
        raise MediaError(f"encoding failed: {_last_error_line(tail)}", out, stderr_tail=tail)


@dataclass(frozen=True)
class TextOverlay:
    """Text drawn from ``start_ms`` to ``end_ms`` (segment-relative), read from a file.

    The text itself never goes into the filter graph: drawtext reads ``text_file``, so a
    class name like ``a:b'c,[d]`` cannot break or inject into the filter string.
    """

    text_file: Path
    start_ms: int
    end_ms: int
    color: str  # "RRGGBB"
    position: str = "bottom-left"  # or "center", "top" (centred near the top)
    size_ratio: float = 1 / 16  # font size as a fraction of the frame height


def escape_filter_value(value: str) -> str:
    """Escape a value for use inside a filter option *and* inside a filtergraph.

    Two levels, as ffmpeg's filter docs describe: quote for the option parser
    (``'`` -> ``'\\''``), then backslash-escape the characters the graph parser treats
    specially.
    """
    quoted = "'" + value.replace("'", "'\\''") + "'"
    return re.sub(r"([\\'\[\],;])", r"\\\1", quoted)


def _drawtext(overlay: TextOverlay) -> str:
    start, end = _seconds(overlay.start_ms), _seconds(overlay.end_ms)
    if overlay.position == "center":
        xy = "x=(w-text_w)/2:y=(h-text_h)/2"
    elif overlay.position == "top":
        xy = "x=(w-text_w)/2:y=h/24"
    else:
        xy = "x=h/30:y=h-text_h-h/20"
    return (
        f"drawtext=textfile={escape_filter_value(str(overlay.text_file))}:expansion=none"
        f":fontsize=h*{overlay.size_ratio:.4f}:fontcolor=0x{overlay.color}"
        f":box=1:boxcolor=black@0.55:boxborderw=10:{xy}"
        f":enable=between(t\\,{start}\\,{end})"
    )


def _picture_filters(spec: EncodeSpec, overlays: Sequence[TextOverlay]) -> str:
    w, h = spec.width, spec.height
    chain = [
        # Square the pixels first (anamorphic sources), then fit inside WxH with borders.
        "scale=trunc(iw*sar/2)*2:ih",
        "setsar=1",
        f"scale={w}:{h}:force_original_aspect_ratio=decrease",
        f"pad={w}:{h}:(ow-iw)/2:(oh-ih)/2",
        "setsar=1",
        # start_time=0: when the first frame after the seek comes late (a 5 fps stretch of a
        # VFR source), repeat it from the cut's start instead of starting the video late.
        f"fps={spec.fps}:start_time=0",
        "format=yuv420p",
    ]
    chain += [_drawtext(o) for o in overlays]
    return ",".join(chain)


def _segment_output_args(spec: EncodeSpec, frames: int, duration: str, *, aac: bool = False) -> list[str]:
    return [
        "-frames:v",
        str(frames),
        "-t",
        duration,
        "-c:v",
        "libx264",
        "-preset",
        spec.preset,
        "-crf",
        str(spec.crf),
        "-pix_fmt",
        "yuv420p",
        "-r",
        str(spec.fps),
        "-video_track_timescale",
        "90000",
        # PCM in the pieces; the final join encodes AAC once, so audio stays gapless and in sync.
        # A file that is final by itself (a short) gets AAC directly.
        *(["-c:a", "aac", "-b:a", "160k"] if aac else ["-c:a", "pcm_s16le"]),
        "-ar",
        "48000",
        "-ac",
        "2",
    ]


def segment_frames(duration_ms: int, fps: Fraction) -> int:
    """Whole frames in a piece; pieces are cut to whole frames so audio and video agree."""
    return max(1, int(round(duration_ms * fps / 1000)))


def cut_segment(
    source: VideoInfo,
    start_ms: int,
    duration_ms: int,
    out: Path,
    spec: EncodeSpec,
    overlays: Sequence[TextOverlay] = (),
) -> None:
    """Cut ``[start, start+duration)`` of ``source`` into a normalised piece (MKV, H.264 + PCM).

    Seeking happens before the input (fast, then frame-accurate because we re-encode),
    so cutting a minute from a 6-hour VOD costs a minute of decoding, not six hours.
    """
    frames = segment_frames(duration_ms, spec.fps)
    exact = _seconds(int(round(frames * 1000 / spec.fps)))
    argv = _cut_inputs(source, start_ms)
    graph = f"[0:v:0]{_picture_filters(spec, overlays)}[v];{_audio_chain(source, spec.audio_track)}"
    argv += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]"]
    argv += _segment_output_args(spec, frames, exact) + ["-f", "matroska", _url(out)]
    run_ffmpeg(argv, what="cutting a segment", path=source.path)
    # ffmpeg exits 0 when a truncated source runs out of frames: the piece would be short or
    # have no video at all, and the reel with it.  A quarter second of slack for rounding.
    got = _video_packets(out)
    if got < frames - max(2, int(spec.fps / 4)):
        raise MediaError(
            f"only {got} of {frames} frames could be cut from {start_ms / 1000:.1f} s on: the file ends early",
            source.path,
            hint="the file is truncated or damaged; download or copy it again",
        )


def _video_packets(path: Path) -> int:
    """Frames in the first video stream of a file we wrote (counted from its packets: no decoding)."""
    argv = [
        _tool("ffprobe"),
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-count_packets",
        "-show_entries",
        "stream=nb_read_packets",
        "-of",
        "csv=p=0",
        _url(path),
    ]
    proc = _run(argv, timeout=120)
    try:
        return int(proc.stdout.decode("ascii", "replace").strip().splitlines()[0].strip(","))
    except (ValueError, IndexError):
        return 0  # no video stream at all


# Containers without an index (MPEG-TS/PS, raw streams) seek to a guessed byte position and
# start decoding at the next keyframe, up to a GOP *after* the wanted time.
_IMPRECISE_SEEK = {"mpegts", "mpeg", "mpegvideo", "h264", "hevc"}
_SEEK_MARGIN_MS = 5000  # more than the usual 2 s streaming GOP


def _cut_inputs(source: VideoInfo, start_ms: int) -> list[str]:
    """The source, seeked before the input, plus a silent input when it has no audio.

    For containers that seek imprecisely the input seek lands a margin earlier and an
    output ``-ss`` (applied by ffmpeg as a trim after decoding) drops the margin exactly.
    """
    imprecise = bool(_IMPRECISE_SEEK & set(source.container.split(",")))
    margin = min(start_ms, _SEEK_MARGIN_MS) if imprecise else 0
    argv = ["-y", "-ss", _seconds(start_ms - margin), "-i", _url(source.path)]
    if not source.has_audio:
        argv += ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo"]
    if margin:
        argv += ["-ss", _seconds(margin)]  # after the inputs: an option of the output
    return argv


def _audio_chain(source: VideoInfo, track: int | None = None) -> str:
    """Filter graph part that yields ``[a]``: 48 kHz stereo, padded with silence to any length.

    ``track`` None mixes all of the source's audio tracks (a recording with the microphone on
    track 1 and the game on track 2 keeps both); N (from 1) takes the Nth only.
    """
    out = "aresample=48000,aformat=sample_fmts=s16:channel_layouts=stereo,apad[a]"
    if not source.has_audio:
        return f"[1:a]{out}"
    if track is not None:
        if not 1 <= track <= source.audio_count:
            raise MediaError(f"has no audio track {track} (it has {source.audio_count})", source.path)
        return f"[0:a:{track - 1}]{out}"
    return audio_mix_graph(source.audio_count, out)


def audio_mix_graph(tracks: int, out: str) -> str:
    """``[0:a:0]`` .. ``[0:a:tracks-1]`` mixed, then the ``out`` chain (which names its own output pad).

    amix with normalize=0 adds the tracks at their own levels (the default would divide each by
    the number of tracks: a near-silent first track would halve the game's sound); a limiter
    just under full scale then catches peaks the sum pushes over (no wrap-around or hard
    clipping), without auto gain (level=0) and with its look-ahead delay compensated
    (latency=1), so the sound stays on the picture.
    """
    if tracks <= 1:
        return f"[0:a:0]{out}"
    prepare = ";".join(
        f"[0:a:{i}]aresample=48000,aformat=sample_fmts=fltp:channel_layouts=stereo[m{i}]" for i in range(tracks)
    )
    inputs = "".join(f"[m{i}]" for i in range(tracks))
    return (
        f"{prepare};{inputs}amix=inputs={tracks}:duration=longest:normalize=0,"
        f"alimiter=limit=0.9:level=0:latency=1,{out}"
    )


def title_card(out: Path, spec: EncodeSpec, duration_ms: int, overlays: Sequence[TextOverlay]) -> None:
    """A plain card (black background, centred text) as a piece of the same format."""
    frames = segment_frames(duration_ms, spec.fps)
    exact = _seconds(int(round(frames * 1000 / spec.fps)))
    argv = [
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"color=c=black:s={spec.width}x{spec.height}:r={spec.fps}",
        "-f",
        "lavfi",
        "-i",
        "anullsrc=r=48000:cl=stereo",
        "-filter_complex",
        f"[0:v]{_picture_filters(spec, overlays)}[v]",
        "-map",
        "[v]",
        "-map",
        "1:a",
    ]
    argv += _segment_output_args(spec, frames, exact) + ["-f", "matroska", _url(out)]
    run_ffmpeg(argv, what="making a title card", path=out)


def concat_segments(pieces: Sequence[Path], out: Path, *, chapters_file: Path | None = None) -> None:
    """Join pieces made by cut_segment/title_card into an MP4 (video copied, audio to AAC)."""
    if not pieces:
        raise MediaError("nothing to join: no segments", out)
    listing = out.with_name(out.name + ".concat.txt")
    lines = ["ffconcat version 1.0"]
    for piece in pieces:
        escaped = str(Path(piece).absolute()).replace("'", "'\\''")
        lines.append(f"file '{escaped}'")
    listing.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        argv = ["-y", "-f", "concat", "-safe", "0", "-i", _url(listing)]
        if chapters_file is not None:
            argv += ["-i", _url(chapters_file), "-map_metadata", "1", "-map_chapters", "1"]
        argv += [
            "-map",
            "0:v",
            "-map",
            "0:a",
            "-c:v",
            "copy",
            "-c:a",
            "aac",
            "-b:a",
            "160k",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            _url(out),
        ]
        run_ffmpeg(argv, what="joining segments", path=out)
    finally:
        listing.unlink(missing_ok=True)


@dataclass(frozen=True)
class StreamDurations:
    video_ms: int
    audio_ms: int | None
    format_ms: int
    width: int
    height: int
    sar: Fraction = field(default=Fraction(1))


def stream_durations(path: Path) -> StreamDurations:
    """Per-stream durations of a rendered file (used by tests and the demo's checks)."""
    argv = [_tool("ffprobe"), "-v", "error", "-print_format", "json", "-show_format", "-show_streams", _url(path)]
    proc = _run(argv, timeout=120)
    if proc.returncode != 0:
        raise MediaError("cannot read rendered file", path, stderr_tail=_tail(proc.stderr))
    info = json.loads(proc.stdout)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next((s for s in info["streams"] if s["codec_type"] == "audio"), None)

    def ms(value: object) -> int:
        return int(round((_first_float(value) or 0.0) * 1000))

    return StreamDurations(
        video_ms=ms(video.get("duration")),
        audio_ms=ms(audio.get("duration")) if audio else None,
        format_ms=ms(info["format"].get("duration")),
        width=int(video["width"]),
        height=int(video["height"]),
        sar=_fraction(video.get("sample_aspect_ratio")) or Fraction(1),
    )


def grab_frame(source: VideoInfo, time_ms: int, width: int = 320) -> np.ndarray:
    """One full frame at ``time_ms`` as RGB (H x W x 3), square pixels, ``width`` wide.

    Used for thumbnails and stills; seeks before the input, so it is quick anywhere in a VOD.
    """
    display_width = source.width * float(source.sar)
    height = max(2, int(round(width * source.height / display_width / 2)) * 2)
    argv = [
        _tool("ffmpeg"),
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "error",
        "-ss",
        _seconds(max(0, min(time_ms, source.duration_ms - 1))),
        "-i",
        _url(source.path),
        "-map",
        "0:v:0",
        "-frames:v",
        "1",
        "-vf",
        f"scale={width}:{height}:flags=area,setsar=1,format=rgb24",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "rgb24",
        "pipe:1",
    ]
    proc = _run(argv, timeout=120)
    expected = width * height * 3
    if proc.returncode != 0 or len(proc.stdout) < expected:
        tail = _tail(proc.stderr)
        raise MediaError(
            f"could not read a frame at {time_ms / 1000:.3f} s: {_last_error_line(tail) if tail else 'no frame there'}",
            source.path,
            stderr_tail=tail,
        )
    return np.frombuffer(proc.stdout[:expected], dtype=np.uint8).reshape(height, width, 3)


# --------------------------------------------------------------------------- shorts (vertical clips)


@dataclass(frozen=True)
class PixelCrop:
    """A rectangle in the decoded picture's own pixels (after rotation, before squaring SAR)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Band:
    """``crop`` scaled to exactly ``width`` x ``height`` square pixels (the caller keeps the aspect)."""

    crop: PixelCrop
    width: int
    height: int


@dataclass(frozen=True)
class ShortPicture:
    """How a short's picture is built from the source frame.

    Without a backdrop the bands are stacked top to bottom (their widths must agree); with
    one, the single band is centred on the backdrop, which is blurred and darkened.
    """

    bands: tuple[Band, ...]
    backdrop: Band | None = None


def _band_chain(band: Band) -> str:
    c = band.crop
    # Crop before scaling: only the needed pixels are scaled, and the scale squares the pixels.
    return f"crop={c.width}:{c.height}:{c.x}:{c.y}:exact=1,scale={band.width}:{band.height},setsar=1"


def _short_picture_graph(picture: ShortPicture, spec: EncodeSpec, overlays: Sequence[TextOverlay]) -> str:
    """Filter graph from ``[0:v:0]`` to ``[v]`` for a short (layout, frame rate, text)."""
    inputs = [*picture.bands, *([picture.backdrop] if picture.backdrop else [])]
    # fps first, so a 60 fps source rendered at 30 fps crops and scales half the frames.
    parts = [f"[0:v:0]fps={spec.fps},split={len(inputs)}" + "".join(f"[s{i}]" for i in range(len(inputs)))]
    for i, band in enumerate(picture.bands):
        parts.append(f"[s{i}]{_band_chain(band)}[b{i}]")
    if picture.backdrop is not None:
        back = picture.backdrop
        small_w, small_h = max(2, back.width // 16 // 2 * 2), max(2, back.height // 16 // 2 * 2)
        # Blur at 1/16 size (cheap), scale back up, darken (luma and chroma alike, so saturated
        # colours darken too) so the fitted frame stands out.
        dark = "lutyuv=y=16+(val-16)*0.45:u=128+(val-128)*0.45:v=128+(val-128)*0.45"
        parts.append(
            f"[s{len(picture.bands)}]{_band_chain(Band(back.crop, small_w, small_h))},boxblur=2:1,"
            f"scale={back.width}:{back.height},format=yuv420p,{dark},setsar=1[bg]"
        )
        parts.append("[bg][b0]overlay=x=(W-w)/2:y=(H-h)/2[pic]")
    elif len(picture.bands) > 1:
        parts.append("".join(f"[b{i}]" for i in range(len(picture.bands))) + f"vstack=inputs={len(picture.bands)}[pic]")
    else:
        parts.append("[b0]null[pic]")
    text = [_drawtext(o) for o in overlays]
    parts.append(",".join(["[pic]setsar=1", "format=yuv420p", *text]) + "[v]")
    return ";".join(parts)


def render_short(
    source: VideoInfo,
    start_ms: int,
    duration_ms: int,
    out: Path,
    spec: EncodeSpec,
    picture: ShortPicture,
    overlays: Sequence[TextOverlay] = (),
) -> None:
    """Cut ``[start, start+duration)`` of ``source`` into a vertical short (MP4, H.264 + AAC 48 kHz stereo).

    Seeks before the input like cut_segment, so the cost follows the short's length, not the VOD's.
    """
    frames = segment_frames(duration_ms, spec.fps)
    exact = _seconds(int(round(frames * 1000 / spec.fps)))
    argv = _cut_inputs(source, start_ms)
    graph = f"{_short_picture_graph(picture, spec, overlays)};{_audio_chain(source, spec.audio_track)}"
    argv += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]"]
    argv += _segment_output_args(spec, frames, exact, aac=True) + ["-movflags", "+faststart", "-f", "mp4", _url(out)]
    run_ffmpeg(argv, what="rendering a short", path=source.path)


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
        f"[{i}:v:0]trim=end_frame=1,setpts=PTS-STARTPTS,scale={width}:{height}:flags=bicubic,setsar=1,format=rgb24[v{i}]"
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
        "0:v:0",
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


# --------------------------------------------------------------------------- live sources


@dataclass(frozen=True)
class LiveSource:
    """Something ffmpeg reads as it happens: a file played at its own pace, a device, a screen, a stream."""

    target: str  # file path, device path, X display (":0.0+0,0"), or URL
    kind: str  # "file", "v4l2", "x11grab" or "url"
    realtime: bool = True  # files only: read at the native frame rate (-re), like a live feed
    framerate: Fraction | None = None  # capture rate for devices and screens

    def label(self) -> str:
        return Path(self.target).stem if self.kind == "file" else self.kind


_URL_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")
_X_DISPLAY = re.compile(r"^(?:[\w.-]*):\d+(?:\.\d+)?(?:\+\d+,\d+)?$")


def live_source(
    text: str, *, kind: str | None = None, realtime: bool = True, framerate: Fraction | None = None
) -> LiveSource:
    """Guess what ``text`` names (or take ``kind``): /dev/video* is v4l2, ":0.0" an X display, "x://" a URL,
    else a file."""
    text = str(text)
    if kind is None:
        if text.startswith("/dev/video"):
            kind = "v4l2"
        elif text.startswith("x11grab:"):
            kind, text = "x11grab", text.removeprefix("x11grab:")
        elif _X_DISPLAY.match(text):
            kind = "x11grab"
        elif _URL_SCHEME.match(text) and not text.lower().startswith("file://"):
            kind = "url"
        else:
            kind = "file"
    if kind not in ("file", "v4l2", "x11grab", "url"):
        raise MediaError(f"unknown live source kind {kind!r} (file, v4l2, x11grab or url)")
    if kind == "file":
        path = Path(text.removeprefix("file://"))
        if not path.is_file():
            raise MediaError("no such file" if not path.exists() else "is not a file", path)
        text = str(path)
    return LiveSource(text, kind, realtime, framerate)


def _live_input_args(source: LiveSource) -> list[str]:
    rate = ["-framerate", str(source.framerate)] if source.framerate else []
    if source.kind == "file":
        return (["-re"] if source.realtime else []) + ["-i", _url(source.target)]
    if source.kind == "v4l2":
        return ["-f", "v4l2", *rate, "-i", source.target]
    if source.kind == "x11grab":
        return ["-f", "x11grab", *(rate or ["-framerate", "30"]), "-i", source.target]
    # Network streams: reconnect options would hide a dead source; let ffmpeg fail and say why.
    return ["-i", source.target]


@dataclass(frozen=True)
class RingSpec:
    """The instant-replay buffer: the picture (and sound) re-encoded into short MPEG-TS segments
    in ``folder``, the oldest overwritten once ``wrap`` exist."""

    folder: Path
    segment_ms: int = 1000
    wrap: int = 30
    crf: int = 23
    # The sound kept: None mixes the source's ``audio_tracks`` tracks (a device or stream whose
    # tracks are not known in advance: its first), N (from 1) takes the Nth.
    audio_track: int | None = None
    audio_tracks: int = 1


@dataclass(frozen=True)
class RingSegment:
    index: int  # running number (the file name wraps, this does not)
    path: Path
    start_ms: int
    end_ms: int


def _live_filters(spec: DecodeSpec) -> str:
    filters = []
    if spec.fps is not None:
        filters.append(f"fps={spec.fps!r}")
    if spec.region is not None:
        # The frame size of a device or stream is not known in advance: crop by expression.
        x0, y0, x1, y1 = spec.region
        filters.append(f"crop=trunc(iw*{x1 - x0!r}):trunc(ih*{y1 - y0!r}):trunc(iw*{x0!r}):trunc(ih*{y0!r}):exact=1")
    filters += [f"scale={spec.size}:{spec.size}:flags=area", "format=rgb24", "showinfo"]
    return ",".join(filters)


class LiveCapture:
    """One ffmpeg reading a live source, with two outputs: small RGB frames for scoring on a pipe
    (times from showinfo, as in iter_frames), and, when ``ring`` is given, the replay ring.

    Keyframes are forced at every segment boundary, so segment k covers exactly
    ``[k * segment, (k + 1) * segment)`` of the same timeline the frame times use
    (``-avoid_negative_ts disabled`` keeps audio priming from shifting it).
    """

    def __init__(self, source: LiveSource, spec: DecodeSpec, ring: RingSpec | None = None) -> None:
        self.source, self.spec, self.ring = source, spec, ring
        argv = [_tool("ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info", *_live_input_args(source)]
        argv += [
            "-map",
            "0:v:0",
            "-an",
            "-sn",
            "-dn",
            "-vf",
            _live_filters(spec),
            "-fps_mode",
            "passthrough",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "pipe:1",
        ]
        if ring is not None:
            ring.folder.mkdir(parents=True, exist_ok=True)
            seconds = _seconds(ring.segment_ms)
            if ring.audio_track is None and ring.audio_tracks > 1:
                argv += ["-filter_complex", audio_mix_graph(ring.audio_tracks, "anull[ra]")]
                sound = "[ra]"
            else:
                sound = f"0:a:{(ring.audio_track or 1) - 1}?"
            argv += [
                "-map",
                "0:v:0",
                "-map",
                sound,
                "-sn",
                "-dn",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-crf",
                str(ring.crf),
                "-pix_fmt",
                "yuv420p",
                "-vf",
                "scale=trunc(iw/2)*2:trunc(ih/2)*2",
                "-force_key_frames",
                f"expr:gte(t,n_forced*{seconds})",
                "-c:a",
                "aac",
                "-ar",
                "48000",
                "-ac",
                "2",
                "-avoid_negative_ts",
                "disabled",
                "-f",
                "segment",
                "-segment_time",
                seconds,
                "-segment_time_delta",
                "0.01",
                "-segment_format",
                "mpegts",
                "-segment_wrap",
                str(ring.wrap),
                "-segment_list",
                str(self._list_path),
                "-segment_list_type",
                "csv",
                "-reset_timestamps",
                "0",
                str(ring.folder / "seg%06d.ts"),
            ]
        self._frame_bytes = spec.size * spec.size * 3
        self._proc = _spawn(argv)
        self._reader = _StderrReader(self._proc.stderr)
        self._reader.start()

    @property
    def _list_path(self) -> Path:
        assert self.ring is not None
        return self.ring.folder / "segments.csv"

    def frames(self) -> Iterator[FrameBatch]:
        """One frame at a time, as soon as ffmpeg has it (for low latency); ends when the source does."""
        while True:
            data = _read_exact(self._proc.stdout, self._frame_bytes)
            if len(data) < self._frame_bytes:
                break
            times = self._reader.take(1)
            if not times:
                raise MediaError(
                    "decoder output and timestamps disagree",
                    self.source.target,
                    stderr_tail="\n".join(self._reader.tail),
                )
            frame = np.frombuffer(data, dtype=np.uint8).reshape(1, self.spec.size, self.spec.size, 3)
            yield FrameBatch(times_ms=np.array(times, dtype=np.int64), frames=frame)
        returncode = _wait(self._proc)
        _join(self._reader, 5)
        if returncode != 0:
            tail = "\n".join(self._reader.tail)
            raise MediaError(f"live input failed: {_last_error_line(tail)}", self.source.target, stderr_tail=tail)

    def segments(self) -> list[RingSegment]:
        """Finished segments still in the ring (older ones were overwritten), oldest first."""
        if self.ring is None:
            return []
        try:
            lines = self._list_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except FileNotFoundError:
            return []
        found = []
        for index, line in enumerate(lines):
            parts = line.rsplit(",", 2)
            if len(parts) != 3:
                continue  # a line being written
            try:
                start, end = float(parts[1]), float(parts[2])
            except ValueError:
                continue
            found.append(
                RingSegment(index, self.ring.folder / parts[0], int(round(start * 1000)), int(round(end * 1000)))
            )
        # The file after the newest finished one is being written, and it overwrites the oldest.
        return found[-(self.ring.wrap - 1) :]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()  # lets ffmpeg finish the current segment and the list
            try:
                self._proc.wait(timeout=10)  # polls in short sleeps: a Ctrl-C is not held back
            except subprocess.TimeoutExpired:
                pass
        _stop(self._proc)  # the whole group, whatever is left of it
        self._proc.stdout.close()

    def __enter__(self) -> LiveCapture:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cut_replay(segments: Sequence[RingSegment], start_ms: int, end_ms: int, out: Path) -> None:
    """Join ring segments and cut ``[start, end)`` (the ring's timeline) into an MP4, re-encoded so
    the clip starts and ends on the exact frames.  ``segments`` must be consecutive, and are
    copied first, so the ring may overwrite them meanwhile."""
    import tempfile

    if not segments:
        raise MediaError("no replay segments to cut", out)
    with tempfile.TemporaryDirectory(prefix="autotosis-replay-") as tmp:
        copies = []
        for i, segment in enumerate(segments):
            copy = Path(tmp) / f"{i:04d}.ts"
            shutil.copyfile(segment.path, copy)
            copies.append(copy)
        listing = Path(tmp) / "list.ffconcat"
        listing.write_text("ffconcat version 1.0\n" + "".join(f"file '{c.name}'\n" for c in copies), encoding="utf-8")
        has_audio = probe(copies[0]).has_audio
        # The concat demuxer's time 0 is the first segment's start time, which audio priming may put a
        # little before its first picture (segment start): measure that lead instead of assuming it.
        # Trimming in the filter graph (not -ss) starts the clip on the first frame at or after
        # start_ms, with no frame duplicated to fill a gap at its head.
        base = Fraction(_ts_lead_ms(copies[0]) - segments[0].start_ms, 1000)
        start, end = base + Fraction(start_ms, 1000), base + Fraction(end_ms, 1000)
        graph = f"[0:v:0]trim=start={float(start)!r}:end={float(end)!r},setpts=PTS-STARTPTS[v]"
        maps = ["-map", "[v]"]
        if has_audio:
            graph += f";[0:a:0]atrim=start={float(start)!r}:end={float(end)!r},asetpts=PTS-STARTPTS[a]"
            maps += ["-map", "[a]", "-c:a", "aac", "-b:a", "160k"]
        argv = [
            "-y",
            "-f",
            "concat",
            "-safe",
            "0",
            "-i",
            _url(listing),
            "-filter_complex",
            graph,
            *maps,
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "20",
            "-pix_fmt",
            "yuv420p",
            "-movflags",
            "+faststart",
            "-f",
            "mp4",
            _url(out),
        ]
        run_ffmpeg(argv, what="saving a replay", path=out)


def _ts_lead_ms(path: Path) -> int:
    """How long after the file's start time its first picture comes (audio may start earlier)."""
    argv = [
        _tool("ffprobe"),
        "-v",
        "error",
        "-select_streams",
        "v:0",
        "-show_entries",
        "packet=pts_time:format=start_time",
        "-read_intervals",
        "%+#1",
        "-of",
        "json",
        _url(path),
    ]
    proc = _run(argv, timeout=60)
    try:
        info = json.loads(proc.stdout or b"{}")
        first = _first_float(info["packets"][0]["pts_time"])
        start = _first_float(info["format"]["start_time"])
    except (json.JSONDecodeError, KeyError, IndexError):
        first = start = None
    if proc.returncode != 0 or first is None or start is None:
        raise MediaError("replay segment has no picture", path, stderr_tail=_tail(proc.stderr))
    return max(0, int(round((first - start) * 1000)))
