"""Decoding a file's sound: mono float32 PCM streamed out of ffmpeg in chunks (the audio input of a model).

One ffmpeg run over the first audio stream only (``-vn``: no picture is decoded), resampled to
``rate`` and mixed down to one channel, written as raw little-endian float32 to a pipe.  Memory
stays flat whatever the file's length: the caller gets chunks and keeps what it computes from them.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from autotosis.core.errors import MediaError
from autotosis.media.decode import _read_exact
from autotosis.media.probe import VideoInfo, probe
from autotosis.media.tools import (
    _STDERR_TAIL_LINES,
    _last_error_line,
    _seconds,
    _signal_text,
    _spawn,
    _stop,
    _Stopped,
    _tool,
    _url,
    _wait,
)

AUDIO_RATE = 16_000  # samples per second of the decoded sound
_CHUNK_SAMPLES = AUDIO_RATE * 10  # 640 KB of float32 per read


class NoAudioError(MediaError):
    """The source has no audio stream."""


def _audio_argv(path: Path, rate: int, start_ms: int | None, end_ms: int | None) -> list[str]:
    argv = [_tool("ffmpeg"), "-nostdin", "-hide_banner", "-nostats", "-loglevel", "error"]
    if start_ms:
        argv += ["-ss", _seconds(start_ms)]
    argv += ["-i", _url(path)]
    if end_ms is not None:
        argv += ["-t", _seconds(max(end_ms - (start_ms or 0), 1))]
    return argv + ["-map", "0:a:0", "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "pipe:1"]


class _TailReader(threading.Thread):
    """Keeps the last lines of ffmpeg's stderr (so a full stderr pipe never blocks it)."""

    def __init__(self, stream) -> None:
        super().__init__(daemon=True)
        self._stream = stream
        self.tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)

    def run(self) -> None:
        for raw in self._stream:
            self.tail.append(raw.decode("utf-8", "replace").rstrip())


def iter_audio(
    path: Path | str,
    *,
    rate: int = AUDIO_RATE,
    start_ms: int | None = None,
    end_ms: int | None = None,
    info: VideoInfo | None = None,
    chunk_samples: int = _CHUNK_SAMPLES,
    stop: threading.Event | None = None,
) -> Iterator[np.ndarray]:
    """The sound of ``path`` (or of ``start_ms``..``end_ms``) as consecutive mono float32 chunks at ``rate``.

    Sample 0 of the first chunk plays at ``start_ms`` (0: the start of the file).  Raises
    ``NoAudioError`` when the file has no audio stream, MediaError when ffmpeg fails.  The
    child process is always killed and reaped, whether the caller reads to the end or not.
    """
    path = Path(path)
    info = info or probe(path)
    if not info.has_audio:
        raise NoAudioError("has no audio stream", path, hint="train or scan it without sound (train --audio off)")
    proc = _spawn(_audio_argv(path, rate, start_ms, end_ms))
    reader = _TailReader(proc.stderr)
    reader.start()
    try:
        leftover = b""
        while True:
            data = leftover + _read_exact(proc.stdout, chunk_samples * 4 - len(leftover), stop)
            whole = len(data) // 4 * 4
            if whole:
                yield np.frombuffer(data[:whole], dtype="<f4").astype(np.float32)
            leftover = data[whole:]
            if len(data) < chunk_samples * 4:
                break
        returncode = _wait(proc, stop)
        reader.join(5)
        tail = "\n".join(reader.tail)
        if returncode != 0:
            cause = _signal_text(returncode) if returncode < 0 else _last_error_line(tail)
            raise MediaError(f"decoding the sound failed: {cause}", path, stderr_tail=tail)
    except _Stopped:
        return
    finally:
        _stop(proc)
        proc.stdout.close()


def decode_audio(
    path: Path | str,
    *,
    rate: int = AUDIO_RATE,
    start_ms: int | None = None,
    end_ms: int | None = None,
    info: VideoInfo | None = None,
) -> np.ndarray:
    """The whole sound of ``path`` (or a time range) as one mono float32 array (short files: tests, clips)."""
    chunks = list(iter_audio(path, rate=rate, start_ms=start_ms, end_ms=end_ms, info=info))
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
