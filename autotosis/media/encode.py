"""Encoding: frames to video, text overlays, segment cuts, title cards, audio mixes and the concat join
(the reel's pieces)."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from autotosis.core.errors import MediaError
from autotosis.core.region import Region
from autotosis.media.probe import VideoInfo
from autotosis.media.tools import (
    _communicate,
    _last_error_line,
    _run,
    _seconds,
    _spawn,
    _stop,
    _tail,
    _tool,
    _url,
    run_ffmpeg,
)

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
    # Where the text and its box must stay (fractions of the frame); ``position`` is then taken
    # inside it: "top" = centred at its top, "bottom-left" = its bottom-left corner.  None: the whole frame.
    area: Region | None = None


TEXT_BOX_BORDER = 10  # pixels of the dark box drawn around the text, on every side


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
    if overlay.area is not None:
        xy = _xy_in_area(overlay.position, overlay.area)
    elif overlay.position == "center":
        xy = "x=(w-text_w)/2:y=(h-text_h)/2"
    elif overlay.position == "top":
        xy = "x=(w-text_w)/2:y=h/24"
    else:
        xy = "x=h/30:y=h-text_h-h/20"
    return (
        f"drawtext=textfile={escape_filter_value(str(overlay.text_file))}:expansion=none"
        f":fontsize=h*{overlay.size_ratio:.4f}:fontcolor=0x{overlay.color}"
        f":box=1:boxcolor=black@0.55:boxborderw={TEXT_BOX_BORDER}:{xy}"
        f":enable=between(t\\,{start}\\,{end})"
    )


def _xy_in_area(position: str, area: Region) -> str:
    """drawtext ``x``/``y`` that keep the text *and its box* inside ``area``.

    The area's edges are moved inwards to even pixels, so that no 2x2 chroma sample of
    4:2:0 video is shared between the box and the outside; the box's border is inside too.
    A text wider than the area starts at its left edge (the caller wraps titles to fit).
    """
    b = TEXT_BOX_BORDER
    left, right = f"(2*ceil(w*{area.x0:.6f}/2)+{b})", f"(2*floor(w*{area.x1:.6f}/2)-{b})"
    top, bottom = f"(2*ceil(h*{area.y0:.6f}/2)+{b})", f"(2*floor(h*{area.y1:.6f}/2)-{b})"
    centred_x = f"max({left}\\,({left}+{right}-text_w)/2)"
    if position == "top":
        return f"x={centred_x}:y={top}"
    if position == "center":
        return f"x={centred_x}:y=max({top}\\,({top}+{bottom}-text_h)/2)"
    return f"x={left}:y={bottom}-text_h"


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
    graph = f"[{source.picture_input}]{_picture_filters(spec, overlays)}[v];{_audio_chain(source, spec.audio_track)}"
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
    seek = start_ms - margin
    # No seek at all from the very start: ffmpeg's HLS demuxer, asked to seek to 0, drops the first 0.6 s of
    # sound (a reel from the start of a local .m3u8 VOD had its sound 0.6 s short).
    argv = ["-y", *(["-ss", _seconds(seek)] if seek > 0 else []), "-i", _url(source.path)]
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


# --------------------------------------------------------------------------- previews

PREVIEW_MAX_SIZE = 480  # longest side of a preview clip, in pixels
PREVIEW_MAX_FPS = 30


def cut_preview(
    source: VideoInfo,
    start_ms: int,
    duration_ms: int,
    out: Path,
    *,
    max_size: int = PREVIEW_MAX_SIZE,
    crf: int = 28,
) -> None:
    """Cut ``[start, start+duration)`` of ``source`` into a small MP4 a browser plays inline.

    H.264 (yuv420p) + AAC stereo, ``+faststart`` (playable before it has all loaded), square
    pixels, at most ``max_size`` pixels on its longer side (never enlarged) and at most 30 fps;
    the source's audio tracks are mixed as in the reel, and a source without sound gets silence,
    so every preview has one video and one audio stream.  Seeks before the input, like cut_segment.
    """
    if duration_ms <= 0:
        raise MediaError(f"a preview must last more than 0 ms, got {duration_ms}", source.path)
    box = max(2, int(max_size))
    chain = [
        "scale=trunc(iw*sar/2)*2:ih",  # square the pixels of an anamorphic source
        "setsar=1",
        f"scale=w=min({box}\\,iw):h=min({box}\\,ih):force_original_aspect_ratio=decrease:force_divisible_by=2",
        "setsar=1",
    ]
    if source.fps is None or source.fps > PREVIEW_MAX_FPS:
        chain.append(f"fps={PREVIEW_MAX_FPS}")
    chain.append("format=yuv420p")
    argv = _cut_inputs(source, start_ms)
    graph = f"[{source.picture_input}]{','.join(chain)}[v];{_audio_chain(source)}"
    argv += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-t", _seconds(duration_ms)]
    argv += [
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        str(crf),
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-b:a",
        "96k",
        "-ar",
        "48000",
        "-ac",
        "2",
        "-movflags",
        "+faststart",
        "-f",
        "mp4",
        _url(out),
    ]
    run_ffmpeg(argv, what="cutting a preview clip", path=source.path)
