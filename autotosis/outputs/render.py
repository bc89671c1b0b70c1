"""Events -> reel: cut each event, annotate it, join the pieces.

Every piece is cut with a seek before the input and re-encoded to one common format
(size, fps, square pixels, 48 kHz stereo PCM, silence where the source has none), so the
cost grows with the reel's length, never the VOD's, and the join is a lossless concat.
With ``chapters`` every piece becomes a chapter of the reel (ffmetadata muxed by the join),
timed from the whole frames each piece really has, and the same list is written as a
YouTube description block beside the reel.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from autotosis.core.errors import DataError, UsageError
from autotosis.core.fsutil import atomic_path, check_writable, work_dir, write_text_atomic
from autotosis.core.progress import ProgressCallback, no_progress
from autotosis.detect.scores import Scores
from autotosis.detect.segments import Event
from autotosis.media import encode, probe
from autotosis.outputs.exports.chapters import Chapter, chapters_ffmetadata, chapters_youtube, reel_chapters
from autotosis.outputs.exports.timecode import clip_name, display_label


@dataclass(frozen=True)
class RenderOptions:
    width: int | None = None  # default: the first source's displayed size (even)
    height: int | None = None
    fps: Fraction | None = None  # default: the first source's frame rate, at most 60
    chunk_ms: int = 500  # the confidence text changes this often
    overlay: bool = True
    title: str | None = None  # optional title card before the reel
    title_ms: int = 2000
    source_cards: bool = False  # a card naming the source before each video's events
    crf: int = 21
    chapters: bool = False  # mux one chapter per piece into the reel and write REEL.youtube.txt beside it
    audio_track: int | None = None  # None: mix every audio track of a source; N (from 1): only the Nth


@dataclass(frozen=True)
class ReelPart:
    """One source video and the events to take from it."""

    video: Path
    events: tuple[Event, ...]
    scores: Scores | None = None


@dataclass(frozen=True)
class RenderResult:
    path: Path
    pieces: int
    duration_ms: int
    chapters: tuple[Chapter, ...] = ()  # the reel's chapters (empty unless asked for)
    chapters_text: Path | None = None  # the same chapters as a YouTube description block
    warnings: tuple[str, ...] = ()  # e.g. YouTube's chapter rules the reel breaks


def score_colour(score: float) -> str:
    """Red (0.0) through yellow to green (1.0), as RRGGBB."""
    score = float(min(max(score, 0.0), 1.0))
    red = int(round(255 * min(1.0, 2 * (1 - score))))
    green = int(round(255 * min(1.0, 2 * score)))
    return f"{red:02x}{green:02x}00"


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def output_spec(first: probe.VideoInfo, options: RenderOptions) -> encode.EncodeSpec:
    if options.width and options.height:
        width, height = _even(options.width), _even(options.height)
    else:
        width, height = _even(first.width * float(first.sar)), _even(first.height)
    # The source's nominal rate: a VFR recording that dropped frames keeps its 24000/1001, rather
    # than its average (16 fps), which would make the reel stutter.
    fps = options.fps or min(first.nominal_fps or first.fps or Fraction(30), Fraction(60))
    # Keep common rates exact (30000/1001 stays NTSC) but tame odd VFR averages.
    if fps.denominator not in (1, 1001):
        fps = Fraction(round(float(fps)))
    return encode.EncodeSpec(width=width, height=height, fps=fps, crf=options.crf, audio_track=options.audio_track)


AUDIO_TRACK_HINT = "audio tracks are numbered from 1 in the file's order; 'mix' (the default) mixes them all"


def parse_audio_track(text: str) -> int | None:
    """``--audio-track``: ``mix`` (None) or a track number from 1; ValueError otherwise."""
    text = str(text).strip().lower()
    if text in ("mix", "all"):
        return None
    try:
        track = int(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a track number nor 'mix'") from None
    if track < 1:
        raise ValueError(f"{track}: audio tracks are numbered from 1")
    return track


def check_audio_track(infos: Iterable[probe.VideoInfo], track: int | None) -> None:
    """UsageError, before anything is cut, when a source with sound has no audio track ``track``.

    A source without any sound gets silence whatever the choice, as always.
    """
    if track is None:
        return
    for info in infos:
        if info.has_audio and track > info.audio_count:
            count = info.audio_count
            raise UsageError(
                f"--audio-track {track}: {info.path} has {count} audio track{'' if count == 1 else 's'}",
                hint=AUDIO_TRACK_HINT,
            )


def chunk_overlays(
    event: Event, scores: Scores | None, duration_ms: int, chunk_ms: int, folder: Path, stem: str
) -> list[encode.TextOverlay]:
    """One text overlay per chunk: "<class>: <score>" coloured by the score.

    With scores, each chunk shows the score at that moment; without, every chunk shows the event's
    own number (``Event.score``, its peak), as its clip name, chapter and subtitle do.
    """
    starts = np.arange(0, duration_ms, chunk_ms, dtype=np.int64)
    if scores is not None and len(scores.times_ms):
        values = scores.score_at(event.label, event.start_ms + starts + chunk_ms // 2)
    else:
        values = np.full(len(starts), event.score, dtype=np.float64)
    name = display_label(event.label)
    overlays = []
    for i, (start, value) in enumerate(zip(starts, values)):
        text_file = folder / f"{stem}_{i:05d}.txt"
        text_file.write_text(f"{name}: {float(value):.2f}", encoding="utf-8")
        overlays.append(
            encode.TextOverlay(
                text_file, int(start), int(min(start + chunk_ms, duration_ms)), score_colour(float(value))
            )
        )
    return overlays


def render_reel(
    parts: Sequence[ReelPart],
    out: Path,
    options: RenderOptions = RenderOptions(),
    *,
    force: bool = False,
    progress: ProgressCallback = no_progress,
) -> RenderResult:
    """Cut, annotate and join the events of ``parts`` into ``out`` (written atomically)."""
    out = Path(out)
    check_writable(out, force)
    if out.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise UsageError(f"{out}: the reel is an MP4 file", hint="give an output name ending in .mp4")
    chapters_text = youtube_chapters_path(out) if options.chapters else None
    if chapters_text is not None:
        check_writable(chapters_text, force)  # before the slow part
    parts = [p for p in parts if p.events]
    if not parts:
        raise DataError("no events to render", hint="lower --threshold, or check the scores with `autotosis events`")
    infos = {p.video: probe.probe(p.video) for p in parts}
    check_audio_track(infos.values(), options.audio_track)
    spec = output_spec(infos[parts[0].video], options)
    total_ms = sum(e.duration_ms for p in parts for e in p.events)
    chapters: list[Chapter] = []
    with work_dir("autotosis-render-") as work:
        pieces: list[Path] = []
        done_ms = 0
        if options.title:
            pieces.append(_card(work, "title", options.title, spec, options.title_ms))
        progress("render", 0, total_ms / 1000)
        for p_index, part in enumerate(parts):
            info = infos[part.video]
            if options.source_cards:
                pieces.append(_card(work, f"source{p_index}", part.video.stem, spec, options.title_ms))
            for e_index, event in enumerate(part.events):
                if event.start_ms >= info.duration_ms:
                    raise DataError(
                        f"{part.video}: event at {event.start_ms / 1000:.1f} s is past the video's end "
                        f"({info.duration_ms / 1000:.1f} s)",
                        hint="were the events made from another video?",
                    )
                duration = min(event.end_ms, info.duration_ms) - event.start_ms
                stem = f"p{p_index:03d}_e{e_index:04d}"
                overlays = (
                    chunk_overlays(event, part.scores, duration, options.chunk_ms, work, stem)
                    if options.overlay
                    else []
                )
                piece = work / f"{stem}.mkv"
                encode.cut_segment(info, event.start_ms, duration, piece, spec, overlays)
                pieces.append(piece)
                done_ms += event.duration_ms
                progress("render", done_ms / 1000, total_ms / 1000)
        chapters_file = None
        if options.chapters:  # after the cuts, which refuse events outside their video
            lengths = _frame_exact_lengths(_piece_lengths(parts, infos, options), spec.fps)
            chapters = reel_chapters(list(zip(_piece_titles(parts, options), lengths)))
            chapters_file = work / "chapters.ffmetadata"
            chapters_file.write_text(chapters_ffmetadata(chapters), encoding="utf-8")
        with atomic_path(out, force=force) as tmp:
            encode.concat_segments(pieces, tmp, chapters_file=chapters_file)
    warnings: list[str] = []
    if chapters_text is not None:
        text, warnings = chapters_youtube(chapters)
        write_text_atomic(chapters_text, text, force=force)
    reel_ms = sum(
        int(round(encode.segment_frames(ms, spec.fps) * 1000 / spec.fps))
        for ms in _piece_lengths(parts, infos, options)
    )
    return RenderResult(
        path=out,
        pieces=len(pieces),
        duration_ms=reel_ms,
        chapters=tuple(chapters),
        chapters_text=chapters_text,
        warnings=tuple(warnings),
    )


def youtube_chapters_path(reel: Path) -> Path:
    """``reel.mp4`` -> ``reel.youtube.txt``: the reel's chapters for a YouTube description."""
    return Path(reel).with_suffix(".youtube.txt")


