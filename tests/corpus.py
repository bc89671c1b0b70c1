"""A corpus of awkward and broken inputs, generated with ffmpeg lavfi (nothing downloaded).

Every generator writes one small file and returns its path.  The cases mirror what real
VODs and hand-made clips throw at the tool: broken containers, odd geometry, exotic
codecs and pixel formats, timestamps that do not start at zero or jump, and file names
full of characters that mean something to a shell or to ffmpeg.  The table of expected
outcomes lives in docs/robustness.md and is asserted in tests/test_robustness.py.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"

# A name that a shell, ffmpeg's protocol parser, its filter-graph parser or a
# printf-style formatter would all misread, plus non-ASCII letters.
NASTY_NAME = "my clip 'quoted' \"dq\" 100% a:b [x],y;z \\back é日本.mp4"
# Text that breaks a filter graph or drawtext's expansion if it were interpolated.
NASTY_TITLE = "it's: a,b; [c] 100% %{pts} %{localtime} \\n done"


def ffmpeg(*args: str) -> None:
    """Run ffmpeg quietly (argv list, never a shell)."""
    subprocess.run([FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args], check=True)


def _lavfi_video(size: str = "96x54", fps: str = "25", duration: float = 3.0, source: str = "testsrc2") -> list[str]:
    return ["-f", "lavfi", "-i", f"{source}=s={size}:r={fps}:d={duration}"]


def _lavfi_audio(duration: float = 3.0) -> list[str]:
    return ["-f", "lavfi", "-i", f"sine=f=440:r=48000:d={duration}"]


_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-g", "25"]
# The ordinary file most generators write: H.264 in 4:2:0 (what every player takes) with AAC sound.
_H264_AAC = [*_X264, "-pix_fmt", "yuv420p", "-c:a", "aac"]


def _out(path: Path) -> str:
    return "file:" + str(path)


def normal(path: Path, duration: float = 3.0) -> Path:
    """A plain H.264/AAC MP4, the reference every other case is compared with."""
    ffmpeg(
        *_lavfi_video(duration=duration),
        *_lavfi_audio(duration),
        *_H264_AAC,
        "-shortest",
        _out(path),
    )
    return path


def zero_byte(path: Path) -> Path:
    path.write_bytes(b"")
    return path


def text_named_mp4(path: Path) -> Path:
    path.write_text("this is a text file that only pretends to be a video\n" * 40, encoding="utf-8")
    return path


def text_file(path: Path) -> Path:
    """A label file (``notes.txt``) given where a video belongs: ffmpeg's tty demuxer would read
    it as a video of its characters (before issue 16: "scored 1 frames", a reel of text)."""
    path.write_text(
        "# task=rage\n" + "clips/2021-03-01_part3.mp4  crop=0.78,0.13,0.97,0.37  0:05.2-0:09  1:12-1:20.5\n" * 30,
        encoding="utf-8",
    )
    return path


def still_image(path: Path) -> Path:
    """One PNG picture: ffmpeg reads it (png_pipe), but it has no timeline to scan or cut."""
    ffmpeg(*_lavfi_video(duration=1.0), "-frames:v", "1", _out(path))
    return path


def two_audio_tracks(path: Path, duration: float = 3.0, first: str = "silent") -> Path:
    """Video plus two audio tracks, like an OBS recording with the microphone and the game apart:
    track 1 is silent (or a loud 220 Hz tone with ``first="loud"``), track 2 a 440 Hz tone."""
    one = (
        f"anullsrc=r=48000:cl=stereo:d={duration}" if first == "silent" else f"sine=f=220:r=48000:d={duration},volume=6"
    )
    two = f"sine=f=440:r=48000:d={duration}" + (",volume=7" if first != "silent" else "")
    ffmpeg(
        *_lavfi_video(duration=duration),
        "-f",
        "lavfi",
        "-i",
        one,
        "-f",
        "lavfi",
        "-i",
        two,
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        *_H264_AAC,
        _out(path),
    )
    return path


def truncated(path: Path) -> Path:
    """A valid MP4 cut off in the middle of its media data (moov at the end is lost)."""
    full = normal(path.with_name(path.stem + ".full.mp4"), duration=3.0)
    data = full.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 5])
    full.unlink()
    return path


def truncated_faststart(path: Path) -> Path:
    """Moov up front, media data cut off: probing works, decoding ends early with errors."""
    full = path.with_name(path.stem + ".full.mp4")
    ffmpeg(
        *_lavfi_video(duration=3.0),
        *_lavfi_audio(3.0),
        *_H264_AAC,
        "-shortest",
        "-movflags",
        "+faststart",
        _out(full),
    )
    data = full.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    full.unlink()
    return path


def audio_only(path: Path) -> Path:
    ffmpeg(*_lavfi_audio(2.0), "-c:a", "aac", _out(path))
    return path


def video_only(path: Path) -> Path:
    ffmpeg(*_lavfi_video(duration=3.0), *_X264, "-pix_fmt", "yuv420p", _out(path))
    return path


def vfr(path: Path) -> Path:
    """5 fps for the first 2 s, then 25 fps; the picture turns blue at exactly t=1.6 s (frame 9 of the file)."""
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=64x36:r=25:d=4",
        "-vf",
        "drawbox=x=0:y=0:w=iw:h=ih:color=blue:t=fill:enable='gte(t,1.6)',select='gte(t,2)+not(mod(n,5))'",
        *_X264,
        "-pix_fmt",
        "yuv420p",
        "-fps_mode",
        "vfr",
        _out(path),
    )
    return path


def rotated(path: Path) -> Path:
    """Stored 96x54 landscape (left half red, right half blue), with display-matrix metadata
    that turns it 90 degrees: shown 54x96, one colour on top and the other below."""
    plain = path.with_name(path.stem + ".plain.mp4")
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=red:s=96x54:r=25:d=2,drawbox=x=iw/2:w=iw/2:h=ih:color=blue:t=fill",
        *_lavfi_audio(2.0),
        *_H264_AAC,
        "-shortest",
        _out(plain),
    )
    # ffmpeg 5.1 writes a display matrix from the stream's rotate tag when stream-copying.
    ffmpeg("-i", _out(plain), "-c", "copy", "-metadata:s:v:0", "rotate=90", _out(path))
    plain.unlink()
    return path


def odd_size(path: Path) -> Path:
    """853x481: odd width and height (4:4:4 so the encoder accepts them)."""
    # testsrc2 rounds its size to even numbers, so scale to the odd size afterwards.
    ffmpeg(
        *_lavfi_video(duration=1.0),
        *_lavfi_audio(1.0),
        "-vf",
        "scale=853:481,setsar=1",
        *_X264,
        "-pix_fmt",
        "yuv444p",
        "-c:a",
        "aac",
        "-shortest",
        _out(path),
    )
    return path


def anamorphic(path: Path) -> Path:
    """Stored 96x72 with 4:3 pixels: displayed 128x72 (16:9)."""
    ffmpeg(
        *_lavfi_video(size="96x72", duration=2.0),
        *_lavfi_audio(2.0),
        "-vf",
        "setsar=4/3",
        *_H264_AAC,
        "-shortest",
        _out(path),
    )
    return path


def tiny(path: Path) -> Path:
    ffmpeg(
        *_lavfi_video(size="16x16", duration=2.0),
        *_lavfi_audio(2.0),
        *_H264_AAC,
        "-shortest",
        _out(path),
    )
    return path


def uhd(path: Path) -> Path:
    """3840x2160, 1 s, cheap to encode (a flat colour at a low bitrate)."""
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "color=c=navy:s=3840x2160:r=10:d=1",
        *_lavfi_audio(1.0),
        *_X264,
        "-pix_fmt",
        "yuv420p",
        "-b:v",
        "200k",
        "-c:a",
        "aac",
        "-shortest",
        _out(path),
    )
    return path


def ten_bit(path: Path) -> Path:
    ffmpeg(
        *_lavfi_video(duration=2.0),
        *_lavfi_audio(2.0),
        *_X264,
        "-pix_fmt",
        "yuv420p10le",
        "-c:a",
        "aac",
        "-shortest",
        _out(path),
    )
    return path


def yuv444(path: Path) -> Path:
    ffmpeg(
        *_lavfi_video(duration=2.0),
        *_lavfi_audio(2.0),
        *_X264,
        "-pix_fmt",
        "yuv444p",
        "-c:a",
        "aac",
        "-shortest",
        _out(path),
    )
    return path


def vp9_webm(path: Path) -> Path:
    ffmpeg(
        *_lavfi_video(duration=2.0),
        *_lavfi_audio(2.0),
        "-c:v",
        "libvpx-vp9",
        "-deadline",
        "realtime",
        "-cpu-used",
        "8",
        "-b:v",
        "200k",
        "-g",
        "25",
        "-c:a",
        "libopus",
        "-shortest",
        _out(path),
    )
    return path


def mpeg4_avi(path: Path) -> Path:
    ffmpeg(
        *_lavfi_video(duration=2.0),
        *_lavfi_audio(2.0),
        "-c:v",
        "mpeg4",
        "-q:v",
        "5",
        "-g",
        "25",
        "-c:a",
        "libmp3lame",
        "-shortest",
        _out(path),
    )
    return path


def timestamp_gap(path: Path) -> Path:
    """4 s of frames whose timestamps jump by 3 s at t=2 s (a stream that dropped out); MKV keeps the gap."""
    ffmpeg(
        *_lavfi_video(size="64x36", duration=4.0),
        "-vf",
        "setpts='PTS+gte(T,2)*3/TB'",
        *_X264,
        "-pix_fmt",
        "yuv420p",
        "-fps_mode",
        "passthrough",
        _out(path),
    )
    return path


def offset_start(path: Path) -> Path:
    """A 3 s MPEG-TS stream whose timestamps start at 5 s (like a cut from a live recording)."""
    ffmpeg(
        *_lavfi_video(size="64x36", duration=3.0),
        *_lavfi_audio(3.0),
        *_H264_AAC,
        "-shortest",
        "-output_ts_offset",
        "5",
        "-f",
        "mpegts",
        _out(path),
    )
    return path


def cover_first(path: Path) -> Path:
    """A 3 s MKV whose first video stream is its cover picture (one red 120x90 PNG; Matroska has no "attached
    picture" mark for it), then the recording and its sound."""
    cover = path.with_name(path.stem + ".cover.png")
    ffmpeg("-f", "lavfi", "-i", "color=c=red:s=120x90:d=1", "-frames:v", "1", _out(cover))
    ffmpeg(
        "-i",
        _out(cover),
        *_lavfi_video(duration=3.0),
        *_lavfi_audio(3.0),
        "-map",
        "0:v",
        "-map",
        "1:v",
        "-map",
        "2:a",
        "-c:v:0",
        "png",
        "-c:v:1",
        "libx264",
        "-preset",
        "ultrafast",
        "-pix_fmt:v:1",
        "yuv420p",
        "-c:a",
        "pcm_s16le",  # no encoder delay: the recording starts at 0, like the other cases
        _out(path),
    )
    cover.unlink()
    return path


def sound_outlasts_picture(path: Path) -> Path:
    """A Matroska recording whose sound runs 0.6 s past its last picture (3 s), as OBS recordings may end: the
    file's length is the sound's, the picture's is only in its stream's DURATION tag."""
    ffmpeg(
        *_lavfi_video(duration=3.0),
        "-f",
        "lavfi",
        "-i",
        "sine=f=440:r=48000:d=3.6",
        *_H264_AAC,
        _out(path),
    )
    return path


# name -> (generator, file name)
GENERATORS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zero_byte": (zero_byte, "empty.mp4"),
    "text_named_mp4": (text_named_mp4, "notes.mp4"),
    "text_file": (text_file, "notes.txt"),
    "still_image": (still_image, "shot.png"),
    "truncated": (truncated, "truncated.mp4"),
    "truncated_faststart": (truncated_faststart, "truncated_fast.mp4"),
    "audio_only": (audio_only, "audio_only.mp4"),
    "video_only": (video_only, "video_only.mp4"),
    "vfr": (vfr, "vfr.mkv"),
    "rotated": (rotated, "rotated.mp4"),
    "odd_size": (odd_size, "odd.mp4"),
    "anamorphic": (anamorphic, "anamorphic.mp4"),
    "tiny": (tiny, "tiny.mp4"),
    "uhd": (uhd, "uhd.mp4"),
    "ten_bit": (ten_bit, "ten_bit.mp4"),
    "yuv444": (yuv444, "yuv444.mp4"),
    "vp9_webm": (vp9_webm, "vp9.webm"),
    "mpeg4_avi": (mpeg4_avi, "mpeg4.avi"),
    "timestamp_gap": (timestamp_gap, "gap.mkv"),
    "offset_start": (offset_start, "offset.ts"),
    "nasty_name": (normal, NASTY_NAME),
    "two_audio_tracks": (two_audio_tracks, "obs two tracks.mp4"),
    "cover_first": (cover_first, "with cover.mkv"),
    "sound_outlasts_picture": (sound_outlasts_picture, "obs recording.mkv"),
}


def volume_db(path: Path, track: int = 0) -> tuple[float, float]:
    """(mean, max) volume in dB of audio track ``track`` (from 0), by ffmpeg's volumedetect."""
    import re

    out = subprocess.run(
        [
            FFMPEG,
            "-nostdin",
            "-hide_banner",
            "-i",
            _out(path),
            "-map",
            f"0:a:{track}",
            "-af",
            "volumedetect",
            "-f",
            "null",
            "-",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    mean = float(re.search(r"mean_volume: (-?[\d.]+|-inf) dB", out).group(1))
    peak = float(re.search(r"max_volume: (-?[\d.]+|-inf) dB", out).group(1))
    return mean, peak


def make(name: str, folder: Path) -> Path:
    generator, file_name = GENERATORS[name]
    folder.mkdir(parents=True, exist_ok=True)
    return generator(folder / file_name)
