"""ffprobe: what a video is (``VideoInfo``), the chapters it carries (``MediaChapter``), and the per-stream durations
of a rendered file."""

from __future__ import annotations

import json
import math
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from autotosis.core.errors import MediaError
from autotosis.media.tools import _last_error_line, _run, _tail, _tool, _url

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
    # Which of the file's video streams is the picture (ffmpeg's ``v:N``): not always the first, as a
    # Matroska file may carry its cover image as a one-picture video stream before the recording.
    video_stream: int = 0

    @property
    def picture_input(self) -> str:
        """ffmpeg's specifier of the picture stream of this file as input 0 (``-map`` and filter graphs)."""
        return f"0:v:{self.video_stream}"

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


# The last videos probed, by (ffprobe, path, inode, size, mtime): one run asks about the same file from several
# stages (train --audio checks each clip for sound, then decodes it), and a file that changed is probed again.
# The tool is looked up first, so a missing or too old ffprobe still fails here, before any output is made.
_PROBED: dict[tuple[str, str, int, int, int], VideoInfo] = {}
_PROBED_MAX = 256


def probe(path: Path | str) -> VideoInfo:
    """Read a video's metadata with ffprobe; MediaError when it is not a readable video."""
    path = Path(path)
    try:
        stat = path.stat()
    except OSError:  # missing or unreadable: _probe says which
        return _probe(path)
    # Stat taken before probing: a file that changes meanwhile gets another key, so it is probed again.
    key = (_tool("ffprobe"), str(path), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    known = _PROBED.get(key)
    if known is None:
        known = _probe(path)
        if len(_PROBED) >= _PROBED_MAX:
            _PROBED.pop(next(iter(_PROBED)), None)
        _PROBED[key] = known
    return known


def _probe(path: Path) -> VideoInfo:
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

    def unreadable(tail: str, cause: str) -> MediaError:
        if _looks_like_text(path):
            _refuse_non_video(path, {"format": {"format_name": "tty"}})
        return MediaError(
            f"not a readable video: {cause}",
            path,
            stderr_tail=tail,
            hint="is it a complete video file? `ffprobe FILE` shows what ffmpeg makes of it",
        )

    info = _ffprobe_json(path, ["-show_format", "-show_streams"], unreadable)
    streams = info.get("streams", [])
    _refuse_non_video(path, info)
    video_streams = [s for s in streams if s.get("codec_type") == "video"]
    video_stream = _picture_stream(video_streams)
    video = None if video_stream is None else video_streams[video_stream]
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
    # The picture's own length: Matroska keeps it in a tag, and the file's length also counts sound that runs on
    # after the last picture (an OBS recording), where no frame can be read.
    duration = _first_float(video.get("duration"), _tag_seconds(video, "DURATION"), fmt.get("duration"))
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
        video_stream=video_stream,
    )


# Codecs of single pictures: a video stream in one of them beside another is cover art or a thumbnail
# (Matroska has no "attached picture" mark for it), not the recording.
_PICTURE_CODECS = frozenset({"png", "mjpeg", "bmp", "tiff", "webp", "jpegls", "jpeg2000", "jpegxl", "qoi"})


def _picture_stream(video_streams: list[dict]) -> int | None:
    """Which of a file's video streams (ffprobe entries, in file order) holds the recording: the first that is
    neither an attached picture nor a still image, preferring one that is not in a single-picture codec (so a
    cover image stored before the recording is passed over; a lone MJPEG webcam stream is still taken)."""

    def still(stream: dict) -> bool:
        disposition = stream.get("disposition") or {}
        return bool(disposition.get("attached_pic") or disposition.get("still_image"))

    moving = [i for i, stream in enumerate(video_streams) if not still(stream)]
    coded_as_video = [i for i in moving if str(video_streams[i].get("codec_name", "")) not in _PICTURE_CODECS]
    return (coded_as_video or moving or [None])[0]


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


def _tag_seconds(stream: dict, name: str) -> float | None:
    """A stream tag holding a time as Matroska writes it ("HH:MM:SS.nnnnnnnnn"; the key may carry a language,
    "DURATION-eng"), in seconds; None when absent or unreadable."""
    for key, value in (stream.get("tags") or {}).items():
        if key.upper().split("-")[0] != name:
            continue
        try:
            hours, minutes, seconds = str(value).strip().split(":")
            total = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
        except ValueError:
            continue
        if math.isfinite(total) and total > 0:
            return total
    return None


def _first_float(*values: object) -> float | None:
    for value in values:
        try:
            number = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            return number
    return None


@dataclass(frozen=True)
class MediaChapter:
    """A chapter stored in a video file (MP4/MOV, MKV, ...), as ffprobe reads it.

    Times are exact milliseconds from the start of the file's timeline (ffprobe's integer ``start``/``end``
    in the chapter's own time base).  An MP4 stores only where each chapter starts: ffmpeg ends each one
    where the next begins (the last where the file or its chapter track ends).  Matroska stores both ends,
    so a chapter there may have no length (``end_ms == start_ms``): a point marker.
    """

    index: int  # 1-based, in the file's order
    start_ms: int
    end_ms: int
    title: str  # "" when the chapter has none


def _ffprobe_json(path: Path, show: list[str], failed: Callable[[str, str], MediaError]) -> dict:
    """ffprobe's JSON answer for ``path`` with the ``-show_*`` options ``show``.

    A file ffprobe cannot read raises ``failed(stderr tail, ffprobe's last error line)``;
    a stalled read (a network drive) stops after 120 s.
    """
    argv = [_tool("ffprobe"), "-v", "error", "-print_format", "json", *show, _url(path)]
    try:
        proc = _run(argv, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise MediaError(
            "ffprobe did not finish within 120 s", path, hint="is the file on a stalled network drive?"
        ) from exc
    if proc.returncode != 0:
        tail = _tail(proc.stderr)
        # ffprobe prefixes its message with the URL; the path is in our message already.
        raise failed(tail, _last_error_line(tail).replace(f"{_url(path)}: ", ""))
    try:
        return json.loads(proc.stdout.decode("utf-8", "replace"))
    except json.JSONDecodeError as exc:
        raise MediaError("ffprobe printed something that is not JSON", path) from exc


def read_chapters(path: Path | str) -> tuple[MediaChapter, ...]:
    """The chapters of a video file, in the file's order (empty when it has none).

    MediaError when the file is missing or ffprobe cannot read it.  Times are relative to the
    file's first timestamp (``start_time``), as players show them.
    """
    path = Path(path)
    if not path.is_file():
        raise MediaError("no such file" if not path.exists() else "is not a regular file", path)
    info = _ffprobe_json(
        path,
        ["-show_chapters", "-show_entries", "format=start_time"],
        lambda tail, cause: MediaError(f"cannot read its chapters: {cause}", path, stderr_tail=tail),
    )
    origin = Fraction(str(_first_float((info.get("format") or {}).get("start_time")) or 0))
    chapters = []
    for index, raw in enumerate(info.get("chapters") or [], start=1):
        base = _fraction(str(raw.get("time_base", ""))) or Fraction(1, 1000)
        try:
            start, end = Fraction(int(raw["start"])) * base, Fraction(int(raw["end"])) * base
        except (KeyError, TypeError, ValueError):
            raise MediaError(f"chapter {index} has no usable start/end", path) from None
        start_ms = max(0, round((start - origin) * 1000))
        end_ms = max(start_ms, round((end - origin) * 1000))
        title = str((raw.get("tags") or {}).get("title", ""))
        chapters.append(MediaChapter(index, start_ms, end_ms, title))
    return tuple(chapters)


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
