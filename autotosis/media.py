"""Everything that runs ffmpeg or ffprobe lives here, and only here.

Other modules pass typed values (paths, millisecond times, sizes, relative regions) and
get typed values back; they never see a command line.  Commands are argv lists (never a
shell), input and output paths are given as ``file:`` URLs so names with ``:``, a
leading ``-`` or other odd characters are never parsed as options or protocols.
"""

from __future__ import annotations

import json
import math
import os
import queue
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
    return found


def ffmpeg_version() -> tuple[int, int]:
    """(major, minor) of the ffmpeg on PATH; ToolMissingError when absent or too old."""
    out = subprocess.run([_tool("ffmpeg"), "-hide_banner", "-version"], capture_output=True, text=True, check=False)
    match = re.search(r"ffmpeg version n?(\d+)\.(\d+)", out.stdout)
    if not match:
        # Git builds print e.g. "N-112345-g..."; assume they are new enough.
        return (99, 0)
    version = (int(match.group(1)), int(match.group(2)))
    if version < MIN_FFMPEG_VERSION:
        raise ToolMissingError(
            f"ffmpeg {version[0]}.{version[1]} is too old",
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
        raise MediaError(f"{what} failed: {_last_error_line(tail)}", path, stderr_tail=tail)


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
    stat = path.stat()
    if stat.st_size == 0:
        raise MediaError("file is empty (0 bytes)", path)
    argv = [
        _tool("ffprobe"), "-v", "error", "-print_format", "json",
        "-show_format", "-show_streams", _url(path),
    ]
    proc = subprocess.run(argv, capture_output=True, check=False, timeout=120)
    if proc.returncode != 0:
        tail = _tail(proc.stderr)
        raise MediaError(f"not a readable video: {_last_error_line(tail)}", path, stderr_tail=tail)
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
        # fps first so crop/scale only run on the frames we keep.
        filters.append(f"fps={spec.fps!r}")
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
        self.times: queue.Queue[int | None] = queue.Queue()
        self.tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self._time_base = Fraction(1, 1000)

    def run(self) -> None:
        try:
            for raw in self._stream:
                line = raw.decode("utf-8", "replace").rstrip()
                frame = _SHOWINFO_FRAME.search(line)
                if frame:
                    ms = int(round(int(frame.group(1)) * self._time_base * 1000))
                    self.times.put(ms)
                    continue
                tb = _SHOWINFO_TB.search(line)
                if tb:
                    self._time_base = Fraction(int(tb.group(1)), int(tb.group(2)))
                    continue
                if "Parsed_showinfo" not in line:
                    self.tail.append(line)
        finally:
            self.times.put(None)


def iter_frames(path: Path | str, spec: DecodeSpec, *, batch_size: int = 32, info: VideoInfo | None = None) -> Iterator[FrameBatch]:
    """Stream a video as batches of small RGB frames with exact presentation times.

    ffmpeg decodes, samples, crops and scales in its own process (so it runs on another
    core while we do inference) and writes raw RGB to a pipe: no image files, and memory
    stays flat whatever the video's length.  Times come from the frames' presentation
    timestamps (via showinfo), relative to the start of the file, never from a counter.
    """
    path = Path(path)
    info = info or probe(path)
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
    argv += [
        "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", _decode_filters(spec, info),
        "-fps_mode", "passthrough",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ]
    frame_bytes = spec.size * spec.size * 3
    offset_ms = spec.start_ms or 0
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    reader = _StderrReader(proc.stderr)
    reader.start()
    try:
        while True:
            data = _read_exact(proc.stdout, frame_bytes * batch_size)
            count = len(data) // frame_bytes
            if count == 0:
                break
            frames = np.frombuffer(data[: count * frame_bytes], dtype=np.uint8).reshape(count, spec.size, spec.size, 3)
            times = np.empty(count, dtype=np.int64)
            for i in range(count):
                ms = reader.times.get(timeout=60)
                if ms is None:
                    raise MediaError("decoder output and timestamps disagree", path, stderr_tail="\n".join(reader.tail))
                times[i] = ms + offset_ms
            yield FrameBatch(times_ms=times, frames=frames)
            if count < batch_size:
                break
        returncode = proc.wait()
        reader.join(timeout=5)
        if returncode != 0:
            tail = "\n".join(reader.tail)
            raise MediaError(f"decoding failed: {_last_error_line(tail)}", path, stderr_tail=tail)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


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
    position: str = "bottom-left"  # or "center"
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
        f"fps={spec.fps}",
        "format=yuv420p",
    ]
    chain += [_drawtext(o) for o in overlays]
    return ",".join(chain)


def _segment_output_args(spec: EncodeSpec, frames: int, duration: str) -> list[str]:
    return [
        "-frames:v", str(frames), "-t", duration,
        "-c:v", "libx264", "-preset", spec.preset, "-crf", str(spec.crf), "-pix_fmt", "yuv420p",
        "-r", str(spec.fps), "-video_track_timescale", "90000",
        # PCM in the pieces; the final join encodes AAC once, so audio stays gapless and in sync.
        "-c:a", "pcm_s16le", "-ar", "48000", "-ac", "2",
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
    argv = ["-y", "-ss", _seconds(start_ms), "-i", _url(source.path)]
    if not source.has_audio:
        argv += ["-f", "lavfi", "-i", "anullsrc=r=48000:cl=stereo"]
    audio = "[0:a:0]" if source.has_audio else "[1:a]"
    graph = (
        f"[0:v:0]{_picture_filters(spec, overlays)}[v];"
        f"{audio}aresample=48000,aformat=sample_fmts=s16:channel_layouts=stereo,apad[a]"
    )
    argv += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]"]
    argv += _segment_output_args(spec, frames, exact) + ["-f", "matroska", _url(out)]
    run_ffmpeg(argv, what="cutting a segment", path=source.path)


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
