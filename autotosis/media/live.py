"""Live sources: capture a stream or screen into small frames while a ring of segments is recorded;
replays cut from the ring."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from autotosis.core.errors import MediaError
from autotosis.media.decode import DecodeSpec, FrameBatch, _join, _read_exact, _StderrReader, raw_frames_output
from autotosis.media.encode import audio_mix_graph
from autotosis.media.probe import _first_float, probe
from autotosis.media.tools import _last_error_line, _run, _seconds, _spawn, _stop, _tail, _tool, _url, _wait, run_ffmpeg

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
        argv += raw_frames_output(_live_filters(spec))
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