def _piece_titles(parts: Sequence[ReelPart], options: RenderOptions) -> list[str]:
    """Chapter titles in piece order: the title text, the source's name, then ``rage 0.87 @ 0:12:03`` per event."""
    titles = [options.title] if options.title else []
    for part in parts:
        if options.source_cards:
            titles.append(part.video.stem)
        titles += [clip_name(e) for e in part.events]
    return titles


def _frame_exact_lengths(lengths_ms: Sequence[int], fps: Fraction) -> list[int]:
    """Each piece's real length in ms (pieces are cut to whole frames), from rounded running totals.

    Rounding the running total rather than each piece keeps late chapters from drifting
    off the frames where their pieces really start.
    """
    out, frames, position = [], 0, 0
    for ms in lengths_ms:
        frames += encode.segment_frames(ms, fps)
        end = int(round(frames * 1000 / fps))
        out.append(end - position)
        position = end
    return out


def _piece_lengths(parts: Sequence[ReelPart], infos: dict[Path, probe.VideoInfo], options: RenderOptions) -> list[int]:
    lengths = [options.title_ms] if options.title else []
    for part in parts:
        if options.source_cards:
            lengths.append(options.title_ms)
        lengths += [min(e.end_ms, infos[part.video].duration_ms) - e.start_ms for e in part.events]
    return lengths


def _card(work: Path, stem: str, text: str, spec: encode.EncodeSpec, duration_ms: int) -> Path:
    text_file = work / f"{stem}.txt"
    text_file.write_text(text, encoding="utf-8")
    piece = work / f"{stem}.mkv"
    encode.title_card(
        piece, spec, duration_ms, [encode.TextOverlay(text_file, 0, duration_ms, "ffffff", "center", 1 / 12)]
    )
    return piece
