"""Shared fixtures: tiny videos generated with ffmpeg lavfi inside tmp_path."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

FFMPEG = shutil.which("ffmpeg")


def make_video(
    path: Path,
    *,
    duration: float = 4.0,
    size: str = "160x90",
    fps: str = "25",
    audio: bool = True,
    source: str = "testsrc2",
    extra_video_filters: str = "",
    codec: list[str] | None = None,
) -> Path:
    """Write a small test video with ffmpeg's lavfi sources (argv list, no shell)."""
    if FFMPEG is None:
        pytest.skip("ffmpeg is not installed")
    sep = ":" if "=" in source else "="
    video_src = f"{source}{sep}s={size}:r={fps}:d={duration}"
    if extra_video_filters:
        video_src += f",{extra_video_filters}"
    argv = [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i", video_src]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=f=440:r=48000:d={duration}"]
    argv += codec or ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "25"]
    if audio:
        argv += ["-c:a", "aac", "-shortest"]
    argv += ["file:" + str(path)]
    subprocess.run(argv, check=True)
    return path


@pytest.fixture
def video_factory(tmp_path: Path):
    def factory(name: str = "clip.mp4", **kwargs) -> Path:
        return make_video(tmp_path / name, **kwargs)

    return factory
