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
import shutil
import subprocess
import threading
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from autotosis.errors import MediaError, ToolMissingError

# (x0, y0, x1, y1) as fractions of the displayed frame.
Region = tuple[float, float, float, float]

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
        out = subprocess.run([path, "-hide_banner", "-version"], capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ToolMissingError(f"{name} ({path}) does not run: {exc}",
                               hint="install a working ffmpeg (Debian/Ubuntu: apt-get install ffmpeg)") from exc
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
        proc = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(f"{what}: ffmpeg did not finish within {timeout:.0f} s", path) from exc
    if proc.returncode != 0:
        tail = _tail(proc.stderr)
        raise MediaError(f"{what} failed: {_last_error_line(tail) if tail else _signal_text(proc.returncode)}",
                         path, stderr_tail=tail)


def _signal_text(returncode: int) -> str:
    """Why ffmpeg stopped when it printed nothing: usually a signal (e.g. SIGXFSZ at a file size limit)."""
    if returncode < 0:
        import signal

        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        limit = " (file size limit reached)" if name == "SIGXFSZ" else ""
        return f"ffmpeg was killed by {name}{limit}"
    return f"ffmpeg exited with status {returncode}"


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
        _tool("ffprobe"), "-v", "error", "-print_format", "json",
        "-show_format", "-show_streams", _url(path),
    ]
    try:
        proc = subprocess.run(argv, capture_output=True, check=False, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise MediaError("ffprobe did not finish within 120 s", path, hint="is the file on a stalled network drive?") from exc
    if proc.returncode != 0:
        tail = _tail(proc.stderr)
        # ffprobe prefixes its message with the URL; the path is in our message already.
        cause = _last_error_line(tail).replace(f"{_url(path)}: ", "")
        raise MediaError(f"not a readable video: {cause}", path, stderr_tail=tail,
                         hint="is it a complete video file? `ffprobe FILE` shows what ffmpeg makes of it")
    try:
        info = json.loads(proc.stdout.decode("utf-8", "replace"))
    except json.JSONDecodeError as exc:
        raise MediaError("ffprobe printed something that is not JSON", path) from exc
    streams = info.get("streams", [])
    # Cover art is a "video" stream too; skip attached pictures.
    video = next(
        (s for s in streams if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")),
        None,
    )
    if video is None:
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
    )


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


def crop_pixels(region: Region, width: int, height: int) -> tuple[int, int, int, int]:
    """(w, h, x, y) in whole pixels for a relative region of a width x height frame."""
    x0, y0, x1, y1 = region
    x = min(max(int(math.floor(x0 * width)), 0), width - 1)
    y = min(max(int(math.floor(y0 * height)), 0), height - 1)
    w = max(1, min(int(round((x1 - x0) * width)), width - x))
    h = max(1, min(int(round((y1 - y0) * height)), height - y))
    return w, h, x, y


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
        with self._ready:
            self._ready.wait_for(lambda: len(self._times) >= count or self._ended, timeout)
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
        "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", _decode_filters(spec, info),
        "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]


def decode_discard(path: Path | str, spec: DecodeSpec, *, info: VideoInfo | None = None) -> None:
    """Run exactly the decode iter_frames would, throwing the frames away.

    Benchmarks time this as the limit a scan can reach: ffmpeg alone, same sampling,
    crop and scale, nobody reading the frames.
    """
    path = Path(path)
    argv = _decode_argv(path, spec, info or probe(path))
    proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        tail = _tail(proc.stderr)
        raise MediaError(f"decoding failed: {_last_error_line(tail)}", path, stderr_tail=tail)


def iter_frames(path: Path | str, spec: DecodeSpec, *, batch_size: int = 32, info: VideoInfo | None = None) -> Iterator[FrameBatch]:
    """Stream a video as batches of small RGB frames with exact presentation times.

    ffmpeg decodes, samples, crops and scales in its own process (so it runs on another
    core while we do inference) and writes raw RGB to a pipe: no image files, and memory
    stays flat whatever the video's length.  Times come from the frames' presentation
    timestamps (via showinfo), relative to the start of the file, never from a counter.
    """
    path = Path(path)
    info = info or probe(path)
    argv = _decode_argv(path, spec, info)
    frame_bytes = spec.size * spec.size * 3
    offset_ms = spec.start_ms or 0
    reading_thread = threading.get_ident()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    with _DECODERS_LOCK:  # at once, so stop_decoders() can reach it
        _DECODERS.setdefault(reading_thread, set()).add(proc)
    _widen_pipe(proc.stdout, frame_bytes * batch_size)
    reader = _StderrReader(proc.stderr)
    reader.start()
    last_ms = offset_ms
    try:
        while True:
            data = _read_exact(proc.stdout, frame_bytes * batch_size)
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
        returncode = proc.wait()
        reader.join(timeout=5)
        tail = "\n".join(reader.tail)
        if returncode != 0:
            cause = _signal_text(returncode) if returncode < 0 else _last_error_line(tail)
            raise MediaError(f"decoding failed: {cause}", path, stderr_tail=tail)
        _check_complete(path, spec, info, last_ms, tail)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        with _DECODERS_LOCK:
            _DECODERS.get(reading_thread, set()).discard(proc)


# Running decoders by the thread that reads them: a read blocked on a slow or hung ffmpeg can
# only be ended by killing ffmpeg, and the thread that wants to stop (Ctrl-C, an error in the
# consumer of a prefetching thread) is another one.  See stop_decoders().
_DECODERS: dict[int, set[subprocess.Popen]] = {}
_DECODERS_LOCK = threading.Lock()


def stop_decoders(thread_id: int | None = None) -> None:
    """Kill the ffmpeg decoders read by thread ``thread_id`` (every thread's when None).

    The thread's iter_frames then ends with a MediaError, so it never hangs on a stalled pipe.
    """
    with _DECODERS_LOCK:
        groups = list(_DECODERS.values()) if thread_id is None else [_DECODERS.get(thread_id, set())]
        procs = [proc for group in groups for proc in group]
    for proc in procs:
        if proc.poll() is None:
            proc.kill()


# At exit no decoder survives us, even one read by a daemon thread that was never joined.
atexit.register(stop_decoders)

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
            f"({_last_error_line(tail)})", path, stderr_tail=tail,
            hint="the file is truncated or damaged; download or copy it again")


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


