"""The vertical-short filter graph: crop bands of the source stacked into one tall picture, with overlays."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autotosis.media.encode import (
    EncodeSpec,
    TextOverlay,
    _audio_chain,
    _cut_inputs,
    _drawtext,
    _segment_output_args,
    segment_frames,
)
from autotosis.media.probe import VideoInfo
from autotosis.media.tools import _seconds, _url, run_ffmpeg

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


def _short_picture_graph(
    picture: ShortPicture, spec: EncodeSpec, overlays: Sequence[TextOverlay], source_picture: str
) -> str:
    """Filter graph from the source's picture stream (``VideoInfo.picture_input``) to ``[v]`` for a short
    (layout, frame rate, text)."""
    inputs = [*picture.bands, *([picture.backdrop] if picture.backdrop else [])]
    # fps first, so a 60 fps source rendered at 30 fps crops and scales half the frames.
    parts = [f"[{source_picture}]fps={spec.fps},split={len(inputs)}" + "".join(f"[s{i}]" for i in range(len(inputs)))]
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
    picture_graph = _short_picture_graph(picture, spec, overlays, source.picture_input)
    graph = f"{picture_graph};{_audio_chain(source, spec.audio_track)}"
    argv += ["-filter_complex", graph, "-map", "[v]", "-map", "[a]"]
    argv += _segment_output_args(spec, frames, exact, aac=True) + ["-movflags", "+faststart", "-f", "mp4", _url(out)]
    run_ffmpeg(argv, what="rendering a short", path=source.path)