def _read_exact(stream, size: int) -> bytes:
    """Read ``size`` bytes unless EOF comes first (a raw pipe returns short reads)."""
    chunks = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(remaining)
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
        _tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(fps), "-i", "pipe:0",
    ]
    if audio_wav is not None:
        argv += ["-i", _url(audio_wav)]
    argv += ["-map", "0:v"] + (["-map", "1:a", "-c:a", "aac", "-b:a", "96k", "-shortest"] if audio_wav else [])
    gop = max(1, int(round(float(fps) * keyframe_interval_s)))
    argv += [
        "-c:v", "libx264", "-preset", "ultrafast", "-crf", str(crf), "-pix_fmt", "yuv420p",
        "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-movflags", "+faststart", "-f", "mp4", _url(out),
    ]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for frame in frames:
            if frame.shape != (height, width, 3) or frame.dtype != np.uint8:
                raise ValueError(f"frame has shape {frame.shape} {frame.dtype}, expected ({height}, {width}, 3) uint8")
            proc.stdin.write(np.ascontiguousarray(frame).tobytes())
        proc.stdin.close()
        stderr = proc.stderr.read()
        if proc.wait() != 0:
            tail = _tail(stderr)
            raise MediaError(f"encoding failed: {_last_error_line(tail)}", out, stderr_tail=tail)
    except BrokenPipeError as exc:
        proc.wait()
        tail = _tail(proc.stderr.read())
        raise MediaError(f"encoding failed: {_last_error_line(tail)}", out, stderr_tail=tail) from exc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


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
        "-frames:v", str(frames), "-t", duration,
        "-c:v", "libx264", "-preset", spec.preset, "-crf", str(spec.crf), "-pix_fmt", "yuv420p",
        "-r", str(spec.fps), "-video_track_timescale", "90000",
        # PCM in the pieces; the final join encodes AAC once, so audio stays gapless and in sync.
        # A file that is final by itself (a short) gets AAC directly.
        *(["-c:a", "aac", "-b:a", "160k"] if aac else ["-c:a", "pcm_s16le"]), "-ar", "48000", "-ac", "2",
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
    graph = f"[0:v:0]{_picture_filters(spec, overlays)}[v];{_audio_chain(source)}"
    argv += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]"]
    argv += _segment_output_args(spec, frames, exact) + ["-f", "matroska", _url(out)]
    run_ffmpeg(argv, what="cutting a segment", path=source.path)
    # ffmpeg exits 0 when a truncated source runs out of frames: the piece would be short or
    # have no video at all, and the reel with it.  A quarter second of slack for rounding.
    got = _video_packets(out)
    if got < frames - max(2, int(spec.fps / 4)):
        raise MediaError(
            f"only {got} of {frames} frames could be cut from {start_ms / 1000:.1f} s on: the file ends early",
            source.path, hint="the file is truncated or damaged; download or copy it again")


def _video_packets(path: Path) -> int:
    """Frames in the first video stream of a file we wrote (counted from its packets: no decoding)."""
    argv = [_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-count_packets",
            "-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", _url(path)]
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=120)
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


def _audio_chain(source: VideoInfo) -> str:
    """Filter graph part that yields ``[a]``: 48 kHz stereo, padded with silence to any length."""
    audio = "[0:a:0]" if source.has_audio else "[1:a]"
    return f"{audio}aresample=48000,aformat=sample_fmts=s16:channel_layouts=stereo,apad[a]"


def title_card(out: Path, spec: EncodeSpec, duration_ms: int, overlays: Sequence[TextOverlay]) -> None:
    """A plain card (black background, centred text) as a piece of the same format."""
    frames = segment_frames(duration_ms, spec.fps)
    exact = _seconds(int(round(frames * 1000 / spec.fps)))
    argv = [
        "-y",
        "-f", "lavfi", "-i", f"color=c=black:s={spec.width}x{spec.height}:r={spec.fps}",
        "-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo",
        "-filter_complex", f"[0:v]{_picture_filters(spec, overlays)}[v]",
        "-map", "[v]", "-map", "1:a",
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
            "-map", "0:v", "-map", "0:a", "-c:v", "copy", "-c:a", "aac", "-b:a", "160k",
            "-movflags", "+faststart", "-f", "mp4", _url(out),
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
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=120)
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
        _tool("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error",
        "-ss", _seconds(max(0, min(time_ms, source.duration_ms - 1))), "-i", _url(source.path),
        "-map", "0:v:0", "-frames:v", "1", "-vf", f"scale={width}:{height}:flags=area,setsar=1,format=rgb24",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=120)
    expected = width * height * 3
    if proc.returncode != 0 or len(proc.stdout) < expected:
        tail = _tail(proc.stderr)
        raise MediaError(f"could not read a frame at {time_ms / 1000:.3f} s: {_last_error_line(tail) if tail else 'no frame there'}",
                         source.path, stderr_tail=tail)
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
    graph = f"{_short_picture_graph(picture, spec, overlays)};{_audio_chain(source)}"
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


def grab_frames(source: VideoInfo, times_ms: Sequence[int], *, width: int | None = None,
                per_process: int = 8) -> Iterator[tuple[int, np.ndarray]]:
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
        chunk = times[first:first + per_process]
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
    argv += ["-filter_complex", graph, "-map", "[out]", "-fps_mode", "passthrough",
             "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=600)
    if proc.returncode != 0:
        tail = _tail(proc.stderr)
        raise MediaError(f"could not read frames: {_last_error_line(tail)}", source.path, stderr_tail=tail)
    size = width * height * 3
    if len(proc.stdout) < size * len(times_ms):
        return None
    data = np.frombuffer(proc.stdout, dtype=np.uint8)
    return [data[i * size:(i + 1) * size].reshape(height, width, 3) for i in range(len(times_ms))]


_CROPDETECT = re.compile(r"crop=(\d+):(\d+):(\d+):(\d+)")


def detect_active_area(source: VideoInfo, *, min_border: float = 0.02) -> Region | None:
    """The picture inside letterbox / pillarbox borders, as a relative region; None without borders.

    ffmpeg's cropdetect over the keyframes of the whole file (fast: nothing else is decoded),
    accumulating the largest non-black box, so a dark scene does not shrink the result.
    Borders thinner than ``min_border`` of the side are not worth a crop.
    """
    argv = [
        _tool("ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "info",
        "-skip_frame", "nokey", "-i", _url(source.path),
        "-map", "0:v:0", "-an", "-sn", "-dn", "-vf", "cropdetect=round=2:skip=0:reset=0",
        "-f", "null", "-",
    ]
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=3600)
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
    region = (x / width, y / height, min(1.0, (x + w) / width), min(1.0, (y + h) / height))
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


def live_source(text: str, *, kind: str | None = None, realtime: bool = True, framerate: Fraction | None = None) -> LiveSource:
    """Guess what ``text`` names (or take ``kind``): /dev/video* is v4l2, ":0.0" an X display, "x://" a URL, else a file."""
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
        argv += ["-map", "0:v:0", "-an", "-sn", "-dn", "-vf", _live_filters(spec), "-fps_mode", "passthrough",
                 "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        if ring is not None:
            ring.folder.mkdir(parents=True, exist_ok=True)
            seconds = _seconds(ring.segment_ms)
            argv += [
                "-map", "0:v:0", "-map", "0:a:0?", "-sn", "-dn",
                "-c:v", "libx264", "-preset", "ultrafast", "-crf", str(ring.crf), "-pix_fmt", "yuv420p",
                "-vf", "scale=trunc(iw/2)*2:trunc(ih/2)*2",
                "-force_key_frames", f"expr:gte(t,n_forced*{seconds})",
                "-c:a", "aac", "-ar", "48000", "-ac", "2", "-avoid_negative_ts", "disabled",
                "-f", "segment", "-segment_time", seconds, "-segment_time_delta", "0.01", "-segment_format", "mpegts",
                "-segment_wrap", str(ring.wrap), "-segment_list", str(self._list_path), "-segment_list_type", "csv",
                "-reset_timestamps", "0", str(ring.folder / "seg%06d.ts"),
            ]
        self._frame_bytes = spec.size * spec.size * 3
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
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
                raise MediaError("decoder output and timestamps disagree", self.source.target, stderr_tail="\n".join(self._reader.tail))
            frame = np.frombuffer(data, dtype=np.uint8).reshape(1, self.spec.size, self.spec.size, 3)
            yield FrameBatch(times_ms=np.array(times, dtype=np.int64), frames=frame)
        returncode = self._proc.wait()
        self._reader.join(timeout=5)
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
            found.append(RingSegment(index, self.ring.folder / parts[0], int(round(start * 1000)), int(round(end * 1000))))
        # The file after the newest finished one is being written, and it overwrites the oldest.
        return found[-(self.ring.wrap - 1):]

    def close(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()  # lets ffmpeg finish the current segment and the list
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
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
            "-y", "-f", "concat", "-safe", "0", "-i", _url(listing), "-filter_complex", graph, *maps,
            "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
            "-movflags", "+faststart", "-f", "mp4", _url(out),
        ]
        run_ffmpeg(argv, what="saving a replay", path=out)


def _ts_lead_ms(path: Path) -> int:
    """How long after the file's start time its first picture comes (audio may start earlier)."""
    argv = [_tool("ffprobe"), "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts_time:format=start_time",
            "-read_intervals", "%+#1", "-of", "json", _url(path)]
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=60)
    try:
        info = json.loads(proc.stdout or b"{}")
        first = _first_float(info["packets"][0]["pts_time"])
        start = _first_float(info["format"]["start_time"])
    except (json.JSONDecodeError, KeyError, IndexError):
        first = start = None
    if proc.returncode != 0 or first is None or start is None:
        raise MediaError("replay segment has no picture", path, stderr_tail=_tail(proc.stderr))
    return max(0, int(round((first - start) * 1000)))
